// From pod spec to ContainerConfig and to the Docker create options: env sources, volumes, limits, GPUs.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import {
  buildContainerConfig,
  ContainerConfigError,
  limitQuantity,
  preparePodVolumes,
  secretVolumesDir,
  resolveEnv,
  runtimeFor,
} from '../../node-agent/container-config.js';
import { bytes, cpuMillis } from '../../api-types/quantity.js';
import { containerCreateOptions } from '../../node-agent/runtime/docker.js';
import type { Container } from '../../api-types/index.js';
import type { PodInputs } from '../../node-agent/pod-actions.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');

function inputs(container: Partial<Container>, more: Partial<PodInputs['pod']['spec']> = {}, annotations: Record<string, string> = {}): PodInputs {
  return {
    pod: {
      apiVersion: 'v1', kind: 'Pod',
      metadata: { name: 'web', namespace: 'shop', uid: 'u-1', labels: { app: 'web' }, annotations },
      spec: { nodeName: 'pi-4', containers: [{ name: 'main', image: 'img', ...container }], ...more },
    },
    configMaps: { settings: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'settings' }, data: { mode: 'fast', level: '3' } } },
    secrets: { creds: { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'creds' }, data: { password: b64('hunter2') }, stringData: { user: 'ada' } } },
  };
}

const ctx = (volumePaths = new Map<string, string>()) => ({ name: 'n', sandboxId: 'sb', labels: { a: 'b' }, volumePaths });

test('quantities: cpu, binary and decimal memory, exponents; bad ones are named', () => {
  assert.is(limitQuantity(cpuMillis, '500m', 'cpu'), 500);
  assert.is(limitQuantity(cpuMillis, '2', 'cpu'), 2000);
  assert.is(limitQuantity(bytes, '8Mi', 'memory'), 8 * 2 ** 20);
  assert.is(limitQuantity(bytes, '1G', 'memory'), 1e9);
  assert.is(limitQuantity(bytes, '1.5Gi', 'memory'), 1.5 * 2 ** 30);
  assert.is(limitQuantity(bytes, '2e3', 'memory'), 2000);
  assert.is(limitQuantity(cpuMillis, 3, 'gpu'), 3000);
  assert.throws(() => limitQuantity(bytes, '12 MB', 'limits.memory'), (e: Error) => e instanceof ContainerConfigError && e.message.includes('limits.memory') && e.message.includes('12 MB'));
  assert.throws(() => limitQuantity(bytes, '-1Mi', 'limits.memory'), (e: Error) => e instanceof ContainerConfigError && e.message.includes('negative'));
});

test('env: envFrom with prefix, Secrets decoded, then env literals, key refs and fieldRefs; later entries win', () => {
  const i = inputs({
    envFrom: [{ configMapRef: { name: 'settings' }, prefix: 'CFG_' }, { secretRef: { name: 'creds' } }],
    env: [
      { name: 'CFG_mode', value: 'slow' },
      { name: 'LEVEL', valueFrom: { configMapKeyRef: { name: 'settings', key: 'level' } } },
      { name: 'PASS', valueFrom: { secretKeyRef: { name: 'creds', key: 'password' } } },
      { name: 'OPT', valueFrom: { secretKeyRef: { name: 'nothing', key: 'x', optional: true } } },
      { name: 'POD', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
      { name: 'APP', valueFrom: { fieldRef: { fieldPath: "metadata.labels['app']" } } },
    ],
  });
  assert.equal(resolveEnv(i, i.pod.spec.containers[0]!), {
    CFG_mode: 'slow', CFG_level: '3', password: 'hunter2', user: 'ada', LEVEL: '3', PASS: 'hunter2', POD: 'web', APP: 'web',
  });
});

test('env errors name the container, variable, object and key', () => {
  const missingKey = inputs({ env: [{ name: 'X', valueFrom: { configMapKeyRef: { name: 'settings', key: 'nope' } } }] });
  assert.throws(() => resolveEnv(missingKey, missingKey.pod.spec.containers[0]!), /container "main": env X: key "nope" not found in ConfigMap "settings"/);
  const missingSecret = inputs({ envFrom: [{ secretRef: { name: 'vault' } }] });
  assert.throws(() => resolveEnv(missingSecret, missingSecret.pod.spec.containers[0]!), /Secret "vault" not found/);
});

test('volumes: emptyDir, hostPath, ConfigMap and Secret files (items, modes), mounts read-only for objects', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-volumes-'));
  try {
    const i = inputs(
      { volumeMounts: [{ name: 'scratch', mountPath: '/scratch' }, { name: 'cfg', mountPath: '/etc/app' }, { name: 'sec', mountPath: '/run/creds' }, { name: 'host', mountPath: '/host', readOnly: true }] },
      { volumes: [
        { name: 'scratch', emptyDir: {} },
        { name: 'cfg', configMap: { name: 'settings', items: [{ key: 'mode', path: 'conf/mode.txt' }] } },
        { name: 'sec', secret: { secretName: 'creds' } },
        { name: 'host', hostPath: { path: '/srv/data' } },
      ] },
    );
    const paths = await preparePodVolumes(i, dir);
    assert.ok(statSync(paths.get('scratch')!).isDirectory());
    assert.is(readFileSync(join(paths.get('cfg')!, 'conf/mode.txt'), 'utf8'), 'fast');
    assert.is(readFileSync(join(paths.get('sec')!, 'password'), 'utf8'), 'hunter2');
    assert.is(statSync(join(paths.get('sec')!, 'password')).mode & 0o777, 0o600);
    assert.ok(paths.get('sec')!.startsWith(`${secretVolumesDir(dir)}/`), `the secret volume is in memory: ${paths.get('sec')!}`);
    assert.is(execFileSync('stat', ['-f', '-c', '%T', paths.get('sec')!], { encoding: 'utf8' }).trim(), 'tmpfs');
    assert.is(paths.get('host'), '/srv/data');
    const config = buildContainerConfig(i, i.pod.spec.containers[0]!, ctx(paths));
    assert.equal(config.mounts.map((m) => [m.containerPath, m.readOnly]), [['/scratch', false], ['/etc/app', true], ['/run/creds', true], ['/host', true]]);
    const bad = inputs({ volumeMounts: [{ name: 'ghost', mountPath: '/x' }] });
    assert.throws(() => buildContainerConfig(bad, bad.pod.spec.containers[0]!, ctx()), /volumeMount "ghost" names no volume/);
    const escape = inputs({}, { volumes: [{ name: 'cfg', configMap: { name: 'settings', items: [{ key: 'mode', path: '../../etc/passwd' }] } }] });
    await preparePodVolumes(escape, dir).then(() => assert.unreachable('path escape accepted'), (e: Error) => assert.match(e.message, 'leaves the volume'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
    rmSync(secretVolumesDir(dir), { recursive: true, force: true });
  }
});

test('securityContext reaches the Docker create options: User, GroupAdd, Privileged, CapAdd/CapDrop, SecurityOpt, host PID and IPC', () => {
  const i = inputs(
    { securityContext: { runAsUser: 1000, privileged: true, readOnlyRootFilesystem: true, capabilities: { add: ['CAP_NET_ADMIN', 'SYS_TIME'], drop: ['ALL'] }, seccompProfile: { type: 'Unconfined' } } },
    { securityContext: { runAsGroup: 3000, fsGroup: 2000, supplementalGroups: [4000, 2000], appArmorProfile: { type: 'Unconfined' } }, hostPID: true, hostIPC: true },
  );
  const h = containerCreateOptions(buildContainerConfig(i, i.pod.spec.containers[0]!, ctx()));
  assert.is(h.User, '1000:3000', 'the container runs as runAsUser with the pod-level runAsGroup');
  assert.equal(h.HostConfig?.GroupAdd, ['2000', '4000']);
  assert.is(h.HostConfig?.Privileged, true);
  assert.is(h.HostConfig?.ReadonlyRootfs, true);
  assert.equal(h.HostConfig?.CapAdd, ['NET_ADMIN', 'SYS_TIME']);
  assert.equal(h.HostConfig?.CapDrop, ['ALL']);
  assert.equal(h.HostConfig?.SecurityOpt, ['seccomp=unconfined', 'apparmor=unconfined']);
  assert.is(h.HostConfig?.PidMode, 'host');
  assert.is(h.HostConfig?.IpcMode, 'host');
  const locked = inputs({ securityContext: { allowPrivilegeEscalation: false, seccompProfile: { type: 'RuntimeDefault' } } });
  const l = containerCreateOptions(buildContainerConfig(locked, locked.pod.spec.containers[0]!, ctx()));
  assert.equal(l.HostConfig?.SecurityOpt, ['no-new-privileges'], 'RuntimeDefault is the engine\'s own profile');
  assert.is(l.User, undefined, 'the image\'s user when none is asked');
  const groupOnly = inputs({ securityContext: { runAsGroup: 50 } });
  assert.is(containerCreateOptions(buildContainerConfig(groupOnly, groupOnly.pod.spec.containers[0]!, { ...ctx(), imageUser: 'app:app' })).User, 'app:50');
  const plain = inputs({});
  const p = containerCreateOptions(buildContainerConfig(plain, plain.pod.spec.containers[0]!, ctx()));
  assert.equal([p.User, p.HostConfig?.SecurityOpt, p.HostConfig?.CapDrop, p.HostConfig?.Privileged, p.HostConfig?.IpcMode], [undefined, undefined, undefined, undefined, 'container:sb']);
});

test('runAsNonRoot is verified against runAsUser, else the image\'s user, with the kubelet\'s messages', () => {
  const nonRoot = (sc: Record<string, unknown>) => inputs({ securityContext: { runAsNonRoot: true, ...sc } });
  const build = (i: PodInputs, imageUser: string) => () => buildContainerConfig(i, i.pod.spec.containers[0]!, { ...ctx(), imageUser });
  assert.throws(build(nonRoot({}), ''), (e: Error) => e instanceof ContainerConfigError && e.message === 'container has runAsNonRoot and image will run as root (pod: "web_shop(u-1)", container: main)');
  assert.throws(build(nonRoot({}), '0:0'), /image will run as root/);
  assert.throws(build(nonRoot({}), 'nobody'), (e: Error) => e.message === 'container has runAsNonRoot and image has non-numeric user (nobody), cannot verify user is non-root (pod: "web_shop(u-1)", container: main)');
  assert.throws(build(nonRoot({ runAsUser: 0 }), '1000'), /container's runAsUser breaks non-root policy \(pod: "web_shop\(u-1\)", container: main\)/);
  build(nonRoot({}), '1000:1000')();
  build(nonRoot({ runAsUser: 1000 }), 'nobody')();
});

test('limits and GPUs reach the Docker create options: NanoCpus, Memory=MemorySwap, DeviceRequests by UUID', () => {
  const i = inputs(
    { command: ['/bin/app'], args: ['--port', '80'], resources: { limits: { cpu: '250m', memory: '64Mi', 'nvidia.com/gpu': 2 } } },
    {},
    { 'flotilla.io/assigned-gpus': 'GPU-aaaa,GPU-bbbb' },
  );
  const options = containerCreateOptions(buildContainerConfig(i, i.pod.spec.containers[0]!, ctx()));
  assert.equal(options.Entrypoint, ['/bin/app']);
  assert.equal(options.Cmd, ['--port', '80']);
  assert.is(options.HostConfig?.NanoCpus, 250_000_000);
  assert.is(options.HostConfig?.Memory, 64 * 2 ** 20);
  assert.is(options.HostConfig?.MemorySwap, 64 * 2 ** 20);
  assert.is(options.HostConfig?.NetworkMode, 'container:sb');
  assert.equal(options.HostConfig?.DeviceRequests, [{ Driver: 'nvidia', DeviceIDs: ['GPU-aaaa', 'GPU-bbbb'], Capabilities: [['gpu']] }]);
  assert.equal(options.Labels, { a: 'b' });
  const none = inputs({});
  assert.is(containerCreateOptions(buildContainerConfig(none, none.pod.spec.containers[0]!, ctx())).HostConfig?.DeviceRequests, undefined);
  const unassigned = inputs({ resources: { limits: { 'nvidia.com/gpu': 1 } } });
  assert.throws(() => buildContainerConfig(unassigned, unassigned.pod.spec.containers[0]!, ctx()), /asks 1 GPU\(s\) but annotation flotilla.io\/assigned-gpus names 0/);
});

test('runtime choice: the RuntimeClass handler where the engine has it; nvidia falls back to DeviceRequests; others fail', () => {
  const plain = ['io.containerd.runc.v2', 'runc'];
  const withNvidia = [...plain, 'nvidia'];
  assert.is(runtimeFor(undefined, plain), undefined, 'no RuntimeClass: the engine default');
  assert.is(runtimeFor('nvidia', withNvidia), 'nvidia');
  assert.is(runtimeFor('runc', plain), 'runc');
  assert.is(runtimeFor('nvidia', plain), undefined, 'no NVIDIA runtime: GPUs through DeviceRequests as without a class');
  try {
    runtimeFor('kata', withNvidia);
    assert.unreachable('a missing handler must fail');
  } catch (err) {
    assert.instance(err, ContainerConfigError);
    assert.is((err as ContainerConfigError).reason, 'CreateContainerConfigError');
    assert.is((err as Error).message, 'RuntimeClass handler "kata" is not a runtime of this node\'s container engine (it has io.containerd.runc.v2, runc, nvidia)');
  }
});

test("NVIDIA's GPU pod: Runtime nvidia with exactly the assigned GPUs where the engine has it, DeviceRequests alone where not", () => {
  const gpuPod = inputs(
    { image: 'nvcr.io/nvidia/k8s/cuda-sample:vectoradd-cuda12.5.0', env: [{ name: 'NVIDIA_VISIBLE_DEVICES', value: 'all' }], resources: { limits: { 'nvidia.com/gpu': 1 } } },
    {},
    { 'flotilla.io/assigned-gpus': 'GPU-aaaa', 'flotilla.io/runtime-handler': 'nvidia' },
  );
  const on = (runtimeHandlers: string[]) => containerCreateOptions(buildContainerConfig(gpuPod, gpuPod.pod.spec.containers[0]!, { ...ctx(), runtimeHandlers }));
  const nvidia = on(['runc', 'nvidia']);
  assert.is(nvidia.HostConfig?.Runtime, 'nvidia');
  assert.equal(nvidia.HostConfig?.DeviceRequests, [{ Driver: 'nvidia', DeviceIDs: ['GPU-aaaa'], Capabilities: [['gpu']] }]);
  assert.ok(nvidia.Env?.includes('NVIDIA_VISIBLE_DEVICES=GPU-aaaa'), 'the scheduler\'s GPU, not "all"');
  assert.not.ok(nvidia.Env?.includes('NVIDIA_VISIBLE_DEVICES=all'));
  const plain = on(['runc']);
  assert.is(plain.HostConfig?.Runtime, undefined);
  assert.equal(plain.HostConfig?.DeviceRequests, [{ Driver: 'nvidia', DeviceIDs: ['GPU-aaaa'], Capabilities: [['gpu']] }]);
  assert.ok(plain.Env?.includes('NVIDIA_VISIBLE_DEVICES=all'), 'the env is the pod\'s own without the NVIDIA runtime');
  const noGpu = inputs({}, {}, { 'flotilla.io/runtime-handler': 'nvidia' });
  const cpuOnly = containerCreateOptions(buildContainerConfig(noGpu, noGpu.pod.spec.containers[0]!, { ...ctx(), runtimeHandlers: ['runc', 'nvidia'] }));
  assert.ok(cpuOnly.Env?.includes('NVIDIA_VISIBLE_DEVICES=void'), 'a pod without GPUs sees none under the NVIDIA runtime');
  assert.is(cpuOnly.HostConfig?.DeviceRequests, undefined);
  const kata = inputs({}, {}, { 'flotilla.io/runtime-handler': 'kata' });
  assert.throws(() => buildContainerConfig(kata, kata.pod.spec.containers[0]!, { ...ctx(), runtimeHandlers: ['runc'] }), /RuntimeClass handler "kata" is not a runtime/);
});

test.run();
