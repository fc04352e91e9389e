// `kubectl auth can-i` (a SelfSubjectAccessReview, and with --list a SelfSubjectRulesReview, both sent in
// Kubernetes' protobuf envelope) for a user RBAC restricts: a user token bound to `view` in one namespace only.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { request } from 'node:https';
import { setUp } from '../support/set-up.js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { flotillaBin } from '../support/server-process.js';
import { runAsync, startKubectlCluster, type KubectlCluster } from './kubectl.js';

let cluster: KubectlCluster | undefined;
let token = '';

/** A JSON request to the cluster's API with the admin token. */
function admin(method: string, path: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const info = cluster!.server.info;
  const url = new URL(path, info.url);
  return new Promise((resolve, reject) => {
    const req = request(url, { method, ca: info.caPem, headers: { authorization: `Bearer ${info.adminToken}`, 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as Record<string, unknown> }));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

const asJane = (args: string[]) => cluster!.kubectl([...args, '--token', token]);

setUp(test, async () => {
  cluster = await startKubectlCluster();
  const made = await admin('POST', '/apis/flotilla.io/v1/usertokens', { user: 'jane', groups: ['qa'] });
  assert.is(made.status, 201, JSON.stringify(made.json));
  token = made.json.token as string;
  const binding = await admin('POST', '/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings', {
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'qa-view', namespace: 'default' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'view' },
    subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'qa' }],
  });
  assert.is(binding.status, 201, JSON.stringify(binding.json));
}, async () => { await cluster?.stop(); });

test('can-i answers yes (exit 0) for what view grants in its namespace, no (exit 1) elsewhere and for writes', async () => {
  for (const [args, answer] of [
    [['list', 'pods', '-n', 'default'], 'yes'],
    [['get', 'deployments.apps', '-n', 'default'], 'yes'],
    [['get', 'pods', '--subresource=log', '-n', 'default'], 'yes'],
    [['delete', 'pods', '-n', 'default'], 'no'],
    [['create', 'pods', '--subresource=exec', '-n', 'default'], 'no'],
    [['list', 'pods', '-n', 'kube-system'], 'no'],
    [['get', 'secrets', '-n', 'default'], 'no'],
  ] as const) {
    const r = await asJane(['auth', 'can-i', ...args]);
    assert.is(r.stdout.trim(), answer, `can-i ${args.join(' ')}: ${r.stdout}${r.stderr}`);
    assert.is(r.code, answer === 'yes' ? 0 : 1, `exit code of can-i ${args.join(' ')}`);
  }
  const admin = await cluster!.kubectl(['auth', 'can-i', 'delete', 'nodes']);
  assert.is(admin.stdout.trim(), 'yes', 'the admin (system:masters) may do anything');
});

test('can-i --list shows the rules of view in the namespace', async () => {
  const r = await asJane(['auth', 'can-i', '--list', '-n', 'default']);
  assert.is(r.code, 0, r.stderr);
  const podsLine = r.stdout.split('\n').find((l) => /^pods\s/.test(l));
  assert.ok(podsLine, r.stdout);
  assert.match(podsLine!, /\[get list watch\]/);
  assert.not.match(r.stdout, /^secrets\s/m, 'view does not read Secrets');
  assert.match(r.stdout, /selfsubjectaccessreviews\.authorization\.k8s\.io\s.*\[create\]/, 'system:basic-user is in every list');
});

test('flotilla auth can-i and whoami give the same answers as kubectl', async () => {
  const info = cluster!.server.info;
  const cafile = join(cluster!.dir, 'ca.pem');
  writeFileSync(cafile, info.caPem);
  const flotilla = (args: string[]) => runAsync(process.execPath, [flotillaBin, 'auth', ...args, '--server', info.url, '--token', token, '--ca', cafile], { PATH: process.env.PATH ?? '', HOME: cluster!.dir });
  for (const [args, answer] of [
    [['can-i', 'list', 'pods', '-n', 'default'], 'yes'],
    [['can-i', 'get', 'deploy/web', '-n', 'default'], 'yes'],
    [['can-i', 'create', 'pods', '--subresource', 'exec', '-n', 'default'], 'no'],
    [['can-i', 'list', 'pods', '-n', 'kube-system'], 'no'],
    [['can-i', 'get', '/version'], 'yes'],
  ] as const) {
    const r = await flotilla([...args]);
    assert.is(r.stdout.trim(), answer, `flotilla auth ${args.join(' ')}: ${r.stderr}`);
    assert.is(r.code, answer === 'yes' ? 0 : 1);
  }
  const list = await flotilla(['can-i', '--list', '-n', 'default']);
  assert.is(list.code, 0, list.stderr);
  assert.match(list.stdout, /^pods\s+\[\]\s+\[\]\s+\[get list watch\]/m);
  const whoami = await flotilla(['whoami']);
  assert.match(whoami.stdout, /Username\s+jane/);
  assert.match(whoami.stdout, /Groups\s+\[qa system:authenticated\]/);
  const bad = await flotilla(['can-i', 'get', 'widgets']);
  assert.is(bad.code, 2, 'a usage error');
  assert.match(bad.stderr, /doesn't have a resource type "widgets"/);
});

test.run();
