// Images without a registry on the multi-host lab (3 hosts, each its own dockerd, real agents): `flotilla image
// load` of an image made on the machine's engine puts it on one node only; a Deployment spread over the three
// machines then runs on all of them, the two others having fetched it from the first, one transfer each (counted
// where the archives were served); an upload with a wrong digest is refused and one cut off half-way leaves
// neither an image nor a file behind.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ARCHIVE_DIGEST_HEADER, nodeImagesPath } from '../../api-types/index.js';
import { IMAGE_TRANSFER_DIR } from '../../node-agent/images/load.js';
import { eventually, StopWaiting } from '../support/eventually.js';
import { BOUND_MS, PodNetworkLab } from './pod-network-lab.js';

const IMAGE = `flotilla/imgload-test:${process.pid}`;
const NODES = ['n1', 'n2', 'n3'];
const work = mkdtempSync(join(tmpdir(), 'fl-il-'));
const archive = join(work, 'image.tar');
let cluster: PodNetworkLab | undefined;

function docker(args: string[]): string {
  const r = spawnSync('docker', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`docker ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
}

/** Whether lab host `host`'s engine holds IMAGE. */
async function present(host: number): Promise<boolean> {
  return (await cluster!.lab.docker(host, ['image', 'inspect', IMAGE])).code === 0;
}

/** The files in node `name`'s transfer folder (none, or no folder, between transfers). */
function transfers(name: string): string[] {
  try {
    return readdirSync(join(cluster!.agentDataDir(name), IMAGE_TRANSFER_DIR));
  } catch {
    return [];
  }
}

/** The agent's JSON log entries with message `msg`. */
function logEntries(name: string, msg: string): Record<string, unknown>[] {
  return cluster!.agents.get(name)!.output().split('\n').filter((l) => l.startsWith('{')).flatMap((l) => {
    try { return [JSON.parse(l) as Record<string, unknown>]; } catch { return []; }
  }).filter((e) => e.msg === msg);
}

/** curl arguments of an archive upload to node `name` as the admin, with `digest` as the archive's. */
function uploadArgs(name: string, digest: string, extra: string[] = []): string[] {
  return ['-s', '--cacert', cluster!.caFile, '-X', 'POST', '-H', `authorization: Bearer ${cluster!.adminToken}`, '-H', 'content-type: application/x-tar',
    '-H', `${ARCHIVE_DIGEST_HEADER}: ${digest}`, '--data-binary', `@${archive}`, '-w', '\n%{http_code}', ...extra, `${cluster!.url}${nodeImagesPath(name)}`];
}

test.before(async () => {
  // A small image of the machine's engine that no lab engine has: the test box's files, imported anew.
  const container = docker(['create', 'flotilla/testbox:latest', 'true']);
  try {
    const r = spawnSync('sh', ['-c', `docker export ${container} | docker import - ${IMAGE}`], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`docker import: ${r.stderr}`);
  } finally {
    docker(['rm', container]);
  }
  docker(['save', '-o', archive, IMAGE]);
  cluster = await PodNetworkLab.start({ hosts: 3, prefix: 'fl-il', subnet: '10.87.0' });
  await Promise.all(NODES.map((n, i) => cluster!.startAgent(i + 1, n)));
});

test.after(async () => {
  try {
    await cluster?.destroy();
  } finally {
    spawnSync('docker', ['rmi', '-f', IMAGE]);
    rmSync(work, { recursive: true, force: true });
  }
});

test('image load puts a local image on the one node named, and image ls shows it there', async () => {
  const loaded = await cluster!.cli(1, ['image', 'load', IMAGE, '--node', 'n1']);
  assert.is(loaded.code, 0, loaded.stderr);
  assert.match(loaded.stdout, `node/n1: loaded ${IMAGE}`);
  assert.ok(await present(1), 'n1 lacks the image it loaded');
  assert.not.ok(await present(2), 'n2 got the image without being named');
  assert.not.ok(await present(3), 'n3 got the image without being named');
  assert.equal(transfers('n1'), [], 'the archive was left in the transfer folder');
  const id = docker(['image', 'inspect', '--format', '{{.Id}}', IMAGE]).replace(/^sha256:/, '').slice(0, 12);
  const listed = await cluster!.cli(1, ['image', 'ls', '--node', 'n1']);
  assert.is(listed.code, 0, listed.stderr);
  assert.match(listed.stdout, /^NODE\s+IMAGE\s+ID\s+SIZE\s+PLATFORM$/m);
  assert.match(listed.stdout, new RegExp(`^n1\\s+${IMAGE.replace(/[/.]/g, '\\$&')}\\s+${id}\\s+\\S+B\\s+linux/`, 'm'));
  const unknown = await cluster!.cli(1, ['image', 'load', IMAGE, '--node', 'nope']);
  assert.is(unknown.code, 1);
  assert.match(unknown.stderr, 'node/nope: error: nodes "nope" not found');
  const absent = await cluster!.cli(1, ['image', 'rm', IMAGE, '--node', 'n3']);
  assert.is(absent.code, 1);
  assert.match(absent.stderr, `node/n3: error: no such image: ${IMAGE} on node n3`);
});

test('an archive with another digest than the one sent is refused and nothing is loaded', async () => {
  const r = await cluster!.lab.exec(1, 'curl', uploadArgs('n2', `sha256:${'0'.repeat(64)}`), { timeoutMs: 30_000 });
  const nl = r.stdout.lastIndexOf('\n');
  assert.is(r.stdout.slice(nl + 1), '400', r.stdout);
  const status = JSON.parse(r.stdout.slice(0, nl)) as { message: string };
  const actual = `sha256:${createHash('sha256').update(readFileSync(archive)).digest('hex')}`;
  assert.match(status.message, `node n2: the archive's digest is ${actual}, not sha256:${'0'.repeat(64)}`);
  assert.not.ok(await present(2), 'n2 loaded an archive whose digest was wrong');
  assert.equal(transfers('n2'), []);
});

test('an upload cut off half-way leaves no image and no file on the node', async () => {
  const size = statSync(archive).size;
  const digest = `sha256:${createHash('sha256').update(readFileSync(archive)).digest('hex')}`;
  // 64 kB/s: the archive (megabytes) is still arriving when the sender is killed.
  const curl = cluster!.lab.spawn(1, 'curl', uploadArgs('n2', digest, ['--limit-rate', '64k']));
  try {
    const arriving = await eventually('the archive arriving on n2', () => {
      if (curl.exitCode !== null) throw new StopWaiting(`curl ended first (${curl.exitCode}): ${curl.output()}`);
      const files = transfers('n2');
      return files.length === 1 && statSync(join(cluster!.agentDataDir('n2'), IMAGE_TRANSFER_DIR, files[0]!)).size > 0 ? files : undefined;
    }, { limitMs: 30_000, everyMs: 100 });
    assert.match(arriving[0]!, /\.tar$/);
  } finally {
    curl.kill('SIGKILL');
  }
  await curl.exited();
  await eventually('the partial archive removed from n2', () => transfers('n2').length === 0, { limitMs: 30_000, everyMs: 100, detail: () => transfers('n2').join(', ') });
  assert.not.ok(await present(2), 'n2 loaded a partial archive');
  assert.equal(logEntries('n2', 'image archive loaded'), []);
  assert.ok(size > 256 * 1024, `the archive (${size} bytes) is too small to be cut off half-way`);
});

test('a Deployment spread over the three machines runs on all: two nodes fetched the image from n1, once each', async () => {
  await cluster!.create({
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'shared' },
    spec: {
      replicas: 3, selector: { matchLabels: { app: 'shared' } },
      template: {
        metadata: { labels: { app: 'shared' } },
        spec: {
          terminationGracePeriodSeconds: 0,
          affinity: { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [{ labelSelector: { matchLabels: { app: 'shared' } }, topologyKey: 'kubernetes.io/hostname' }] } },
          containers: [{ name: 'c', image: IMAGE, command: ['sleep', '3600'] }],
        },
      },
    },
  });
  let last = '';
  const pods = await eventually('3 pods of the Deployment running', async () => {
    await cluster!.advertiseImage('n1', IMAGE, statSync(archive).size);
    const all = await cluster!.podsOf('app=shared');
    last = JSON.stringify(all.map((p) => [p.spec.nodeName, p.status?.phase]));
    return all.length === 3 && all.every((p) => p.status?.phase === 'Running') ? all : undefined;
  }, { limitMs: BOUND_MS, everyMs: 500, detail: () => last });
  assert.equal(pods.map((p) => p.spec.nodeName).sort(), NODES);
  for (const h of [2, 3]) assert.ok(await present(h), `h${h} has no image after its pod ran`);
  // Counted where archives were served, on every node: one to each of the two nodes that lacked the image.
  const served = NODES.flatMap((n) => logEntries(n, 'image archive served').map((e) => `${n} -> ${String(e.to)}`)).sort();
  assert.equal(served, ['n1 -> system:node:n2', 'n1 -> system:node:n3']);
  for (const n of ['n2', 'n3']) {
    assert.equal(logEntries(n, 'image fetched from a peer node').map((e) => [e.image, e.from]), [[IMAGE, 'n1']]);
    assert.equal(transfers(n), []);
  }
});

test('image rm is refused while a container uses the image, and removes it from every node once none does', async () => {
  const busy = await cluster!.cli(1, ['image', 'rm', IMAGE, '--node', 'n2']);
  assert.is(busy.code, 1);
  assert.match(busy.stderr, /^node\/n2: error: node n2: conflict: /m);
  assert.ok(await present(2));
  assert.is((await cluster!.api('DELETE', '/apis/apps/v1/namespaces/default/deployments/shared')).code, 200);
  await eventually('the pods\' containers gone', async () => {
    for (const h of [1, 2, 3]) {
      const ps = await cluster!.lab.docker(h, ['ps', '-aq', '--filter', 'label=io.flotilla.container=c']);
      if (ps.code !== 0 || ps.stdout.trim() !== '') return false;
    }
    return true;
  }, { limitMs: BOUND_MS, everyMs: 500 });
  const removed = await cluster!.cli(1, ['image', 'rm', IMAGE, '--all']);
  assert.is(removed.code, 0, removed.stderr);
  assert.equal(removed.stdout.trim().split('\n'), NODES.map((n) => `node/${n}: removed ${IMAGE}`));
  for (const h of [1, 2, 3]) assert.not.ok(await present(h), `h${h} still has the image`);
});

test.run();
