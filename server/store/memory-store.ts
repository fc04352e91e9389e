import { WatchHub } from './watch.js';
import type { WatchListener } from './watch.js';
import { applyBatch } from './state-machine.js';
import type { StateTable } from './state-machine.js';
import type { AppliedCommand, ApplyResult, ResourceKey, StateStore, StoredObject } from './types.js';

/**
 * The cluster state machine in memory: the reference beside SqliteStore, for tests of the pure core that need
 * no file. Same state machine (server/store/state-machine.ts), same watch hub; nothing is durable. Objects are
 * kept as JSON text, so that what a caller gets is its own copy, as it is from SQLite.
 */
export class MemoryStore implements StateStore {
  /** resource -> "namespace\0name" -> JSON body. */
  readonly #rows = new Map<ResourceKey, Map<string, string>>();
  readonly #applied = new Map<string, number>();
  readonly #hub: WatchHub;
  #revision = 0;
  readonly #table: StateTable = {
    get: (resource, namespace, name) => this.get(resource, namespace, name),
    put: (resource, namespace, name, object) => {
      let rows = this.#rows.get(resource);
      if (!rows) this.#rows.set(resource, rows = new Map());
      rows.set(rowKey(namespace, name), JSON.stringify(object));
    },
    remove: (resource, namespace, name) => { this.#rows.get(resource)?.delete(rowKey(namespace, name)); },
    hasApplied: (id) => this.#applied.has(id),
    rememberApplied: (id, revision) => { this.#applied.set(id, revision); },
    forgetAppliedBefore: (revision) => { for (const [id, r] of this.#applied) if (r < revision) this.#applied.delete(id); },
  };

  constructor(opts: { historyWindow?: number } = {}) {
    this.#hub = new WatchHub(0, opts.historyWindow ?? 10_000);
  }

  revision(): number {
    return this.#revision;
  }

  get(resource: ResourceKey, namespace: string, name: string): StoredObject | undefined {
    const body = this.#rows.get(resource)?.get(rowKey(namespace, name));
    return body === undefined ? undefined : (JSON.parse(body) as StoredObject);
  }

  list(resource: ResourceKey, namespace?: string): { items: StoredObject[]; revision: number } {
    const rows = [...(this.#rows.get(resource) ?? new Map<string, string>())]
      .filter(([key]) => namespace === undefined || key.startsWith(rowKey(namespace, '')))
      // "namespace\0name" sorts as SQLite's ORDER BY namespace, name does: \0 sorts before every name character.
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return { items: rows.map(([, body]) => JSON.parse(body) as StoredObject), revision: this.#revision };
  }

  /** Revisions are checked before anything is written; there is no rollback as SQLite's transaction gives, since applying a command does not throw. */
  apply(batch: AppliedCommand[]): ApplyResult[] {
    if (batch.length === 0) return [];
    const out = applyBatch(this.#table, this.#revision, batch);
    this.#revision = out.revision;
    this.#hub.publish(out.events, this.#revision);
    return out.results;
  }

  watch(resource: ResourceKey, namespace: string | undefined, fromRevision: number, listener: WatchListener, onClose?: () => void): () => void {
    return this.#hub.watch(resource, namespace, fromRevision, listener, onClose);
  }

  get watcherCount(): number {
    return this.#hub.watcherCount;
  }

  close(): void {
    this.#hub.closeAll();
  }
}

function rowKey(namespace: string, name: string): string {
  return `${namespace}\0${name}`;
}
