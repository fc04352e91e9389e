// kubectl writes against Flotilla: client-side apply (last-applied-configuration and strategic merge patch), the
// three patch types of `kubectl patch`, server dry runs and `kubectl diff`, label/annotate, scale through the
// scale subresource, edit with a scripted EDITOR, rollout restart, and delete with each --cascade. (`kubectl
// create configmap|secret|deployment` sends protobuf, which the server does not read yet: docs/kubectl.md.)
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setUp } from '../support/set-up.js';
import { eventually } from '../support/eventually.js';
import { startKubectlCluster, type KubectlCluster } from './kubectl.js';

const deployment = (image: string, extraEnv = '') => `apiVersion: apps/v1
kind: Deployment
metadata: { name: web, labels: { app: web } }
spec:
  replicas: 2
  selector: { matchLabels: { app: web } }
  template:
    metadata: { labels: { app: web } }
    spec:
      containers:
        - name: httpd
          image: ${image}
          env: [{ name: MODE, value: fast }${extraEnv}]
`;

let cluster: KubectlCluster | undefined;
const kubectl = (args: string[], stdin?: string) => cluster!.kubectl(args, stdin);
/** kubectl's stdout, after asserting that it exited 0. */
async function ok(...args: string[]): Promise<string> {
  const r = await kubectl(args);
  assert.is(r.code, 0, `kubectl ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}
const jsonOf = async (...args: string[]): Promise<any> => JSON.parse(await ok('get', ...args, '-o', 'json')); // eslint-disable-line @typescript-eslint/no-explicit-any

setUp(test, async () => { cluster = await startKubectlCluster(); }, async () => { await cluster?.stop(); });

test('kubectl apply: created, then configured by a strategic merge patch that keeps what others set, then unchanged', async () => {
  const created = await kubectl(['apply', '-f', '-'], deployment('flotilla/testbox:1'));
  assert.is(created.code, 0, created.stderr);
  assert.is(created.stdout, 'deployment.apps/web created\n');
  const first = await jsonOf('deployment', 'web');
  assert.match(first.metadata.annotations['kubectl.kubernetes.io/last-applied-configuration'], /"image":"flotilla\/testbox:1"/);
  // Another writer adds a container port kubectl's file does not mention: a merge keeps it.
  await ok('patch', 'deployment', 'web', '--type=strategic', '-p', '{"spec":{"template":{"spec":{"containers":[{"name":"httpd","ports":[{"containerPort":8080}]}]}}}}');
  const configured = await kubectl(['apply', '-f', '-'], deployment('flotilla/testbox:2', ', { name: LEVEL, value: "3" }'));
  assert.is(configured.code, 0, configured.stderr);
  assert.is(configured.stdout, 'deployment.apps/web configured\n');
  const container = (await jsonOf('deployment', 'web')).spec.template.spec.containers[0];
  assert.is(container.image, 'flotilla/testbox:2');
  assert.equal(container.env, [{ name: 'MODE', value: 'fast' }, { name: 'LEVEL', value: '3' }]);
  assert.equal(container.ports.map((p: { containerPort: number }) => p.containerPort), [8080]);
  const again = await kubectl(['apply', '-f', '-'], deployment('flotilla/testbox:2', ', { name: LEVEL, value: "3" }'));
  assert.is(again.stdout, 'deployment.apps/web unchanged\n', again.stderr);
  // An env entry dropped from the file is removed (the last applied configuration names it).
  const dropped = await kubectl(['apply', '-f', '-'], deployment('flotilla/testbox:2'));
  assert.is(dropped.code, 0, dropped.stderr);
  assert.equal((await jsonOf('deployment', 'web')).spec.template.spec.containers[0].env, [{ name: 'MODE', value: 'fast' }]);
});

test('kubectl patch --type json, merge and strategic; a patch that fails validation is refused as kube-apiserver does', async () => {
  assert.is(await ok('patch', 'deployment', 'web', '--type=json', '-p', '[{"op":"replace","path":"/spec/replicas","value":3}]'), 'deployment.apps/web patched\n');
  assert.is((await jsonOf('deployment', 'web')).spec.replicas, 3);
  await ok('patch', 'deployment', 'web', '--type=merge', '-p', '{"metadata":{"labels":{"tier":"front"}}}');
  assert.is((await jsonOf('deployment', 'web')).metadata.labels.tier, 'front');
  const bad = await kubectl(['patch', 'deployment', 'web', '--type=json', '-p', '[{"op":"test","path":"/spec/replicas","value":9}]']);
  assert.is(bad.code, 1);
  assert.match(bad.stderr, /testing value \/spec\/replicas failed/);
  const invalid = await kubectl(['patch', 'deployment', 'web', '--type=merge', '-p', '{"spec":{"replicas":-2}}']);
  assert.is(invalid.code, 1);
  assert.match(invalid.stderr, /Deployment "web" is invalid: spec\.replicas/);
  const noop = await ok('patch', 'deployment', 'web', '--type=merge', '-p', '{"metadata":{"labels":{"tier":"front"}}}');
  assert.is(noop, 'deployment.apps/web patched (no change)\n');
});

test('kubectl diff shows what apply would change (exit 1) and nothing once applied (exit 0); --dry-run=server stores nothing', async () => {
  const changed = await kubectl(['diff', '-f', '-'], deployment('flotilla/testbox:3'));
  assert.is(changed.code, 1, changed.stderr);
  assert.match(changed.stdout, /^-\s+image: flotilla\/testbox:2$/m);
  assert.match(changed.stdout, /^\+\s+image: flotilla\/testbox:3$/m);
  const dry = await kubectl(['apply', '--dry-run=server', '-f', '-'], deployment('flotilla/testbox:3'));
  assert.is(dry.stdout, 'deployment.apps/web configured (server dry run)\n', dry.stderr);
  assert.is((await jsonOf('deployment', 'web')).spec.template.spec.containers[0].image, 'flotilla/testbox:2');
  const dryCreate = await kubectl(['apply', '--dry-run=server', '-f', '-'], 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: ghost }\ndata: { a: "1" }\n');
  assert.is(dryCreate.stdout, 'configmap/ghost created (server dry run)\n', dryCreate.stderr);
  assert.is((await kubectl(['get', 'configmap', 'ghost'])).code, 1);
  assert.is((await kubectl(['apply', '-f', '-'], deployment('flotilla/testbox:2'))).stdout, 'deployment.apps/web configured\n', 'replicas back to 2');
  const same = await kubectl(['diff', '-f', '-'], deployment('flotilla/testbox:2'));
  assert.is(same.code, 0, `${same.stdout}${same.stderr}`);
  assert.is(same.stdout, '');
});

test('kubectl label and annotate, with --overwrite and removal', async () => {
  const applied = await kubectl(['apply', '-f', '-'], `apiVersion: v1\nkind: ConfigMap\nmetadata: { name: settings }\ndata: { mode: fast, level: "3" }\n---\n${deployment('flotilla/testbox:latest').replace(/\bweb\b/g, 'api')}`);
  assert.is(applied.code, 0, applied.stderr);
  assert.is(await ok('label', 'configmap', 'settings', 'team=edge'), 'configmap/settings labeled\n');
  const clash = await kubectl(['label', 'configmap', 'settings', 'team=core']);
  assert.is(clash.code, 1);
  assert.match(clash.stderr, /already has a value \(edge\), and --overwrite is false/);
  await ok('label', 'configmap', 'settings', 'team=core', '--overwrite');
  assert.is((await jsonOf('configmap', 'settings')).metadata.labels.team, 'core');
  await ok('label', 'configmap', 'settings', 'team-');
  assert.is((await jsonOf('configmap', 'settings')).metadata.labels?.team, undefined);
  assert.is(await ok('annotate', 'configmap', 'settings', 'owner=ops'), 'configmap/settings annotated\n');
  assert.is((await jsonOf('configmap', 'settings')).metadata.annotations.owner, 'ops');
});

test('kubectl scale through the scale subresource; --current-replicas is a precondition', async () => {
  assert.is(await ok('scale', 'deployment', 'web', '--replicas=4'), 'deployment.apps/web scaled\n');
  assert.is((await jsonOf('deployment', 'web')).spec.replicas, 4);
  const stale = await kubectl(['scale', 'deployment', 'web', '--replicas=1', '--current-replicas=2']);
  assert.is(stale.code, 1);
  assert.match(stale.stderr, /Expected replicas to be 2, was 4/);
});

test('kubectl edit with a scripted EDITOR writes the edited object; rollout restart stamps the pod template', async () => {
  const editor = join(cluster!.dir, 'editor.sh');
  writeFileSync(editor, '#!/bin/sh\nsed -i "s/mode: fast/mode: edited/" "$1"\n');
  chmodSync(editor, 0o755);
  const edited = await cluster!.kubectl(['edit', 'configmap', 'settings'], undefined, { EDITOR: editor, KUBE_EDITOR: editor });
  assert.is(edited.code, 0, edited.stderr);
  assert.is(edited.stdout, 'configmap/settings edited\n');
  assert.is((await jsonOf('configmap', 'settings')).data.mode, 'edited');
  assert.is(await ok('rollout', 'restart', 'deployment', 'web'), 'deployment.apps/web restarted\n');
  assert.match((await jsonOf('deployment', 'web')).spec.template.metadata.annotations['kubectl.kubernetes.io/restartedAt'], /^\d{4}-\d\d-\d\dT/);
});

test('kubectl delete --cascade: orphan leaves the ReplicaSets, foreground and background remove them', async () => {
  await eventually('web\'s ReplicaSets', async () => (await ok('get', 'rs', '-l', 'app=web', '-o', 'name')).trim() !== '');
  assert.is(await ok('delete', 'deployment', 'web', '--cascade=orphan'), 'deployment.apps "web" deleted\n');
  const orphans = (await jsonOf('rs', '-l', 'app=web')).items as { metadata: { ownerReferences?: unknown[] } }[];
  assert.ok(orphans.length > 0);
  for (const rs of orphans) assert.equal(rs.metadata.ownerReferences ?? [], [], 'an orphaned ReplicaSet has no owner');
  await ok('delete', 'rs', '-l', 'app=web');
  await eventually('api\'s ReplicaSet', async () => (await ok('get', 'rs', '-l', 'app=api', '-o', 'name')).trim() !== '');
  assert.is(await ok('delete', 'deployment', 'api', '--cascade=foreground'), 'deployment.apps "api" deleted\n');
  await eventually('api\'s ReplicaSet gone', async () => (await ok('get', 'rs', '-l', 'app=api', '-o', 'name')).trim() === '');
  assert.is((await kubectl(['get', 'deployment', 'api'])).code, 1);
});

test.run();
