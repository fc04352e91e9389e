// The WebSocket remote command protocol as client-go's executor speaks it (the ws client here), through a real
// server to an agent on the real Docker engine: the server authenticates and authorizes the upgrade like any
// request, then joins the connection to the agent's; the agent runs the exec (or attaches) in the container.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { once } from 'node:events';
import { WebSocket } from 'ws';
import { CHANNEL, frame, unframe } from '../../node-agent/streams/remote-command.js';
import { eventually } from '../support/eventually.js';
import { setUp } from '../support/set-up.js';
import { StreamCluster, boxPod } from '../kubectl/stream-cluster.js';

const cluster = new StreamCluster(`ws-exec-${process.pid}`);

setUp(test, async () => {
  await cluster.start();
  await cluster.srv.createPod(boxPod('box', cluster.node, 'i=0; while true; do i=$((i+1)); echo "tick $i"; sleep 0.5; done'));
  await cluster.srv.podReady('box', 90_000);
}, () => cluster.stop());

interface Session { ws: WebSocket; got: Array<{ channel: number; data: Buffer }>; closed: Promise<number> }

function query(command: string[], flags: Record<string, string>): string {
  const q = new URLSearchParams();
  for (const c of command) q.append('command', c);
  for (const [k, v] of Object.entries(flags)) q.set(k, v);
  return q.toString();
}

async function connect(path: string, protocols: string[], token?: string): Promise<Session> {
  const target = cluster.webSocketTarget(path);
  const ws = new WebSocket(target.url, protocols, token === undefined ? target.options : { ...target.options, headers: { authorization: `Bearer ${token}` } });
  const got: Session['got'] = [];
  ws.on('message', (m: Buffer) => { const f = unframe(m); if (f) got.push(f); });
  const closed = once(ws, 'close').then(([code]) => code as number);
  await once(ws, 'open');
  return { ws, got, closed };
}

function text(s: Session, channel: number): string {
  return Buffer.concat(s.got.filter((f) => f.channel === channel).map((f) => f.data)).toString('utf8');
}

/** The refusal of an upgrade: its status code and Status body. */
async function refused(path: string, protocols: string[], token?: string): Promise<{ code: number; body: string }> {
  const target = cluster.webSocketTarget(path);
  const ws = new WebSocket(target.url, protocols, token === undefined ? target.options : { ...target.options, headers: { authorization: `Bearer ${token}` } });
  ws.on('error', () => {});
  const [, res] = await once(ws, 'unexpected-response') as [unknown, import('node:http').IncomingMessage];
  let body = '';
  for await (const chunk of res) body += chunk;
  return { code: res.statusCode ?? 0, body };
}

test('v5: stdin sent at once reaches the command up to the close of channel 0; stdout, stderr, then the exit code', async () => {
  const s = await connect(`/api/v1/namespaces/default/pods/box/exec?${query(['sh', '-c', 'cat; echo to-stderr >&2; exit 3'], { stdin: 'true', stdout: 'true', stderr: 'true' })}`, ['v5.channel.k8s.io', 'v4.channel.k8s.io']);
  assert.is(s.ws.protocol, 'v5.channel.k8s.io');
  s.ws.send(frame(CHANNEL.stdin, 'line one\n'));
  s.ws.send(frame(CHANNEL.stdin, 'line two\n'));
  s.ws.send(frame(CHANNEL.close, Buffer.from([CHANNEL.stdin])));
  assert.is(await s.closed, 1000);
  assert.is(text(s, CHANNEL.stdout), 'line one\nline two\n');
  assert.is(text(s, CHANNEL.stderr), 'to-stderr\n');
  const status = JSON.parse(text(s, CHANNEL.error)) as { status: string; reason: string; details: unknown };
  assert.equal([status.status, status.reason, status.details], ['Failure', 'NonZeroExitCode', { causes: [{ reason: 'ExitCode', message: '3' }] }]);
  assert.is(s.got.at(-1)!.channel, CHANNEL.error, 'the Status is the last message');
});

test('v4 when the client offers no v5; a command that succeeds ends with Success', async () => {
  const s = await connect(`/api/v1/namespaces/default/pods/box/exec?${query(['sh', '-c', 'echo fine'], { stdout: 'true', stderr: 'true', container: 'main' })}`, ['v4.channel.k8s.io', 'channel.k8s.io']);
  assert.is(s.ws.protocol, 'v4.channel.k8s.io');
  await s.closed;
  assert.is(text(s, CHANNEL.stdout), 'fine\n');
  assert.equal(JSON.parse(text(s, CHANNEL.error)), { metadata: {}, status: 'Success' });
});

test('a tty exec takes the resize channel: the terminal has the size sent', async () => {
  const s = await connect(`/api/v1/namespaces/default/pods/box/exec?${query(['sh', '-c', 'sleep 1; stty size'], { stdin: 'true', stdout: 'true', tty: 'true' })}`, ['v5.channel.k8s.io']);
  s.ws.send(frame(CHANNEL.resize, JSON.stringify({ Width: 101, Height: 37 })));
  await s.closed;
  assert.match(text(s, CHANNEL.stdout), /37 101/);
});

test('attach follows the main process\'s output', async () => {
  const s = await connect(`/api/v1/namespaces/default/pods/box/attach?stdout=true&stderr=true`, ['v5.channel.k8s.io']);
  try {
    const first = await eventually('a tick through attach', () => /tick (\d+)\n/.exec(text(s, CHANNEL.stdout))?.[1]);
    await eventually('a later tick through attach', () => text(s, CHANNEL.stdout).includes(`tick ${Number(first) + 2}\n`), 30_000);
  } finally {
    s.ws.close();
  }
});

test('refusals before the upgrade are HTTP Status answers: no token, unknown container, no command, no protocol spoken', async () => {
  const none = await refused(`/api/v1/namespaces/default/pods/box/exec?${query(['true'], { stdout: 'true' })}`, ['v5.channel.k8s.io'], 'not-a-token');
  assert.is(none.code, 401);
  const container = await refused(`/api/v1/namespaces/default/pods/box/exec?${query(['true'], { stdout: 'true', container: 'nope' })}`, ['v5.channel.k8s.io']);
  assert.is(container.code, 400);
  assert.match(container.body, /container nope is not valid for pod box/);
  const noCommand = await refused('/api/v1/namespaces/default/pods/box/exec?stdout=true', ['v5.channel.k8s.io']);
  assert.is(noCommand.code, 400);
  assert.match(noCommand.body, /you must specify at least 1 command/);
  const protocol = await refused(`/api/v1/namespaces/default/pods/box/exec?${query(['true'], { stdout: 'true' })}`, ['base64.channel.k8s.io']);
  assert.is(protocol.code, 400);
  assert.match(protocol.body, /served over WebSocket with subprotocol v5\.channel\.k8s\.io or v4\.channel\.k8s\.io/);
  const missing = await refused(`/api/v1/namespaces/default/pods/ghost/exec?${query(['true'], { stdout: 'true' })}`, ['v5.channel.k8s.io']);
  assert.is(missing.code, 404);
  assert.match(missing.body, /pods \\"ghost\\" not found/);
});

test.run();
