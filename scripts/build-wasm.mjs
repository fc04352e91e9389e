#!/usr/bin/env node
// Compiles the AssemblyScript scheduler core (asm/scheduler.ts) to build/scheduler.wasm, release-optimised.
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';

const root = new URL('..', import.meta.url).pathname;
mkdirSync(`${root}build`, { recursive: true });
const asc = `${root}node_modules/assemblyscript/bin/asc.js`;
const r = spawnSync(process.execPath, [asc, 'asm/scheduler.ts',
  '--outFile', 'build/scheduler.wasm', '--textFile', 'build/scheduler.wat',
  '-O3', '--runtime', 'stub', '--noAssert', '--initialMemory', '16'], { cwd: root, stdio: 'inherit' });
process.exit(r.status ?? 1);
