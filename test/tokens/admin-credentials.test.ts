// User tokens, rotation and revocation of any token (the admin token included), and `flotilla kubeconfig`,
// against one real `flotilla server` process over HTTPS, driven by the real CLI process and read by the real kubectl.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { ServerProcess, runCli } from '../support/server-process.js';
import { eventually } from '../support/eventually.js';
import { startInProcessServer } from '../support/in-process-server.js';
import { setUp } from '../support/set-up.js';
import { pinnedFetch } from '../../client/client.js';
import { parseClusterToken } from '../../client/tokens.js';

const USER_TOKENS = '/apis/flotilla.io/v1/usertokens';
const KUBECTL = '/usr/bin/kubectl';

let dir!: string;
let server!: ServerProcess;
/** The admin token as it stands (tests that rotate it update this). */
let admin!: string;
setUp(test, async () => {
  dir = mkdtempSync(join(tmpdir(), 'flotilla-admincreds-'));
  server = new ServerProcess(join(dir, 'data'), '127.0.0.1');
  await server.start();
  admin = server.token;
}, async () => {
  await server?.kill();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/**
 * One request on a connection of its own: the test blocks in spawnSync (the CLI, kubectl) for longer than the
 * server's keep-alive timeout, and a pooled connection the server closed meanwhile would fail the next request.
 */
async function api(method: string, path: string, token: string | undefined, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await server.fetch(`${server.url}${path}`, {
    method, headers: { connection: 'close', ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

/** Whether `token` gets through authentication: 200 on a read any authenticated caller may do. */
async function authenticates(token: string): Promise<number> {
  return (await api('GET', '/api', token)).status; // discovery: what every authenticated identity may read
}

/** The real CLI, with a HOME of its own (its config file stays empty unless a test writes one). */
function cli(args: string[], env: Record<string, string> = {}): { code: number; stdout: string; stderr: string } {
  return runCli(args, { HOME: join(dir, 'home'), ...server.cliEnv, FLOTILLA_TOKEN: admin, ...env });
}

async function userTokens(): Promise<Record<string, unknown>[]> {
  const list = await api('GET', USER_TOKENS, admin);
  assert.is(list.status, 200);
  return list.json.items as Record<string, unknown>[];
}

test('a user token: shown once, authenticates with its user and groups stored, listed beside join tokens, rotated and revoked', async () => {
  const created = cli(['token', 'create', '--user', 'alice', '--group', 'ops', '--group', 'dev', '--ttl', '30d', '--description', 'laptop']);
  assert.is(created.code, 0, created.stderr);
  const token = created.stdout.trim();
  assert.match(created.stderr, /user alice .*expires/);
  assert.is(await authenticates(token), 200, 'the new user token authenticates');
  assert.is((await api('GET', USER_TOKENS, token)).status, 403, 'a user token is in its groups only, not an admin');

  const entry = (await userTokens()).find((t) => t.name === 'alice');
  assert.equal({ type: entry?.type, user: entry?.user, groups: entry?.groups, description: entry?.description, expired: entry?.expired }, { type: 'user', user: 'alice', groups: ['ops', 'dev'], description: 'laptop', expired: false });
  const days = (Date.parse(entry!.expires as string) - Date.parse(entry!.created as string)) / 86_400_000;
  assert.is(days, 30);
  const listed = JSON.stringify(await userTokens());
  assert.not.ok(listed.includes(token), 'the token never comes back');
  assert.not.match(listed, /sha256/);

  const join = cli(['token', 'create', '--description', 'shelf']);
  assert.is(join.code, 0, join.stderr);
  const joinId = join.stdout.trim().split('.')[1]!;
  const list = cli(['token', 'list']);
  assert.is(list.code, 0, list.stderr);
  assert.match(list.stdout, /^NAME\s+TYPE\s+USER\s+GROUPS\s+CREATED\s+EXPIRES\s+DESCRIPTION$/m);
  assert.match(list.stdout, /^admin\s+admin\s+<none>\s+<none>\s+\S+\s+never$/m);
  assert.match(list.stdout, /^alice\s+user\s+alice\s+ops,dev\s+\S+\s+\S+\s+laptop$/m);
  assert.match(list.stdout, new RegExp(`^${joinId}\\s+join\\s+<none>\\s+<none>\\s+\\S+\\s+never\\s+shelf$`, 'm'));

  const rotated = cli(['token', 'rotate', 'alice']);
  assert.is(rotated.code, 0, rotated.stderr);
  const next = rotated.stdout.trim();
  assert.is.not(next, token);
  assert.is(await authenticates(token), 401, 'the old user token stops working in the rotation');
  assert.is(await authenticates(next), 200);
  const after = (await userTokens()).find((t) => t.name === 'alice');
  assert.equal(after?.groups, ['ops', 'dev'], 'the rotated token keeps the groups');
  assert.is((Date.parse(after!.expires as string) - Date.parse(after!.created as string)) / 86_400_000, 30, 'and its lifetime');

  const revoked = cli(['token', 'revoke', 'alice']);
  assert.is(revoked.stdout, 'user token alice revoked\n', revoked.stderr);
  assert.is(await authenticates(next), 401);
  const joinRevoked = cli(['token', 'revoke', joinId]);
  assert.is(joinRevoked.stdout, `join token ${joinId} revoked\n`, joinRevoked.stderr);
  const unknown = cli(['token', 'revoke', 'nobody']);
  assert.is.not(unknown.code, 0);
  assert.match(unknown.stderr, /no user token named "nobody" and no join token with id "nobody"/);
  assert.not.ok((await userTokens()).some((t) => t.name === 'alice'));
});

test('an expired user token authenticates nobody (plain 401, as Kubernetes) and is listed as expired', async () => {
  const created = await api('POST', USER_TOKENS, admin, { user: 'brief', ttlSeconds: 1 });
  assert.is(created.status, 201);
  const token = created.json.token as string;
  const refused = await eventually('the 1 s token expired', async () => {
    const r = await api('GET', '/api/v1/namespaces', token);
    return r.status === 401 ? r : undefined;
  });
  assert.is(refused.json.reason, 'Unauthorized');
  assert.is(refused.json.message, 'invalid bearer token', 'the same answer as for a token that never existed');
  assert.is((await api('GET', '/api/v1/namespaces', 'never-a-token-of-this-cluster')).json.message, refused.json.message);
  assert.is((await userTokens()).find((t) => t.name === 'brief')?.expired, true);
  assert.match(cli(['token', 'list']).stdout, /^brief\s+user\s+brief\s+<none>\s+\S+\s+expired \S+$/m);
});

test('bad user token requests get a 4xx Status naming the field, and change nothing', async () => {
  const before = JSON.stringify(await userTokens());
  const cases: [unknown, number, RegExp][] = [
    [{ user: 'carol', ttl: '1h' }, 400, /unknown field "ttl"/],
    [{ user: 'carol', ttlSeconds: 0 }, 400, /ttlSeconds: must be an integer/],
    [{ user: 'carol', ttlSeconds: 1.5 }, 400, /ttlSeconds/],
    [{ user: 'carol', ttlSeconds: 'soon' }, 400, /ttlSeconds/],
    [{ ttlSeconds: 60 }, 400, /user: required/],
    [{ user: 'carol/../x' }, 400, /user: required, 1-200 characters/],
    [{ user: 'admin' }, 400, /user: "admin" names the cluster's admin token/],
    [{ user: 'carol', groups: 'ops' }, 400, /groups: must be a list/],
    [{ user: 'carol', groups: ['ops', ''] }, 400, /groups\[1\]/],
    [{ user: 'carol', groups: ['ops', 'ops'] }, 400, /groups\[1\]: "ops" is listed twice/],
    [{ user: 'carol', description: 'x'.repeat(201) }, 400, /description/],
    [[], 400, /must be a JSON object/],
    ['{"user":', 400, /not JSON/],
  ];
  for (const [body, code, message] of cases) {
    const r = await api('POST', USER_TOKENS, admin, body);
    assert.is(r.status, code, JSON.stringify(body));
    assert.is(r.json.kind, 'Status');
    assert.match(r.json.message as string, message);
  }
  assert.is(JSON.stringify(await userTokens()), before, 'no refused request made a token');

  const first = await api('POST', USER_TOKENS, admin, { user: 'dave' });
  assert.is(first.status, 201);
  const duplicate = await api('POST', USER_TOKENS, admin, { user: 'dave', description: 'second' });
  assert.is(duplicate.status, 409);
  assert.is(duplicate.json.reason, 'AlreadyExists');
  assert.match(duplicate.json.message as string, /user "dave" has a token already/);
  assert.is(await authenticates(first.json.token as string), 200, 'the first token of dave still works');
  assert.is((await userTokens()).find((t) => t.name === 'dave')?.description, undefined, 'and is not overwritten');

  const badTtl = cli(['token', 'create', '--user', 'erin', '--ttl', '10y']);
  assert.is.not(badTtl.code, 0);
  assert.match(badTtl.stderr, /--ttl: "10y" is not a duration/);
  assert.is((await api('POST', `${USER_TOKENS}/nobody/rotate`, admin)).status, 404);
  assert.match((await api('POST', `${USER_TOKENS}/dave/rotate`, admin, { ttlSeconds: -1 })).json.message as string, /ttlSeconds/);
  assert.is((await api('DELETE', `${USER_TOKENS}/nobody`, admin)).status, 404);
});

test('a node (join) token cannot make, list, rotate or revoke user tokens or the admin token', async () => {
  const join = await api('POST', '/apis/flotilla.io/v1/jointokens', admin, {});
  const node = parseClusterToken(join.json.token as string).credential;
  assert.is(await authenticates(node), 403, 'the join token authenticates (403, not 401), and may only ask for a node certificate');
  const before = JSON.stringify(await userTokens());
  for (const [method, path, body] of [['POST', USER_TOKENS, { user: 'mallory' }], ['GET', USER_TOKENS], ['POST', `${USER_TOKENS}/admin/rotate`], ['DELETE', `${USER_TOKENS}/admin`], ['DELETE', `${USER_TOKENS}/dave`]] as const) {
    const r = await api(method, path, node, body);
    assert.is(r.status, 403, `${method} ${path}`);
    assert.match(r.json.message as string, /a join token may only ask for a node certificate/);
  }
  assert.is(JSON.stringify(await userTokens()), before, 'nothing changed');
  assert.is(await authenticates(admin), 200, 'the admin token still works');
});

test('rotate admin: the old token gets 401 at once, the new works, the admin-token file and the CLI context hold it (0600), a restart does not revive the old', async () => {
  const old = admin;
  const home = join(dir, 'home-rotate');
  const config = join(home, 'config');
  rmSync(home, { recursive: true, force: true });
  // The CLI takes the token from its config file, as after `flotilla up`.
  mkdirSync(home, { recursive: true });
  writeFileSync(config, toYaml({ 'current-context': 'shop', contexts: { shop: { server: server.url, token: old, ca: server.caPath }, other: { server: server.url, token: 'another-token', ca: server.caPath } } }));
  const env = { HOME: home, FLOTILLA_CONFIG: config };
  const rotated = runCli(['token', 'rotate', 'admin', '--data', server.dataDir], env);
  assert.is(rotated.code, 0, rotated.stderr);
  const next = rotated.stdout.trim();
  assert.is.not(next, old);
  assert.is(await authenticates(old), 401, 'the old admin token is refused right after the rotation');
  assert.is(await authenticates(next), 200);
  const file = join(server.dataDir, 'admin-token');
  assert.is(readFileSync(file, 'utf8'), `${next}\n`, 'the admin-token file it came from holds the new token');
  assert.is(statSync(file).mode & 0o777, 0o600);
  assert.match(rotated.stderr, /written to .*admin-token, .*config \(context shop\)/);
  assert.is(runCli(['token', 'list'], env).code, 0, 'the CLI context works on with the new token');
  const contexts = (parseYaml(readFileSync(config, 'utf8')) as { contexts: Record<string, { token: string }> }).contexts;
  assert.is(contexts.other!.token, 'another-token', 'a context with another token is left alone');
  admin = next;

  // Another rotation with --out leaves the data dir's file with a token that is no longer the admin token: the
  // restarted server must not store it again.
  const out = join(dir, 'new-admin-token');
  const again = cli(['token', 'rotate', 'admin', '--out', out, '--data', server.dataDir]);
  assert.is(again.code, 0, again.stderr);
  const newest = again.stdout.trim();
  assert.is(readFileSync(out, 'utf8'), `${newest}\n`);
  assert.is(statSync(out).mode & 0o777, 0o600);
  assert.is(readFileSync(file, 'utf8'), `${next}\n`, 'with --out the data dir file is not touched');
  admin = newest;
  await server.kill();
  await server.start();
  assert.is(await authenticates(next), 401, 'the restarted server did not bring back the token of its admin-token file');
  assert.is(await authenticates(old), 401);
  assert.is(await authenticates(newest), 200);
  assert.match(server.output, /no longer holds the cluster's admin token/);
});

test('revoking the admin token takes --yes, locks it out, and another admin token can rotate a new one', async () => {
  const backup = await api('POST', USER_TOKENS, admin, { user: 'breakglass', groups: ['system:masters'] });
  const other = backup.json.token as string;
  const unconfirmed = cli(['token', 'revoke', 'admin']);
  assert.is.not(unconfirmed.code, 0);
  assert.match(unconfirmed.stderr, /add --yes to revoke it/);
  assert.is(await authenticates(admin), 200, 'without --yes nothing is revoked');

  const revoked = cli(['token', 'revoke', 'admin', '--yes']);
  assert.is(revoked.stdout, 'admin token revoked\n', revoked.stderr);
  assert.is(await authenticates(admin), 401);
  const listed = (await api('GET', USER_TOKENS, other)).json.items as Record<string, unknown>[];
  assert.ok(listed.find((t) => t.name === 'admin')?.revoked, 'listed as revoked');
  assert.match(runCli(['token', 'list'], { HOME: join(dir, 'home'), ...server.cliEnv, FLOTILLA_TOKEN: other }).stdout, /^admin\s+admin\s+.*revoked \S+$/m);

  await server.kill();
  await server.start();
  assert.is(await authenticates(admin), 401, 'a restart does not revive a revoked admin token');
  const readmitted = readFileSync(join(server.dataDir, 'admin-token'), 'utf8').trim();
  assert.is(await authenticates(readmitted), 401, 'nor the one in the admin-token file');

  const fresh = runCli(['token', 'rotate', 'admin', '--out', join(dir, 'fresh-admin')], { HOME: join(dir, 'home'), ...server.cliEnv, FLOTILLA_TOKEN: other });
  assert.is(fresh.code, 0, fresh.stderr);
  admin = fresh.stdout.trim();
  assert.is(await authenticates(admin), 200, 'a new admin token made with another admin token works');
  assert.is(await authenticates(other), 200, 'and the token that made it works on');
});

test('flotilla kubeconfig: the v1 Config with the cluster CA embedded, read by the real kubectl, for this connection or a new user token', async () => {
  const missing = runCli(['kubeconfig'], { HOME: join(dir, 'home'), FLOTILLA_SERVER: server.url, FLOTILLA_TOKEN: admin });
  assert.is.not(missing.code, 0);
  assert.match(missing.stderr, /no cluster CA/);

  const file = join(dir, 'kubeconfig');
  const written = cli(['kubeconfig', '--out', file]);
  assert.is(written.code, 0, written.stderr);
  assert.is(statSync(file).mode & 0o777, 0o600);
  const doc = parseYaml(readFileSync(file, 'utf8')) as Record<string, unknown>;
  assert.is(doc.apiVersion, 'v1');
  assert.is(doc.kind, 'Config');

  const view = spawnSync(KUBECTL, ['--kubeconfig', file, 'config', 'view', '--raw', '-o', 'json'], { encoding: 'utf8' });
  assert.is(view.status, 0, view.stderr);
  const cfg = JSON.parse(view.stdout) as {
    clusters: { name: string; cluster: { server: string; 'certificate-authority-data': string } }[];
    users: { name: string; user: { token: string } }[]; contexts: { name: string; context: { cluster: string; user: string } }[]; 'current-context': string;
  };
  assert.is(cfg.clusters.length, 1);
  assert.is(cfg.clusters[0]!.cluster.server, server.url);
  assert.is(Buffer.from(cfg.clusters[0]!.cluster['certificate-authority-data'], 'base64').toString(), server.ca);
  assert.equal(cfg.users, [{ name: 'admin', user: { token: admin } }]);
  assert.equal(cfg.contexts, [{ name: cfg['current-context'], context: { cluster: cfg.clusters[0]!.name, user: 'admin' } }]);
  const shown = spawnSync(KUBECTL, ['--kubeconfig', file, 'config', 'view'], { encoding: 'utf8' });
  assert.match(shown.stdout, /token: REDACTED/, 'kubectl knows the token for what it is');
  assert.match(shown.stdout, /certificate-authority-data: DATA\+OMITTED/);

  const bobFile = join(dir, 'kubeconfig-bob');
  const bob = cli(['kubeconfig', '--out', bobFile, '--user', 'bob', '--group', 'viewers', '--ttl', '1h']);
  assert.is(bob.code, 0, bob.stderr);
  const bobCfg = JSON.parse(spawnSync(KUBECTL, ['--kubeconfig', bobFile, 'config', 'view', '--raw', '-o', 'json'], { encoding: 'utf8' }).stdout) as typeof cfg;
  assert.is(bobCfg.users[0]!.name, 'bob');
  const bobToken = bobCfg.users[0]!.user.token;
  assert.is.not(bobToken, admin);
  assert.is(await authenticates(bobToken), 200, 'the kubeconfig holds a new working user token');
  const entry = (await userTokens()).find((t) => t.name === 'bob');
  assert.equal(entry?.groups, ['viewers']);
  assert.ok(entry?.expires, 'with its TTL');

  // kubectl verifies the server against the embedded CA and sends the user's token.
  const get = spawnSync(KUBECTL, ['--kubeconfig', bobFile, 'get', '--raw', '/api'], { encoding: 'utf8' });
  assert.is(get.status, 0, get.stderr);
  assert.is((JSON.parse(get.stdout) as { kind: string }).kind, 'APIVersions');
  const denied = spawnSync(KUBECTL, ['--kubeconfig', bobFile, 'get', '--raw', '/api/v1/namespaces/default'], { encoding: 'utf8' });
  assert.match(denied.stderr, /namespaces "default" is forbidden: User "bob" cannot get resource "namespaces" in API group "" at the cluster scope/, 'the group viewers is bound to nothing');
  assert.equal(readdirSync(dir).filter((n) => n.endsWith('.partial')), [], 'no temporary file is left behind');
});

test('a server whose admin-token file was rotated away reports the file but not the dead token (flotilla up does not save it as the CLI context)', async () => {
  const dataDir = join(dir, 'in-process');
  const start = () => startInProcessServer(dataDir);
  let first = await start();
  try {
    assert.ok(first.info.adminToken, 'a new cluster: the file holds the admin token');
    const res = await pinnedFetch({ ca: first.info.caPem })(`${first.info.url}${USER_TOKENS}/admin/rotate`, { method: 'POST', headers: { authorization: `Bearer ${first.info.adminToken!}` } });
    assert.is(res.status, 200);
  } finally {
    await first.stop();
  }
  first = await start();
  try {
    assert.is(first.info.adminTokenPath, join(dataDir, 'admin-token'));
    assert.is(first.info.adminToken, undefined, 'the rotated-away token is not offered as the admin token');
  } finally {
    await first.stop();
  }
});

test.run();
