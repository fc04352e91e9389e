// Named contexts in the CLI config (cli/config.ts): two `flotilla up` clusters (real processes, no Docker) keep
// a context each under one HOME, the CLI says on stderr which one it talks to, --context and use-context
// choose, the first single-server format is still read, and unknown names fail naming them.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { resolveClientConfig } from '../../cli/config.js';
import { ClusterCa } from '../../server/pki/ca.js';
import { runCli } from '../support/server-process.js';
import { startUp } from './up-support.js';

let dir = '';
const children: ReturnType<typeof startUp>['child'][] = [];

/** `flotilla up` in DIR/folder on a port it picks, without Docker; its URL and cluster id as it prints them. */
async function up(folder: string): Promise<{ url: string; clusterId: string }> {
  const cwd = join(dir, folder);
  mkdirSync(cwd, { recursive: true });
  const u = startUp(cwd, { HOME: join(dir, 'home'), DOCKER_HOST: `unix://${join(dir, 'no-docker.sock')}` });
  children.push(u.child);
  await u.waitFor(/The CLI is configured in .*\n/, 30_000);
  const m = /listening on (https:\/\/127\.0\.0\.1:\d+) \(data in .*; cluster ([0-9a-f-]+),/.exec(u.output())!;
  return { url: m[1]!, clusterId: m[2]! };
}

const env = () => ({ HOME: join(dir, 'home') });
const cli = (...args: string[]) => runCli(args, env());
const clusterIdSeen = (r: { code: number; stdout: string; stderr: string }) => {
  assert.is(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { clusterId: string }).clusterId;
};

test.before(() => {
  dir = mkdtempSync(join(tmpdir(), 'flotilla-contexts-'));
});
test.after(async () => {
  await Promise.all(children.map((c) => (c.exitCode !== null ? undefined : new Promise((r) => { c.once('exit', r); c.kill('SIGINT'); }))));
  rmSync(dir, { recursive: true, force: true });
});

test('two `flotilla up` keep a context each; the second is current; commands say which one they talk to', async () => {
  const shop = await up('shop');
  const solo = cli('cluster', 'status', '-o', 'json');
  assert.is(clusterIdSeen(solo), shop.clusterId);
  assert.is(solo.stderr, '', 'one context: nothing to say');
  // kubectl's file beside the data, with the CA embedded and the admin token.
  const kubeconfig = parseYaml(readFileSync(join(dir, 'shop', '.flotilla', 'kubeconfig'), 'utf8')) as { clusters: { cluster: { server: string; 'certificate-authority-data': string } }[]; users: { user: { token: string } }[]; 'current-context': string };
  assert.is(kubeconfig.clusters[0]!.cluster.server, shop.url);
  assert.match(Buffer.from(kubeconfig.clusters[0]!.cluster['certificate-authority-data'], 'base64').toString(), /^-----BEGIN CERTIFICATE-----/);
  assert.is(kubeconfig.users[0]!.user.token, readFileSync(join(dir, 'shop', '.flotilla', 'admin-token'), 'utf8').trim());
  assert.is(kubeconfig['current-context'], `admin@flotilla-${shop.clusterId.slice(0, 8)}`);
  const farm = await up('farm');
  const config = parseYaml(readFileSync(join(dir, 'home', '.flotilla', 'config'), 'utf8')) as { 'current-context': string; contexts: Record<string, { server: string; cluster: string }> };
  assert.equal(Object.keys(config.contexts).sort(), ['up-farm', 'up-shop']);
  assert.is(config['current-context'], 'up-farm');
  assert.equal([config.contexts['up-shop']!.server, config.contexts['up-shop']!.cluster], [shop.url, shop.clusterId]);

  const current = cli('cluster', 'status', '-o', 'json');
  assert.is(clusterIdSeen(current), farm.clusterId, 'the CLI follows the current context');
  assert.is(current.stderr, `(context: up-farm, ${farm.url})\n`);
  const chosen = cli('cluster', 'status', '-o', 'json', '--context', 'up-shop');
  assert.is(clusterIdSeen(chosen), shop.clusterId, '--context selects');
  assert.is(chosen.stderr, `(context: up-shop, ${shop.url})\n`);
  const byEnv = runCli(['cluster', 'status', '-o', 'json'], { ...env(), FLOTILLA_SERVER: shop.url });
  assert.is(clusterIdSeen(byEnv), shop.clusterId);
  assert.is(byEnv.stderr, '', 'a server from the environment is not a context');

  const table = cli('config', 'get-contexts');
  assert.is(table.code, 0, table.stderr);
  assert.match(table.stdout, /^CURRENT\s+NAME\s+SERVER\n/);
  assert.match(table.stdout, new RegExp(`\\*\\s+up-farm\\s+${farm.url}\\n`));
  assert.match(table.stdout, new RegExp(`\\n\\s+up-shop\\s+${shop.url}\\n`));
  assert.is(cli('config', 'get-contexts', '-o', 'name').stdout, 'up-farm\nup-shop\n');
  assert.is(cli('config', 'current-context').stdout, 'up-farm\n');

  const use = cli('config', 'use-context', 'up-shop');
  assert.equal([use.code, use.stdout], [0, 'Switched to context "up-shop".\n']);
  assert.is(cli('config', 'current-context').stdout, 'up-shop\n');
  assert.is(clusterIdSeen(cli('cluster', 'status', '-o', 'json')), shop.clusterId, 'use-context switches');
});

test('unknown context names fail non-zero, naming them; delete-context removes one and keeps the rest', () => {
  const use = cli('config', 'use-context', 'nope');
  assert.is(use.code, 1);
  assert.match(use.stderr, /no context exists with the name: "nope".*\(contexts: up-farm, up-shop\)/);
  const get = cli('get', 'namespaces', '--context', 'nope');
  assert.is(get.code, 1);
  assert.match(get.stderr, /--context: no context named "nope" in .*config \(contexts: up-farm, up-shop\)/);
  assert.is(cli('config', 'delete-context', 'nope').code, 1);

  const del = cli('config', 'delete-context', 'up-shop');
  assert.is(del.code, 0, del.stderr);
  assert.match(del.stderr, /removed your active context/);
  assert.is(cli('config', 'get-contexts', '-o', 'name').stdout, 'up-farm\n');
  const none = cli('config', 'current-context');
  assert.is(none.code, 1);
  assert.match(none.stderr, /current-context is not set/);
  const unset = cli('get', 'namespaces');
  assert.is(unset.code, 1);
  assert.match(unset.stderr, /no current context; choose one with "flotilla config use-context NAME" \(contexts: up-farm\)/);
});

test('the first format (server and token at the top) is read as context "default" and kept by the next write', () => {
  const path = join(dir, 'old-config');
  writeFileSync(path, 'server: http://10.0.0.1:7400\ntoken: old-token\n');
  const fileEnv = { FLOTILLA_CONFIG: path };
  assert.equal(resolveClientConfig({}, fileEnv), { server: 'http://10.0.0.1:7400', token: 'old-token', context: { name: 'default', contextCount: 1 } });
  assert.is(runCli(['config', 'current-context'], fileEnv).stdout, 'default\n');
  const use = runCli(['config', 'use-context', 'default'], fileEnv);
  assert.is(use.code, 0, use.stderr);
  assert.equal(parseYaml(readFileSync(path, 'utf8')), { 'current-context': 'default', contexts: { default: { server: 'http://10.0.0.1:7400', token: 'old-token' } } });
});

test('precedence: flags, then FLOTILLA_SERVER/FLOTILLA_TOKEN, then the context; --context beats the environment; --help says so', () => {
  const path = join(dir, 'two-contexts');
  writeFileSync(path, 'current-context: a\ncontexts:\n  a: {server: "http://a:1", token: ta}\n  b: {server: "http://b:1", token: tb}\n');
  const e = { FLOTILLA_CONFIG: path };
  assert.equal(resolveClientConfig({}, e), { server: 'http://a:1', token: 'ta', context: { name: 'a', contextCount: 2 } });
  assert.equal(resolveClientConfig({ context: 'b' }, e), { server: 'http://b:1', token: 'tb', context: { name: 'b', contextCount: 2 } });
  assert.equal(resolveClientConfig({}, { ...e, FLOTILLA_SERVER: 'http://env:1', FLOTILLA_TOKEN: 'te' }), { server: 'http://env:1', token: 'te' });
  assert.equal(resolveClientConfig({ context: 'b' }, { ...e, FLOTILLA_SERVER: 'http://env:1', FLOTILLA_TOKEN: 'te' }), { server: 'http://b:1', token: 'tb', context: { name: 'b', contextCount: 2 } });
  assert.equal(resolveClientConfig({ server: 'http://flag:1', context: 'b' }, e), { server: 'http://flag:1' }, 'a token goes only to its own server');
  assert.equal(resolveClientConfig({}, { ...e, FLOTILLA_SERVER: 'http://b:1' }), { server: 'http://b:1', token: 'tb' });
  assert.equal(resolveClientConfig({}, { FLOTILLA_CONFIG: join(dir, 'absent') }, dir), { server: 'https://127.0.0.1:7400' });
  writeFileSync(path, 'contexts:\n  a: {server: "http://a:1", tokn: x}\n');
  assert.throws(() => resolveClientConfig({}, e), /unknown field "contexts\.a\.tokn"/);
  const help = runCli(['--help'], {});
  assert.match(help.stdout, /verified against comes from --ca FILE, then FLOTILLA_CA, then the context, then \.\/\.flotilla\/pki\/ca\.crt/);
  assert.match(help.stdout, /FLOTILLA_SERVER\/FLOTILLA_TOKEN, then\nthe context --context NAME names or else the current context of the config file: FLOTILLA_CONFIG, default\n~\/\.flotilla\/config/);
});

test('the CA: --ca, then FLOTILLA_CA, then the context of that server, then ./.flotilla/pki/ca.crt; a missing or non-PEM file is named', async () => {
  const pem = (await ClusterCa.create('ctx')).certPem;
  const file = (name: string) => { const p = join(dir, name); writeFileSync(p, pem); return p; };
  const [flag, fromEnv, ctx] = [file('flag.crt'), file('env.crt'), file('ctx.crt')];
  const path = join(dir, 'ca-contexts');
  writeFileSync(path, `current-context: a\ncontexts:\n  a: {server: "https://a:1", token: ta, ca: "${ctx}"}\n`);
  const e = { FLOTILLA_CONFIG: path };
  assert.is(resolveClientConfig({ ca: flag }, { ...e, FLOTILLA_CA: fromEnv }).ca?.path, flag);
  assert.is(resolveClientConfig({}, { ...e, FLOTILLA_CA: fromEnv }).ca?.path, fromEnv);
  assert.is(resolveClientConfig({}, e).ca?.path, ctx);
  assert.is(resolveClientConfig({}, e).ca?.pem, pem);
  assert.is(resolveClientConfig({ server: 'https://other:1' }, e, join(dir, 'nowhere')).ca, undefined, "a context's CA goes only to its own server");
  const upDir = join(dir, 'with-up');
  mkdirSync(join(upDir, '.flotilla', 'pki'), { recursive: true });
  writeFileSync(join(upDir, '.flotilla', 'pki', 'ca.crt'), pem);
  assert.is(resolveClientConfig({}, { FLOTILLA_CONFIG: join(dir, 'absent') }, upDir).ca?.path, join(upDir, '.flotilla', 'pki', 'ca.crt'));
  assert.throws(() => resolveClientConfig({ ca: join(dir, 'missing.crt') }, e), /--ca: cannot read the cluster CA file .*missing\.crt \(ENOENT\)/);
  writeFileSync(join(dir, 'not.crt'), 'hello');
  assert.throws(() => resolveClientConfig({}, { ...e, FLOTILLA_CA: join(dir, 'not.crt') }), /FLOTILLA_CA: .*not\.crt is not a PEM certificate/);
});

test.run();
