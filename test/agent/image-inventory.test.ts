// Node.status.images and status.imagePlatforms from an image list (node-agent/images/inventory.ts): the
// kubelet's rules (largest first, at most 50 images of at most 5 names each, digests before tags, a dangling
// image by its size alone), a stable order for equal sizes, and the agent reporting only changes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { validateObject } from '../../api-types/index.js';
import { ImageInventory, NODE_STATUS_MAX_IMAGES, nodeImageStatus } from '../../node-agent/images/inventory.js';
import { FAKE_IMAGE_BYTES, FakeRuntime } from '../../node-agent/runtime/fake.js';
import type { ImageSummary } from '../../node-agent/runtime/types.js';

const image = (id: string, sizeBytes: number, names: string[], architecture = 'amd64', variant = ''): ImageSummary =>
  ({ id: `sha256:${id}`, names, sizeBytes, os: 'linux', architecture, variant });

test('the 50 largest, largest first, 5 names each, platforms beside them', () => {
  const list = Array.from({ length: 60 }, (_, i) => image(`i${String(i).padStart(2, '0')}`, (i % 20) * 1000, [`img${i}:1`]));
  list.push(image('big', 10 ** 9, ['reg/big@sha256:1', 'reg/big@sha256:2', 'reg/big:a', 'reg/big:b', 'reg/big:c', 'reg/big:d'], 'arm', 'v7'));
  list.push(image('dangling', 10 ** 8, []));
  const s = nodeImageStatus(list);
  assert.is(s.images.length, NODE_STATUS_MAX_IMAGES);
  assert.equal(s.images[0], { names: ['reg/big@sha256:1', 'reg/big@sha256:2', 'reg/big:a', 'reg/big:b', 'reg/big:c'], sizeBytes: 10 ** 9 });
  assert.equal(s.images[1], { sizeBytes: 10 ** 8 });
  assert.ok(s.images.every((x, i) => i === 0 || s.images[i - 1]!.sizeBytes! >= x.sizeBytes!));
  assert.equal(s.imagePlatforms[0], { names: s.images[0]!.names!, os: 'linux', architecture: 'arm', variant: 'v7' });
  assert.is(s.imagePlatforms.length, NODE_STATUS_MAX_IMAGES - 1, 'the dangling image has no platform entry');
  assert.equal(s.imagePlatforms[1], { names: ['img19:1'], os: 'linux', architecture: 'amd64' }, 'no empty variant');
  assert.equal(nodeImageStatus([...list].reverse()), s, 'equal sizes in a fixed order');
  const node = { apiVersion: 'v1', kind: 'Node', metadata: { name: 'n' }, status: s };
  const valid = validateObject(node);
  assert.ok(valid.ok, JSON.stringify(valid));
  const issues = (status: unknown): string[] => { const r = validateObject({ ...node, status }); return r.ok ? [] : r.issues.map((i) => `${i.path}: ${i.message}`); };
  assert.equal(issues({ imagePlatforms: [{ names: ['a:1'], os: 'linux', architecture: 'arm64', arch: 'arm64' }] }), ['status.imagePlatforms[0].arch: unknown field "arch"']);
  assert.equal(issues({ imagePlatforms: [{ names: ['a:1'], os: 'linux' }] }), ['status.imagePlatforms[0].architecture: required field is missing']);
});

test('refresh says whether the status changed', async () => {
  const runtime = new FakeRuntime({ images: ['a:1'], platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } });
  const inventory = new ImageInventory(runtime);
  assert.is(await inventory.refresh(), true);
  assert.equal(inventory.status.images, [{ names: ['a:1'], sizeBytes: FAKE_IMAGE_BYTES }]);
  assert.equal(inventory.status.imagePlatforms, [{ names: ['a:1'], os: 'linux', architecture: 'arm64', variant: 'v8' }]);
  assert.is(await inventory.refresh(), false);
  await runtime.ensureImage('b:2');
  assert.is(await inventory.refresh(), true);
  assert.is(inventory.status.images.length, 2);
});

test.run();
