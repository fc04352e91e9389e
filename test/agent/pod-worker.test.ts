// PodWorker and PodWorkers on the FakeRuntime: status reporting, restart policy and back-off, image pull
// back-off, config errors, probes, deletion, adoption by a new agent.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeRuntime } from '../../node-agent/runtime/fake.js';
import { PodWorkers, type PodWorkerSettings, type WorkerPodStatus } from '../../node-agent/pod-worker.js';
import type { Container, PodSpec } from '../../api-types/index.js';
import type { PodInputs } from '../../node-agent/pod-actions.js';
import { LABEL_CONTAINER, LABEL_NODE, LABEL_POD, LABEL_POD_UID, LABEL_NAMESPACE } from '../../node-agent/runtime/types.js';
import { eventually } from '../support/eventually.js';
import { stopAfterEach } from '../support/set-up.js';

const dataDir = mkdtempSync(join(tmpdir(), 'flotilla-pod-worker-'));
let serial = 0;

function podInputs(containers: Array<Partial<Container>>, spec: Partial<PodSpec> = {}, extra: Partial<PodInputs> = {}): PodInputs {
  const n = ++serial;
  return {
    pod: {
      apiVersion: 'v1', kind: 'Pod',
      metadata: { name: `pod-${n}`, namespace: 'ns', uid: `uid-${n}` },
      spec: { nodeName: 'node-a', containers: containers.map((c, i) => ({ name: `c${i}`, image: 'fake/sleep', ...c })), ...spec },
    },
    configMaps: {},
    secrets: {},
    ...extra,
  };
}

const stopLater = stopAfterEach(test);

function setup(overrides: Partial<PodWorkerSettings> = {}) {
  const runtime = new FakeRuntime({ images: ['fake/pause', 'fake/sleep', 'fake/crash', 'fake/done', 'fake/fail', 'fake/oom'] });
  runtime.setBehaviour('fake/crash', { exitAfterMs: 5, exitCode: 2 });
  runtime.setBehaviour('fake/done', { exitAfterMs: 5, exitCode: 0 });
  runtime.setBehaviour('fake/fail', { exitAfterMs: 5, exitCode: 3 });
  runtime.setBehaviour('fake/oom', { exitAfterMs: 5, oom: true });
  const statuses: WorkerPodStatus[] = [];
  const settings: PodWorkerSettings = {
    runtime, clusterId: 'cluster-a', nodeName: 'node-a', dataDir, sandboxImage: 'fake/pause', hostIP: '192.0.2.10',
    backoffBaseMs: 40, backoffMaxMs: 1000, resyncMs: 200,
    onStatus: (_inputs, status) => statuses.push(status),
    ...overrides,
  };
  const ac = new AbortController();
  const workers = new PodWorkers(settings);
  const running = workers.run(ac.signal);
  const stop = async () => { ac.abort(); await running; };
  stopLater(stop);
  return { runtime, workers, statuses, stop, settings };
}

const statusOf = (workers: PodWorkers, inputs: PodInputs) => workers.get(inputs.pod.metadata.uid!)?.status;

test('a pod runs: phase Running, Ready, container labels, podIP and hostIP', async () => {
  const { runtime, workers, stop } = setup();
  const inputs = podInputs([{}, { name: 'side' }]);
  workers.update(inputs);
  const s = await eventually('Ready', () => {
    const st = statusOf(workers, inputs);
    return st?.conditions.find((c) => c.type === 'Ready')?.status === 'True' ? st : undefined;
  });
  assert.is(s.phase, 'Running');
  assert.equal(s.containerStatuses.map((c) => [c.name, Object.keys(c.state)[0], c.ready, c.started, c.restartCount]), [
    ['c0', 'running', true, true, 0],
    ['side', 'running', true, true, 0],
  ]);
  assert.ok(s.podIP && s.podIP === s.podIPs?.[0]?.ip);
  assert.is(s.hostIP, '192.0.2.10');
  assert.ok(s.startTime);
  const listed = await runtime.listContainers({ [LABEL_POD_UID]: inputs.pod.metadata.uid! });
  assert.is(listed.length, 3, 'sandbox and two containers');
  for (const c of listed) {
    assert.is(c.labels[LABEL_NODE], 'node-a');
    assert.is(c.labels[LABEL_NAMESPACE], 'ns');
    assert.is(c.labels[LABEL_POD], inputs.pod.metadata.name);
  }
  assert.equal(listed.map((c) => c.labels[LABEL_CONTAINER]).sort(), ['POD', 'c0', 'side']);
  assert.ok(s.containerStatuses[0]!.containerID?.startsWith('fake://'));
  await stop();
});

test('a crashing container restarts with doubling back-off and CrashLoopBackOff', async () => {
  const { workers, statuses, stop } = setup();
  const inputs = podInputs([{ image: 'fake/crash' }]);
  workers.update(inputs);
  await eventually('3 restarts', () => ((statusOf(workers, inputs)?.containerStatuses[0]?.restartCount ?? 0) >= 3 ? true : undefined));
  await stop();
  const backoffs = [...new Set(statuses.flatMap((s) => s.containerStatuses)
    .map((c) => (c.state.waiting !== undefined && c.state.waiting.reason === 'CrashLoopBackOff' ? c.state.waiting.message : undefined))
    .filter((m): m is string => m !== undefined))];
  assert.equal(backoffs.slice(0, 3).map((m) => /back-off (\S+) /.exec(m)?.[1]), ['40ms', '80ms', '160ms']);
  const last = statusOf(workers, inputs)!.containerStatuses[0]!;
  assert.ok(last.lastState.terminated !== undefined && last.lastState.terminated.exitCode === 2 && last.lastState.terminated.reason === 'Error');
  assert.is(statusOf(workers, inputs)!.phase, 'Running');
});

test('restartPolicy: OnFailure completes with Succeeded; Never with a failure gives Failed', async () => {
  const { workers, stop } = setup();
  const ok = podInputs([{ image: 'fake/done' }], { restartPolicy: 'OnFailure' });
  const bad = podInputs([{ image: 'fake/fail' }], { restartPolicy: 'Never' });
  workers.update(ok);
  workers.update(bad);
  await eventually('Succeeded', () => (statusOf(workers, ok)?.phase === 'Succeeded' ? true : undefined));
  await eventually('Failed', () => (statusOf(workers, bad)?.phase === 'Failed' ? true : undefined));
  const t = statusOf(workers, bad)!.containerStatuses[0]!;
  assert.ok(t.state.terminated !== undefined && t.state.terminated.exitCode === 3 && t.state.terminated.reason === 'Error');
  assert.is(t.restartCount, 0);
  const d = statusOf(workers, ok)!.containerStatuses[0]!;
  assert.ok(d.state.terminated !== undefined && d.state.terminated.reason === 'Completed');
  await stop();
});

test('an OOM kill shows as OOMKilled', async () => {
  const { workers, stop } = setup();
  const inputs = podInputs([{ image: 'fake/oom' }], { restartPolicy: 'Never' });
  workers.update(inputs);
  const s = await eventually('Failed', () => (statusOf(workers, inputs)?.phase === 'Failed' ? statusOf(workers, inputs) : undefined));
  const state = s.containerStatuses[0]!.state;
  assert.ok(state.terminated !== undefined);
  if (state.terminated !== undefined) {
    assert.is(state.terminated.reason, 'OOMKilled');
    assert.is(state.terminated.exitCode, 137);
  }
  await stop();
});

test('an unpullable image gives ErrImagePull, then ImagePullBackOff, with pulls spaced by back-off', async () => {
  const { runtime, workers, statuses, stop } = setup();
  const inputs = podInputs([{ image: '127.0.0.1:1/none:1' }]);
  workers.update(inputs);
  await eventually('ImagePullBackOff', () => {
    const c = statusOf(workers, inputs)?.containerStatuses[0];
    return c && c.state.waiting !== undefined && c.state.waiting.reason === 'ImagePullBackOff' ? true : undefined;
  });
  await stop();
  const reasons = statuses.map((s) => s.containerStatuses[0]!.state).map((st) => (st.waiting !== undefined ? st.waiting.reason : '?'));
  assert.ok(reasons.indexOf('ErrImagePull') >= 0 && reasons.indexOf('ErrImagePull') < reasons.indexOf('ImagePullBackOff'), reasons.join(','));
  const err = statuses.map((s) => s.containerStatuses[0]!.state).find((st) => st.waiting !== undefined && st.waiting.reason === 'ErrImagePull');
  assert.match(err && err.waiting !== undefined ? err.waiting.message ?? '' : '', '127.0.0.1:1');
  assert.is(statusOf(workers, inputs)!.phase, 'Pending');
  // Each pull attempt reports ErrImagePull once; syncs during the back-off report ImagePullBackOff and pull nothing.
  assert.is(runtime.pullAttempts, reasons.filter((r) => r === 'ErrImagePull').length);
});

test('a missing ConfigMap key gives CreateContainerConfigError naming it; adding it lets the pod run', async () => {
  const { workers, stop } = setup();
  const inputs = podInputs([{ env: [{ name: 'MODE', valueFrom: { configMapKeyRef: { name: 'settings', key: 'mode' } } }] }]);
  workers.update(inputs);
  const waiting = await eventually('config error', () => {
    const c = statusOf(workers, inputs)?.containerStatuses[0];
    return c && c.state.waiting !== undefined && c.state.waiting.reason === 'CreateContainerConfigError' ? c.state.waiting.message : undefined;
  });
  assert.match(waiting ?? '', 'ConfigMap "settings" not found');
  workers.update({ ...inputs, configMaps: { settings: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'settings' }, data: { mode: 'fast' } } } });
  await eventually('running', () => (statusOf(workers, inputs)?.phase === 'Running' ? true : undefined));
  await stop();
});

test('a RuntimeClass handler the engine lacks gives CreateContainerConfigError and an event; nvidia falls back and runs', async () => {
  const events: { type: string; reason: string; message: string }[] = [];
  const { workers, stop } = setup({ onEvent: (_inputs, e) => events.push(e) });
  try {
    const kata = podInputs([{}]);
    kata.pod.metadata.annotations = { 'flotilla.io/runtime-handler': 'kata' };
    workers.update(kata);
    const message = 'RuntimeClass handler "kata" is not a runtime of this node\'s container engine (it has runc)';
    const waiting = await eventually('config error', () => {
      const c = statusOf(workers, kata)?.containerStatuses[0];
      return c && c.state.waiting !== undefined && c.state.waiting.reason === 'CreateContainerConfigError' ? c.state.waiting.message : undefined;
    });
    assert.is(waiting, message);
    assert.ok(events.some((e) => e.type === 'Warning' && e.reason === 'Failed' && e.message === `Error: ${message}`), JSON.stringify(events));
    const nvidia = podInputs([{}]);
    nvidia.pod.metadata.annotations = { 'flotilla.io/runtime-handler': 'nvidia' };
    workers.update(nvidia);
    await eventually('the nvidia pod running on an engine without the NVIDIA runtime', () => (statusOf(workers, nvidia)?.phase === 'Running' ? true : undefined));
  } finally {
    await stop();
  }
});

test('a failing liveness probe restarts the container', async () => {
  const { runtime, workers, stop } = setup();
  runtime.setBehaviour('fake/sleep', { exec: () => ({ exitCode: 1, stdout: '', stderr: 'unhealthy' }) });
  const inputs = podInputs([{ livenessProbe: { exec: { command: ['check'] }, periodSeconds: 1, failureThreshold: 1 } }], { terminationGracePeriodSeconds: 0 });
  workers.update(inputs);
  await eventually('restart after liveness failure', () => ((statusOf(workers, inputs)?.containerStatuses[0]?.restartCount ?? 0) >= 1 ? true : undefined));
  const c = statusOf(workers, inputs)!.containerStatuses[0]!;
  assert.ok(c.lastState.terminated !== undefined);
  await stop();
});

test('a failing readiness probe keeps the pod unready but running', async () => {
  const { runtime, workers, stop } = setup();
  let healthy = false;
  runtime.setBehaviour('fake/sleep', { exec: () => ({ exitCode: healthy ? 0 : 1, stdout: '', stderr: '' }) });
  const inputs = podInputs([{ readinessProbe: { exec: { command: ['ready'] }, periodSeconds: 1, failureThreshold: 1 } }]);
  workers.update(inputs);
  const s = await eventually('running', () => (statusOf(workers, inputs)?.phase === 'Running' ? statusOf(workers, inputs) : undefined));
  assert.is(s.containerStatuses[0]!.ready, false);
  assert.is(s.conditions.find((c) => c.type === 'Ready')?.reason, 'ContainersNotReady');
  healthy = true;
  await eventually('ready', () => (statusOf(workers, inputs)?.containerStatuses[0]?.ready ? true : undefined));
  await stop();
});

test('delete stops and removes every container of the pod', async () => {
  const { runtime, workers, stop } = setup();
  const inputs = podInputs([{}]);
  workers.update(inputs);
  await eventually('running', () => (statusOf(workers, inputs)?.phase === 'Running' ? true : undefined));
  await workers.delete(inputs.pod.metadata.uid!, 0);
  assert.equal(await runtime.listContainers({ [LABEL_POD_UID]: inputs.pod.metadata.uid! }), []);
  assert.is(workers.get(inputs.pod.metadata.uid!), undefined);
  await stop();
});

test('a new agent adopts running containers (same ids, no restart) and removes orphans', async () => {
  const first = setup();
  const inputs = podInputs([{}]);
  const gone = podInputs([{}]);
  first.workers.update(inputs);
  first.workers.update(gone);
  await eventually('running', () => (statusOf(first.workers, inputs)?.phase === 'Running' && statusOf(first.workers, gone)?.phase === 'Running' ? true : undefined));
  await first.stop();
  const before = (await first.runtime.listContainers({ [LABEL_POD_UID]: inputs.pod.metadata.uid! })).map((c) => c.id).sort();

  const second = new PodWorkers({ ...first.settings });
  const ac = new AbortController();
  const running = second.run(ac.signal);
  stopLater(async () => { ac.abort(); await running; });
  second.update(inputs);
  const s = await eventually('adopted', () => (statusOf(second, inputs)?.phase === 'Running' ? statusOf(second, inputs) : undefined));
  assert.is(s.containerStatuses[0]!.restartCount, 0);
  const after = (await first.runtime.listContainers({ [LABEL_POD_UID]: inputs.pod.metadata.uid! })).map((c) => c.id).sort();
  assert.equal(after, before);
  const removed = await second.removeOrphans(0);
  assert.is(removed.length, 2, 'sandbox and container of the pod nobody gave the new agent');
  assert.equal(await first.runtime.listContainers({ [LABEL_POD_UID]: gone.pod.metadata.uid! }), []);
  ac.abort();
  await running;
});

test('a changed image replaces the running container at once (restart counted, no back-off); the other container keeps running', async () => {
  const { runtime, workers, stop } = setup();
  const inputs = podInputs([{}, { name: 'side' }], { restartPolicy: 'Never' });
  workers.update(inputs);
  const first = await eventually('running', () => (statusOf(workers, inputs)?.phase === 'Running' ? statusOf(workers, inputs) : undefined));
  const [c0, side] = first.containerStatuses;
  const [app, sidecar] = inputs.pod.spec.containers;
  workers.update({ ...inputs, pod: { ...inputs.pod, spec: { ...inputs.pod.spec, containers: [{ ...app!, image: 'fake/done' }, sidecar!] } } });
  const s = await eventually('new image', () => {
    const st = statusOf(workers, inputs);
    return st?.containerStatuses[0]?.image === 'fake/done' && st.containerStatuses[0].containerID !== c0!.containerID ? st : undefined;
  });
  assert.is(s.containerStatuses[0]!.restartCount, 1);
  assert.is(s.containerStatuses[1]!.containerID, side!.containerID);
  const listed = await runtime.listContainers({ [LABEL_POD_UID]: inputs.pod.metadata.uid!, [LABEL_CONTAINER]: 'c0' });
  assert.equal(listed.map((c) => c.image).sort(), ['fake/done', 'fake/sleep'], 'the old container is kept as the previous attempt');
  assert.is(listed.find((c) => c.image === 'fake/sleep')!.state, 'exited', 'the old container is stopped');
  await stop();
});

test.after(() => rmSync(dataDir, { recursive: true, force: true }));
test.run();
