// CLI of the deterministic Raft simulator.
//   node dist/bench/sim-raft.js --seeds N --nodes 3|5 [--seed S] [--steps K] [--faults F] [--verbose]
// Runs seeds S, S+1, ..., S+N-1 and prints one JSON summary line last:
//   {seeds, nodes, steps, failures, violations, elapsedMs, ...}. Exit status 1 when any seed failed.
import { simulate, type SimResult } from '../server/raft/sim/simulator.js';

function parseArgs(argv: string[]): { seeds: number; nodes: number; seed: number; steps: number; faults: number; verbose: boolean } {
  const opts = { seeds: 100, nodes: 3, seed: 1, steps: 1500, faults: 1, verbose: false };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    if (flag === '--verbose') { opts.verbose = true; continue; }
    const value = argv[++i];
    const n = Number(value);
    const key = ({ '--seeds': 'seeds', '--nodes': 'nodes', '--seed': 'seed', '--steps': 'steps', '--faults': 'faults' } as const)[flag];
    if (!key) throw new Error(`sim-raft: unknown flag ${flag} (known: --seeds --nodes --seed --steps --faults --verbose)`);
    if (value === undefined || !Number.isFinite(n)) throw new Error(`sim-raft: ${flag} needs a number, got ${JSON.stringify(value)}`);
    opts[key] = n;
  }
  if (opts.nodes !== 3 && opts.nodes !== 5) throw new Error(`sim-raft: --nodes must be 3 or 5, got ${opts.nodes}`);
  return opts;
}

const opts = parseArgs(process.argv.slice(2));
const started = performance.now();
const failed: { seed: number; violations: string[] }[] = [];
let violations = 0;
const totals = { opsCompleted: 0, opsFailed: 0, putsUnknown: 0, leadersElected: 0, crashes: 0, confChanges: 0, snapshotsSent: 0 };
for (let s = opts.seed; s < opts.seed + opts.seeds; s++) {
  let r: SimResult;
  try {
    r = simulate({ seed: s, nodes: opts.nodes, steps: opts.steps, faults: opts.faults });
  } catch (err) {
    failed.push({ seed: s, violations: [`exception: ${(err as Error).stack ?? err}`] });
    violations++;
    continue;
  }
  for (const k of Object.keys(totals) as (keyof typeof totals)[]) totals[k] += r[k];
  if (r.violations.length > 0) {
    failed.push({ seed: s, violations: r.violations });
    violations += r.violations.length;
  }
  if (opts.verbose) console.log(JSON.stringify(r));
}
for (const f of failed.slice(0, 10)) console.error(`seed ${f.seed}: ${f.violations.join(' | ')}`);
console.log(JSON.stringify({
  seeds: opts.seeds, firstSeed: opts.seed, nodes: opts.nodes, steps: opts.steps, failures: failed.length, violations,
  failedSeeds: failed.map((f) => f.seed).slice(0, 50), elapsedMs: Math.round(performance.now() - started), ...totals,
}));
process.exitCode = failed.length > 0 ? 1 : 0;
