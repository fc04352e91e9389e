// Init containers on a real Docker engine with flotilla/testbox (busybox): two init containers write into an
// emptyDir in turn, and the app container serves what they wrote on its hostPort. Every container carries this
// run's node label and is removed after the suite, pass or fail.
import { fixedPort } from '../support/server-process.js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DockerRuntime } from '../../node-agent/runtime/docker.js';
import type { PodSpec } from '../../api-types/index.js';
import { PodWorkers } from '../../node-agent/pod-worker.js';
import type { PodInputs } from '../../node-agent/pod-actions.js';
import { LABEL_NODE } from '../../node-agent/runtime/types.js';
import { eventually } from '../support/eventually.js';

const TESTBOX = 'flotilla/testbox:latest';
const nodeName = `docker-init-${process.pid}`;
const runtime = new DockerRuntime();
const dataDir = mkdtempSync(join(tmpdir(), 'flotilla-init-docker-'));
const ac = new AbortController();
let running: Promise<void> | undefined;


test.after(async () => {
  ac.abort();
  await running;
  for (const c of await runtime.listContainers({ [LABEL_NODE]: nodeName })) await runtime.removeContainer(c.id);
  rmSync(dataDir, { recursive: true, force: true });
});

test('init containers fill an emptyDir in order; the app container serves the result', async () => {
  const workers = new PodWorkers({ runtime, clusterId: 'cluster-a', nodeName, dataDir, backoffBaseMs: 200, backoffMaxMs: 2000, resyncMs: 1000 });
  running = workers.run(ac.signal);
  const port = await fixedPort();
  const spec: PodSpec = {
    nodeName,
    terminationGracePeriodSeconds: 1,
    volumes: [{ name: 'site', emptyDir: {} }],
    initContainers: [
      { name: 'first', image: TESTBOX, command: ['/bin/sh', '-c', 'echo first > /www/index.html'], volumeMounts: [{ name: 'site', mountPath: '/www' }] },
      // Fails unless the first one has already written its line: proves the order on the engine itself.
      { name: 'second', image: TESTBOX, command: ['/bin/sh', '-c', 'grep -q first /www/index.html && echo second >> /www/index.html'], volumeMounts: [{ name: 'site', mountPath: '/www' }] },
    ],
    containers: [{
      name: 'web', image: TESTBOX,
      command: ['httpd', '-f', '-p', '8080', '-h', '/www'],
      ports: [{ containerPort: 8080, hostPort: port }],
      volumeMounts: [{ name: 'site', mountPath: '/www' }],
    }],
    restartPolicy: 'Never',
  };
  const inputs: PodInputs = { pod: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'init-web', namespace: 'test', uid: `${process.pid}-init` }, spec }, configMaps: {}, secrets: {} };
  workers.update(inputs);
  const s = await eventually('Running', () => {
    const st = workers.get(inputs.pod.metadata.uid!)?.status;
    if (st?.phase === 'Failed') throw new Error(`pod failed: ${JSON.stringify(st.initContainerStatuses)}`);
    return st?.phase === 'Running' ? st : undefined;
  }, 30_000);
  assert.equal(s.initContainerStatuses?.map((c) => c.state.terminated !== undefined && c.state.terminated.reason), ['Completed', 'Completed']);
  assert.is(s.conditions.find((c) => c.type === 'Initialized')?.status, 'True');
  const body = await eventually('hostPort answers', async () => {
    try {
      return await (await fetch(`http://127.0.0.1:${port}/index.html`)).text();
    } catch {
      return undefined;
    }
  });
  assert.is(body, 'first\nsecond\n');
});

test.run();
