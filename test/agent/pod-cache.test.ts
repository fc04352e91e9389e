import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
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
    assert.equal(readdirSync(dir), ['pods.json']);
    assert.is(statSync(cache.file).mode & 0o777, 0o600, 'Secrets inside: owner only');
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
