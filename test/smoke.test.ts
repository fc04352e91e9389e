import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';

test('the wasm scheduler core is built and instantiates', async () => {
  const bytes = readFileSync(new URL('../../build/scheduler.wasm', import.meta.url));
  const { instance } = await WebAssembly.instantiate(bytes, {});
  assert.type(instance.exports.version, 'function');
});

test.run();
