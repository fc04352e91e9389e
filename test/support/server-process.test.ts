// ServerProcess and the port helpers: the server picks its port and the test reads it back, a restart keeps
// the URL (waiting out EADDRINUSE), a server that dies at start fails start at once, and no server outlives
// the test process that started it, however that process ends.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually } from './eventually.js';
import { ServerProcess, fixedPort } from './server-process.js';
import { stopAfterEach } from './set-up.js';

const stopLater = stopAfterEach(test);
const alive = (pid: number) => { try { process.kill(pid, 0); return true; } catch { return false; } };
const listen = (port: number, host: string) => new Promise<Server>((resolve, reject) => {
  const s = createServer();
  s.once('error', reject);
  s.listen(port, host, () => resolve(s));
});
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-server-process-'));
  stopLater(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('the first start lets the server pick its port; a restart comes back on the same URL, after EADDRINUSE clears', async () => {
  const server = new ServerProcess(join(tempDir(), 'data'), '127.0.0.1');
  stopLater(() => server.kill('SIGKILL'));
  await server.start();
  const url = server.url;
  assert.ok(server.port > 0, url);
  await server.kill('SIGTERM');
  // Another process takes the port while the member is down; the restart waits for it to be free again.
  const squatter = await listen(server.port, '127.0.0.1');
  stopLater(() => new Promise((r) => squatter.close(r)));
  const restarted = server.start();
  await eventually('a start refused with EADDRINUSE', () => /EADDRINUSE/.test(server.output));
  await new Promise((r) => squatter.close(r));
  await restarted;
  assert.is(server.url, url);
  assert.ok((await server.fetch(`${url}/readyz`)).ok);
});

test('a server that exits at start fails start at once, with its output', async () => {
  const server = new ServerProcess(join(tempDir(), 'data'), '127.0.0.1', 0, ['--snapshot-every', 'zero']);
  stopLater(() => server.kill('SIGKILL'));
  const started = Date.now();
  try {
    await server.start(120_000);
    assert.unreachable('start succeeded');
  } catch (err) {
    assert.match((err as Error).message, /exited with 2; server output:\n.*--snapshot-every must be a positive number/s);
  }
  assert.ok(Date.now() - started < 60_000, 'start gave up at once, not at its limit');
});

test('a test process that dies after starting a server takes the server with it', async () => {
  const dir = tempDir();
  const suite = join(dir, 'dies.mjs');
  // What a suite with its set-up at module top level did when the set-up failed after the server was up.
  writeFileSync(suite, `import { writeFileSync } from 'node:fs';
import { ServerProcess } from ${JSON.stringify(new URL('./server-process.js', import.meta.url).pathname)};
const server = new ServerProcess(${JSON.stringify(join(dir, 'data'))}, '127.0.0.1');
await server.start();
writeFileSync(${JSON.stringify(join(dir, 'server.pid'))}, String(server.child.pid));
throw new Error('set-up failed after the server started');
`);
  const r = spawnSync(process.execPath, [suite], { encoding: 'utf8', timeout: 120_000 });
  assert.is(r.status, 1, r.stderr);
  assert.match(r.stderr, /set-up failed after the server started/);
  const pid = Number(readFileSync(join(dir, 'server.pid'), 'utf8'));
  stopLater(() => { if (alive(pid)) process.kill(pid, 'SIGKILL'); });
  await eventually(`server ${pid} gone`, () => !alive(pid), 10_000);
});

test('fixedPort gives a port below the ephemeral range that can be listened on', async () => {
  const ephemeralFrom = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
  const port = await fixedPort();
  assert.ok(port > 0 && port < ephemeralFrom, String(port));
  const s = await listen(port, '0.0.0.0');
  await new Promise((r) => s.close(r));
});

test.run();
