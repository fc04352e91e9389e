import { applyBatch } from './state-machine.js';
import type { StateTable } from './state-machine.js';
import type { ApplyResult, Command, StateStore, StoredObject } from './types.js';

/** Turns a command into a committed, applied result. One member alone applies locally; a Raft member
 *  appends to the replicated log and resolves once the entry is committed and applied. */
export interface Proposer {
  propose(command: Command): Promise<ApplyResult>;
}

/**
 * The single-member proposer with group commit: commands proposed in the same turn of the event loop are
 * applied in one SQLite transaction (one fsync), so many concurrent writers share the cost of durability.
 * A promise resolves only after its transaction committed.
 */
export class LocalProposer implements Proposer {
  #queue: { command: Command; resolve: (r: ApplyResult) => void; reject: (e: unknown) => void }[] = [];
  #scheduled = false;

  constructor(readonly store: StateStore, readonly maxBatch = 512) {}

  propose(command: Command): Promise<ApplyResult> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ command, resolve, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => this.#flush());
      }
    });
  }

  #flush(): void {
    this.#scheduled = false;
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0, this.maxBatch);
      let revision = this.store.revision();
      try {
        const results = this.store.apply(batch.map((p) => ({ command: p.command, revision: ++revision })));
        batch.forEach((p, i) => p.resolve(results[i]!));
      } catch (err) {
        for (const p of batch) p.reject(err);
      }
    }
  }
}

/**
 * Kubernetes' dryRun=All: each command is decided by the state machine exactly as a real write would be
 * (conflicts, preconditions, graceful deletion, address allocation), against the store's current rows seen
 * through an overlay that is thrown away, so nothing is stored, no revision is used and no event is sent.
 * The result carries the resourceVersion the write would have had.
 */
export class DryRunProposer implements Proposer {
  constructor(readonly store: Pick<StateStore, 'get' | 'revision'>) {}

  async propose(command: Command): Promise<ApplyResult> {
    const written = new Map<string, StoredObject | null>();
    const key = (resource: string, namespace: string, name: string) => `${resource}\0${namespace}\0${name}`;
    const table: StateTable = {
      get: (resource, namespace, name) => {
        const o = written.get(key(resource, namespace, name));
        return o === null ? undefined : o ? structuredClone(o) : this.store.get(resource, namespace, name);
      },
      put: (resource, namespace, name, object) => { written.set(key(resource, namespace, name), object); },
      remove: (resource, namespace, name) => { written.set(key(resource, namespace, name), null); },
      hasApplied: () => false,
      rememberApplied: () => {},
      forgetAppliedBefore: () => {},
    };
    return applyBatch(table, this.store.revision(), [{ command, revision: this.store.revision() + 1 }]).results[0]!;
  }
}
