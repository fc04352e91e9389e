// `flotilla node replace NAME`: forget a node's record, its pods and the binding of its name to its machine's key
// (server/tokens/node-certificates.ts: the old machine's certificate authenticates nobody from then on) so that a
// new machine (a re-imaged Pi with the same hostname, whose node key differs) can register under the name.
// Controllers recreate the pods of Deployments, ReplicaSets and the like elsewhere; bare pods are gone.
import { NODE_CERTIFICATES_PATH } from '../api-types/index.js';
import { ApiClientError } from '../client/client.js';
import { boolFlag, UsageError } from './args.js';
import type { ParsedArgs } from './args.js';
import { clientFor, connectionFlags } from './command.js';
import type { CliCommand, Io } from './command.js';

interface PodRef { metadata: { name: string; namespace: string } }

export const nodeReplaceCommand: CliCommand = {
  summary: 'remove a node\'s record and its pods so a re-imaged machine can register under the same name',
  usage: 'flotilla node replace NAME [--dry-run]',
  flags: [...connectionFlags, { name: 'dry-run', kind: 'boolean' }],
  async run(a: ParsedArgs, io: Io) {
    const [verb, name, ...extra] = a.positionals;
    if (verb !== 'replace') throw new UsageError(`expected "replace"${verb ? `, got "${verb}"` : ''}`);
    if (!name || extra.length > 0) throw new UsageError('name one node');
    const node = name.startsWith('node/') ? name.slice('node/'.length) : name;
    const dryRun = boolFlag(a, 'dry-run');
    const client = clientFor(a, io);
    try {
      const nodePath = `/api/v1/nodes/${encodeURIComponent(node)}`;
      const bindingPath = `${NODE_CERTIFICATES_PATH}/${encodeURIComponent(node)}`;
      const prefix = dryRun ? '(dry run) ' : '';
      const exists = await client.request('GET', nodePath).then(() => true, (err: unknown) => {
        if (err instanceof ApiClientError && err.code === 404) return false;
        throw err;
      });
      if (exists) {
        const { items } = await client.request<{ items: PodRef[] }>('GET', `/api/v1/pods?fieldSelector=${encodeURIComponent(`spec.nodeName=${node}`)}`);
        // Pods first: a Node deleted first would leave its pods bound to a name the new machine then inherits.
        for (const p of items) {
          if (!dryRun) await client.request('DELETE', `/api/v1/namespaces/${encodeURIComponent(p.metadata.namespace)}/pods/${encodeURIComponent(p.metadata.name)}`);
          io.out(`${prefix}pod ${p.metadata.namespace}/${p.metadata.name} deleted\n`);
        }
        // Deleting the Node removes its key binding too.
        if (!dryRun) await client.request('DELETE', nodePath);
        io.out(`${prefix}node/${node} deleted: start the agent on the new machine to register it\n`);
      } else if (dryRun) {
        io.out(`${prefix}node/${node} is not registered: its key binding, if any, would be removed\n`);
      } else {
        // A machine that got its certificate but never registered still holds the name: release it. Neither
        // a Node nor a binding: the server's 404 says there is nothing to replace.
        await client.request('DELETE', bindingPath).catch((err: unknown) => {
          throw err instanceof ApiClientError && err.code === 404 ? new ApiClientError(`nodes "${node}" not found, and no machine holds the name: nothing to replace`, 404, 'NotFound') : err;
        });
        io.out(`node/${node}: the name is released from the machine that held it: start the agent on the new machine to register it\n`);
      }
      return 0;
    } finally {
      client.close();
    }
  },
};
