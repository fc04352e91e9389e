// Agent join time with the CSR flow, against a real server process over HTTPS: each run is a new machine (a new
// data directory, so a new key) that joins with a join token: makes its P-256 key, sends the CSR, gets its node
// certificate, learns the cluster, opens its endpoint and registers; the run ends when its Node is Ready on the
// server. The agent runs in this process on a FakeRuntime, so Docker and the hardware probe are not counted.
// Goal: median join < 2 s.
// Usage: node dist/bench/agent-join.js [--runs N]   (default 7)
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Node } from '../api-types/index.js';
import { NODE_PKI_DIR } from '../node-agent/identity.js';
import { NODE_CERT_FILE } from '../node-agent/node-certificate.js';
import { FakeRuntime } from '../node-agent/runtime/fake.js';
import { JOIN_TOKENS_PATH } from '../server/tokens/join-tokens.js';
import { FAST_AGENT_TUNING, RealServer, type TestAgent } from '../test/agent/real-server.js';

const runsArg = process.argv.indexOf('--runs');
const runs = runsArg < 0 ? 7 : Number(process.argv[runsArg + 1]);
if (!(Number.isInteger(runs) && runs > 0)) throw new Error(`--runs wants a positive integer, got ${process.argv[runsArg + 1]}`);
const GOAL_MS = 2000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const srv = new RealServer();
const agents: TestAgent[] = [];
try {
  await srv.start();
  const { token } = await srv.client.request<{ token: string }>('POST', JOIN_TOKENS_PATH, { description: 'bench/agent-join' });
  const certMs: number[] = [];
  const joinMs: number[] = [];
  for (let i = 0; i < runs; i++) {
    const name = `join-${process.pid}-${i}`;
    const dataDir = join(srv.dir, name);
    const t0 = performance.now();
    const agent = srv.startAgent(name, new FakeRuntime(), { dataDir, token, tuning: { ...FAST_AGENT_TUNING, heartbeatSeconds: 0.1 } });
    agents.push(agent);
    let certAt: number | undefined;
    for (;;) {
      if (certAt === undefined && existsSync(join(dataDir, NODE_PKI_DIR, NODE_CERT_FILE))) certAt = performance.now();
      const node = await srv.client.request<Node>('GET', `/api/v1/nodes/${name}`).catch(() => undefined);
      if (node?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')) break;
      if (performance.now() - t0 > 60_000) throw new Error(`node ${name} not Ready after 60 s`);
      await sleep(5);
    }
    joinMs.push(performance.now() - t0);
    certMs.push((certAt ?? performance.now()) - t0);
    if (!readFileSync(join(dataDir, NODE_PKI_DIR, NODE_CERT_FILE), 'utf8').includes('BEGIN CERTIFICATE')) throw new Error(`${name}: no node certificate`);
  }
  const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return Math.round(s[Math.floor(s.length / 2)]!); };
  console.log(JSON.stringify({
    bench: 'agent-join', runs,
    certificateMsMedian: median(certMs), joinMsMedian: median(joinMs), joinMsMax: Math.round(Math.max(...joinMs)),
    joinMs: joinMs.map(Math.round), goalMs: GOAL_MS, ok: median(joinMs) < GOAL_MS,
  }));
} finally {
  for (const a of agents) await a.stop().catch(() => undefined);
  await srv.close();
}
