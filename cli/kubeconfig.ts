// `flotilla kubeconfig`: a kubeconfig (Kubernetes' v1 Config) for kubectl and every client-go program: the
// server, the cluster CA embedded, and a bearer token: the one this CLI connects with, or a new user token.
import { existsSync, readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { stringFlag, UsageError } from './args.js';
import type { ParsedArgs } from './args.js';
import { clientFor, connectionFlags } from './command.js';
import type { CliCommand, Io } from './command.js';
import { localDataDir, writePrivateFile } from './config.js';
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

/**
 * The PEM of the cluster CA, from `<data>/pki/ca.crt` of the local data dir (--data, default ./.flotilla).
 * This is the one place to switch to the CA the CLI connection pins (cli/config.ts: --ca FILE, FLOTILLA_CA,
 * <data>/pki/ca.crt) once the CLI has that option. Throws a UsageError naming the file when there is no CA.
 */
async function clusterCaPem(a: ParsedArgs): Promise<string> {
  const { PKI_DIR, CA_CERT_FILE } = await import('../server/pki/ca.js');
  const path = join(localDataDir(stringFlag(a, 'data')), PKI_DIR, CA_CERT_FILE);
  if (!existsSync(path)) throw new UsageError(`no cluster CA known: ${path} does not exist; give --data DIR, the data dir of a server of this cluster`);
  const pem = readFileSync(path, 'utf8');
  try {
    new X509Certificate(pem);
  } catch {
    throw new UsageError(`${path} is not a PEM certificate`);
  }
  return pem;
}

export const kubeconfigCommand: CliCommand = {
  summary: 'write a kubeconfig for kubectl: this connection\'s token, or a new user token (--user)',
  usage: 'flotilla kubeconfig [--out FILE] [--user NAME [--group G]... [--ttl 30d] [--description TEXT]] [--server URL] [--data DIR]',
  flags: [
    ...connectionFlags, { name: 'out', kind: 'string' }, { name: 'user', kind: 'string' }, { name: 'group', kind: 'list' }, { name: 'ttl', kind: 'string' },
    { name: 'description', kind: 'string' }, { name: 'data', kind: 'string' },
  ],
  async run(a: ParsedArgs, io: Io) {
    if (a.positionals.length > 0) throw new UsageError(`unexpected argument "${a.positionals[0]}"`);
    const user = stringFlag(a, 'user');
    const userOnly = ['group', 'ttl', 'description'].filter((n) => a.flags[n] !== undefined);
    if (user === undefined && userOnly.length > 0) throw new UsageError(`${userOnly.map((n) => `--${n}`).join(', ')} go${userOnly.length > 1 ? '' : 'es'} with --user (a new user token)`);
    const caPem = await clusterCaPem(a);
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
