import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApp } from '../../server/api/app.js';
import { identity, MASTERS_GROUP, staticTokens } from '../../server/api/middleware/auth.js';
import { SqliteStore } from '../../server/store/sqlite-store.js';
import { LocalProposer } from '../../server/store/proposer.js';
import { ObjectService } from '../../server/objects/service.js';
import { acceptedAs } from '../../server/api/accept.js';
import { allResources } from '../../api-types/index.js';

const TOKEN = 'test-token-0123456789';
const dir = mkdtempSync(join(tmpdir(), 'flotilla-discovery-'));
const store = new SqliteStore({ path: join(dir, 'state.db'), historyWindow: 50 });
const app = createApp({
  objects: new ObjectService(store, new LocalProposer(store), () => new Date('2026-02-03T04:05:06Z')), readBarrier: async () => {},
  authenticate: staticTokens({ [TOKEN]: identity('admin', [MASTERS_GROUP]) }),
  version: { flotilla: '0.1.0', gitVersion: 'v1.32.0+flotilla-0.1.0' }, readiness: () => [],
});
/** What kubectl v1.32 sends for /api and /apis. */
const KUBECTL_ACCEPT = 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json';

const get = (path: string, headers: Record<string, string> = {}) => app.request(path, { headers: { authorization: `Bearer ${TOKEN}`, ...headers } });
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const json = async (path: string, headers: Record<string, string> = {}): Promise<any> => {
  const res = await get(path, headers);
  assert.is(res.status, 200, path);
  return res.json();
};

test('/version: a Kubernetes gitVersion with major and minor, Flotilla\'s own version beside it', async () => {
  const v = await (await app.request('/version')).json() as Record<string, string>;
  assert.is(v.major, '1');
  assert.is(v.minor, '32');
  assert.is(v.gitVersion, 'v1.32.0+flotilla-0.1.0');
  assert.is(v.flotilla, '0.1.0');
});

test('/api/v1 lists every core resource with verbs, short names, categories and its subresources', async () => {
  const list = await json('/api/v1');
  assert.is(list.kind, 'APIResourceList');
  assert.is(list.groupVersion, 'v1');
  const pods = list.resources.find((r: { name: string }) => r.name === 'pods');
  assert.equal(pods, {
    name: 'pods', singularName: 'pod', namespaced: true, kind: 'Pod', verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'], shortNames: ['po'], categories: ['all'],
  });
  assert.equal(list.resources.find((r: { name: string }) => r.name === 'pods/log'), { name: 'pods/log', singularName: '', namespaced: true, kind: 'Pod', verbs: ['get'] });
  assert.equal(list.resources.find((r: { name: string }) => r.name === 'nodes').namespaced, false);
  assert.is(list.resources.find((r: { name: string }) => r.name === 'configmaps').categories, undefined);
  const names = new Set(list.resources.map((r: { name: string }) => r.name));
  for (const r of allResources.filter((x) => x.group === '')) assert.ok(names.has(r.plural), r.plural);
});

test('/apis/GROUP/VERSION: the scale subresource names autoscaling/v1 Scale; an unknown group version is a 404 Status', async () => {
  const apps = await json('/apis/apps/v1');
  assert.is(apps.groupVersion, 'apps/v1');
  assert.equal(apps.resources.find((r: { name: string }) => r.name === 'deployments/scale'), {
    name: 'deployments/scale', singularName: '', namespaced: true, group: 'autoscaling', version: 'v1', kind: 'Scale', verbs: ['get', 'patch', 'update'],
  });
  const missing = await get('/apis/apps/v2');
  assert.is(missing.status, 404);
  assert.is((await missing.json() as { reason: string }).reason, 'NotFound');
  assert.equal((await json('/apis/apps')).preferredVersion, { groupVersion: 'apps/v1', version: 'v1' });
});

test('/api and /apis: the legacy documents without the aggregated Accept', async () => {
  assert.equal((await json('/api')).versions, ['v1']);
  const groups = await json('/apis', { accept: 'application/json' });
  assert.is(groups.kind, 'APIGroupList');
  const names = groups.groups.map((g: { name: string }) => g.name);
  assert.ok(names.includes('apps') && names.includes('networking.k8s.io'));
  assert.not.ok(names.includes(''));
});

test('aggregated discovery: kubectl\'s Accept gets v2 with its content type, core group at /api, the rest at /apis', async () => {
  const res = await get('/apis', { accept: KUBECTL_ACCEPT });
  assert.is(res.status, 200);
  assert.is(res.headers.get('content-type'), 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList');
  const doc = await res.json() as { kind: string; apiVersion: string; items: { metadata: { name: string }; versions: { version: string; freshness: string; resources: Record<string, unknown>[] }[] }[] };
  assert.is(doc.kind, 'APIGroupDiscoveryList');
  assert.is(doc.apiVersion, 'apidiscovery.k8s.io/v2');
  const apps = doc.items.find((i) => i.metadata.name === 'apps')!;
  assert.is(apps.versions[0]!.freshness, 'Current');
  assert.equal(apps.versions[0]!.resources.find((r) => r.resource === 'deployments'), {
    resource: 'deployments', responseKind: { group: 'apps', version: 'v1', kind: 'Deployment' }, scope: 'Namespaced', singularResource: 'deployment',
    verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'], shortNames: ['deploy'], categories: ['all'],
    subresources: [
      { subresource: 'status', responseKind: { group: 'apps', version: 'v1', kind: 'Deployment' }, verbs: ['get', 'patch', 'update'] },
      { subresource: 'scale', responseKind: { group: 'autoscaling', version: 'v1', kind: 'Scale' }, verbs: ['get', 'patch', 'update'] },
    ],
  });
  const core = await json('/api', { accept: KUBECTL_ACCEPT });
  assert.equal(core.items.map((i: { metadata: { name: string } }) => i.metadata.name), ['']);
  assert.is(core.items[0].versions[0].resources.find((r: { resource: string }) => r.resource === 'nodes').scope, 'Cluster');
  const beta = await get('/api', { accept: 'application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList' });
  assert.is((await beta.json() as { apiVersion: string }).apiVersion, 'apidiscovery.k8s.io/v2beta1');
});

test('aggregated discovery answers If-None-Match with its ETag by 304', async () => {
  const first = await get('/apis', { accept: KUBECTL_ACCEPT });
  const etag = first.headers.get('etag');
  assert.ok(etag);
  assert.is(first.headers.get('vary'), 'Accept');
  const again = await get('/apis', { accept: KUBECTL_ACCEPT, 'if-none-match': etag! });
  assert.is(again.status, 304);
  assert.is((await get('/apis', { accept: KUBECTL_ACCEPT, 'if-none-match': '"other"' })).status, 200);
});

test('the Accept header: the first acceptable media type decides', () => {
  const acceptedAggregatedVersion = (accept: string | undefined) => acceptedAs(accept, 'APIGroupDiscoveryList', 'apidiscovery.k8s.io', ['v2', 'v2beta1']);
  assert.is(acceptedAggregatedVersion(KUBECTL_ACCEPT), 'v2');
  assert.is(acceptedAggregatedVersion('application/json;g=apidiscovery.k8s.io;v=v3;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList'), 'v2beta1');
  assert.is(acceptedAggregatedVersion('application/json, application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList'), undefined);
  assert.is(acceptedAggregatedVersion(undefined), undefined);
  assert.is(acceptedAggregatedVersion('application/yaml'), undefined);
});

test('/openapi/v3: an index of group versions, each document with the kinds\' schemas and the PATCH parameters kubectl looks for', async () => {
  const index = await json('/openapi/v3');
  assert.match(index.paths['apis/apps/v1'].serverRelativeURL, /^\/openapi\/v3\/apis\/apps\/v1\?hash=[0-9A-F]{128}$/);
  assert.ok(index.paths['api/v1']);
  const apps = await json(index.paths['apis/apps/v1'].serverRelativeURL);
  assert.is(apps.openapi, '3.0.0');
  const deployment = apps.components.schemas['io.k8s.api.apps.v1.Deployment'];
  assert.equal(deployment['x-kubernetes-group-version-kind'], [{ group: 'apps', version: 'v1', kind: 'Deployment' }]);
  assert.is(deployment.properties.spec.properties.replicas.type, 'integer');
  assert.is(deployment.additionalProperties, false);
  const patch = apps.paths['/apis/apps/v1/namespaces/{namespace}/deployments/{name}'].patch;
  assert.equal(patch['x-kubernetes-group-version-kind'], { group: 'apps', version: 'v1', kind: 'Deployment' });
  assert.ok(patch.parameters.some((p: { name: string; in: string }) => p.name === 'fieldValidation' && p.in === 'query'));
  assert.not.ok(Object.keys(apps.paths).some((p) => p.startsWith('/api/v1/')));
  assert.is((await get('/openapi/v3/apis/nope/v1')).status, 404);
});

test('/openapi/v2: Swagger 2.0 definitions in JSON; the protobuf form alone is 406', async () => {
  const v2 = await json('/openapi/v2', { accept: 'application/json' });
  assert.is(v2.swagger, '2.0');
  assert.equal(v2.definitions['io.k8s.api.core.v1.Pod']['x-kubernetes-group-version-kind'], [{ group: '', version: 'v1', kind: 'Pod' }]);
  assert.not.match(JSON.stringify(v2), /"nullable"|#\/components\//);
  assert.is((await get('/openapi/v2', { accept: 'application/com.github.proto-openapi.spec.v2@v1.0+protobuf' })).status, 406);
});

test.after(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

test.run();
