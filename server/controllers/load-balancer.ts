// LoadBalancer Services on a LAN, leader side. The address itself is allocated in apply
// (server/network/allocator.ts: spec.loadBalancerIP and status.loadBalancer.ingress); this controller decides
// who makes it reachable.
//
// A pool address is announced by exactly one node. The choice (server/network/load-balancer-choice.ts) is
// recorded durably in the Service's annotation flotilla.io/load-balancer-node, which every agent sees through
// its Service watch: the named agent adds the address to its LAN interface and announces it (gratuitous ARP /
// unsolicited neighbour advertisement, node-agent/network/lb-announcer.ts), every other agent holds none. A node
// may announce when it is Ready, not labelled node.kubernetes.io/exclude-from-external-load-balancers, has a
// ready local endpoint under externalTrafficPolicy Local, and is a live speaker.
//
// Speakers and fencing. The node Lease is far too slow for a 3 s failover (its grace is tens of seconds), so
// every announcing-capable agent also renews an in-memory speaker lease (LB_SPEAKER_LEASE_NAMESPACE/NODE, no
// durable write) every LB_SPEAKER_RENEW_MS. Two timers keep two announcers from ever holding one address:
// - an agent withdraws every address once its last renewal that the servers confirmed was sent more than
//   LB_SPEAKER_FENCE_MS ago (it cannot know whether it still holds its assignments), and adds the addresses
//   with a kernel lifetime of about a second that only it refreshes, so a killed agent's address goes by itself;
// - this controller counts a speaker dead only LB_SPEAKER_EXPIRY_MS (> the fence) after its last renewal
//   arrived, which is after that renewal was sent; only then may the address move.
// The new announcer still checks with ARP that nobody answers for the address before taking it (a stale
// holder, or a host outside the cluster: then the event AddressInUse). A new leader counts every node alive
// for LB_SPEAKER_EXPIRY_MS from the start of its term, since renewals reach the leader only.
//
// Without any AddressPool a LoadBalancer Service is served on node addresses (k3s ServiceLB style): its
// status.loadBalancer.ingress lists the InternalIPs of the nodes that may serve it (Ready, and with a ready
// local endpoint under Local), and the agents' NodePort-style rules answer there. With pools but no free
// address the Service stays pending (event AllocationFailed) and is written again when a pool changes, so
// that apply allocates for it.
import {
  ANNOTATION_LOAD_BALANCER_NODE, LABEL_EXCLUDE_FROM_EXTERNAL_LOAD_BALANCERS, LABEL_SERVICE_NAME, LB_SPEAKER_EXPIRY_MS, isKind, resourceOfKind,
} from '../../api-types/index.js';
import type { Node, Service } from '../../api-types/index.js';
import { StoreError } from '../store/types.js';
import type { Stored } from '../store/types.js';
import { ALLOCATIONS, POOL_INDEX } from '../network/allocator.js';
import { chooseAnnouncers } from '../network/load-balancer-choice.js';
import { parseAddress, poolOfAddress, poolSize } from '../network/load-balancer-pools.js';
import type { IndexedPool } from '../network/load-balancer-pools.js';
import { objectKey, resources, sameContent, splitKey } from './cluster-objects.js';
import { EventRecorder } from './events.js';
import type { Controller, ControllerDeps } from './controller.js';

const addressPools = resourceOfKind('AddressPool');
/** How often a Service with a pool address is looked at again: speaker leases are in memory and make no watch events. */
const SPEAKER_POLL_MS = 200;
/** How often a pending Service is offered to the allocator again without a pool change. */
const PENDING_RETRY_MS = 30_000;

export function loadBalancerController(deps: ControllerDeps): Controller {
  const events = new EventRecorder(deps.objects, 'load-balancer-controller', deps.now);
  const termStart = deps.now();
  /** What was last reported per Service (an event once per change of situation, not per poll). */
  const reported = new Map<string, string>();
  const lbServices = (): Stored<Service>[] => deps.objects.list(resources.services).items.filter((s) => s.spec?.type === 'LoadBalancer');
  const allLb = () => lbServices().map(objectKey);
  const speakerAlive = (node: string): boolean => {
    const last = Math.max(deps.lbSpeakers?.lastRenewMs(node) ?? 0, termStart);
    return deps.now() - last < LB_SPEAKER_EXPIRY_MS;
  };

  /** The nodes that may serve `svc`: Ready, not excluded, and (Local) holding a ready endpoint of it. */
  const servingNodes = (svc: Service, nodes: readonly Node[]): Node[] => {
    const local = svc.spec?.externalTrafficPolicy === 'Local' ? localEndpointNodes(svc) : undefined;
    return nodes.filter((n) => isReady(n) && n.metadata.labels?.[LABEL_EXCLUDE_FROM_EXTERNAL_LOAD_BALANCERS] === undefined
      && n.metadata.deletionTimestamp === undefined && (local === undefined || local.has(n.metadata.name ?? '')));
  };
  const localEndpointNodes = (svc: Service): Set<string> => {
    const slices = deps.objects.list(resources.endpointSlices, svc.metadata.namespace).items.filter((s) => s.metadata.labels?.[LABEL_SERVICE_NAME] === svc.metadata.name);
    return new Set(slices.flatMap((s) => s.endpoints).filter((e) => (e.conditions?.ready ?? true) && e.nodeName).map((e) => e.nodeName!));
  };

  const report = async (svc: Stored<Service>, situation: string, type: 'Normal' | 'Warning', reason: string, message: string) => {
    const key = objectKey(svc);
    if (reported.get(key) === situation) return;
    reported.set(key, situation);
    await events.record(svc, type, reason, message);
  };

  const setAnnouncer = async (svc: Stored<Service>, node: string | undefined) => {
    if (svc.metadata.annotations?.[ANNOTATION_LOAD_BALANCER_NODE] === node) return;
    await deps.objects.patch(resources.services, svc.metadata.namespace, svc.metadata.name, {
      metadata: { annotations: { [ANNOTATION_LOAD_BALANCER_NODE]: node ?? null }, resourceVersion: svc.metadata.resourceVersion },
    });
  };

  return {
    name: 'load-balancer',
    watches: [
      {
        resource: resources.services,
        keys: (e) => (isKind(e.object, 'Service') && (e.object.spec?.type === 'LoadBalancer' || e.object.metadata.annotations?.[ANNOTATION_LOAD_BALANCER_NODE] !== undefined)
          ? [objectKey(e.object)] : []),
      },
      { resource: resources.nodes, keys: () => allLb() },
      { resource: addressPools, keys: () => allLb() },
      {
        resource: resources.endpointSlices,
        keys: (e) => {
          const service = e.object.metadata.labels?.[LABEL_SERVICE_NAME];
          return service ? [`${e.object.metadata.namespace}/${service}`] : [];
        },
      },
    ],
    allKeys: () => new Set(allLb()),
    async reconcile(key) {
      const { namespace, name } = splitKey(key);
      const svc = deps.objects.get(resources.services, namespace, name);
      if (!svc || svc.spec?.type !== 'LoadBalancer' || svc.metadata.deletionTimestamp !== undefined) {
        reported.delete(key);
        if (svc && svc.metadata.annotations?.[ANNOTATION_LOAD_BALANCER_NODE] !== undefined) await setAnnouncer(svc, undefined);
        return;
      }
      const nodes = deps.objects.list(resources.nodes).items;
      try {
        const address = svc.spec.loadBalancerIP;
        if (address) {
          const inputs = lbServices().filter((s) => s.spec?.loadBalancerIP).map((s) => ({
            address: s.spec!.loadBalancerIP!,
            eligible: servingNodes(s, nodes).map((n) => n.metadata.name ?? '').filter(speakerAlive),
            current: s.metadata.annotations?.[ANNOTATION_LOAD_BALANCER_NODE],
          }));
          const node = chooseAnnouncers(inputs).get(address);
          await setAnnouncer(svc, node);
          if (node === undefined) {
            await report(svc, 'unannounced', 'Warning', 'NoAnnouncer', `no node can announce ${address}: none is Ready and announcing${svc.spec.externalTrafficPolicy === 'Local' ? ' with a ready local endpoint' : ''}`);
          } else {
            await report(svc, `announced ${node}`, 'Normal', 'AnnouncingIP', `${address} is announced by node ${node}`);
          }
          return { requeueAfterMs: SPEAKER_POLL_MS };
        }
        if (svc.metadata.annotations?.[ANNOTATION_LOAD_BALANCER_NODE] !== undefined) await setAnnouncer(svc, undefined);
        if (indexedPools(deps).length > 0) {
          // Written again unchanged: apply allocates when a pool has a free address now.
          const written = await deps.objects.patch(resources.services, namespace, name, {});
          if (!written.spec?.loadBalancerIP) {
            // Node addresses from before the first pool are not what a pending Service has.
            if (written.status?.loadBalancer?.ingress) await deps.objects.replaceStatus(resources.services, namespace, name, { ...written.status, loadBalancer: {} }, written.metadata.resourceVersion);
            await report(svc, 'pending', 'Warning', 'AllocationFailed', 'no free address in any AddressPool with autoAssign (or the one asked for is taken)');
            return { requeueAfterMs: PENDING_RETRY_MS };
          }
          return;
        }
        const ingress = servingNodes(svc, nodes)
          .map((n) => (n.status?.addresses ?? []).find((a) => a.type === 'InternalIP')?.address)
          .filter((a): a is string => a !== undefined)
          .sort()
          .map((ip) => ({ ip }));
        const status = { ...(svc.status ?? {}), loadBalancer: ingress.length > 0 ? { ingress } : {} };
        if (!sameContent(status, svc.status ?? {})) {
          await deps.objects.replaceStatus(resources.services, namespace, name, status, svc.metadata.resourceVersion);
        }
      } catch (err) {
        if (err instanceof StoreError && (err.failure.code === 404 || err.failure.code === 409)) return { requeueAfterMs: 0 };
        throw err;
      }
    },
  };
}

/** The AddressPools as the allocator's index row has them (what apply allocates from). */
function indexedPools(deps: ControllerDeps): IndexedPool[] {
  return (deps.objects.get(ALLOCATIONS, POOL_INDEX.namespace, POOL_INDEX.name)?.spec as { pools?: IndexedPool[] } | undefined)?.pools ?? [];
}

/** Keeps each AddressPool's status: how many addresses of each family its Services hold, and how many are left (MetalLB's fields). */
export function addressPoolStatusController(deps: ControllerDeps): Controller {
  const allPools = () => deps.objects.list(addressPools).items.map((p) => p.metadata.name);
  return {
    name: 'address-pool-status',
    watches: [
      { resource: addressPools, keys: (e) => [e.object.metadata.name] },
      { resource: resources.services, keys: (e) => (isKind(e.object, 'Service') && e.object.spec?.loadBalancerIP ? allPools() : []) },
    ],
    allKeys: () => new Set(allPools()),
    async reconcile(name) {
      const pool = deps.objects.get(addressPools, undefined, name);
      const indexed = indexedPools(deps);
      const entry = indexed.find((p) => p.name === name);
      if (!pool || !entry) return;
      const assigned = { 4: 0, 6: 0 };
      for (const svc of deps.objects.list(resources.services).items) {
        const address = svc.spec?.type === 'LoadBalancer' && svc.spec.loadBalancerIP ? parseAddress(svc.spec.loadBalancerIP) : undefined;
        if (address && poolOfAddress(indexed, address)?.name === name) assigned[address.family]++;
      }
      const size = poolSize(entry);
      const status = { assignedIPv4: assigned[4], assignedIPv6: assigned[6], availableIPv4: size[4] - assigned[4], availableIPv6: size[6] - assigned[6] };
      if (sameContent(status, pool.status ?? {})) return;
      try {
        await deps.objects.replaceStatus(addressPools, undefined, name, status, pool.metadata.resourceVersion);
      } catch (err) {
        if (err instanceof StoreError && (err.failure.code === 404 || err.failure.code === 409)) return { requeueAfterMs: 0 };
        throw err;
      }
    },
  };
}

function isReady(n: Node): boolean {
  return (n.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
}
