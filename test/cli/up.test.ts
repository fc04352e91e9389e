// `flotilla up` on a machine without a Docker engine: the control plane runs, and the user is told why no node.
// Its server logs structured records (pino JSON lines when stderr is not a terminal).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../support/server-process.js';
import { startUp } from './up-support.js';

test('without Docker, up serves the API, configures the CLI and says there is no local agent', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-up-'));
  const up = startUp(dir, { HOME: join(dir, 'home'), DOCKER_HOST: `unix://${join(dir, 'no-docker.sock')}` });
  try {
    await up.waitFor(/listening on http:\/\/127\.0\.0\.1:\d+/, 60_000);
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

test.run();
