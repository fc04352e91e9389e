// Allocation of Service ClusterIPs, NodePorts, LoadBalancer pool addresses and Node podCIDRs, inside the state
// machine's apply.
//
// Why in apply: applyBatch runs the same commands in the same order on every replica, so deciding there which
// address a Service gets needs no second round of consensus, can never hand one value out twice (the decision
// and the object write are one transaction), and survives leader changes without a hand-over. The choice is a
// pure function of the state tables: no clock, no randomness.
//
// The indexes are rows of the state tables under the internal resource ALLOCATIONS_RESOURCE: namespace = the
// pool, name = the value ("10.43.0.5", "30080", "10.42.3.0/24"), spec = its owner. Checking a value is one
// keyed read; a dynamic allocation probes from a per-pool cursor (also a row), so it costs one read per taken
// value it skips, not a scan of every Service. They are replicated, snapshotted and backed up with the objects.
//
// Contract: planAllocations(table, resource, current, object) is called before `object` is written (over
// `current`, undefined on create). It returns the object to write (with assigned spec fields) and `commit`,
// which writes the new rows and removes the rows the update gave up; or a failure (Kubernetes' status and
// wording), in which case nothing was written. releaseAllocations removes the rows of a removed object.
//
// LoadBalancer addresses (pool `lb-ips`): the pools are AddressPool objects, which pass through here too: their
// ranges are checked (no overlap with another pool's, the error naming both) and recorded in one index row
// (POOL_INDEX), the only place apply can read all pools from. A LoadBalancer Service holds the address in
// spec.loadBalancerIP, as a Service holds its ClusterIP: asked for there or in the flotilla.io/load-balancer-ips
// annotation (in a pool and free, else 422), otherwise the next free one of the autoAssign pools in name order,
// kept across writes, released on delete or a change of type. Its status.loadBalancer.ingress is that address,
// whatever a status write says. Without a free pool address a LoadBalancer Service has no loadBalancerIP and
// its status is the load-balancer controller's (node addresses when there are no pools at all).
import {
  NETWORK_SETTINGS_CONFIGMAP, NODE_CIDR_MASK_SIZE, cidrContains, cidrSize, formatCidr, formatIPv4, formatPortRange, nthAddress, nthSubnet,
  parseCidr, parseIPv4, parseNetworkSettings, subnetCount,
} from '../../api-types/index.js';
import { ANNOTATION_LOAD_BALANCER_IPS } from '../../api-types/index.js';
import type { AddressPool, NetworkSettings, NodeSpec, ServicePort, ServiceSpec, ServiceStatus } from '../../api-types/index.js';
import type { StateTable } from '../store/state-machine.js';
import { internalResource } from '../store/types.js';
import type { Failure, ResourceKey, StoredObject } from '../store/types.js';
import {
  formatRange, parseAddress, parseAddressRange, poolIndexSpace, poolOfAddress, rangesOverlap, formatAddress,
} from './load-balancer-pools.js';
import type { AddressRange, IndexedPool } from './load-balancer-pools.js';

/** The internal resource key of the allocation rows (never served by the API). */
export const ALLOCATIONS_RESOURCE = 'allocations.network.flotilla.io';
/** The allocation rows as an internal resource (namespace = pool), for reads and the repair's deletes through ObjectService. */
export const ALLOCATIONS = internalResource('network.flotilla.io', 'Allocation', 'allocations', true);

export const POOLS = ['service-ips', 'node-ports', 'pod-cidrs', 'lb-ips'] as const;
export type PoolName = (typeof POOLS)[number];

/** The namespace of the cursor rows (name = the pool): where the next dynamic allocation starts probing. */
const CURSORS = 'cursors';

/** Who holds a value: the spec of an allocation row. */
export interface AllocationOwner { resource: ResourceKey; namespace: string; name: string; uid: string }

/** The resources whose objects hold allocations (AddressPools define the `lb-ips` pools). */
const SERVICES = 'services';
const NODES = 'nodes';
const ADDRESS_POOLS = 'addresspools.flotilla.io';

/** The row (namespace, name) listing every AddressPool's ranges: apply reads pools by key only. */
export const POOL_INDEX = { namespace: 'address-pools', name: 'index' } as const;

export function holdsAllocations(resource: ResourceKey): boolean {
  return resource === SERVICES || resource === NODES || resource === ADDRESS_POOLS;
}

/** One pool as an index range: `dynamicFirst..last` is handed out by the cursor, `first..last` may be asked for. */
interface Pool {
  name: PoolName;
  /** The name of its cursor row. */
  cursor: string;
  first: number;
  dynamicFirst: number;
  last: number;
  key(index: number): string;
}

type SettingsPool = Exclude<PoolName, 'lb-ips'>;

function pools(s: NetworkSettings): Record<SettingsPool, Pool> {
  const serviceSize = cidrSize(s.serviceCIDR);
  return {
    // Neither the network nor the broadcast address; the first address is the `kubernetes` Service's and is
    // handed out only when asked for (as Kubernetes reserves it).
    'service-ips': { name: 'service-ips', cursor: 'service-ips', first: 1, dynamicFirst: 2, last: serviceSize - 2, key: (i) => formatIPv4(nthAddress(s.serviceCIDR, i)) },
    'node-ports': { name: 'node-ports', cursor: 'node-ports', first: s.nodePortRange.min, dynamicFirst: s.nodePortRange.min, last: s.nodePortRange.max, key: String },
    'pod-cidrs': {
      name: 'pod-cidrs', cursor: 'pod-cidrs', first: 0, dynamicFirst: 0, last: subnetCount(s.clusterCIDR, NODE_CIDR_MASK_SIZE) - 1,
      key: (i) => formatCidr(nthSubnet(s.clusterCIDR, NODE_CIDR_MASK_SIZE, i)),
    },
  };
}

/** The settings the cluster published (defaults before the leader's bootstrap wrote them). */
export function publishedSettings(table: Pick<StateTable, 'get'>): NetworkSettings {
  const cm = table.get('configmaps', NETWORK_SETTINGS_CONFIGMAP.namespace, NETWORK_SETTINGS_CONFIGMAP.name) as { data?: Record<string, string> } | undefined;
  return parseNetworkSettings(cm?.data);
}

/** The AddressPools as the index row records them, sorted by name. */
export function addressPools(table: Pick<StateTable, 'get'>): IndexedPool[] {
  return (table.get(ALLOCATIONS_RESOURCE, POOL_INDEX.namespace, POOL_INDEX.name) as { spec?: { pools?: IndexedPool[] } } | undefined)?.spec?.pools ?? [];
}

function writePoolIndex(table: StateTable, pools: IndexedPool[]): void {
  table.put(ALLOCATIONS_RESOURCE, POOL_INDEX.namespace, POOL_INDEX.name, {
    apiVersion: 'network.flotilla.io/v1', kind: 'AddressPoolIndex', metadata: { ...POOL_INDEX },
    spec: { pools: [...pools].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)) },
  });
}

/** The dynamic index space of an AddressPool, as the planner walks it. */
function lbPool(pool: IndexedPool): Pool {
  const space = poolIndexSpace(pool);
  return { name: 'lb-ips', cursor: `lb-ips.${pool.name}`, first: 0, dynamicFirst: 0, last: space.size - 1, key: space.key };
}

export type AllocationPlan =
  | { ok: true; object: StoredObject; commit(): void }
  | { ok: false; failure: Failure };

/** A value of a pool that an object holds. */
interface Held { pool: PoolName; key: string }

class Planner {
  readonly #taken: Held[] = [];
  readonly #cursors = new Map<string, number>();

  constructor(readonly table: StateTable, readonly pools: Record<SettingsPool, Pool>, readonly owner: AllocationOwner) {}

  /** Who holds `key` of `pool` now (a row), if anybody. */
  holder(pool: PoolName, key: string): AllocationOwner | undefined {
    return this.#row(pool, key);
  }

  #row(pool: PoolName, key: string): AllocationOwner | undefined {
    return (this.table.get(ALLOCATIONS_RESOURCE, pool, key) as { spec?: AllocationOwner } | undefined)?.spec;
  }

  /** Whether `key` is free for this owner: unheld, or held by this very object (an update keeping it). */
  available(pool: PoolName, key: string): boolean {
    const row = this.#row(pool, key);
    if (row !== undefined && row.uid !== this.owner.uid) return false;
    return !this.#taken.some((t) => t.pool === pool && t.key === key);
  }

  /** Takes `key` (already checked with `available`) for this owner. */
  take(pool: PoolName, key: string): void {
    this.#taken.push({ pool, key });
  }

  /** The next free value of the pool after its cursor, or undefined when the pool is full. */
  next(pool: Pool): string | undefined {
    const name = pool.name;
    const size = pool.last - pool.dynamicFirst + 1;
    if (size <= 0) return undefined;
    const stored = this.#cursors.get(pool.cursor) ?? (this.table.get(ALLOCATIONS_RESOURCE, CURSORS, pool.cursor) as { spec?: { next?: number } } | undefined)?.spec?.next;
    const start = stored !== undefined && stored >= pool.dynamicFirst && stored <= pool.last ? stored : pool.dynamicFirst;
    for (let k = 0; k < size; k++) {
      const index = pool.dynamicFirst + ((start - pool.dynamicFirst + k) % size);
      const key = pool.key(index);
      if (!this.available(name, key)) continue;
      this.take(name, key);
      this.#cursors.set(pool.cursor, index + 1 > pool.last ? pool.dynamicFirst : index + 1);
      return key;
    }
    return undefined;
  }

  /** Writes the rows of the values taken and the cursors moved, and removes the owner's rows of `released`. */
  commit(released: readonly Held[]): void {
    for (const r of released) {
      if (this.#taken.some((t) => t.pool === r.pool && t.key === r.key)) continue;
      if (this.#row(r.pool, r.key)?.uid === this.owner.uid) this.table.remove(ALLOCATIONS_RESOURCE, r.pool, r.key);
    }
    for (const t of this.#taken) {
      if (this.#row(t.pool, t.key) !== undefined) continue;
      this.table.put(ALLOCATIONS_RESOURCE, t.pool, t.key, allocationRow(t.pool, t.key, this.owner));
    }
    for (const [pool, next] of this.#cursors) {
      this.table.put(ALLOCATIONS_RESOURCE, CURSORS, pool, {
        apiVersion: 'network.flotilla.io/v1', kind: 'AllocationCursor', metadata: { namespace: CURSORS, name: pool }, spec: { next },
      });
    }
  }
}

/** The row that records `key` of `pool` as held by `owner`. */
export function allocationRow(pool: PoolName, key: string, owner: AllocationOwner): StoredObject {
  return { apiVersion: 'network.flotilla.io/v1', kind: 'Allocation', metadata: { namespace: pool, name: key }, spec: { ...owner } };
}

/** A 422 Invalid failure as Kubernetes writes it: `Service "web" is invalid: FIELD: MESSAGE`. */
function invalid(kind: string, name: string, field: string, message: string): AllocationPlan {
  return { ok: false, failure: { code: 422, reason: 'Invalid', message: `${kind} "${name}" is invalid: ${field}: ${message}`, details: { name, kind, causes: [{ field, message }] } } };
}

function internal(message: string): AllocationPlan {
  return { ok: false, failure: { code: 500, reason: 'InternalError', message: `Internal error occurred: ${message}` } };
}

/**
 * What the object will hold once written over `current`, or the reason it may not be written. See the
 * header for the contract.
 */
export function planAllocations(table: StateTable, resource: ResourceKey, current: StoredObject | undefined, object: StoredObject): AllocationPlan {
  let settings: NetworkSettings;
  try {
    settings = publishedSettings(table);
  } catch (err) {
    return internal(`ConfigMap ${NETWORK_SETTINGS_CONFIGMAP.namespace}/${NETWORK_SETTINGS_CONFIGMAP.name}: ${(err as Error).message}`);
  }
  const owner: AllocationOwner = { resource, namespace: object.metadata.namespace ?? '', name: object.metadata.name, uid: object.metadata.uid ?? '' };
  const planner = new Planner(table, pools(settings), owner);
  if (resource === ADDRESS_POOLS) return planAddressPool(table, object);
  return resource === SERVICES ? planService(planner, settings, current, object) : planNode(planner, settings, current, object);
}

/** Removes the rows `object` holds (it was removed from the state). */
export function releaseAllocations(table: StateTable, resource: ResourceKey, object: StoredObject): void {
  // A removed pool's addresses stay with the Services holding them (as a ClusterIP outlives a changed range).
  if (resource === ADDRESS_POOLS) writePoolIndex(table, addressPools(table).filter((p) => p.name !== object.metadata.name));
  for (const h of heldBy(resource, object)) {
    const row = (table.get(ALLOCATIONS_RESOURCE, h.pool, h.key) as { spec?: AllocationOwner } | undefined)?.spec;
    if (row?.uid === object.metadata.uid) table.remove(ALLOCATIONS_RESOURCE, h.pool, h.key);
  }
}

/** The values an object holds, as its fields say (what the rows must match: server/network/repair.ts). */
export function heldBy(resource: ResourceKey, object: StoredObject): Held[] {
  if (resource === NODES) {
    const cidr = (object.spec as NodeSpec | undefined)?.podCIDR;
    return cidr ? [{ pool: 'pod-cidrs', key: cidr }] : [];
  }
  if (resource !== SERVICES) return [];
  const spec = (object.spec ?? {}) as ServiceSpec;
  const held: Held[] = [];
  if (spec.type !== 'ExternalName' && spec.clusterIP && spec.clusterIP !== 'None') held.push({ pool: 'service-ips', key: spec.clusterIP });
  for (const p of spec.ports ?? []) {
    if (p.nodePort && !held.some((h) => h.pool === 'node-ports' && h.key === String(p.nodePort))) held.push({ pool: 'node-ports', key: String(p.nodePort) });
  }
  if (spec.type === 'LoadBalancer' && spec.loadBalancerIP) held.push({ pool: 'lb-ips', key: spec.loadBalancerIP });
  return held;
}

function planService(planner: Planner, settings: NetworkSettings, current: StoredObject | undefined, object: StoredObject): AllocationPlan {
  const name = object.metadata.name;
  const spec: ServiceSpec = { ...((object.spec ?? {}) as ServiceSpec) };
  const before = current ? ((current.spec ?? {}) as ServiceSpec) : undefined;
  const pool = planner.pools['service-ips'];

  if (spec.type === 'ExternalName') {
    // An ExternalName Service has no address of its own; one it had as another type is given back.
    delete spec.clusterIP;
    delete spec.clusterIPs;
  } else {
    const had = before && before.type !== 'ExternalName' && before.clusterIP ? before.clusterIP : undefined;
    if (had !== undefined) {
      if (spec.clusterIP && spec.clusterIP !== had) return invalid('Service', name, 'spec.clusterIP', `Invalid value: ${JSON.stringify(spec.clusterIP)}: field is immutable`);
      if (had !== 'None') planner.take('service-ips', had);
      spec.clusterIP = had;
      spec.clusterIPs = before?.clusterIPs ?? [had];
    } else {
      const requested = spec.clusterIP || spec.clusterIPs?.[0];
      if (spec.clusterIP && spec.clusterIPs?.[0] && spec.clusterIPs[0] !== spec.clusterIP) {
        return invalid('Service', name, 'spec.clusterIPs[0]', `Invalid value: ${JSON.stringify(spec.clusterIPs[0])}: must match clusterIP when both are specified`);
      }
      let ip: string;
      if (requested === 'None') ip = 'None';
      else if (requested) {
        const n = parseIPv4(requested);
        if (n === undefined) return invalid('Service', name, 'spec.clusterIPs[0]', `Invalid value: ${JSON.stringify(requested)}: must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)`);
        const fail = (why: string) => invalid('Service', name, 'spec.clusterIPs', `Invalid value: ${JSON.stringify([requested])}: failed to allocate IP ${requested}: ${why}`);
        const index = n - settings.serviceCIDR.base;
        if (!cidrContains(settings.serviceCIDR, n) || index < pool.first || index > pool.last) {
          return fail(`the provided IP (${requested}) is not in the valid range. The range of valid IPs is ${formatCidr(settings.serviceCIDR)}`);
        }
        if (!planner.available('service-ips', requested)) return fail('provided IP is already allocated');
        planner.take('service-ips', requested);
        ip = requested;
      } else {
        const next = planner.next(pool);
        if (next === undefined) return internal('failed to allocate a serviceIP: range is full');
        ip = next;
      }
      spec.clusterIP = ip;
      spec.clusterIPs = [ip];
    }
    spec.ipFamilies ??= ['IPv4'];
    spec.ipFamilyPolicy ??= 'SingleStack';
  }

  const ports: ServicePort[] = (spec.ports ?? []).map((p) => ({ ...p }));
  if (spec.type === 'NodePort' || spec.type === 'LoadBalancer') {
    const range = planner.pools['node-ports'];
    const previous = before?.type === 'NodePort' || before?.type === 'LoadBalancer' ? before.ports ?? [] : [];
    // Within one Service a NodePort may serve one port number over several protocols, as in Kubernetes.
    const mine = new Map<number, string>();
    for (const [i, p] of ports.entries()) {
      const protocol = p.protocol ?? 'TCP';
      let wanted = p.nodePort || undefined;
      if (wanted === undefined) {
        const same = previous.find((q) => q.port === p.port && (q.protocol ?? 'TCP') === protocol) ?? (p.name ? previous.find((q) => q.name === p.name) : undefined);
        wanted = same?.nodePort || undefined;
        if (wanted !== undefined && !planner.available('node-ports', String(wanted))) wanted = undefined;
      }
      if (wanted !== undefined) {
        const shared = mine.get(wanted);
        if (shared !== undefined && shared !== protocol) { p.nodePort = wanted; continue; }
        const field = `spec.ports[${i}].nodePort`;
        if (wanted < range.first || wanted > range.last) {
          return invalid('Service', name, field, `Invalid value: ${wanted}: provided port is not in the valid range. The range of valid ports is ${formatPortRange(settings.nodePortRange)}`);
        }
        if (shared !== undefined || !planner.available('node-ports', String(wanted))) return invalid('Service', name, field, `Invalid value: ${wanted}: provided port is already allocated`);
        planner.take('node-ports', String(wanted));
        p.nodePort = wanted;
      } else {
        const next = planner.next(range);
        if (next === undefined) return internal('failed to allocate a nodePort: range is full');
        p.nodePort = Number(next);
      }
      mine.set(p.nodePort, protocol);
    }
  } else {
    for (const p of ports) delete p.nodePort;
  }
  if (spec.ports !== undefined) spec.ports = ports;

  const lb = planLoadBalancerIP(planner, object, spec, before);
  if (typeof lb === 'object') return lb;
  if (lb !== undefined) spec.loadBalancerIP = lb;
  const written: StoredObject = { ...object, spec };
  const status = { ...((object.status ?? {}) as ServiceStatus) };
  if (lb !== undefined) written.status = { ...status, loadBalancer: { ingress: [{ ip: lb }] } };
  else if (spec.type !== 'LoadBalancer' && status.loadBalancer?.ingress) written.status = { ...status, loadBalancer: {} };
  const released = before && current ? heldBy(SERVICES, current) : [];
  return { ok: true, object: written, commit: () => planner.commit(released) };
}

function planNode(planner: Planner, settings: NetworkSettings, current: StoredObject | undefined, object: StoredObject): AllocationPlan {
  const name = object.metadata.name;
  const spec: NodeSpec = { ...((object.spec ?? {}) as NodeSpec) };
  const had = (current?.spec as NodeSpec | undefined)?.podCIDR;
  const done = (): AllocationPlan => ({ ok: true, object: { ...object, spec }, commit: () => planner.commit([]) });
  if (had) {
    // Set once by the servers; an agent's write without it keeps it.
    if ((spec.podCIDR && spec.podCIDR !== had) || (spec.podCIDRs && spec.podCIDRs.length > 0 && (spec.podCIDRs.length !== 1 || spec.podCIDRs[0] !== had))) {
      return invalid('Node', name, 'spec.podCIDRs', 'Forbidden: node updates may not change podCIDR except from "" to valid');
    }
    spec.podCIDR = had;
    spec.podCIDRs = [had];
    return done();
  }
  const requested = spec.podCIDR || spec.podCIDRs?.[0];
  if (requested) {
    let index: number | undefined;
    try {
      const c = parseCidr(requested);
      if (c.prefix === NODE_CIDR_MASK_SIZE && cidrContains(settings.clusterCIDR, c.base)) index = (c.base - settings.clusterCIDR.base) / cidrSize(c);
    } catch { /* reported below */ }
    if (index === undefined) {
      return invalid('Node', name, 'spec.podCIDR', `Invalid value: ${JSON.stringify(requested)}: must be a /${NODE_CIDR_MASK_SIZE} of the cluster CIDR ${formatCidr(settings.clusterCIDR)}`);
    }
    const key = planner.pools['pod-cidrs'].key(index);
    if (key !== requested || !planner.available('pod-cidrs', key)) {
      return invalid('Node', name, 'spec.podCIDR', `Invalid value: ${JSON.stringify(requested)}: ${key !== requested ? `must be written as ${key}` : 'provided CIDR is already allocated'}`);
    }
    planner.take('pod-cidrs', key);
    spec.podCIDR = key;
    spec.podCIDRs = [key];
    return done();
  }
  // A full cluster CIDR leaves the node without a podCIDR (as Kubernetes' node IPAM does); a later write tries again.
  const next = planner.next(planner.pools['pod-cidrs']);
  if (next === undefined) return { ok: true, object, commit: () => undefined };
  spec.podCIDR = next;
  spec.podCIDRs = [next];
  return done();
}

/**
 * The pool address a LoadBalancer Service holds once written (taken on the planner), undefined for none (another
 * type, or no free pool address), or the failure.
 */
function planLoadBalancerIP(planner: Planner, object: StoredObject, spec: ServiceSpec, before: ServiceSpec | undefined): string | undefined | AllocationPlan {
  const name = object.metadata.name;
  const had = before?.type === 'LoadBalancer' ? before.loadBalancerIP || undefined : undefined;
  if (spec.type !== 'LoadBalancer') {
    if (had !== undefined && spec.loadBalancerIP === had) delete spec.loadBalancerIP;
    return undefined;
  }
  const annotationField = `metadata.annotations[${ANNOTATION_LOAD_BALANCER_IPS}]`;
  const annotation = object.metadata.annotations?.[ANNOTATION_LOAD_BALANCER_IPS];
  const annotated = (annotation ?? '').split(',').map((a) => a.trim()).filter(Boolean);
  if (annotated.length > 1) return invalid('Service', name, annotationField, `Invalid value: ${JSON.stringify(annotation)}: only one address per Service is supported`);
  let requested = annotated[0];
  let field = annotationField;
  // spec.loadBalancerIP as read back holds the address the Service has: only another value is a request.
  if (spec.loadBalancerIP && spec.loadBalancerIP !== had) {
    if (requested !== undefined && requested !== spec.loadBalancerIP) {
      return invalid('Service', name, 'spec.loadBalancerIP', `Invalid value: ${JSON.stringify(spec.loadBalancerIP)}: must match the ${ANNOTATION_LOAD_BALANCER_IPS} annotation (${requested})`);
    }
    requested = spec.loadBalancerIP;
    field = 'spec.loadBalancerIP';
  }
  requested ??= had;
  const index = addressPools(planner.table);
  if (requested !== undefined) {
    const address = parseAddress(requested);
    if (!address) return invalid('Service', name, field, `Invalid value: ${JSON.stringify(requested)}: must be a valid IP address, (e.g. 192.168.1.240 or fd00::f0)`);
    const key = formatAddress(address);
    if (key !== had && !poolOfAddress(index, address)) {
      const known = index.length === 0 ? 'there is no AddressPool' : `the pools are ${index.map((p) => `${p.name} (${p.ranges.join(', ')})`).join('; ')}`;
      return invalid('Service', name, field, `Invalid value: ${JSON.stringify(requested)}: not in any AddressPool: ${known}`);
    }
    if (!planner.available('lb-ips', key)) {
      const holder = planner.holder('lb-ips', key);
      return invalid('Service', name, field, `Invalid value: ${JSON.stringify(requested)}: address already allocated${holder ? ` to Service ${holder.namespace}/${holder.name}` : ''}`);
    }
    planner.take('lb-ips', key);
    return key;
  }
  for (const pool of index.filter((p) => p.autoAssign)) {
    const next = planner.next(lbPool(pool));
    if (next !== undefined) return next;
  }
  return undefined;
}

/** An AddressPool as written: its ranges parsed and checked against each other and every other pool's. */
function planAddressPool(table: StateTable, object: StoredObject): AllocationPlan {
  const name = object.metadata.name;
  const spec = { ...((object.spec ?? {}) as AddressPool['spec']) };
  const ranges: AddressRange[] = [];
  for (const [i, text] of (spec.addresses ?? []).entries()) {
    const field = `spec.addresses[${i}]`;
    let range: AddressRange;
    try {
      range = parseAddressRange(text);
    } catch (err) {
      return invalid('AddressPool', name, field, `Invalid value: ${JSON.stringify(text)}: ${(err as Error).message}`);
    }
    const inPool = ranges.findIndex((r) => rangesOverlap(r, range));
    if (inPool >= 0) return invalid('AddressPool', name, field, `Invalid value: ${JSON.stringify(text)}: overlaps spec.addresses[${inPool}] (${formatRange(ranges[inPool]!)})`);
    for (const other of addressPools(table).filter((p) => p.name !== name)) {
      const hit = other.ranges.find((r) => rangesOverlap(parseAddressRange(r), range));
      if (hit !== undefined) {
        return invalid('AddressPool', name, field, `Invalid value: ${JSON.stringify(text)}: overlaps ${hit} of AddressPool "${other.name}"; the pools of a cluster must not share addresses`);
      }
    }
    ranges.push(range);
  }
  spec.autoAssign ??= true;
  const entry: IndexedPool = { name, autoAssign: spec.autoAssign, ranges: ranges.map(formatRange) };
  return {
    ok: true,
    object: { ...object, spec },
    commit: () => writePoolIndex(table, [...addressPools(table).filter((p) => p.name !== name), entry]),
  };
}
