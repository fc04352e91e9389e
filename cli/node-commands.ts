// `flotilla cordon|uncordon|drain NODE`: take a node out of scheduling and empty it, through the API only.
import { apiPath, resourceByCliName } from '../api-types/index.js';
import type { Pod } from '../api-types/index.js';
import { ApiClient, ApiClientError } from '../client/client.js';
import { boolFlag, UsageError } from './args.js';
import type { ParsedArgs } from './args.js';
import { clientFor, connectionFlags } from './command.js';
import type { CliCommand, Io } from './command.js';

const nodes = resourceByCliName('nodes')!;
const pods = resourceByCliName('pods')!;

function nodeArg(a: ParsedArgs): string {
  const [name, ...extra] = a.positionals;
  if (!name) throw new UsageError('name the node');
  if (extra.length > 0) throw new UsageError(`one node at a time, got ${a.positionals.length}`);
  return name.startsWith('node/') ? name.slice('node/'.length) : name;
}

/** Sets spec.unschedulable; says "already" when nothing changes. */
async function setUnschedulable(client: ApiClient, io: Io, node: string, unschedulable: boolean): Promise<void> {
  const path = apiPath(nodes, undefined, node);
  const current = await client.request<{ spec?: { unschedulable?: boolean } }>('GET', path);
  const verb = unschedulable ? 'cordoned' : 'uncordoned';
  if (Boolean(current.spec?.unschedulable) === unschedulable) {
    io.out(`node/${node} already ${verb}\n`);
    return;
  }
  await client.request('PATCH', path, { spec: { unschedulable: unschedulable ? true : null } }, { contentType: 'application/merge-patch+json' });
  io.out(`node/${node} ${verb}\n`);
}

export const cordonCommand: CliCommand = {
  summary: 'mark a node unschedulable (running pods stay)',
  usage: 'flotilla cordon NODE',
  flags: connectionFlags,
  async run(a, io) {
    const node = nodeArg(a);
    const client = clientFor(a, io);
    try {
      await setUnschedulable(client, io, node, true);
      return 0;
    } finally {
      client.close();
    }
  },
};

export const uncordonCommand: CliCommand = {
  summary: 'mark a node schedulable again',
  usage: 'flotilla uncordon NODE',
  flags: connectionFlags,
  async run(a, io) {
    const node = nodeArg(a);
    const client = clientFor(a, io);
    try {
      await setUnschedulable(client, io, node, false);
      return 0;
    } finally {
      client.close();
    }
  },
};

/** Pods drain removes: everything bound to the node except DaemonSet pods (their controller would put them back). */
export function podsToDrain(all: readonly Pod[], node: string): { evict: Pod[]; daemon: Pod[] } {
  const on = all.filter((p) => p.spec.nodeName === node && !p.metadata.deletionTimestamp);
  const isDaemon = (p: Pod) => p.metadata.ownerReferences?.some((o) => o.controller && o.kind === 'DaemonSet') === true;
  return { evict: on.filter((p) => !isDaemon(p)), daemon: on.filter(isDaemon) };
}

export const drainCommand: CliCommand = {
  summary: 'cordon a node and delete its pods (DaemonSet pods stay) so that their controllers move them',
  usage: 'flotilla drain NODE [--dry-run]',
  flags: [...connectionFlags, { name: 'dry-run', kind: 'boolean' }],
  async run(a, io) {
    const node = nodeArg(a);
    const dryRun = boolFlag(a, 'dry-run');
    const client = clientFor(a, io);
    try {
      if (!dryRun) await setUnschedulable(client, io, node, true);
      const q = new URLSearchParams({ fieldSelector: `spec.nodeName=${node}` });
      const { evict, daemon } = podsToDrain((await client.request<{ items: Pod[] }>('GET', `${apiPath(pods)}?${q}`)).items, node);
      if (daemon.length > 0) io.err(`Ignoring DaemonSet-managed pods: ${daemon.map((p) => `${p.metadata.namespace}/${p.metadata.name}`).join(', ')}\n`);
      let failed = 0;
      for (const p of evict) {
        if (dryRun) {
          io.out(`pod/${p.metadata.name} (namespace ${p.metadata.namespace}) would be evicted\n`);
          continue;
        }
        try {
          await client.request('DELETE', apiPath(pods, p.metadata.namespace, p.metadata.name), { preconditions: { uid: p.metadata.uid } });
          io.out(`pod/${p.metadata.name} (namespace ${p.metadata.namespace}) evicted\n`);
        } catch (err) {
          if (!(err instanceof ApiClientError) || err.code === 0) throw err;
          if (err.code === 404) continue;
          failed++;
          io.err(`pod/${p.metadata.name}: ${err.message}\n`);
        }
      }
      if (!dryRun && failed === 0) io.out(`node/${node} drained\n`);
      return failed > 0 ? 1 : 0;
    } finally {
      client.close();
    }
  },
};
