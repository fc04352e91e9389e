import { copyFileSync, renameSync, rmSync } from 'node:fs';
import Database from 'better-sqlite3';
import type { Database as DB, Statement } from 'better-sqlite3';
import { WatchHub } from './watch.js';
import { addedFinalizers, isRemovedByUpdate, planDeletion } from './deletion.js';
import type { ApplyResult, Command, Failure, ResourceKey, StatusDetails, StoredObject, WatchEvent } from './types.js';

/**
 * A command at its revision. A `proposalId` makes applying at-most-once: a proposal that reaches the log twice
 * (re-proposed after a leader change) takes effect once; the repeat yields 409 AlreadyApplied. Ids are
 * remembered for PROPOSAL_MEMORY revisions, far longer than any proposal is retried.
 */
export interface AppliedCommand { command: Command; revision: number; proposalId?: string }

const PROPOSAL_MEMORY = 50_000;

export interface SqliteStoreOptions {
  /** SQLite file; ':memory:' for a throw-away store. */
  path: string;
  /** How many recent changes a watch can resume from before it gets 410 Gone. */
  historyWindow?: number;
  /**
   * FULL (default): every apply is on disk when it returns. NORMAL: for a store fed by the Raft log, which is
   * itself durable; applies after the last checkpoint() may be lost in a power cut and are replayed from the
   * log, so checkpoint() must run before the log is compacted.
   */
  synchronous?: 'FULL' | 'NORMAL';
}

/**
 * The cluster state machine on SQLite (WAL, synchronous FULL).
 *
 * Contract: `apply` is the only function that changes state. It applies a batch of commands, each with the
 * revision it is assigned (its Raft log index, or the next counter value when running alone), in ONE
 * transaction; when it returns, the batch is durable. Results and watch events depend only on the state and
 * the commands, never on the clock, so every replica that applies the same commands agrees.
 */
export class SqliteStore {
  db!: DB;
  readonly hub: WatchHub;
  #revision = 0;
  #stmt!: {
    get: Statement<[string, string, string], { body: string }>;
    listAll: Statement<[string], { body: string }>;
    listNs: Statement<[string, string], { body: string }>;
    put: Statement<[string, string, string, string]>;
    del: Statement<[string, string, string]>;
    setRev: Statement<[number]>;
    seen: Statement<[string]>;
    remember: Statement<[string, number]>;
    forget: Statement<[number]>;
  };
  #applyTx!: (batch: AppliedCommand[]) => { results: ApplyResult[]; events: WatchEvent[] };

  constructor(readonly opts: SqliteStoreOptions) {
    this.#open();
    this.hub = new WatchHub(this.#revision, opts.historyWindow ?? 10_000);
  }

  #open(): void {
    this.db = new Database(this.opts.path);
    // Small pages: every commit writes whole pages to the WAL, and most commits touch a few rows each, so
    // 1 KiB pages cut the bytes an SD card takes per write to about a third (bench:store bytesPer1000Writes).
    // Takes effect when the file is created.
    this.db.pragma('page_size = 1024');
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${this.opts.synchronous ?? 'FULL'}`);
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS objects (
        resource TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL, body TEXT NOT NULL,
        PRIMARY KEY (resource, namespace, name)) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS applied_proposals (id TEXT PRIMARY KEY, revision INTEGER NOT NULL);
      CREATE INDEX IF NOT EXISTS applied_proposals_revision ON applied_proposals (revision);
      INSERT OR IGNORE INTO meta (key, value) VALUES ('revision', 0);
    `);
    this.#stmt = {
      get: this.db.prepare('SELECT body FROM objects WHERE resource = ? AND namespace = ? AND name = ?'),
      listAll: this.db.prepare('SELECT body FROM objects WHERE resource = ? ORDER BY namespace, name'),
      listNs: this.db.prepare('SELECT body FROM objects WHERE resource = ? AND namespace = ? ORDER BY name'),
      put: this.db.prepare('INSERT OR REPLACE INTO objects (resource, namespace, name, body) VALUES (?, ?, ?, ?)'),
      del: this.db.prepare('DELETE FROM objects WHERE resource = ? AND namespace = ? AND name = ?'),
      setRev: this.db.prepare("UPDATE meta SET value = ? WHERE key = 'revision'"),
      seen: this.db.prepare('SELECT 1 FROM applied_proposals WHERE id = ?'),
      remember: this.db.prepare('INSERT INTO applied_proposals (id, revision) VALUES (?, ?)'),
      forget: this.db.prepare('DELETE FROM applied_proposals WHERE revision < ?'),
    };
    this.#revision = (this.db.prepare("SELECT value FROM meta WHERE key = 'revision'").get() as { value: number }).value;
    this.#applyTx = this.db.transaction((batch: AppliedCommand[]) => {
      const results: ApplyResult[] = [];
      const events: WatchEvent[] = [];
      for (const { command, revision, proposalId } of batch) {
        if (revision <= this.#revision) throw new Error(`revision ${revision} is not after ${this.#revision}`);
        let result: ApplyResult;
        if (proposalId !== undefined && this.#stmt.seen.get(proposalId)) {
          result = { ok: false, failure: { code: 409, reason: 'AlreadyApplied', message: `proposal ${proposalId} was applied before` } };
        } else {
          if (proposalId !== undefined) this.#stmt.remember.run(proposalId, revision);
          result = this.#applyOne(command, revision);
        }
        // Depends only on revisions, so every replica forgets the same ids at the same point.
        if (Math.floor(revision / PROPOSAL_MEMORY) > Math.floor(this.#revision / PROPOSAL_MEMORY)) this.#stmt.forget.run(revision - PROPOSAL_MEMORY);
        results.push(result);
        if (result.ok && !result.unchanged) {
          events.push({ revision, resource: command.resource, namespace: result.object.metadata.namespace ?? '', type: result.type, object: result.object });
        }
        this.#revision = revision;
      }
      this.#stmt.setRev.run(this.#revision);
      return { results, events };
    });
  }

  /**
   * Replaces the whole state with a snapshot file (a copy made by snapshotTo on some member). Watches end:
   * their clients list again, since the changes between the two states are not known one by one.
   */
  restoreFrom(snapshotPath: string): void {
    this.db.close();
    for (const suffix of ['-wal', '-shm']) rmSync(`${this.opts.path}${suffix}`, { force: true });
    copyFileSync(snapshotPath, `${this.opts.path}.restoring`);
    renameSync(`${this.opts.path}.restoring`, this.opts.path);
    this.#open();
    this.hub.reset(this.#revision);
  }

  /** The revision of the last applied command: the resourceVersion of the newest write. */
  revision(): number {
    return this.#revision;
  }

  get(resource: ResourceKey, namespace: string, name: string): StoredObject | undefined {
    const row = this.#stmt.get.get(resource, namespace, name);
    return row ? (JSON.parse(row.body) as StoredObject) : undefined;
  }

  /** Objects of one resource, in one namespace or (namespace undefined) all; with the revision they reflect. */
  list(resource: ResourceKey, namespace?: string): { items: StoredObject[]; revision: number } {
    const rows = namespace === undefined ? this.#stmt.listAll.all(resource) : this.#stmt.listNs.all(resource, namespace);
    return { items: rows.map((r) => JSON.parse(r.body) as StoredObject), revision: this.#revision };
  }

  apply(batch: AppliedCommand[]): ApplyResult[] {
    if (batch.length === 0) return [];
    const before = this.#revision;
    let out: { results: ApplyResult[]; events: WatchEvent[] };
    try {
      out = this.#applyTx(batch);
    } catch (err) {
      this.#revision = before; // the transaction rolled back
      throw err;
    }
    this.hub.publish(out.events, this.#revision);
    return out.results;
  }

  /** Makes every applied command durable (WAL checkpoint with fsync). */
  checkpoint(): void {
    this.db.pragma('wal_checkpoint(FULL)');
  }

  /** Copies a consistent image of the state to `path` (a snapshot or a backup). */
  snapshotTo(path: string): void {
    this.db.prepare('VACUUM INTO ?').run(path);
  }

  close(): void {
    this.hub.closeAll();
    this.db.close();
  }

  #applyOne(command: Command, revision: number): ApplyResult {
    switch (command.op) {
      case 'create': return this.#create(command, revision);
      case 'update': return this.#update(command, revision);
      case 'delete': return this.#delete(command, revision);
    }
  }

  #create(c: Extract<Command, { op: 'create' }>, revision: number): ApplyResult {
    const ns = c.object.metadata.namespace ?? '';
    const name = c.object.metadata.name;
    if (this.#stmt.get.get(c.resource, ns, name)) return fail(409, 'AlreadyExists', `${kindOf(c.resource)} "${name}" already exists`, c.resource, name);
    const object: StoredObject = {
      ...c.object,
      metadata: {
        ...c.object.metadata,
        uid: c.uid,
        creationTimestamp: c.now,
        generation: 1,
        resourceVersion: String(revision),
      },
    };
    delete object.metadata.deletionTimestamp;
    delete object.metadata.deletionGracePeriodSeconds;
    this.#stmt.put.run(c.resource, ns, name, JSON.stringify(object));
    return { ok: true, type: 'ADDED', object };
  }

  #update(c: Extract<Command, { op: 'update' }>, revision: number): ApplyResult {
    const ns = c.object.metadata.namespace ?? '';
    const name = c.object.metadata.name;
    const current = this.get(c.resource, ns, name);
    if (!current) return fail(404, 'NotFound', `${kindOf(c.resource)} "${name}" not found`, c.resource, name);
    const wanted = c.object.metadata.resourceVersion;
    if (wanted && wanted !== current.metadata.resourceVersion) {
      return fail(409, 'Conflict', `Operation cannot be fulfilled on ${c.resource} "${name}": the object has been modified; please apply your changes to the latest version and try again`, c.resource, name);
    }
    if (c.object.metadata.uid && c.object.metadata.uid !== current.metadata.uid) {
      return fail(409, 'Conflict', `Precondition failed on ${c.resource} "${name}": uid ${c.object.metadata.uid} does not match ${current.metadata.uid}`, c.resource, name);
    }
    let object: StoredObject;
    if (c.subresource === 'status') {
      object = { ...current, status: c.object.status };
      if (c.object.status === undefined) delete object.status;
    } else {
      object = { ...c.object };
      if ('status' in current) object.status = current.status; else delete object.status;
    }
    // Server-owned metadata never comes from the client.
    object.metadata = {
      ...(c.subresource === 'status' ? current.metadata : c.object.metadata),
      uid: current.metadata.uid,
      creationTimestamp: current.metadata.creationTimestamp,
      generation: (current.metadata.generation ?? 1) + (contentChanged(current, object) ? 1 : 0),
      resourceVersion: String(revision),
    };
    for (const field of ['deletionTimestamp', 'deletionGracePeriodSeconds'] as const) {
      if (current.metadata[field] !== undefined) object.metadata[field] = current.metadata[field] as never;
      else delete object.metadata[field];
    }
    const causes = addedFinalizers(current, object).map((a) => ({ field: a.field, message: `Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers ${JSON.stringify(a.added)}` }));
    if (causes.length > 0) {
      return fail(422, 'Invalid', `${kindOf(c.resource)} "${name}" is invalid: ${causes.map((x) => `${x.field}: ${x.message}`).join('; ')}`, c.resource, name, causes);
    }
    if (isRemovedByUpdate(current, object)) {
      this.#stmt.del.run(c.resource, ns, name);
      return { ok: true, type: 'DELETED', object };
    }
    return this.#put(c.resource, current, object);
  }

  /** Writes `object` over `current`; writing the same content again changes nothing (no revision, no event). */
  #put(resource: ResourceKey, current: StoredObject, object: StoredObject): ApplyResult {
    if (canonicalJson({ ...object, metadata: { ...object.metadata, resourceVersion: '' } }) === canonicalJson({ ...current, metadata: { ...current.metadata, resourceVersion: '' } })) {
      return { ok: true, type: 'MODIFIED', object: current, unchanged: true };
    }
    this.#stmt.put.run(resource, current.metadata.namespace ?? '', current.metadata.name, JSON.stringify(object));
    return { ok: true, type: 'MODIFIED', object };
  }

  #delete(c: Extract<Command, { op: 'delete' }>, revision: number): ApplyResult {
    const current = this.get(c.resource, c.namespace, c.name);
    if (!current) return fail(404, 'NotFound', `${kindOf(c.resource)} "${c.name}" not found`, c.resource, c.name);
    const pre = c.preconditions;
    if (pre?.uid && pre.uid !== current.metadata.uid) return fail(409, 'Conflict', `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${current.metadata.uid}`, c.resource, c.name);
    if (pre?.resourceVersion && pre.resourceVersion !== current.metadata.resourceVersion) return fail(409, 'Conflict', `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${current.metadata.resourceVersion}`, c.resource, c.name);
    const plan = c.now === undefined ? { remove: true as const } : planDeletion(current, { now: c.now, gracePeriodSeconds: c.gracePeriodSeconds, propagationPolicy: c.propagationPolicy });
    if (!plan.remove) return this.#put(c.resource, current, { ...plan.object, metadata: { ...plan.object.metadata, resourceVersion: String(revision) } });
    this.#stmt.del.run(c.resource, c.namespace, c.name);
    return { ok: true, type: 'DELETED', object: current };
  }
}

/** metadata.generation counts changes of everything but metadata and status (the spec, or data for ConfigMaps). */
function contentChanged(before: StoredObject, after: StoredObject): boolean {
  const strip = ({ metadata: _m, status: _s, ...rest }: StoredObject) => rest;
  return canonicalJson(strip(before)) !== canonicalJson(strip(after));
}

/** JSON with object keys sorted, so that equal content compares equal whatever order a client wrote. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v);
}

function kindOf(resource: ResourceKey): string {
  return resource.split('.')[0] ?? resource;
}

function fail(code: number, reason: string, message: string, resource: ResourceKey, name: string, causes?: StatusDetails['causes']): ApplyResult {
  const [kind, group] = resource.split('.', 2) as [string, string | undefined];
  const failure: Failure = { code, reason, message, details: { name, kind, ...(group ? { group } : {}), ...(causes ? { causes } : {}) } };
  return { ok: false, failure };
}
