// scripts/run-tests.mjs on suites written for the occasion: a hung suite is killed with its process group and
// named, a suite that leaves a process running is named and the process killed, checks the caller ran
// (--failed) are counted, and the run still ends with the summary line CI reads.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually } from '../support/eventually.js';
import { repoRoot } from '../support/server-process.js';

const alive = (pid: number) => { try { process.kill(pid, 0); return true; } catch { return false; } };
const uvuTotals = (passed: number) => `console.log('  Total:     1\\n  Passed:    ${passed}\\n  Skipped:   0');`;
/** A suite that starts `sleep 600` (pid written to NAME.pid) in its own process group, then does `rest`. */
const sleeperSuite = (name: string, rest: string) => `import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
const sleeper = spawn('sleep', ['600'], { stdio: 'ignore' });
writeFileSync(${JSON.stringify(name)} + '.pid', String(sleeper.pid));
${rest}
`;

test('a hung suite and one that leaves a process behind are killed with their processes and named; --failed checks count; the last line is the summary', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-run-tests-'));
  try {
    writeFileSync(join(dir, 'ok.test.js'), uvuTotals(1));
    writeFileSync(join(dir, 'hang.test.js'), sleeperSuite(join(dir, 'hang'), 'setInterval(() => {}, 1000);'));
    writeFileSync(join(dir, 'leak.test.js'), sleeperSuite(join(dir, 'leak'), `sleeper.unref();\n${uvuTotals(1)}`));
    const r = spawnSync(process.execPath, [join(repoRoot, 'scripts', 'run-tests.mjs'), '--dir', dir, '--timeout', '3', '--failed', 'lint (npm run lint)'], { cwd: repoRoot, encoding: 'utf8', timeout: 120_000 });
    assert.is(r.status, 1, r.stdout + r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.is(lines.at(-1), '2 passed, 3 failed', r.stdout);
    assert.ok(lines.includes('failed  lint (npm run lint)'), r.stdout);
    assert.ok(lines.some((l) => /^failed {2}\S*hang\.test\.js \(exceeded 3 s and was killed\)$/.test(l)), r.stdout);
    assert.ok(lines.some((l) => /^failed {2}\S*leak\.test\.js \(left processes running after it ended; they were killed\)$/.test(l)), r.stdout);
    for (const name of ['hang', 'leak']) {
      const pid = Number(readFileSync(join(dir, `${name}.pid`), 'utf8'));
      await eventually(`the ${name} suite's sleep ${pid} gone`, () => !alive(pid));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
