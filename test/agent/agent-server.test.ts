// The agent (FakeRuntime, in this process) against a real `flotilla server` process: registration, heartbeat,
// pods bound to the node running with their status on the server, deletion, adoption after an agent restart,
// edge autonomy with the server killed, the offline reboot from the cache, clean-up on reconnect, logs and exec
// through the server, StatefulSet fencing, and hollow nodes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { ApiClient, type ApiClientError } from '../../client/client.js';
import { NODE_KEY_FILE, NODE_PKI_DIR } from '../../node-agent/identity.js';
import { NODE_CERT_FILE } from '../../node-agent/node-certificate.js';
import type { Node } from '../../api-types/index.js';
import { run, type AgentRunConfig } from '../../node-agent/run.js';
import { HollowFleet, hollowInventory } from '../../node-agent/hollow.js';
import { FakeRuntime } from '../../node-agent/runtime/fake.js';
import { LABEL_CONTAINER, LABEL_POD, SANDBOX_CONTAINER_NAME } from '../../node-agent/runtime/types.js';
import { parseArgs } from '../../cli/args.js';
import { execCommand } from '../../cli/exec.js';
import { logsCommand } from '../../cli/logs.js';
import { eventually } from '../support/eventually.js';
import { setUp } from '../support/set-up.js';
import { RealServer, appPod } from './real-server.js';

const NODE = 'edge-a';
const APP = 'fake/app';
const srv = new RealServer();
let runtime = new FakeRuntime();

function scriptApp(rt: FakeRuntime): void {
  rt.setBehaviour(APP, {
    output: ['hello from fake', 'second line'],
    exec: (cmd) => ({ exitCode: cmd[0] === 'fail' ? 7 : 0, stdout: `ran ${cmd.join(' ')}\n`, stderr: cmd[0] === 'fail' ? 'failed\n' : '' }),
  });
}
scriptApp(runtime);

const CLOCK_FINDING = { id: 'clock-unsynchronised', severity: 'warning', message: 'the clock is not synchronised', fix: 'sudo timedatectl set-ntp true' } as const;

/** `ready` resolves once the agent loop has started (run's onReady, just before it). */
function startAgent(rt: FakeRuntime, fenceAfterSeconds = 45, now?: () => number): { stop: () => Promise<void>; ready: Promise<void> } {
  const ac = new AbortController();
  const config: AgentRunConfig = {
    server: srv.server.url, token: srv.server.token, ca: srv.server.ca, dataDir: join(srv.dir, 'agent'), nodeName: NODE,
    listenHost: '127.0.0.1', listenPort: 0, runtime: rt, inventory: hollowInventory(NODE, { cpu: '4', memory: '8Gi', gpus: 1 }), findings: [CLOCK_FINDING],
    tuning: { heartbeatSeconds: 0.3, nodeStatusSeconds: 0.6, retrySeconds: 0.1, retryMaxSeconds: 0.5, fenceAfterSeconds, podWorkers: { resyncMs: 300 }, ...(now ? { now } : {}) },
    log: pino({ level: 'silent' }),
  };
  let started = () => {};
  const ready = new Promise<void>((resolve) => { started = resolve; });
  const done = run(ac.signal, config, () => started());
  return { stop: async () => { ac.abort(); await done; }, ready };
}

async function runningIds(rt: FakeRuntime, pod: string): Promise<string[]> {
  return (await rt.listContainers({ [LABEL_POD]: pod })).filter((c) => c.state === 'running' && c.labels[LABEL_CONTAINER] !== SANDBOX_CONTAINER_NAME).map((c) => c.id).sort();
}

let agent: { stop: () => Promise<void>; ready: Promise<void> } | undefined;

setUp(test, async () => {
  await srv.start();
}, async () => {
  await agent?.stop();
  await srv.close();
});

test('registers a Ready node with capacity, GPUs and its endpoint, and renews the lease', async () => {
  agent = startAgent(runtime);
  const node = await eventually('node Ready', async () => {
    const n = await srv.client.request<Node>('GET', `/api/v1/nodes/${NODE}`).catch(() => undefined);
    return n?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True' && c.reason === 'AgentReady') ? n : undefined;
  });
  const status = node.status!;
  assert.is(status.capacity?.cpu, '4');
  assert.is(status.allocatable?.memory, '8Gi');
  assert.is(status.capacity?.['nvidia.com/gpu'], '1');
  assert.is(status.gpus?.[0]?.uuid, `GPU-hollow-${NODE}-0`);
  assert.is(node.metadata.labels?.['flotilla.io/gpu.count'], '1');
  assert.ok((status.daemonEndpoints?.kubeletEndpoint?.Port ?? 0) > 0);
  assert.equal(status.addresses?.[0], { type: 'InternalIP', address: '127.0.0.1' });
  const lease = await eventually('first lease', () => srv.client.request<{ spec: { holderIdentity: string; renewTime: string } }>('GET', `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${NODE}`).catch(() => undefined));
  assert.is(lease.spec.holderIdentity, NODE);
  const first = lease.spec.renewTime;
  await eventually('lease renewed', async () => {
    const l = await srv.client.request<{ spec: { renewTime: string } }>('GET', `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${NODE}`);
    return l.spec.renewTime !== first ? true : undefined;
  });
  const secret = await srv.client.request('GET', `/api/v1/namespaces/kube-system/secrets/flotilla-agent-${NODE}`).then(() => 200, (err: ApiClientError) => err.code);
  assert.is(secret, 404, 'agent endpoint credentials are not in the Secret store');
  const events = await srv.client.request<{ items: Array<{ type: string; reason: string; message: string; involvedObject: { kind: string; name: string } }> }>('GET', '/api/v1/namespaces/default/events');
  const preflight = events.items.find((e) => e.reason === 'Preflight-clock-unsynchronised');
  assert.is(preflight?.type, 'Warning');
  assert.equal(preflight?.involvedObject.kind, 'Node');
  assert.match(preflight?.message ?? '', /sudo timedatectl set-ntp true/);
});

test('deleting the Node revokes the running agent\'s certificate; with it removed, the agent joins again with its token', async () => {
  const certificate = join(srv.dir, 'agent', NODE_PKI_DIR, NODE_CERT_FILE);
  const asAgent = new ApiClient(srv.server.url, undefined, { tls: { ...srv.server.tls, identity: () => ({ certPem: readFileSync(certificate, 'utf8'), keyPem: readFileSync(join(srv.dir, 'agent', NODE_PKI_DIR, NODE_KEY_FILE), 'utf8') }) } });
  try {
    await asAgent.request('GET', `/api/v1/nodes/${NODE}`);
    await srv.client.request('DELETE', `/api/v1/nodes/${NODE}`);
    const code = await asAgent.request('GET', `/api/v1/nodes/${NODE}`).then(() => 200, (err: ApiClientError) => err.code);
    assert.is(code, 401, 'the deleted node\'s certificate still authenticates');
  } finally {
    asAgent.close();
  }
  await agent?.stop();
  rmSync(certificate);
  agent = startAgent(runtime);
  await eventually('node registered again', () => srv.client.request('GET', `/api/v1/nodes/${NODE}`).catch(() => undefined));
});

test('a pod bound to the node runs; its status reaches Running/Ready; logs and exec work through the server', async () => {
  await srv.createPod(appPod('web', NODE, APP));
  const pod = await srv.podReady('web');
  assert.match(pod.status?.containerStatuses?.[0]?.containerID ?? '', /^fake:\/\//);
  assert.is((await runningIds(runtime, 'web')).length, 1);

  const text = await (await srv.server.fetch(`${srv.server.url}/api/v1/namespaces/default/pods/web/log?tailLines=1`, { headers: { authorization: `Bearer ${srv.server.token}` } })).text();
  assert.is(text, 'second line\n');
  const all = await (await srv.server.fetch(`${srv.server.url}/api/v1/namespaces/default/pods/web/log`, { headers: { authorization: `Bearer ${srv.server.token}` } })).text();
  assert.is(all, 'hello from fake\nsecond line\n');

  const refused = await srv.server.fetch(`${srv.server.url}/api/v1/namespaces/default/pods/web/log?previous=true`, { headers: { authorization: `Bearer ${srv.server.token}` } });
  assert.is(refused.status, 400, 'a container that never restarted has no previous attempt');
  assert.match(await refused.text(), /previous terminated container \\"main\\" in pod \\"web\\" not found/);
  const stamped = await (await srv.server.fetch(`${srv.server.url}/api/v1/namespaces/default/pods/web/log?timestamps=true&limitBytes=60`, { headers: { authorization: `Bearer ${srv.server.token}` } })).text();
  assert.match(stamped, /^\d{4}-\d\d-\d\dT[\d:.]+Z hello from fake\n/);
  assert.is(Buffer.byteLength(stamped), 60, 'cut at limitBytes, in the second line');
  // The agent endpoint admits only the servers' certificates: test/agent/endpoint-tls.test.ts and node-certificates.test.ts.

  const ok = await srv.client.request<{ exitCode: number; stdout: string }>('POST', '/api/v1/namespaces/default/pods/web/exec', { container: 'main', command: ['echo', 'hi'] });
  assert.equal(ok, { exitCode: 0, stdout: 'ran echo hi\n', stderr: '' });
  const bad = await srv.client.request<{ exitCode: number; stderr: string }>('POST', '/api/v1/namespaces/default/pods/web/exec', { command: ['fail'] });
  assert.is(bad.exitCode, 7);
  assert.is(bad.stderr, 'failed\n');
});

test('flotilla logs and exec modules read through the server; exec exits with the command\'s code', async () => {
  const env = { ...srv.server.cliEnv, FLOTILLA_CONFIG: join(srv.dir, 'no-config') };
  const out: string[] = [];
  const err: string[] = [];
  const io = { out: (t: string) => { out.push(t); }, err: (t: string) => { err.push(t); }, env, readStdin: () => '', isTty: false };
  const signal = new AbortController().signal;
  assert.is(await logsCommand.run(parseArgs(['web', '--tail', '1'], logsCommand.flags), io, signal), 0);
  assert.equal(out, ['second line\n']);
  out.length = 0;
  await srv.createPod({ ...appPod('web-2', NODE, APP), metadata: { name: 'web-2', labels: { app: 'web' } } });
  await srv.client.request('PATCH', '/api/v1/namespaces/default/pods/web', { metadata: { labels: { app: 'web' } } }, { contentType: 'application/merge-patch+json' });
  await srv.podReady('web-2');
  assert.is(await logsCommand.run(parseArgs(['-l', 'app=web'], logsCommand.flags), io, signal), 0);
  assert.equal(out.join('').split('\n').filter(Boolean).sort(), ['[web-2/main] hello from fake', '[web-2/main] second line', '[web/main] hello from fake', '[web/main] second line']);
  out.length = 0;
  assert.is(await execCommand.run(parseArgs(['web', '--', 'fail', 'now'], execCommand.flags), io, signal), 7);
  assert.equal(out, ['ran fail now\n']);
  assert.equal(err, ['failed\n']);
  await srv.deletePod('web-2');
});

test('deleting the pod on the server stops and removes its containers', async () => {
  await srv.createPod(appPod('gone', NODE, APP));
  await srv.podReady('gone');
  await srv.deletePod('gone');
  await eventually('containers of the deleted pod removed', async () => ((await runtime.listContainers({ [LABEL_POD]: 'gone' })).length === 0 ? true : undefined));
});

test('an agent restart adopts the running containers (same ids, no restart)', async () => {
  const before = await runningIds(runtime, 'web');
  await agent!.stop();
  agent = startAgent(runtime);
  // A new pod running shows the new agent is at work.
  await srv.createPod(appPod('after-restart', NODE, APP));
  await srv.podReady('after-restart');
  assert.equal(await runningIds(runtime, 'web'), before);
  const web = await srv.getPod('web');
  assert.is(web?.status?.containerStatuses?.[0]?.restartCount, 0);
});

test('server killed: pods keep running; offline reboot starts cached pods; on reconnect pods deleted meanwhile are removed', async () => {
  await agent!.stop();
  agent = undefined;
  await srv.deletePod('after-restart'); // deleted while the agent is away
  await srv.kill();
  const kept = await runningIds(runtime, 'web');
  assert.is(kept.length, 1, 'stopping the agent leaves its pods running');

  // Reboot with no server: the containers are gone with the machine; the cache brings the pods back.
  runtime = new FakeRuntime();
  scriptApp(runtime);
  agent = startAgent(runtime);
  await eventually('cached pods run again with the server down', async () => ((await runningIds(runtime, 'web')).length === 1 && (await runningIds(runtime, 'after-restart')).length === 1 ? true : undefined));
  // The hold is what is tested: the agent fails to reach the server for a second (retries every 0.1-0.5 s),
  // and nothing may stop the pod meanwhile.
  await new Promise((r) => setTimeout(r, 1000));
  assert.is((await runningIds(runtime, 'web')).length, 1, 'pods keep running while the server is unreachable');

  await srv.start();
  await eventually('pod deleted while offline is removed on reconnect', async () => ((await runtime.listContainers({ [LABEL_POD]: 'after-restart' })).length === 0 ? true : undefined));
  assert.is((await runningIds(runtime, 'web')).length, 1, 'pods still bound here keep running');
  await srv.podReady('web');
});

test('StatefulSet pods are fenced after the fence time without a server, not started from the cache offline, and start again on reconnect', async () => {
  await agent!.stop();
  agent = startAgent(runtime, 1.5);
  const sts = await srv.client.request<{ metadata: { uid: string } }>('POST', '/apis/apps/v1/namespaces/default/statefulsets', {
    apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: 'db' },
    spec: { replicas: 0, serviceName: 'db', selector: { matchLabels: { app: 'db' } }, template: { metadata: { labels: { app: 'db' } }, spec: { containers: [{ name: 'main', image: APP }] } } },
  });
  await srv.createPod({
    ...appPod('db-x', NODE, APP),
    metadata: { name: 'db-x', ownerReferences: [{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'db', uid: sts.metadata.uid }] },
  });
  await srv.podReady('db-x');
  await srv.kill();
  await eventually('StatefulSet pod stopped by the fence', async () => ((await runningIds(runtime, 'db-x')).length === 0 ? true : undefined));
  assert.is((await runningIds(runtime, 'web')).length, 1, 'other pods are not fenced');

  // Reboot while the server is still down: the cache starts ordinary pods, never StatefulSet ones.
  await agent!.stop();
  runtime = new FakeRuntime();
  scriptApp(runtime);
  agent = startAgent(runtime, 1.5);
  await eventually('ordinary cached pod runs after the offline reboot', async () => ((await runningIds(runtime, 'web')).length === 1 ? true : undefined));
  // The hold is what is tested: nothing starts the StatefulSet pod while the server stays down.
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(await runningIds(runtime, 'db-x'), [], 'a cached StatefulSet pod waits for a server');

  await srv.start();
  await eventually('fenced pod starts again once the server confirms it', async () => ((await runningIds(runtime, 'db-x')).length === 1 ? true : undefined));
});

test('an agent restarted without a server keeps surviving StatefulSet containers until the fence time (its clock), then stops them', async () => {
  await eventually('StatefulSet pod running', async () => ((await runningIds(runtime, 'db-x')).length === 1 ? true : undefined));
  await agent!.stop();
  await srv.kill();
  let aheadMs = 0;
  agent = startAgent(runtime, 45, () => Date.now() + aheadMs);
  await agent.ready;
  // Within the fence time the containers that outlived the last agent keep running (the cache does not start it).
  assert.is((await runningIds(runtime, 'db-x')).length, 1);
  aheadMs = 46_000;
  await eventually('StatefulSet pod stopped by the fence', async () => ((await runningIds(runtime, 'db-x')).length === 0 ? true : undefined), { limitMs: 10_000 });
  assert.is((await runningIds(runtime, 'web')).length, 1, 'other pods are not fenced');
  await srv.start();
  await eventually('fenced pod starts again once the server confirms it', async () => ((await runningIds(runtime, 'db-x')).length === 1 ? true : undefined));
});

test('hollow nodes register and heartbeat; one can be stopped alone', async () => {
  const fleet = new HollowFleet({
    server: srv.server.url, token: srv.server.token, ca: srv.server.ca, dataDir: join(srv.dir, 'hollow'), count: 3, prefix: 'hollow', gpus: 2, log: pino({ level: process.env.HOLLOW_LOG ?? 'silent' }),
    tuning: { heartbeatSeconds: 0.3, retrySeconds: 0.1, retryMaxSeconds: 0.5 },
  });
  fleet.start();
  try {
    const renewed = async (name: string) => (await srv.client.request<{ spec: { renewTime: string } }>('GET', `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${name}`).catch(() => undefined))?.spec.renewTime;
    await eventually('three hollow nodes Ready', async () => {
      const list = await srv.client.request<{ items: Array<{ metadata: { name: string }; status?: { conditions?: Array<{ type: string; status: string }> } }> }>('GET', '/api/v1/nodes');
      return list.items.filter((n) => n.metadata.name.startsWith('hollow-') && n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')).length === 3 ? true : undefined;
    });
    await srv.createPod(appPod('on-hollow', 'hollow-1', APP));
    await srv.podReady('on-hollow');
    assert.is((await fleet.runtime('hollow-1').listContainers({ [LABEL_POD]: 'on-hollow' })).length, 2, 'sandbox and app container');

    await fleet.control('# node failure drill\nstop hollow-2\n');
    assert.not.ok(fleet.running('hollow-2'));
    assert.ok(fleet.running('hollow-1'));
    try {
      await fleet.control('stop hollow-0\nreboot hollow-1');
      assert.unreachable('a bad control line must be refused');
    } catch (err) {
      assert.match((err as Error).message, /line 2: "reboot hollow-1"/);
    }
    assert.ok(fleet.running('hollow-0'), 'nothing is applied when a line is bad');
    const stoppedAt = await renewed('hollow-2');
    const otherAt = await renewed('hollow-0');
    await eventually('hollow-0 still renews', async () => ((await renewed('hollow-0')) !== otherAt ? true : undefined));
    assert.is(await renewed('hollow-2'), stoppedAt, 'the stopped node renews no more');
  } finally {
    await fleet.stopAll();
  }
});

test.run();
