// The --join auto rules (server/join/auto-join.ts) on an in-memory network. Forming together (`form`, the
// server's --cluster-init with a bare secret): candidates elect the lowest id, a formed cluster that proves the
// secret wins, one that does not is ignored. Join only (the default, with a server token): the cluster whose
// advertised CA hash is the token's and that proves holding that CA's key is joined; when none does in time the
// search fails naming what it saw, never advertising a candidacy nor forming a cluster.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Peer } from '../../discovery/advertisement.js';
import { caFingerprint } from '../../discovery/locate.js';
import { autoJoin, type AutoJoinDecision } from '../../server/join/auto-join.js';
import { ClusterCa } from '../../server/pki/ca.js';
import { memoryNetwork, memoryServer, networkExchange } from './memory-network.js';
import { eventually } from '../support/eventually.js';
import { stopAfterEach } from '../support/set-up.js';

const SECRET = 'the-cluster-secret-of-this-test-Xq7Zp2Lk9Wv4';
const SETTLE_MS = 300;
const JOIN_TIMEOUT_MS = 500;
// Bounds, not targets: a decision takes about SETTLE_MS (or JOIN_TIMEOUT_MS).
const WAIT_MS = 10_000;

function withTimeout<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<T>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} took longer than ${WAIT_MS} ms`)), WAIT_MS); });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** The error a promise rejects with; fails the test when it resolves. */
async function rejection(p: Promise<unknown>, what: string): Promise<Error> {
  return withTimeout(p, what).then((v) => assert.unreachable(`${what} resolved with ${JSON.stringify(v)}`), (err: Error) => err) as Promise<Error>;
}

const stopLater = stopAfterEach(test);

test('three candidates forming together: the lowest id bootstraps, the others join its cluster once it is advertised, pinning its CA', async () => {
  const net = memoryNetwork();
  const stop = new AbortController();
  stopLater(() => stop.abort());
  const formed = await memoryServer('cluster-one', SECRET);
  const exchange = networkExchange({ 'c-a:7400': formed });
  const start = (id: string) => autoJoin({ discovery: net, secret: SECRET, apiUrl: `https://${id}:7400`, candidateId: id, form: true, settleMs: SETTLE_MS, exchange }, stop.signal);
  const b = start('c-b');
  const a = start('c-a');
  const c = start('c-c');
  const first = await withTimeout(a, 'the lowest candidate');
  assert.is(first.action, 'bootstrap');
  // The winner forms its cluster and advertises it (with its CA hash), then withdraws its candidacy.
  void net.advertise({ clusterId: 'cluster-one', role: 'server', id: '1', apiUrl: 'https://c-a:7400', fingerprint: caFingerprint(formed.ca.hash) }, stop.signal);
  await (first as Extract<AutoJoinDecision, { action: 'bootstrap' }>).withdraw();
  const others = await withTimeout(Promise.all([b, c]), 'the other candidates');
  assert.equal(others, [
    { action: 'join', url: 'https://c-a:7400', clusterId: 'cluster-one', caHash: formed.ca.hash },
    { action: 'join', url: 'https://c-a:7400', clusterId: 'cluster-one', caHash: formed.ca.hash },
  ]);
  stop.abort();
});

test('forming: a formed server that does not hold the secret is ignored; joining: one advertising our CA hash without holding that CA is refused, others are never asked', async () => {
  const net = memoryNetwork();
  const stop = new AbortController();
  stopLater(() => stop.abort());
  const asked: string[] = [];
  const ours = await ClusterCa.create('ours');
  const impostor = await memoryServer('fake', 'a-different-secret-entirely-0123456789abc', asked);
  const other = await memoryServer('other', 'another-cluster-secret-0123456789abcdefgh', asked);
  const exchange = networkExchange({ 'impostor:7400': impostor, 'other:7400': other });
  // The impostor claims our CA's hash in its advertisement; it holds another CA.
  void net.advertise({ clusterId: 'fake', role: 'server', id: '9', apiUrl: 'https://impostor:7400', fingerprint: caFingerprint(ours.hash) }, stop.signal);
  void net.advertise({ clusterId: 'other', role: 'server', id: '8', apiUrl: 'https://other:7400', fingerprint: caFingerprint(other.ca.hash) }, stop.signal);
  const logs: string[] = [];
  const decision = await withTimeout(autoJoin({ discovery: net, secret: SECRET, apiUrl: 'https://me:7400', form: true, settleMs: SETTLE_MS, exchange, log: (m) => logs.push(m) }, stop.signal), 'the lone candidate');
  assert.is(decision.action, 'bootstrap', 'nothing trustworthy was seen, so the lone candidate forms the cluster');
  assert.ok(logs.some((l) => /ignoring server 9 at https:\/\/impostor:7400.*does not hold the cluster secret/.test(l)), logs.join('\n'));
  assert.ok(logs.some((l) => /ignoring server 8 at https:\/\/other:7400.*does not hold the cluster secret/.test(l)), logs.join('\n'));

  // The same network, joining only with a server token of our CA: the impostor is asked and refused, the other cluster never.
  asked.length = 0;
  const err = await rejection(autoJoin({ discovery: net, secret: SECRET, caHash: ours.hash, apiUrl: 'https://me:7400', joinTimeoutMs: JOIN_TIMEOUT_MS, exchange }, stop.signal), 'joining only');
  assert.match(err.message, /^no cluster accepted the token within 0.5 s: /);
  assert.match(err.message, new RegExp(`https://impostor:7400: the server at https://impostor:7400 presents CA sha256:${impostor.ca.hash}, the token pins sha256:${ours.hash}: wrong cluster or a man in the middle`));
  assert.match(err.message, /clusters with another CA \(https:\/\/other:7400, cluster other\)/);
  assert.match(err.message, /a server joins with the server token/);
  assert.equal([...new Set(asked)], ['impostor:7400']);
  stop.abort();
});

test('a server joining only joins a formed cluster at once, or one that appears within the bound', async () => {
  const net = memoryNetwork();
  const stop = new AbortController();
  stopLater(() => stop.abort());
  const formed = await memoryServer('formed', SECRET);
  void net.advertise({ clusterId: 'formed', role: 'server', id: '5', apiUrl: 'https://leader:7400', fingerprint: caFingerprint(formed.ca.hash) }, stop.signal);
  const decision = await withTimeout(autoJoin({ discovery: net, secret: SECRET, caHash: formed.ca.hash, apiUrl: 'https://me:7400', exchange: networkExchange({ 'leader:7400': formed }) }, stop.signal), 'joining');
  assert.equal(decision, { action: 'join', url: 'https://leader:7400', clusterId: 'formed', caHash: formed.ca.hash });

  const later = memoryNetwork();
  const late = await memoryServer('late', SECRET);
  const pending = autoJoin({ discovery: later, secret: SECRET, caHash: late.ca.hash, apiUrl: 'https://me:7400', joinTimeoutMs: WAIT_MS, exchange: networkExchange({ 'late:7400': late }) }, stop.signal);
  setTimeout(() => void later.advertise({ clusterId: 'late', role: 'server', id: '6', apiUrl: 'https://late:7400', fingerprint: caFingerprint(late.ca.hash) }, stop.signal), 200);
  assert.equal(await withTimeout(pending, 'joining the late cluster'), { action: 'join', url: 'https://late:7400', clusterId: 'late', caHash: late.ca.hash });
  stop.abort();
});

test('servers joining only with a token no cluster knows neither advertise a candidacy nor form a cluster: they fail, naming why', async () => {
  // The set-up: a plain first server (its own CA), two more given a token that pins another.
  const net = memoryNetwork();
  const stop = new AbortController();
  const asked: string[] = [];
  const first = await memoryServer('first', 'the-first-servers-own-secret-0123456789ab', asked);
  void net.advertise({ clusterId: 'first', role: 'server', id: '1', apiUrl: 'https://first:7400', fingerprint: caFingerprint(first.ca.hash) }, stop.signal);
  const seen: Peer[][] = [];
  const watcher = new AbortController();
  void net.browse({}, (p) => seen.push(p), watcher.signal);
  const pinned = (await ClusterCa.create('elsewhere')).hash;
  const start = (id: string) => autoJoin({ discovery: net, secret: SECRET, caHash: pinned, apiUrl: `https://${id}:7400`, candidateId: id, settleMs: 50, joinTimeoutMs: JOIN_TIMEOUT_MS, exchange: networkExchange({ 'first:7400': first }) }, stop.signal);
  const errors = await Promise.all([rejection(start('c-a'), 'c-a'), rejection(start('c-b'), 'c-b')]);
  for (const err of errors) assert.match(err.message, /^no cluster accepted the token within 0.5 s: the servers found belong to clusters with another CA \(https:\/\/first:7400, cluster first\)\. A server given --token only joins; /);
  assert.equal(asked, [], 'a server of another cluster is never sent a proof request');
  assert.ok(seen.every((peers) => peers.every((p) => p.id === '1')), `only the first server was ever advertised: ${JSON.stringify(seen)}`);

  const empty = await rejection(autoJoin({ discovery: memoryNetwork(), secret: SECRET, caHash: pinned, apiUrl: 'https://me:7400', joinTimeoutMs: JOIN_TIMEOUT_MS }, stop.signal), 'an empty network');
  assert.match(empty.message, /no Flotilla server answered on mDNS \(is multicast blocked on this network\? then give --join URL\)/);
  watcher.abort();
  stop.abort();
});

test('aborting before a decision rejects and withdraws the candidacy', async () => {
  const net = memoryNetwork();
  const stop = new AbortController();
  stopLater(() => stop.abort());
  const seen: Peer[][] = [];
  const watcher = new AbortController();
  stopLater(() => watcher.abort());
  void net.browse({}, (p) => seen.push(p), watcher.signal);
  const pending = autoJoin({ discovery: net, secret: SECRET, apiUrl: 'https://me:7400', candidateId: 'z', form: true, settleMs: 60_000 }, stop.signal);
  await eventually('the candidacy to be seen', () => seen.at(-1)?.length === 1, WAIT_MS);
  stop.abort();
  await pending.then(() => assert.unreachable('resolved after abort'), (err: Error) => assert.match(err.message, /stopped before/));
  assert.equal(seen.at(-1), [], 'the candidacy was withdrawn');
  watcher.abort();
});

test.run();
