// `flotilla compose up|down|ps|logs|convert`: a Compose project (load.ts) as Kubernetes objects (convert.ts),
// applied with `apply`'s write path, in dependency order, waiting for what `depends_on` asks before a
// dependent's objects are written.
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import {
  apiPath, parseGoDuration, podStatusText, LABEL_COMPOSE_PROJECT, LABEL_COMPOSE_SERVICE, NETWORK_SETTINGS_CONFIGMAP, parseNetworkSettings, resourceOfKind,
} from '../../api-types/index.js';
import type { ConfigMap, KubeObject, NetworkSettingsData, Pod, PortRange } from '../../api-types/index.js';
import { ApiClientError } from '../../client/client.js';
import type { ApiClient } from '../../client/client.js';
import { boolFlag, listFlag, stringFlag, UsageError } from '../args.js';
import type { ParsedArgs } from '../args.js';
import { clientFor, connectionFlags } from '../command.js';
import type { CliCommand, Io } from '../command.js';
import { DELETE_POLL_MS, DELETE_WAIT_MS, waitUntilGone } from '../deletion.js';
import { streamLog } from '../logs.js';
import { applyManifests, manifestOf, ManifestError, qualifiedName } from '../manifests.js';
import type { Manifest } from '../manifests.js';
import { renderTable } from '../printers.js';
import { COMPOSE_KINDS, conversionObjects, convertProject } from './convert.js';
import type { Conversion, ServicePlan } from './convert.js';
import { ComposeError, loadProject, type DependsOnCondition } from './load.js';

const USAGE = 'flotilla compose [-f FILE]... [-p PROJECT] [--profile P]... [--env-file FILE] (convert | up [--wait] [--timeout 5m] | down [-v] | ps | logs [--follow] [--tail N] [SERVICE...])';

function load(a: ParsedArgs, io: Io) {
  const profiles = listFlag(a, 'profile');
  const envFile = stringFlag(a, 'env-file');
  const projectName = stringFlag(a, 'project-name');
  return loadProject({
    files: listFlag(a, 'file'), cwd: process.cwd(), env: io.env,
    ...(projectName ? { projectName } : {}), ...(profiles.length > 0 ? { profiles } : {}), ...(envFile ? { envFile } : {}),
  });
}

/** Every converted object as a Manifest (validated as the server will), or a ManifestError naming each issue. */
function manifestsOf(objects: readonly KubeObject[], project: string): Manifest[] {
  const errors: string[] = [];
  const out: Manifest[] = [];
  for (const o of objects) {
    const m = manifestOf(`compose project ${project}: ${o.kind} ${o.metadata.name ?? ''}`, o);
    if (Array.isArray(m)) errors.push(...m);
    else out.push(m);
  }
  if (errors.length > 0) throw new ManifestError(errors.join('\n'));
  return out;
}

function printWarnings(c: Conversion, io: Io): void {
  for (const w of c.warnings) io.err(`WARN ${w}\n`);
}

async function nodePortRange(client: ApiClient): Promise<PortRange | undefined> {
  try {
    const cm = await client.request<ConfigMap>('GET', apiPath(resourceOfKind('ConfigMap'), NETWORK_SETTINGS_CONFIGMAP.namespace, NETWORK_SETTINGS_CONFIGMAP.name));
    return parseNetworkSettings((cm.data ?? {}) as Partial<NetworkSettingsData>).nodePortRange;
  } catch (err) {
    if (err instanceof ApiClientError && (err.code === 404 || err.code === 403)) return undefined;
    throw err;
  }
}

const selectorOf = (project: string, service?: string) => `${LABEL_COMPOSE_PROJECT}=${project}${service ? `,${LABEL_COMPOSE_SERVICE}=${service}` : ''}`;

async function podsOf(client: ApiClient, c: { namespace: string; project: string }, service?: string): Promise<Pod[]> {
  const q = new URLSearchParams({ labelSelector: selectorOf(c.project, service) });
  return (await client.request<{ items: Pod[] }>('GET', `${apiPath(resourceOfKind('Pod'), c.namespace)}?${q}`)).items;
}

const isReady = (p: Pod) => !p.metadata.deletionTimestamp && (p.status?.conditions ?? []).some((x) => x.type === 'Ready' && x.status === 'True');

/**
 * Whether `service` meets `condition`: started (a pod running, or done), healthy (as many ready pods as
 * replicas), completed (its Job succeeded); a failed Job is a ComposeError, as compose's "didn't complete successfully".
 */
async function conditionMet(client: ApiClient, c: Conversion, plan: ServicePlan, condition: DependsOnCondition): Promise<boolean> {
  if (condition === 'service_completed_successfully' || (plan.kind === 'Job' && condition === 'service_started')) {
    const job = await client.request<{ status?: { succeeded?: number; failed?: number; conditions?: { type: string; status: string; message?: string }[] } }>('GET', apiPath(resourceOfKind('Job'), c.namespace, plan.name));
    const failed = job.status?.conditions?.find((x) => x.type === 'Failed' && x.status === 'True');
    if (failed) throw new ComposeError(`service "${plan.name}" didn't complete successfully: ${failed.message ?? 'its Job failed'}`);
    if (condition === 'service_started') return (job.status?.succeeded ?? 0) > 0 || (await podsOf(client, c, plan.name)).some((p) => p.status?.phase === 'Running');
    return (job.status?.succeeded ?? 0) >= plan.replicas;
  }
  const pods = await podsOf(client, c, plan.name);
  if (condition === 'service_started') return pods.some((p) => !p.metadata.deletionTimestamp && (p.status?.phase === 'Running' || p.status?.phase === 'Succeeded'));
  return pods.filter(isReady).length >= plan.replicas;
}

async function waitFor(client: ApiClient, c: Conversion, plan: ServicePlan, condition: DependsOnCondition, deadline: number, io: Io, signal: AbortSignal): Promise<void> {
  const word = { service_started: 'started', service_healthy: 'healthy', service_completed_successfully: 'completed' }[condition];
  io.err(`waiting for service "${plan.name}" to be ${word}...\n`);
  while (!(await conditionMet(client, c, plan, condition))) {
    if (signal.aborted) throw new ComposeError('interrupted');
    if (Date.now() >= deadline) {
      const pods = await podsOf(client, c, plan.name);
      throw new ComposeError(`service "${plan.name}" is not ${word} after the timeout (${pods.map((p) => `${p.metadata.name}: ${podStatusText(p)}`).join(', ') || 'no pods'})`);
    }
    await sleep(DELETE_POLL_MS, undefined, { signal }).catch(() => undefined);
  }
  io.err(`service "${plan.name}" is ${word}\n`);
}

async function up(a: ParsedArgs, io: Io, signal: AbortSignal): Promise<number> {
  const project = load(a, io);
  const timeoutText = stringFlag(a, 'timeout');
  let timeoutMs = DELETE_WAIT_MS;
  if (timeoutText !== undefined) {
    try { timeoutMs = parseGoDuration(timeoutText); } catch (err) { throw new UsageError(`--timeout: ${(err as Error).message}`); }
  }
  const client = clientFor(a, io);
  try {
    const range = await nodePortRange(client);
    const c = convertProject(project, range ? { nodePortRange: range } : {});
    printWarnings(c, io);
    const all = manifestsOf(conversionObjects(c), c.project);
    const deadline = Date.now() + timeoutMs;
    const byName = new Map(c.services.map((s) => [s.name, s]));
    // A namespace the project did not make (default, or one of the user's) is used as it is, and `down` leaves it.
    const existing = await client.request<KubeObject>('GET', apiPath(resourceOfKind('Namespace'), undefined, c.namespace)).catch((err: unknown) => {
      if (err instanceof ApiClientError && err.code === 404) return undefined;
      throw err;
    });
    const foreign = existing !== undefined && existing.metadata.labels?.[LABEL_COMPOSE_PROJECT] !== c.project;
    let failed = await applyManifests(client, all.slice(foreign ? 1 : 0, c.shared.length), io);
    if (failed > 0) return 1;
    let offset = c.shared.length;
    // Each service's objects are written once what it depends on meets the condition it names.
    const met = new Set<string>();
    for (const plan of c.services) {
      for (const [dep, condition] of Object.entries(plan.dependsOn)) {
        if (met.has(`${dep}/${condition}`)) continue;
        await waitFor(client, c, byName.get(dep)!, condition, deadline, io, signal);
        met.add(`${dep}/${condition}`);
      }
      failed += await applyManifests(client, all.slice(offset, offset + plan.objects.length), io);
      offset += plan.objects.length;
      if (failed > 0) return 1;
    }
    if (boolFlag(a, 'wait')) {
      for (const plan of c.services) {
        const condition = plan.kind === 'Job' ? 'service_completed_successfully' : plan.healthcheck ? 'service_healthy' : 'service_started';
        if (!met.has(`${plan.name}/${condition}`)) await waitFor(client, c, plan, condition, deadline, io, signal);
      }
    }
    return 0;
  } finally {
    client.close();
  }
}

/**
 * Removes what `up` made: every object labelled with the project in its namespace, claims (named volumes) only
 * with -v as compose keeps volumes, then the namespace once nothing of the project is left in it.
 */
async function down(a: ParsedArgs, io: Io, signal: AbortSignal): Promise<number> {
  const project = stringFlag(a, 'project-name') ?? load(a, io).name;
  const namespace = project.replace(/_/g, '-');
  const volumes = boolFlag(a, 'volumes');
  const client = clientFor(a, io);
  try {
    const deleted: { path: string; what: string; uid: string | undefined }[] = [];
    let kept = 0;
    for (const kind of COMPOSE_KINDS) {
      const r = resourceOfKind(kind);
      const q = new URLSearchParams({ labelSelector: selectorOf(project) });
      const items = (await client.request<{ items: KubeObject[] }>('GET', `${apiPath(r, namespace)}?${q}`)).items;
      for (const o of items) {
        if (kind === 'PersistentVolumeClaim' && !volumes) { kept++; continue; }
        const path = apiPath(r, namespace, o.metadata.name);
        try {
          await client.request('DELETE', path, { kind: 'DeleteOptions', apiVersion: 'v1', propagationPolicy: 'Foreground' });
        } catch (err) {
          if (err instanceof ApiClientError && err.code === 404) continue;
          throw err;
        }
        io.out(`${qualifiedName(r, o.metadata.name ?? '')} deleted\n`);
        deleted.push({ path, what: `${r.plural}/${o.metadata.name}`, uid: o.metadata.uid });
      }
    }
    let failed = await waitUntilGone(client, deleted, Date.now() + DELETE_WAIT_MS, io, signal);
    const nsResource = resourceOfKind('Namespace');
    const ns = await client.request<KubeObject>('GET', apiPath(nsResource, undefined, namespace)).catch((err: unknown) => {
      if (err instanceof ApiClientError && err.code === 404) return undefined;
      throw err;
    });
    if (ns && ns.metadata.labels?.[LABEL_COMPOSE_PROJECT] === project && kept === 0) {
      await client.request('DELETE', apiPath(nsResource, undefined, namespace), { kind: 'DeleteOptions', apiVersion: 'v1' });
      io.out(`namespace/${namespace} deleted\n`);
      failed += await waitUntilGone(client, [{ path: apiPath(nsResource, undefined, namespace), what: `namespaces/${namespace}`, uid: ns.metadata.uid }], Date.now() + DELETE_WAIT_MS, io, signal);
    } else if (kept > 0) {
      io.err(`${kept} volume(s) of project ${project} kept (PersistentVolumeClaims in namespace ${namespace}): remove them with "flotilla compose down -v"\n`);
    }
    return failed > 0 ? 1 : 0;
  } finally {
    client.close();
  }
}

/** `ps`: the project's pods, one line each, as compose lists its containers. */
async function ps(a: ParsedArgs, io: Io): Promise<number> {
  const project = stringFlag(a, 'project-name') ?? load(a, io).name;
  const client = clientFor(a, io);
  try {
    const pods = await podsOf(client, { namespace: project.replace(/_/g, '-'), project });
    const rows = pods.sort((x, y) => (x.metadata.name ?? '').localeCompare(y.metadata.name ?? '')).map((p) => [
      p.metadata.name ?? '', p.spec.containers[0]?.image ?? '', p.metadata.labels?.[LABEL_COMPOSE_SERVICE] ?? '',
      `${podStatusText(p)}${p.spec.containers[0]?.readinessProbe ? (isReady(p) ? ' (healthy)' : ' (unhealthy)') : ''}`,
      p.spec.nodeName ?? '<none>', p.status?.podIP ?? '',
      p.spec.containers.flatMap((c) => (c.ports ?? []).map((x) => (x.hostPort ? `${x.hostPort}->${x.containerPort}/${(x.protocol ?? 'TCP').toLowerCase()}` : `${x.containerPort}/${(x.protocol ?? 'TCP').toLowerCase()}`))).join(', '),
    ]);
    io.out(renderTable(['NAME', 'IMAGE', 'SERVICE', 'STATUS', 'NODE', 'IP', 'PORTS'], rows));
    return 0;
  } finally {
    client.close();
  }
}

/** `logs`: every pod of the project (or of the services named), merged line by line, each prefixed `POD | `. */
async function logs(a: ParsedArgs, io: Io, signal: AbortSignal): Promise<number> {
  const project = stringFlag(a, 'project-name') ?? load(a, io).name;
  const tail = stringFlag(a, 'tail');
  if (tail !== undefined && !/^\d+$/.test(tail)) throw new UsageError(`--tail must be a non-negative integer, got "${tail}"`);
  const services = a.positionals.slice(1);
  const client = clientFor(a, io);
  try {
    const c = { namespace: project.replace(/_/g, '-'), project };
    const pods = (await podsOf(client, c)).filter((p) => p.spec.nodeName && (services.length === 0 || services.includes(p.metadata.labels?.[LABEL_COMPOSE_SERVICE] ?? '')));
    if (pods.length === 0) { io.err(`no pods of project ${project}${services.length > 0 ? ` for ${services.join(', ')}` : ''}\n`); return 1; }
    const width = Math.max(...pods.map((p) => (p.metadata.name ?? '').length));
    let failed = 0;
    await Promise.all(pods.map(async (p) => {
      const prefix = `${(p.metadata.name ?? '').padEnd(width)} | `;
      try {
        for await (const line of streamLog(client, { namespace: c.namespace, pod: p.metadata.name ?? '', follow: boolFlag(a, 'follow'), ...(tail !== undefined ? { tail: Number(tail) } : {}) }, signal)) io.out(`${prefix}${line}\n`);
      } catch (err) {
        failed++;
        io.err(`${prefix}${err instanceof Error ? err.message : String(err)}\n`);
      }
    }));
    return failed > 0 ? 1 : 0;
  } finally {
    client.close();
  }
}

export const composeCommand: CliCommand = {
  summary: 'run a Compose project (compose.yaml) on the cluster: up, down, ps, logs, or convert it to Kubernetes YAML',
  usage: USAGE,
  flags: [
    ...connectionFlags,
    { name: 'file', short: 'f', kind: 'list' }, { name: 'project-name', short: 'p', kind: 'string' }, { name: 'profile', kind: 'list' }, { name: 'env-file', kind: 'string' },
    { name: 'wait', kind: 'boolean' }, { name: 'timeout', kind: 'string' }, { name: 'volumes', short: 'v', kind: 'boolean' },
    { name: 'follow', kind: 'boolean' }, { name: 'tail', kind: 'string' },
  ],
  run: async (a, io, signal) => {
    const sub = a.positionals[0];
    try {
      if (sub === 'convert') {
        const c = convertProject(load(a, io));
        printWarnings(c, io);
        const objects = conversionObjects(c);
        manifestsOf(objects, c.project);
        io.out(objects.map((o) => stringify(o)).join('---\n'));
        return 0;
      }
      if (sub === 'up') return await up(a, io, signal);
      if (sub === 'down') return await down(a, io, signal);
      if (sub === 'ps') return await ps(a, io);
      if (sub === 'logs') return await logs(a, io, signal);
    } catch (err) {
      if (err instanceof ComposeError) { io.err(`flotilla compose ${sub}: ${err.message}\n`); return 1; }
      throw err;
    }
    throw new UsageError(sub ? `unknown compose command "${sub}" (up, down, ps, logs, convert)` : 'name a compose command: up, down, ps, logs or convert');
  },
};
