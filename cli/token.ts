// `flotilla token create|list|revoke`: join tokens for agents (server/tokens/join-tokens.ts), through the API.
import { stringFlag, UsageError } from './args.js';
import type { ParsedArgs } from './args.js';
import { clientFor, connectionFlags } from './command.js';
import type { CliCommand, Io } from './command.js';

const JOIN_TOKENS_PATH = '/apis/flotilla.io/v1/jointokens';
const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** "90s", "15m", "24h", "30d" (or a combination such as "1d12h") in seconds; throws a UsageError otherwise. */
export function parseDuration(text: string): number {
  const parts = [...text.matchAll(/(\d+)([smhd])/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text) throw new UsageError(`--ttl: "${text}" is not a duration such as 30m, 24h or 7d`);
  const seconds = parts.reduce((sum, p) => sum + Number(p[1]) * UNITS[p[2]!]!, 0);
  if (seconds < 1) throw new UsageError('--ttl: must be at least 1s (leave it out for a token that never expires)');
  return seconds;
}

interface JoinTokenInfo { id: string; description?: string; created: string; expires?: string; expired: boolean }

export const tokenCommand: CliCommand = {
  summary: 'create, list or revoke join tokens for agents',
  usage: 'flotilla token create [--ttl 24h] [--description TEXT] | list | revoke ID',
  flags: [...connectionFlags, { name: 'ttl', kind: 'string' }, { name: 'description', kind: 'string' }],
  async run(a: ParsedArgs, io: Io) {
    const [verb, ...rest] = a.positionals;
    if (verb !== 'create' && verb !== 'list' && verb !== 'revoke') throw new UsageError(`expected create, list or revoke${verb ? `, got "${verb}"` : ''}`);
    if (verb !== 'create' && (stringFlag(a, 'ttl') !== undefined || stringFlag(a, 'description') !== undefined)) throw new UsageError('--ttl and --description go with create');
    if (verb === 'revoke' ? rest.length !== 1 : rest.length !== 0) throw new UsageError(verb === 'revoke' ? 'name one token id to revoke' : `unexpected argument "${rest[0]}"`);
    const client = clientFor(a, io);
    try {
      if (verb === 'create') {
        const ttl = stringFlag(a, 'ttl');
        const description = stringFlag(a, 'description');
        const created = await client.request<JoinTokenInfo & { token: string }>('POST', JOIN_TOKENS_PATH, {
          ...(ttl !== undefined ? { ttlSeconds: parseDuration(ttl) } : {}), ...(description !== undefined ? { description } : {}),
        });
        io.out(`${created.token}\n`);
        io.err(`Join token ${created.id} ${created.expires ? `expires ${created.expires}` : 'never expires'}. It is shown only now; on a new machine run:\n  flotilla agent --token ${created.token}\n`);
      } else if (verb === 'list') {
        const { items } = await client.request<{ items: JoinTokenInfo[] }>('GET', JOIN_TOKENS_PATH);
        if (items.length === 0) { io.err('No join tokens\n'); return 0; }
        const rows = [['ID', 'CREATED', 'EXPIRES', 'DESCRIPTION'], ...items.map((t) => [t.id, t.created, t.expired ? `expired ${t.expires}` : t.expires ?? 'never', t.description ?? ''])];
        const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
        io.out(rows.map((r) => r.map((c, i) => c.padEnd(widths[i]! + 3)).join('').trimEnd()).join('\n') + '\n');
      } else {
        await client.request('DELETE', `${JOIN_TOKENS_PATH}/${encodeURIComponent(rest[0]!)}`);
        io.out(`join token ${rest[0]} revoked\n`);
      }
      return 0;
    } finally {
      client.close();
    }
  },
};
