// `flotilla token create|list|revoke|rotate`: join tokens for agents (server/tokens/join-tokens.ts), user tokens
// and the admin token (server/tokens/user-tokens.ts), through the API.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApiClientError } from '../client/client.js';
import type { ApiClient } from '../client/client.js';
import { boolFlag, listFlag, stringFlag, UsageError } from './args.js';
import type { ParsedArgs } from './args.js';
import { clientFor, connectionFlags } from './command.js';
import type { CliCommand, Io } from './command.js';
import { renderTable } from './printers.js';
import { configPath, localDataDir, readCliConfig, writeCliConfig, writePrivateFile } from './config.js';
import type { JoinTokenInfo } from '../server/tokens/join-tokens.js';
import type { CreatedUserToken, UserTokenInfo } from '../server/tokens/user-tokens.js';

// The paths of server/tokens (not imported: that would load the server's modules into every CLI run).
const JOIN_TOKENS_PATH = '/apis/flotilla.io/v1/jointokens';
export const USER_TOKENS_PATH = '/apis/flotilla.io/v1/usertokens';
const ADMIN = 'admin';
const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** "90s", "15m", "24h", "30d" (or a combination such as "1d12h") in seconds; throws a UsageError otherwise. */
export function parseDuration(text: string): number {
  const parts = [...text.matchAll(/(\d+)([smhd])/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text) throw new UsageError(`--ttl: "${text}" is not a duration such as 30m, 24h or 7d`);
  const seconds = parts.reduce((sum, p) => sum + Number(p[1]) * UNITS[p[2]!]!, 0);
  if (seconds < 1) throw new UsageError('--ttl: must be at least 1s (leave it out for a token that never expires)');
  return seconds;
}

/** Makes a user token (POST USER_TOKENS_PATH) from --user, --group, --ttl and --description. */
export function requestUserToken(client: ApiClient, a: ParsedArgs, user: string): Promise<CreatedUserToken> {
  const ttl = stringFlag(a, 'ttl');
  const description = stringFlag(a, 'description');
  const groups = listFlag(a, 'group');
  return client.request<CreatedUserToken>('POST', USER_TOKENS_PATH, {
    user, ...(groups.length > 0 ? { groups } : {}), ...(ttl !== undefined ? { ttlSeconds: parseDuration(ttl) } : {}), ...(description !== undefined ? { description } : {}),
  });
}

const expiresText = (t: { expires?: string }) => (t.expires ? `expires ${t.expires}` : 'never expires');

/** Each verb and the flags of its own that it takes. */
const VERB_FLAGS: Record<string, readonly string[]> = { create: ['ttl', 'description', 'user', 'group'], list: [], revoke: ['yes'], rotate: ['ttl', 'out', 'data'] };
const VERBS = Object.keys(VERB_FLAGS);

export const tokenCommand: CliCommand = {
  summary: 'create, list, rotate or revoke join tokens for agents, user tokens and the admin token',
  usage: 'flotilla token create [--user NAME [--group G]...] [--ttl 24h] [--description TEXT] | list | revoke NAME|ID [--yes] | rotate admin|NAME [--out FILE] [--data DIR] [--ttl 30d]',
  flags: [
    ...connectionFlags, { name: 'ttl', kind: 'string' }, { name: 'description', kind: 'string' }, { name: 'user', kind: 'string' }, { name: 'group', kind: 'list' },
    { name: 'yes', kind: 'boolean' }, { name: 'out', kind: 'string' }, { name: 'data', kind: 'string' },
  ],
  async run(a: ParsedArgs, io: Io) {
    const [verb, ...rest] = a.positionals;
    if (verb === undefined || !VERBS.includes(verb)) throw new UsageError(`expected ${VERBS.join(', ')}${verb ? `, got "${verb}"` : ''}`);
    const misplaced = [...new Set(Object.values(VERB_FLAGS).flat())].filter((n) => a.flags[n] !== undefined && !VERB_FLAGS[verb]!.includes(n));
    if (misplaced.length > 0) throw new UsageError(`${misplaced.map((n) => `--${n}`).join(', ')} ${misplaced.length > 1 ? 'do' : 'does'} not go with ${verb}`);
    if (verb === 'create' && stringFlag(a, 'user') === undefined && listFlag(a, 'group').length > 0) throw new UsageError('--group goes with --user');
    const named = verb === 'revoke' || verb === 'rotate';
    if (named ? rest.length !== 1 : rest.length !== 0) throw new UsageError(named ? `name one token to ${verb} (admin or a user name${verb === 'revoke' ? ', or a join token id' : ''})` : `unexpected argument "${rest[0]}"`);
    if (verb === 'revoke' && rest[0] === ADMIN && !boolFlag(a, 'yes')) {
      throw new UsageError('revoking the admin token locks out everyone who uses it, this command included unless it uses another admin token; add --yes to revoke it');
    }
    const client = clientFor(a, io);
    try {
      if (verb === 'create') await create(client, a, io);
      else if (verb === 'list') await list(client, io);
      else if (verb === 'revoke') await revoke(client, rest[0]!, io);
      else await rotate(client, rest[0]!, a, io);
      return 0;
    } finally {
      client.close();
    }
  },
};

async function create(client: ApiClient, a: ParsedArgs, io: Io): Promise<void> {
  const user = stringFlag(a, 'user');
  if (user !== undefined) {
    const created = await requestUserToken(client, a, user);
    io.out(`${created.token}\n`);
    io.err(`Token for user ${created.user} (admin) ${expiresText(created)}. It is shown only now; use it with --token, or write a kubeconfig with flotilla kubeconfig --user ${user} instead.\n`);
    return;
  }
  const ttl = stringFlag(a, 'ttl');
  const description = stringFlag(a, 'description');
  const created = await client.request<JoinTokenInfo & { token: string }>('POST', JOIN_TOKENS_PATH, {
    ...(ttl !== undefined ? { ttlSeconds: parseDuration(ttl) } : {}), ...(description !== undefined ? { description } : {}),
  });
  io.out(`${created.token}\n`);
  io.err(`Join token ${created.id} ${expiresText(created)}. It is shown only now; on a new machine run:\n  flotilla agent --token ${created.token}\n`);
}

async function list(client: ApiClient, io: Io): Promise<void> {
  const [joins, users] = await Promise.all([
    client.request<{ items: JoinTokenInfo[] }>('GET', JOIN_TOKENS_PATH),
    client.request<{ items: UserTokenInfo[] }>('GET', USER_TOKENS_PATH),
  ]);
  const none = '<none>';
  const expiry = (t: { expires?: string; expired: boolean; revoked?: string }) => (t.revoked ? `revoked ${t.revoked}` : t.expired ? `expired ${t.expires}` : t.expires ?? 'never');
  const rows = [
    ...users.items.map((t) => [t.name, t.type, t.user ?? none, t.groups?.join(',') ?? none, t.created ?? none, expiry(t), t.description ?? '']),
    ...joins.items.map((t) => [t.id, 'join', none, none, t.created, expiry(t), t.description ?? '']),
  ];
  if (rows.length === 0) { io.err('No tokens\n'); return; }
  io.out(renderTable(['NAME', 'TYPE', 'USER', 'GROUPS', 'CREATED', 'EXPIRES', 'DESCRIPTION'], rows));
}

/** `admin` is the admin token; any other name a user token, else a join token id. */
async function revoke(client: ApiClient, name: string, io: Io): Promise<void> {
  try {
    await client.request('DELETE', `${USER_TOKENS_PATH}/${encodeURIComponent(name)}`);
    io.out(name === ADMIN ? 'admin token revoked\n' : `user token ${name} revoked\n`);
    return;
  } catch (err) {
    if (name === ADMIN || !(err instanceof ApiClientError && err.code === 404)) throw err;
  }
  try {
    await client.request('DELETE', `${JOIN_TOKENS_PATH}/${encodeURIComponent(name)}`);
  } catch (err) {
    if (err instanceof ApiClientError && err.code === 404) throw new ApiClientError(`no user token named "${name}" and no join token with id "${name}" (see flotilla token list)`, 404, 'NotFound');
    throw err;
  }
  io.out(`join token ${name} revoked\n`);
}

/**
 * Prints the new token and writes it where the old one was kept: --out FILE; `<data>/admin-token` when it held
 * the token this command used and that token was the one rotated (it answers 401 now); and every context of the
 * CLI config that held that token. A file or context that held another token is left alone.
 */
async function rotate(client: ApiClient, name: string, a: ParsedArgs, io: Io): Promise<void> {
  const ttl = stringFlag(a, 'ttl');
  const rotated = await client.request<CreatedUserToken>('POST', `${USER_TOKENS_PATH}/${encodeURIComponent(name)}/rotate`, ttl !== undefined ? { ttlSeconds: parseDuration(ttl) } : {});
  io.out(`${rotated.token}\n`);
  const written: string[] = [];
  const out = stringFlag(a, 'out');
  if (out !== undefined) {
    writePrivateFile(out, `${rotated.token}\n`);
    written.push(out);
  }
  const old = client.token;
  const oldRevoked = old !== undefined && await client.request('GET', USER_TOKENS_PATH).then(() => false, (err: unknown) => {
    if (err instanceof ApiClientError && err.code === 401) return true;
    throw err;
  });
  if (oldRevoked) {
    const file = join(localDataDir(stringFlag(a, 'data')), 'admin-token');
    if (name === ADMIN && out === undefined && existsSync(file) && readFileSync(file, 'utf8').trim() === old) {
      writePrivateFile(file, `${rotated.token}\n`);
      written.push(file);
    }
    const config = readCliConfig(configPath(io.env));
    const holders = Object.entries(config.contexts).filter(([, c]) => c.token === old).map(([n]) => n);
    if (holders.length > 0) {
      for (const n of holders) config.contexts[n] = { ...config.contexts[n]!, token: rotated.token };
      written.push(`${writeCliConfig(io.env, config)} (context ${holders.join(', ')})`);
    }
  }
  const what = name === ADMIN ? 'The admin token' : `The token of user ${name}`;
  io.err(`${what} is rotated: the old one no longer authenticates; the new one (${expiresText(rotated)}) is shown only now${written.length > 0 ? ` and written to ${written.join(', ')}` : ''}.\n`);
}
