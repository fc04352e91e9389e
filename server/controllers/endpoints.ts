// The Endpoints and EndpointSlice controller: for every Service with a selector, the pods it selects, as
// Kubernetes' endpoints and endpointslice controllers write them.
//
// - A pod is an endpoint once it has an IP and while it is not finished (Succeeded/Failed). In a slice its
//   conditions are serving = Ready (or publishNotReadyAddresses), terminating = deletionTimestamp set, ready =
//   serving and not terminating (or publishNotReadyAddresses). In Endpoints, ready pods are `addresses`, the
//   others `notReadyAddresses`, and terminating pods are left out (unless publishNotReadyAddresses).
// - A named targetPort is resolved per pod from its containers' ports (name and protocol); a pod without it is
//   left out of that port, and the Service gets a Warning event naming pod and port. Pods are grouped by the
//   ports they resolve to: one Endpoints subset, and one run of slices, per group.
// - Slices hold at most `maxEndpointsPerSlice` endpoints (Kubernetes' default 100); an endpoint stays in the
//   slice it is in, new ones fill slices with room first, so a change rewrites as few slices as it can. A
//   selector that matches nothing gives empty Endpoints and one empty slice, as in Kubernetes.
// - Services without a selector (user-managed Endpoints), and ExternalName Services, are left alone; the
//   controller only touches slices labelled managed-by ENDPOINTSLICE_CONTROLLER_NAME.
// - A pod change wakes only the Services of its namespace whose selector matches it now or matched it before.
import {
  ENDPOINTSLICE_CONTROLLER_NAME, LABEL_ENDPOINTSLICE_MANAGED_BY, LABEL_SERVICE_NAME, LABEL_ZONE, isKind, labelSelectorFromSpec, matchesLabels,
} from '../../api-types/index.js';
import type {
  EndpointAddress, EndpointPort, EndpointSlice, EndpointSubset, Endpoints, LabelSelector, ObjectReference, Pod, Service, ServicePort, SliceEndpoint,
  SlicePort,
} from '../../api-types/index.js';
import type { Stored } from '../store/types.js';
import { StoreError } from '../store/types.js';
import { controllerRefTo, isPodReady, objectKey, resources, sameContent, splitKey } from './cluster-objects.js';
import { EventRecorder } from './events.js';
import type { Controller, ControllerDeps } from './controller.js';

/** Kubernetes' --max-endpoints-per-slice default. */
export const DEFAULT_MAX_ENDPOINTS_PER_SLICE = 100;

export interface EndpointsControllerOptions {
  maxEndpointsPerSlice?: number;
}

/** One pod as an endpoint of a Service, before it is written in either form. */
interface PodEndpoint {
  pod: Stored<Pod>;
  ip: string;
  ready: boolean;
  serving: boolean;
  terminating: boolean;
}

/** The endpoints that resolve to the same ports, and those ports. */
interface PortGroup {
  ports: SlicePort[];
  endpoints: PodEndpoint[];
}

export function endpointsController(deps: ControllerDeps, options: EndpointsControllerOptions = {}): Controller {
  const max = options.maxEndpointsPerSlice ?? DEFAULT_MAX_ENDPOINTS_PER_SLICE;
  const events = new EventRecorder(deps.objects, 'endpoint-controller', deps.now);
  const selectors = new ServiceSelectors();
  /** Service key -> the missing named ports last reported, so that a Warning is recorded when that changes, not at every reconcile. */
  const reported = new Map<string, string>();

  const ensureIndex = () => {
    if (!selectors.built) selectors.build(deps.objects.list(resources.services).items);
  };

  return {
    name: 'endpoints',
    watches: [
      {
        resource: resources.services,
        keys: (e) => {
          ensureIndex();
          if (e.type === 'DELETED') selectors.remove(objectKey(e.object));
          else if (isKind(e.object, 'Service')) selectors.put(e.object);
          return [objectKey(e.object)];
        },
      },
      {
        resource: resources.pods,
        keys: (e) => {
          ensureIndex();
          return isKind(e.object, 'Pod') ? selectors.servicesOf(e.object, e.type === 'DELETED') : [];
        },
      },
      // A slice or Endpoints changed by someone else is put back.
      { resource: resources.endpointSlices, keys: (e) => serviceOfSlice(e.object) },
      { resource: resources.endpoints, keys: (e) => [objectKey(e.object)] },
    ],
    allKeys: () => deps.objects.list(resources.services).items.map(objectKey),
    async reconcile(key) {
      const { namespace, name } = splitKey(key);
      const ns = namespace ?? 'default';
      const svc = deps.objects.get(resources.services, ns, name);
      const slices = deps.objects.list(resources.endpointSlices, ns).items.filter((s) =>
        s.metadata.labels?.[LABEL_SERVICE_NAME] === name && s.metadata.labels?.[LABEL_ENDPOINTSLICE_MANAGED_BY] === ENDPOINTSLICE_CONTROLLER_NAME);
      if (svc) { ensureIndex(); selectors.put(svc); }
      if (!svc || svc.metadata.deletionTimestamp) {
        reported.delete(key);
        // Slices go with their owner (garbage collector); Endpoints have none, so they go here, as in Kubernetes.
        if (!svc) await deleteIfPresent(() => deps.objects.delete(resources.endpoints, ns, name));
        return;
      }
      // A terminating namespace takes no new content; its namespace controller removes what is there.
      if (deps.objects.get(resources.namespaces, undefined, ns)?.metadata.deletionTimestamp) return;
      const selector = svc.spec?.selector;
      if (!selector || Object.keys(selector).length === 0 || svc.spec?.type === 'ExternalName') return;

      const sel = selectorOf(selector);
      const pods = deps.objects.list(resources.pods, ns).items.filter((p) => matchesLabels(sel, p.metadata.labels));
      const publish = svc.spec?.publishNotReadyAddresses === true;
      const { groups, missing } = groupByPorts(svc, pods.flatMap((p) => asEndpoint(p, publish) ?? []));

      const missingText = missing.join('; ');
      if (missingText !== (reported.get(key) ?? '')) {
        reported.set(key, missingText);
        if (missing.length > 0) await events.record(svc, 'Warning', 'FailedToResolveTargetPort', `left out of a port: ${missingText}`);
      }

      await writeEndpoints(deps, svc, groups, publish);
      await writeSlices(deps, svc, slices, groups, max);
    },
  };
}

/** The Services of each namespace and their selectors, kept from the Services' watch: what a pod change wakes. */
class ServiceSelectors {
  readonly #byNamespace = new Map<string, Map<string, LabelSelector>>();
  /** Pod key -> the Service keys that selected it at its last event. */
  readonly #memberOf = new Map<string, string[]>();
  built = false;

  build(services: readonly Stored<Service>[]): void {
    this.built = true;
    for (const s of services) this.put(s);
  }

  put(svc: Stored<Service>): void {
    const ns = svc.metadata.namespace ?? 'default';
    let byName = this.#byNamespace.get(ns);
    if (!byName) this.#byNamespace.set(ns, byName = new Map());
    const selector = svc.spec?.selector;
    if (!selector || Object.keys(selector).length === 0 || svc.spec?.type === 'ExternalName') byName.delete(svc.metadata.name);
    else byName.set(svc.metadata.name, selectorOf(selector));
  }

  remove(key: string): void {
    const { namespace, name } = splitKey(key);
    this.#byNamespace.get(namespace ?? 'default')?.delete(name);
  }

  /** The keys of the Services selecting `pod` now, and of those that selected it at its last event. */
  servicesOf(pod: Stored<Pod>, deleted: boolean): string[] {
    const ns = pod.metadata.namespace ?? 'default';
    const podKey = objectKey(pod);
    const now = deleted ? [] : [...(this.#byNamespace.get(ns) ?? new Map<string, LabelSelector>())]
      .filter(([, sel]) => matchesLabels(sel, pod.metadata.labels)).map(([name]) => `${ns}/${name}`);
    const before = this.#memberOf.get(podKey) ?? [];
    if (now.length === 0) this.#memberOf.delete(podKey); else this.#memberOf.set(podKey, now);
    return [...new Set([...now, ...before])];
  }
}

function selectorOf(selector: Record<string, string>): LabelSelector {
  return labelSelectorFromSpec({ matchLabels: selector });
}

function serviceOfSlice(o: { metadata: { namespace?: string; labels?: Record<string, string> } }): string[] {
  const name = o.metadata.labels?.[LABEL_SERVICE_NAME];
  return name && o.metadata.labels?.[LABEL_ENDPOINTSLICE_MANAGED_BY] === ENDPOINTSLICE_CONTROLLER_NAME ? [`${o.metadata.namespace ?? 'default'}/${name}`] : [];
}

/** The pod as an endpoint, or undefined when it is none (no IP yet, finished, or terminating in Endpoints' sense is decided later). */
function asEndpoint(pod: Stored<Pod>, publishNotReady: boolean): PodEndpoint | undefined {
  const ip = pod.status?.podIP;
  if (!ip || pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') return undefined;
  const serving = publishNotReady || isPodReady(pod);
  const terminating = pod.metadata.deletionTimestamp !== undefined;
  return { pod, ip, serving, terminating, ready: publishNotReady || (serving && !terminating) };
}

/** The port a Service port reaches on `pod`: a number as is, a name through the pod's container ports. */
function resolvePort(port: ServicePort, pod: Pod): number | undefined {
  const target = port.targetPort ?? port.port;
  if (typeof target === 'number') return target;
  const protocol = port.protocol ?? 'TCP';
  for (const c of pod.spec.containers) {
    const found = c.ports?.find((p) => p.name === target && (p.protocol ?? 'TCP') === protocol);
    if (found) return found.containerPort;
  }
  return undefined;
}

function groupByPorts(svc: Service, endpoints: PodEndpoint[]): { groups: PortGroup[]; missing: string[] } {
  const servicePorts = svc.spec?.ports ?? [];
  const groups = new Map<string, PortGroup>();
  const missing: string[] = [];
  for (const e of endpoints.sort((a, b) => a.pod.metadata.name.localeCompare(b.pod.metadata.name))) {
    const ports: SlicePort[] = [];
    for (const p of servicePorts) {
      const resolved = resolvePort(p, e.pod);
      if (resolved === undefined) {
        missing.push(`pod ${e.pod.metadata.name} has no container port named "${String(p.targetPort)}" (${p.protocol ?? 'TCP'}) for service port ${p.name ? `"${p.name}"` : p.port}`);
        continue;
      }
      ports.push({ ...(p.name ? { name: p.name } : {}), port: resolved, protocol: p.protocol ?? 'TCP', ...(p.appProtocol ? { appProtocol: p.appProtocol } : {}) });
    }
    if (servicePorts.length > 0 && ports.length === 0) continue;
    const key = JSON.stringify(ports);
    let g = groups.get(key);
    if (!g) groups.set(key, g = { ports, endpoints: [] });
    g.endpoints.push(e);
  }
  return { groups: [...groups.values()], missing };
}

function podRef(pod: Stored<Pod>): ObjectReference {
  return { kind: 'Pod', namespace: pod.metadata.namespace ?? 'default', name: pod.metadata.name, uid: pod.metadata.uid ?? '' };
}

/** hostname is published when the pod names itself into this Service's subdomain, as in Kubernetes. */
function hostnameFor(svc: Service, pod: Pod): string | undefined {
  return pod.spec.hostname && pod.spec.subdomain === svc.metadata.name ? pod.spec.hostname : undefined;
}

async function writeEndpoints(deps: ControllerDeps, svc: Stored<Service>, groups: PortGroup[], publish: boolean): Promise<void> {
  const ns = svc.metadata.namespace ?? 'default';
  const address = (e: PodEndpoint): EndpointAddress => {
    const hostname = hostnameFor(svc, e.pod);
    return { ip: e.ip, ...(hostname ? { hostname } : {}), ...(e.pod.spec.nodeName ? { nodeName: e.pod.spec.nodeName } : {}), targetRef: podRef(e.pod) };
  };
  const subsets: EndpointSubset[] = groups.flatMap((g) => {
    const shown = g.endpoints.filter((e) => publish || !e.terminating);
    const ready = shown.filter((e) => e.ready).map(address);
    const notReady = shown.filter((e) => !e.ready).map(address);
    if (ready.length === 0 && notReady.length === 0) return [];
    return [{
      ...(ready.length > 0 ? { addresses: ready } : {}), ...(notReady.length > 0 ? { notReadyAddresses: notReady } : {}),
      ports: g.ports.map((p): EndpointPort => ({ ...p, port: p.port ?? 0 })),
    }];
  });
  const labels = { ...(svc.metadata.labels ?? {}) };
  const current = deps.objects.get(resources.endpoints, ns, svc.metadata.name);
  if (current && sameContent(current.subsets ?? [], subsets) && sameContent(current.metadata.labels ?? {}, labels)) return;
  const body: Endpoints = {
    apiVersion: 'v1', kind: 'Endpoints',
    metadata: {
      name: svc.metadata.name, namespace: ns, ...(Object.keys(labels).length > 0 ? { labels } : {}),
      ...(current ? { resourceVersion: current.metadata.resourceVersion } : {}),
    },
    ...(subsets.length > 0 ? { subsets } : {}),
  };
  if (current) await deps.objects.replace(resources.endpoints, ns, svc.metadata.name, body);
  else await deps.objects.create(resources.endpoints, ns, body);
}

function sliceEndpoint(svc: Service, e: PodEndpoint, zoneOf: (node: string) => string | undefined): SliceEndpoint {
  const hostname = hostnameFor(svc, e.pod);
  const node = e.pod.spec.nodeName;
  const zone = node ? zoneOf(node) : undefined;
  return {
    addresses: [e.ip],
    conditions: { ready: e.ready, serving: e.serving, terminating: e.terminating },
    ...(hostname ? { hostname } : {}),
    ...(node ? { nodeName: node } : {}),
    ...(zone ? { zone } : {}),
    targetRef: podRef(e.pod),
  };
}

async function writeSlices(deps: ControllerDeps, svc: Stored<Service>, existing: Stored<EndpointSlice>[], groups: PortGroup[], max: number): Promise<void> {
  const ns = svc.metadata.namespace ?? 'default';
  const zones = new Map<string, string | undefined>();
  const zoneOf = (node: string) => {
    if (!zones.has(node)) zones.set(node, deps.objects.get(resources.nodes, undefined, node)?.metadata.labels?.[LABEL_ZONE]);
    return zones.get(node);
  };
  /** What each slice should hold: existing ones by name, new ones (no name yet) after. */
  const plan: { slice?: Stored<EndpointSlice>; ports: SlicePort[]; endpoints: SliceEndpoint[] }[] = [];
  const unused = [...existing].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  for (const g of groups) {
    const key = JSON.stringify(g.ports);
    const desired = new Map(g.endpoints.map((e) => [e.ip, sliceEndpoint(svc, e, zoneOf)]));
    const mine = unused.filter((s) => JSON.stringify(s.ports ?? []) === key);
    for (const s of mine) unused.splice(unused.indexOf(s), 1);
    const placed: { slice?: Stored<EndpointSlice>; ports: SlicePort[]; endpoints: SliceEndpoint[] }[] = mine.map((s) => {
      const kept = s.endpoints.flatMap((e) => {
        const want = desired.get(e.addresses[0] ?? '');
        if (!want) return [];
        desired.delete(e.addresses[0] ?? '');
        return [want];
      });
      return { slice: s, ports: g.ports, endpoints: kept };
    });
    const rest = [...desired.values()];
    for (const p of placed) while (p.endpoints.length < max && rest.length > 0) p.endpoints.push(rest.shift()!);
    while (rest.length > 0) placed.push({ ports: g.ports, endpoints: rest.splice(0, max) });
    plan.push(...placed.filter((p) => p.endpoints.length > 0));
  }
  if (plan.length === 0) {
    // Kubernetes keeps one empty slice for a Service with no endpoints.
    const placeholder = existing.find((s) => s.endpoints.length === 0 && (s.ports ?? []).length === 0) ?? unused[0];
    if (placeholder) unused.splice(unused.indexOf(placeholder), 1);
    plan.push({ ...(placeholder ? { slice: placeholder } : {}), ports: [], endpoints: [] });
  }
  for (const p of plan) {
    const labels = { [LABEL_SERVICE_NAME]: svc.metadata.name, [LABEL_ENDPOINTSLICE_MANAGED_BY]: ENDPOINTSLICE_CONTROLLER_NAME };
    const body: EndpointSlice = {
      apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
      metadata: {
        ...(p.slice ? { name: p.slice.metadata.name, resourceVersion: p.slice.metadata.resourceVersion } : { generateName: `${svc.metadata.name}-` }),
        namespace: ns, labels, ownerReferences: [controllerRefTo(svc)],
      },
      addressType: 'IPv4',
      endpoints: p.endpoints,
      ...(p.ports.length > 0 ? { ports: p.ports } : {}),
    };
    if (!p.slice) await deps.objects.create(resources.endpointSlices, ns, body);
    else if (!sameContent({ e: p.slice.endpoints, p: p.slice.ports ?? [], l: p.slice.metadata.labels, o: p.slice.metadata.ownerReferences }, { e: body.endpoints, p: body.ports ?? [], l: labels, o: body.metadata.ownerReferences })) {
      await deps.objects.replace(resources.endpointSlices, ns, p.slice.metadata.name, body);
    }
  }
  for (const s of unused) await deleteIfPresent(() => deps.objects.delete(resources.endpointSlices, ns, s.metadata.name));
}

async function deleteIfPresent(remove: () => Promise<unknown>): Promise<void> {
  try {
    await remove();
  } catch (err) {
    if (!(err instanceof StoreError && err.failure.code === 404)) throw err;
  }
}
