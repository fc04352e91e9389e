// kubectl logs and get -w with the real kubectl v1.32 against a real server and an agent on Docker: --tail,
// --timestamps, --limit-bytes, --since-time, -f, -l over several pods, --previous of a restarted container, and
// a watch that prints a row for an object created while it runs.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { eventually } from '../support/eventually.js';
import { setUp } from '../support/set-up.js';
import { StreamCluster, boxPod, requireKubectl } from './stream-cluster.js';

const cluster = new StreamCluster(`kubectl-logs-${process.pid}`);
const COUNTER = 'i=0; while true; do i=$((i+1)); echo "line $i"; sleep 0.3; done';

setUp(test, async () => {
  requireKubectl();
  await cluster.start();
  await cluster.srv.createPod(boxPod('talker', cluster.node, COUNTER, { labels: { app: 'talk' } }));
  await cluster.srv.createPod(boxPod('talker2', cluster.node, 'while true; do echo "second here"; sleep 0.3; done', { labels: { app: 'talk' } }));
  await cluster.srv.createPod({ ...boxPod('crasher', cluster.node, 'echo "attempt $(cat /proc/sys/kernel/random/uuid)"; sleep 0.5; exit 1') });
  await cluster.srv.podReady('talker', 90_000);
  await cluster.srv.podReady('talker2', 90_000);
  await eventually('talker has written 5 lines', async () => (await cluster.kubectl(['logs', 'talker'])).stdout.includes('line 5\n'), 30_000);
}, () => cluster.stop());

test('--tail, --timestamps and --limit-bytes shape what is read; --since-time in the future reads nothing', async () => {
  const tail = await cluster.kubectl(['logs', 'talker', '--tail=2']);
  assert.is(tail.code, 0, tail.stderr);
  assert.match(tail.stdout, /^line \d+\nline \d+\n$/);
  const stamped = await cluster.kubectl(['logs', 'talker', '--tail=1', '--timestamps']);
  assert.match(stamped.stdout, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z line \d+\n$/);
  const limited = await cluster.kubectl(['logs', 'talker', '--limit-bytes=7']);
  assert.is(limited.stdout, 'line 1\n');
  const future = await cluster.kubectl(['logs', 'talker', `--since-time=${new Date(Date.now() + 3_600_000).toISOString().replace(/\.\d+Z$/, 'Z')}`]);
  assert.is(future.code, 0, future.stderr);
  assert.is(future.stdout, '');
  const recent = await cluster.kubectl(['logs', 'talker', '--since=1h']);
  assert.match(recent.stdout, /^line 1\n/);
});

test('-f follows: lines written after it started arrive', async () => {
  const child = cluster.spawnKubectl(['logs', '-f', 'talker', '--tail=1']);
  let seen = '';
  child.stdout!.on('data', (d: Buffer) => { seen += d; });
  try {
    const first = Number(await eventually('the first followed line', () => /line (\d+)\n/.exec(seen)?.[1]));
    await eventually('a later line through -f', () => seen.includes(`line ${first + 3}\n`), 30_000);
  } finally {
    child.kill('SIGKILL');
  }
});

test('-l reads every matching pod (with --prefix naming each)', async () => {
  const r = await cluster.kubectl(['logs', '-l', 'app=talk', '--prefix', '--tail=1']);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /^\[pod\/talker\/main\] line \d+$/m);
  assert.match(r.stdout, /^\[pod\/talker2\/main\] second here$/m);
});

test('--previous reads the attempt before a restart; a container never restarted has none (kube\'s error)', async () => {
  await eventually('crasher restarted', async () => ((await cluster.srv.getPod('crasher'))?.status?.containerStatuses?.[0]?.restartCount ?? 0) >= 1, 60_000);
  const previous = await eventually('the previous attempt\'s log', async () => {
    const r = await cluster.kubectl(['logs', 'crasher', '--previous']);
    return r.code === 0 && /^attempt \S+\n$/.test(r.stdout) ? r.stdout : undefined;
  }, 30_000);
  const current = await cluster.kubectl(['logs', 'crasher']);
  assert.is.not(current.stdout, previous, 'a different attempt');
  const none = await cluster.kubectl(['logs', 'talker', '--previous']);
  assert.is(none.code, 1);
  assert.is(none.stderr, 'Error from server (BadRequest): previous terminated container "main" in pod "talker" not found\n');
});

test('get -w prints a row for an object created while it watches', async () => {
  const child = cluster.spawnKubectl(['get', 'configmaps', '-w']);
  let seen = '';
  child.stdout!.on('data', (d: Buffer) => { seen += d; });
  child.stderr!.on('data', (d: Buffer) => { seen += d; });
  try {
    // Created before or after the watch's first list, the object gets its row either way.
    await cluster.srv.client.request('POST', '/api/v1/namespaces/default/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'watched-cm' }, data: { a: '1' } });
    await eventually('a row for watched-cm', () => /^watched-cm\s+1\s+\S+$/m.test(seen), 30_000);
  } finally {
    child.kill('SIGKILL');
  }
});

test.run();
