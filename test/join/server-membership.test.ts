// planJoin (server/join/server-membership.ts): whether a server resumes, joins or forms its cluster. A server
// given a token only ever joins, and only with a server token that pins the CA; forming is --cluster-init (with a
// strong bare secret) or no token at all; an agent join token is named as such; a data dir that holds a member
// resumes it whatever the flags say.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Peer } from '../../discovery/advertisement.js';
import { caFingerprint, newJoinToken } from '../../discovery/locate.js';
import { formatClusterToken } from '../../client/tokens.js';
import { planJoin, type JoinOptions } from '../../server/join/server-membership.js';
import { SERVER_TOKEN_HINT } from '../../server/join/auto-join.js';
import { memoryNetwork } from './memory-network.js';

const SECRET = 'the-cluster-secret-of-this-test-Xq7Zp2Lk9Wv4';
/** A CA hash no server of the test network has. */
const HASH = 'ab'.repeat(32);
const SERVER_TOKEN = formatClusterToken(HASH, `server:${SECRET}`);

/** Runs `body` with a fresh data dir, a network holding one server of another cluster, and a record of all ads. */
async function withSetting(body: (s: { dataDir: string; options: (o: Partial<JoinOptions>) => JoinOptions; seen: Peer[][]; logs: string[] }) => Promise<void>): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'flotilla-plan-'));
  const net = memoryNetwork();
  const stop = new AbortController();
  const seen: Peer[][] = [];
  const logs: string[] = [];
  try {
    void net.advertise({ clusterId: 'first', role: 'server', id: '1', apiUrl: 'https://first:7400', fingerprint: caFingerprint('cd'.repeat(32)) }, stop.signal);
    void net.browse({}, (p) => seen.push(p), stop.signal);
    await body({ dataDir, seen, logs, options: (o) => ({ dataDir, apiUrl: 'https://me:7400', discovery: net, settleMs: 50, joinTimeoutMs: 300, log: (m) => logs.push(m), ...o }) });
  } finally {
    stop.abort();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const never = new AbortController().signal;

async function refusal(p: Promise<unknown>): Promise<string> {
  return p.then((v) => assert.unreachable(`planned ${JSON.stringify(v)}`), (err: Error) => err.message) as Promise<string>;
}

test('an agent join token given to a server is refused at once, bare or full, whatever else is asked, and nothing is advertised', async () => {
  await withSetting(async ({ options, seen }) => {
    const { id, token } = newJoinToken();
    for (const given of [token, formatClusterToken(HASH, token)]) {
      for (const o of [{ join: 'auto' }, { join: 'auto', clusterInit: true }, { join: 'https://first:7400' }, { clusterInit: true }]) {
        const message = await refusal(planJoin(options({ ...o, token: given }), never));
        assert.is(message, `--token is an agent join token (flt1.${id}.…): it registers agents, and a server can neither join nor form a cluster with it; ${SERVER_TOKEN_HINT}`, JSON.stringify(o));
      }
    }
    assert.ok(seen.every((peers) => peers.length === 1), 'no candidacy was ever advertised');
  });
});

test('--join auto with a token no cluster knows fails after the bound, naming the clusters it saw; it never forms one', async () => {
  await withSetting(async ({ options, seen }) => {
    const message = await refusal(planJoin(options({ join: 'auto', token: SERVER_TOKEN }), never));
    assert.match(message, /^no cluster accepted the token within 0\.3 s: the servers found belong to clusters with another CA \(https:\/\/first:7400, cluster first\)/);
    assert.ok(seen.every((peers) => peers.length === 1), 'no candidacy was ever advertised');
  });
});

test('a token alone does not form a cluster; --cluster-init does with a strong bare secret, with or without --join auto; no token forms one', async () => {
  await withSetting(async ({ options, logs }) => {
    assert.match(await refusal(planJoin(options({ token: SECRET }), never)), /without --join: a server given a token only joins \(--join URL or --join auto\); to form a new cluster with this secret, add --cluster-init/);
    assert.equal(await planJoin(options({ token: SECRET, clusterInit: true }), never), { secret: SECRET });
    assert.equal(await planJoin(options({}), never), {});
    assert.equal(logs, ['forming a new cluster with the cluster secret given (--cluster-init)', 'forming a new cluster (no --join given)']);
    const together = await planJoin(options({ join: 'auto', token: SECRET, clusterInit: true }), never);
    assert.equal(Object.keys(together), ['secret', 'withdrawCandidacy'], 'the lone candidate forms the cluster');
    await together.withdrawCandidacy!();
    assert.match(await refusal(planJoin(options({ join: 'https://first:7400', token: SECRET, clusterInit: true }), never)), /--cluster-init forms a new cluster and --join URL joins one/);
    assert.equal(await planJoin(options({ join: 'https://first:7400', token: SERVER_TOKEN }), never), { join: 'https://first:7400', caHash: HASH, secret: SECRET });
    assert.match(await refusal(planJoin(options({ clusterInit: true, token: SERVER_TOKEN }), never)), /--cluster-init forms a new cluster with a CA of its own, and this server token pins an existing cluster's CA/);
  });
});

test('a token without a CA hash does not join: the secret goes only to a server whose CA was checked', async () => {
  await withSetting(async ({ options }) => {
    for (const o of [{ join: 'https://first:7400' }, { join: 'auto' }]) {
      assert.is(await refusal(planJoin(options({ ...o, token: SECRET }), never)), `--token carries no cluster CA hash, and a server sends the cluster secret only to a server whose CA it checked first; ${SERVER_TOKEN_HINT}`, JSON.stringify(o));
    }
  });
});

test('a weak secret chosen for --cluster-init is refused, naming how to make a good one', async () => {
  await withSetting(async ({ options }) => {
    for (const weak of ['short-secret', 'a'.repeat(40), 'abababababababababababababababababab', 'password1password1password1password1']) {
      const message = await refusal(planJoin(options({ token: weak, clusterInit: true }), never));
      assert.match(message, /the cluster secret \(--token\) is too weak: it needs at least 32 characters of some variety .*openssl rand -base64 32/, weak);
    }
  });
});

test('a data dir that holds a member resumes it: no join or form decision, whatever the flags', async () => {
  await withSetting(async ({ dataDir, options, seen }) => {
    writeFileSync(join(dataDir, 'cluster.json'), JSON.stringify({ clusterId: 'c', memberId: 7 }));
    for (const o of [{ join: 'auto', token: newJoinToken().token }, { join: 'auto', token: SECRET }, { token: SECRET }, { join: 'https://first:7400', token: SERVER_TOKEN }]) {
      assert.equal(await planJoin(options(o), never), {}, JSON.stringify(o));
    }
    assert.ok(seen.every((peers) => peers.length === 1));
  });
});

test.run();
