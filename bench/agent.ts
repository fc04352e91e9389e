// Footprint of the real agent process (flotilla agent) registered with a real server process.
//   default mode: DockerRuntime; resident memory and CPU time per minute while idle with 0 pods, then with 20
//                 running pods (flotilla/testbox `sleep`, pause sandboxes). Targets: < 80 MB RSS, < 1% of a core.
//   --hollow N:   one process simulating N hollow nodes (FakeRuntime) with --pods P pods each (default 30):
//                 time until every pod is Running on the server, then the simulator's RSS and idle CPU.
//                 Targets for the whole simulator: < 512 MB RSS, < 25% of a core.
// Memory and CPU are read from /proc/PID of the agent process, so the benchmark's own work is not counted.
// Usage: node dist/bench/agent.js [--seconds N] [--hollow N [--pods P]]   (N: idle window, default 30)
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DockerRuntime } from '../node-agent/runtime/docker.js';
import { LABEL_NODE } from '../node-agent/runtime/types.js';
import { RealServer } from '../test/agent/real-server.js';
import { numberArg } from './args.js';

const windowS = numberArg('--seconds', 30);
const hollow = process.argv.includes('--hollow') ? numberArg('--hollow', 100) : 0;
const podsPerNode = hollow ? numberArg('--pods', 30) : 20;

const agentEntry = new URL('../../bin/flotilla.js', import.meta.url).pathname;
const ticksPerS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resident memory (MB) and cumulative CPU time (ms) of a process, from /proc. */
function usage(pid: number): { rssMB: number; cpuMs: number } {
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime
  return { rssMB: Math.round((rssKb / 1024) * 10) / 10, cpuMs: (ticks * 1000) / ticksPerS };
}

async function idleWindow(pid: number, seconds: number): Promise<{ rssMB: number; cpuMsPerMin: number; corePercent: number }> {
  const a = usage(pid);
  const t0 = Date.now();
  await sleep(seconds * 1000);
  const b = usage(pid);
  const perMs = (b.cpuMs - a.cpuMs) / (Date.now() - t0);
  return { rssMB: b.rssMB, cpuMsPerMin: Math.round(perMs * 60_000), corePercent: Math.round(perMs * 10_000) / 100 };
}

const srv = new RealServer();
let agent: ChildProcess | undefined;
let agentOutput = '';
const nodeName = hollow ? 'bench-hollow' : `bench-agent-${process.pid}`;
try {
  await srv.start();
  const args = ['--server', srv.server.url, '--token', srv.server.token, '--ca', srv.server.caPath, '--data', join(srv.dir, 'agent'), '--name', nodeName, '--listen', '127.0.0.1:0', '--advertise-address', '127.0.0.1', '--no-pod-network', '--service-proxy', 'off'];
  agent = spawn(process.execPath, [agentEntry, 'agent', ...args, ...(hollow ? ['--simulate', String(hollow)] : [])], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FLOTILLA_LOG_LEVEL: 'warn' } });
  agent.stdout!.on('data', (d) => { agentOutput += d; });
  agent.stderr!.on('data', (d) => { agentOutput = (agentOutput + d).slice(-4000); });
  const nodes = hollow ? Array.from({ length: hollow }, (_, i) => `${nodeName}-${i}`) : [nodeName];
  const t0 = Date.now();
  for (;;) {
    const list = await srv.client.request<{ items: Array<{ metadata: { name: string } }> }>('GET', '/api/v1/nodes');
    const names = new Set(list.items.map((n) => n.metadata.name));
    if (nodes.every((n) => names.has(n))) break;
    if (Date.now() - t0 > 120_000) throw new Error(`nodes not registered after 120 s; agent output: ${agentOutput}`);
    await sleep(250);
  }
  const registerS = (Date.now() - t0) / 1000;
  await sleep(2000);
  const idle0 = await idleWindow(agent.pid!, Math.min(10, windowS));

  const t1 = Date.now();
  const total = nodes.length * podsPerNode;
  for (let i = 0; i < total; i++) {
    await srv.createPod({
      apiVersion: 'v1', kind: 'Pod', metadata: { name: `bench-${i}`, namespace: 'default' },
      spec: {
        nodeName: nodes[i % nodes.length], terminationGracePeriodSeconds: 1,
        containers: [{ name: 'main', image: hollow ? 'fake/app' : 'flotilla/testbox:latest', command: ['sleep', '3600'] }],
      },
    });
  }
  for (;;) {
    const list = await srv.client.request<{ items: Array<{ status?: { phase?: string } }> }>('GET', '/api/v1/namespaces/default/pods?fieldSelector=status.phase%3DRunning');
    const running = list.items.filter((p) => p.status?.phase === 'Running').length;
    if (running >= total) break;
    if (Date.now() - t1 > 300_000) throw new Error(`only ${running}/${total} pods Running after 300 s`);
    await sleep(500);
  }
  const startPodsS = (Date.now() - t1) / 1000;
  await sleep(3000);
  const idleN = await idleWindow(agent.pid!, windowS);
  // Hollow fleet: 100 nodes x 30 pods must fit beside a server on a 2-core edge box.
  const targets = hollow ? { rssMB: 512, corePercent: 25 } : { rssMB: 80, corePercent: 1 };
  console.log(JSON.stringify({
    bench: hollow ? 'agent-hollow' : 'agent',
    nodes: nodes.length,
    podsPerNode,
    registerS,
    startPodsS,
    rssMB0: idle0.rssMB,
    [`rssMB${podsPerNode}`]: idleN.rssMB,
    cpuMsPerMinIdle0: idle0.cpuMsPerMin,
    [`cpuMsPerMinIdle${podsPerNode}`]: idleN.cpuMsPerMin,
    [`corePercentIdle${podsPerNode}`]: idleN.corePercent,
    windowS,
    targets,
    ok: idleN.rssMB < targets.rssMB && idleN.corePercent < targets.corePercent,
  }));
} finally {
  if (!hollow) {
    // Deleting the pods lets the agent stop its containers; whatever is left is removed directly.
    const list = await srv.client?.request<{ items: Array<{ metadata: { name: string } }> }>('GET', '/api/v1/namespaces/default/pods').catch(() => ({ items: [] }));
    for (const p of list?.items ?? []) await srv.deletePod(p.metadata.name).catch(() => undefined);
  }
  agent?.kill('SIGTERM');
  await sleep(1000);
  if (!hollow) {
    const runtime = new DockerRuntime();
    for (const c of await runtime.listContainers({ [LABEL_NODE]: nodeName })) await runtime.removeContainer(c.id);
  }
  await srv.close();
}
