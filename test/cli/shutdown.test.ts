// `flotilla server` and `flotilla agent` stop on SIGTERM saying what they do, exit 0, and leave no
// MaxListenersExceededWarning behind after API requests, a watch and an agent.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FlotillaProcess } from '../e2e/cluster.js';
import { eventually } from '../support/eventually.js';
import { pinnedFetch } from '../../client/client.js';

test('server and agent print their shutdown on SIGTERM, exit 0, and warn of no listener leak', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-shutdown-'));
  const processes: FlotillaProcess[] = [];
  try {
    const server = new FlotillaProcess(['server', '--data', join(dir, 'server'), '--listen', '127.0.0.1:0']);
    processes.push(server);
    const url = await eventually('the server says where it listens', () => /listening on (https:\/\/127\.0\.0\.1:\d+)/.exec(server.output)?.[1], { detail: () => server.output });
    const token = readFileSync(join(dir, 'server', 'admin-token'), 'utf8').trim();
    const caPath = join(dir, 'server', 'pki', 'ca.crt');
    const fetch = pinnedFetch({ ca: readFileSync(caPath, 'utf8') });
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    for (let i = 0; i < 20; i++) assert.is((await fetch(`${url}/api/v1/namespaces/default/pods`, { headers })).status, 200);

    const watching = new AbortController();
    try {
      const watch = await fetch(`${url}/api/v1/namespaces/default/configmaps?watch=true`, { headers, signal: watching.signal });
      assert.is(watch.status, 200);
      const created = await fetch(`${url}/api/v1/namespaces/default/configmaps`, { method: 'POST', headers, body: JSON.stringify({ metadata: { name: 'seen' }, data: { a: '1' } }) });
      assert.is(created.status, 201);
      const first = await watch.body!.getReader().read();
      assert.match(new TextDecoder().decode(first.value), /"type":"ADDED"/);
    } finally {
      watching.abort();
    }

    const agent = new FlotillaProcess(['agent', '--server', url, '--token', token, '--ca', caPath, '--simulate', '2', '--name', `quit${process.pid}`, '--data', join(dir, 'agent')], { FLOTILLA_LOG_LEVEL: 'info' });
    processes.push(agent);
    await eventually('both hollow nodes Ready', async () => {
      const list = await (await fetch(`${url}/api/v1/nodes`, { headers })).json() as { items: { status?: { conditions?: { type: string; status: string }[] } }[] };
      return list.items.filter((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')).length === 2;
    }, { detail: () => agent.output });
    await agent.kill('SIGTERM');
    assert.is(agent.child.exitCode, 0, agent.output);
    assert.match(agent.output, /"msg":"shutting down: stopping 2 hollow nodes"/);
    assert.match(agent.output, /"msg":"stopped"/);

    await server.kill('SIGTERM');
    assert.is(server.child.exitCode, 0, server.output);
    assert.match(server.output, /^shutting down: closing the API server and the Raft member\.\.\.$/m);
    assert.match(server.output, /^stopped$/m);
    for (const p of processes) assert.not.match(p.output, /MaxListenersExceededWarning/);
  } finally {
    for (const p of processes) await p.kill();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
