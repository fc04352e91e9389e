// The remote command protocol's framing and outcomes (node-agent/streams/remote-command.ts), and one relay of a
// FakeRuntime process over a real WebSocket pair: stdin until v5's close signal, output by channel, the Status.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { CHANNEL, chooseProtocol, frame, outcomeStatus, parseResize, serveRemoteCommand, unframe } from '../../node-agent/streams/remote-command.js';
import { FakeRuntime } from '../../node-agent/runtime/fake.js';
import { requestInfo } from '../../server/api/request-info.js';

test('a frame is the channel byte then the data, both ways', () => {
  const f = frame(CHANNEL.stderr, 'oops');
  assert.equal([...f], [2, 111, 111, 112, 115]);
  assert.equal(unframe(f), { channel: 2, data: Buffer.from('oops') });
  assert.equal(unframe(frame(CHANNEL.close, Buffer.from([CHANNEL.stdin]))), { channel: 255, data: Buffer.from([0]) });
  assert.is(unframe(Buffer.alloc(0)), undefined);
});

test('v5 is chosen over v4 whatever the client\'s order; nothing else is spoken', () => {
  assert.is(chooseProtocol(['v4.channel.k8s.io', 'v5.channel.k8s.io', 'channel.k8s.io']), 'v5.channel.k8s.io');
  assert.is(chooseProtocol(['v4.channel.k8s.io', 'v3.channel.k8s.io']), 'v4.channel.k8s.io');
  assert.is(chooseProtocol(['channel.k8s.io', 'base64.channel.k8s.io', 'SPDY/3.1']), undefined);
});

test('the outcome is Success for 0, NonZeroExitCode with an ExitCode cause otherwise', () => {
  assert.equal(outcomeStatus(['true'], 0), { metadata: {}, status: 'Success' });
  assert.equal(outcomeStatus(undefined, null), { metadata: {}, status: 'Success' });
  const failed = outcomeStatus(['sh', '-c', 'exit 7'], 7);
  assert.is(failed.reason, 'NonZeroExitCode');
  assert.equal(failed.details, { causes: [{ reason: 'ExitCode', message: '7' }] });
  assert.match(String(failed.message), /command terminated with non-zero exit code: .*exit code 7/);
});

test('a resize message is {"Width","Height"} in integers; anything else is none', () => {
  assert.equal(parseResize(Buffer.from('{"Width":120,"Height":40}')), { width: 120, height: 40 });
  assert.is(parseResize(Buffer.from('{"Width":"120","Height":40}')), undefined);
  assert.is(parseResize(Buffer.from('not json')), undefined);
});

test('a relayed process gets stdin sent before it started, until v5\'s close of channel 0; the Status comes last', async () => {
  const runtime = new FakeRuntime();
  runtime.setBehaviour('fake/echo', { exec: (command, stdin) => ({ exitCode: 4, stdout: stdin.toUpperCase(), stderr: `ran ${command.join(' ')}\n` }) });
  await runtime.ensureImage('fake/echo');
  const sandbox = await runtime.runSandbox({ name: 's', image: 'fake/echo', hostname: 's', ports: [], labels: {} });
  const id = await runtime.createContainer({ name: 'c', image: 'fake/echo', env: {}, mounts: [], sandboxId: sandbox, labels: {} });
  await runtime.startContainer(id);
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', handleProtocols: (offered) => chooseProtocol(offered) ?? false });
  try {
    await once(wss, 'listening');
    let release!: () => void;
    const started = new Promise<void>((resolve) => { release = resolve; });
    wss.on('connection', (ws) => {
      void serveRemoteCommand(ws, async () => { await started; return runtime.execStreams(id, ['shout'], { stdin: true, tty: false }); }, ['shout']);
    });
    const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}/`, ['v4.channel.k8s.io', 'v5.channel.k8s.io']);
    const got: Array<{ channel: number; data: string }> = [];
    client.on('message', (m: Buffer) => { const f = unframe(m)!; got.push({ channel: f.channel, data: f.data.toString() }); });
    await once(client, 'open');
    assert.is(client.protocol, 'v5.channel.k8s.io');
    client.send(frame(CHANNEL.stdin, 'hello '));
    client.send(frame(CHANNEL.stdin, 'world'));
    client.send(frame(CHANNEL.close, Buffer.from([CHANNEL.stdin])));
    release();
    const [code] = await once(client, 'close') as [number];
    assert.is(code, 1000);
    assert.equal(got.slice(0, 2), [{ channel: 1, data: 'HELLO WORLD' }, { channel: 2, data: 'ran shout\n' }]);
    assert.is(got.length, 3);
    assert.is(got[2]!.channel, CHANNEL.error);
    assert.is((JSON.parse(got[2]!.data) as { reason: string }).reason, 'NonZeroExitCode');
  } finally {
    for (const c of wss.clients) c.terminate();
    wss.close();
  }
});

test('a GET of pods/exec, attach or portforward (a WebSocket upgrade) is authorized as create; pods/log stays get', () => {
  for (const sub of ['exec', 'attach', 'portforward']) assert.is(requestInfo('GET', `/api/v1/namespaces/default/pods/box/${sub}`, undefined)?.verb, 'create', sub);
  assert.is(requestInfo('GET', '/api/v1/namespaces/default/pods/box/log', undefined)?.verb, 'get');
  assert.is(requestInfo('GET', '/api/v1/namespaces/default/pods/box', undefined)?.verb, 'get');
});

test.run();
