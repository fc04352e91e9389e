// The agent's Service data path, kept true: after the first complete listing of Services and EndpointSlices
// (never before: an empty ruleset would reject every Service of a restarting node), and after every coalesced
// change, the backend compiles the ruleset (again only for the Services that changed) and puts it in the kernel.
// A sync that fails is retried with back-off; a change during a sync gives exactly one more sync after it.
import type { Logger } from 'pino';
import { delay } from '../agent.js';
import type { ServiceView } from './service-cache.js';
import { NftApplier, commandRunner, type RunCommand } from './nft-applier.js';
import { IptablesBackend } from './iptables-ruleset.js';
import { RulesetCompiler } from './nft-ruleset.js';
import type { NodeFacts, ServiceSource } from './service-plan.js';

/** What programs the kernel: compiles `source` for this node and applies it; false when nothing changed. */
export interface ProxyBackend {
  readonly name: string;
  sync(source: ServiceSource, facts: NodeFacts): Promise<boolean>;
}

export class NftBackend implements ProxyBackend {
  readonly name = 'nftables';
  readonly #applier: NftApplier;
  readonly #compiler = new RulesetCompiler();

  constructor(run: RunCommand = commandRunner()) {
    this.#applier = new NftApplier(run);
  }

  sync(source: ServiceSource, facts: NodeFacts): Promise<boolean> {
    return this.#applier.apply(this.#compiler.compile(source, facts));
  }
}

/** How the agent programs Services: `auto` is nftables where `nft` runs, else iptables-restore; `off` programs nothing. */
export type ServiceProxyMode = 'auto' | 'nftables' | 'iptables' | 'off';

/** The backend for `mode` on this machine; undefined for `off`. Throws when the mode's tool is missing. */
export async function chooseBackend(mode: ServiceProxyMode, run: RunCommand = commandRunner()): Promise<ProxyBackend | undefined> {
  if (mode === 'off') return undefined;
  const works = (cmd: string, args: string[]) => run(cmd, args).then((r) => r.code === 0, () => false);
  if (mode === 'nftables' || (mode === 'auto' && await works('nft', ['--version']))) return new NftBackend(run);
  if (await works('iptables-restore', ['--version'])) return new IptablesBackend(run);
  throw new Error(mode === 'auto' ? 'neither nft nor iptables-restore runs on this machine: install nftables' : 'iptables-restore does not run on this machine');
}

export interface ServiceProxyOptions {
  view: ServiceView;
  /** Resolves when the view has seen every kind once. */
  synced: Promise<void>;
  facts: NodeFacts;
  backend: ProxyBackend;
  log: Logger;
  retrySeconds?: number;
  retryMaxSeconds?: number;
  /** Called after every sync that reached the kernel (tests wait on it). */
  onSynced?: (changed: boolean) => void;
}

/** Runs until the signal aborts; never rejects (failures are logged and retried). */
export async function runServiceProxy(signal: AbortSignal, o: ServiceProxyOptions): Promise<void> {
  let wake: (() => void) | undefined;
  let dirty = true;
  const off = o.view.onChange(() => { dirty = true; wake?.(); });
  const stop = (): void => wake?.();
  signal.addEventListener('abort', stop, { once: true });
  try {
    await Promise.race([o.synced, new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }))]);
    let failures = 0;
    while (!signal.aborted) {
      if (!dirty) {
        await new Promise<void>((resolve) => { wake = resolve; });
        wake = undefined;
        continue;
      }
      dirty = false;
      const started = performance.now();
      try {
        const changed = await o.backend.sync(o.view, o.facts);
        failures = 0;
        if (changed) o.log.debug({ backend: o.backend.name, ms: Math.round(performance.now() - started) }, 'service rules synced');
        o.onSynced?.(changed);
      } catch (err) {
        dirty = true;
        const waitMs = Math.min((o.retryMaxSeconds ?? 30) * 1000, (o.retrySeconds ?? 1) * 1000 * 2 ** Math.min(failures++, 16));
        o.log.error({ backend: o.backend.name, err: (err as Error).message, retryMs: waitMs }, 'programming the service rules failed; the previous rules stay in force; retrying');
        await delay(waitMs, signal);
      }
    }
  } finally {
    off();
    signal.removeEventListener('abort', stop);
  }
}
