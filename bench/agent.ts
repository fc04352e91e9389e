// Footprint of the container side of an agent: this process runs PodWorkers on a DockerRuntime with default
// settings, idle with 0 pods and then with 20 running pods (flotilla/testbox `sleep`, pause sandboxes).
// Reports resident memory and CPU time per minute while idle. Targets: < 80 MB RSS, < 1% of one core.
// Usage: node dist/bench/agent.js [--seconds N]   (idle measuring window with 20 pods, default 30)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DockerRuntime } from '../node-agent/runtime/docker.js';
import { PodWorkers } from '../node-agent/pod-worker.js';
import { LABEL_NODE } from '../node-agent/runtime/types.js';

const PODS = 20;
const secondsArg = process.argv.indexOf('--seconds');
const windowS = secondsArg >= 0 ? Number(process.argv[secondsArg + 1]) : 30;
if (!(windowS > 0)) throw new Error(`--seconds wants a positive number, got ${process.argv[secondsArg + 1]}`);

const nodeName = `bench-agent-${process.pid}`;
const runtime = new DockerRuntime();
const dataDir = mkdtempSync(join(tmpdir(), 'flotilla-bench-agent-'));
const workers = new PodWorkers({ runtime, nodeName, dataDir });
const ac = new AbortController();
const running = workers.run(ac.signal);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const rssMB = () => Math.round((process.memoryUsage().rss / 2 ** 20) * 10) / 10;

/** CPU time this process spends per minute of wall time over a window, and that as a percentage of one core. */
async function idleCpu(seconds: number): Promise<{ cpuMsPerMin: number; corePercent: number }> {
  const start = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await sleep(seconds * 1000);
  const used = process.cpuUsage(start);
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const cpuMs = (used.user + used.system) / 1000;
  return { cpuMsPerMin: Math.round((cpuMs / wallMs) * 60_000), corePercent: Math.round((cpuMs / wallMs) * 10000) / 100 };
}

try {
  await runtime.ensureImage('flotilla/pause:1');
  await sleep(2000);
  const idle0 = await idleCpu(Math.min(10, windowS));
  const rss0 = rssMB();

  const t0 = Date.now();
  for (let i = 0; i < PODS; i++) {
    workers.update({
      pod: {
        metadata: { name: `bench-${i}`, namespace: 'bench', uid: `${process.pid}-${i}` },
        spec: { terminationGracePeriodSeconds: 1, containers: [{ name: 'main', image: 'flotilla/testbox:latest', command: ['sleep', '3600'] }] },
      },
      configMaps: {},
      secrets: {},
    });
  }
  for (;;) {
    const ready = workers.uids().filter((uid) => workers.get(uid)?.status?.phase === 'Running').length;
    if (ready === PODS) break;
    if (Date.now() - t0 > 180_000) throw new Error(`only ${ready}/${PODS} pods running after 180 s`);
    await sleep(200);
  }
  const startAllS = (Date.now() - t0) / 1000;
  await sleep(3000);
  const idle20 = await idleCpu(windowS);
  const rss20 = rssMB();
  console.log(JSON.stringify({
    bench: 'agent',
    pods: PODS,
    rssMB0: rss0,
    rssMB20: rss20,
    cpuMsPerMinIdle0: idle0.cpuMsPerMin,
    cpuMsPerMinIdle20: idle20.cpuMsPerMin,
    corePercentIdle20: idle20.corePercent,
    startPodsS: startAllS,
    windowS,
    targets: { rssMB: 80, corePercent: 1 },
    ok: rss20 < 80 && idle20.corePercent < 1,
  }));
} finally {
  await Promise.all(workers.uids().map((uid) => workers.delete(uid, 1)));
  ac.abort();
  await running;
  for (const c of await runtime.listContainers({ [LABEL_NODE]: nodeName })) await runtime.removeContainer(c.id);
  rmSync(dataDir, { recursive: true, force: true });
}
