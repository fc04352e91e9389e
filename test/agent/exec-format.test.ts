// A container whose program is for another architecture, on the FakeRuntime (its scripted output is what Docker
// 20.10 logs): the pod worker reports ExecFormatError with the image's and the node's platforms, in the
// terminated state and while it waits to restart, instead of Error and CrashLoopBackOff; an ordinary crash
// keeps the generic reasons.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EXEC_FORMAT_ERROR, PodWorkers, type WorkerPodStatus } from '../../node-agent/pod-worker.js';
import { FakeRuntime } from '../../node-agent/runtime/fake.js';
import { eventually } from '../support/eventually.js';

const dataDir = mkdtempSync(join(tmpdir(), 'flotilla-exec-format-'));
test.after(() => rmSync(dataDir, { recursive: true, force: true }));

async function crashLoop(image: string, output: string): Promise<WorkerPodStatus['containerStatuses'][number]> {
  const uid = `uid-${image.replace(/\W/g, '-')}`;
  const runtime = new FakeRuntime({ platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } });
  runtime.setBehaviour(image, { output: [output], exitAfterMs: 20, exitCode: 1 });
  const ac = new AbortController();
  const workers = new PodWorkers({
    runtime, clusterId: 'c', nodeName: 'pc', dataDir, sandboxImage: 'fake/pause', backoffBaseMs: 60_000, resyncMs: 100,
    nodePlatform: () => 'linux/amd64',
  });
  const running = workers.run(ac.signal);
  try {
    workers.update({ pod: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'default', uid }, spec: { nodeName: 'pc', containers: [{ name: 'main', image }] } }, configMaps: {}, secrets: {} });
    return await eventually('the container waits to restart', () => {
      const c = workers.get(uid)?.status?.containerStatuses[0];
      return c?.state.waiting && c.lastState.terminated ? c : undefined;
    });
  } finally {
    ac.abort();
    await running;
    await workers.delete(uid, 0);
  }
}

test('exec format error in the last log line: ExecFormatError naming the image\'s platform and the node\'s', async () => {
  const c = await crashLoop('web:1', 'exec /bin/web: exec format error');
  const message = 'exec /bin/web: exec format error: image "web:1" is linux/arm64/v8, node pc is linux/amd64';
  assert.equal({ reason: c.lastState.terminated!.reason, message: c.lastState.terminated!.message, exitCode: c.lastState.terminated!.exitCode },
    { reason: EXEC_FORMAT_ERROR, message, exitCode: 1 });
  assert.is(c.state.waiting!.reason, EXEC_FORMAT_ERROR);
  assert.is(c.state.waiting!.message, `${message}; back-off 1m0s restarting failed container=main pod=p`);
});

test('an ordinary crash stays Error and CrashLoopBackOff', async () => {
  const c = await crashLoop('crash:1', 'panic: something else');
  assert.is(c.lastState.terminated!.reason, 'Error');
  assert.is(c.state.waiting!.reason, 'CrashLoopBackOff');
});

test.run();
