// Deterministic simulation: many seeds of a faulty cluster, each checked for election safety, log matching,
// leader completeness, state machine safety, linearizability of the client history and, once faults stop,
// liveness. More seeds: bench/sim-raft.ts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { simulate } from '../../server/raft/sim/simulator.js';

const STEPS = 1500;

function runSeeds(nodes: number, first: number, count: number): { failures: string[]; ops: number } {
  const failures: string[] = [];
  let ops = 0;
  for (let seed = first; seed < first + count; seed++) {
    const r = simulate({ seed, nodes, steps: STEPS });
    ops += r.opsCompleted;
    if (r.violations.length > 0) failures.push(`seed ${seed}: ${r.violations.join(' | ')}`);
  }
  return { failures, ops };
}

test('400 seeds of a 3-member cluster under faults keep every invariant', () => {
  const { failures, ops } = runSeeds(3, 1, 400);
  assert.equal(failures, []);
  assert.ok(ops > 400 * 100, `clients completed ${ops} operations`);
});

test('200 seeds of a 5-member cluster under faults keep every invariant', () => {
  const { failures, ops } = runSeeds(5, 1001, 200);
  assert.equal(failures, []);
  assert.ok(ops > 200 * 100, `clients completed ${ops} operations`);
});

test('a seed replays exactly: same seed, same trace hash; another seed, another trace', () => {
  const a = simulate({ seed: 42, nodes: 5, steps: 800 });
  const b = simulate({ seed: 42, nodes: 5, steps: 800 });
  const c = simulate({ seed: 43, nodes: 5, steps: 800 });
  assert.is(a.traceHash, b.traceHash);
  assert.equal(a, b);
  assert.is.not(a.traceHash, c.traceHash);
});

test('without faults operations time out never, and leadership never changes after the first election', () => {
  const r = simulate({ seed: 7, nodes: 3, steps: 1000, faults: 0 });
  assert.equal(r.violations, []);
  // Refusals happen only while there is no leader yet (the first ~20 ticks).
  assert.ok(r.opsFailed < r.opsCompleted / 20, `${r.opsFailed} refused, ${r.opsCompleted} completed`);
  assert.is(r.putsUnknown, 0);
  assert.is(r.leadersElected, 1);
  assert.ok(r.opsCompleted > 300, `${r.opsCompleted} operations`);
});

test('the checks catch a disk that forgets votes: some seed shows two leaders in one term or worse', () => {
  let caught: string | undefined;
  for (let seed = 1; seed <= 200 && !caught; seed++) {
    const r = simulate({ seed, nodes: 3, steps: STEPS, faults: 10, disk: 'losesVote' });
    caught = r.violations[0];
  }
  assert.ok(caught, 'no seed exposed the lost votes');
});

test.run();
