// Pod events: what the pod worker reports, and how the sink aggregates repeats into one Event whose count grows.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { FakeRuntime } from '../../node-agent/runtime/fake.js';
import { PodWorkers } from '../../node-agent/pod-worker.js';
import { PodEventSink } from '../../node-agent/pod-events.js';
import type { PodEvent } from '../../node-agent/pod-events.js';
import type { PodInputs } from '../../node-agent/pod-actions.js';
import type { ApiClient } from '../../client/client.js';
import { eventually } from '../support/eventually.js';
import { stopAfterEach } from '../support/set-up.js';

const dataDir = mkdtempSync(join(tmpdir(), 'flotilla-pod-events-'));
const log = pino({ level: 'silent' });
const pod = (name: string, image: string): PodInputs => ({
  pod: { apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'ns', uid: `uid-${name}` }, spec: { nodeName: 'n', restartPolicy: 'Always', containers: [{ name: 'c', image }] } },
  configMaps: {}, secrets: {},
});

const stopLater = stopAfterEach(test);

test('the pod worker reports pulls, starts, pull failures and crash back-off as events', async () => {
  const runtime = new FakeRuntime({ images: ['fake/pause', 'fake/crash'] });
  runtime.setBehaviour('fake/crash', { exitAfterMs: 5, exitCode: 2 });
  runtime.failPull('127.0.0.1:1/none:1');
  const seen: { pod: string; event: PodEvent }[] = [];
  const workers = new PodWorkers({
    runtime, clusterId: 'c', nodeName: 'n', dataDir, sandboxImage: 'fake/pause', backoffBaseMs: 40, backoffMaxMs: 200, resyncMs: 100, log,
    onEvent: (inputs, event) => seen.push({ pod: inputs.pod.metadata.name ?? '', event }),
  });
  const ac = new AbortController();
  const running = workers.run(ac.signal);
  stopLater(async () => { ac.abort(); await running; });
  workers.update(pod('crasher', 'fake/crash'));
  workers.update(pod('unpullable', '127.0.0.1:1/none:1'));
  const reasons = (name: string) => seen.filter((s) => s.pod === name).map((s) => `${s.event.type} ${s.event.reason}`);
  await eventually('crash back-off events', () => (reasons('crasher').includes('Warning BackOff') ? true : undefined));
  await eventually('pull failure events', () => (reasons('unpullable').includes('Normal BackOff') ? true : undefined));
  assert.ok(reasons('crasher').includes('Normal Created') && reasons('crasher').includes('Normal Started'), reasons('crasher').join(','));
  const failed = seen.find((s) => s.pod === 'unpullable' && s.event.reason === 'Failed');
  assert.match(failed?.event.message ?? '', /Failed to pull image "127\.0\.0\.1:1\/none:1"/);
  ac.abort();
  await running;
});

test('repeats of one event become one Event object whose count grows, written at most once per interval', async () => {
  const requests: { method: string; path: string; body: Record<string, unknown>; atMs: number }[] = [];
  const client = { request: async (method: string, path: string, body: Record<string, unknown>) => { requests.push({ method, path, body, atMs: Date.now() }); return {}; } } as unknown as ApiClient;
  const sink = new PodEventSink(client, 'node-a', log, 50);
  const p = pod('web', 'img').pod;
  for (let i = 0; i < 5; i++) sink.record(p, { type: 'Warning', reason: 'BackOff', message: 'Back-off restarting failed container c' });
  await eventually('the first write', () => requests.length >= 1);
  assert.is(requests.length, 1, 'five repeats recorded at once are one write');
  assert.is(requests[0]!.method, 'POST');
  assert.is(requests[0]!.path, '/api/v1/namespaces/ns/events');
  assert.is(requests[0]!.body.count, 5);
  assert.equal((requests[0]!.body.involvedObject as { kind: string; name: string }).name, 'web');
  sink.record(p, { type: 'Warning', reason: 'BackOff', message: 'Back-off restarting failed container c' });
  await eventually('the second write', () => requests.length >= 2);
  assert.is(requests.length, 2);
  assert.is(requests[1]!.method, 'PATCH');
  assert.is(requests[1]!.body.count, 6);
  // Timers have millisecond granularity: a write due 50 ms after the last may be measured 1 ms short.
  assert.ok(requests[1]!.atMs - requests[0]!.atMs >= 49, `written ${requests[1]!.atMs - requests[0]!.atMs} ms after the last write, within the 50 ms interval`);
  sink.record(p, { type: 'Normal', reason: 'Started', message: 'Started container c' });
  await eventually('the third write', () => requests.length >= 3);
  assert.is(requests.filter((r) => r.method === 'POST').length, 2, 'a different event is a new object');
});

test.after(() => rmSync(dataDir, { recursive: true, force: true }));
test.run();
