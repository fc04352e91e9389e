import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLab, type Lab } from './lab.js';

const PREFIX = 'fl-lab-self';
const namespaces = () => spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.split('\n')
  .map((l) => l.split(' ')[0] ?? '').filter((n) => n.startsWith(`${PREFIX}-`)).sort();
const rootLinks = () => spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).stdout.split('\n').map((l) => l.split(':')[1]?.trim()).sort();

const PONG_SERVER = `require('net').createServer((s) => s.end('pong')).listen(7000, () => console.log('listening'))`;
const PONG_CLIENT = `const s = require('net').connect(7000, process.argv[1]);
  s.setTimeout(1000, () => process.exit(3));
  s.on('error', () => process.exit(4));
  s.pipe(process.stdout);`;
/** A process is gone when /proc has no entry for it or only a zombie waiting to be reaped. */
const gone = (pid: number) => {
  const r = spawnSync('cat', [`/proc/${pid}/stat`], { encoding: 'utf8' });
  return r.status !== 0 || r.stdout.split(') ')[1]?.startsWith('Z') === true;
};

let lab: Lab | undefined;
test.after.each(async () => { await lab?.destroy(); lab = undefined; });

test('hosts reach each other across the switch, a cut host is unreachable until healed', async () => {
  const before = rootLinks();
  lab = await createLab({ hosts: 2, prefix: PREFIX });
  assert.equal(namespaces(), [`${PREFIX}-h1`, `${PREFIX}-h2`, `${PREFIX}-sw`]);
  assert.equal(rootLinks(), before, 'nothing may be added to the root namespace');
  // Reachability over TCP (ping is not installed everywhere): h2 answers "pong", h1 connects with a 1 s limit.
  const server = lab.spawn(2, process.execPath, ['-e', PONG_SERVER]);
  await server.waitFor(/listening/, 30_000);
  const ping = (from: number, to: number) => lab!.exec(from, process.execPath, ['-e', PONG_CLIENT, lab!.host(to).address]);
  assert.equal(await ping(1, 2), { code: 0, stdout: 'pong', stderr: '' });
  assert.match((await lab.exec('h2', 'ip', ['-o', 'addr', 'show', 'dev', 'eth0'])).stdout, '10.77.0.2/24');
  assert.match((await lab.exec(2, 'ip', ['route', 'show'])).stdout, /224\.0\.0\.0\/4 dev eth0/);
  lab.cut(2);
  assert.is.not((await ping(1, 2)).code, 0);
  lab.heal(2);
  assert.is((await ping(1, 2)).code, 0);
});

test('destroy kills spawned processes and removes every namespace; leftovers are removed on create', async () => {
  lab = await createLab({ hosts: 1, prefix: PREFIX });
  const sleeper = lab.spawn(1, 'sleep', ['600']);
  const echo = lab.spawn('h1', 'sh', ['-c', 'echo started-$((20 + 22)); sleep 600']);
  assert.match(await echo.waitFor(/started-42/, 30_000), 'started-42');
  await lab.destroy();
  assert.equal(namespaces(), []);
  assert.is(sleeper.signalCode, 'SIGKILL', 'the spawned process was killed');

  // An earlier run that died without cleaning up: a namespace of the same prefix with a process inside.
  spawnSync('ip', ['netns', 'add', `${PREFIX}-h7`]);
  const stray = spawnSync('ip', ['netns', 'exec', `${PREFIX}-h7`, 'sh', '-c', 'sleep 600 >/dev/null 2>&1 & echo $!'], { encoding: 'utf8' });
  const strayPid = Number(stray.stdout.trim());
  lab = await createLab({ hosts: 1, prefix: PREFIX });
  assert.equal(namespaces(), [`${PREFIX}-h1`, `${PREFIX}-sw`]);
  assert.ok(strayPid > 0 && gone(strayPid), 'the leftover process was killed');
});

test('docker: true gives each host its own dockerd inside its namespace, with the test image; destroy stops them and removes their folders', async () => {
  lab = await createLab({ hosts: 2, prefix: PREFIX, docker: true });
  const pids: number[] = [];
  for (const h of lab.hosts) {
    assert.match(h.dockerHost ?? '', new RegExp(`^unix://${tmpdir()}/${PREFIX}-docker/${h.name}/docker\\.sock$`));
    const root = await lab.docker(h.index, ['info', '--format', '{{.DockerRootDir}}']);
    assert.is(root.stdout.trim(), join(tmpdir(), `${PREFIX}-docker`, h.name, 'data'));
    const pid = Number(readFileSync(join(tmpdir(), `${PREFIX}-docker`, h.name, 'dockerd.pid'), 'utf8'));
    assert.is(spawnSync('ip', ['netns', 'identify', String(pid)], { encoding: 'utf8' }).stdout.trim(), h.netns, 'dockerd runs in the host\'s namespace');
    pids.push(pid);
    const run = await lab.docker(h.index, ['run', '--rm', 'flotilla/testbox:latest', 'echo', `hello from ${h.name}`]);
    assert.is(run.stdout.trim(), `hello from ${h.name}`, run.stderr);
  }
  await lab.docker(1, ['run', '-d', 'flotilla/testbox:latest', 'sleep', '600']);
  await lab.destroy();
  assert.ok(pids.every(gone), 'every dockerd stopped');
  assert.not.ok(existsSync(join(tmpdir(), `${PREFIX}-docker`)), 'their folders are removed');
  assert.equal(namespaces(), []);
});

test('a suite that dies of an uncaught exception leaves no namespace behind', async () => {
  const script = `import { createLab } from ${JSON.stringify(new URL('./lab.js', import.meta.url).href)};
    const lab = await createLab({ hosts: 1, prefix: '${PREFIX}' });
    lab.spawn(1, 'sleep', ['600']);
    setTimeout(() => { throw new Error('boom'); }, 10);`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
  assert.match(r.stderr, 'boom');
  assert.is.not(r.status, 0);
  assert.equal(namespaces(), []);
});

test('bad options are refused with the option named', async () => {
  for (const [options, pattern] of [
    [{ hosts: 0 }, /hosts 0/],
    [{ hosts: 2, prefix: 'Bad_Prefix' }, /prefix "Bad_Prefix"/],
    [{ hosts: 2, subnet: '10.300.0' }, /subnet "10.300.0"/],
  ] as const) {
    try {
      await createLab(options);
      assert.unreachable(`createLab(${JSON.stringify(options)}) should fail`);
    } catch (e) {
      assert.match((e as Error).message, pattern);
    }
  }
});

test.run();
