// Loads build/scheduler.wasm and checks that its memory map is the one in ./layout.
import { readFileSync } from 'node:fs';
import * as L from './layout.js';

/** A placement core: places the pod in the pod region on nodes [0, nodeCount); see asm/scheduler.ts `schedule`. */
export interface PlacementEngine {
  readonly name: 'wasm' | 'fallback';
  schedule(nodeCount: number): number;
}

export interface WasmCore { memory: WebAssembly.Memory; engine: PlacementEngine }

export const DEFAULT_WASM_URL = new URL('../../../build/scheduler.wasm', import.meta.url);

const compiled = new Map<string, WebAssembly.Module>(); // one compilation per file; instances are per table

/** Instantiates the core (compiling it on first use). Throws when the file is missing or its layout disagrees. */
export function loadWasmCore(url: URL = DEFAULT_WASM_URL): WasmCore {
  let module = compiled.get(url.href);
  if (!module) { module = new WebAssembly.Module(readFileSync(url)); compiled.set(url.href, module); }
  const instance = new WebAssembly.Instance(module, { env: { abort: () => { throw new Error('scheduler.wasm aborted'); } } });
  // The exports are checked here, at the boundary, so the rest of the host can trust their types.
  const exports = instance.exports;
  const fn = (name: string): ((...args: number[]) => number) => {
    const f = exports[name];
    if (typeof f !== 'function') throw new Error(`${url.pathname}: no exported function ${name}; rebuild with npm run build:wasm`);
    return f as (...args: number[]) => number;
  };
  const memory = exports.memory;
  if (!(memory instanceof WebAssembly.Memory)) throw new Error(`${url.pathname}: no exported memory; rebuild with npm run build:wasm`);
  const probes: [string, string, number][] = [
    ['NODE_BASE', 'layoutNodeBase', L.NODE_BASE], ['NODE_BYTES', 'layoutNodeBytes', L.NODE_BYTES],
    ['POD_I32', 'layoutPodI32', L.POD_I32], ['OUT', 'layoutOut', L.OUT], ['FIXED_BASE', 'layoutFixedBase', L.FIXED_BASE],
  ];
  for (const [name, probe, want] of probes) {
    const got = fn(probe)();
    if (got !== want) throw new Error(`${url.pathname}: layout ${name} is ${got}, host expects ${want}; rebuild with npm run build:wasm`);
  }
  const schedule = fn('schedule');
  return { memory, engine: { name: 'wasm', schedule: (n) => schedule(n) } };
}
