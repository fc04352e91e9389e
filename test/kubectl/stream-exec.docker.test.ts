// kubectl exec, attach and cp with the real kubectl v1.32 against a real server and an agent on Docker: the
// WebSocket remote command protocol (v5.channel.k8s.io) through the server to the agent, stdin with its EOF,
// stdout and stderr apart, the exit code on the error channel, and tar over exec both ways.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { eventually } from '../support/eventually.js';
import { setUp } from '../support/set-up.js';
import { StreamCluster, boxPod, requireKubectl } from './stream-cluster.js';

const cluster = new StreamCluster(`kubectl-exec-${process.pid}`);

setUp(test, async () => {
  requireKubectl();
  await cluster.start();
  await cluster.srv.createPod(boxPod('box', cluster.node, 'i=0; while true; do i=$((i+1)); echo "tick $i"; sleep 0.5; done'));
  await cluster.srv.podReady('box', 90_000);
}, () => cluster.stop());

test('exec -i: stdin reaches the command to its EOF, stdout and stderr come apart, the exit code is kubectl\'s', async () => {
  const r = await cluster.kubectl(['exec', '-i', 'box', '--', 'sh', '-c', 'cat; echo to-stderr >&2; exit 3'], 'line one\nline two\n');
  assert.is(r.stdout, 'line one\nline two\n');
  assert.match(r.stderr, /to-stderr/);
  assert.match(r.stderr, /command terminated with exit code 3/);
  assert.is(r.code, 3);
});

test('exec without stdin: output and exit code 0', async () => {
  const r = await cluster.kubectl(['exec', 'box', '-c', 'main', '--', 'sh', '-c', 'echo hello from $(hostname)']);
  assert.is(r.stderr, '');
  assert.match(r.stdout, /^hello from \S+\n$/);
  assert.is(r.code, 0);
});

test('exec into a container the pod does not have is refused with kubectl\'s error', async () => {
  const r = await cluster.kubectl(['exec', 'box', '-c', 'nope', '--', 'true']);
  assert.is(r.code, 1);
  assert.is(r.stderr, 'Error from server (BadRequest): container nope is not valid for pod box\n');
});

test('cp both ways: a local tree into the pod and a file out of it (tar over exec)', async () => {
  const local = join(cluster.srv.dir, 'cp-in');
  mkdirSync(join(local, 'sub'), { recursive: true });
  writeFileSync(join(local, 'a.txt'), 'alpha\n');
  writeFileSync(join(local, 'sub', 'b.bin'), Buffer.from([0, 1, 2, 255, 254, 10]));
  const put = await cluster.kubectl(['cp', local, 'default/box:/tmp/cp-in']);
  assert.is(put.code, 0, put.stderr);
  const listed = await cluster.kubectl(['exec', 'box', '--', 'sh', '-c', 'cat /tmp/cp-in/a.txt; od -An -tu1 /tmp/cp-in/sub/b.bin']);
  assert.is(listed.stdout.replace(/\s+/g, ' ').trim(), 'alpha 0 1 2 255 254 10');

  await cluster.kubectl(['exec', 'box', '--', 'sh', '-c', 'printf "out of the pod\\n" > /tmp/out.txt']);
  const out = join(cluster.srv.dir, 'out.txt');
  const got = await cluster.kubectl(['cp', 'default/box:/tmp/out.txt', out]);
  assert.is(got.code, 0, got.stderr);
  assert.is(readFileSync(out, 'utf8'), 'out of the pod\n');
});

test('attach streams the main process\'s output as it is written', async () => {
  const child = cluster.spawnKubectl(['attach', 'box']);
  let seen = '';
  child.stdout!.on('data', (d: Buffer) => { seen += d; });
  child.stderr!.on('data', (d: Buffer) => { seen += d; });
  try {
    // Two ticks written after the attach: the stream follows the process, not a log read once.
    const first = await eventually('a tick through attach', () => /tick (\d+)\n/.exec(seen)?.[1]);
    await eventually('a later tick through attach', () => new RegExp(`tick ${Number(first) + 2}\\n`).test(seen), 30_000);
  } finally {
    child.kill('SIGKILL');
  }
});

test.run();
