import { test } from 'uvu';
import * as assert from 'uvu/assert';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApiClient, ApiClientError, serverList } from '../../client/client.js';
import { deadUrl } from '../support/server-process.js';
import { stopAfterEach } from '../support/set-up.js';

const stopLater = stopAfterEach(test);

async function answering(body: unknown): Promise<{ url: string; close: () => Promise<void>; hits: () => number }> {
  let hits = 0;
  const srv = http.createServer((_req, res) => { hits++; res.setHeader('content-type', 'application/json'); res.end(JSON.stringify(body)); });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const close = () => new Promise<void>((r) => { srv.closeAllConnections(); srv.close(() => r()); });
  stopLater(close);
  return { url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`, close, hits: () => hits };
}

test('a request that cannot reach its server moves the client to the next one', async () => {
  const live = await answering({ ok: true });
  const client = new ApiClient(serverList([deadUrl, live.url]), 't', { timeoutMs: 2000 });
  stopLater(() => client.close());
  try {
    await client.request('GET', '/version');
    assert.unreachable('the dead server answered');
  } catch (err) {
    assert.ok(err instanceof ApiClientError && err.code === 0 && err.reason === 'Unreachable', String(err));
  }
  assert.is(client.server, live.url);
  assert.equal(await client.request('GET', '/version'), { ok: true });
  assert.is(live.hits(), 1);
  client.close();
  await live.close();
});

test('serverList refuses bad URLs; a Status error keeps the server', async () => {
  assert.throws(() => serverList([]), /no server URL/);
  assert.throws(() => serverList(['not a url']), /invalid server URL/);
  const failing = http.createServer((_req, res) => { res.statusCode = 404; res.setHeader('content-type', 'application/json'); res.end(JSON.stringify({ kind: 'Status', code: 404, reason: 'NotFound', message: 'pods "x" not found' })); });
  await new Promise<void>((r) => failing.listen(0, '127.0.0.1', r));
  stopLater(() => new Promise<void>((r) => { failing.closeAllConnections(); failing.close(() => r()); }));
  const url = `http://127.0.0.1:${(failing.address() as AddressInfo).port}`;
  const other = await answering({});
  const client = new ApiClient(serverList([url, other.url]), undefined);
  stopLater(() => client.close());
  try {
    await client.request('GET', '/api/v1/namespaces/default/pods/x');
    assert.unreachable();
  } catch (err) {
    assert.ok(err instanceof ApiClientError && err.code === 404 && /not found/.test(err.message));
  }
  assert.is(client.server, url, 'an answer, even an error, means the server is alive');
  client.close();
  await new Promise<void>((r) => failing.close(() => r()));
  await other.close();
});

test.run();
