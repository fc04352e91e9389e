import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type KvOperation, checkKvHistory, checkRegister } from '../../server/raft/sim/linearizability.js';

const put = (key: string, value: string, call: number, ret: number, client = 0): KvOperation => ({ client, kind: 'put', key, value, call, ret });
const get = (key: string, value: string, call: number, ret: number, client = 1): KvOperation => ({ client, kind: 'get', key, value, call, ret });

test('sequential history that reads what was written is linearizable', () => {
  assert.ok(checkRegister([put('k', '1', 0, 1), get('k', '1', 2, 3), put('k', '2', 4, 5), get('k', '2', 6, 7)]));
});

test('a read of the initial value before any write is linearizable', () => {
  assert.ok(checkRegister([get('k', '', 0, 1), put('k', '1', 2, 3)]));
});

test('concurrent put and get: the get may see either value', () => {
  assert.ok(checkRegister([put('k', '1', 0, 1), put('k', '2', 2, 10), get('k', '1', 3, 4)]));
  assert.ok(checkRegister([put('k', '1', 0, 1), put('k', '2', 2, 10), get('k', '2', 3, 4)]));
});

test('a stale read after a completed overwrite is not linearizable', () => {
  assert.not.ok(checkRegister([put('k', '1', 0, 1), put('k', '2', 2, 3), get('k', '1', 4, 5)]));
});

test('reads that go back in time are not linearizable (new value seen, then the old one)', () => {
  assert.not.ok(checkRegister([put('k', '1', 0, 1), put('k', '2', 2, 20, 2), get('k', '2', 3, 4), get('k', '1', 5, 6, 3)]));
});

test('a read of a value nobody wrote is not linearizable', () => {
  assert.not.ok(checkRegister([put('k', '1', 0, 1), get('k', '7', 2, 3)]));
});

test('a put with unknown outcome may take effect late, or never', () => {
  assert.ok(checkRegister([put('k', '1', 0, 1), put('k', '2', 2, Infinity), get('k', '1', 5, 6), get('k', '2', 7, 8)]));
  assert.ok(checkRegister([put('k', '1', 0, 1), put('k', '2', 2, Infinity), get('k', '1', 5, 6)]));
  // but once seen it cannot be unseen
  assert.not.ok(checkRegister([put('k', '1', 0, 1), put('k', '2', 2, Infinity), get('k', '2', 5, 6), get('k', '1', 7, 8)]));
});

test('histories are checked per key; the failing key is named', () => {
  const ops = [put('a', '1', 0, 1), get('a', '1', 2, 3), put('b', '1', 0, 1), put('b', '2', 2, 3), get('b', '1', 4, 5)];
  assert.equal(checkKvHistory(ops), { ok: false, key: 'b', keys: 2 });
  assert.equal(checkKvHistory(ops.slice(0, 4)), { ok: true, keys: 2 });
});

test('memoisation decides a history of 12 fully concurrent writes (4096 subsets) both ways', () => {
  const ops: KvOperation[] = [];
  for (let i = 0; i < 12; i++) ops.push(put('k', `v${i}`, 0, 100, i));
  ops.push(get('k', 'v7', 101, 102, 99));
  assert.ok(checkRegister(ops));
  ops.push(get('k', 'nope', 103, 104, 99));
  assert.not.ok(checkRegister(ops));
});

test('an operation that returns before it is called is refused', () => {
  assert.throws(() => checkRegister([put('k', '1', 5, 1)]), /returns before it is called/);
});

test.run();
