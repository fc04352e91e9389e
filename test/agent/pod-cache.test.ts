import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PodCache } from '../../node-agent/pod-cache.js';
import type { PodInputs } from '../../node-agent/pod-actions.js';

const pod = (name: string): PodInputs => ({
  pod: { apiVersion: 'v1', kind: 'Pod', metadata: { name, uid: `uid-${name}` }, spec: { containers: [{ name: 'c', image: 'img' }] } },
  configMaps: {},
  secrets: { s: { apiVersion: 'v1', kind: 'Secret', metadata: { name: 's' }, data: { k: 'dg==' } } },
});

test('an empty data dir loads no pods; saved pods load back in a new instance; no temp file is left', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-cache-'));
  try {
    assert.equal(await new PodCache(dir).load(), []);
    const cache = new PodCache(dir);
    await Promise.all([cache.save([pod('a')]), cache.save([pod('a'), pod('b')])]);
    assert.equal(await new PodCache(dir).load(), [pod('a'), pod('b')], 'the last save wins');
    assert.equal(readdirSync(dir).sort(), ['pod-cache.key', 'pods.json']);
    assert.is(statSync(cache.file).mode & 0o777, 0o600, 'Secrets inside: owner only');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('no Secret value is in the cache file: sealed with the node key, which a copy of the file alone does not open', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-cache-'));
  try {
    const value = 'cached-s3cr3t-b7e1';
    const withSecret: PodInputs = { ...pod('a'), secrets: { s: { apiVersion: 'v1', kind: 'Secret', metadata: { name: 's' }, data: { k: Buffer.from(value).toString('base64') }, stringData: { t: value } } } };
    const cache = new PodCache(dir);
    await cache.save([withSecret, { ...pod('b'), secrets: {} }]);
    const text = readFileSync(cache.file, 'utf8');
    assert.not.ok(text.includes(value) || text.includes(Buffer.from(value).toString('base64')), text);
    assert.equal(await new PodCache(dir).load(), [withSecret, { ...pod('b'), secrets: {} }]);
    assert.is(statSync(cache.keyFile).mode & 0o777, 0o600);
    rmSync(cache.keyFile);
    writeFileSync(cache.keyFile, randomBytes(32));
    await new PodCache(dir).load().then(() => assert.unreachable('opened with another key'), (e: Error) => assert.match(e.message, 'do not open'));
    // A cache written before the Secrets were sealed is still read.
    writeFileSync(cache.file, JSON.stringify({ version: 1, pods: [pod('old')] }));
    assert.equal(await new PodCache(dir).load(), [pod('old')]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a damaged cache file is an error that names the file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-cache-'));
  try {
    writeFileSync(join(dir, 'pods.json'), '{"version":1,"pods":[');
    await new PodCache(dir).load().then(() => assert.unreachable('damaged file loaded'), (e: Error) => assert.match(e.message, join(dir, 'pods.json')));
    writeFileSync(join(dir, 'pods.json'), '{"version":7,"pods":[]}');
    await new PodCache(dir).load().then(() => assert.unreachable('unknown version loaded'), (e: Error) => assert.match(e.message, 'version 7'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
