// After a node comes back, the server's copy of its pods says Ready=False (node lifecycle): the agent reports
// again although nothing changed on the node.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { FakeRuntime } from '../../node-agent/runtime/fake.js';
import { PodWorkers } from '../../node-agent/pod-worker.js';
import type { PodInputs } from '../../node-agent/pod-actions.js';
import { eventually } from '../support/eventually.js';
import { stopAfterEach } from '../support/set-up.js';

const stopLater = stopAfterEach(test);

test('a worker reports again when the server has its pod not Ready while it runs Ready', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'flotilla-ready-'));
  const runtime = new FakeRuntime({ images: ['fake/pause', 'fake/sleep'] });
  const reports: string[] = [];
  const workers = new PodWorkers({
    runtime, clusterId: 'c', nodeName: 'n', dataDir, sandboxImage: 'fake/pause', resyncMs: 100, log: pino({ level: 'silent' }),
    onStatus: (_i, status) => reports.push(status.conditions?.find((c) => c.type === 'Ready')?.status ?? '?'),
  });
  const ac = new AbortController();
  const running = workers.run(ac.signal);
  stopLater(async () => { ac.abort(); await running; rmSync(dataDir, { recursive: true, force: true }); });
  const inputs: PodInputs = { pod: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'ns', uid: 'u1' }, spec: { nodeName: 'n', containers: [{ name: 'c', image: 'fake/sleep' }] } }, configMaps: {}, secrets: {} };
  workers.update(inputs);
  await eventually('Ready reported', () => (reports.includes('True') ? true : undefined));
  const before = reports.length;
  // The hold is what is tested: three resync periods (100 ms) in which nothing changes bring no report.
  await new Promise((r) => setTimeout(r, 300));
  assert.is(reports.length, before, 'nothing new to report while nothing changes');
  workers.update({ ...inputs, pod: { ...inputs.pod, status: { phase: 'Running', containerStatuses: [], conditions: [{ type: 'Ready', status: 'False', reason: 'NodeUnreachable', lastTransitionTime: new Date().toISOString() }] } } });
  await eventually('a new report', () => (reports.length > before ? true : undefined));
  assert.is(reports.at(-1), 'True');
  ac.abort();
  await running;
  rmSync(dataDir, { recursive: true, force: true });
});

test.run();
