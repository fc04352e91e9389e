// `flotilla rollout status|history|undo|pause|resume|restart deployment/NAME`: Deployment rollouts through the
// API only. Undo puts an old ReplicaSet's template back into the Deployment; the controller then reuses that
// ReplicaSet and gives it the next revision number.
import { apiPath, resourceByCliName, ANNOTATION_CHANGE_CAUSE, ANNOTATION_DEPLOYMENT_REVISION, ANNOTATION_RESTARTED_AT, LABEL_POD_TEMPLATE_HASH } from '../api-types/index.js';
import type { Deployment, PodTemplateSpec, ReplicaSet } from '../api-types/index.js';
import { stringFlag, boolFlag, UsageError } from './args.js';
import { clientFor, connectionFlags } from './command.js';
import type { CliCommand } from './command.js';


const deployments = resourceByCliName('deployments')!;
const replicaSets = resourceByCliName('replicasets')!;

export function revisionOf(rs: ReplicaSet): number {
  const n = Number(rs.metadata.annotations?.[ANNOTATION_DEPLOYMENT_REVISION] ?? 0);
  return Number.isInteger(n) ? n : 0;
}

/** The Deployment's ReplicaSets (controlled by its uid), oldest revision first. */
export function historyOf(d: Deployment, all: readonly ReplicaSet[]): ReplicaSet[] {
  return all.filter((rs) => rs.metadata.ownerReferences?.some((o) => o.controller && o.uid === d.metadata.uid))
    .sort((a, b) => revisionOf(a) - revisionOf(b));
}

/**
 * The ReplicaSet `undo` returns to: revision `to` when given, else the newest revision before the current
 * (highest) one. Throws a message naming what is missing.
 */
export function undoTarget(history: readonly ReplicaSet[], to?: number): ReplicaSet {
  if (history.length === 0) throw new UsageError('the deployment has no rollout history');
  const current = Math.max(...history.map(revisionOf));
  if (to !== undefined) {
    const found = history.find((rs) => revisionOf(rs) === to);
    if (!found) throw new UsageError(`unable to find revision ${to}: known revisions are ${history.map(revisionOf).join(', ')}`);
    return found;
  }
  const previous = history.filter((rs) => revisionOf(rs) < current).sort((a, b) => revisionOf(b) - revisionOf(a))[0];
  if (!previous) throw new UsageError(`no revision before the current one (${current}) to roll back to`);
  return previous;
}

/** The template as the Deployment declared it: the ReplicaSet's template without the pod-template-hash label. */
export function deploymentTemplateOf(rs: ReplicaSet): PodTemplateSpec {
  if (!rs.spec.template) throw new UsageError(`replica set ${rs.metadata.name} has no pod template`);
  const { [LABEL_POD_TEMPLATE_HASH]: _hash, ...labels } = rs.spec.template.metadata?.labels ?? {};
  return { ...rs.spec.template, metadata: { ...(rs.spec.template.metadata ?? {}), labels } };
}

/** Whether the rollout is done, and a kubectl-style line saying where it stands. */
export function rolloutProgress(d: Deployment): { done: boolean; message: string } {
  const name = d.metadata.name ?? '';
  const want = d.spec.replicas ?? 1;
  const s = d.status ?? {};
  if ((s.observedGeneration ?? 0) < (d.metadata.generation ?? 1)) return { done: false, message: `Waiting for deployment "${name}" spec update to be observed...` };
  if (d.spec.paused) return { done: false, message: `deployment "${name}" is paused; resume it with: flotilla rollout resume deployment/${name}` };
  if ((s.updatedReplicas ?? 0) < want) return { done: false, message: `Waiting for deployment "${name}" rollout to finish: ${s.updatedReplicas ?? 0} out of ${want} new replicas have been updated...` };
  if ((s.replicas ?? 0) > (s.updatedReplicas ?? 0)) return { done: false, message: `Waiting for deployment "${name}" rollout to finish: ${(s.replicas ?? 0) - (s.updatedReplicas ?? 0)} old replicas are pending termination...` };
  if ((s.availableReplicas ?? 0) < (s.updatedReplicas ?? 0)) return { done: false, message: `Waiting for deployment "${name}" rollout to finish: ${s.availableReplicas ?? 0} of ${s.updatedReplicas ?? 0} updated replicas are available...` };
  return { done: true, message: `deployment "${name}" successfully rolled out` };
}

function deploymentName(positionals: readonly string[]): string {
  const [first, second] = positionals;
  const [type, name] = first?.includes('/') ? first.split('/', 2) : [first, second];
  if (!type || resourceByCliName(type) !== deployments) throw new UsageError(`rollout works on deployments, got "${type ?? ''}" (use deployment/NAME)`);
  if (!name) throw new UsageError('name the deployment (deployment/NAME)');
  return name;
}

export const rolloutCommand: CliCommand = {
  summary: 'manage Deployment rollouts: status, history, undo, pause, resume, restart',
  usage: 'flotilla rollout (status [-w] | history | undo [--to-revision N] | pause | resume | restart) deployment/NAME [-n NS]',
  flags: [
    ...connectionFlags, { name: 'namespace', short: 'n', kind: 'string' },
    { name: 'to-revision', kind: 'string' }, { name: 'watch', short: 'w', kind: 'boolean' },
  ],
  async run(a, io, signal) {
    const [sub, ...rest] = a.positionals;
    const subs = ['status', 'history', 'undo', 'pause', 'resume', 'restart'];
    if (!sub || !subs.includes(sub)) throw new UsageError(`the first argument must be one of ${subs.join(', ')}${sub ? `, got "${sub}"` : ''}`);
    const name = deploymentName(rest);
    const ns = stringFlag(a, 'namespace') ?? 'default';
    const toText = stringFlag(a, 'to-revision');
    if (toText !== undefined && !/^[1-9]\d*$/.test(toText)) throw new UsageError(`--to-revision must be a positive integer, got "${toText}"`);
    const client = clientFor(a, io);
    const path = apiPath(deployments, ns, name);
    const merge = { contentType: 'application/merge-patch+json' };
    try {
      const d = await client.request<Deployment>('GET', path);
      switch (sub) {
        case 'status': {
          let progress = rolloutProgress(d);
          io.out(`${progress.message}\n`);
          if (progress.done || !boolFlag(a, 'watch')) return progress.done ? 0 : 1;
          const watching = new AbortController();
          signal.addEventListener('abort', () => watching.abort(), { once: true });
          const q = new URLSearchParams({ watch: 'true', fieldSelector: `metadata.name=${name}`, resourceVersion: d.metadata.resourceVersion ?? '0' });
          await client.watch<Deployment>(`${apiPath(deployments, ns)}?${q}`, (e) => {
            if (e.type !== 'ADDED' && e.type !== 'MODIFIED') return;
            const next = rolloutProgress(e.object);
            if (next.message !== progress.message) io.out(`${next.message}\n`);
            progress = next;
            if (next.done) watching.abort();
          }, watching.signal).catch((err: unknown) => { if (!watching.signal.aborted) throw err; });
          return progress.done ? 0 : 1;
        }
        case 'history': {
          const history = historyOf(d, (await client.request<{ items: ReplicaSet[] }>('GET', apiPath(replicaSets, ns))).items);
          io.out(`deployment.apps/${name}\nREVISION  IMAGES  CHANGE-CAUSE\n`);
          for (const rs of history) {
            const images = (rs.spec.template?.spec.containers ?? []).map((c) => c.image).join(',');
            io.out(`${String(revisionOf(rs)).padEnd(8)}  ${images}  ${rs.metadata.annotations?.[ANNOTATION_CHANGE_CAUSE] ?? '<none>'}\n`);
          }
          return 0;
        }
        case 'undo': {
          const history = historyOf(d, (await client.request<{ items: ReplicaSet[] }>('GET', apiPath(replicaSets, ns))).items);
          const target = undoTarget(history, toText === undefined ? undefined : Number(toText));
          // PUT, not a merge patch: fields the newer template added must go too. resourceVersion pins it.
          await client.request('PUT', path, { ...d, spec: { ...d.spec, template: deploymentTemplateOf(target) } });
          io.out(`deployment.apps/${name} rolled back to revision ${revisionOf(target)}\n`);
          return 0;
        }
        case 'pause':
        case 'resume':
          await client.request('PATCH', path, { spec: { paused: sub === 'pause' } }, merge);
          io.out(`deployment.apps/${name} ${sub === 'pause' ? 'paused' : 'resumed'}\n`);
          return 0;
        default: {
          const at = new Date().toISOString();
          await client.request('PATCH', path, { spec: { template: { metadata: { annotations: { [ANNOTATION_RESTARTED_AT]: at } } } } }, merge);
          io.out(`deployment.apps/${name} restarted\n`);
          return 0;
        }
      }
    } finally {
      client.close();
    }
  },
};
