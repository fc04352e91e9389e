// The peer routes of a real server against hostile peers: raft messages only from current members, each from
// the member whose certificate it was sent with; every field checked (400 naming it); a snapshot's file named
// by the receiver alone and refused when its bytes do not match the SHA-256 it came with.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ServerProcess } from '../support/server-process.js';
import { setUp } from '../support/set-up.js';
import { pinnedFetch } from '../../client/client.js';
import { ClusterCa } from '../../server/pki/ca.js';
import { SERVERS_ORGANIZATION, serverCommonName } from '../../server/api/middleware/auth.js';

let dir!: string;
let server!: ServerProcess;
let memberId!: number;
let asMember!: ReturnType<typeof pinnedFetch>;
let asStranger!: ReturnType<typeof pinnedFetch>;
const STRANGER = 999_999;

setUp(test, async () => {
  dir = mkdtempSync(join(tmpdir(), 'flotilla-peers-'));
  server = new ServerProcess(join(dir, 'm0'), '127.0.0.1');
  await server.start();
  memberId = (JSON.parse(readFileSync(join(server.dataDir, 'cluster.json'), 'utf8')) as { memberId: number }).memberId;
  const pki = join(server.dataDir, 'pki');
  const own = { certPem: readFileSync(join(pki, 'server.crt'), 'utf8'), keyPem: readFileSync(join(pki, 'server.key'), 'utf8') };
  // A certificate of the right CA and form for a server that is no member (e.g. one removed, or never joined).
  const ca = await ClusterCa.fromPem(readFileSync(join(pki, 'ca.crt'), 'utf8'), readFileSync(join(pki, 'ca.key'), 'utf8'));
  const stranger = await ca.issue({ commonName: serverCommonName(STRANGER), organizations: [SERVERS_ORGANIZATION], altNames: ['127.0.0.1'] }, { usage: 'server+client' });
  asMember = pinnedFetch({ ca: server.ca, identity: () => own });
  asStranger = pinnedFetch({ ca: server.ca, identity: () => stranger });
}, async () => {
  asMember?.close();
  asStranger?.close();
  await server?.kill('SIGTERM');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const heartbeat = (fields: Record<string, unknown> = {}) => ({
  type: 'MsgHeartbeat', from: memberId, to: memberId, term: 0, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0, ...fields,
});

async function post(fetch: ReturnType<typeof pinnedFetch>, body: unknown): Promise<{ status: number; message: string }> {
  const res = await fetch(`${server.url}/raft/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, message: text };
}

test('raft messages from a server certificate of no member are refused with 403', async () => {
  const r = await post(asStranger, [heartbeat({ from: STRANGER, term: 1000 })]);
  assert.is(r.status, 403);
  assert.match(r.message, `member ${STRANGER} is not a member`);
});

test('a member cannot send in the name of another: 403', async () => {
  const r = await post(asMember, [heartbeat({ from: STRANGER })]);
  assert.is(r.status, 403);
  assert.match(r.message, `the certificate of member ${memberId}`);
});

test('every field of a raft message is checked: 400 naming it', async () => {
  const cases: [Record<string, unknown>, string][] = [
    [{ term: -1 }, 'term'],
    [{ term: 1e300 }, 'term'],
    [{ commit: '5' }, 'commit'],
    [{ index: 2 ** 53 }, 'index'],
    [{ type: 'MsgHup' }, 'type'],
    [{ to: 0 }, 'to'],
    [{ reject: 'no' }, 'reject'],
    [{ entries: [{ term: 1, index: -4, type: 'normal', data: '' }] }, 'entries[0].index'],
    [{ entries: [{ term: 1, index: 4, type: 'weird', data: '' }] }, 'entries[0].type'],
    [{ entries: [{ term: 1, index: 4, type: 'normal', data: '%%%' }] }, 'entries[0].data'],
    [{ context: 'x'.repeat(10_000) }, 'context'],
  ];
  for (const [fields, field] of cases) {
    const r = await post(asMember, [heartbeat(fields)]);
    assert.is(r.status, 400, `${JSON.stringify(fields).slice(0, 80)}: ${r.message}`);
    assert.match(r.message, `message[0].${field}`);
  }
  assert.is((await post(asMember, { not: 'an array' })).status, 400);
});

async function postSnapshot(header: unknown, body: string): Promise<number> {
  const res = await asMember(`${server.url}/raft/v1/snapshot`, {
    method: 'POST', body,
    headers: { 'content-type': 'application/octet-stream', 'x-flotilla-raft-message': Buffer.from(JSON.stringify(header)).toString('base64') },
  });
  await res.text();
  return res.status;
}

const snapshotDir = () => join(server.dataDir, 'snapshots');

test('a snapshot index that is no integer is refused before anything is written: no file is made from it', async () => {
  const outside = join(dir, 'written-by-a-peer');
  const before = readdirSync(snapshotDir()).sort();
  const meta = { index: `../../../${outside.slice(1)}`, term: 1, confState: { voters: [memberId], learners: [] } };
  assert.is(await postSnapshot(heartbeat({ type: 'MsgSnap', snapshot: { meta, sha256: '0'.repeat(64) } }), 'bytes'), 400);
  assert.not.ok(existsSync(outside) || existsSync(`${outside}.db`), 'nothing was written outside the snapshots dir');
  assert.equal(readdirSync(snapshotDir()).sort(), before);
});

test('a snapshot whose bytes do not match its SHA-256 is refused and its file removed', async () => {
  const before = readdirSync(snapshotDir()).sort();
  const meta = { index: 1_000_000, term: 1, confState: { voters: [memberId], learners: [] } };
  const status = await postSnapshot(heartbeat({ type: 'MsgSnap', snapshot: { meta, sha256: 'a'.repeat(64) } }), 'not the bytes that were hashed');
  assert.is(status, 400);
  assert.equal(readdirSync(snapshotDir()).sort(), before);
  // The member still serves: nothing was applied.
  assert.is((await server.fetch(`${server.url}/readyz`)).status, 200);
});

test.run();
