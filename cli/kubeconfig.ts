// `flotilla kubeconfig`: a kubeconfig (Kubernetes' v1 Config) for kubectl and every client-go program: the
// server, the cluster CA embedded, and a bearer token: the one this CLI connects with, or a new user token.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { boolFlag, stringFlag, UsageError } from './args.js';
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

/** The kubeconfig `flotilla up` writes in its data dir. */
export const KUBECONFIG_FILE = 'kubeconfig';

/** The clusterName of a cluster's kubeconfig entries. */
export const kubeconfigClusterName = (clusterId: string) => `flotilla-${clusterId.slice(0, 8)}`;

/**
 * The file `--merge` writes, as client-go picks it: with KUBECONFIG a list of files, the first of them that
 * exists, else the last; without it ~/.kube/config.
 */
export function kubeconfigMergePath(env: NodeJS.ProcessEnv): string {
  const list = (env.KUBECONFIG ?? '').split(delimiter).filter(Boolean);
  if (list.length === 0) return join(env.HOME ?? homedir(), '.kube', 'config');
  return list.find((f) => existsSync(f)) ?? list[list.length - 1]!;
}

type NamedEntries = { name: string }[];

/**
 * `doc`'s cluster, user and context merged into an existing kubeconfig (text; undefined or empty for none):
 * entries of the same name are replaced, every other entry and field is kept, and doc's context becomes current.
 */
export function mergeKubeconfig(existing: string | undefined, doc: Record<string, unknown>): Record<string, unknown> {
  const parsed: unknown = existing === undefined || existing.trim() === '' ? {} : parseYaml(existing);
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new UsageError('the kubeconfig to merge into is not a YAML mapping');
  const base = parsed as Record<string, unknown>;
  if (base.kind !== undefined && base.kind !== 'Config') throw new UsageError(`the kubeconfig to merge into is a ${String(base.kind)}, not a Config`);
  const out: Record<string, unknown> = { apiVersion: 'v1', kind: 'Config', preferences: {}, ...base };
  for (const key of ['clusters', 'users', 'contexts'] as const) {
    const have = base[key] ?? [];
    if (!Array.isArray(have)) throw new UsageError(`the kubeconfig to merge into has a ${key} that is not a list`);
    const add = doc[key] as NamedEntries;
    out[key] = [...(have as NamedEntries).filter((e) => !add.some((a) => a.name === e?.name)), ...add];
  }
  out['current-context'] = doc['current-context'];
  return out;
}

export const kubeconfigCommand: CliCommand = {
  summary: 'write a kubeconfig for kubectl: this connection\'s token, or a new user token (--user)',
  usage: 'flotilla kubeconfig [--out FILE | --merge] [--user NAME [--group G]... [--ttl 30d] [--description TEXT]] [--server URL] [--ca FILE]',
  flags: [
    ...connectionFlags, { name: 'out', kind: 'string' }, { name: 'merge', kind: 'boolean' }, { name: 'user', kind: 'string' }, { name: 'group', kind: 'list' }, { name: 'ttl', kind: 'string' },
    { name: 'description', kind: 'string' },
  ],
  async run(a: ParsedArgs, io: Io) {
    if (a.positionals.length > 0) throw new UsageError(`unexpected argument "${a.positionals[0]}"`);
    const user = stringFlag(a, 'user');
    const merge = boolFlag(a, 'merge');
    if (merge && stringFlag(a, 'out') !== undefined) throw new UsageError('--out and --merge name two places to write: give one');
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
      const doc = kubeconfigDocument({ clusterName: kubeconfigClusterName(clusterId), server: client.server, caPem, userName: user ?? 'admin', token });
      const out = merge ? kubeconfigMergePath(io.env) : stringFlag(a, 'out');
      if (out === undefined) io.out(toYaml(doc));
      else {
        mkdirSync(dirname(out), { recursive: true, mode: 0o700 });
        writePrivateFile(out, toYaml(merge ? mergeKubeconfig(existsSync(out) ? readFileSync(out, 'utf8') : undefined, doc) : doc));
      }
      if (created) io.err(`Made a token for user ${user} (${created.expires ? `expires ${created.expires}` : 'never expires'}); it is only in this kubeconfig.\n`);
      if (merge) io.err(`Merged context ${String(doc['current-context'])} into ${out} and made it current; use it with: kubectl get nodes\n`);
      else if (out !== undefined) io.err(`Wrote ${out}; use it with: kubectl --kubeconfig ${out} get nodes\n`);
      return 0;
    } finally {
      client.close();
    }
  },
};
