// `flotilla service NAME --url`: where a NodePort Service is reached from outside, as `minikube service --url`
// prints it: http://NODE-ADDRESS:NODEPORT, one line per port, the address of the first Ready node (by name).
import { apiPath, resourceOfKind } from '../api-types/index.js';
import type { List, Node, Service } from '../api-types/index.js';
import { boolFlag, stringFlag, UsageError } from './args.js';
import { clientFor, connectionFlags } from './command.js';
import type { CliCommand } from './command.js';

/** The URLs of a NodePort or LoadBalancer Service through the first Ready node; throws an Error saying why there are none. */
export function serviceUrls(svc: Service, nodes: readonly Node[]): string[] {
  const where = `service ${svc.metadata.namespace ?? 'default'}/${svc.metadata.name}`;
  const ports = (svc.spec?.ports ?? []).flatMap((p) => (p.nodePort ? [p.nodePort] : []));
  if (ports.length === 0) {
    throw new Error(`${where} has no node port: it is of type ${svc.spec?.type ?? 'ClusterIP'}, reachable inside the cluster only; make it type NodePort to reach it from outside`);
  }
  const ready = [...nodes].sort((a, b) => (a.metadata.name ?? '').localeCompare(b.metadata.name ?? ''))
    .filter((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
  const address = ready.map((n) => n.status?.addresses?.find((a) => a.type === 'InternalIP')?.address).find((a) => a !== undefined);
  if (address === undefined) throw new Error(`${where}: no Ready node with an InternalIP address to reach it through`);
  const host = address.includes(':') ? `[${address}]` : address;
  return [...new Set(ports)].map((port) => `http://${host}:${port}`);
}

export const serviceCommand: CliCommand = {
  summary: 'print the URL of a NodePort Service (--url), as minikube service --url does',
  usage: 'flotilla service NAME --url [-n NAMESPACE]',
  flags: [...connectionFlags, { name: 'namespace', short: 'n', kind: 'string' }, { name: 'url', kind: 'boolean' }],
  async run(a, io) {
    const [name, ...extra] = a.positionals;
    if (!name) throw new UsageError('name the Service');
    if (extra.length > 0) throw new UsageError(`one Service at a time, got ${a.positionals.length}`);
    if (!boolFlag(a, 'url')) throw new UsageError('--url is required: flotilla prints the URL, it opens no browser');
    const namespace = stringFlag(a, 'namespace') ?? 'default';
    const client = clientFor(a, io);
    try {
      const svc = await client.request<Service>('GET', apiPath(resourceOfKind('Service'), namespace, name.replace(/^(service|svc)\//, '')));
      const nodes = await client.request<List<Node>>('GET', apiPath(resourceOfKind('Node')));
      try {
        io.out(serviceUrls(svc, nodes.items).map((u) => `${u}\n`).join(''));
      } catch (err) {
        io.err(`flotilla service: ${(err as Error).message}\n`);
        return 1;
      }
      return 0;
    } finally {
      client.close();
    }
  },
};
