// setUp and stopAfterEach, on suites written for the occasion and run as their own processes: a failed set-up
// is reported and fails the process, its undoing still runs, and a failing test cannot leave the process hanging.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from './server-process.js';

const uvu = join(repoRoot, 'node_modules', 'uvu', 'dist', 'index.mjs');
const setUpModule = new URL('./set-up.js', import.meta.url).pathname;

/** Runs `body` as a uvu suite file of its own; a bound far above its running time catches a hang. */
function runSuite(dir: string, body: string) {
  const file = join(dir, 'suite.mjs');
  writeFileSync(file, `import { test } from ${JSON.stringify(uvu)};\nimport { setUp, stopAfterEach } from ${JSON.stringify(setUpModule)};\nimport { writeFileSync } from 'node:fs';\n${body}\ntest.run();\n`);
  const r = spawnSync(process.execPath, [file], { cwd: dir, encoding: 'utf8', timeout: 60_000, env: { ...process.env, FORCE_COLOR: '0' } });
  return { ...r, output: `${r.stdout}${r.stderr}` };
}

test('a set-up that throws is reported, fails the process, and its undoing still runs; the tests do not run', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-set-up-'));
  try {
    const r = runSuite(dir, `setUp(test, async () => { throw new Error('the server would not start'); }, () => writeFileSync('stopped', ''));
test('needs the set-up', () => writeFileSync('ran', ''));`);
    assert.is(r.status, 1, r.output);
    assert.match(r.stderr, /set-up failed: Error: the server would not start/);
    assert.match(r.stdout, /Total:\s+1\s+Passed:\s+0/);
    assert.ok(existsSync(join(dir, 'stopped')), 'the after hook ran');
    assert.not.ok(existsSync(join(dir, 'ran')), 'the test did not run');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('stopAfterEach stops what a failing test started, so the process ends', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-set-up-'));
  try {
    const r = runSuite(dir, `const stopLater = stopAfterEach(test);
test('starts a loop and fails', () => {
  const loop = setInterval(() => {}, 1000);
  stopLater(() => clearInterval(loop));
  throw new Error('assertion failed');
});`);
    assert.is(r.signal, null, `the suite hung: ${r.output}`);
    assert.is(r.status, 1, r.output);
    assert.match(r.stdout, /Total:\s+1\s+Passed:\s+0/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
