// Failover end to end: a real server process with short node timings and two real agent processes of hollow
// nodes (a-0..a-2 and b-0, b-1). A Deployment of 10 replicas survives one hollow node stopping and then a whole
// agent process being SIGKILLed: the pods run elsewhere within grace + eviction delay + 10 s, and when the
// nodes return the Deployment still has exactly 10 pods, the returning nodes having stopped the ones replaced.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { E2eCluster, PodCountWatch, deployment, isReady, podsReportedBy, type HollowAgent, type PodView } from './cluster.js';
import { eventually } from '../support/eventually.js';
import { setUp } from '../support/set-up.js';

// Agent processes renew their lease every 5 s, so the grace period must be longer than that.
const GRACE_S = 7;
const DELAY_S = 3;
const MOVE_LIMIT_MS = (GRACE_S + DELAY_S + 10) * 1000;
const cluster = new E2eCluster({ serverArgs: ['--node-grace-period', `${GRACE_S}s`, '--pod-eviction-delay', `${DELAY_S}s`] });
let a: HollowAgent;
let b: HollowAgent;

/** Waits for 10 ready pods of app=web, none on `away`, and no other pod of it. */
async function tenReadyAvoiding(away: string[], limitMs: number): Promise<PodView[]> {
  return eventually(`10 ready web pods, none on ${away.join(', ')}`, async () => {
    const pods = await cluster.pods('app=web');
    const live = pods.filter((p) => !p.metadata.deletionTimestamp);
    return live.length === 10 && live.every((p) => isReady(p) && !away.includes(p.spec.nodeName ?? '')) ? live : undefined;
  }, limitMs);
}

/** Watches the count while `returning` comes back, and checks the returning nodes run none of `replaced`. */
async function returnAndCheck(returning: string[], replaced: string[], bringBack: () => void): Promise<void> {
  const counts = new PodCountWatch(cluster, 'app=web');
  await counts.start();
  const back = Date.now();
  try {
    bringBack();
    await cluster.nodesReady(returning, 60_000);
    // The first report may predate the node's list of its pods; by the second one, replaced pods are stopped.
    for (const node of returning) {
      const running = await podsReportedBy(cluster, node, back, 2);
      assert.equal(running.filter((name) => replaced.includes(name)), [], `${node} still runs pods that were replaced elsewhere`);
    }
    await tenReadyAvoiding([], 10_000);
  } finally {
    await counts.stop();
  }
  assert.is(counts.highestLive, 10, 'never more than 10 live pods while the nodes returned');
  assert.ok(counts.lowestReady >= 10, `ready pods fell to ${counts.lowestReady} while the nodes returned`);
}

setUp(test, async () => {
  await cluster.start();
  a = await cluster.addAgent('a', 3);
  b = await cluster.addAgent('b', 2);
}, async () => {
  await cluster.stop();
});

test('a Deployment of 10 replicas spreads over the five hollow nodes', async () => {
  await cluster.client.request('POST', '/apis/apps/v1/namespaces/default/deployments', deployment('web', 10, 'app:1'));
  const pods = await tenReadyAvoiding([], 30_000);
  assert.equal([...new Set(pods.map((p) => p.spec.nodeName))].sort(), ['a-0', 'a-1', 'a-2', 'b-0', 'b-1']);
});

test('a stopped hollow node: its pods run elsewhere within grace + delay + 10 s; back, it keeps none of them', async () => {
  const onA0 = (await cluster.pods('app=web')).filter((p) => p.spec.nodeName === 'a-0').map((p) => p.metadata.name);
  assert.ok(onA0.length > 0, 'a-0 runs some web pods');
  a.control(['stop a-0']);
  await tenReadyAvoiding(['a-0'], MOVE_LIMIT_MS);
  const names = (await cluster.pods('app=web')).map((p) => p.metadata.name);
  assert.equal(names.filter((n) => onA0.includes(n)), [], 'the pods of a-0 were replaced, not kept');
  await returnAndCheck(['a-0'], onA0, () => a.control(['start a-0']));
});

test('a SIGKILLed agent process: its nodes\' pods run elsewhere; restarted from its caches, it stops the replaced ones', async () => {
  const onB = (await cluster.pods('app=web')).filter((p) => p.spec.nodeName?.startsWith('b-')).map((p) => p.metadata.name);
  assert.ok(onB.length > 0, 'the b nodes run some web pods');
  await b.process.kill('SIGKILL');
  await tenReadyAvoiding(['b-0', 'b-1'], MOVE_LIMIT_MS);
  await returnAndCheck(['b-0', 'b-1'], onB, () => b.restart());
});

test.run();
