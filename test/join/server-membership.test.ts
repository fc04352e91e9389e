// planJoin (server/join/server-membership.ts): whether a server resumes, joins or forms its cluster. A server
// given a token only ever joins; forming is --cluster-init or no token at all; an agent join token is named as
// such; a data dir that holds a member resumes it whatever the flags say.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Peer } from '../../discovery/advertisement.js';
import { clusterFingerprint, newJoinToken } from '../../discovery/locate.js';
import { planJoin, type JoinOptions } from '../../server/join/server-membership.js';
import { memoryNetwork } from './memory-network.js';

const SECRET = 'the-cluster-secret-of-this-test';

/** Runs `body` with a fresh data dir, a network holding one server of another cluster, and a record of all ads. */
async function withSetting(body: (s: { dataDir: string; options: (o: Partial<JoinOptions>) => JoinOptions; seen: Peer[][]; logs: string[] }) => Promise<void>): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'flotilla-plan-'));
  const net = memoryNetwork();
  const stop = new AbortController();
  const seen: Peer[][] = [];
  const logs: string[] = [];
  try {
    void net.advertise({ clusterId: 'first', role: 'server', id: '1', apiUrl: 'http://first:7400', fingerprint: clusterFingerprint('the-first-servers-own-secret') }, stop.signal);
    void net.browse({}, (p) => seen.push(p), stop.signal);
    await body({ dataDir, seen, logs, options: (o) => ({ dataDir, apiUrl: 'http://me:7400', discovery: net, settleMs: 50, joinTimeoutMs: 300, log: (m) => logs.push(m), ...o }) });
  } finally {
    stop.abort();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const never = new AbortController().signal;

async function refusal(p: Promise<unknown>): Promise<string> {
  return p.then((v) => assert.unreachable(`planned ${JSON.stringify(v)}`), (err: Error) => err.message) as Promise<string>;
}

test('an agent join token given to a server is refused at once, whatever else is asked, and nothing is advertised', async () => {
  await withSetting(async ({ options, seen }) => {
    const { id, token } = newJoinToken();
    for (const o of [{ join: 'auto' }, { join: 'auto', clusterInit: true }, { join: 'http://first:7400' }, { clusterInit: true }]) {
      const message = await refusal(planJoin(options({ ...o, secret: token }), never));
      assert.is(message, `--token is an agent join token (flt1.${id}.…): it registers agents, and a server can neither join nor form a cluster with it; a server joins with the cluster secret: the contents of <data>/cluster-secret on any member (--token "$(cat /var/lib/flotilla/cluster-secret)")`, JSON.stringify(o));
    }
    assert.ok(seen.every((peers) => peers.length === 1), 'no candidacy was ever advertised');
  });
});

test('--join auto with a secret no cluster knows fails after the bound, naming the clusters it saw; it never forms one', async () => {
  await withSetting(async ({ options, seen }) => {
    const message = await refusal(planJoin(options({ join: 'auto', secret: SECRET }), never));
    assert.match(message, /^no cluster accepted the token within 0\.3 s: the servers found belong to clusters with another secret \(http:\/\/first:7400, cluster first\)/);
    assert.ok(seen.every((peers) => peers.length === 1), 'no candidacy was ever advertised');
  });
});

test('a token alone does not form a cluster; --cluster-init does, with or without --join auto; no token forms one', async () => {
  await withSetting(async ({ options, logs }) => {
    assert.match(await refusal(planJoin(options({ secret: SECRET }), never)), /without --join: a server given a token only joins \(--join URL or --join auto\); to form a new cluster with this secret, add --cluster-init/);
    assert.equal(await planJoin(options({ secret: SECRET, clusterInit: true }), never), {});
    assert.equal(await planJoin(options({}), never), {});
    assert.equal(logs, ['forming a new cluster with the cluster secret given (--cluster-init)', 'forming a new cluster (no --join given)']);
    const together = await planJoin(options({ join: 'auto', secret: SECRET, clusterInit: true }), never);
    assert.equal(Object.keys(together), ['withdrawCandidacy'], 'the lone candidate forms the cluster');
    await together.withdrawCandidacy!();
    assert.match(await refusal(planJoin(options({ join: 'http://first:7400', secret: SECRET, clusterInit: true }), never)), /--cluster-init forms a new cluster and --join URL joins one/);
    assert.equal(await planJoin(options({ join: 'http://first:7400', secret: SECRET }), never), { join: 'http://first:7400' });
  });
});

test('a data dir that holds a member resumes it: no join or form decision, whatever the flags', async () => {
  await withSetting(async ({ dataDir, options, seen }) => {
    writeFileSync(join(dataDir, 'cluster.json'), JSON.stringify({ clusterId: 'c', memberId: 7 }));
    for (const o of [{ join: 'auto', secret: newJoinToken().token }, { join: 'auto', secret: SECRET }, { secret: SECRET }, { join: 'http://first:7400', secret: SECRET }]) {
      assert.equal(await planJoin(options(o), never), {}, JSON.stringify(o));
    }
    assert.ok(seen.every((peers) => peers.length === 1));
  });
});

test.run();
