// `flotilla auth can-i` and `flotilla auth whoami`, as kubectl's: can-i asks the server a SelfSubjectAccessReview
// (or with --list a SelfSubjectRulesReview, server/auth/access-review.ts) and prints "yes" (exit 0) or "no"
// (exit 1); whoami prints the user and groups the server takes the caller for (SelfSubjectReview).
import { resourceByCliName } from '../api-types/index.js';
import { boolFlag, stringFlag, UsageError } from './args.js';
import { renderTable } from './printers.js';
import { clientFor, connectionFlags } from './command.js';
import type { CliCommand } from './command.js';

const AUTHZ = '/apis/authorization.k8s.io/v1';

interface ResourceRule { verbs: string[]; apiGroups?: string[]; resources?: string[]; resourceNames?: string[] }
interface NonResourceRule { verbs: string[]; nonResourceURLs: string[] }

/** The rules as kubectl's `auth can-i --list` prints them: Resources (resource.group), Non-Resource URLs, Resource Names, Verbs. */
export function formatRules(resourceRules: readonly ResourceRule[], nonResourceRules: readonly NonResourceRule[]): string {
  const list = (xs: readonly string[] | undefined) => `[${(xs ?? []).join(' ')}]`;
  const rows: string[][] = [];
  for (const r of resourceRules) {
    for (const resource of r.resources ?? []) {
      for (const group of r.apiGroups ?? ['']) rows.push([group === '' ? resource : `${resource}.${group}`, '[]', list(r.resourceNames), list(r.verbs)]);
    }
  }
  for (const r of nonResourceRules) rows.push(['', list(r.nonResourceURLs), '[]', list(r.verbs)]);
  return renderTable(['Resources', 'Non-Resource URLs', 'Resource Names', 'Verbs'], rows);
}

export const authCommand: CliCommand = {
  summary: 'ask what you may do (can-i) and who the server takes you for (whoami)',
  usage: 'flotilla auth can-i VERB (TYPE[/NAME] | TYPE NAME | /URL) [--subresource S] [-n NS | -A] | flotilla auth can-i --list [-n NS] | flotilla auth whoami',
  flags: [
    ...connectionFlags,
    { name: 'namespace', short: 'n', kind: 'string' }, { name: 'all-namespaces', short: 'A', kind: 'boolean' },
    { name: 'subresource', kind: 'string' }, { name: 'list', kind: 'boolean' }, { name: 'quiet', short: 'q', kind: 'boolean' },
  ],
  async run(a, io) {
    const [sub, ...args] = a.positionals;
    if (sub !== 'can-i' && sub !== 'whoami') throw new UsageError(`auth has the subcommands can-i and whoami${sub ? `, not "${sub}"` : ''}`);
    const client = clientFor(a, io);
    try {
      if (sub === 'whoami') {
        if (args.length > 0) throw new UsageError(`unexpected argument "${args[0]}"`);
        const r = await client.request<{ status: { userInfo: { username: string; groups?: string[] } } }>('POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews',
          { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' });
        io.out(renderTable(['ATTRIBUTE', 'VALUE'], [['Username', r.status.userInfo.username], ['Groups', `[${(r.status.userInfo.groups ?? []).join(' ')}]`]]));
        return 0;
      }
      const namespace = boolFlag(a, 'all-namespaces') ? '' : stringFlag(a, 'namespace') ?? 'default';
      if (boolFlag(a, 'list')) {
        if (args.length > 0) throw new UsageError('can-i --list takes no VERB or TYPE');
        const r = await client.request<{ status: { resourceRules: ResourceRule[]; nonResourceRules: NonResourceRule[] } }>('POST', `${AUTHZ}/selfsubjectrulesreviews`,
          { apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectRulesReview', spec: { namespace: namespace || 'default' } });
        io.out(formatRules(r.status.resourceRules, r.status.nonResourceRules));
        return 0;
      }
      const [verb, target, nameArg, ...extra] = args;
      if (verb === undefined || target === undefined) throw new UsageError('can-i needs a VERB and a TYPE (or a /URL)');
      if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
      let attributes: Record<string, unknown>;
      if (target.startsWith('/')) {
        attributes = { nonResourceAttributes: { verb, path: target } };
      } else {
        const [typeName, slashName] = target.split('/', 2) as [string, string | undefined];
        const info = resourceByCliName(typeName);
        if (!info) throw new UsageError(`the server doesn't have a resource type "${typeName}"`);
        const name = slashName ?? nameArg;
        const subresource = stringFlag(a, 'subresource');
        attributes = {
          resourceAttributes: {
            verb, group: info.group, version: info.version, resource: info.plural,
            ...(subresource ? { subresource } : {}), ...(info.namespaced && namespace !== '' ? { namespace } : {}), ...(name ? { name } : {}),
          },
        };
      }
      const r = await client.request<{ status: { allowed: boolean } }>('POST', `${AUTHZ}/selfsubjectaccessreviews`,
        { apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview', spec: attributes });
      if (!boolFlag(a, 'quiet')) io.out(`${r.status.allowed ? 'yes' : 'no'}\n`);
      return r.status.allowed ? 0 : 1;
    } finally {
      client.close();
    }
  },
};
