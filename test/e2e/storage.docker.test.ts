// Persistent storage on real containers: a real server process and a real agent process (root namespace, no pod
// network, no service proxy) on the local Docker engine. A claim on the default local-path class is provisioned on
// the agent's node when its pod is scheduled; what the pod writes stays across the pod's deletion and the agent's
// restart, and deleting the claim removes the directory and the volume.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PersistentVolume, PersistentVolumeClaim } from '../../api-types/index.js';
import { DockerRuntime } from '../../node-agent/runtime/docker.js';
import { LABEL_NODE } from '../../node-agent/runtime/types.js';
import { E2eCluster, FlotillaProcess, isReady } from './cluster.js';
import { eventually } from '../support/eventually.js';
import { setUp } from '../support/set-up.js';

const TESTBOX = 'flotilla/testbox:latest';
const NODE = `e2e-storage-${process.pid}`;
const PODS = '/api/v1/namespaces/default/pods';
const CLAIMS = '/api/v1/namespaces/default/persistentvolumeclaims';
const cluster = new E2eCluster();
const runtime = new DockerRuntime();
let agent: FlotillaProcess | undefined;
const agentData = (): string => join(cluster.dir, 'agent');

function startAgent(): FlotillaProcess {
  return new FlotillaProcess(['agent', '--server', cluster.url, '--token', cluster.token, '--ca', cluster.caPath, '--data', agentData(),
    '--name', NODE, '--listen', '127.0.0.1:0', '--advertise-address', '127.0.0.1', '--no-pod-network', '--service-proxy', 'off']);
}

/** A testbox pod on this suite's node with claim `data` at /data, running `script`. */
function podWithClaim(name: string, script: string): Record<string, unknown> {
  return {
    apiVersion: 'v1', kind: 'Pod', metadata: { name, labels: { app: name } },
    spec: {
      nodeSelector: { 'kubernetes.io/hostname': NODE }, terminationGracePeriodSeconds: 0,
      containers: [{ name: 'main', image: TESTBOX, command: ['/bin/sh', '-c', script], volumeMounts: [{ name: 'data', mountPath: '/data' }] }],
      volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'data' } }],
    },
  };
}

async function readyPod(name: string): Promise<void> {
  await eventually(`pod ${name} ready`, async () => {
    const [p] = await cluster.pods(`app=${name}`);
    return p && isReady(p) ? true : undefined;
  }, 120_000);
}

setUp(test, async () => {
  await cluster.start();
  agent = startAgent();
  await cluster.nodesReady([NODE], 60_000).catch((err: Error) => { throw new Error(`${err.message}; agent output: ${agent?.output}`); });
}, async () => {
  await agent?.kill('SIGTERM');
  for (const c of await runtime.listContainers({ [LABEL_NODE]: NODE })) await runtime.removeContainer(c.id);
  await cluster.stop();
});

test('a local-path claim keeps its data across pod deletion and agent restart; deleting it removes the directory', async () => {
  await cluster.client.request('POST', CLAIMS, { apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name: 'data' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '64Mi' } } } });
  await cluster.client.request('POST', PODS, podWithClaim('writer', 'echo kept > /data/f && exec sleep 3600'));
  await readyPod('writer');
  const claim = await cluster.client.request<PersistentVolumeClaim>('GET', `${CLAIMS}/data`);
  assert.is(claim.status?.phase, 'Bound');
  assert.is(claim.spec.storageClassName, 'local-path');
  const volume = await cluster.client.request<PersistentVolume>('GET', `/api/v1/persistentvolumes/${claim.spec.volumeName}`);
  const dir = join(agentData(), 'storage', volume.metadata.name!);
  assert.is(volume.spec.hostPath?.path, dir);
  assert.is(readFileSync(join(dir, 'f'), 'utf8'), 'kept\n');

  await cluster.client.request('DELETE', `${PODS}/writer`);
  await eventually('writer gone', async () => ((await cluster.pods('app=writer')).length === 0 ? true : undefined), 60_000);
  await agent?.kill('SIGTERM');
  agent = startAgent();
  await cluster.nodesReady([NODE], 60_000);
  // The reader exits (and so is never Ready) unless it finds what the writer left.
  await cluster.client.request('POST', PODS, podWithClaim('reader', 'test "$(cat /data/f)" = kept && exec sleep 3600'));
  await readyPod('reader');

  await cluster.client.request('DELETE', `${PODS}/reader`);
  await cluster.client.request('DELETE', `${CLAIMS}/data`);
  await eventually('the volume and its directory gone', async () => {
    const gone = await cluster.client.request('GET', `/api/v1/persistentvolumes/${volume.metadata.name}`).then(() => false, () => true);
    return gone && !existsSync(dir) ? true : undefined;
  }, 90_000);
});

test.run();
