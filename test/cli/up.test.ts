// `flotilla up` on a machine without a Docker engine: the control plane runs, and the user is told why no node.
// Its server logs structured records (pino JSON lines when stderr is not a terminal).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isJoinToken } from '../../discovery/locate.js';
import { runCli } from '../support/server-process.js';
import { startUp } from './up-support.js';

test('without Docker, up serves the API, configures the CLI and says there is no local agent', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-up-'));
  const up = startUp(dir, { HOME: join(dir, 'home'), DOCKER_HOST: `unix://${join(dir, 'no-docker.sock')}` });
  try {
    await up.waitFor(/listening on https:\/\/127\.0\.0\.1:\d+/, 60_000);
    await up.waitFor(/no local agent/, 60_000);
    // Not a terminal: the server logs pino's JSON records, one a line, as the agent does.
    const records = up.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level?: number; component?: string; msg?: string });
    assert.ok(records.some((r) => r.component === 'join' && r.level === 30 && /forming a new cluster/.test(r.msg ?? '')), `a structured "forming" record in: ${up.output()}`);
    assert.ok(statSync(join(dir, '.flotilla', 'admin-token')).isFile(), 'data in ./.flotilla');
    const r = runCli(['get', 'namespaces', '-o', 'name'], { HOME: join(dir, 'home') });
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stdout, /namespace\/default/);
  } finally {
    await up.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('up makes its local agent a join token of its own (not the admin token), kept across restarts', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-up-token-'));
  const env = { HOME: join(dir, 'home'), DOCKER_HOST: `unix://${join(dir, 'no-docker.sock')}` };
  const agentTokens = () => {
    const r = runCli(['token', 'list'], env);
    assert.is(r.code, 0, r.stderr);
    return r.stdout.split('\n').filter((l) => l.includes('flotilla up: the local agent')).length;
  };
  try {
    for (let start = 1; start <= 2; start++) {
      const up = startUp(dir, env);
      try {
        await up.waitFor(/listening on https:\/\/127\.0\.0\.1:\d+/, 60_000);
        assert.is(agentTokens(), 1, `start ${start}: one join token for the local agent`);
      } finally {
        await up.stop();
      }
    }
    const tokenFile = join(dir, '.flotilla', 'local-agent-token');
    assert.is(statSync(tokenFile).mode & 0o777, 0o600);
    const agentToken = readFileSync(tokenFile, 'utf8').trim();
    assert.ok(isJoinToken(agentToken), agentToken);
    assert.is.not(agentToken, readFileSync(join(dir, '.flotilla', 'admin-token'), 'utf8').trim());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
