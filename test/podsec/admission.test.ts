// Pod Security admission and the securityContext rules through the API (real SQLite, the hono app in process):
// the namespace labels, the cluster default, Kubernetes' refusal message, warnings as Warning headers, workload
// templates warned about and never refused, and the pod fields no Flotilla node can honour refused by name.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { createApp } from '../../server/api/app.js';
import { identity, MASTERS_GROUP, staticTokens } from '../../server/api/middleware/auth.js';
import { SqliteStore } from '../../server/store/sqlite-store.js';
import { LocalProposer } from '../../server/store/proposer.js';
import { ObjectService } from '../../server/objects/service.js';
import { warningHeader } from '../../server/api/middleware/admission-warnings.js';
import { DEFAULT_AUDIT_POLICY } from '../../server/api/middleware/audit.js';

const TOKEN = 'test-token-0123456789';
let dir: string | undefined;
let store: SqliteStore | undefined;
let app: ReturnType<typeof createApp>;
/** The audit events the app writes, parsed. */
const auditEvents: { requestURI: string; verb: string; annotations?: Record<string, string> }[] = [];

test.before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'flotilla-podsec-'));
  store = new SqliteStore({ path: join(dir, 'state.db'), historyWindow: 50 });
  const proposer = new LocalProposer(store);
  for (const name of ['default', 'kube-system']) {
    await proposer.propose({ op: 'create', resource: 'namespaces', uid: randomUUID(), now: new Date().toISOString(), object: { apiVersion: 'v1', kind: 'Namespace', metadata: { name } } });
    await proposer.propose({ op: 'create', resource: 'serviceaccounts', uid: randomUUID(), now: new Date().toISOString(), object: { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default', namespace: name } } });
  }
  app = createApp({
    objects: new ObjectService(store, proposer), readBarrier: async () => {},
    authenticate: staticTokens({ [TOKEN]: identity('admin', [MASTERS_GROUP]) }),
    version: { flotilla: '0.1.0', gitVersion: 'v0.1.0' }, readiness: () => [],
    audit: { policy: DEFAULT_AUDIT_POLICY, sink: { write: (line) => auditEvents.push(JSON.parse(line)) } },
  });
});
test.after(() => {
  store?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Answer { status: number; json: any; warnings: string[] } // eslint-disable-line @typescript-eslint/no-explicit-any
async function call(method: string, path: string, body?: unknown): Promise<Answer> {
  const res = await app.request(path, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, ...(body !== undefined ? { 'content-type': method === 'PATCH' ? 'application/merge-patch+json' : 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const warning = res.headers.get('warning');
  return { status: res.status, json: await res.json(), warnings: warning === null ? [] : warning.split(/, (?=299 )/) };
}

async function namespace(name: string, labels: Record<string, string>): Promise<void> {
  const r = await call('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } });
  assert.is(r.status, 201, JSON.stringify(r.json));
  // The account the serviceaccount controller would make (it does not run here).
  const sa = await call('POST', `/api/v1/namespaces/${name}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default' } });
  assert.is(sa.status, 201, JSON.stringify(sa.json));
}

const hostPathPod = (name: string) => ({
  apiVersion: 'v1', kind: 'Pod', metadata: { name },
  spec: { containers: [{ name: 'main', image: 'flotilla/testbox:latest', volumeMounts: [{ name: 'h', mountPath: '/host' }] }], volumes: [{ name: 'h', hostPath: { path: '/' } }] },
});
const plainPod = (name: string, container: Record<string, unknown> = {}, spec: Record<string, unknown> = {}) => ({
  apiVersion: 'v1', kind: 'Pod', metadata: { name }, spec: { containers: [{ name: 'main', image: 'flotilla/testbox:latest', ...container }], ...spec },
});

function refused(r: Answer, code: number, message: string): void {
  assert.is(r.status, code, JSON.stringify(r.json));
  assert.is(r.json.message, message);
}

test('the default namespace is baseline: a hostPath pod is refused with Kubernetes\' message', async () => {
  refused(await call('POST', '/api/v1/namespaces/default/pods', hostPathPod('h')), 403, 'pods "h" is forbidden: violates PodSecurity "baseline:latest": hostPath volumes (volume "h")');
  assert.is((await call('GET', '/api/v1/namespaces/default/pods/h')).status, 404, 'nothing was stored');
});

test('kube-system is privileged by default, and a namespace labelled privileged takes any pod', async () => {
  assert.is((await call('POST', '/api/v1/namespaces/kube-system/pods', hostPathPod('h'))).status, 201);
  await namespace('infra', { 'pod-security.kubernetes.io/enforce': 'privileged', 'pod-security.kubernetes.io/warn': 'privileged', 'pod-security.kubernetes.io/audit': 'privileged' });
  const r = await call('POST', '/api/v1/namespaces/infra/pods', plainPod('p', { securityContext: { privileged: true } }, { hostNetwork: true }));
  assert.is(r.status, 201, JSON.stringify(r.json));
  assert.equal(r.warnings, []);
});

test('a restricted namespace refuses a hostPath pod, naming every violation in Kubernetes\' order', async () => {
  await namespace('locked', { 'pod-security.kubernetes.io/enforce': 'restricted' });
  refused(await call('POST', '/api/v1/namespaces/locked/pods', hostPathPod('h')), 403, 'pods "h" is forbidden: violates PodSecurity "restricted:latest": '
    + 'allowPrivilegeEscalation != false (container "main" must set securityContext.allowPrivilegeEscalation=false), '
    + 'unrestricted capabilities (container "main" must set securityContext.capabilities.drop=["ALL"]), '
    + 'restricted volume types (volume "h" uses restricted volume type "hostPath"), '
    + 'runAsNonRoot != true (pod or container "main" must set securityContext.runAsNonRoot=true), '
    + 'seccompProfile (pod or container "main" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")');
  const ok = await call('POST', '/api/v1/namespaces/locked/pods', plainPod('ok', {
    securityContext: { runAsNonRoot: true, runAsUser: 1000, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' } },
  }));
  assert.is(ok.status, 201, JSON.stringify(ok.json));
});

test('audit: the enforce policy and the audit level\'s violations are annotations of the request\'s audit event', async () => {
  await namespace('audited', { 'pod-security.kubernetes.io/audit': 'restricted' });
  assert.is((await call('POST', '/api/v1/namespaces/audited/pods', plainPod('p'))).status, 201);
  const event = auditEvents.find((e) => e.verb === 'create' && e.requestURI === '/api/v1/namespaces/audited/pods');
  assert.ok(event, JSON.stringify(auditEvents.map((e) => e.requestURI)));
  assert.is(event!.annotations?.['pod-security.kubernetes.io/enforce-policy'], 'baseline:latest');
  assert.match(event!.annotations?.['pod-security.kubernetes.io/audit-violations'] ?? '', /^would violate PodSecurity "restricted:latest": allowPrivilegeEscalation != false \(container "main"/);
});

test('warn: an allowed pod that breaks the warn level gets a Warning header (299) as kube-apiserver sends it', async () => {
  await namespace('warned', { 'pod-security.kubernetes.io/enforce': 'baseline', 'pod-security.kubernetes.io/warn': 'restricted', 'pod-security.kubernetes.io/warn-version': 'v1.30' });
  const r = await call('POST', '/api/v1/namespaces/warned/pods', plainPod('p', { securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, runAsNonRoot: true } }));
  assert.is(r.status, 201);
  assert.equal(r.warnings, [warningHeader('would violate PodSecurity "restricted:v1.30": seccompProfile (pod or container "main" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")')]);
  assert.is(r.warnings[0], '299 - "would violate PodSecurity \\"restricted:v1.30\\": seccompProfile (pod or container \\"main\\" must set securityContext.seccompProfile.type to \\"RuntimeDefault\\" or \\"Localhost\\")"');
});

test('workload templates are warned about, never refused; their pods are refused when made', async () => {
  const deployment = {
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web' },
    spec: { selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' } }, spec: hostPathPod('x').spec } },
  };
  const r = await call('POST', '/apis/apps/v1/namespaces/default/deployments', deployment);
  assert.is(r.status, 201, JSON.stringify(r.json));
  assert.equal(r.warnings, [warningHeader('would violate PodSecurity "baseline:latest": hostPath volumes (volume "h")')]);
  const cron = {
    apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name: 'nightly' },
    spec: { schedule: '0 3 * * *', jobTemplate: { spec: { template: { spec: { ...plainPod('x', { securityContext: { privileged: true } }).spec, restartPolicy: 'OnFailure' } } } } },
  };
  const cj = await call('POST', '/apis/batch/v1/namespaces/default/cronjobs', cron);
  assert.is(cj.status, 201, JSON.stringify(cj.json));
  assert.equal(cj.warnings, [warningHeader('would violate PodSecurity "baseline:latest": privileged (container "main" must not set securityContext.privileged=true)')]);
});

test('a pod update is evaluated only when it changes an image; an unchanged pod stays', async () => {
  await namespace('tightened', {});
  const created = await call('POST', '/api/v1/namespaces/tightened/pods', plainPod('p', { ports: [{ containerPort: 80 }] }));
  assert.is(created.status, 201);
  const labelled = await call('PATCH', '/api/v1/namespaces/tightened', { metadata: { labels: { 'pod-security.kubernetes.io/enforce': 'restricted' } } });
  assert.is(labelled.status, 200, JSON.stringify(labelled.json));
  const relabel = await call('PATCH', '/api/v1/namespaces/tightened/pods/p', { metadata: { labels: { tier: 'web' } } });
  assert.is(relabel.status, 200, JSON.stringify(relabel.json));
  const image = await call('PATCH', '/api/v1/namespaces/tightened/pods/p', { spec: { containers: [{ name: 'main', image: 'flotilla/testbox:2' }] } });
  assert.is(image.status, 403, JSON.stringify(image.json));
  assert.match(image.json.message, /^pods "p" is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false/);
});

test('namespace labels that do not parse are refused, naming the label', async () => {
  const r = await call('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'typo', labels: { 'pod-security.kubernetes.io/enforce': 'strict' } } });
  refused(r, 422, 'Namespace "typo" is invalid: metadata.labels["pod-security.kubernetes.io/enforce"]: Invalid value: "strict": must be one of privileged, baseline, restricted');
  const v = await call('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'typo', labels: { 'pod-security.kubernetes.io/warn-version': '1.30' } } });
  refused(v, 422, 'Namespace "typo" is invalid: metadata.labels["pod-security.kubernetes.io/warn-version"]: Invalid value: "1.30": must be "latest" or "v1.x"');
});

test('subPath out of the volume is refused as Kubernetes refuses it', async () => {
  const pod = (subPath: string) => plainPod('sub', { volumeMounts: [{ name: 'e', mountPath: '/data', subPath }] }, { volumes: [{ name: 'e', emptyDir: {} }] });
  const up = await call('POST', '/api/v1/namespaces/default/pods', pod('../..'));
  assert.is(up.status, 422);
  assert.equal(up.json.details.causes, [{ field: 'spec.containers[0].volumeMounts[0].subPath', message: "must not contain '..'" }]);
  const abs = await call('POST', '/api/v1/namespaces/default/pods', pod('/etc'));
  assert.equal(abs.json.details.causes, [{ field: 'spec.containers[0].volumeMounts[0].subPath', message: 'must be a relative path' }]);
  assert.is((await call('POST', '/api/v1/namespaces/default/pods', pod('a/b..c/d'))).status, 201, 'a name with dots is not ".."');
});

test('what no Flotilla node can honour is refused by field, never ignored', async () => {
  const cases: [Record<string, unknown>, Record<string, unknown>, string, RegExp][] = [
    [{ securityContext: { seLinuxOptions: { level: 's0:c123,c456' } } }, {}, 'spec.containers[0].securityContext.seLinuxOptions', /is not supported/],
    [{}, { securityContext: { windowsOptions: { hostProcess: true } } }, 'spec.securityContext.windowsOptions', /is not supported/],
    [{ securityContext: { seccompProfile: { type: 'Localhost', localhostProfile: 'my.json' } } }, {}, 'spec.containers[0].securityContext.seccompProfile.type', /"Localhost" is not supported/],
    [{ securityContext: { appArmorProfile: { type: 'Localhost', localhostProfile: 'p' } } }, {}, 'spec.containers[0].securityContext.appArmorProfile.type', /"Localhost" is not supported/],
    [{ securityContext: { procMount: 'Unmasked' } }, {}, 'spec.containers[0].securityContext.procMount', /"Unmasked" is not supported/],
    [{ securityContext: { privileged: true, allowPrivilegeEscalation: false } }, {}, 'spec.containers[0].securityContext', /cannot set `allowPrivilegeEscalation` to false and `privileged` to true/],
    [{}, { securityContext: { sysctls: [{ name: 'Kernel.X', value: '1' }] } }, 'spec.securityContext.sysctls[0].name', /must have at most 253 characters/],
  ];
  for (const [container, spec, field, message] of cases) {
    const r = await call('POST', '/api/v1/namespaces/kube-system/pods', plainPod('x', container, spec));
    assert.is(r.status, 422, JSON.stringify(r.json));
    const cause = r.json.details.causes.find((c: { field: string }) => c.field === field);
    assert.ok(cause, `${field} in ${JSON.stringify(r.json.details.causes)}`);
    assert.match(cause.message, message);
  }
});

test.run();
