import type { ApplyResult, Command, StateStore } from './types.js';

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
