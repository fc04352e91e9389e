// Join tokens, proofs of the CA key, the advertisement document and server location, against one real server
// (server/run.ts in this process, loopback, mDNS off) and the CLI command modules.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ServerInfo } from '../../server/run.js';
import { createStaticDiscovery } from '../../discovery/static.js';
import { PROOF_PATH, caFingerprint, locateServers, verifyServer } from '../../discovery/locate.js';
import { pinnedFetch } from '../../client/client.js';
import { formatClusterToken, parseClusterToken } from '../../client/tokens.js';
import { parseArgs } from '../../cli/args.js';
import type { CliCommand, Io } from '../../cli/command.js';
import { parseDuration, tokenCommand } from '../../cli/token.js';
import { startInProcessServer, type InProcessServer } from '../support/in-process-server.js';
import { setUp } from '../support/set-up.js';

let dir!: string;
let server: InProcessServer | undefined;
let info!: ServerInfo;
let admin!: string;
let secret!: string;
let fetch!: ReturnType<typeof pinnedFetch>;
setUp(test, async () => {
  dir = mkdtempSync(join(tmpdir(), 'flotilla-join-'));
  server = await startInProcessServer(join(dir, 'data'));
  info = server.info;
  admin = info.adminToken!;
  secret = readFileSync(join(dir, 'data', 'cluster-secret'), 'utf8').trim();
  fetch = pinnedFetch({ ca: info.caPem });
}, async () => {
  fetch?.close();
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function api(method: string, path: string, token: string | undefined, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${info.url}${path}`, {
    method, headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

async function cli(command: CliCommand, argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: Io = { out: (t) => { out += t; }, err: (t) => { err += t; }, env: { FLOTILLA_SERVER: info.url, FLOTILLA_TOKEN: admin, FLOTILLA_CA: join(dir, 'data', 'pki', 'ca.crt'), HOME: dir }, readStdin: () => '', isTty: false };
  const code = await command.run(parseArgs(argv, command.flags), io, new AbortController().signal);
  return { code, out, err };
}

test('a join token is shown once with the CA hash, authenticates by its credential (bootstrap only), is listed without its digest, and stops working when revoked', async () => {
  const created = await api('POST', '/apis/flotilla.io/v1/jointokens', admin, { ttlSeconds: 3600, description: 'shelf pis' });
  assert.is(created.status, 201);
  const full = created.json.token as string;
  assert.match(full, new RegExp(`^FLT1${info.caHash}::flt1\\.[a-z0-9]{10}\\.[A-Za-z0-9_-]{32}$`));
  const token = parseClusterToken(full).credential;
  assert.ok(Date.parse(created.json.expires as string) > Date.now());

  const asNode = await api('GET', '/api/v1/nodes', token);
  assert.is(asNode.status, 403, 'the join token authenticates (403, not 401): it may only ask for a node certificate');
  assert.match(asNode.json.message as string, /is forbidden: User "system:bootstrap:[a-z0-9]+" cannot /);
  const denied = await api('GET', '/apis/flotilla.io/v1/jointokens', token);
  assert.is(denied.status, 403, 'a node cannot manage join tokens');

  const list = await api('GET', '/apis/flotilla.io/v1/jointokens', admin);
  const items = list.json.items as Record<string, unknown>[];
  const entry = items.find((t) => t.id === created.json.id);
  assert.ok(entry, 'listed');
  assert.is(entry!.description, 'shelf pis');
  assert.not.ok(JSON.stringify(list.json).includes(token.split('.')[2]!), 'the secret part never comes back');
  assert.not.match(JSON.stringify(list.json), /sha256/);

  const revoked = await api('DELETE', `/apis/flotilla.io/v1/jointokens/${created.json.id as string}`, admin);
  assert.is(revoked.status, 200);
  assert.is((await api('GET', '/api/v1/nodes', token)).status, 401);
  assert.is((await api('DELETE', `/apis/flotilla.io/v1/jointokens/${created.json.id as string}`, admin)).status, 404);
});

test('bad create requests are refused naming the field', async () => {
  const zero = await api('POST', '/apis/flotilla.io/v1/jointokens', admin, { ttlSeconds: 0 });
  assert.is(zero.status, 400);
  assert.match(zero.json.message as string, /ttlSeconds/);
  const extra = await api('POST', '/apis/flotilla.io/v1/jointokens', admin, { ttl: '1h' });
  assert.is(extra.status, 400);
  assert.match(extra.json.message as string, /unknown field "ttl"/);
});

test('the server proves it holds the CA its tokens pin, without authentication; another CA hash fails the check, naming both', async () => {
  const created = await api('POST', '/apis/flotilla.io/v1/jointokens', admin, {});
  assert.is(created.json.expires, undefined, 'no ttl: never expires');
  const pin = { caHash: parseClusterToken(created.json.token as string).caHash };
  assert.equal(await verifyServer(info.url, pin, { purpose: 'agent-join' }), { clusterId: info.clusterId, caPem: info.caPem });
  assert.equal(await verifyServer(info.url, pin, { purpose: 'server-join', expectedClusterId: info.clusterId }), { clusterId: info.clusterId, caPem: info.caPem });
  assert.equal(await verifyServer(info.url, { clusterSecret: secret }, { purpose: 'server-join' }), { clusterId: info.clusterId, caPem: info.caPem });

  const other = 'ab'.repeat(32);
  try {
    await verifyServer(info.url, { caHash: other }, { purpose: 'agent-join' });
    assert.unreachable('a token pinning another CA passed');
  } catch (err) {
    assert.is((err as Error).message, `the server at ${info.url} presents CA sha256:${info.caHash}, the token pins sha256:${other}: wrong cluster or a man in the middle`);
  }
  try {
    await verifyServer(info.url, { clusterSecret: 'not-the-cluster-secret-at-all-0123456789' }, { purpose: 'server-join' });
    assert.unreachable('a wrong cluster secret passed');
  } catch (err) {
    assert.match((err as Error).message, /does not hold the cluster secret/);
  }
  try {
    await verifyServer(info.url, pin, { purpose: 'agent-join', expectedClusterId: 'another-cluster' });
    assert.unreachable('a cluster id mismatch passed');
  } catch (err) {
    assert.match((err as Error).message, /advertises cluster another-cluster/);
  }
  const badNonce = await fetch(`${info.url}${PROOF_PATH}?purpose=agent-join&nonce=short`);
  assert.is(badNonce.status, 400);
  const otherChannel = await fetch(`${info.url}${PROOF_PATH}?purpose=agent-join&nonce=${'n'.repeat(24)}&cert-sha256=${'0'.repeat(64)}`);
  assert.is(otherChannel.status, 400, 'no proof for a certificate the server does not present');
  assert.match(((await otherChannel.json()) as { message: string }).message, /not the certificate this server presents/);
});

test('the advertisement document names the cluster, the member and the CA hash, never the secret', async () => {
  const res = await fetch(`${info.url}/.well-known/flotilla`);
  assert.is(res.status, 200);
  const ad = (await res.json()) as Record<string, unknown>;
  assert.equal(ad, { clusterId: info.clusterId, role: 'server', id: String(info.memberId), apiUrl: info.url, fingerprint: caFingerprint(info.caHash) });
  assert.not.ok(JSON.stringify(ad).includes(secret));
});

test('locateServers verifies servers from a static list and learns their CA; a token pinning another CA is refused with the reason', async () => {
  const created = await api('POST', '/apis/flotilla.io/v1/jointokens', admin, {});
  const token = created.json.token as string;
  const ac = new AbortController();
  try {
    const discovery = createStaticDiscovery({ urls: [info.url], refreshMs: 200 });
    const locator = locateServers(token, { discovery }, ac.signal);
    assert.is(await locator.waitForServer(30_000), info.url);
    assert.is(locator.ca(), info.caPem);

    const other = formatClusterToken('ab'.repeat(32), parseClusterToken(token).credential);
    const wrong = locateServers(other, { discovery: createStaticDiscovery({ urls: [info.url], refreshMs: 200 }) }, ac.signal);
    try {
      await wrong.waitForServer(1500);
      assert.unreachable('a wrong token located a server');
    } catch (err) {
      assert.match((err as Error).message, /no server proved it holds the cluster CA sha256:(ab)+ that the token pins; refused: .*presents CA sha256:[0-9a-f]{64}, the token pins sha256:(ab)+: wrong cluster or a man in the middle/);
    }
    assert.equal(wrong.servers(), []);
    assert.throws(() => locateServers(parseClusterToken(token).credential, { discovery }, ac.signal), /the token carries no cluster CA hash/);
  } finally {
    ac.abort();
  }
});

test('flotilla token create, list and revoke', async () => {
  const created = await cli(tokenCommand, ['create', '--ttl', '2h', '--description', 'from the cli']);
  assert.is(created.code, 0, created.err);
  const token = created.out.trim();
  assert.match(token, new RegExp(`^FLT1${info.caHash}::flt1\\.`));
  const id = parseClusterToken(token).credential.split('.')[1]!;
  assert.match(created.err, /expires/);
  const list = await cli(tokenCommand, ['list']);
  assert.match(list.out, new RegExp(`^${id}\\s+join\\s+<none>\\s+<none>\\s+\\S+\\s+\\S+\\s+from the cli$`, 'm'));
  const revoke = await cli(tokenCommand, ['revoke', id]);
  assert.is(revoke.out, `join token ${id} revoked\n`);
  assert.not.match((await cli(tokenCommand, ['list'])).out, new RegExp(id));
});

test('durations for --ttl', () => {
  assert.is(parseDuration('90s'), 90);
  assert.is(parseDuration('1d12h'), 36 * 3600);
  assert.throws(() => parseDuration('24'), /not a duration/);
  assert.throws(() => parseDuration('1h30x'), /not a duration/);
});

test.run();
