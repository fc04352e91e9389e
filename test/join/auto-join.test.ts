// The --join auto rules (server/join/auto-join.ts) on an in-memory network. Forming together (`form`, the
// server's --cluster-init): candidates elect the lowest id, a formed cluster that proves the secret wins, a false
// fingerprint is ignored. Join only (the default): the cluster that proves the secret is joined, and when none
// does in time the search fails naming what it saw, never advertising a candidacy nor forming a cluster.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Peer } from '../../discovery/advertisement.js';
import { clusterFingerprint } from '../../discovery/locate.js';
import { autoJoin, type AutoJoinDecision } from '../../server/join/auto-join.js';
import { memoryNetwork, proofFetch } from './memory-network.js';
import { eventually } from '../support/eventually.js';
import { stopAfterEach } from '../support/set-up.js';

const SECRET = 'the-cluster-secret-of-this-test';
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

test('three candidates forming together: the lowest id bootstraps, the others join its cluster once it is advertised', async () => {
  const net = memoryNetwork();
  const stop = new AbortController();
  stopLater(() => stop.abort());
  const fetchProof = proofFetch(SECRET, 'cluster-one');
  const start = (id: string) => autoJoin({ discovery: net, secret: SECRET, apiUrl: `http://${id}:7400`, candidateId: id, form: true, settleMs: SETTLE_MS, fetch: fetchProof }, stop.signal);
  const b = start('c-b');
  const a = start('c-a');
  const c = start('c-c');
  const first = await withTimeout(a, 'the lowest candidate');
  assert.is(first.action, 'bootstrap');
  // The winner forms its cluster and advertises it, then withdraws its candidacy.
  void net.advertise({ clusterId: 'cluster-one', role: 'server', id: '1', apiUrl: 'http://c-a:7400', fingerprint: clusterFingerprint(SECRET) }, stop.signal);
  await (first as Extract<AutoJoinDecision, { action: 'bootstrap' }>).withdraw();
  const others = await withTimeout(Promise.all([b, c]), 'the other candidates');
  assert.equal(others, [
    { action: 'join', url: 'http://c-a:7400', clusterId: 'cluster-one' },
    { action: 'join', url: 'http://c-a:7400', clusterId: 'cluster-one' },
  ]);
  stop.abort();
});

test('a server advertising our fingerprint without holding the secret is ignored; servers of other clusters are never asked', async () => {
  const net = memoryNetwork();
  const stop = new AbortController();
  stopLater(() => stop.abort());
  const asked: string[] = [];
  const fetchProof = proofFetch('a-different-secret-entirely', 'fake', asked);
  void net.advertise({ clusterId: 'fake', role: 'server', id: '9', apiUrl: 'http://impostor:7400', fingerprint: clusterFingerprint(SECRET) }, stop.signal);
  void net.advertise({ clusterId: 'other', role: 'server', id: '8', apiUrl: 'http://other:7400', fingerprint: clusterFingerprint('another-cluster-secret') }, stop.signal);
  const logs: string[] = [];
  const decision = await withTimeout(autoJoin({ discovery: net, secret: SECRET, apiUrl: 'http://me:7400', form: true, settleMs: SETTLE_MS, fetch: fetchProof, log: (m) => logs.push(m) }, stop.signal), 'the lone candidate');
  assert.is(decision.action, 'bootstrap', 'nothing trustworthy was seen, so the lone candidate forms the cluster');
  assert.equal([...new Set(asked)], ['impostor:7400']);
  assert.ok(logs.some((l) => /ignoring server 9 at http:\/\/impostor:7400.*does not hold the cluster secret/.test(l)), logs.join('\n'));

  // The same network, joining only: nothing to join, and the failure names the impostor and the other cluster.
  const err = await rejection(autoJoin({ discovery: net, secret: SECRET, apiUrl: 'http://me:7400', joinTimeoutMs: JOIN_TIMEOUT_MS, fetch: fetchProof }, stop.signal), 'joining only');
  assert.match(err.message, /^no cluster accepted the token within 0.5 s: /);
  assert.match(err.message, /http:\/\/impostor:7400: proof does not match: this server does not hold the cluster secret given/);
  assert.match(err.message, /clusters with another secret \(http:\/\/other:7400, cluster other\)/);
  assert.match(err.message, /contents of <data>\/cluster-secret on any member/);
  stop.abort();
});

test('a server joining only joins a formed cluster at once, or one that appears within the bound', async () => {
  const net = memoryNetwork();
  const stop = new AbortController();
  stopLater(() => stop.abort());
  void net.advertise({ clusterId: 'formed', role: 'server', id: '5', apiUrl: 'http://leader:7400', fingerprint: clusterFingerprint(SECRET) }, stop.signal);
  const decision = await withTimeout(autoJoin({ discovery: net, secret: SECRET, apiUrl: 'http://me:7400', fetch: proofFetch(SECRET, 'formed') }, stop.signal), 'joining');
  assert.equal(decision, { action: 'join', url: 'http://leader:7400', clusterId: 'formed' });

  const later = memoryNetwork();
  const pending = autoJoin({ discovery: later, secret: SECRET, apiUrl: 'http://me:7400', joinTimeoutMs: WAIT_MS, fetch: proofFetch(SECRET, 'late') }, stop.signal);
  setTimeout(() => void later.advertise({ clusterId: 'late', role: 'server', id: '6', apiUrl: 'http://late:7400', fingerprint: clusterFingerprint(SECRET) }, stop.signal), 200);
  assert.equal(await withTimeout(pending, 'joining the late cluster'), { action: 'join', url: 'http://late:7400', clusterId: 'late' });
  stop.abort();
});

test('servers joining only with a token no cluster knows neither advertise a candidacy nor form a cluster: they fail, naming why', async () => {
  // The set-up: a plain first server (its own secret), two more given a token it does not know.
  const net = memoryNetwork();
  const stop = new AbortController();
  void net.advertise({ clusterId: 'first', role: 'server', id: '1', apiUrl: 'http://first:7400', fingerprint: clusterFingerprint('the-first-servers-own-secret') }, stop.signal);
  const seen: Peer[][] = [];
  const watcher = new AbortController();
  void net.browse({}, (p) => seen.push(p), watcher.signal);
  const asked: string[] = [];
  const start = (id: string) => autoJoin({ discovery: net, secret: SECRET, apiUrl: `http://${id}:7400`, candidateId: id, settleMs: 50, joinTimeoutMs: JOIN_TIMEOUT_MS, fetch: proofFetch(SECRET, 'x', asked) }, stop.signal);
  const errors = await Promise.all([rejection(start('c-a'), 'c-a'), rejection(start('c-b'), 'c-b')]);
  for (const err of errors) assert.match(err.message, /^no cluster accepted the token within 0.5 s: the servers found belong to clusters with another secret \(http:\/\/first:7400, cluster first\)\. A server given --token only joins; /);
  assert.equal(asked, [], 'a server of another cluster is never sent a proof request');
  assert.ok(seen.every((peers) => peers.every((p) => p.id === '1')), `only the first server was ever advertised: ${JSON.stringify(seen)}`);

  const empty = await rejection(autoJoin({ discovery: memoryNetwork(), secret: SECRET, apiUrl: 'http://me:7400', joinTimeoutMs: JOIN_TIMEOUT_MS }, stop.signal), 'an empty network');
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
  const pending = autoJoin({ discovery: net, secret: SECRET, apiUrl: 'http://me:7400', candidateId: 'z', form: true, settleMs: 60_000 }, stop.signal);
  await eventually('the candidacy to be seen', () => seen.at(-1)?.length === 1, WAIT_MS);
  stop.abort();
  await pending.then(() => assert.unreachable('resolved after abort'), (err: Error) => assert.match(err.message, /stopped before/));
  assert.equal(seen.at(-1), [], 'the candidacy was withdrawn');
  watcher.abort();
});

test.run();
