// `flotilla kubeconfig --merge` against a real server: the cluster, user and context go into the kubeconfig
// kubectl reads (KUBECONFIG's file, else ~/.kube/config), every other entry kept, and kubectl then talks to the
// cluster over HTTPS with the embedded CA and the token.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { flotillaBin } from '../support/server-process.js';
import { setUp } from '../support/set-up.js';
import { mergeKubeconfig, kubeconfigMergePath } from '../../cli/kubeconfig.js';
import { runAsync, startKubectlCluster, type KubectlCluster } from './kubectl.js';

let cluster: KubectlCluster | undefined;
setUp(test, async () => { cluster = await startKubectlCluster(); }, async () => { await cluster?.stop(); });

const OTHER = `apiVersion: v1
kind: Config
clusters: [{ name: elsewhere, cluster: { server: "https://192.0.2.1:6443" } }]
users: [{ name: someone, user: { token: other-token } }]
contexts: [{ name: someone@elsewhere, context: { cluster: elsewhere, user: someone } }]
current-context: someone@elsewhere
`;

test('flotilla kubeconfig --merge adds the cluster to ~/.kube/config, keeps the rest, and kubectl uses it', async () => {
  const info = cluster!.server.info;
  const home = join(cluster!.dir, 'merge-home');
  mkdirSync(join(home, '.kube'), { recursive: true });
  writeFileSync(join(home, '.kube', 'config'), OTHER);
  const env = { PATH: process.env.PATH ?? '', HOME: home };
  const flotilla = (...args: string[]) => runAsync(process.execPath, [flotillaBin, ...args], env);
  const cafile = join(cluster!.dir, 'ca.crt');
  writeFileSync(cafile, info.caPem);
  for (let round = 0; round < 2; round++) {
    const r = await flotilla('kubeconfig', '--merge', '--server', info.url, '--ca', cafile, '--token', info.adminToken!);
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stderr, /^Merged context admin@flotilla-[0-9a-f]{8} into .*\.kube\/config and made it current/);
  }
  const path = join(home, '.kube', 'config');
  assert.is(statSync(path).mode & 0o777, 0o600);
  const merged = parseYaml(readFileSync(path, 'utf8')) as { clusters: { name: string }[]; contexts: { name: string }[]; 'current-context': string };
  // Merged twice, listed once.
  assert.equal(merged.clusters.map((c) => c.name), ['elsewhere', `flotilla-${info.clusterId.slice(0, 8)}`]);
  assert.equal(merged.contexts.map((c) => c.name), ['someone@elsewhere', `admin@flotilla-${info.clusterId.slice(0, 8)}`]);
  const got = await runAsync('kubectl', ['get', 'namespaces', '-o', 'name'], env);
  assert.is(got.code, 0, got.stderr);
  assert.match(got.stdout, /^namespace\/default$/m);
  const out = await flotilla('kubeconfig', '--merge', '--out', join(home, 'x'), '--server', info.url, '--ca', cafile, '--token', info.adminToken!);
  assert.is(out.code, 2);
  assert.match(out.stderr, /--out and --merge/);
});

test('the merge path is client-go\'s: the first KUBECONFIG file that exists, else the last; a non-Config is refused', () => {
  const dir = cluster!.dir;
  writeFileSync(join(dir, 'b'), OTHER);
  assert.is(kubeconfigMergePath({ KUBECONFIG: `${join(dir, 'a')}:${join(dir, 'b')}`, HOME: '/h' }), join(dir, 'b'));
  assert.is(kubeconfigMergePath({ KUBECONFIG: `${join(dir, 'a')}:${join(dir, 'c')}`, HOME: '/h' }), join(dir, 'c'));
  assert.is(kubeconfigMergePath({ HOME: '/h' }), '/h/.kube/config');
  assert.throws(() => mergeKubeconfig('kind: Pod\n', { clusters: [], users: [], contexts: [] }), /is a Pod, not a Config/);
  assert.throws(() => mergeKubeconfig('- a\n', { clusters: [], users: [], contexts: [] }), /not a YAML mapping/);
});

test.run();
