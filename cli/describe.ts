import { stringify as toYaml } from 'yaml';
import { ANNOTATION_ASSIGNED_GPUS, age, endpointsText, formatRfc1123z, isKind, nodeStatusText, podStatusText } from '../api-types/index.js';
import type { Condition, Container, ContainerStateTerminated, ContainerStatus, CronJob, Deployment, Endpoints, Event, KubeObject, Node, Pod, PodTemplateSpec, Service, Ingress, IngressBackend } from '../api-types/index.js';
import { renderTable } from './printers.js';

/** What describe shows beside an object: a Service's Endpoints. */
export interface Related {
  endpoints?: Endpoints;
}

/** kubectl-style `describe`: common metadata, a section per kind, then the object's Events. */
export function describeObject(o: KubeObject, events: readonly Event[], now = Date.now(), related: Related = {}): string {
  const lines: string[] = [];
  const field = (k: string, v: unknown, indent = 0) => lines.push(`${' '.repeat(indent)}${`${k}:`.padEnd(Math.max(20 - indent, k.length + 2))}${v === undefined || v === '' ? '<none>' : String(v)}`);
  const map = (k: string, m: Record<string, string> | undefined) => {
    const entries = Object.entries(m ?? {});
    if (entries.length === 0) return field(k, '<none>');
    entries.forEach(([kk, vv], i) => lines.push(`${(i === 0 ? `${k}:` : '').padEnd(20)}${kk}=${vv}`));
  };
  field('Name', o.metadata.name);
  if (o.metadata.namespace) field('Namespace', o.metadata.namespace);
  map('Labels', o.metadata.labels);
  map('Annotations', o.metadata.annotations);
  field('CreationTimestamp', o.metadata.creationTimestamp);
  if (isKind(o, 'Pod')) describePod(o, field, lines);
  else if (isKind(o, 'Deployment')) describeDeployment(o, field, lines);
  else if (isKind(o, 'Node')) describeNode(o, field, lines);
  else if (isKind(o, 'Service')) describeService(o, related.endpoints, field, map);
  else if (isKind(o, 'CronJob')) describeCronJob(o, field, lines);
  else if (isKind(o, 'Ingress')) describeIngress(o, field, lines);
  else {
    for (const key of ['spec', 'data', 'status'] as const) {
      if (o[key] === undefined) continue;
      lines.push(`${key[0]!.toUpperCase()}${key.slice(1)}:`);
      const value = key === 'data' && isKind(o, 'Secret') ? Object.fromEntries(Object.keys(o.data ?? {}).map((k) => [k, '<hidden>'])) : o[key];
      lines.push(...toYaml(value).trimEnd().split('\n').map((l) => `  ${l}`));
    }
  }
  lines.push('Events:');
  if (events.length === 0) lines.push('  <none>');
  else {
    const rows = events.map((e) => [e.type ?? '', e.reason ?? '', age(e.lastTimestamp ?? e.metadata.creationTimestamp, now), e.source?.component ?? '', e.message ?? '']);
    lines.push(...renderTable(['Type', 'Reason', 'Age', 'From', 'Message'], rows).trimEnd().split('\n').map((l) => `  ${l}`));
  }
  return `${lines.join('\n')}\n`;
}

type Field = (k: string, v: unknown, indent?: number) => void;

function describePod(p: Pod, field: Field, lines: string[]): void {
  field('Node', p.spec?.nodeName);
  field('Status', podStatusText(p));
  field('IP', p.status?.podIP);
  field('GPUs', p.metadata.annotations?.[ANNOTATION_ASSIGNED_GPUS]);
  if (p.spec.initContainers?.length) {
    lines.push('Init Containers:');
    describeContainers(p.spec.initContainers, p.status?.initContainerStatuses, field, lines);
  }
  lines.push('Containers:');
  describeContainers(p.spec?.containers ?? [], p.status?.containerStatuses, field, lines);
  conditions(p.status?.conditions, lines);
}

/** The three states of a container; at most one is set. */
const CONTAINER_STATES = ['waiting', 'running', 'terminated'] as const;

function describeContainers(containers: readonly Container[], statuses: readonly ContainerStatus[] | undefined, field: Field, lines: string[]): void {
  for (const c of containers) {
    const cs = (statuses ?? []).find((s) => s.name === c.name);
    lines.push(`  ${c.name}:`);
    field('Image', c.image, 4);
    if (c.command) field('Command', c.command.join(' '), 4);
    if (c.args) field('Args', c.args.join(' '), 4);
    const states = cs?.state ?? {};
    const state = CONTAINER_STATES.find((k) => states[k] !== undefined);
    const detail: Partial<ContainerStateTerminated> | undefined = state && states[state];
    field('State', state ? `${state[0]!.toUpperCase()}${state.slice(1)}${detail?.reason ? ` (${detail.reason})` : ''}${detail?.exitCode !== undefined ? ` exit code ${detail.exitCode}` : ''}` : 'Waiting', 4);
    if (detail?.message) field('Message', detail.message, 4);
    field('Ready', cs?.ready ? 'True' : 'False', 4);
    field('Restart Count', cs?.restartCount ?? 0, 4);
    const limits = Object.entries(c.resources?.limits ?? {}).map(([k, v]) => `${k}=${v}`).join(', ');
    if (limits) field('Limits', limits, 4);
    const requests = Object.entries(c.resources?.requests ?? {}).map(([k, v]) => `${k}=${v}`).join(', ');
    if (requests) field('Requests', requests, 4);
  }
}

function describeDeployment(d: Deployment, field: Field, lines: string[]): void {
  const s = d.status ?? {};
  field('Selector', Object.entries(d.spec?.selector?.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`).join(','));
  field('Replicas', `${d.spec?.replicas ?? 0} desired | ${s.updatedReplicas ?? 0} updated | ${s.replicas ?? 0} total | ${s.availableReplicas ?? 0} available | ${s.unavailableReplicas ?? 0} unavailable`);
  field('StrategyType', d.spec?.strategy?.type);
  const ru = d.spec?.strategy?.rollingUpdate;
  if (ru) field('RollingUpdateStrategy', `${ru.maxUnavailable ?? '25%'} max unavailable, ${ru.maxSurge ?? '25%'} max surge`);
  describePodTemplate(d.spec?.template, field, lines);
  conditions(s.conditions, lines);
}

function describePodTemplate(template: PodTemplateSpec | undefined, field: Field, lines: string[]): void {
  lines.push('Pod Template:');
  for (const c of template?.spec?.containers ?? []) {
    lines.push(`  ${c.name}:`);
    field('Image', c.image, 4);
    const ports = (c.ports ?? []).map((p) => `${p.containerPort}/${p.protocol ?? 'TCP'}`).join(', ');
    if (ports) field('Ports', ports, 4);
  }
}

/** kubectl's CronJob section: the schedule and its policies, the job template, the last run and the active Jobs. */
function describeCronJob(cj: CronJob, field: Field, lines: string[]): void {
  const unset = (v: number | undefined, unit = '') => (v === undefined ? '<unset>' : `${v}${unit}`);
  const spec = cj.spec;
  field('Schedule', spec.schedule);
  field('Time Zone', spec.timeZone ?? '<unset>');
  field('Concurrency Policy', spec.concurrencyPolicy);
  field('Suspend', spec.suspend === undefined ? '<unset>' : spec.suspend ? 'True' : 'False');
  field('Successful Job History Limit', unset(spec.successfulJobsHistoryLimit));
  field('Failed Job History Limit', unset(spec.failedJobsHistoryLimit));
  field('Starting Deadline Seconds', unset(spec.startingDeadlineSeconds, 's'));
  const job = spec.jobTemplate.spec;
  field('Selector', '<unset>');
  field('Parallelism', unset(job.parallelism));
  field('Completions', unset(job.completions));
  if (job.activeDeadlineSeconds !== undefined) field('Active Deadline Seconds', `${job.activeDeadlineSeconds}s`);
  describePodTemplate(job.template, field, lines);
  const last = cj.status?.lastScheduleTime;
  field('Last Schedule Time', last ? formatRfc1123z(Date.parse(last)) : '<unset>');
  field('Active Jobs', (cj.status?.active ?? []).map((r) => r.name).join(', '));
}

function describeNode(n: Node, field: Field, lines: string[]): void {
  field('Status', nodeStatusText(n));
  field('Unschedulable', n.spec?.unschedulable ? 'true' : 'false');
  const taints = (n.spec?.taints ?? []).map((t) => `${t.key}${t.value ? `=${t.value}` : ''}:${t.effect}`).join(', ');
  field('Taints', taints);
  lines.push('Addresses:');
  for (const a of n.status?.addresses ?? []) field(a.type, a.address, 2);
  for (const key of ['capacity', 'allocatable'] as const) {
    lines.push(`${key[0]!.toUpperCase()}${key.slice(1)}:`);
    for (const [k, v] of Object.entries(n.status?.[key] ?? {})) field(k, v, 2);
  }
  lines.push('GPUs:');
  const gpus = n.status?.gpus ?? [];
  if (gpus.length === 0) lines.push('  <none>');
  for (const g of gpus) lines.push(`  ${g.index}: ${g.vendor} ${g.model} ${g.memory} ${g.health} ${g.uuid}`);
  const info = n.status?.nodeInfo ?? {};
  lines.push('System Info:');
  for (const [k, v] of Object.entries(info)) field(k, v, 2);
  conditions(n.status?.conditions, lines);
}

/** kubectl's service section: addresses, then Port / TargetPort / NodePort / Endpoints for each port. */
function describeService(svc: Service, endpoints: Endpoints | undefined, field: Field, map: (k: string, m: Record<string, string> | undefined) => void): void {
  const spec = svc.spec ?? {};
  map('Selector', spec.selector);
  field('Type', spec.type ?? 'ClusterIP');
  if (spec.ipFamilyPolicy) field('IP Family Policy', spec.ipFamilyPolicy);
  if (spec.ipFamilies) field('IP Families', spec.ipFamilies.join(','));
  field('IP', spec.clusterIP);
  field('IPs', (spec.clusterIPs ?? []).join(','));
  if (spec.externalIPs?.length) field('External IPs', spec.externalIPs.join(','));
  if (spec.type === 'LoadBalancer') field('LoadBalancer Ingress', (svc.status?.loadBalancer?.ingress ?? []).map((i) => i.ip || i.hostname).join(', '));
  if (spec.type === 'ExternalName') field('External Name', spec.externalName);
  for (const p of spec.ports ?? []) {
    const name = p.name || '<unset>';
    field('Port', `${name}  ${p.port}/${p.protocol ?? 'TCP'}`);
    field('TargetPort', `${p.targetPort ?? p.port}/${p.protocol ?? 'TCP'}`);
    if (p.nodePort) field('NodePort', `${name}  ${p.nodePort}/${p.protocol ?? 'TCP'}`);
    field('Endpoints', endpoints ? endpointsText(endpoints, p.name ?? '') || '<none>' : '<none>');
  }
  field('Session Affinity', spec.sessionAffinity ?? 'None');
  if (spec.type === 'NodePort' || spec.type === 'LoadBalancer') field('External Traffic Policy', spec.externalTrafficPolicy ?? 'Cluster');
  if (spec.internalTrafficPolicy) field('Internal Traffic Policy', spec.internalTrafficPolicy);
}

/** kubectl's Ingress sections: Address, Ingress Class, Default backend, TLS, Rules (Host, Path, Backends). */
function describeIngress(ing: Ingress, field: Field, lines: string[]): void {
  const backend = (b: IngressBackend): string => (b.service
    ? `${b.service.name}:${b.service.port?.name ?? b.service.port?.number ?? ''}`
    : `APIGroup: ${b.resource?.apiGroup ?? ''}, Kind: ${b.resource?.kind ?? ''}, Name: ${b.resource?.name ?? ''}`);
  field('Address', (ing.status?.loadBalancer?.ingress ?? []).map((i) => i.ip || i.hostname).join(','));
  field('Ingress Class', ing.spec.ingressClassName ?? '<none>');
  field('Default backend', ing.spec.defaultBackend ? backend(ing.spec.defaultBackend) : '<default>');
  if ((ing.spec.tls ?? []).length > 0) {
    lines.push('TLS:');
    for (const t of ing.spec.tls ?? []) lines.push(`  ${t.secretName ? `${t.secretName} terminates` : 'SNI routes'} ${(t.hosts ?? []).join(',')}`);
  }
  lines.push('Rules:');
  const rows: string[][] = [['----', '----', '--------']];
  for (const r of ing.spec.rules ?? []) {
    rows.push([r.host || '*', '', '']);
    for (const p of r.http?.paths ?? []) rows.push(['', p.path ?? '', backend(p.backend)]);
  }
  if ((ing.spec.rules ?? []).length === 0 && ing.spec.defaultBackend) rows.push(['*', '*', backend(ing.spec.defaultBackend)]);
  lines.push(...renderTable(['Host', 'Path', 'Backends'], rows).trimEnd().split('\n').map((l) => `  ${l}`));
}

function conditions(list: readonly Condition[] | undefined, lines: string[]): void {
  lines.push('Conditions:');
  if (!list || list.length === 0) { lines.push('  <none>'); return; }
  const rows = list.map((c) => [c.type, c.status, c.reason ?? '', c.message ?? '']);
  lines.push(...renderTable(['Type', 'Status', 'Reason', 'Message'], rows).trimEnd().split('\n').map((l) => `  ${l}`));
}
