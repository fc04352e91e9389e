// Secrets at rest on a node, on a real Docker engine: a pod mounting a Secret reads its value, yet no file of
// `flotilla up`'s data (the server's and the agent's: state, Raft log, pod cache) holds it in plain or base64;
// the secret volume is in memory (tmpfs) and goes with the pod.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LABEL_CLUSTER } from '../../node-agent/runtime/types.js';
import { MEMBER_FILES } from '../../server/cluster/cluster.js';
import { SECRET_VOLUMES_ROOT } from '../../node-agent/container-config.js';
import { runCli } from '../support/server-process.js';
import { eventually } from '../support/eventually.js';
import { startUp } from '../cli/up-support.js';

const VALUE = 'node-s3cr3t-6a2f90d4-value';

function filesUnder(path: string): string[] {
  if (!existsSync(path)) return [];
  if (!statSync(path).isDirectory()) return statSync(path).isFile() ? [path] : [];
  return readdirSync(path).flatMap((name) => filesUnder(join(path, name)));
}

/** The value and its base64 at each alignment (as test/secrets/at-rest.test.ts searches). */
function traces(value: string): string[] {
  return [value, ...[0, 1, 2].map((shift) => {
    const encoded = Buffer.from(`${'x'.repeat(shift)}${value}`).toString('base64');
    return encoded.slice(Math.ceil((shift * 4) / 3) + 1, encoded.length - 4);
  })];
}

const leaks = (root: string) => filesUnder(root).filter((f) => traces(VALUE).some((t) => readFileSync(f).toString('latin1').includes(t)));

test('a pod reads its mounted Secret; neither the server\'s nor the agent\'s data holds it; the tmpfs volume goes with the pod', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-secrets-docker-'));
  const home = join(dir, 'home');
  const cli = (...args: string[]) => runCli(args, { HOME: home });
  const up = startUp(dir, { HOME: home });
  try {
    await up.waitFor(/Flotilla agent: node /, 60_000);
    await eventually('the local node Ready', () => /\sReady\s/.test(cli('get', 'nodes').stdout), { limitMs: 60_000, everyMs: 250 });
    const manifest = join(dir, 'pod.yaml');
    writeFileSync(manifest, `apiVersion: v1
kind: Secret
metadata:
  name: vault
stringData:
  password: ${VALUE}
---
apiVersion: v1
kind: Pod
metadata:
  name: reader
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: flotilla/testbox:latest
    imagePullPolicy: Never
    command: ["sh", "-c", "cat /etc/vault/password; echo; sleep 3600"]
    volumeMounts:
    - name: vault
      mountPath: /etc/vault
  volumes:
  - name: vault
    secret:
      secretName: vault
`);
    const applied = cli('apply', '-f', manifest);
    assert.is(applied.code, 0, applied.stderr);
    await eventually('the pod to print the value', () => cli('logs', 'reader').stdout.includes(VALUE), { limitMs: 120_000, everyMs: 500, detail: () => cli('describe', 'pod', 'reader').stdout });
    const data = join(dir, '.flotilla');
    assert.ok(existsSync(join(data, 'agent', 'pods.json')), 'the agent cached the pod');
    assert.equal(leaks(data), [], 'no trace in the server\'s or the agent\'s data');
    const mounted = filesUnder(SECRET_VOLUMES_ROOT).filter((f) => readFileSync(f, 'utf8') === VALUE);
    assert.is(mounted.length, 1, 'the volume file is on the tmpfs');
    assert.is(execFileSync('stat', ['-f', '-c', '%T', mounted[0]!], { encoding: 'utf8' }).trim(), 'tmpfs');
    assert.is(cli('delete', 'pod', 'reader').code, 0);
    await eventually('the secret volume to go with the pod', () => !existsSync(mounted[0]!), { limitMs: 60_000, everyMs: 250 });
    assert.is(cli('delete', 'secret', 'vault').code, 0);
    assert.equal(leaks(data), [], 'deleted, still no trace');
  } finally {
    await up.stop();
    const identity = join(dir, '.flotilla', MEMBER_FILES.identity);
    const clusterId = existsSync(identity) ? (JSON.parse(readFileSync(identity, 'utf8')) as { clusterId?: string }).clusterId : undefined;
    if (clusterId) {
      try { execFileSync('sh', ['-c', `docker rm -f $(docker ps -aq --filter label=${LABEL_CLUSTER}=${clusterId}) 2>/dev/null || true`]); } catch { /* nothing left */ }
    }
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
