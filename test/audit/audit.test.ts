// The audit log: audit.k8s.io/v1 Policy files read as Kubernetes reads them, rules matched as its policy checker
// matches them, one audit.k8s.io/v1 Event line per request from a real server (levels, Secrets capped at
// Metadata, refusals logged), and the log file's rotation.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditLogFile, DEFAULT_AUDIT_POLICY, matchingRule, parseAuditPolicy } from '../../server/api/middleware/audit.js';
import type { AuditAttributes } from '../../server/api/middleware/audit.js';
import { startInProcessServer, type InProcessServer } from '../support/in-process-server.js';
import { setUp } from '../support/set-up.js';
import { eventually } from '../support/eventually.js';
import { ApiClient, ApiClientError, pinnedFetch } from '../../client/client.js';

/** The policy of the Kubernetes audit documentation's example, trimmed to what these tests use. */
const POLICY = `
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages:
  - "RequestReceived"
rules:
  - level: RequestResponse
    resources:
    - group: ""
      resources: ["pods"]
  - level: Metadata
    resources:
    - group: ""
      resources: ["pods/log", "pods/status"]
  - level: None
    resources:
    - group: ""
      resources: ["configmaps"]
      resourceNames: ["controller-leader"]
  - level: None
    users: ["system:kube-proxy"]
    verbs: ["watch"]
    resources:
    - group: ""
      resources: ["endpoints", "services"]
  - level: None
    userGroups: ["system:authenticated"]
    nonResourceURLs:
    - "/api*"
    - "/version"
  - level: Request
    resources:
    - group: ""
      resources: ["configmaps"]
    namespaces: ["kube-system"]
  - level: RequestResponse
    resources:
    - group: ""
      resources: ["secrets", "configmaps"]
  - level: Request
    resources:
    - group: ""
    - group: "extensions"
  - level: Metadata
    omitStages:
      - "RequestReceived"
`;

const user = (over: Partial<AuditAttributes>): AuditAttributes => ({ user: 'alice', groups: ['system:authenticated'], verb: 'get', path: '/', ...over });
const core = (resource: string, extra: Partial<NonNullable<AuditAttributes['resource']>> = {}) => ({ resource: { group: '', resource, ...extra } });

test('a policy file as Kubernetes documents it: the first matching rule decides', () => {
  const policy = parseAuditPolicy(POLICY, 'policy.yaml');
  assert.equal(policy.omitStages, ['RequestReceived']);
  const level = (a: AuditAttributes) => matchingRule(policy, a)?.level ?? 'None';
  const cases: [string, AuditAttributes, string][] = [
    ['pods', user({ path: '/api/v1/namespaces/default/pods', ...core('pods', { namespace: 'default' }) }), 'RequestResponse'],
    ['pods/log', user(core('pods', { subresource: 'log', namespace: 'default', name: 'p' })), 'Metadata'],
    ['named configmap', user(core('configmaps', { namespace: 'kube-system', name: 'controller-leader' })), 'None'],
    ['other configmap in kube-system', user(core('configmaps', { namespace: 'kube-system', name: 'other' })), 'Request'],
    ['configmap elsewhere', user(core('configmaps', { namespace: 'default', name: 'other' })), 'RequestResponse'],
    ['kube-proxy watching services', user({ user: 'system:kube-proxy', verb: 'watch', ...core('services') }), 'None'],
    ['kube-proxy listing services', user({ user: 'system:kube-proxy', verb: 'list', ...core('services') }), 'Request'],
    ['/version, authenticated', user({ path: '/version' }), 'None'],
    ['/apis/apps, authenticated', user({ path: '/apis/apps' }), 'None'],
    ['/version, anonymous', user({ user: 'system:anonymous', groups: ['system:unauthenticated'], path: '/version' }), 'Metadata'],
    ['a core resource', user(core('nodes', { name: 'n1' })), 'Request'],
    ['an apps resource', user({ resource: { group: 'apps', resource: 'deployments', namespace: 'default' } }), 'Metadata'],
  ];
  for (const [what, attributes, want] of cases) assert.is(level(attributes), want, what);
  assert.is(matchingRule(DEFAULT_AUDIT_POLICY, user({}))?.level, 'Metadata');
  assert.is(matchingRule({ rules: [] }, user({})), undefined, 'no rule matching is level None');
});

test('resource patterns: "*", "*/subresource", "resource/*" and an empty group list', () => {
  const policy = parseAuditPolicy(JSON.stringify({
    apiVersion: 'audit.k8s.io/v1', kind: 'Policy',
    rules: [
      { level: 'Request', resources: [{ group: '', resources: ['*/exec'] }] },
      { level: 'RequestResponse', resources: [{ group: 'apps', resources: ['deployments/*'] }] },
      { level: 'Metadata', resources: [{ group: 'batch', resources: ['*'] }] },
      { level: 'None', resources: [{ group: 'batch' }] },
    ],
  }), 'json');
  const level = (a: AuditAttributes) => matchingRule(policy, a)?.level ?? 'None';
  assert.is(level(user(core('pods', { subresource: 'exec' }))), 'Request');
  assert.is(level(user(core('pods', { subresource: 'log' }))), 'None');
  assert.is(level(user({ resource: { group: 'apps', resource: 'deployments', subresource: 'scale' } })), 'RequestResponse');
  assert.is(level(user({ resource: { group: 'apps', resource: 'deployments' } })), 'RequestResponse', '"deployments/*" matches the resource itself too, as in Kubernetes');
  assert.is(level(user({ resource: { group: 'batch', resource: 'jobs' } })), 'Metadata');
});

test('a policy with an unknown field, level or stage is refused with its path', () => {
  const bad = (text: string, pattern: RegExp) => assert.throws(() => parseAuditPolicy(text, 'p.yaml'), (e: Error) => pattern.test(e.message));
  bad('apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Everything\n', /rules\[0\]\.level must be one of None, Metadata, Request, RequestResponse/);
  bad('apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n  user: [bob]\n', /rules\[0\]: unknown field "user"/);
  bad('apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: []\nomitStages: [Later]\n', /omitStages: unknown stage "Later"/);
  bad('apiVersion: v1\nkind: ConfigMap\nrules: []\n', /kind must be Policy/);
  bad('apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n  nonResourceURLs: ["/x"]\n  namespaces: [a]\n', /not both/);
});

test('the log file rotates by size, keeps maxBackup backups named as kube-apiserver names them, mode 0600', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-audit-rotate-'));
  try {
    let t = Date.parse('2026-03-01T10:00:00.000Z');
    const log = new AuditLogFile(join(dir, 'audit.log'), 100, 2, () => new Date(t));
    const line = (i: number) => JSON.stringify({ i, pad: 'x'.repeat(30) });
    for (let i = 0; i < 10; i++) { log.write(line(i)); t += 1000; }
    const backups = log.backups();
    log.close();
    assert.equal(backups.map((b) => b.slice(dir.length + 1)), ['audit-2026-03-01T10-00-06.000.log', 'audit-2026-03-01T10-00-08.000.log'], `backups: ${backups.join(', ')}`);
    const current = readFileSync(join(dir, 'audit.log'), 'utf8').trim().split('\n');
    assert.equal(current.map((l) => (JSON.parse(l) as { i: number }).i), [8, 9]);
    assert.ok(statSync(join(dir, 'audit.log')).size <= 100);
    assert.equal(readFileSync(backups[1]!, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { i: number }).i), [6, 7]);
    for (const f of [join(dir, 'audit.log'), ...backups]) assert.is(statSync(f).mode & 0o777, 0o600, f);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

let dir!: string;
let server!: InProcessServer;
let api!: ApiClient;
const logPath = () => join(dir, 'audit.log');
setUp(test, async () => {
  dir = mkdtempSync(join(tmpdir(), 'flotilla-audit-'));
  writeFileSync(join(dir, 'policy.yaml'), `
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
  - level: None
    nonResourceURLs: ["/healthz", "/readyz"]
  - level: RequestResponse
    resources:
    - group: ""
      resources: ["secrets"]
  - level: Request
    resources:
    - group: ""
      resources: ["configmaps"]
  - level: Metadata
`);
  server = await startInProcessServer(join(dir, 'data'), { audit: { path: logPath(), policyFile: join(dir, 'policy.yaml') } });
  api = new ApiClient(server.info.url, server.info.adminToken, { tls: { ca: server.info.caPem } });
}, async () => {
  api?.close();
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface AuditEvent {
  kind: string; apiVersion: string; level: string; auditID: string; stage: string; requestURI: string; verb: string;
  user: { username: string; groups: string[] }; sourceIPs: string[]; userAgent?: string;
  objectRef?: { resource: string; namespace?: string; name?: string; apiGroup?: string; apiVersion: string; subresource?: string };
  responseStatus: { code: number; reason?: string }; requestObject?: unknown; responseObject?: unknown;
  requestReceivedTimestamp: string; stageTimestamp: string;
}

function events(): AuditEvent[] {
  return readFileSync(logPath(), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as AuditEvent);
}

const find = (what: string, match: (e: AuditEvent) => boolean) => eventually(what, () => events().find(match));

test('one event per request, at the level the policy gives; a Secret never above Metadata', async () => {
  const value = 'audit-s3cr3t-5d1e6b';
  await api.request('POST', '/api/v1/namespaces/default/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'audited' }, data: { k: 'v' } });
  await api.request('POST', '/api/v1/namespaces/default/secrets', { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'hidden' }, stringData: { password: value } });
  await api.request('GET', '/api/v1/namespaces/default/secrets/hidden');
  await api.request('GET', '/apis/apps/v1/namespaces/default/deployments');
  const f = pinnedFetch({ ca: server.info.caPem });
  try {
    assert.is((await f(`${server.info.url}/api/v1/namespaces/default/pods`, { headers: { authorization: 'Bearer not-a-token', 'user-agent': 'audit-test/1.0' } })).status, 401);
    assert.is((await f(`${server.info.url}/healthz`)).status, 200);
  } finally {
    f.close();
  }
  const notFound = await api.request('GET', '/api/v1/namespaces/default/configmaps/missing').then(() => undefined, (e: unknown) => e);
  assert.ok(notFound instanceof ApiClientError && notFound.code === 404, String(notFound));

  const created = await find('the ConfigMap create', (e) => e.verb === 'create' && e.objectRef?.resource === 'configmaps');
  assert.is(created.kind, 'Event');
  assert.is(created.apiVersion, 'audit.k8s.io/v1');
  assert.is(created.level, 'Request');
  assert.is(created.stage, 'ResponseComplete');
  assert.match(created.auditID, /^[0-9a-f-]{36}$/);
  assert.is(created.requestURI, '/api/v1/namespaces/default/configmaps');
  assert.equal(created.objectRef, { resource: 'configmaps', namespace: 'default', apiVersion: 'v1' });
  assert.is(created.responseStatus.code, 201);
  assert.equal((created.requestObject as { data: unknown }).data, { k: 'v' });
  assert.is(created.responseObject, undefined, 'level Request has no response');
  assert.ok(created.user.groups.includes('system:authenticated'));
  assert.ok(created.sourceIPs.includes('127.0.0.1'), created.sourceIPs.join());
  assert.match(created.requestReceivedTimestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
  assert.ok(created.stageTimestamp >= created.requestReceivedTimestamp);

  const secretWrite = await find('the Secret create', (e) => e.verb === 'create' && e.objectRef?.resource === 'secrets');
  assert.is(secretWrite.level, 'Metadata', 'capped at Metadata although the policy says RequestResponse');
  assert.is(secretWrite.requestObject, undefined);
  const secretRead = await find('the Secret get', (e) => e.verb === 'get' && e.objectRef?.name === 'hidden');
  assert.is(secretRead.responseObject, undefined);
  assert.not.ok(readFileSync(logPath(), 'utf8').includes(value), 'no Secret value in the log');
  assert.not.ok(readFileSync(logPath(), 'utf8').includes(Buffer.from(value).toString('base64')));

  const deployments = await find('the Deployment list', (e) => e.verb === 'list' && e.objectRef?.resource === 'deployments');
  assert.is(deployments.level, 'Metadata');
  assert.equal(deployments.objectRef, { resource: 'deployments', namespace: 'default', apiGroup: 'apps', apiVersion: 'v1' });

  const refused = await find('the refused request', (e) => e.responseStatus.code === 401);
  assert.equal(refused.user, { username: 'system:anonymous', groups: ['system:unauthenticated'] });
  assert.is(refused.userAgent, 'audit-test/1.0');
  assert.is(refused.verb, 'list');
  const missing = await find('the 404', (e) => e.responseStatus.code === 404);
  assert.is(missing.responseStatus.reason, 'NotFound');
  assert.not.ok(events().some((e) => e.requestURI === '/healthz'), 'level None writes nothing');
  assert.is(statSync(logPath()).mode & 0o777, 0o600);
});

test.run();
