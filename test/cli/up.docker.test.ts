// The README's tour on a real Docker engine: `flotilla up`, apply the examples, pods run, delete removes them.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir, hostname } from 'node:os';
import { join } from 'node:path';
import { LABEL_CLUSTER } from '../../node-agent/runtime/types.js';
import { MEMBER_FILES } from '../../server/cluster/cluster.js';
import { runCli, repoRoot } from '../support/server-process.js';
import { eventually } from '../support/eventually.js';
import { startUp } from './up-support.js';

const containersOfDeployment = () => execFileSync('docker', ['ps', '-q', '--filter', 'label=io.flotilla.namespace=default', '--filter', 'name=_web-'], { encoding: 'utf8' }).trim().split('\n').filter(Boolean);

test('up, apply -f examples/, two web pods Running on the local node, delete -f removes their containers', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-up-docker-'));
  const home = join(dir, 'home');
  const cli = (...args: string[]) => runCli(args, { HOME: home });
  const up = startUp(dir, { HOME: home });
  try {
    await up.waitFor(/Flotilla agent: node /, 60_000);
    await eventually('the local node Ready', () => /\sReady\s/.test(cli('get', 'nodes').stdout), { limitMs: 60_000, everyMs: 250 });
    assert.match(cli('get', 'nodes').stdout, new RegExp(hostname().toLowerCase().replace(/[^a-z0-9.-]/g, '-').slice(0, 20)));
    // The local agent is a node like any other: its own join token authenticates it, not the admin token.
    assert.match(cli('token', 'list').stdout, /flotilla up: the local agent/);
    const applied = cli('apply', '-f', join(repoRoot, 'examples'));
    assert.is(applied.code, 0, applied.stderr);
    await eventually('web 2/2', () => /web\s+2\/2/.test(cli('get', 'deployments').stdout), { limitMs: 120_000, everyMs: 250 });
    const pods = cli('get', 'pods', '-l', 'app=web', '-o', 'wide').stdout;
    assert.is((pods.match(/\sRunning\s/g) ?? []).length, 2, pods);
    assert.ok(containersOfDeployment().length >= 2, 'their containers run in Docker');
    assert.is(cli('delete', '-f', join(repoRoot, 'examples')).code, 0);
    await eventually('the containers to be removed', () => containersOfDeployment().length === 0, { limitMs: 60_000, everyMs: 250 });
  } finally {
    await up.stop();
    // Only this cluster's containers: other suites' agents share the engine.
    const identity = join(dir, '.flotilla', MEMBER_FILES.identity);
    const clusterId = existsSync(identity) ? (JSON.parse(readFileSync(identity, 'utf8')) as { clusterId?: string }).clusterId : undefined;
    if (clusterId) {
      try { execFileSync('sh', ['-c', `docker rm -f $(docker ps -aq --filter label=${LABEL_CLUSTER}=${clusterId}) 2>/dev/null || true`]); } catch { /* nothing left */ }
    }
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
