#!/usr/bin/env node
// Runs every compiled uvu suite (dist/test/**/*.test.js) in its own process, one after another, and ends
// with the line "N passed, N failed" that CI reads (uvu prints only per-process totals).
//
// Suites that need a real part say so in their file name:
//   *.docker.test.js  a Docker engine (DOCKER_HOST or /var/run/docker.sock) and the flotilla/testbox image
//   *.netns.test.js   root and `ip netns` (multi-host lab on network namespaces)
//   test/kubectl/     the kubectl binary on PATH (the suites drive the real kubectl against a real server)
// Without the part, such a suite is skipped and named in the summary, unless FLOTILLA_REQUIRE=docker,netns,kubectl
// (or CI=true, which requires all three) makes the missing part a failure.
//
// A suite runs in its own process group. One that outlives --timeout gets SIGTERM (its exit handlers clean up:
// the lab removes its namespaces), SIGKILL for the whole group 10 s later, and is counted as failed with the
// reason. Processes left in the group once the suite's process has exited are orphans it failed to stop: they
// are killed and the suite is counted as failed, so a leak is named instead of hanging or haunting a later suite.
//
// Usage: node scripts/run-tests.mjs [--only SUBSTRING]... [--timeout SECONDS] [--failed CHECK]... [--dir DIR]
//   --failed CHECK  a check the caller ran before (e.g. lint) failed: it is named and counted in the summary,
//                   so one summary line carries every failure of the run.
//   --dir DIR       run the *.test.js files under DIR instead of dist/test (for testing this script).
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, statSync, existsSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import http from 'node:http';

const root = new URL('..', import.meta.url).pathname;
const compiledTests = join(root, 'dist', 'test');
let testRoot = compiledTests;
const args = process.argv.slice(2);
const only = [];
const failedChecks = [];
let timeoutS = 300;
/** After SIGTERM, how long a timed-out suite has to clean up before SIGKILL. */
const GRACE_MS = 10_000;
/** How long processes left in a suite's group get to die on their own (its exit handlers SIGKILLed them). */
const ORPHAN_MS = 5_000;
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--only') only.push(args[++i] ?? '');
  else if (args[i] === '--timeout') timeoutS = Number(args[++i]);
  else if (args[i] === '--failed') failedChecks.push(args[++i] ?? '');
  else if (args[i] === '--dir') testRoot = resolve(args[++i] ?? '');
  else { console.error(`run-tests: unknown argument ${args[i]}`); process.exit(2); }
}

if (!existsSync(testRoot)) {
  console.error('run-tests: dist/test is missing; run `npm run build` (npm ci does it through prepare)');
  console.log('0 passed, 1 failed');
  process.exit(1);
}

function findTests(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...findTests(p));
    // Only suites whose source still exists: tsc never deletes outputs of removed files.
    else if (name.endsWith('.test.js') && (testRoot !== compiledTests || existsSync(join(root, relative(join(root, 'dist'), p)).replace(/\.js$/, '.ts')))) out.push(p);
  }
  return out;
}

function dockerAvailable() {
  const host = process.env.DOCKER_HOST;
  const socketPath = host?.startsWith('unix://') ? host.slice('unix://'.length) : host ? undefined : '/var/run/docker.sock';
  const target = socketPath ? { socketPath } : (() => { const u = new URL(host.replace(/^tcp:/, 'http:')); return { host: u.hostname, port: u.port }; })();
  return new Promise((resolve) => {
    const req = http.request({ ...target, path: '/_ping', timeout: 3000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200 ? null : `Docker answered /_ping with ${res.statusCode}`);
    });
    req.on('error', (e) => resolve(`no Docker engine answers (${e.message}); run scripts/ci-setup.sh`));
    req.on('timeout', () => { req.destroy(); resolve('Docker engine did not answer /_ping within 3 s'); });
    req.end();
  }).then((why) => {
    if (why) return why;
    const r = spawnSync('docker', ['image', 'inspect', 'flotilla/testbox:latest'], { stdio: 'ignore' });
    return r.status === 0 ? null : 'image flotilla/testbox:latest is missing; run scripts/ci-setup.sh';
  });
}

function netnsAvailable() {
  if (process.getuid?.() !== 0) return 'needs root to create network namespaces';
  const name = `flotilla-probe-${process.pid}`;
  const add = spawnSync('ip', ['netns', 'add', name], { encoding: 'utf8' });
  if (add.status !== 0) return `\`ip netns add\` failed: ${(add.stderr || add.error?.message || '').trim()}`;
  spawnSync('ip', ['netns', 'del', name]);
  return null;
}

function kubectlAvailable() {
  const r = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' });
  if (r.error) return `kubectl is not installed (${r.error.message}); install kubectl v1.32 on PATH`;
  return r.status === 0 ? null : `\`kubectl version --client\` failed: ${(r.stderr || '').trim()}`;
}

const required = new Set((process.env.FLOTILLA_REQUIRE ?? (process.env.CI === 'true' ? 'docker,netns,kubectl' : '')).split(',').filter(Boolean));
const needs = { docker: dockerAvailable, netns: netnsAvailable, kubectl: kubectlAvailable };
/** Which part a suite needs: by its file name's suffix, or for kubectl by its folder. */
const partOf = (file) => (relative(testRoot, file).split('/')[0] === 'kubectl' ? 'kubectl' : Object.keys(needs).find((p) => file.endsWith(`.${p}.test.js`)));
const missing = {};
for (const [part, probe] of Object.entries(needs)) missing[part] = await probe();

const files = findTests(testRoot).filter((f) => only.length === 0 || only.some((o) => relative(testRoot, f).includes(o)));
let passed = 0, failed = failedChecks.length;
const skipped = [];
const failures = [...failedChecks];
const strip = (s) => s.replace(/\x1b\[[0-9;]*m/g, '');

for (const file of files) {
  const rel = relative(root, file);
  const part = partOf(file);
  if (part && missing[part]) {
    if (required.has(part)) {
      console.log(`\n# ${rel}: FAILED, ${part} is required here but ${missing[part]}`);
      failed += 1; failures.push(`${rel} (${part} missing)`);
    } else {
      skipped.push(`${rel}: ${missing[part]}`);
    }
    continue;
  }
  console.log(`\n# ${rel}`);
  const started = Date.now();
  const { code, output, why } = await new Promise((resolve) => {
    const child = spawn(process.execPath, ['--enable-source-maps', file], { cwd: root, env: { ...process.env, FORCE_COLOR: '0' }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let output = '';
    let why = '';
    const note = (text) => { why ||= text; const line = `\nrun-tests: ${rel} ${text}\n`; output += line; process.stdout.write(line); };
    const onData = (d) => { output += d; process.stdout.write(d); };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    /** Signals the suite's process group; false once nothing is left in it. */
    const group = (signal) => { try { process.kill(-child.pid, signal); return true; } catch { return false; } };
    let killTimer;
    const timer = setTimeout(() => {
      note(`exceeded ${timeoutS} s and was killed`);
      group('SIGTERM');
      killTimer = setTimeout(() => group('SIGKILL'), GRACE_MS);
    }, timeoutS * 1000);
    const orphansChecked = new Promise((done) => child.on('exit', async () => {
      clearTimeout(timer);
      const deadline = Date.now() + ORPHAN_MS;
      while (group(0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      if (group(0)) { note('left processes running after it ended; they were killed'); group('SIGKILL'); }
      done();
    }));
    child.on('close', async (code, signal) => {
      await orphansChecked;
      clearTimeout(killTimer);
      resolve({ code: code ?? (signal ? 1 : 0), output, why });
    });
  });
  const text = strip(output);
  const total = Number(/Total:\s+(\d+)/.exec(text)?.[1] ?? NaN);
  const ok = Number(/Passed:\s+(\d+)/.exec(text)?.[1] ?? NaN);
  const skip = Number(/Skipped:\s+(\d+)/.exec(text)?.[1] ?? 0);
  let fileFailed = Number.isNaN(total) ? 1 : total - ok - skip;
  if ((code !== 0 || why) && fileFailed === 0) fileFailed = 1;
  passed += Number.isNaN(ok) ? 0 : ok;
  failed += fileFailed;
  if (fileFailed > 0) failures.push(why ? `${rel} (${why})` : rel);
  console.log(`# ${rel}: ${Number.isNaN(ok) ? 0 : ok} passed, ${fileFailed} failed (${((Date.now() - started) / 1000).toFixed(1)} s)`);
}

console.log('\n# Summary');
if (files.length === 0) { console.log('no test files matched'); failed += 1; }
for (const s of skipped) console.log(`skipped ${s}`);
for (const f of failures) console.log(`failed  ${f}`);
console.log(`${passed} passed, ${failed} failed`);
process.exitCode = failed > 0 ? 1 : 0;
