// Init containers on the FakeRuntime: one at a time and in order before any app container, a failing one
// retried with the crash back-off (Init:CrashLoopBackOff), Never failing the pod, the Initialized condition,
// a new agent adopting a pod whose init containers already succeeded without running them again, and the
// statuses reaching a real server, where `flotilla get pods` reads them.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatObjects } from '../../cli/printers.js';
import { podStatusText, resourceByCliName } from '../../api-types/index.js';
import { FakeRuntime } from '../../node-agent/runtime/fake.js';
import { PodWorkers, type PodWorkerSettings, type WorkerPodStatus } from '../../node-agent/pod-worker.js';
import type { Container, PodSpec } from '../../api-types/index.js';
import type { PodInputs } from '../../node-agent/pod-actions.js';
import { LABEL_CONTAINER, LABEL_POD_UID, SANDBOX_CONTAINER_NAME } from '../../node-agent/runtime/types.js';
import { eventually } from '../support/eventually.js';
import { stopAfterEach } from '../support/set-up.js';
import { FAST_AGENT_TUNING, RealServer } from './real-server.js';

const dataDir = mkdtempSync(join(tmpdir(), 'flotilla-init-'));
let serial = 0;

function podInputs(init: Array<Partial<Container>>, spec: Partial<PodSpec> = {}): PodInputs {
  const n = ++serial;
  const podSpec: PodSpec = {
    nodeName: 'node-a',
    initContainers: init.map((c, i) => ({ name: `init${i}`, image: 'fake/done', ...c })),
    containers: [{ name: 'app', image: 'fake/sleep' }],
    ...spec,
  };
  return { pod: { apiVersion: 'v1', kind: 'Pod', metadata: { name: `pod-${n}`, namespace: 'ns', uid: `init-uid-${n}` }, spec: podSpec }, configMaps: {}, secrets: {} };
}

const stopLater = stopAfterEach(test);

function setup(runtime = fakeRuntime(), overrides: Partial<PodWorkerSettings> = {}) {
  const statuses: WorkerPodStatus[] = [];
  const settings: PodWorkerSettings = {
    runtime, clusterId: 'cluster-a', nodeName: 'node-a', dataDir, sandboxImage: 'fake/pause',
    backoffBaseMs: 40, backoffMaxMs: 1000, resyncMs: 200,
    onStatus: (_inputs, status) => statuses.push(status),
    ...overrides,
  };
  const ac = new AbortController();
  const workers = new PodWorkers(settings);
  const running = workers.run(ac.signal);
  const stop = async () => { ac.abort(); await running; };
  stopLater(stop);
  return { runtime, workers, statuses, stop };
}

function fakeRuntime(): FakeRuntime {
  const runtime = new FakeRuntime({ images: ['fake/pause', 'fake/sleep', 'fake/done', 'fake/fail', 'fake/slow', 'fake/init'] });
  runtime.setBehaviour('fake/done', { exitAfterMs: 5, exitCode: 0 });
  runtime.setBehaviour('fake/slow', { exitAfterMs: 60, exitCode: 0 });
  runtime.setBehaviour('fake/fail', { exitAfterMs: 5, exitCode: 4 });
  return runtime;
}

const statusOf = (workers: PodWorkers, inputs: PodInputs) => workers.get(inputs.pod.metadata.uid!)?.status;
const asPod = (inputs: PodInputs, status: WorkerPodStatus) => ({ metadata: inputs.pod.metadata, spec: inputs.pod.spec, status }) as never;
const condition = (s: WorkerPodStatus, type: string) => s.conditions.find((c) => c.type === type);

async function containersOf(runtime: FakeRuntime, inputs: PodInputs) {
  const all = await runtime.listContainers({ [LABEL_POD_UID]: inputs.pod.metadata.uid! });
  return Promise.all(all.filter((c) => c.labels[LABEL_CONTAINER] !== SANDBOX_CONTAINER_NAME).map((c) => runtime.inspectContainer(c.id).then((i) => ({ ...i, name: c.labels[LABEL_CONTAINER]! }))));
}

test('init containers run one at a time, in order, each to completion before the app container starts', async () => {
  const { runtime, workers, statuses, stop } = setup();
  const inputs = podInputs([{ image: 'fake/slow' }, { image: 'fake/slow' }]);
  workers.update(inputs);
  const s = await eventually('Ready', () => {
    const st = statusOf(workers, inputs);
    return st?.conditions.find((c) => c.type === 'Ready')?.status === 'True' ? st : undefined;
  });
  await stop();
  const containers = await containersOf(runtime, inputs);
  const byName = new Map(containers.map((c) => [c.name, c]));
  const [i0, i1, app] = [byName.get('init0')!, byName.get('init1')!, byName.get('app')!];
  assert.ok(i0 && i1 && app, 'both init containers kept after success, app running');
  assert.ok(Date.parse(i0.finishedAt!) <= Date.parse(i1.startedAt!), 'init1 started after init0 finished');
  assert.ok(Date.parse(i1.finishedAt!) <= Date.parse(app.startedAt!), 'app started after init1 finished');
  assert.is(app.state, 'running');

  assert.is(s.phase, 'Running');
  assert.equal(s.initContainerStatuses?.map((c) => [c.name, Object.keys(c.state)[0], c.ready]), [['init0', 'terminated', true], ['init1', 'terminated', true]]);
  assert.is(condition(s, 'Initialized')?.status, 'True');

  // While init0 ran: Pending, Initialized False, app waiting PodInitializing, kubectl-like Init:0/2.
  const during = statuses.find((st) => st.initContainerStatuses?.[0] && st.initContainerStatuses[0].state.running !== undefined);
  assert.ok(during, 'a status while init0 was running was reported');
  assert.is(during!.phase, 'Pending');
  assert.equal(condition(during!, 'Initialized'), { ...condition(during!, 'Initialized')!, status: 'False', reason: 'ContainersNotInitialized', message: 'containers with incomplete status: [init0 init1]' });
  const appState = during!.containerStatuses[0]!.state;
  assert.ok(appState.waiting !== undefined && appState.waiting.reason === 'PodInitializing');
  assert.is(podStatusText(asPod(inputs, during!)), 'Init:0/2');
  const second = statuses.find((st) => st.initContainerStatuses?.[1] && st.initContainerStatuses[1].state.running !== undefined);
  assert.is(podStatusText(asPod(inputs, second!)), 'Init:1/2');
  assert.is(podStatusText(asPod(inputs, s)), 'Running');
});

test('a failing init container restarts with back-off (Init:CrashLoopBackOff); the app never starts', async () => {
  const { runtime, workers, statuses, stop } = setup();
  const inputs = podInputs([{}, { image: 'fake/fail' }], { restartPolicy: 'Always' });
  workers.update(inputs);
  await eventually('3 restarts', () => ((statusOf(workers, inputs)?.initContainerStatuses?.[1]?.restartCount ?? 0) >= 3 ? true : undefined));
  await stop();
  const backoffs = [...new Set(statuses.flatMap((s) => s.initContainerStatuses ?? [])
    .map((c) => (c.state.waiting !== undefined && c.state.waiting.reason === 'CrashLoopBackOff' ? c.state.waiting.message : undefined))
    .filter((m): m is string => m !== undefined))];
  assert.equal(backoffs.slice(0, 3).map((m) => /back-off (\S+) /.exec(m)?.[1]), ['40ms', '80ms', '160ms']);
  const crashLoop = statuses.find((s) => { const st = s.initContainerStatuses?.[1]?.state; return st && st.waiting !== undefined && st.waiting.reason === 'CrashLoopBackOff'; });
  assert.is(podStatusText(asPod(inputs, crashLoop!)), 'Init:CrashLoopBackOff');
  const names = (await containersOf(runtime, inputs)).map((c) => c.name).sort();
  // The agent keeps the attempt before the newest of a restarted container (for logs --previous), as the kubelet does.
  assert.equal([...new Set(names)], ['init0', 'init1'], 'no app container was created');
  assert.is(names.filter((n) => n === 'init0').length, 1, 'init0 ran once');
  assert.ok(names.filter((n) => n === 'init1').length <= 2, 'of init1, at most the newest attempt and the one before');
  const last = statusOf(workers, inputs)!;
  assert.is(last.phase, 'Pending');
  assert.is(last.initContainerStatuses![0]!.restartCount, 0);
  assert.ok(statuses.every((s) => condition(s, 'Initialized')?.status === 'False'));
});

test('restartPolicy Never: a failing init container fails the pod and is not retried', async () => {
  const { runtime, workers, stop } = setup();
  const inputs = podInputs([{ image: 'fake/fail' }, {}], { restartPolicy: 'Never' });
  workers.update(inputs);
  const s = await eventually('Failed', () => (statusOf(workers, inputs)?.phase === 'Failed' ? statusOf(workers, inputs) : undefined));
  const init = s.initContainerStatuses![0]!;
  assert.ok(init.state.terminated !== undefined && init.state.terminated.exitCode === 4 && init.state.terminated.reason === 'Error');
  assert.is(init.restartCount, 0);
  assert.is(podStatusText(asPod(inputs, s)), 'Init:Error');
  assert.is(condition(s, 'Initialized')?.reason, 'ContainersNotInitialized');
  // The hold is what is tested: a few more resyncs change nothing, still one init container, no app container.
  await new Promise((r) => setTimeout(r, 300));
  assert.equal((await containersOf(runtime, inputs)).map((c) => c.name), ['init0']);
  assert.is(statusOf(workers, inputs)!.phase, 'Failed');
  await stop();
});

test('a new agent adopts an initialized pod without running its init containers again', async () => {
  const runtime = fakeRuntime();
  const first = setup(runtime);
  const inputs = podInputs([{}, {}]);
  first.workers.update(inputs);
  await eventually('Running', () => (statusOf(first.workers, inputs)?.phase === 'Running' ? true : undefined));
  await first.stop();
  const before = (await containersOf(runtime, inputs)).map((c) => `${c.name}:${c.id}`).sort();

  const second = setup(runtime);
  second.workers.update(inputs);
  const s = await eventually('adopted', () => (statusOf(second.workers, inputs)?.phase === 'Running' ? statusOf(second.workers, inputs) : undefined));
  assert.is(condition(s, 'Initialized')?.status, 'True');
  assert.equal(s.initContainerStatuses?.map((c) => c.restartCount), [0, 0]);
  // Removing the finished init containers (as a clean-up might) does not make the next agent run them either.
  for (const c of await containersOf(runtime, inputs)) if (c.name.startsWith('init')) await runtime.removeContainer(c.id);
  await second.stop();
  const third = setup(runtime);
  third.workers.update(inputs);
  const t = await eventually('adopted again', () => (statusOf(third.workers, inputs)?.phase === 'Running' ? statusOf(third.workers, inputs) : undefined));
  await third.stop();
  assert.equal(t.initContainerStatuses?.map((c) => Object.keys(c.state)[0]), ['terminated', 'terminated']);
  const after = (await containersOf(runtime, inputs)).map((c) => `${c.name}:${c.id}`).sort();
  assert.equal(after, before.filter((n) => n.startsWith('app:')), 'same app container, no init container created again');
});

test('through a real server: initContainerStatuses and Initialized reach the API; get pods reads Init:0/1, then Running', async () => {
  const srv = new RealServer();
  await srv.start();
  const runtime = fakeRuntime();
  runtime.setBehaviour('fake/init', { exitAfterMs: 1500, exitCode: 0 });
  const agent = srv.startAgent('edge-init', runtime, {
    resources: { cpu: '4', memory: '8Gi', gpus: 0 }, tuning: { ...FAST_AGENT_TUNING, podWorkers: { resyncMs: 300, sandboxImage: 'fake/pause' } },
  });
  try {
    await srv.createPod({
      apiVersion: 'v1', kind: 'Pod', metadata: { name: 'staged' },
      spec: { nodeName: 'edge-init', terminationGracePeriodSeconds: 1, initContainers: [{ name: 'prepare', image: 'fake/init' }], containers: [{ name: 'main', image: 'fake/sleep' }] },
    });
    const pods = resourceByCliName('pods')!;
    const table = async () => formatObjects(pods, [await srv.client.request('GET', '/api/v1/namespaces/default/pods/staged')] as never, 'table', { withNamespace: false, now: Date.now() });
    await eventually('Init:0/1 on the server', async () => (/staged\s+0\/1\s+Init:0\/1\s/.test(await table()) ? true : undefined));
    const pending = await srv.client.request<{ status: WorkerPodStatus }>('GET', '/api/v1/namespaces/default/pods/staged');
    assert.is(condition(pending.status, 'Initialized')?.reason, 'ContainersNotInitialized');
    await srv.podReady('staged');
    const done = await srv.client.request<{ status: WorkerPodStatus }>('GET', '/api/v1/namespaces/default/pods/staged');
    assert.equal(done.status.initContainerStatuses?.map((c) => [c.name, c.state.terminated !== undefined && c.state.terminated.reason]), [['prepare', 'Completed']]);
    assert.is(condition(done.status, 'Initialized')?.status, 'True');
    assert.match(await table(), /staged\s+1\/1\s+Running\s/);
  } finally {
    await agent.stop();
    await srv.close();
  }
});

test.after(() => rmSync(dataDir, { recursive: true, force: true }));
test.run();
