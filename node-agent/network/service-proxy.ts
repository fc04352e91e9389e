// The agent's Service data path, kept true: after the first complete listing of Services and EndpointSlices
// (never before: an empty ruleset would reject every Service of a restarting node), and after every coalesced
// change, the backend compiles the ruleset (again only for the Services the view says changed since the last
// sync; all of them at first and after a failed sync) and puts it in the kernel.
// A sync that fails is retried with back-off; a change during a sync gives exactly one more sync after it.
import type { Logger } from 'pino';
import type { Service } from '../../api-types/index.js';
import { ChangeSignal, delay } from '../agent.js';
import type { ChangedServices, ServiceView } from './service-cache.js';
import { NftApplier, NftShell, commandRunner, commandStarter, type RunCommand, type StartCommand } from './nft-applier.js';
import { IptablesBackend } from './iptables-ruleset.js';
import { RulesetCompiler } from './nft-ruleset.js';
import type { NodeFacts, ServiceSource } from './service-plan.js';

/**
 * What programs the kernel: compiles `source` for this node and applies it; false when nothing changed. `changed`:
 * the Services that changed since the last sync that returned (every one may have without it).
 */
export interface ProxyBackend {
  readonly name: string;
  sync(source: ServiceSource, facts: NodeFacts, changed?: ChangedServices): Promise<boolean>;
  /** Ends what the backend keeps running between syncs (the rules stay in force). */
  close?(): void;
}

export class NftBackend implements ProxyBackend {
  readonly name = 'nftables';
  readonly #applier: NftApplier;
  readonly #shell: NftShell | undefined;
  readonly #compiler = new RulesetCompiler();

  /** Differences go to a long-lived `nft -i` of `start` when given (run and start programming the same place), else to `nft -f`. */
  constructor(run: RunCommand = commandRunner(), start?: StartCommand) {
    this.#shell = start && new NftShell(start);
    this.#applier = new NftApplier(run, this.#shell?.send);
  }

  close(): void {
    this.#shell?.close();
  }

  sync(source: ServiceSource, facts: NodeFacts, changed?: ChangedServices): Promise<boolean> {
    return this.#applier.apply(this.#compiler.compile(source, facts, changed));
  }
}

/** How the agent programs Services: `auto` is nftables where `nft` runs, else iptables-restore; `off` programs nothing. */
export type ServiceProxyMode = 'auto' | 'nftables' | 'iptables' | 'off';

/** The backend for `mode` on this machine; undefined for `off`. Throws when the mode's tool is missing. */
export async function chooseBackend(mode: ServiceProxyMode, run: RunCommand = commandRunner(), start: StartCommand = commandStarter()): Promise<ProxyBackend | undefined> {
  if (mode === 'off') return undefined;
  const works = (cmd: string, args: string[]) => run(cmd, args).then((r) => r.code === 0, () => false);
  if (mode === 'nftables' || (mode === 'auto' && await works('nft', ['--version']))) return new NftBackend(run, start);
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
  const due = new ChangeSignal(signal);
  /** The Services changed since the last sync; undefined: any may have (before the first sync, after a failed one). */
  let changes: Map<string, Service | undefined> | undefined;
  const off = o.view.onChange((changed) => {
    if (!changed) changes = undefined;
    else for (const [key, service] of changed) changes?.set(key, service);
    due.mark();
  });
  try {
    await Promise.race([o.synced, new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }))]);
    let failures = 0;
    while (await due.changed()) {
      const started = performance.now();
      const since = changes;
      changes = new Map();
      try {
        const changed = await o.backend.sync(o.view, o.facts, since);
        failures = 0;
        if (changed) o.log.debug({ backend: o.backend.name, ms: Math.round(performance.now() - started) }, 'service rules synced');
        o.onSynced?.(changed);
      } catch (err) {
        due.mark();
        changes = undefined;
        const waitMs = Math.min((o.retryMaxSeconds ?? 30) * 1000, (o.retrySeconds ?? 1) * 1000 * 2 ** Math.min(failures++, 16));
        o.log.error({ backend: o.backend.name, err: (err as Error).message, retryMs: waitMs }, 'programming the service rules failed; the previous rules stay in force; retrying');
        await delay(waitMs, signal);
      }
    }
  } finally {
    off();
    o.backend.close?.();
  }
}
