// `flotilla kubeconfig`: a kubeconfig (Kubernetes' v1 Config) for kubectl and every client-go program: the
// server, the cluster CA embedded, and a bearer token: the one this CLI connects with, or a new user token.
import { stringify as toYaml } from 'yaml';
import { stringFlag, UsageError } from './args.js';
import type { ParsedArgs } from './args.js';
import { clientConfigFor, clientFor, connectionFlags } from './command.js';
import type { CliCommand, Io } from './command.js';
import { writePrivateFile } from './config.js';
import { requestUserToken } from './token.js';

/** The v1 Config document, in the field names and nesting kubectl reads. */
export function kubeconfigDocument(o: { clusterName: string; server: string; caPem: string; userName: string; token: string }): Record<string, unknown> {
  const context = `${o.userName}@${o.clusterName}`;
  return {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: o.clusterName, cluster: { server: o.server, 'certificate-authority-data': Buffer.from(o.caPem).toString('base64') } }],
    users: [{ name: o.userName, user: { token: o.token } }],
    contexts: [{ name: context, context: { cluster: o.clusterName, user: o.userName } }],
    'current-context': context,
    preferences: {},
  };
}


export const kubeconfigCommand: CliCommand = {
  summary: 'write a kubeconfig for kubectl: this connection\'s token, or a new user token (--user)',
  usage: 'flotilla kubeconfig [--out FILE] [--user NAME [--group G]... [--ttl 30d] [--description TEXT]] [--server URL] [--ca FILE]',
  flags: [
    ...connectionFlags, { name: 'out', kind: 'string' }, { name: 'user', kind: 'string' }, { name: 'group', kind: 'list' }, { name: 'ttl', kind: 'string' },
    { name: 'description', kind: 'string' },
  ],
  async run(a: ParsedArgs, io: Io) {
    if (a.positionals.length > 0) throw new UsageError(`unexpected argument "${a.positionals[0]}"`);
    const user = stringFlag(a, 'user');
    const userOnly = ['group', 'ttl', 'description'].filter((n) => a.flags[n] !== undefined);
    if (user === undefined && userOnly.length > 0) throw new UsageError(`${userOnly.map((n) => `--${n}`).join(', ')} go${userOnly.length > 1 ? '' : 'es'} with --user (a new user token)`);
    // The CA this connection pins (--ca, FLOTILLA_CA, the context's, ./.flotilla/pki/ca.crt) is the one kubectl gets.
    const ca = clientConfigFor(a, io).ca;
    if (!ca) throw new UsageError('no cluster CA known for this connection: give --ca FILE (a server\'s <data>/pki/ca.crt) or a context with one');
    const caPem = ca.pem;
    const client = clientFor(a, io);
    try {
      const { clusterId } = await client.request<{ clusterId: string }>('GET', '/.well-known/flotilla');
      const created = user === undefined ? undefined : await requestUserToken(client, a, user);
      const token = created?.token ?? client.token;
      if (token === undefined) throw new UsageError('no token to put in the kubeconfig: give --token (or a context with one), or --user NAME for a new user token');
      const doc = kubeconfigDocument({ clusterName: `flotilla-${clusterId.slice(0, 8)}`, server: client.server, caPem, userName: user ?? 'admin', token });
      const out = stringFlag(a, 'out');
      if (out === undefined) io.out(toYaml(doc));
      else writePrivateFile(out, toYaml(doc));
      if (created) io.err(`Made a token for user ${user} (${created.expires ? `expires ${created.expires}` : 'never expires'}); it is only in this kubeconfig.\n`);
      if (out !== undefined) io.err(`Wrote ${out}; use it with: kubectl --kubeconfig ${out} get nodes\n`);
      return 0;
    } finally {
      client.close();
    }
  },
};
