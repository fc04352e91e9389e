// Pods on a real Docker engine with flotilla/testbox (busybox): hostPort, crash back-off, liveness, image pull
// back-off, OOM, delete, adoption by a new agent. Every container carries this run's node label and is removed
// after each test, pass or fail.
import { fixedPort } from '../support/server-process.js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DockerRuntime } from '../../node-agent/runtime/docker.js';
import { PodWorkers, type PodWorkerSettings, type WorkerPodStatus } from '../../node-agent/pod-worker.js';
import type { Container, PodSpec } from '../../api-types/index.js';
import type { PodInputs } from '../../node-agent/pod-actions.js';
import { LABEL_NODE, LABEL_POD_UID } from '../../node-agent/runtime/types.js';
import { eventually } from '../support/eventually.js';
import { stopAfterEach } from '../support/set-up.js';

const TESTBOX = 'flotilla/testbox:latest';
const nodeName = `docker-test-${process.pid}`;
const runtime = new DockerRuntime();
const dataDir = mkdtempSync(join(tmpdir(), 'flotilla-pods-docker-'));
let serial = 0;
const stopLater = stopAfterEach(test);

function podInputs(containers: Array<Partial<Container>>, spec: Partial<PodSpec> = {}, extra: Partial<PodInputs> = {}): PodInputs {
  const n = ++serial;
  return {
    pod: {
      apiVersion: 'v1', kind: 'Pod',
      metadata: { name: `pod-${n}`, namespace: 'test', uid: `${process.pid}-${n}` },
      spec: { nodeName, terminationGracePeriodSeconds: 1, containers: containers.map((c, i) => ({ name: `c${i}`, image: TESTBOX, ...c })), ...spec },
    },
    configMaps: {},
    secrets: {},
    ...extra,
  };
}

function agent(overrides: Partial<PodWorkerSettings> = {}) {
  const statuses: WorkerPodStatus[] = [];
  const settings: PodWorkerSettings = {
    runtime, clusterId: 'cluster-a', nodeName, dataDir, backoffBaseMs: 200, backoffMaxMs: 2000, resyncMs: 1000,
    onStatus: (_i, s) => statuses.push(s),
    ...overrides,
  };
  const workers = new PodWorkers(settings);
  const ac = new AbortController();
  const running = workers.run(ac.signal);
  const handle = { workers, statuses, stop: async () => { ac.abort(); await running; } };
  stopLater(handle.stop);
  return handle;
}

const statusOf = (workers: PodWorkers, inputs: PodInputs) => workers.get(inputs.pod.metadata.uid!)?.status;
const waitingReason = (s: WorkerPodStatus | undefined) => {
  const st = s?.containerStatuses[0]?.state;
  return st && st.waiting !== undefined ? st.waiting.reason : undefined;
};


test.after.each(async () => {
  for (const c of await runtime.listContainers({ [LABEL_NODE]: nodeName })) await runtime.removeContainer(c.id);
});

test.after(() => rmSync(dataDir, { recursive: true, force: true }));

test('a pod serves on its hostPort: ConfigMap file, env from a Secret, pause sandbox', async () => {
  const { workers } = agent();
  const port = await fixedPort();
  const inputs = podInputs(
    [{
      command: ['httpd', '-f', '-p', '8080', '-h', '/www'],
      ports: [{ containerPort: 8080, hostPort: port }],
      env: [{ name: 'GREETING', valueFrom: { secretKeyRef: { name: 'words', key: 'greeting' } } }],
      volumeMounts: [{ name: 'site', mountPath: '/www' }],
      readinessProbe: { httpGet: { path: '/index.html', port: 8080 }, periodSeconds: 1 },
    }],
    { volumes: [{ name: 'site', configMap: { name: 'site' } }] },
    {
      configMaps: { site: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'site' }, data: { 'index.html': 'hello from flotilla\n' } } },
      secrets: { words: { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'words' }, data: { greeting: Buffer.from('ahoy').toString('base64') } } },
    },
  );
  workers.update(inputs);
  const s = await eventually('Ready', () => {
    const st = statusOf(workers, inputs);
    return st?.conditions.find((c) => c.type === 'Ready')?.status === 'True' ? st : undefined;
  });
  assert.is(s.phase, 'Running');
  assert.ok(s.podIP);
  const body = await eventually('hostPort answers', async () => {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/index.html`);
      return await res.text();
    } catch {
      return undefined;
    }
  });
  assert.is(body, 'hello from flotilla\n');
  const id = s.containerStatuses[0]!.containerID!.replace('docker://', '');
  assert.equal(await runtime.exec(id, ['/bin/sh', '-c', 'echo $GREETING']), { exitCode: 0, stdout: 'ahoy\n', stderr: '' });
});

test('a crashing container restarts with growing back-off, counted restartCount and CrashLoopBackOff', async () => {
  const { workers, statuses } = agent();
  const inputs = podInputs([{ command: ['/bin/sh', '-c', 'echo crashing; exit 2'] }]);
  workers.update(inputs);
  await eventually('3 restarts', () => ((statusOf(workers, inputs)?.containerStatuses[0]?.restartCount ?? 0) >= 3 ? true : undefined), 30000);
  const delays = [...new Set(statuses.map((s) => s.containerStatuses[0]!.state)
    .map((st) => (st.waiting !== undefined && st.waiting.reason === 'CrashLoopBackOff' ? /back-off (\S+) /.exec(st.waiting.message ?? '')?.[1] : undefined))
    .filter(Boolean))];
  assert.equal(delays.slice(0, 2), ['200ms', '400ms']);
  const last = statusOf(workers, inputs)!.containerStatuses[0]!;
  assert.ok(last.lastState.terminated !== undefined && last.lastState.terminated.exitCode === 2);
  // Between a restart and the next sync three attempts exist for a moment; older dead ones are then removed.
  await eventually('the sandbox, the newest attempt of c0 and the one before it (logs --previous): older ones removed', async () => (
    (await runtime.listContainers({ [LABEL_POD_UID]: inputs.pod.metadata.uid! })).length === 3 ? true : undefined), 30000);
});

test('a failing liveness probe (httpGet 404 against the pod IP) restarts the container', async () => {
  const { workers } = agent();
  const inputs = podInputs([{
    command: ['/bin/sh', '-c', 'mkdir -p /www && exec httpd -f -p 8080 -h /www'],
    livenessProbe: { httpGet: { path: '/healthz', port: 8080 }, periodSeconds: 1, failureThreshold: 1 },
  }]);
  workers.update(inputs);
  const s = await eventually('restarted', () => {
    const st = statusOf(workers, inputs);
    return (st?.containerStatuses[0]?.restartCount ?? 0) >= 1 ? st : undefined;
  }, 30000);
  assert.ok(s.containerStatuses[0]!.lastState.terminated !== undefined);
});

test('an unpullable image reports ErrImagePull then ImagePullBackOff with the reason', async () => {
  const { workers, statuses } = agent();
  const inputs = podInputs([{ image: '127.0.0.1:1/none:1' }]);
  workers.update(inputs);
  await eventually('ImagePullBackOff', () => (waitingReason(statusOf(workers, inputs)) === 'ImagePullBackOff' ? true : undefined));
  const pullError = statuses.map((s) => s.containerStatuses[0]!.state).find((st) => st.waiting !== undefined && st.waiting.reason === 'ErrImagePull');
  assert.ok(pullError && pullError.waiting !== undefined && /127\.0\.0\.1:1/.test(pullError.waiting.message ?? ''), JSON.stringify(pullError));
  assert.is(statusOf(workers, inputs)!.phase, 'Pending');
});

test('a memory limit is enforced: OOMKilled in the container state', async () => {
  const { workers } = agent();
  const inputs = podInputs(
    // Docker 20.10 misses an OOM kill that happens before it watches the container (within milliseconds of
    // the start; see DockerRuntime.inspectContainer): grow memory only once the container runs.
    [{ command: ['/bin/sh', '-c', 'sleep 1; x=0123456789abcdef; while :; do x=$x$x; done'], resources: { limits: { memory: '8Mi' } } }],
    { restartPolicy: 'Never' },
  );
  workers.update(inputs);
  const s = await eventually('Failed', () => (statusOf(workers, inputs)?.phase === 'Failed' ? statusOf(workers, inputs) : undefined), 30000);
  const st = s.containerStatuses[0]!.state;
  assert.ok(st.terminated !== undefined && st.terminated.reason === 'OOMKilled' && st.terminated.exitCode === 137, JSON.stringify(st));
});

test('delete stops and removes every container of the pod', async () => {
  const { workers } = agent();
  const inputs = podInputs([{ command: ['sleep', '600'] }, { name: 'side', command: ['sleep', '600'] }]);
  workers.update(inputs);
  await eventually('Running', () => (statusOf(workers, inputs)?.phase === 'Running' ? true : undefined));
  assert.is((await runtime.listContainers({ [LABEL_POD_UID]: inputs.pod.metadata.uid! })).length, 3);
  await workers.delete(inputs.pod.metadata.uid!, 1);
  assert.equal(await runtime.listContainers({ [LABEL_POD_UID]: inputs.pod.metadata.uid! }), []);
});

test('a new agent adopts running containers: same ids, same start time, no restart', async () => {
  const first = agent();
  const inputs = podInputs([{ command: ['sleep', '600'] }]);
  first.workers.update(inputs);
  const before = await eventually('Running', () => (statusOf(first.workers, inputs)?.phase === 'Running' ? statusOf(first.workers, inputs) : undefined));
  await first.stop();
  const ids = (await runtime.listContainers({ [LABEL_POD_UID]: inputs.pod.metadata.uid! })).map((c) => c.id).sort();

  const second = agent();
  second.workers.update(inputs);
  const after = await eventually('adopted', () => (statusOf(second.workers, inputs)?.phase === 'Running' ? statusOf(second.workers, inputs) : undefined));
  assert.is(after.containerStatuses[0]!.containerID, before.containerStatuses[0]!.containerID);
  assert.equal(after.containerStatuses[0]!.state, before.containerStatuses[0]!.state);
  assert.is(after.containerStatuses[0]!.restartCount, 0);
  assert.equal((await runtime.listContainers({ [LABEL_POD_UID]: inputs.pod.metadata.uid! })).map((c) => c.id).sort(), ids);
});

test.run();
