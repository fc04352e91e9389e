// kubectl reads against Flotilla: version without a skew warning, discovery (api-resources, short names, the
// "all" category), get of every served kind as a server-side Table (normal and wide columns as kubectl prints
// them), -o yaml/json/name, several types at once, describe, and errors as kubectl prints Kubernetes' Status.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { allResources } from '../../api-types/index.js';
import { setUp } from '../support/set-up.js';
import { eventually } from '../support/eventually.js';
import { flotillaBin } from '../support/server-process.js';
import { runAsync, startKubectlCluster, type KubectlCluster } from './kubectl.js';

const MANIFESTS = `apiVersion: apps/v1
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
          image: flotilla/testbox:latest
          ports: [{ containerPort: 8080 }]
---
apiVersion: v1
kind: Service
metadata: { name: web }
spec:
  selector: { app: web }
  ports: [{ port: 80, targetPort: 8080 }]
---
apiVersion: v1
kind: ConfigMap
metadata: { name: settings }
data: { mode: fast, level: "3" }
`;

let cluster: KubectlCluster | undefined;
const kubectl = (...args: string[]) => cluster!.kubectl(args);
/** kubectl's output, after asserting that it exited 0 and wrote nothing on stderr. */
async function ok(...args: string[]): Promise<string> {
  const r = await kubectl(...args);
  assert.is(r.code, 0, `kubectl ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  assert.is(r.stderr, '', `kubectl ${args.join(' ')} wrote on stderr`);
  return r.stdout;
}
const headerOf = (table: string) => table.split('\n')[0]!.split(/\s{2,}/);

setUp(test, async () => {
  cluster = await startKubectlCluster();
  // With kubectl's default validation: the OpenAPI documents tell it that the server validates fields itself.
  const r = await cluster.kubectl(['apply', '-f', '-'], MANIFESTS);
  assert.is(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim().split('\n'), ['deployment.apps/web created', 'service/web created', 'configmap/settings created']);
  // The Deployment's ReplicaSet and pods, made by the controllers.
  await eventually('the Deployment\'s two pods', async () => (await ok('get', 'pods', '-o', 'name')).trim().split('\n').filter(Boolean).length === 2);
}, async () => { await cluster?.stop(); });

test('kubectl version: the server\'s Kubernetes version, no skew warning', async () => {
  const out = await ok('version');
  assert.match(out, /Server Version: v1\.32\.0\+flotilla-0\.1\.0/);
});

test('kubectl api-resources: every served resource with its short names, scope and kind', async () => {
  const out = await ok('api-resources', '--no-headers');
  for (const r of allResources) {
    const line = out.split('\n').find((l) => l.split(/\s+/)[0] === r.plural && l.includes(r.apiVersion));
    assert.ok(line, `${r.plural} missing from:\n${out}`);
    assert.match(line!, new RegExp(`${r.shortNames.length > 0 ? `${r.shortNames.join(',')}\\s+` : ''}${r.apiVersion.replace('.', '\\.')}\\s+${r.namespaced}\\s+${r.kind}$`));
  }
  assert.match(await ok('api-resources', '--categories', 'all', '-o', 'name'), /^deployments\.apps$/m);
});

test('kubectl get pods prints kubectl\'s columns; -o wide adds IP, NODE, NOMINATED NODE and READINESS GATES', async () => {
  const table = await ok('get', 'pods');
  assert.equal(headerOf(table), ['NAME', 'READY', 'STATUS', 'RESTARTS', 'AGE']);
  const rows = table.trim().split('\n').slice(1);
  assert.is(rows.length, 2);
  for (const row of rows) assert.match(row, /^web-[a-z0-9]+-[a-z0-9]{5}\s+0\/1\s+Pending\s+0\s+\d+s$/);
  assert.equal(headerOf(await ok('get', 'pods', '-o', 'wide')).slice(5, 9), ['IP', 'NODE', 'NOMINATED NODE', 'READINESS GATES']);
  assert.equal(headerOf(await ok('get', 'pods', '-A')).slice(0, 2), ['NAMESPACE', 'NAME']);
  assert.match(await ok('get', 'pods', '--show-labels'), /\sapp=web,pod-template-hash=[a-z0-9]+\n/);
  assert.match(await ok('get', 'po', '-l', 'app=web', '--no-headers'), /^web-/);
});

test('kubectl get deploy,svc: each type\'s table, names as TYPE/NAME; get all lists the workloads', async () => {
  const out = await ok('get', 'deploy,svc');
  assert.match(out, /^NAME\s+READY\s+UP-TO-DATE\s+AVAILABLE\s+AGE\ndeployment\.apps\/web\s+0\/2\s+2\s+0\s+\S+\n\nNAME\s+TYPE\s+CLUSTER-IP\s+EXTERNAL-IP\s+PORT\(S\)\s+AGE\n/);
  assert.match(out, /^service\/web\s+ClusterIP\s+10\.43\.\d+\.\d+\s+<none>\s+80\/TCP\s+\S+$/m);
  const all = await ok('get', 'all');
  for (const name of [/^pod\/web-/m, /^service\/web\s/m, /^deployment\.apps\/web\s/m, /^replicaset\.apps\/web-/m]) assert.match(all, name);
  assert.not.match(all, /configmap/);
  const wide = await ok('get', 'deploy', 'web', '-o', 'wide');
  assert.match(wide, /^NAME\s+READY\s+UP-TO-DATE\s+AVAILABLE\s+AGE\s+CONTAINERS\s+IMAGES\s+SELECTOR\nweb\s+0\/2\s+2\s+0\s+\S+\s+httpd\s+flotilla\/testbox:latest\s+app=web\n$/);
});

test('kubectl get of every served kind answers a table (or "No resources found")', async () => {
  for (const r of allResources) {
    const resource = r.group === '' ? r.plural : `${r.plural}.${r.group}`;
    const res = await kubectl('get', resource, '-A');
    assert.is(res.code, 0, `get ${resource}: ${res.stderr}`);
    assert.ok((r.namespaced ? /^NAMESPACE\s+(NAME|LAST SEEN)\s/ : /^NAME\s/).test(res.stdout) || /^No resources found/.test(res.stderr), `get ${resource}: ${res.stdout}${res.stderr}`);
  }
});

test('kubectl get -o yaml, json, name and jsonpath read the objects themselves', async () => {
  const json = JSON.parse(await ok('get', 'configmap', 'settings', '-o', 'json')) as { kind: string; data: Record<string, string> };
  assert.is(json.kind, 'ConfigMap');
  assert.equal(json.data, { level: '3', mode: 'fast' });
  assert.match(await ok('get', 'svc', 'web', '-o', 'yaml'), /^apiVersion: v1\nkind: Service\n/);
  const list = JSON.parse(await ok('get', 'deploy', '-o', 'json')) as { kind: string; items: unknown[] };
  assert.is(list.kind, 'List');
  assert.is(list.items.length, 1);
  assert.is(await ok('get', 'deploy/web', 'cm/settings', '-o', 'name'), 'deployment.apps/web\nconfigmap/settings\n');
  assert.is(await ok('get', 'deploy', 'web', '-o', 'jsonpath={.spec.replicas}'), '2');
});

test('kubectl describe reads deployments, services, pods and configmaps', async () => {
  assert.match(await ok('describe', 'deployment', 'web'), /^Name:\s+web\nNamespace:\s+default\n[\s\S]*Replicas:\s+2 desired/);
  assert.match(await ok('describe', 'svc/web'), /^Name:\s+web\n[\s\S]*Selector:\s+app=web\n[\s\S]*Port:\s+<unset>\s+80\/TCP\n/);
  assert.match(await ok('describe', 'pods', '-l', 'app=web'), /^Name:\s+web-[\s\S]*Status:\s+Pending/);
  assert.match(await ok('describe', 'cm', 'settings'), /^Name:\s+settings\n[\s\S]*mode:\n----\nfast/);
});

test('errors read as kubectl prints Kubernetes\' Status', async () => {
  const missing = await kubectl('get', 'pod', 'nope');
  assert.is(missing.code, 1);
  assert.is(missing.stderr.trim(), 'Error from server (NotFound): pods "nope" not found');
  assert.is((await kubectl('get', 'deploy', 'nope')).stderr.trim(), 'Error from server (NotFound): deployments.apps "nope" not found');
  // kubectl v1.32 looks for the namespace after a 404 and names it when it is missing.
  assert.is((await kubectl('get', 'deploy', 'web', '-n', 'elsewhere')).stderr.trim(), 'Error from server (NotFound): namespaces "elsewhere" not found');
  const exists = await cluster!.kubectl(['create', '-f', '-'], 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: settings }\n');
  assert.is(exists.code, 1);
  assert.is(exists.stderr.trim(), 'Error from server (AlreadyExists): error when creating "STDIN": configmaps "settings" already exists');
  const unknownType = await kubectl('get', 'widgets');
  assert.is(unknownType.stderr.trim(), 'error: the server doesn\'t have a resource type "widgets"');
});

test('flotilla get prints what kubectl get prints: get all, several types, --show-labels (one column module)', async () => {
  const info = cluster!.server.info;
  const cafile = `${cluster!.dir}/ca.crt`;
  const { writeFileSync } = await import('node:fs');
  writeFileSync(cafile, info.caPem);
  const flotilla = async (...args: string[]) => {
    const r = await runAsync(process.execPath, [flotillaBin, ...args, '--server', info.url, '--token', info.adminToken!, '--ca', cafile], { PATH: process.env.PATH ?? '', HOME: cluster!.dir });
    assert.is(r.code, 0, r.stderr);
    return r.stdout;
  };
  // Ages may differ by a second between the two: compare everything but the AGE cells.
  const withoutAges = (table: string) => table.replace(/\s+\d+[smhd]\d*[smh]?(?=\s|$)/gm, ' AGE');
  for (const args of [['get', 'all'], ['get', 'deploy,svc'], ['get', 'pods', '--show-labels'], ['get', 'pods', '-o', 'wide', '--no-headers']]) {
    assert.is(withoutAges(await flotilla(...args)).replace(/ +/g, ' '), withoutAges(await ok(...args)).replace(/ +/g, ' '), args.join(' '));
  }
});

test('kubectl explain reads the OpenAPI v3 schemas the server validates with', async () => {
  const containers = await ok('explain', 'pod.spec.containers');
  assert.match(containers, /^KIND:\s+Pod\nVERSION:\s+v1\n\nFIELD: containers <\[\]Object>/);
  assert.match(containers, /^ {2}image\t<string> -required-$/m);
  assert.match(containers, /^ {2}imagePullPolicy\t<string>\n {2}enum: Always, IfNotPresent, Never$/m);
  assert.match(await ok('explain', 'deployments.spec.replicas'), /^GROUP:\s+apps\nKIND:\s+Deployment\nVERSION:\s+v1\n\nFIELD: replicas <integer>/);
  const missing = await kubectl('explain', 'pod.spec.nope');
  assert.is(missing.code, 1);
  assert.match(missing.stderr, /field "nope" does not exist/);
});

test('kubectl apply and create leave field validation to the server, which refuses unknown fields', async () => {
  const r = await cluster!.kubectl(['apply', '-f', '-'], 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: strict }\nbogus: 1\n');
  assert.is(r.code, 1);
  assert.match(r.stderr, /unknown field "bogus"/);
  assert.is((await kubectl('get', 'cm', 'strict')).code, 1);
});

test('kubectl top finds the metrics API in discovery (a cluster without nodes has no node metrics yet)', async () => {
  const resources = await kubectl('api-resources', '--api-group=metrics.k8s.io', '-o', 'name');
  assert.equal(resources.stdout.trim().split('\n').sort(), ['nodes.metrics.k8s.io', 'pods.metrics.k8s.io']);
  const nodes = await kubectl('top', 'nodes');
  assert.not.match(nodes.stderr, /Metrics API not available/);
  assert.match(nodes.stderr, /metrics not available yet/, 'kubectl\'s words for an empty NodeMetricsList');
  const pods = await kubectl('top', 'pods', '-A');
  assert.not.match(pods.stderr, /Metrics API not available/);
  assert.match(pods.stderr, /metrics not available yet/, 'the pods exist, but no agent reported their usage');
});

test.run();
