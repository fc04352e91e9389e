// Issue 10.3 as it was seen: three servers on three lab hosts, the first started plain, the other two with
// `--join auto --token <an agent join token>`. They used to form a one-member cluster each and say nothing.
// Now: each exits non-zero naming the agent join token and which token a server needs, and forms no cluster;
// a server token that pins a CA no cluster has fails after the bound naming the cluster it did see; with the
// first server's server token both join the first server's cluster.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLab, type Lab } from './lab.js';
import { apiRequest } from './lab-api.js';
import { eventually } from '../support/eventually.js';
import { caHash } from '../../client/pki.js';
import { formatClusterToken } from '../../client/tokens.js';

const CLI = new URL('./flotilla-cli.js', import.meta.url).pathname;
const SERVER = new URL('../join/lab-server.js', import.meta.url).pathname;
const PORT = 7400;
// A bound, not a target (the machine is noisy).
const BOUND_MS = 60_000;

const dir = mkdtempSync(join(tmpdir(), 'flotilla-lab-srvtok-'));
let lab: Lab | undefined;
test.after(async () => { await lab?.destroy(); rmSync(dir, { recursive: true, force: true }); });

const url = (host: number) => `https://${lab!.host(host).address}:${PORT}`;
const serverArgs = (host: number, ...args: string[]) => [CLI, 'server', '--data', join(dir, `h${host}`), '--listen', `${lab!.host(host).address}:${PORT}`, '--interface', 'eth0', ...args];
const formedCluster = (host: number) => existsSync(join(dir, `h${host}`, 'cluster.json'));

test('servers given an agent join token exit naming it; a token of an unknown CA fails in time; the server token joins', async () => {
  lab = await createLab({ hosts: 3, prefix: 'fl-lab-srvtok', subnet: '10.82.0' });
  const first = lab.spawn(1, process.execPath, serverArgs(1));
  const started = await first.waitFor(/listening on \S+ \(data in [^;]+; cluster (\S+), member/, BOUND_MS);
  const clusterId = /; cluster (\S+), member/.exec(started)![1]!;
  const admin = { token: readFileSync(join(dir, 'h1', 'admin-token'), 'utf8').trim(), caFile: join(dir, 'h1', 'pki', 'ca.crt') };
  const created = await eventually('an agent join token', async () => {
    const r = await apiRequest(lab!, 1, 'POST', `${url(1)}/apis/flotilla.io/v1/jointokens`, admin, { description: 'agents' });
    return r.code === 201 ? r.json.token as string : undefined;
  }, BOUND_MS);

  const refused = await Promise.all([2, 3].map((h) => lab!.exec(h, process.execPath, serverArgs(h, '--join', 'auto', '--token', created), { timeoutMs: BOUND_MS })));
  for (const [i, r] of refused.entries()) {
    assert.is(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /flotilla: --token is an agent join token \(flt1\.[a-z0-9]{10}\.…\): it registers agents, and a server can neither join nor form a cluster with it; a server joins with the server token \(FLT1<CA hash>::server:<secret>\)/);
    assert.not.ok(formedCluster(i + 2), `h${i + 2} formed no cluster`);
  }

  const unknown = await lab.exec(3, process.execPath, [SERVER, '--data', join(dir, 'h3'), '--listen', `${lab.host(3).address}:${PORT}`, '--join', 'auto', '--token', formatClusterToken('ab'.repeat(32), 'server:a-secret-no-cluster-knows-Q7x9Lm2Pz4Kv8'), '--join-timeout-ms', '3000'], { timeoutMs: BOUND_MS });
  assert.is(unknown.code, 1, unknown.stdout + unknown.stderr);
  assert.match(unknown.stderr, new RegExp(`no cluster accepted the token within 3 s: the servers found belong to clusters with another CA \\(${url(1).replace(/\./g, '\\.')}, cluster ${clusterId}\\)`));
  assert.not.ok(formedCluster(3), 'h3 formed no cluster');

  const secret = readFileSync(join(dir, 'h1', 'cluster-secret'), 'utf8').trim();
  const serverToken = formatClusterToken(caHash(readFileSync(admin.caFile, 'utf8')), `server:${secret}`);
  assert.match(started, new RegExp(`Server token \\(other servers join with --token\\): ${serverToken}`), 'the first server prints the server token');
  const joiners = [2, 3].map((h) => lab!.spawn(h, process.execPath, serverArgs(h, '--join', 'auto', '--token', serverToken)));
  const outputs = await Promise.all(joiners.map((j) => j.waitFor(/listening on \S+ \(data in [^;]+; cluster \S+, member/, BOUND_MS)));
  for (const o of outputs) assert.match(o, new RegExp(`; cluster ${clusterId}, member`));
  await eventually('three voters in the first server\'s cluster', async () => {
    const r = await apiRequest(lab!, 1, 'GET', `${url(1)}/cluster/status`, admin);
    const members = (r.json.members ?? []) as { role: string }[];
    return members.filter((m) => m.role === 'voter').length === 3;
  }, BOUND_MS);
});

test.run();
