// Hostile requests against a running server (server/run.ts in this process, over HTTPS): each case is one
// request, the 4xx Kubernetes answers it with (code, reason and message), and a check that what it aimed at is
// as it was: an object it would have created does not exist, an object it would have changed is unchanged.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pinnedFetch } from '../../client/client.js';
import { startInProcessServer, type InProcessServer } from '../support/in-process-server.js';
import { setUp } from '../support/set-up.js';

const NS = 'hostile';
const BASE = `/api/v1/namespaces/${NS}`;
let srv: InProcessServer | undefined;
let dir = '';
let fetchTls: ReturnType<typeof pinnedFetch> | undefined;

interface Answer { status: number; text: string; json: Record<string, unknown> }

async function call(method: string, path: string, body?: string, contentType = 'application/json'): Promise<Answer> {
  const res = await fetchTls!(`${srv!.info.url}${path}`, {
    method, headers: { authorization: `Bearer ${srv!.info.adminToken}`, 'content-type': contentType }, ...(body !== undefined ? { body } : {}),
  });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try { json = JSON.parse(text) as Record<string, unknown>; } catch { /* a stream or plain text */ }
  return { status: res.status, text, json };
}

const must = async (method: string, path: string, body: unknown): Promise<Record<string, unknown>> => {
  const a = await call(method, path, JSON.stringify(body), method === 'PATCH' ? mergePatch : undefined);
  assert.ok(a.status < 300, `${method} ${path}: ${a.status} ${a.text}`);
  return a.json;
};

/** An object as a refused write must leave it: everything but what controllers may change meanwhile (status, resourceVersion). */
async function stateOf(path: string): Promise<string> {
  const a = await call('GET', path);
  if (a.status === 404) return 'absent';
  assert.is(a.status, 200, a.text);
  const { status: _status, metadata, ...rest } = a.json as { status?: unknown; metadata: Record<string, unknown> };
  const { resourceVersion: _rv, ...meta } = metadata;
  return JSON.stringify({ ...rest, metadata: meta });
}

/** Sends a hostile request: it gets `code` with `reason` and a message matching `message`, and `target` is unchanged. */
async function refused(o: { method: string; path: string; body?: string; contentType?: string; code: number; reason: string; message: RegExp; target: string }): Promise<void> {
  const before = await stateOf(o.target);
  const a = await call(o.method, o.path, o.body, o.contentType);
  assert.is(a.status, o.code, `${o.method} ${o.path.slice(0, 120)}: ${a.text.slice(0, 400)}`);
  assert.is(a.json.kind, 'Status', a.text.slice(0, 400));
  assert.is(a.json.reason, o.reason, a.text.slice(0, 400));
  assert.match(String(a.json.message), o.message);
  assert.is(await stateOf(o.target), before, `${o.target} is unchanged`);
}

const configMap = (name: string, extra: Record<string, unknown> = {}) => JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, ...extra });
const mergePatch = 'application/merge-patch+json';

setUp(test, async () => {
  dir = mkdtempSync(join(tmpdir(), 'flotilla-hostile-'));
  srv = await startInProcessServer(dir);
  fetchTls = pinnedFetch({ ca: srv.info.caPem });
  await must('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
  await must('POST', `${BASE}/configmaps`, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'plain' }, data: { k: 'v' } });
  await must('POST', `${BASE}/configmaps`, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'frozen' }, data: { k: 'v' }, immutable: true });
  await must('POST', `${BASE}/secrets`, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 's' }, data: { k: 'dg==' } });
  await must('POST', `${BASE}/pods`, { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'bound' }, spec: { nodeName: 'n1', containers: [{ name: 'c', image: 'flotilla/testbox:latest' }] } });
  await must('POST', `${BASE}/services`, { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web' }, spec: { selector: { app: 'web' }, ports: [{ port: 80 }] } });
  await must('POST', `/apis/apps/v1/namespaces/${NS}/replicasets`, {
    apiVersion: 'apps/v1', kind: 'ReplicaSet', metadata: { name: 'rs' },
    spec: { replicas: 0, selector: { matchLabels: { app: 'a' } }, template: { metadata: { labels: { app: 'a' } }, spec: { containers: [{ name: 'c', image: 'flotilla/testbox:latest' }] } } },
  });
}, async () => {
  fetchTls?.close();
  await srv?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('a merge patch nested 100,000 deep gets 400, and so do deep JSON and YAML bodies (YAML that would exhaust the parser included)', async () => {
  const deepPatch = '{"metadata":'.repeat(100_000) + '{}' + '}'.repeat(100_000);
  await refused({ method: 'PATCH', path: `${BASE}/configmaps/plain`, body: deepPatch, contentType: mergePatch, code: 400, reason: 'BadRequest', message: /nested too deeply: objects and arrays may nest at most 100 levels/, target: `${BASE}/configmaps/plain` });
  const deepArray = `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"deep"},"data":{"k":${'['.repeat(101)}${']'.repeat(101)}}}`;
  await refused({ method: 'POST', path: `${BASE}/configmaps`, body: deepArray, code: 400, reason: 'BadRequest', message: /nested too deeply/, target: `${BASE}/configmaps/deep` });
  for (const yaml of ['['.repeat(5000) + ']'.repeat(5000), `${'- '.repeat(1500)}x`, `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: deep}\ndata: {k: ${'{a: '.repeat(200)}1${'}'.repeat(200)}}`]) {
    await refused({ method: 'POST', path: `${BASE}/configmaps`, body: yaml, contentType: 'application/yaml', code: 400, reason: 'BadRequest', message: /nested too deeply/, target: `${BASE}/configmaps/deep` });
  }
});

test('malformed %-escapes in the path or the query get 400 naming the escape', async () => {
  await refused({ method: 'GET', path: `${BASE}/configmaps/%zz`, code: 400, reason: 'BadRequest', message: /^invalid URL escape "%zz"$/, target: `${BASE}/configmaps/plain` });
  await refused({ method: 'DELETE', path: `${BASE}/configmaps/pl%E0%A4ain`, code: 400, reason: 'BadRequest', message: /^invalid URL escape/, target: `${BASE}/configmaps/plain` });
  await refused({ method: 'GET', path: `${BASE}/pods?labelSelector=a%3`, code: 400, reason: 'BadRequest', message: /^invalid URL escape "%3"$/, target: `${BASE}/pods/bound` });
});

test('duplicate JSON keys are refused as kube-apiserver\'s strict decoding refuses them, naming the field; so is a "__proto__" key, which would vanish', async () => {
  await refused({
    method: 'POST', path: `${BASE}/configmaps`, body: '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"dup-a","name":"dup-b"}}',
    code: 400, reason: 'BadRequest', message: /^strict decoding error: duplicate field "metadata\.name"$/, target: `${BASE}/configmaps/dup-b`,
  });
  await refused({
    method: 'PATCH', path: `${BASE}/configmaps/plain`, body: '{"data":{"k":"one","\\u006b":"two"}}', contentType: mergePatch,
    code: 400, reason: 'BadRequest', message: /duplicate field "data\.k"/, target: `${BASE}/configmaps/plain`,
  });
  await refused({
    method: 'POST', path: `${BASE}/configmaps`, body: '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"proto","labels":{"__proto__":"x"}}}',
    code: 400, reason: 'BadRequest', message: /field "metadata\.labels\.__proto__" is not accepted/, target: `${BASE}/configmaps/proto`,
  });
  await refused({
    method: 'DELETE', path: `${BASE}/configmaps/plain`, body: '{"gracePeriodSeconds":0,"gracePeriodSeconds":5}',
    code: 400, reason: 'BadRequest', message: /duplicate field "gracePeriodSeconds"/, target: `${BASE}/configmaps/plain`,
  });
});

test('Kubernetes\' size limits: annotations 256 KiB, ConfigMap and Secret data 1 MiB, an object 1.5 MiB, a body 3 MiB', async () => {
  await refused({
    method: 'POST', path: `${BASE}/configmaps`, body: configMap('big-annotation', { metadata: { name: 'big-annotation', annotations: { a: 'x'.repeat(1_000_000) } } }),
    code: 422, reason: 'Invalid', message: /metadata\.annotations: Too long: must have at most 262144 bytes/, target: `${BASE}/configmaps/big-annotation`,
  });
  await refused({
    method: 'PATCH', path: `${BASE}/configmaps/plain`, body: JSON.stringify({ metadata: { annotations: { a: 'x'.repeat(200_000), b: 'é'.repeat(40_000) } } }), contentType: mergePatch,
    code: 422, reason: 'Invalid', message: /metadata\.annotations: Too long: must have at most 262144 bytes/, target: `${BASE}/configmaps/plain`,
  });
  await refused({
    method: 'POST', path: `${BASE}/configmaps`, body: configMap('big', { data: { a: 'x'.repeat(2_900_000) } }),
    code: 422, reason: 'Invalid', message: /^ConfigMap "big" is invalid: Too long: must have at most 1048576 bytes$/, target: `${BASE}/configmaps/big`,
  });
  await refused({
    method: 'POST', path: `${BASE}/configmaps`, body: configMap('big', { data: { a: 'x'.repeat(600_000) }, binaryData: { b: Buffer.alloc(600_000).toString('base64') } }),
    code: 422, reason: 'Invalid', message: /Too long: must have at most 1048576 bytes/, target: `${BASE}/configmaps/big`,
  });
  await refused({
    method: 'POST', path: `${BASE}/secrets`, body: JSON.stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'big' }, data: { a: Buffer.alloc(1024 * 1024 + 1).toString('base64') } }),
    code: 422, reason: 'Invalid', message: /^Secret "big" is invalid: data: Too long: must have at most 1048576 bytes$/, target: `${BASE}/secrets/big`,
  });
  const args = Array.from({ length: 20 }, () => 'y'.repeat(100_000));
  await refused({
    method: 'POST', path: `${BASE}/pods`, body: JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'big' }, spec: { containers: [{ name: 'c', image: 'x', args }] } }),
    code: 413, reason: 'RequestEntityTooLarge', message: /^Request entity too large: Pod "big" is \d+ bytes as stored, more than the 1572864 .*etcdserver: request is too large/, target: `${BASE}/pods/big`,
  });
  await refused({
    method: 'POST', path: `${BASE}/configmaps`, body: configMap('big', { data: { a: 'x'.repeat(3_200_000) } }),
    code: 413, reason: 'RequestEntityTooLarge', message: /^Request entity too large: limit is 3145728$/, target: `${BASE}/configmaps/big`,
  });
  // Just under the bounds is fine: 1 MiB of Secret data is stored.
  await must('POST', `${BASE}/secrets`, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'just-fits' }, data: { a: Buffer.alloc(1024 * 1024).toString('base64') } });
});

test('labels, annotation keys and names follow Kubernetes\' rules per kind', async () => {
  const cases: [string, string, RegExp, string][] = [
    [`${BASE}/configmaps`, configMap('l1', { metadata: { name: 'l1', labels: { app: 'v'.repeat(64) } } }), /metadata\.labels\.app: value "v+" must be no more than 63 characters/, `${BASE}/configmaps/l1`],
    [`${BASE}/configmaps`, configMap('l2', { metadata: { name: 'l2', labels: { 'Bad_Prefix/x': 'y' } } }), /prefix/, `${BASE}/configmaps/l2`],
    [`${BASE}/configmaps`, configMap('l3', { metadata: { name: 'l3', annotations: { [`${'k'.repeat(64)}`]: 'y' } } }), /name part must be no more than 63 characters/, `${BASE}/configmaps/l3`],
    [`${BASE}/configmaps`, configMap('Upper'), /metadata\.name: "Upper" must consist of lowercase/, `${BASE}/configmaps/Upper`],
    [`${BASE}/services`, JSON.stringify({ apiVersion: 'v1', kind: 'Service', metadata: { name: '1web' }, spec: { ports: [{ port: 80 }] } }), /metadata\.name: "1web" .*start with a letter/, `${BASE}/services/1web`],
    [`${BASE}/services`, JSON.stringify({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'a.b' }, spec: { ports: [{ port: 80 }] } }), /metadata\.name: "a\.b"/, `${BASE}/services/a.b`],
    ['/api/v1/namespaces', JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'a.b' } }), /metadata\.name: "a\.b"/, '/api/v1/namespaces/a.b'],
  ];
  for (const [path, body, message, target] of cases) await refused({ method: 'POST', path, body, code: 422, reason: 'Invalid', message, target });
  // A dotted name is a DNS subdomain, which a ConfigMap may have.
  await must('POST', `${BASE}/configmaps`, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a.b' } });
});

test('a bound pod keeps its node and its spec; images and added tolerations may change', async () => {
  const pod = `${BASE}/pods/bound`;
  await refused({ method: 'PATCH', path: pod, body: '{"spec":{"nodeName":"n2"}}', contentType: mergePatch, code: 422, reason: 'Invalid', message: /^Pod "bound" is invalid: spec\.nodeName: Invalid value: "n2": field is immutable$/, target: pod });
  await refused({ method: 'PATCH', path: pod, body: '{"spec":{"restartPolicy":"Never"}}', contentType: mergePatch, code: 422, reason: 'Invalid', message: /spec: Forbidden: pod updates may not change fields other than `spec\.containers\[\*\]\.image`/, target: pod });
  const got = (await call('GET', pod)).json as { spec: { containers: { name: string; image: string }[] } };
  await refused({
    method: 'PUT', path: pod, body: JSON.stringify({ ...got, spec: { ...got.spec, nodeName: 'n3' } }),
    code: 422, reason: 'Invalid', message: /spec\.nodeName: Invalid value: "n3": field is immutable/, target: pod,
  });
  // What Kubernetes lets a pod update change still changes; a PUT without nodeName keeps the node.
  const { nodeName: _n, ...withoutNode } = got.spec as Record<string, unknown>;
  const updated = await must('PUT', pod, { ...got, spec: { ...withoutNode, containers: [{ ...got.spec.containers[0], image: 'flotilla/testbox:v2' }], tolerations: [{ key: 'k', operator: 'Exists' }] } });
  assert.is((updated.spec as { nodeName?: string }).nodeName, 'n1');
});

test('selectors, ClusterIPs, immutable ConfigMaps and Secret types stay as created', async () => {
  const rs = `/apis/apps/v1/namespaces/${NS}/replicasets/rs`;
  await refused({
    method: 'PATCH', path: rs, body: JSON.stringify({ spec: { selector: { matchLabels: { app: 'b' } }, template: { metadata: { labels: { app: 'b' } } } } }), contentType: mergePatch,
    code: 422, reason: 'Invalid', message: /spec\.selector: Invalid value: \{"matchLabels":\{"app":"b"\}\}: field is immutable/, target: rs,
  });
  const svc = `${BASE}/services/web`;
  await refused({ method: 'PATCH', path: svc, body: '{"spec":{"clusterIP":"10.43.99.99"}}', contentType: mergePatch, code: 422, reason: 'Invalid', message: /spec\.clusterIP: Invalid value: "10\.43\.99\.99": field is immutable/, target: svc });
  await refused({ method: 'PATCH', path: svc, body: '{"spec":{"clusterIPs":["10.43.99.98"]}}', contentType: mergePatch, code: 422, reason: 'Invalid', message: /spec\.clusterIPs\[0\]: Invalid value: \["10\.43\.99\.98"\]: may not change once set/, target: svc });
  const frozen = `${BASE}/configmaps/frozen`;
  await refused({ method: 'PATCH', path: frozen, body: '{"data":{"k":"changed"}}', contentType: mergePatch, code: 422, reason: 'Invalid', message: /^ConfigMap "frozen" is invalid: data: Forbidden: field is immutable when `immutable` is set$/, target: frozen });
  await refused({ method: 'PATCH', path: frozen, body: '{"immutable":false}', contentType: mergePatch, code: 422, reason: 'Invalid', message: /immutable: Forbidden: field is immutable when `immutable` is set/, target: frozen });
  const secret = `${BASE}/secrets/s`;
  await refused({ method: 'PATCH', path: secret, body: '{"type":"kubernetes.io/tls"}', contentType: mergePatch, code: 422, reason: 'Invalid', message: /type: Invalid value: "kubernetes\.io\/tls": field is immutable/, target: secret });
  // Labels of an immutable ConfigMap may still change.
  await must('PATCH', frozen, { metadata: { labels: { still: 'mutable' } } });
});

test('a watch from a future resourceVersion ends with Kubernetes\' 504 Too large resource version; bad watch parameters get 400', async () => {
  const a = await call('GET', `${BASE}/configmaps?watch=true&resourceVersion=999999999`);
  assert.is(a.status, 200);
  const events = a.text.trim().split('\n').map((l) => JSON.parse(l) as { type: string; object: Record<string, unknown> });
  assert.is(events.length, 1, a.text);
  assert.is(events[0]!.type, 'ERROR');
  const status = events[0]!.object;
  assert.is(status.code, 504);
  assert.is(status.reason, 'Timeout');
  assert.match(String(status.message), /^Timeout: Too large resource version: 999999999, current: \d+$/);
  assert.equal(status.details, { causes: [{ reason: 'ResourceVersionTooLarge', message: 'Too large resource version' }], retryAfterSeconds: 1 });
  await refused({ method: 'GET', path: `${BASE}/configmaps?watch=true&timeoutSeconds=abc`, code: 400, reason: 'BadRequest', message: /timeoutSeconds must be a non-negative integer/, target: `${BASE}/configmaps/plain` });
  await refused({ method: 'GET', path: `${BASE}/configmaps?watch=true&timeoutSeconds=-1`, code: 400, reason: 'BadRequest', message: /timeoutSeconds/, target: `${BASE}/configmaps/plain` });
  await refused({ method: 'GET', path: `${BASE}/configmaps?watch=true&resourceVersion=1e9`, code: 400, reason: 'BadRequest', message: /resourceVersion must be a number/, target: `${BASE}/configmaps/plain` });
});

test.run();
