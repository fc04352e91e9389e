// ConfigMap and Secret changes reach running pods the Kubernetes way, against a real `flotilla server` process
// with the agent on a FakeRuntime: mounted files are rewritten in place within a resync period while the
// container keeps running (its environment is not changed), and a pod waiting for a missing ConfigMap starts
// once the ConfigMap is created, without any change to the pod.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { FakeRuntime } from '../../node-agent/runtime/fake.js';
import { secretVolumesDir } from '../../node-agent/container-config.js';
import { eventually } from '../support/eventually.js';
import { setUp } from '../support/set-up.js';
import { RealServer, appPod, type TestAgent } from './real-server.js';

const NODE = 'edge-cfg';
const APP = 'fake/app';
const srv = new RealServer();
const runtime = new FakeRuntime();
let agent: TestAgent | undefined;
const dataDir = () => join(srv.dir, 'agent');

setUp(test, async () => {
  await srv.start();
  agent = srv.startAgent(NODE, runtime, { resources: { cpu: '4', memory: '8Gi', gpus: 0 } });
}, async () => {
  await agent?.stop();
  await srv.close();
});

const b64 = (s: string) => Buffer.from(s).toString('base64');

async function replace(path: string, change: (o: Record<string, unknown>) => void): Promise<void> {
  const obj = await srv.client.request<Record<string, unknown>>('GET', path);
  change(obj);
  await srv.client.request('PUT', path, obj);
}

test('mounted ConfigMap and Secret files follow updates in place; the container is not restarted', async () => {
  await srv.client.request('POST', '/api/v1/namespaces/default/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'settings' }, data: { mode: 'fast' } });
  await srv.client.request('POST', '/api/v1/namespaces/default/secrets', { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'creds' }, data: { password: b64('one') } });
  const pod = appPod('reader', NODE, APP, {
    env: [{ name: 'MODE', valueFrom: { configMapKeyRef: { name: 'settings', key: 'mode' } } }],
    volumeMounts: [{ name: 'conf', mountPath: '/etc/conf' }, { name: 'secret', mountPath: '/etc/secret' }],
  });
  (pod.spec as Record<string, unknown>).volumes = [{ name: 'conf', configMap: { name: 'settings' } }, { name: 'secret', secret: { secretName: 'creds' } }];
  await srv.createPod(pod);
  const ready = await srv.podReady('reader');
  const volumes = join(dataDir(), 'pods', ready.metadata.uid, 'volumes');
  const modeFile = join(volumes, 'conf', 'mode');
  // Secret volumes are on tmpfs, in the pod's own folder there (node-agent/container-config.ts).
  const passwordFile = join(secretVolumesDir(join(dataDir(), 'pods', ready.metadata.uid)), 'secret', 'password');
  assert.is(readFileSync(modeFile, 'utf8'), 'fast');
  assert.is(readFileSync(passwordFile, 'utf8'), 'one');
  const inode = statSync(modeFile).ino;
  const containerID = ready.status?.containerStatuses?.[0]?.containerID;

  await replace('/api/v1/namespaces/default/configmaps/settings', (o) => { o.data = { mode: 'slow', added: 'yes' }; });
  await replace('/api/v1/namespaces/default/secrets/creds', (o) => { o.data = { password: b64('two') }; });
  await eventually('ConfigMap file updated', () => (readFileSync(modeFile, 'utf8') === 'slow' ? true : undefined), 10_000);
  await eventually('Secret file updated', () => (readFileSync(passwordFile, 'utf8') === 'two' ? true : undefined), 10_000);
  assert.is(readFileSync(join(volumes, 'conf', 'added'), 'utf8'), 'yes', 'a new key appears as a new file');
  assert.is(statSync(modeFile).ino, inode, 'rewritten in place, not replaced');

  const after = await srv.getPod('reader');
  assert.is(after?.status?.containerStatuses?.[0]?.containerID, containerID, 'same container: its environment keeps MODE=fast');
  assert.is(after?.status?.containerStatuses?.[0]?.restartCount, 0);
});

test('a pod waiting for a missing ConfigMap starts once it is created, the pod itself unchanged', async () => {
  const pod = appPod('waiter', NODE, APP, { env: [{ name: 'LEVEL', valueFrom: { configMapKeyRef: { name: 'late', key: 'level' } } }] });
  await srv.createPod(pod);
  await eventually('CreateContainerConfigError reported', async () => {
    const p = await srv.getPod('waiter') as { status?: { containerStatuses?: Array<{ state?: { waiting?: { reason?: string } } }> } } | undefined;
    return p?.status?.containerStatuses?.[0]?.state?.waiting?.reason === 'CreateContainerConfigError' ? true : undefined;
  });
  await srv.client.request('POST', '/api/v1/namespaces/default/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'late' }, data: { level: '3' } });
  await srv.podReady('waiter');
});

test.run();
