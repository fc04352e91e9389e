// `flotilla compose` as a user runs it, against a real `flotilla server` process (no nodes: nothing here waits
// for pods): convert prints what the server accepts, up writes the project's objects and is idempotent, down
// keeps volumes as compose does unless -v, and a namespace the project did not make is used, never changed or
// removed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ServerProcess, runCli } from '../support/server-process.js';
import { setUp } from '../support/set-up.js';

let dir!: string;
let server!: ServerProcess;
let env!: Record<string, string>;
setUp(test, async () => {
  dir = mkdtempSync(join(tmpdir(), 'flotilla-compose-cli-'));
  server = new ServerProcess(join(dir, 'data'), '127.0.0.1');
  await server.start();
  env = { ...server.cliEnv, HOME: join(dir, 'home') };
  writeFileSync(join(dir, 'compose.yaml'), 'services:\n  web:\n    image: flotilla/testbox:latest\n    ports: ["8080:80"]\n    volumes: ["data:/data"]\n    shm_size: 1g\nvolumes:\n  data: {}\n');
}, async () => {
  await server?.kill('SIGTERM');
  if (dir) rmSync(dir, { recursive: true, force: true });
});
const cli = (...args: string[]) => runCli(args, env);
const file = () => join(dir, 'compose.yaml');
const json = (...args: string[]) => {
  const r = cli(...args, '-o', 'json');
  assert.is(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as { metadata: { labels?: Record<string, string> }; items?: { metadata: { name: string } }[] };
};

test('convert prints the objects as YAML documents and the ignored key on stderr', () => {
  const r = cli('compose', '-f', file(), '-p', 'shop', 'convert');
  assert.is(r.code, 0, r.stderr);
  const kinds = parseAllDocuments(r.stdout).map((d) => { const o = d.toJS() as { kind: string; metadata: { name: string } }; return `${o.kind}/${o.metadata.name}`; });
  assert.equal(kinds, ['Namespace/shop', 'PersistentVolumeClaim/data', 'StatefulSet/web', 'Service/web']);
  assert.match(r.stderr, 'WARN service "web": key "services.web.shm_size" is not supported and was ignored');
});

test('up writes the project into its own namespace; a second up creates nothing and leaves the workload and its Service unchanged', () => {
  const first = cli('compose', '-f', file(), '-p', 'shop', 'up');
  assert.is(first.code, 0, first.stderr);
  assert.match(first.stdout, 'namespace/shop created');
  assert.match(first.stdout, 'statefulset.apps/web created');
  assert.is(json('get', 'namespace', 'shop').metadata.labels?.['flotilla.io/compose-project'], 'shop');
  const second = cli('compose', '-f', file(), '-p', 'shop', 'up');
  assert.is(second.code, 0, second.stderr);
  assert.not.match(second.stdout, /created/, second.stdout);
  for (const o of ['namespace/shop', 'statefulset.apps/web', 'service/web']) assert.match(second.stdout, `${o} unchanged`);
  const ps = cli('compose', '-p', 'shop', 'ps');
  assert.is(ps.code, 0, ps.stderr);
  assert.match(ps.stdout, /^NAME\s+IMAGE\s+SERVICE\s+STATUS\s+NODE\s+IP\s+PORTS/);
});

test('down keeps the named volume and the namespace, saying so; down -v removes them too', () => {
  const down = cli('compose', '-p', 'shop', 'down');
  assert.is(down.code, 0, down.stderr);
  assert.match(down.stdout, 'statefulset.apps/web deleted');
  assert.match(down.stderr, '1 volume(s) of project shop kept');
  assert.equal(json('get', 'pvc', '-n', 'shop').items!.map((i) => i.metadata.name), ['data']);
  assert.equal(json('get', 'statefulsets', '-n', 'shop').items, []);
  const all = cli('compose', '-p', 'shop', 'down', '-v');
  assert.is(all.code, 0, all.stderr);
  assert.match(all.stdout, 'persistentvolumeclaim/data deleted');
  assert.match(all.stdout, 'namespace/shop deleted');
  assert.match(cli('get', 'namespace', 'shop').stderr, /not found/);
});

test('a project in a namespace it did not make (-p default) leaves that namespace as it was, at up and at down', () => {
  const before = json('get', 'namespace', 'default').metadata.labels ?? {};
  const up = cli('compose', '-f', file(), '-p', 'default', 'up');
  assert.is(up.code, 0, up.stderr);
  assert.not.match(up.stdout, 'namespace/default');
  assert.equal(json('get', 'namespace', 'default').metadata.labels ?? {}, before);
  const down = cli('compose', '-p', 'default', 'down', '-v');
  assert.is(down.code, 0, down.stderr);
  assert.not.match(down.stdout, 'namespace/default deleted');
  assert.is(cli('get', 'namespace', 'default').code, 0);
  assert.equal(json('get', 'services', '-l', 'flotilla.io/compose-project=default').items, []);
});

test.run();
