// ListOptions of lists and watches as Kubernetes has them: resourceVersionMatch (Exact / NotOlderThan) and its
// validation, sendInitialEvents with the initial-events-end BOOKMARK, allowWatchBookmarks, timeoutSeconds.
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

const TOKEN = 'test-token-0123456789';
const dir = mkdtempSync(join(tmpdir(), 'flotilla-watch-options-'));
const store = new SqliteStore({ path: join(dir, 'state.db') });
const proposer = new LocalProposer(store);
await proposer.propose({ op: 'create', resource: 'namespaces', uid: randomUUID(), now: new Date().toISOString(), object: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } } });
const app = createApp({
  objects: new ObjectService(store, proposer, () => new Date()), readBarrier: async () => {},
  authenticate: staticTokens({ [TOKEN]: identity('admin', [MASTERS_GROUP]) }),
  version: { flotilla: '0.1.0', gitVersion: 'v0.1.0' }, readiness: () => [], maxBodyBytes: 64 * 1024,
});
test.after(() => { store.close(); rmSync(dir, { recursive: true, force: true }); });

const CMS = '/api/v1/namespaces/default/configmaps';
const get = (path: string) => app.request(path, { headers: { authorization: `Bearer ${TOKEN}` } });
const create = (name: string) => app.request(CMS, {
  method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
  body: JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name } }),
});
interface Event { type: string; object: { metadata: { name?: string; resourceVersion: string; annotations?: Record<string, string> } } }

/** Reads watch events until `until` says enough (or the stream ends). */
async function events(res: Response, until: (e: Event[]) => boolean): Promise<Event[]> {
  const reader = res.body!.getReader();
  let text = '';
  const parsed = () => text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Event);
  while (!until(parsed())) {
    const { value, done } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  await reader.cancel();
  return parsed();
}

async function rejection(path: string): Promise<{ code: number; message: string }> {
  const res = await get(path);
  return { code: res.status, message: ((await res.json()) as { message: string }).message };
}

test('sendInitialEvents=true: the objects as ADDED, then a BOOKMARK at the list\'s revision with k8s.io/initial-events-end, then changes', async () => {
  await create('a');
  await create('b');
  const listed = (await (await get(CMS)).json()) as { metadata: { resourceVersion: string } };
  const res = await get(`${CMS}?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&resourceVersion=1`);
  assert.is(res.status, 200);
  const seen = events(res, (e) => e.some((x) => x.object.metadata.name === 'c'));
  await create('c');
  const got = await seen;
  assert.equal(got.map((e) => `${e.type} ${e.object.metadata.name ?? ''}`), ['ADDED a', 'ADDED b', 'BOOKMARK ', 'ADDED c']);
  assert.equal(got[2]!.object.metadata, { resourceVersion: listed.metadata.resourceVersion, annotations: { 'k8s.io/initial-events-end': 'true' } });
});

test('sendInitialEvents=false starts at the resourceVersion given, with no initial objects', async () => {
  const rv = ((await (await get(CMS)).json()) as { metadata: { resourceVersion: string } }).metadata.resourceVersion;
  const res = await get(`${CMS}?watch=true&sendInitialEvents=false&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&resourceVersion=${rv}`);
  const seen = events(res, (e) => e.length >= 1);
  await create('d');
  assert.equal((await seen).map((e) => `${e.type} ${e.object.metadata.name}`), ['ADDED d']);
});

test('a watch with allowWatchBookmarks ends at its timeoutSeconds with a BOOKMARK of the revision it reached', async () => {
  const rv = ((await (await get(CMS)).json()) as { metadata: { resourceVersion: string } }).metadata.resourceVersion;
  const got = await events(await get(`${CMS}?watch=true&allowWatchBookmarks=true&timeoutSeconds=1&resourceVersion=${rv}`), () => false);
  assert.equal(got, [{ type: 'BOOKMARK', object: { kind: 'ConfigMap', apiVersion: 'v1', metadata: { resourceVersion: rv } } } as unknown as Event]);
});

test('list resourceVersionMatch: NotOlderThan serves the current list for an older revision; Exact only its own (410 older, 504 newer)', async () => {
  const rv = Number(((await (await get(CMS)).json()) as { metadata: { resourceVersion: string } }).metadata.resourceVersion);
  assert.is((await get(`${CMS}?resourceVersion=1&resourceVersionMatch=NotOlderThan`)).status, 200);
  assert.is((await get(`${CMS}?resourceVersion=${rv}&resourceVersionMatch=Exact`)).status, 200);
  const older = await rejection(`${CMS}?resourceVersion=1&resourceVersionMatch=Exact`);
  assert.equal([older.code, older.message], [410, `too old resource version: 1 (${rv})`]);
  const newer = await rejection(`${CMS}?resourceVersion=${rv + 100}&resourceVersionMatch=NotOlderThan`);
  assert.equal([newer.code, newer.message], [504, `Timeout: Too large resource version: ${rv + 100}, current: ${rv}`]);
});

test('ListOptions refused as kube-apiserver refuses them (422 naming the field)', async () => {
  const cases: Array<[string, RegExp]> = [
    [`${CMS}?watch=true&resourceVersionMatch=NotOlderThan`, /resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided/],
    [`${CMS}?watch=true&sendInitialEvents=true&allowWatchBookmarks=true`, /resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan/],
    [`${CMS}?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan`, /allowWatchBookmarks: Forbidden: sendInitialEvents requires setting allowWatchBookmarks to true/],
    [`${CMS}?watch=true&sendInitialEvents=true&resourceVersionMatch=Exact&allowWatchBookmarks=true`, /resourceVersionMatch: Unsupported value: "Exact": supported values: "NotOlderThan"/],
    [`${CMS}?resourceVersionMatch=NotOlderThan`, /resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided/],
    [`${CMS}?resourceVersion=0&resourceVersionMatch=Exact`, /resourceVersionMatch "exact" is forbidden for resourceVersion "0"/],
    [`${CMS}?resourceVersion=5&resourceVersionMatch=Newest`, /Unsupported value: "Newest": supported values: "Exact", "NotOlderThan", ""/],
    [`${CMS}?sendInitialEvents=true`, /sendInitialEvents: Forbidden: sendInitialEvents is forbidden for list/],
  ];
  for (const [path, message] of cases) {
    const r = await rejection(path);
    assert.is(r.code, 422, path);
    assert.match(r.message, /^ListOptions\.meta\.k8s\.io "" is invalid: /, path);
    assert.match(r.message, message, path);
  }
});

test.run();
