// The one definition of the table columns kubectl shows for each kind (kube's pkg/printers/internalversion):
// the API server's Table answers (Accept ...;as=Table;g=meta.k8s.io) and the flotilla CLI's tables both print
// from it, so `kubectl get` and `flotilla get` show the same columns and cells.
import { ANNOTATION_DEFAULT_STORAGE_CLASS, ANNOTATION_EVICTION_AT, ANNOTATION_ASSIGNED_GPUS, LABEL_ARCH, LABEL_NODE_ROLE_PREFIX } from './well-known.js';
import { isKind } from './resources.js';
import type { ResourceInfo } from './resources.js';
import type { KubeObject } from './meta.js';
import type {
  Container, Endpoints, Ingress, IngressClass, Kind, Node, ObjectsByKind, PersistentVolumeAccessMode, Pod, ReplicaSet, Service,
} from './objects.js';

/** A column: its header as kubectl prints it, and the cell of an object at time `now` (ms). */
export type Column<T = KubeObject> = [header: string, value: (o: T, now: number) => string];

/**
 * kubectl's age of a timestamp (apimachinery's duration.HumanDuration): 45s, 5m12s, 12m, 5h30m, 20h, 3d4h, 30d,
 * 2y10d; "<unknown>" without a timestamp, "<invalid>" for one more than a second in the future.
 */
export function age(timestamp: string | undefined, now: number): string {
  if (!timestamp) return '<unknown>';
  return humanDuration(now - Date.parse(timestamp));
}

export function humanDuration(ms: number): string {
  const seconds = Math.trunc(ms / 1000);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 120) return `${seconds}s`;
  const parts = (big: number, unit: string, small: number, smallUnit: string) => (small === 0 ? `${big}${unit}` : `${big}${unit}${small}${smallUnit}`);
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) return parts(minutes, 'm', seconds % 60, 's');
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) return parts(hours, 'h', minutes % 60, 'm');
  if (hours < 48) return `${hours}h`;
  const days = Math.floor(hours / 24);
  if (hours < 24 * 8) return parts(days, 'd', hours % 24, 'h');
  if (hours < 24 * 365 * 2) return `${days}d`;
  const years = Math.floor(days / 365);
  if (hours < 24 * 365 * 8) return parts(years, 'y', days % 365, 'd');
  return `${years}y`;
}

export function podStatusText(p: Pick<Pod, 'metadata' | 'spec' | 'status'>): string {
  if (p.metadata.deletionTimestamp) return 'Terminating';
  const init = initStatusText(p);
  if (init) return init;
  for (const cs of p.status?.containerStatuses ?? []) {
    if (cs.state?.waiting?.reason && cs.state.waiting.reason !== 'PodInitializing') return cs.state.waiting.reason;
    if (cs.state?.terminated?.reason && p.status?.phase !== 'Succeeded') return cs.state.terminated.reason;
  }
  if (p.status?.reason) return p.status.reason;
  return p.status?.phase ?? 'Pending';
}

/** kubectl's reading of the first init container that has not succeeded: Init:N/M, Init:REASON; none when all did. */
function initStatusText(p: Pick<Pod, 'spec' | 'status'>): string | undefined {
  const total = (p.spec?.initContainers ?? []).length;
  for (const [i, cs] of (p.status?.initContainerStatuses ?? []).entries()) {
    const terminated = cs.state?.terminated;
    if (terminated && terminated.exitCode === 0) continue;
    if (terminated) return terminated.reason ? `Init:${terminated.reason}` : `Init:ExitCode:${terminated.exitCode}`;
    const waiting = cs.state?.waiting?.reason;
    if (waiting && waiting !== 'PodInitializing') return `Init:${waiting}`;
    return `Init:${i}/${total}`;
  }
  return undefined;
}

function podReady(p: Pod): string {
  const total = (p.spec?.containers ?? []).length;
  const ready = (p.status?.containerStatuses ?? []).filter((c) => c.ready).length;
  return `${ready}/${total}`;
}

/** Ready / NotReady, cordoned, and for an unreachable node the countdown to moving its pods away. */
export function nodeStatusText(n: Node, now = Date.now()): string {
  const ready = (n.status?.conditions ?? []).find((c) => c.type === 'Ready');
  let s = ready?.status === 'True' ? 'Ready' : ready ? 'NotReady' : 'Unknown';
  if (n.spec?.unschedulable) s += ',SchedulingDisabled';
  const evictAt = n.metadata.annotations?.[ANNOTATION_EVICTION_AT];
  if (evictAt && s.startsWith('NotReady')) {
    const left = Math.ceil((Date.parse(evictAt) - now) / 1000);
    s += left > 0 ? ` (pods move in ${left}s)` : ' (pods moved)';
  }
  return s;
}

const name: Column = ['NAME', (o) => o.metadata.name ?? ''];
const ageCol: Column = ['AGE', (o, now) => age(o.metadata.creationTimestamp, now)];
const count = (v: unknown): string => String(typeof v === 'number' ? v : 0);

/**
 * A kind's columns, typed by the kind, for the table of its resource: an object of another kind (which its
 * resource never serves) shows empty cells.
 */
function of<K extends Kind>(kind: K, columns: Column<ObjectsByKind[K]>[]): Column[] {
  return columns.map(([header, value]) => [header, (o, now) => (isKind(o, kind) ? value(o, now) : '')]);
}

/** Columns per resource plural: [normal, extra columns for -o wide]. */
const tables: Record<string, [Column[], Column[]]> = {
  pods: [of('Pod', [name, ['READY', podReady], ['STATUS', podStatusText], ['RESTARTS', (p) => String([...(p.status?.initContainerStatuses ?? []), ...(p.status?.containerStatuses ?? [])].reduce((n, c) => n + (c.restartCount ?? 0), 0))], ageCol]),
    // kubectl's wide columns (Flotilla serves no readiness gates: always <none>), then the GPUs the scheduler gave.
    of('Pod', [['IP', (p) => p.status?.podIP || '<none>'], ['NODE', (p) => p.spec?.nodeName || '<none>'], ['NOMINATED NODE', (p) => p.status?.nominatedNodeName || '<none>'],
      ['READINESS GATES', () => '<none>'], ['GPUS', (p) => p.metadata.annotations?.[ANNOTATION_ASSIGNED_GPUS] ?? '<none>']])],
  deployments: [of('Deployment', [name, ['READY', (d) => `${d.status?.readyReplicas ?? 0}/${d.spec?.replicas ?? 0}`], ['UP-TO-DATE', (d) => count(d.status?.updatedReplicas)], ['AVAILABLE', (d) => count(d.status?.availableReplicas)], ageCol]),
    of('Deployment', [['CONTAINERS', (d) => containers(d).map((c) => c.name).join(',')], ['IMAGES', (d) => containers(d).map((c) => c.image).join(',')], ['SELECTOR', (d) => selector(d)]])],
  replicasets: [of('ReplicaSet', [name, ['DESIRED', (r) => count(r.spec?.replicas)], ['CURRENT', (r) => count(r.status?.replicas)], ['READY', (r) => count(r.status?.readyReplicas)], ageCol]),
    of('ReplicaSet', [['CONTAINERS', (d) => containers(d).map((c) => c.name).join(',')], ['IMAGES', (d) => containers(d).map((c) => c.image).join(',')], ['SELECTOR', (d) => selector(d)]])],
  nodes: [of('Node', [name, ['STATUS', (n, now) => nodeStatusText(n, now)], ['ROLES', (n) => Object.keys(n.metadata.labels ?? {}).filter((k) => k.startsWith(LABEL_NODE_ROLE_PREFIX)).map((k) => k.slice(LABEL_NODE_ROLE_PREFIX.length)).join(',') || '<none>'], ageCol, ['VERSION', (n) => n.status?.nodeInfo?.kubeletVersion ?? '']]),
    of('Node', [['INTERNAL-IP', (n) => (n.status?.addresses ?? []).find((a) => a.type === 'InternalIP')?.address ?? '<none>'], ['ARCH', (n) => n.metadata.labels?.[LABEL_ARCH] ?? ''], ['OS-IMAGE', (n) => n.status?.nodeInfo?.osImage ?? ''], ['KERNEL-VERSION', (n) => n.status?.nodeInfo?.kernelVersion ?? ''], ['GPUS', (n) => gpuSummary(n)]])],
  services: [of('Service', [name, ['TYPE', (s) => s.spec?.type ?? 'ClusterIP'], ['CLUSTER-IP', (s) => s.spec?.clusterIP || '<none>'], ['EXTERNAL-IP', (s) => serviceExternalIP(s, false)], ['PORT(S)', (s) => servicePorts(s)], ageCol]),
    of('Service', [['SELECTOR', (s) => Object.entries(s.spec?.selector ?? {}).map(([k, v]) => `${k}=${v}`).join(',') || '<none>']])],
  endpoints: [of('Endpoints', [name, ['ENDPOINTS', (e) => endpointsText(e)], ageCol]), []],
  endpointslices: [of('EndpointSlice', [name, ['ADDRESSTYPE', (e) => e.addressType], ['PORTS', (e) => sliceList((e.ports ?? []).map((p) => (p.port !== undefined ? String(p.port) : p.name ?? '*')))],
    ['ENDPOINTS', (e) => sliceList(e.endpoints.flatMap((x) => x.addresses))], ageCol]), []],
  configmaps: [of('ConfigMap', [name, ['DATA', (c) => String(Object.keys(c.data ?? {}).length + Object.keys(c.binaryData ?? {}).length)], ageCol]), []],
  secrets: [of('Secret', [name, ['TYPE', (s) => s.type ?? 'Opaque'], ['DATA', (s) => String(Object.keys({ ...(s.data ?? {}), ...(s.stringData ?? {}) }).length)], ageCol]), []],
  namespaces: [of('Namespace', [name, ['STATUS', (n) => n.status?.phase ?? 'Active'], ageCol]), []],
  runtimeclasses: [of('RuntimeClass', [name, ['HANDLER', (r) => r.handler ?? ''], ageCol]), []],
  priorityclasses: [of('PriorityClass', [name, ['VALUE', (p) => String(p.value ?? 0)], ['GLOBAL-DEFAULT', (p) => String(p.globalDefault ?? false)], ageCol]), []],
  // kubectl's wide SELECTOR is the job template's selector, which validation refuses (it is generated): always <none>.
  cronjobs: [of('CronJob', [name, ['SCHEDULE', (c) => c.spec.schedule], ['TIMEZONE', (c) => c.spec.timeZone ?? '<none>'], ['SUSPEND', (c) => (c.spec.suspend === undefined ? '<unset>' : c.spec.suspend ? 'True' : 'False')],
    ['ACTIVE', (c) => String((c.status?.active ?? []).length)], ['LAST SCHEDULE', (c, now) => (c.status?.lastScheduleTime ? age(c.status.lastScheduleTime, now) : '<none>')], ageCol]),
    of('CronJob', [['CONTAINERS', (c) => c.spec.jobTemplate.spec.template.spec.containers.map((x) => x.name).join(',')], ['IMAGES', (c) => c.spec.jobTemplate.spec.template.spec.containers.map((x) => x.image).join(',')],
      ['SELECTOR', () => '<none>']])],
  addresspools: [of('AddressPool', [name, ['AUTO ASSIGN', (p) => String(p.spec.autoAssign ?? true)], ['ADDRESSES', (p) => p.spec.addresses.join(',')],
    ['ASSIGNED', (p) => String((p.status?.assignedIPv4 ?? 0) + (p.status?.assignedIPv6 ?? 0))], ageCol]), []],
  ingresses: [of('Ingress', [name, ['CLASS', (i) => i.spec.ingressClassName ?? '<none>'], ['HOSTS', (i) => ingressHosts(i)], ['ADDRESS', (i) => ingressAddress(i)],
    ['PORTS', (i) => ((i.spec.tls ?? []).length > 0 ? '80, 443' : '80')], ageCol]), []],
  ingressclasses: [of('IngressClass', [name, ['CONTROLLER', (c) => c.spec.controller], ['PARAMETERS', (c) => ingressClassParameters(c)], ageCol]), []],
  persistentvolumes: [of('PersistentVolume', [name, ['CAPACITY', (v) => String(v.spec.capacity?.storage ?? '')], ['ACCESS MODES', (v) => accessModesText(v.spec.accessModes)],
    ['RECLAIM POLICY', (v) => v.spec.persistentVolumeReclaimPolicy ?? ''], ['STATUS', (v) => (v.metadata.deletionTimestamp ? 'Terminating' : v.status?.phase ?? '')],
    ['CLAIM', (v) => (v.spec.claimRef ? `${v.spec.claimRef.namespace ?? ''}/${v.spec.claimRef.name ?? ''}` : '')], ['STORAGECLASS', (v) => v.spec.storageClassName ?? ''],
    ['VOLUMEATTRIBUTESCLASS', (v) => v.spec.volumeAttributesClassName || '<unset>'], ['REASON', (v) => v.status?.reason ?? ''], ageCol]),
  of('PersistentVolume', [['VOLUMEMODE', (v) => v.spec.volumeMode ?? '']])],
  persistentvolumeclaims: [of('PersistentVolumeClaim', [name, ['STATUS', (c) => (c.metadata.deletionTimestamp ? 'Terminating' : c.status?.phase ?? '')], ['VOLUME', (c) => c.spec.volumeName ?? ''],
    // kubectl shows what the claim got, so only once it names its volume.
    ['CAPACITY', (c) => (c.spec.volumeName ? String(c.status?.capacity?.storage ?? '') : '')], ['ACCESS MODES', (c) => (c.spec.volumeName ? accessModesText(c.status?.accessModes) : '')],
    ['STORAGECLASS', (c) => c.spec.storageClassName ?? ''], ['VOLUMEATTRIBUTESCLASS', (c) => c.spec.volumeAttributesClassName || '<unset>'], ageCol]),
  of('PersistentVolumeClaim', [['VOLUMEMODE', (c) => c.spec.volumeMode ?? '']])],
  storageclasses: [of('StorageClass', [['NAME', (c) => `${c.metadata.name}${c.metadata.annotations?.[ANNOTATION_DEFAULT_STORAGE_CLASS] === 'true' ? ' (default)' : ''}`],
    ['PROVISIONER', (c) => c.provisioner], ['RECLAIMPOLICY', (c) => c.reclaimPolicy ?? 'Delete'], ['VOLUMEBINDINGMODE', (c) => c.volumeBindingMode ?? 'Immediate'],
    ['ALLOWVOLUMEEXPANSION', (c) => String(c.allowVolumeExpansion ?? false)], ageCol]), []],
  events: [of('Event', [['LAST SEEN', (e, now) => age(e.lastTimestamp ?? e.eventTime ?? e.metadata.creationTimestamp, now)], ['TYPE', (e) => e.type ?? ''], ['REASON', (e) => e.reason ?? ''], ['OBJECT', (e) => `${String(e.involvedObject?.kind ?? '').toLowerCase()}/${e.involvedObject?.name ?? ''}`], ['MESSAGE', (e) => e.message ?? '']]), []],
};

/** kubectl's HOSTS of an Ingress: the first three rule hosts, "+ N more..." beyond, "*" when no rule names one. */
export function ingressHosts(i: Ingress): string {
  const rules = i.spec.rules ?? [];
  const hosts = rules.slice(0, 3).map((r) => r.host ?? '').filter(Boolean);
  if (hosts.length === 0) return '*';
  return rules.length > 3 ? `${hosts.join(',')} + ${rules.length - 3} more...` : hosts.join(',');
}

/** kubectl's ADDRESS of an Ingress: its load-balancer IPs or hostnames, cut to 16 characters. */
export function ingressAddress(i: Ingress): string {
  const all = (i.status?.loadBalancer?.ingress ?? []).map((x) => x.ip || x.hostname || '').filter(Boolean).join(',');
  return all.length > 16 ? `${all.slice(0, 13)}...` : all;
}

/** kubectl's PARAMETERS of an IngressClass: KIND[.APIGROUP]/NAME, or <none>. */
export function ingressClassParameters(c: IngressClass): string {
  const p = c.spec.parameters;
  return p ? `${p.kind}${p.apiGroup ? `.${p.apiGroup}` : ''}/${p.name}` : '<none>';
}

const ACCESS_MODE_SHORT: Record<PersistentVolumeAccessMode, string> = { ReadWriteOnce: 'RWO', ReadOnlyMany: 'ROX', ReadWriteMany: 'RWX', ReadWriteOncePod: 'RWOP' };

/** kubectl's ACCESS MODES: RWO,ROX,RWX,RWOP in that order, each once. */
export function accessModesText(modes: readonly PersistentVolumeAccessMode[] | undefined): string {
  return (Object.keys(ACCESS_MODE_SHORT) as PersistentVolumeAccessMode[]).filter((m) => modes?.includes(m)).map((m) => ACCESS_MODE_SHORT[m]).join(',');
}

/** kubectl's PORT(S): 80/TCP, 80:30191/TCP for a NodePort, comma-separated; <none> without ports. */
export function servicePorts(s: Service): string {
  return (s.spec?.ports ?? []).map((p) => `${p.port}${p.nodePort ? `:${p.nodePort}` : ''}/${p.protocol ?? 'TCP'}`).join(',') || '<none>';
}

/** kubectl's EXTERNAL-IP: externalIPs, a LoadBalancer's ingress (<pending> until it has one), an ExternalName's name. */
export function serviceExternalIP(s: Service, wide: boolean): string {
  const external = s.spec?.externalIPs ?? [];
  switch (s.spec?.type) {
    case 'LoadBalancer': {
      let lb = (s.status?.loadBalancer?.ingress ?? []).map((i) => i.ip || i.hostname || '').filter(Boolean).join(',');
      if (!wide && lb.length > 16) lb = `${lb.slice(0, 13)}...`;
      if (external.length > 0) return [...(lb ? lb.split(',') : []), ...external].join(',');
      return lb || '<pending>';
    }
    case 'ExternalName': return s.spec.externalName ?? '';
    default: return external.length > 0 ? external.join(',') : '<none>';
  }
}

/** kubectl's "a,b,c + N more..." of the first three. */
function listWithMore(list: string[], count: number, empty: string): string {
  const shown = list.slice(0, 3).join(',');
  if (count > 3) return `${shown} + ${count - 3} more...`;
  return shown || empty;
}

/** kubectl's ENDPOINTS of an Endpoints: ready IP:port pairs (or IPs for a subset without ports); `portName` limits them to one port. */
export function endpointsText(e: Endpoints, portName?: string): string {
  if ((e.subsets ?? []).length === 0) return '<none>';
  const list: string[] = [];
  for (const ss of e.subsets ?? []) {
    const addresses = ss.addresses ?? [];
    if ((ss.ports ?? []).length === 0) { list.push(...addresses.map((a) => a.ip)); continue; }
    for (const p of ss.ports ?? []) {
      if (portName !== undefined && (p.name ?? '') !== portName) continue;
      list.push(...addresses.map((a) => (a.ip.includes(':') ? `[${a.ip}]:${p.port}` : `${a.ip}:${p.port}`)));
    }
  }
  return listWithMore(list, list.length, '');
}

/** kubectl's PORTS and ENDPOINTS of an EndpointSlice. */
function sliceList(list: string[]): string {
  return listWithMore(list, list.length, '<unset>');
}

function containers(o: Pick<ReplicaSet, 'spec'>): Container[] {
  return o.spec.template?.spec.containers ?? [];
}

function selector(o: Pick<ReplicaSet, 'spec'>): string {
  return Object.entries(o.spec.selector.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`).join(',');
}

function gpuSummary(n: Node): string {
  const gpus = n.status?.gpus ?? [];
  if (gpus.length === 0) return '<none>';
  const byModel = new Map<string, number>();
  for (const g of gpus) byModel.set(`${g.model} ${g.memory}`, (byModel.get(`${g.model} ${g.memory}`) ?? 0) + 1);
  return [...byModel].map(([m, k]) => `${k}x ${m}`).join(', ');
}

/** The NAME and AGE columns of a kind without its own (kube's default table). */
const defaultColumns: [Column[], Column[]] = [[name, ageCol], []];

/** The columns of `resource`'s table: its normal ones, then with `wide` those -o wide adds. */
export function tableColumns(resource: ResourceInfo, wide: boolean): Column[] {
  const [normal, extra] = tables[resource.plural] ?? defaultColumns;
  return wide ? [...normal, ...extra] : normal;
}

/** What a Table row carries of its object (kube's includeObject): nothing, its metadata (the default), or all of it. */
export type IncludeObject = 'None' | 'Metadata' | 'Object';

/** A column of meta.k8s.io/v1 Table: priority 0 is always shown, 1 only by -o wide. */
export interface TableColumnDefinition { name: string; type: string; format: string; description: string; priority: number }

/**
 * A meta.k8s.io/v1 Table of objects of one resource, as kube-apiserver answers a get or list asked for as=Table:
 * the normal columns at priority 0, the wide ones at priority 1 (kubectl shows them with -o wide), NAME with
 * format "name" (kubectl makes it TYPE/NAME when one get prints several types).
 */
export function objectTable(resource: ResourceInfo, items: readonly KubeObject[], o: { now: number; includeObject: IncludeObject; resourceVersion?: string; continue?: string }): Record<string, unknown> {
  const [normal, extra] = tables[resource.plural] ?? defaultColumns;
  const columns = [...normal, ...extra];
  const columnDefinitions: TableColumnDefinition[] = columns.map(([header], i) => ({
    name: header, type: 'string', format: header === 'NAME' ? 'name' : '', description: '', priority: i < normal.length ? 0 : 1,
  }));
  const rows = items.map((item) => ({
    cells: columns.map(([, value]) => value(item, o.now)),
    ...(o.includeObject === 'Object' ? { object: item } : {}),
    ...(o.includeObject === 'Metadata' ? { object: { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: item.metadata } } : {}),
  }));
  const metadata = { ...(o.resourceVersion !== undefined ? { resourceVersion: o.resourceVersion } : {}), ...(o.continue ? { continue: o.continue } : {}) };
  return { kind: 'Table', apiVersion: 'meta.k8s.io/v1', metadata, columnDefinitions, rows };
}
