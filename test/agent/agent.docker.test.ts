// The agent process end to end on a real Docker engine and a real server: a flotilla/testbox pod runs and its
// hostPort answers, logs -f and exec (with its exit code) go through the server, and after a SIGKILL of the
// agent process a new agent adopts the very same containers.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { DockerRuntime } from '../../node-agent/runtime/docker.js';
import { LABEL_CONTAINER, LABEL_NODE, SANDBOX_CONTAINER_NAME } from '../../node-agent/runtime/types.js';
import { fixedPort, ownChild, stopChild } from '../support/server-process.js';
import { eventually } from '../support/eventually.js';
import { setUp } from '../support/set-up.js';
import { RealServer } from './real-server.js';

const TESTBOX = 'flotilla/testbox:latest';
const NODE = `docker-agent-${process.pid}`;
const agentEntry = new URL('../../../bin/flotilla.js', import.meta.url).pathname;
const srv = new RealServer();
const runtime = new DockerRuntime();
let agent: ChildProcess | undefined;
let agentOutput = '';

function startAgentProcess(): ChildProcess {
  const child = ownChild(spawn(process.execPath, [agentEntry, 'agent', '--server', srv.server.url, '--token', srv.server.token, '--ca', srv.server.caPath, '--data', join(srv.dir, 'agent'), '--no-pod-network',
    '--name', NODE, '--listen', '127.0.0.1:0', '--advertise-address', '127.0.0.1'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FLOTILLA_LOG_LEVEL: 'warn', FLOTILLA_SERVICE_PROXY: 'off', FLOTILLA_INGRESS: 'off' } }));
  child.stdout!.on('data', (d) => { agentOutput += d; });
  child.stderr!.on('data', (d) => { agentOutput += d; });
  return child;
}

async function killAgent(signal: NodeJS.Signals): Promise<void> {
  const child = agent;
  agent = undefined;
  if (child) await stopChild(child, signal);
}

async function appContainerIds(): Promise<string[]> {
  return (await runtime.listContainers({ [LABEL_NODE]: NODE }))
    .filter((c) => c.state === 'running' && c.labels[LABEL_CONTAINER] !== SANDBOX_CONTAINER_NAME).map((c) => c.id).sort();
}

setUp(test, async () => {
  await srv.start();
}, async () => {
  await killAgent('SIGKILL');
  for (const c of await runtime.listContainers({ [LABEL_NODE]: NODE })) await runtime.removeContainer(c.id);
  await srv.close();
});

test('a testbox pod runs, serves its hostPort, streams logs and runs exec through the server; SIGKILL + restart adopts', async () => {
  agent = startAgentProcess();
  await eventually(`node ${NODE} registered`, () => srv.client.request('GET', `/api/v1/nodes/${NODE}`).catch(() => undefined), 60_000)
    .catch((err: Error) => { throw new Error(`${err.message}; agent output: ${agentOutput}`); });
  const port = await fixedPort();
  // A hostPort is beyond the Pod Security baseline level that a namespace has by default.
  await srv.client.request('PATCH', '/api/v1/namespaces/default', { metadata: { labels: { 'pod-security.kubernetes.io/enforce': 'privileged' } } }, { contentType: 'application/merge-patch+json' });
  await srv.createPod({
    apiVersion: 'v1', kind: 'Pod', metadata: { name: 'box' },
    spec: {
      nodeName: NODE, terminationGracePeriodSeconds: 1,
      containers: [
        { name: 'web', image: TESTBOX, command: ['/bin/sh', '-c', 'mkdir -p /www && echo hello-from-box > /www/index.html && exec httpd -f -p 8080 -h /www'], ports: [{ containerPort: 8080, hostPort: port }] },
        { name: 'ticker', image: TESTBOX, command: ['/bin/sh', '-c', 'i=0; while :; do echo tick $i; i=$((i+1)); sleep 0.2; done'] },
      ],
    },
  });
  await srv.podReady('box', 90_000);
  const body = await eventually('hostPort answers', async () => {
    const res = await fetch(`http://127.0.0.1:${port}/`).catch(() => undefined);
    return res?.ok ? res.text() : undefined;
  });
  assert.is(body, 'hello-from-box\n');

  const follow = new AbortController();
  const res = await srv.server.fetch(`${srv.server.url}/api/v1/namespaces/default/pods/box/log?container=ticker&follow=true`, { headers: { authorization: `Bearer ${srv.server.token}` }, signal: follow.signal });
  assert.is(res.status, 200);
  let text = '';
  const decoder = new TextDecoder();
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    text += decoder.decode(chunk, { stream: true });
    if ((text.match(/tick \d+\n/g) ?? []).length >= 3) break;
  }
  follow.abort();
  assert.match(text, /^tick 0\ntick 1\ntick 2\n/);

  const exec = await srv.client.request<{ exitCode: number; stdout: string; stderr: string }>('POST', '/api/v1/namespaces/default/pods/box/exec', { container: 'web', command: ['/bin/sh', '-c', 'cat /www/index.html; echo oops >&2; exit 3'] });
  assert.equal(exec, { exitCode: 3, stdout: 'hello-from-box\n', stderr: 'oops\n' });

  const before = await appContainerIds();
  assert.is(before.length, 2);
  await killAgent('SIGKILL');
  agent = startAgentProcess();
  // The new agent has taken over once it answers exec again (its endpoint token is new).
  await eventually('exec through the restarted agent', async () => {
    const r = await srv.client.request<{ exitCode: number }>('POST', '/api/v1/namespaces/default/pods/box/exec', { container: 'web', command: ['true'] }).catch(() => undefined);
    return r?.exitCode === 0 ? true : undefined;
  }, 60_000);
  assert.equal(await appContainerIds(), before, 'the same containers, not restarted');

  await srv.deletePod('box');
  await eventually('containers removed after the pod is deleted', async () => ((await runtime.listContainers({ [LABEL_NODE]: NODE })).length === 0 ? true : undefined), 60_000);
});

test.run();
