import { type ConfState, type Entry, type HardState, type Snapshot, EMPTY_HARD_STATE, entrySize } from './types.js';

/** The requested index is below the first retained entry: it lives only in the snapshot. */
export class CompactedError extends Error {
  constructor(index: number, firstIndex: number) {
    super(`raft log index ${index} is compacted (first retained index is ${firstIndex})`);
  }
}

/** The requested index is beyond the last stored entry. */
export class UnavailableError extends Error {
  constructor(index: number, lastIndex: number) {
    super(`raft log index ${index} is not stored yet (last index is ${lastIndex})`);
  }
}

/** A snapshot older than what storage already holds was handed in. */
export class SnapshotOutOfDateError extends Error {
  constructor(index: number, current: number) {
    super(`snapshot at index ${index} is older than the stored snapshot at index ${current}`);
  }
}

/**
 * Read side used by the Raft core. Contract (shared by every implementation, tested by one contract suite):
 * - the log holds the contiguous range [firstIndex(), lastIndex()]; firstIndex() - 1 is the anchor, whose term
 *   term() still answers (the snapshot index, or the last compacted entry when compaction keeps a tail behind
 *   the snapshot: snapshot index + 1 >= firstIndex());
 * - term() below the anchor throws CompactedError, above lastIndex() throws UnavailableError;
 * - entries(lo, ...) with lo < firstIndex() throws CompactedError.
 */
export interface Storage {
  initialState(): { hardState: HardState; confState: ConfState };
  /** Entries [lo, hi), at least one when lo < hi, then stopping before the total size exceeds maxBytes. */
  entries(lo: number, hi: number, maxBytes: number): Entry[];
  term(index: number): number;
  firstIndex(): number;
  lastIndex(): number;
  snapshot(): Snapshot;
}

/** What a Ready hands to durable storage; applied in one atomic write. */
export interface StorageUpdate {
  hardState?: HardState;
  entries: Entry[];
  snapshot?: Snapshot;
  /** Ready.mustSync: false when only the commit index moved, which may be lost in a crash (it is re-learned). */
  mustSync?: boolean;
}

/**
 * Write side used by the driver. save() is atomic: after a crash either the whole update is there or none of it.
 * Order inside one update: snapshot (replaces the whole log), then entries (truncating any conflicting tail),
 * then hard state.
 */
export interface LogStore extends Storage {
  save(update: StorageUpdate): void;
  /** Record a snapshot the state machine made at `index` (<= applied), keeping the log entries. */
  createSnapshot(index: number, confState: ConfState, data: Uint8Array): Snapshot;
  /** Drop entries before `index` (which must be <= the snapshot index + 1, so nothing unrecoverable is lost). */
  compact(index: number): void;
}

export function limitSize(ents: Entry[], maxBytes: number): Entry[] {
  if (ents.length === 0) return ents;
  let size = entrySize(ents[0]!);
  let n = 1;
  for (; n < ents.length; n++) {
    size += entrySize(ents[n]!);
    if (size > maxBytes) break;
  }
  return n === ents.length ? ents : ents.slice(0, n);
}

export function emptySnapshot(): Snapshot {
  return { meta: { index: 0, term: 0, confState: { voters: [], learners: [] } }, data: new Uint8Array() };
}

/** In-memory reference implementation: what tests and the simulator use as "the disk". */
export class MemoryStorage implements LogStore {
  private hardState: HardState = { ...EMPTY_HARD_STATE };
  private snap: Snapshot = emptySnapshot();
  /** ents[0] is a dummy anchored at the snapshot (index = snapshot index, term = snapshot term). */
  private ents: Entry[] = [{ index: 0, term: 0, type: 'normal', data: new Uint8Array() }];

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: { ...this.hardState }, confState: cloneConfState(this.snap.meta.confState) };
  }

  firstIndex(): number {
    return this.ents[0]!.index + 1;
  }

  lastIndex(): number {
    return this.ents[0]!.index + this.ents.length - 1;
  }

  term(index: number): number {
    const offset = this.ents[0]!.index;
    if (index < offset) throw new CompactedError(index, this.firstIndex());
    if (index > this.lastIndex()) throw new UnavailableError(index, this.lastIndex());
    return this.ents[index - offset]!.term;
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    const offset = this.ents[0]!.index;
    if (lo <= offset) throw new CompactedError(lo, this.firstIndex());
    if (hi > this.lastIndex() + 1) throw new UnavailableError(hi - 1, this.lastIndex());
    return limitSize(this.ents.slice(lo - offset, hi - offset), maxBytes);
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  save(update: StorageUpdate): void {
    if (update.snapshot) this.applySnapshot(update.snapshot);
    this.append(update.entries);
    if (update.hardState) this.hardState = { ...update.hardState };
  }

  createSnapshot(index: number, confState: ConfState, data: Uint8Array): Snapshot {
    if (index <= this.snap.meta.index) throw new SnapshotOutOfDateError(index, this.snap.meta.index);
    if (index > this.lastIndex()) throw new UnavailableError(index, this.lastIndex());
    this.snap = { meta: { index, term: this.term(index), confState: cloneConfState(confState) }, data };
    return this.snap;
  }

  compact(index: number): void {
    const offset = this.ents[0]!.index;
    if (index <= offset) return;
    if (index > this.snap.meta.index + 1) {
      throw new Error(`cannot compact to ${index}: entries after the snapshot at ${this.snap.meta.index} would be lost`);
    }
    const anchor = this.ents[index - 1 - offset]!;
    this.ents = [{ index: anchor.index, term: anchor.term, type: 'normal', data: new Uint8Array() }, ...this.ents.slice(index - offset)];
  }

  private applySnapshot(snap: Snapshot): void {
    if (snap.meta.index < this.snap.meta.index) throw new SnapshotOutOfDateError(snap.meta.index, this.snap.meta.index);
    this.snap = { meta: { ...snap.meta, confState: cloneConfState(snap.meta.confState) }, data: snap.data };
    this.ents = [{ index: snap.meta.index, term: snap.meta.term, type: 'normal', data: new Uint8Array() }];
  }

  private append(entries: Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const incomingLast = entries[entries.length - 1]!.index;
    if (incomingLast < first) return; // all already compacted
    const fresh = entries[0]!.index < first ? entries.slice(first - entries[0]!.index) : entries;
    const offset = fresh[0]!.index - this.ents[0]!.index;
    if (offset > this.ents.length) {
      throw new Error(`missing log entries: last stored index ${this.lastIndex()}, appending from ${fresh[0]!.index}`);
    }
    this.ents = this.ents.slice(0, offset).concat(fresh);
  }
}

export function cloneConfState(cs: ConfState): ConfState {
  return { voters: [...cs.voters], learners: [...cs.learners] };
}
