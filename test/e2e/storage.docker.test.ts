// Persistent storage on real containers: a real server process and two real agent processes (root namespace, no
// pod network, no service proxy, their own data dirs) on the local Docker engine. A claim on the default local-path
// class is provisioned on the node its pod is scheduled to; what the pod writes stays across the pod's deletion and
// the agent's restart, and deleting the claim removes the directory and the volume. A StatefulSet's pod replaced by
// a template that prefers the other node still goes where its data is.
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
const OTHER = `e2e-storage-other-${process.pid}`;
const PODS = '/api/v1/namespaces/default/pods';
const CLAIMS = '/api/v1/namespaces/default/persistentvolumeclaims';
const cluster = new E2eCluster();
const runtime = new DockerRuntime();
let agent: FlotillaProcess | undefined;
let other: FlotillaProcess | undefined;
const agentData = (node = NODE): string => join(cluster.dir, `agent-${node}`);

function startAgent(node = NODE): FlotillaProcess {
  return new FlotillaProcess(['agent', '--server', cluster.url, '--token', cluster.token, '--ca', cluster.caPath, '--data', agentData(node),
    '--name', node, '--listen', '127.0.0.1:0', '--advertise-address', '127.0.0.1', '--no-pod-network', '--service-proxy', 'off']);
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
  other = startAgent(OTHER);
  await cluster.nodesReady([NODE, OTHER], 60_000).catch((err: Error) => { throw new Error(`${err.message}; agent output: ${agent?.output}${other?.output}`); });
}, async () => {
  await agent?.kill('SIGTERM');
  await other?.kill('SIGTERM');
  for (const node of [NODE, OTHER]) for (const c of await runtime.listContainers({ [LABEL_NODE]: node })) await runtime.removeContainer(c.id);
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
  const got = await cluster.cli(['get', 'pv,pvc,sc']);
  assert.is(got.code, 0, got.stderr);
  const lines = got.stdout.split('\n').map((l) => l.trim().split(/\s{2,}/));
  assert.equal(lines[0], ['NAME', 'CAPACITY', 'ACCESS MODES', 'RECLAIM POLICY', 'STATUS', 'CLAIM', 'STORAGECLASS', 'VOLUMEATTRIBUTESCLASS', 'REASON', 'AGE']);
  assert.equal(lines[1]!.slice(0, 8), [`persistentvolume/${volume.metadata.name}`, '64Mi', 'RWO', 'Delete', 'Bound', 'default/data', 'local-path', '<unset>']);
  assert.equal(lines[4]!.slice(0, 7), ['persistentvolumeclaim/data', 'Bound', volume.metadata.name, '64Mi', 'RWO', 'local-path', '<unset>']);
  assert.equal(lines[7]!.slice(0, 5), ['storageclass.storage.k8s.io/local-path (default)', 'flotilla.io/local-path', 'Delete', 'WaitForFirstConsumer', 'false'], 'the servers make the default class');

  await cluster.client.request('DELETE', `${PODS}/writer`);
  await eventually('writer gone', async () => ((await cluster.pods('app=writer')).length === 0 ? true : undefined), 60_000);
  await agent?.kill('SIGTERM');
  agent = startAgent();
  await cluster.nodesReady([NODE, OTHER], 60_000);
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

/** A StatefulSet of one testbox pod with claim template `data`, preferring node `preferred`. */
function statefulSet(preferred: string): Record<string, unknown> {
  return {
    apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: 'db' },
    spec: {
      replicas: 1, selector: { matchLabels: { app: 'db' } },
      template: {
        metadata: { labels: { app: 'db' } },
        spec: {
          terminationGracePeriodSeconds: 0,
          affinity: { nodeAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 100, preference: { matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [preferred] }] } }] } },
          containers: [{
            name: 'db', image: TESTBOX, volumeMounts: [{ name: 'data', mountPath: '/data' }],
            // The first incarnation leaves a marker; a later one that finds it says so.
            command: ['/bin/sh', '-c', 'if [ -f /data/marker ]; then echo seen > /data/seen; else echo first > /data/marker; fi; exec sleep 3600'],
          }],
        },
      },
      volumeClaimTemplates: [{ metadata: { name: 'data' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '64Mi' } } } }],
    },
  };
}

test('a StatefulSet pod goes back to the node that holds its claim\'s data, whatever its template prefers', async () => {
  const STS = '/apis/apps/v1/namespaces/default/statefulsets';
  await cluster.client.request('POST', STS, statefulSet(NODE));
  const first = await eventually('db-0 ready', async () => {
    const [p] = await cluster.pods('app=db');
    return p && isReady(p) ? p : undefined;
  }, 120_000);
  assert.is(first.spec.nodeName, NODE, 'placed as preferred');
  const claim = await cluster.client.request<PersistentVolumeClaim>('GET', `${CLAIMS}/data-db-0`);
  const dir = join(agentData(NODE), 'storage', claim.spec.volumeName!);
  assert.is(readFileSync(join(dir, 'marker'), 'utf8'), 'first\n');

  // The new template prefers the other node: only the volume's node affinity keeps the pod where its data is.
  await cluster.client.request('PUT', `${STS}/db`, statefulSet(OTHER));
  const second = await eventually('db-0 replaced and ready', async () => {
    const [p] = await cluster.pods('app=db');
    return p && p.metadata.uid !== first.metadata.uid && isReady(p) ? p : undefined;
  }, 120_000);
  assert.is(second.spec.nodeName, NODE);
  await eventually('the new pod saw the data', async () => (existsSync(join(dir, 'seen')) ? true : undefined), 30_000);
  await cluster.client.request('DELETE', `${STS}/db`);
});

test.run();
