// Loads build/scheduler.wasm and checks that its memory map is the one in ./layout.
import { readFileSync } from 'node:fs';
import * as L from './layout.js';

/** A placement core: places the pod in the pod region on nodes [0, nodeCount); see asm/scheduler.ts `schedule`. */
export interface PlacementEngine {
  readonly name: 'wasm' | 'reference';
  schedule(nodeCount: number): number;
}

export interface WasmCore { memory: WebAssembly.Memory; engine: PlacementEngine }

interface CoreExports {
  memory: WebAssembly.Memory;
  schedule(nodeCount: number): number;
  layoutNodeBase(): number;
  layoutNodeBytes(): number;
  layoutPodI32(): number;
  layoutOut(): number;
  layoutFixedBase(): number;
}

export const DEFAULT_WASM_URL = new URL('../../../build/scheduler.wasm', import.meta.url);

const compiled = new Map<string, WebAssembly.Module>(); // one compilation per file; instances are per table

/** Instantiates the core (compiling it on first use). Throws when the file is missing or its layout disagrees. */
export function loadWasmCore(url: URL = DEFAULT_WASM_URL): WasmCore {
  let module = compiled.get(url.href);
  if (!module) { module = new WebAssembly.Module(readFileSync(url)); compiled.set(url.href, module); }
  const instance = new WebAssembly.Instance(module, { env: { abort: () => { throw new Error('scheduler.wasm aborted'); } } });
  const x = instance.exports as unknown as CoreExports;
  const probes: [string, number, number][] = [
    ['NODE_BASE', x.layoutNodeBase(), L.NODE_BASE], ['NODE_BYTES', x.layoutNodeBytes(), L.NODE_BYTES],
    ['POD_I32', x.layoutPodI32(), L.POD_I32], ['OUT', x.layoutOut(), L.OUT], ['FIXED_BASE', x.layoutFixedBase(), L.FIXED_BASE],
  ];
  for (const [name, got, want] of probes) {
    if (got !== want) throw new Error(`${url.pathname}: layout ${name} is ${got}, host expects ${want}; rebuild with npm run build:wasm`);
  }
  return { memory: x.memory, engine: { name: 'wasm', schedule: (n) => x.schedule(n) } };
}
