// securityContext applied for real on a Docker engine (flotilla/testbox, busybox, whose image runs as root): the
// user, groups, read-only root, capabilities and no_new_privs seen from inside the container; runAsNonRoot
// refusing a root image with the kubelet's reason and message; fsGroup on an emptyDir; a subPath symlink out of its
// volume refused. Every container carries this run's node label and is removed after each test.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DockerRuntime } from '../../node-agent/runtime/docker.js';
import { PodWorkers, type WorkerPodStatus } from '../../node-agent/pod-worker.js';
import type { Container, PodSpec } from '../../api-types/index.js';
import type { PodInputs } from '../../node-agent/pod-actions.js';
import { LABEL_NODE } from '../../node-agent/runtime/types.js';
import { eventually } from '../support/eventually.js';
import { stopAfterEach } from '../support/set-up.js';

const TESTBOX = 'flotilla/testbox:latest';
const nodeName = `podsec-test-${process.pid}`;
const runtime = new DockerRuntime();
const dataDir = mkdtempSync(join(tmpdir(), 'flotilla-podsec-docker-'));
let serial = 0;
const stopLater = stopAfterEach(test);

function podInputs(container: Partial<Container>, spec: Partial<PodSpec> = {}): PodInputs {
  const n = ++serial;
  return {
    pod: {
      apiVersion: 'v1', kind: 'Pod',
      metadata: { name: `pod-${n}`, namespace: 'test', uid: `${process.pid}-${n}` },
      spec: { nodeName, terminationGracePeriodSeconds: 1, containers: [{ name: 'main', image: TESTBOX, command: ['sleep', '3600'], ...container }], ...spec },
    },
    configMaps: {},
    secrets: {},
  };
}

function agent(): PodWorkers {
  const workers = new PodWorkers({ runtime, clusterId: 'cluster-a', nodeName, dataDir, backoffBaseMs: 200, backoffMaxMs: 2000, resyncMs: 1000 });
  const ac = new AbortController();
  const running = workers.run(ac.signal);
  stopLater(async () => { ac.abort(); await running; });
  return workers;
}

const statusOf = (workers: PodWorkers, inputs: PodInputs): WorkerPodStatus | undefined => workers.get(inputs.pod.metadata.uid!)?.status;

async function runningContainer(workers: PodWorkers, inputs: PodInputs): Promise<string> {
  const s = await eventually('running', () => {
    const st = statusOf(workers, inputs)?.containerStatuses[0];
    return st?.state.running !== undefined ? st : undefined;
  });
  return s.containerID!.replace('docker://', '');
}

async function waiting(workers: PodWorkers, inputs: PodInputs): Promise<{ reason?: string; message?: string }> {
  return eventually('waiting with a reason', () => {
    const w = statusOf(workers, inputs)?.containerStatuses[0]?.state.waiting;
    return w?.reason !== undefined && w.reason !== 'ContainerCreating' ? w : undefined;
  });
}

const sh = async (id: string, script: string) => runtime.exec(id, ['/bin/sh', '-c', script]);

test.after.each(async () => {
  for (const c of await runtime.listContainers({ [LABEL_NODE]: nodeName })) await runtime.removeContainer(c.id);
});
test.after(() => rmSync(dataDir, { recursive: true, force: true }));

test('runAsNonRoot, runAsUser 1000, readOnlyRootFilesystem and capabilities.drop ALL hold inside the container', async () => {
  const workers = agent();
  const inputs = podInputs({
    securityContext: { runAsNonRoot: true, runAsUser: 1000, runAsGroup: 3000, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
  });
  workers.update(inputs);
  const id = await runningContainer(workers, inputs);
  assert.equal(await sh(id, 'id -u; id -g'), { exitCode: 0, stdout: '1000\n3000\n', stderr: '' });
  const write = await sh(id, 'echo x > /written');
  assert.is.not(write.exitCode, 0, 'a write to / fails');
  assert.match(write.stderr, /Read-only file system/);
  const status = await sh(id, 'grep -E "^(CapEff|CapPrm|NoNewPrivs):" /proc/1/status');
  assert.match(status.stdout, /CapPrm:\s+0000000000000000/);
  assert.match(status.stdout, /CapEff:\s+0000000000000000/);
  assert.match(status.stdout, /NoNewPrivs:\s+1/);
});

test('without a securityContext the container keeps the engine defaults (root, writable root, default capabilities)', async () => {
  const workers = agent();
  const inputs = podInputs({});
  workers.update(inputs);
  const id = await runningContainer(workers, inputs);
  assert.is((await sh(id, 'id -u')).stdout, '0\n');
  assert.is((await sh(id, 'echo x > /written')).exitCode, 0);
  assert.not.match((await sh(id, 'grep CapEff /proc/1/status')).stdout, /CapEff:\s+0000000000000000/);
});

test('runAsNonRoot with a root image is refused as the kubelet refuses it: CreateContainerConfigError', async () => {
  const workers = agent();
  const inputs = podInputs({ securityContext: { runAsNonRoot: true } });
  workers.update(inputs);
  const w = await waiting(workers, inputs);
  assert.is(w.reason, 'CreateContainerConfigError');
  assert.is(w.message, `container has runAsNonRoot and image will run as root (pod: "${inputs.pod.metadata.name}_test(${inputs.pod.metadata.uid})", container: main)`);
  const pod = podInputs({}, { securityContext: { runAsNonRoot: true, runAsUser: 0 } });
  workers.update(pod);
  assert.is((await waiting(workers, pod)).message, `container's runAsUser breaks non-root policy (pod: "${pod.pod.metadata.name}_test(${pod.pod.metadata.uid})", container: main)`);
});

test('fsGroup and supplementalGroups: the process has the groups, the emptyDir belongs to fsGroup', async () => {
  const workers = agent();
  const inputs = podInputs(
    { securityContext: { runAsUser: 1000 }, volumeMounts: [{ name: 'scratch', mountPath: '/scratch' }] },
    { securityContext: { fsGroup: 2000, supplementalGroups: [4000] }, volumes: [{ name: 'scratch', emptyDir: {} }] },
  );
  workers.update(inputs);
  const id = await runningContainer(workers, inputs);
  const groups = (await sh(id, 'id -G')).stdout.trim().split(' ');
  assert.ok(groups.includes('2000') && groups.includes('4000'), groups.join(' '));
  assert.equal(await sh(id, 'stat -c %g /scratch && touch /scratch/f && stat -c %g /scratch/f'), { exitCode: 0, stdout: '2000\n2000\n', stderr: '' });
});

test('a subPath that a symlink leads out of its volume is refused; one inside is mounted', async () => {
  const workers = agent();
  const inputs = podInputs(
    { volumeMounts: [{ name: 'data', mountPath: '/escape', subPath: 'link/etc' }] },
    { volumes: [{ name: 'data', hostPath: { path: join(dataDir, 'hostvol') } }] },
  );
  mkdirSync(join(dataDir, 'hostvol', 'inner'), { recursive: true });
  symlinkSync('../../../../../../../../../..', join(dataDir, 'hostvol', 'link'));
  workers.update(inputs);
  const w = await waiting(workers, inputs);
  assert.is(w.reason, 'CreateContainerConfigError');
  assert.match(w.message ?? '', /failed to prepare subPath for volumeMount "data" of container "main": subPath "link\/etc" leads out of the volume/);
  symlinkSync('inner', join(dataDir, 'hostvol', 'fine'));
  const ok = podInputs({ volumeMounts: [{ name: 'data', mountPath: '/in', subPath: 'fine/made' }] }, { volumes: [{ name: 'data', hostPath: { path: join(dataDir, 'hostvol') } }] });
  workers.update(ok);
  const id = await runningContainer(workers, ok);
  assert.is((await sh(id, 'touch /in/x && echo ok')).stdout, 'ok\n');
  assert.ok((await import('node:fs')).existsSync(join(dataDir, 'hostvol', 'inner', 'made', 'x')), 'the subPath resolved inside the volume');
});

test.run();
