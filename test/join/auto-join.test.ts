// The --join auto rule (server/join/auto-join.ts) on an in-memory network: candidates elect the lowest id,
// a formed cluster that proves the secret wins, and a false fingerprint is ignored.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { comparePeers, matchesFilter, type Advertisement, type Discovery, type Peer } from '../../discovery/advertisement.js';
import { PROOF_PATH, clusterFingerprint, membershipProof, tokenSha256 } from '../../discovery/locate.js';
import { autoJoin, type AutoJoinDecision } from '../../server/join/auto-join.js';
import { stopAfterEach } from '../support/set-up.js';

const SECRET = 'the-cluster-secret-of-this-test';
const SETTLE_MS = 300;
// Bounds, not targets: a decision takes about SETTLE_MS.
const WAIT_MS = 10_000;

/** One broadcast segment: every advertisement is seen by every browser at once. */
function memoryNetwork(): Discovery {
  const ads = new Map<symbol, Advertisement>();
  const browsers = new Set<() => void>();
  const changed = () => { for (const b of [...browsers]) b(); };
  const until = (signal: AbortSignal) => new Promise<void>((resolve) => {
    if (signal.aborted) resolve(); else signal.addEventListener('abort', () => resolve(), { once: true });
  });
  return {
    async advertise(ad, signal) {
      const key = Symbol(ad.id);
      ads.set(key, ad);
      changed();
      await until(signal);
      ads.delete(key);
      changed();
    },
    async browse(filter, onChange, signal) {
      let last = '';
      const report = () => {
        const peers: Peer[] = [...ads.values()].filter((a) => matchesFilter(a, filter)).map((a) => ({ ...a, addresses: [] })).sort(comparePeers);
        const text = JSON.stringify(peers);
        if (text !== last) { last = text; onChange(peers); }
      };
      browsers.add(report);
      report();
      await until(signal);
      browsers.delete(report);
    },
  };
}

/** A fetch that answers proofs as a member holding `secret` of `clusterId` would. */
function proofFetch(secret: string, clusterId: string): typeof fetch {
  return (async (input: string | URL | Request) => {
    const url = new URL(input instanceof Request ? input.url : input.toString());
    if (url.pathname !== PROOF_PATH) return new Response('not found', { status: 404 });
    const tokenId = url.searchParams.get('token-id')!;
    const nonce = url.searchParams.get('nonce')!;
    return Response.json({ clusterId, tokenId, nonce, proof: membershipProof(tokenSha256(secret), clusterId, tokenId, nonce) });
  }) as typeof fetch;
}

function withTimeout<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<T>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} took longer than ${WAIT_MS} ms`)), WAIT_MS); });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

const stopLater = stopAfterEach(test);

test('three candidates: the lowest id bootstraps, the others join its cluster once it is advertised', async () => {
  const net = memoryNetwork();
  const stop = new AbortController();
  stopLater(() => stop.abort());
  const fetchProof = proofFetch(SECRET, 'cluster-one');
  const start = (id: string) => autoJoin({ discovery: net, secret: SECRET, apiUrl: `http://${id}:7400`, candidateId: id, settleMs: SETTLE_MS, fetch: fetchProof }, stop.signal);
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
  const impostor = proofFetch('a-different-secret-entirely', 'fake');
  const fetchProof = (async (input: string | URL | Request, init?: RequestInit) => {
    asked.push(new URL(input instanceof Request ? input.url : input.toString()).host);
    return impostor(input, init);
  }) as typeof fetch;
  void net.advertise({ clusterId: 'fake', role: 'server', id: '9', apiUrl: 'http://impostor:7400', fingerprint: clusterFingerprint(SECRET) }, stop.signal);
  void net.advertise({ clusterId: 'other', role: 'server', id: '8', apiUrl: 'http://other:7400', fingerprint: clusterFingerprint('another-cluster-secret') }, stop.signal);
  const logs: string[] = [];
  const decision = await withTimeout(autoJoin({ discovery: net, secret: SECRET, apiUrl: 'http://me:7400', settleMs: SETTLE_MS, fetch: fetchProof, log: (m) => logs.push(m) }, stop.signal), 'the lone candidate');
  assert.is(decision.action, 'bootstrap', 'nothing trustworthy was seen, so the lone candidate forms the cluster');
  assert.equal([...new Set(asked)], ['impostor:7400']);
  assert.ok(logs.some((l) => /ignoring server 9 at http:\/\/impostor:7400.*does not hold the cluster secret/.test(l)), logs.join('\n'));
  stop.abort();
});

test('a candidate that sees a formed cluster joins it without waiting for the settle period', async () => {
  const net = memoryNetwork();
  const stop = new AbortController();
  stopLater(() => stop.abort());
  void net.advertise({ clusterId: 'formed', role: 'server', id: '5', apiUrl: 'http://leader:7400', fingerprint: clusterFingerprint(SECRET) }, stop.signal);
  // A lower candidate id than anyone: it would bootstrap if the formed cluster did not win.
  const decision = await withTimeout(autoJoin({ discovery: net, secret: SECRET, apiUrl: 'http://me:7400', candidateId: 'a', settleMs: 60_000, fetch: proofFetch(SECRET, 'formed') }, stop.signal), 'joining');
  assert.equal(decision, { action: 'join', url: 'http://leader:7400', clusterId: 'formed' });
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
  const pending = autoJoin({ discovery: net, secret: SECRET, apiUrl: 'http://me:7400', candidateId: 'z', settleMs: 60_000 }, stop.signal);
  stop.abort();
  await pending.then(() => assert.unreachable('resolved after abort'), (err: Error) => assert.match(err.message, /stopped before/));
  assert.equal(seen.at(-1), [], 'the candidacy was withdrawn');
  watcher.abort();
});

test.run();
