// End to end: the real `flotilla` binary against a real `flotilla server` process on a loopback port.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { ServerProcess, deadUrl, ownChild, stopChild, runCli, repoRoot, flotillaBin } from '../support/server-process.js';
import { eventually } from '../support/eventually.js';
import { setUp } from '../support/set-up.js';
import { ClusterCa } from '../../server/pki/ca.js';

let dir!: string;
let server!: ServerProcess;
let env!: Record<string, string>;
setUp(test, async () => {
  dir = mkdtempSync(join(tmpdir(), 'flotilla-cli-'));
  server = new ServerProcess(join(dir, 'data'), '127.0.0.1');
  await server.start();
  env = { ...server.cliEnv, HOME: join(dir, 'home') };
  writeFileSync(join(dir, 'other-ca.crt'), (await ClusterCa.create('another cluster')).certPem);
}, async () => {
  await server?.kill('SIGTERM');
  if (dir) rmSync(dir, { recursive: true, force: true });
});
const cli = (...args: string[]) => runCli(args, env);
const examples = join(repoRoot, 'examples');

test('the admin token is created at first start with mode 0600', () => {
  assert.is(statSync(join(server.dataDir, 'admin-token')).mode & 0o777, 0o600);
  assert.ok(server.token.length >= 16);
});

test('apply -f examples/ creates every object, and applying again reports them unchanged', () => {
  const first = cli('apply', '-f', examples);
  assert.is(first.code, 0, first.stderr);
  assert.match(first.stdout, /deployment\.apps\/web created/);
  assert.match(first.stdout, /service\/web created/);
  assert.match(first.stdout, /configmap\/web-settings created/);
  const second = cli('apply', '-f', examples);
  assert.is(second.code, 0, second.stderr);
  assert.match(second.stdout, /deployment\.apps\/web unchanged/);
});

test('apply -f and delete -f of many documents: requests in parallel, Namespaces first, output in the file\'s order, a failed one named and the rest done', () => {
  const namespaceOf = (i: number) => (i === 70 ? 'missing' : i % 10 === 5 ? 'bulk-ns' : undefined);
  const docs = Array.from({ length: 150 }, (_, i) => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bulk-${i}\n${namespaceOf(i) ? `  namespace: ${namespaceOf(i)}\n` : ''}data:\n  i: "${i}"\n`);
  const file = join(server.dataDir, '..', 'bulk.yaml');
  writeFileSync(file, [...docs, 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: bulk-ns\n'].join('---\n'));
  const lines = (verb: string) => docs.map((_, i) => (i === 70 ? '' : `configmap/bulk-${i} ${verb}\n`)).join('');
  const applied = cli('apply', '-f', file);
  assert.is(applied.code, 1, 'one object could not be created');
  assert.is(applied.stdout, `namespace/bulk-ns created\n${lines('created')}`);
  assert.match(applied.stderr, /document 71: configmap\/bulk-70: namespaces "missing" not found/);
  const again = cli('apply', '-f', file);
  assert.match(again.stdout, /^namespace\/bulk-ns unchanged\nconfigmap\/bulk-0 unchanged\nconfigmap\/bulk-1 unchanged\n/);
  const deleted = cli('delete', '-f', file, '--ignore-not-found');
  assert.is(deleted.code, 0, deleted.stderr);
  assert.is(deleted.stdout, `${lines('deleted')}namespace/bulk-ns deleted\n`);
  assert.not.match(cli('get', 'configmaps', '-A', '-o', 'name').stdout, /bulk-/);
});

test('get prints tables, wide, yaml, json and names, with label selectors', () => {
  const table = cli('get', 'deployments');
  assert.is(table.code, 0, table.stderr);
  assert.match(table.stdout, /^NAME\s+READY\s+UP-TO-DATE\s+AVAILABLE\s+AGE\n/);
  assert.match(table.stdout, /\nweb\s+\d\/2\s+\d+\s+\d+\s+\d+s\n/);
  const wide = cli('get', 'deploy', '-o', 'wide');
  assert.match(wide.stdout, /CONTAINERS\s+IMAGES\s+SELECTOR/);
  assert.match(wide.stdout, /httpd\s+flotilla\/testbox:latest\s+app=web/);
  const json = JSON.parse(cli('get', 'deployment', 'web', '-o', 'json').stdout);
  assert.is(json.kind, 'Deployment');
  assert.is(json.spec.replicas, 2);
  assert.match(cli('get', 'cm', '-o', 'yaml').stdout, /kind: List[\s\S]*GREETING: hello from flotilla/);
  assert.is(cli('get', 'services', '-l', 'app=nope', '-o', 'name').stdout, '');
  assert.is(cli('get', 'deployments', '-l', 'app=web', '-o', 'name').stdout, 'deployment.apps/web\n');
  const allNs = cli('get', 'namespaces');
  assert.match(allNs.stdout, /default\s+Active/);
  const acrossNs = cli('get', 'configmaps', '-A');
  assert.match(acrossNs.stdout, /^NAMESPACE\s+NAME\s+DATA\s+AGE\n/);
  const empty = cli('get', 'pods', '-n', 'kube-system');
  assert.is(empty.code, 0);
  assert.match(empty.stderr, /No resources found in kube-system namespace/);
});

test('get pods -o wide shows node and IP columns', () => {
  const r = runCli(['apply', '-f', '-'], env, 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: solo\nspec:\n  nodeName: node-7\n  containers:\n  - name: c\n    image: flotilla/testbox:latest\n');
  assert.is(r.code, 0, r.stderr);
  const wide = cli('get', 'pods', '-o', 'wide');
  assert.match(wide.stdout, /NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\s+IP\s+NODE/);
  assert.match(wide.stdout, /solo\s+0\/1\s+Pending\s+0\s+\d+s\s+<none>\s+node-7/);
});

test('get -w prints the list, then each change as it happens', async () => {
  const child = ownChild(spawn(process.execPath, [flotillaBin, 'get', 'configmaps', '-w', '-o', 'name'], { env: { PATH: process.env.PATH ?? '', ...env } }));
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  try {
    const seen = (re: RegExp) => eventually(`${re} in the output of get -w`, () => re.test(out), { detail: () => `got: ${out}` });
    await seen(/configmap\/web-settings/);
    const r = runCli(['apply', '-f', '-'], env, 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: watched}\ndata: {a: "1"}\n');
    assert.is(r.code, 0, r.stderr);
    await seen(/configmap\/watched/);
  } finally {
    await stopChild(child, 'SIGINT');
  }
});

test('describe deployment web shows replicas, strategy and the pod template', () => {
  const r = cli('describe', 'deployment', 'web');
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /Name:\s+web/);
  assert.match(r.stdout, /Replicas:\s+2 desired/);
  assert.match(r.stdout, /StrategyType:\s+RollingUpdate/);
  assert.match(r.stdout, /Image:\s+flotilla\/testbox:latest/);
  assert.match(r.stdout, /Events:/);
});

test('scale changes the replica count', () => {
  const r = cli('scale', 'deployment/web', '--replicas', '4');
  assert.is(r.code, 0, r.stderr);
  assert.is(JSON.parse(cli('get', 'deployment', 'web', '-o', 'json').stdout).spec.replicas, 4);
  assert.is(cli('scale', 'deployment/web', '--replicas', 'many').code, 2);
});

test('bad manifests fail before anything is sent, naming file, document and field', () => {
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ok-one\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: broken\nspec:\n  replicas: "two"\n  selector: {matchLabels: {a: b}}\n  template: {metadata: {labels: {a: b}}, spec: {containers: [{name: c, image: i}]}}\n');
  const r = cli('apply', '-f', bad);
  assert.is(r.code, 1);
  assert.match(r.stderr, /bad\.yaml: document 2: spec\.replicas/);
  assert.is(cli('get', 'configmap', 'ok-one').code, 1, 'the valid document was not applied either');
  const malformed = join(dir, 'malformed.yaml');
  writeFileSync(malformed, 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x\n');
  const m = cli('apply', '-f', malformed);
  assert.is(m.code, 1);
  assert.match(m.stderr, /malformed\.yaml: document 1: malformed YAML/);
  const unknownKind = runCli(['apply', '-f', '-'], env, 'apiVersion: v1\nkind: Gadget\nmetadata: {name: g}\n');
  assert.is(unknownKind.code, 1);
  assert.match(unknownKind.stderr, /<stdin>: document 1: kind/);
  const unknownField = runCli(['apply', '-f', '-'], env, 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: g}\ndatta: {}\n');
  assert.is(unknownField.code, 1);
  assert.match(unknownField.stderr, /datta/);
});

test('usage errors, unknown types and an unreachable server exit non-zero with a clear message', () => {
  assert.is(cli('get').code, 2);
  assert.match(cli('get', 'gizmos').stderr, /doesn't have a resource type "gizmos"/);
  assert.is(cli('get', 'pods', '--bogus').code, 2);
  assert.is(cli('frobnicate').code, 2);
  const down = runCli(['get', 'pods'], { ...env, FLOTILLA_SERVER: deadUrl });
  assert.is(down.code, 1);
  assert.match(down.stderr, /cannot reach the Flotilla server/);
  const noToken = runCli(['get', 'pods'], { FLOTILLA_SERVER: server.url, FLOTILLA_CA: server.caPath, HOME: join(dir, 'nobody') });
  assert.is(noToken.code, 1);
  assert.match(noToken.stderr, /bearer token/);
  const noCa = runCli(['get', 'pods'], { FLOTILLA_SERVER: server.url, FLOTILLA_TOKEN: server.token, HOME: join(dir, 'nobody') });
  assert.is(noCa.code, 1);
  assert.match(noCa.stderr, /no cluster CA to verify https:\/\/127\.0\.0\.1:\d+ with: give --ca FILE .*set FLOTILLA_CA=FILE, or add "ca: FILE" to the context/);
  const otherCa = runCli(['get', 'pods'], { ...env, FLOTILLA_CA: join(dir, 'other-ca.crt') });
  assert.is(otherCa.code, 1, 'a server whose certificate is not of the given CA is not talked to');
  assert.match(otherCa.stderr, /the server at https:\/\/127\.0\.0\.1:\d+ presents a certificate the cluster CA did not issue \([A-Z_]+\): wrong CA, or a man in the middle; nothing was sent/);
  const missing = cli('get', 'deployment', 'ghost');
  assert.is(missing.code, 1);
  assert.match(missing.stderr, /not found/);
});

test('server and token come from flags, then the environment, then ~/.flotilla/config', () => {
  const home = join(dir, 'cfg-home');
  const configured = runCli(['version'], { HOME: home, FLOTILLA_SERVER: deadUrl });
  assert.is(configured.code, 1, 'the environment points at a dead port');
  const flagWins = runCli(['version', '--server', server.url, '--token', server.token, '--ca', server.caPath], { HOME: home, FLOTILLA_SERVER: deadUrl });
  assert.is(flagWins.code, 0, flagWins.stderr);
  assert.match(flagWins.stdout, /Server Version: v0\.1\.0/);
  const cfgDir = join(home, '.flotilla');
  mkdirSync(cfgDir, { recursive: true });
  writeFileSync(join(cfgDir, 'config'), `server: ${server.url}\ntoken: ${server.token}\nca: ${server.caPath}\n`);
  const fromFile = runCli(['get', 'namespaces', '-o', 'name'], { HOME: home });
  assert.is(fromFile.code, 0, fromFile.stderr);
  assert.match(fromFile.stdout, /namespace\/default/);
  writeFileSync(join(cfgDir, 'config'), 'server: [oops\n');
  const broken = runCli(['get', 'namespaces'], { HOME: home });
  assert.is(broken.code, 1);
  assert.match(broken.stderr, /config: not valid YAML/);
});

test('delete -f removes what the files declare', () => {
  const r = cli('delete', '-f', examples);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /deployment\.apps\/web deleted/);
  assert.is(cli('get', 'deployment', 'web').code, 1);
  const again = cli('delete', '-f', examples);
  assert.is(again.code, 1);
  assert.is(cli('delete', '-f', examples, '--ignore-not-found').code, 0);
});

test('SIGKILL of the server loses no acknowledged write', async () => {
  const api = (path: string, init: RequestInit = {}) => server.fetch(`${server.url}${path}`, { ...init, headers: { authorization: `Bearer ${server.token}`, 'content-type': 'application/json' } });
  const acknowledged: string[] = [];
  let stop = false;
  const writers = Array.from({ length: 8 }, async (_, w) => {
    for (let i = 0; !stop && i < 10_000; i++) {
      const name = `k-${w}-${i}`;
      try {
        const res = await api('/api/v1/namespaces/default/configmaps', { method: 'POST', body: JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data: { w: String(w) } }) });
        if (res.status === 201) acknowledged.push(name);
      } catch {
        return; // the server is gone
      }
    }
  });
  await eventually('200 acknowledged writes', () => acknowledged.length >= 200, 60_000);
  await server.kill('SIGKILL');
  stop = true;
  await Promise.all(writers);
  await server.start();
  const res = await api('/api/v1/namespaces/default/configmaps?labelSelector=');
  const stored = new Set(((await res.json()) as { items: { metadata: { name: string } }[] }).items.map((o) => o.metadata.name));
  const lost = acknowledged.filter((n) => !stored.has(n));
  assert.ok(acknowledged.length >= 200);
  assert.equal(lost, [], `${lost.length} acknowledged writes were lost`);
});

test.run();
