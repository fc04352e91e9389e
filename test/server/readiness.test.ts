// /readyz means "an authenticated request will be served": checked at the very first instant it answers 200,
// on a member that creates its cluster and on one that joins it (and has no admin token file of its own).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, type ServerConfig } from '../../server/run.js';
import { fixedPort } from '../support/server-process.js';
import { pinnedFetch } from '../../client/client.js';
import { caHash } from '../../client/pki.js';
import { formatClusterToken } from '../../client/tokens.js';
import { eventually } from '../support/eventually.js';

interface Member { url: string; dataDir: string; stop: () => Promise<void> }

/** A server in this process (its readiness is then polled on the same event loop that makes it ready). */
async function startMember(dataDir: string, extra: Partial<ServerConfig> = {}): Promise<Member> {
  const port = await fixedPort();
  const stopping = new AbortController();
  let failure: unknown;
  const done = run(stopping.signal, { dataDir, host: '127.0.0.1', port, mdns: false, tickMs: 20, ...extra }).catch((err: unknown) => { failure = err; });
  return {
    url: `https://127.0.0.1:${port}`, dataDir,
    stop: async () => {
      stopping.abort();
      await done;
      if (failure) throw failure;
    },
  };
}

/**
 * Polls /readyz as fast as it answers; at its first 200 an authenticated GET must be served at once. Returns
 * the bodies /readyz gave before.
 */
async function authenticatedAtFirstReady(url: string, dataDir: string, token: () => string): Promise<string[]> {
  const notReady: string[] = [];
  let fetch: ReturnType<typeof pinnedFetch> | undefined;
  await eventually(`${url}/readyz answers 200`, async () => {
    // The CA is there once the server has its cluster; until then nothing is served.
    fetch ??= pinnedFetch({ ca: readFileSync(join(dataDir, 'pki', 'ca.crt'), 'utf8') }, 1);
    // Until the server has its certificate (a joiner: after the join) every TLS handshake fails; polling those
    // every millisecond would only take the CPU from the servers in this process.
    const res = await fetch(`${url}/readyz`).catch(async (err: unknown) => { await new Promise((r) => setTimeout(r, 20)); throw err; });
    if (res.status !== 200) notReady.push(`${res.status} ${await res.text()}`);
    return res.status === 200;
  }, { everyMs: 1 });
  const res = await fetch!(`${url}/api/v1/namespaces/default`, { headers: { authorization: `Bearer ${token()}` } });
  assert.is(res.status, 200, `an authenticated GET right after the first /readyz 200 got ${res.status} ${await res.text()}`);
  fetch!.close();
  return notReady;
}

const adminToken = (dataDir: string) => () => readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();

test('a member that creates its cluster is ready only once an authenticated request is served (five fresh starts)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-readyz-'));
  const members: Member[] = [];
  try {
    for (let i = 0; i < 5; i++) {
      const m = await startMember(join(dir, `m${i}`));
      members.push(m);
      const before = await authenticatedAtFirstReady(m.url, m.dataDir, adminToken(m.dataDir));
      for (const body of before) assert.match(body, /^503 /);
      await members.pop()!.stop();
    }
  } finally {
    for (const m of members) await m.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a joining member is ready only once it has applied the log: it serves the first member\'s admin token', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-readyz-'));
  const members: Member[] = [];
  try {
    const first = await startMember(join(dir, 'first'));
    members.push(first);
    await authenticatedAtFirstReady(first.url, first.dataDir, adminToken(first.dataDir));
    const secret = readFileSync(join(first.dataDir, 'cluster-secret'), 'utf8').trim();
    const serverToken = formatClusterToken(caHash(readFileSync(join(first.dataDir, 'pki', 'ca.crt'), 'utf8')), `server:${secret}`);
    const second = await startMember(join(dir, 'second'), { join: first.url, token: serverToken });
    members.push(second);
    const before = await authenticatedAtFirstReady(second.url, second.dataDir, adminToken(first.dataDir));
    for (const body of before) assert.match(body, /^503 /);
  } finally {
    for (const m of members.reverse()) await m.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
