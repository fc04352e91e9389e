// Agents that find their cluster: a server formed with --cluster-init on h1, hollow agents
// (`flotilla agent --token T --simulate 3`, no --server) on h2 find it by mDNS, verify it, register Ready nodes,
// and a Deployment runs across them. Prints the time from agent start to the first and to all nodes Ready.
// fleet.netns.test.ts runs the same start against three servers, with agents on two hosts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLab, type Lab } from './lab.js';
import { apiRequest, reportFigure } from './lab-api.js';
import { StopWaiting, eventually } from '../support/eventually.js';

const SERVER = new URL('../join/lab-server.js', import.meta.url).pathname;
const CLI = new URL('./flotilla-cli.js', import.meta.url).pathname;
const SECRET = 'lab-agents-secret-Q7x9Lm2Pz4Kv8Rt6Wn3Yb5';
const PORT = 7400;
const HOLLOW = 3;
const BOUND_MS = 60_000;

const dir = mkdtempSync(join(tmpdir(), 'flotilla-lab-agents-'));
let lab: Lab | undefined;
test.after(async () => { await lab?.destroy(); rmSync(dir, { recursive: true, force: true }); });

const curl = (from: number, method: string, target: string, token: string, body?: unknown) => apiRequest(lab!, from, method, target, { token, caFile: join(dir, 'h1', 'pki', 'ca.crt') }, body);
const within = <T>(what: string, probe: () => Promise<T | undefined>) => eventually(what, probe, { limitMs: BOUND_MS, everyMs: 100 });

test('hollow agents with only a join token find the server by mDNS, become Ready, and run a Deployment', async () => {
  lab = await createLab({ hosts: 2, prefix: 'fl-lab-agents', subnet: '10.79.0' });
  const api = `https://${lab.host(1).address}:${PORT}`;
  const server = lab.spawn(1, process.execPath, [SERVER, '--data', join(dir, 'h1'), '--listen', `${lab.host(1).address}:${PORT}`, '--cluster-init', '--token', SECRET]);
  await server.waitFor(/^ready /m, BOUND_MS);
  const admin = readFileSync(join(dir, 'h1', 'admin-token'), 'utf8').trim();
  const created = await curl(1, 'POST', `${api}/apis/flotilla.io/v1/jointokens`, admin, {});
  assert.is(created.code, 201);

  const started = Date.now();
  const agent = lab.spawn(2, process.execPath, [CLI, 'agent', '--token', created.json.token as string, '--simulate', String(HOLLOW), '--data', join(dir, 'agent')], { env: { ...process.env, FLOTILLA_INTERFACE: 'eth0' } });
  let firstReadyMs: number | undefined;
  await within(`${HOLLOW} Ready nodes`, async () => {
    if (agent.exitCode !== null) throw new StopWaiting(`the agent exited (${agent.exitCode}): ${agent.output().slice(-800)}`);
    const nodes = await curl(1, 'GET', `${api}/api/v1/nodes`, admin);
    const ready = ((nodes.json.items ?? []) as { status?: { conditions?: { type: string; status: string }[] } }[])
      .filter((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')).length;
    if (ready > 0 && firstReadyMs === undefined) firstReadyMs = Date.now() - started;
    return ready >= HOLLOW ? true : undefined;
  });
  reportFigure(`agent start to first Ready node ${firstReadyMs} ms, to ${HOLLOW} Ready nodes ${Date.now() - started} ms`);

  const deployment = {
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web' },
    spec: { replicas: 6, selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'web', image: 'flotilla/testbox:latest' }] } } },
  };
  assert.is((await curl(1, 'POST', `${api}/apis/apps/v1/namespaces/default/deployments`, admin, deployment)).code, 201);
  const nodesUsed = await within('6 running pods', async () => {
    const pods = await curl(1, 'GET', `${api}/api/v1/namespaces/default/pods?labelSelector=app%3Dweb`, admin);
    const items = (pods.json.items ?? []) as { spec: { nodeName?: string }; status?: { phase?: string } }[];
    const running = items.filter((p) => p.status?.phase === 'Running');
    return running.length === 6 ? new Set(running.map((p) => p.spec.nodeName)) : undefined;
  });
  assert.ok(nodesUsed.size > 1, `the Deployment runs across the hollow nodes, got ${[...nodesUsed].join(', ')}`);
});

test.run();
