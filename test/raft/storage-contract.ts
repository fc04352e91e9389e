// One contract suite for every LogStore implementation (MemoryStorage, SqliteStorage).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { CompactedError, type LogStore, UnavailableError } from '../../server/raft/storage.js';
import type { Entry } from '../../server/raft/types.js';

export function entry(index: number, term: number, data = `e${index}`): Entry {
  return { index, term, type: 'normal', data: new TextEncoder().encode(data) };
}

function texts(ents: Entry[]): string[] {
  return ents.map((e) => `${e.index}/${e.term}/${new TextDecoder().decode(e.data)}`);
}

export function runStorageContract(name: string, open: () => { store: LogStore; close(): void }): void {
  const s = suite(`LogStore contract: ${name}`);

  s('an empty store has index 0 with term 0 and no entries', () => {
    const { store, close } = open();
    assert.is(store.firstIndex(), 1);
    assert.is(store.lastIndex(), 0);
    assert.is(store.term(0), 0);
    assert.equal(store.initialState(), { hardState: { term: 0, vote: 0, commit: 0 }, confState: { voters: [], learners: [] } });
    assert.throws(() => store.term(1), (e: unknown) => e instanceof UnavailableError);
    close();
  });

  s('save appends entries and the hard state; a conflicting tail is replaced', () => {
    const { store, close } = open();
    store.save({ entries: [entry(1, 1), entry(2, 1), entry(3, 1)], hardState: { term: 1, vote: 2, commit: 1 } });
    store.save({ entries: [entry(2, 2, 'new2')] });
    assert.is(store.lastIndex(), 2);
    assert.equal(texts(store.entries(1, 3, Infinity)), ['1/1/e1', '2/2/new2']);
    assert.equal(store.initialState().hardState, { term: 1, vote: 2, commit: 1 });
    close();
  });

  s('entries honours the size limit but returns at least one entry', () => {
    const { store, close } = open();
    store.save({ entries: [entry(1, 1, 'x'.repeat(100)), entry(2, 1, 'y'.repeat(100)), entry(3, 1)] });
    assert.is(store.entries(1, 4, 1).length, 1);
    assert.is(store.entries(1, 4, 240).length, 2);
    assert.is(store.entries(1, 4, 1e9).length, 3);
    assert.throws(() => store.entries(1, 5, 1e9), (e: unknown) => e instanceof UnavailableError);
    close();
  });

  s('createSnapshot then compact keeps the anchor term and refuses compacted reads', () => {
    const { store, close } = open();
    store.save({ entries: [1, 2, 3, 4, 5].map((i) => entry(i, i < 3 ? 1 : 2)) });
    store.createSnapshot(4, { voters: [1, 2, 3], learners: [] }, new TextEncoder().encode('/snapshots/4.db'));
    store.compact(3);
    assert.is(store.firstIndex(), 3);
    assert.is(store.term(2), 1, 'anchor term');
    assert.throws(() => store.term(1), (e: unknown) => e instanceof CompactedError);
    assert.throws(() => store.entries(2, 4, 1e9), (e: unknown) => e instanceof CompactedError);
    assert.equal(texts(store.entries(3, 6, 1e9)), ['3/2/e3', '4/2/e4', '5/2/e5']);
    assert.equal(store.snapshot().meta, { index: 4, term: 2, confState: { voters: [1, 2, 3], learners: [] } });
    assert.throws(() => store.compact(6), /would be lost/);
    close();
  });

  s('a snapshot in save replaces the whole log', () => {
    const { store, close } = open();
    store.save({ entries: [entry(1, 1), entry(2, 1)] });
    store.save({ snapshot: { meta: { index: 10, term: 3, confState: { voters: [1], learners: [4] } }, data: new Uint8Array([7]) }, entries: [entry(11, 3)], hardState: { term: 3, vote: 0, commit: 10 } });
    assert.is(store.firstIndex(), 11);
    assert.is(store.lastIndex(), 11);
    assert.is(store.term(10), 3);
    assert.equal(store.initialState().confState, { voters: [1], learners: [4] });
    assert.equal([...store.snapshot().data], [7]);
    close();
  });

  s('appending after a gap is refused', () => {
    const { store, close } = open();
    store.save({ entries: [entry(1, 1)] });
    assert.throws(() => store.save({ entries: [entry(3, 1)] }), /missing log entries/);
    close();
  });

  s.run();
}
