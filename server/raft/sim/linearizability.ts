// Linearizability checker for a key-value register history: Wing & Gong's search with Lowe's memoisation
// (the algorithm Porcupine uses), run separately per key (a KV store is linearizable iff each key is).

export interface KvOperation {
  client: number;
  kind: 'put' | 'get';
  key: string;
  /** put: the value written; get: the value read ('' for a missing key). */
  value: string;
  call: number;
  /** Infinity when the outcome is unknown (a put that timed out may still take effect at any later time). */
  ret: number;
}

export interface CheckResult {
  ok: boolean;
  /** The first key whose history is not linearizable. */
  key?: string;
  /** Ops per key checked, for reporting. */
  keys: number;
}

interface Node {
  op: number;
  isCall: boolean;
  /** For a call: its return node. */
  match: Node | undefined;
  prev: Node | undefined;
  next: Node | undefined;
}

/** One register: does `ops` have a linearization starting from the value ''? */
export function checkRegister(ops: readonly KvOperation[]): boolean {
  for (const op of ops) {
    if (!(op.call <= op.ret)) throw new Error(`operation ${JSON.stringify(op)} returns before it is called`);
  }
  type Event = { time: number; op: number; isCall: boolean };
  const events: Event[] = [];
  ops.forEach((op, i) => {
    events.push({ time: op.call, op: i, isCall: true }, { time: op.ret, op: i, isCall: false });
  });
  // On equal times a call sorts before a return: the two operations count as concurrent (the permissive reading).
  events.sort((a, b) => a.time - b.time || (a.isCall === b.isCall ? a.op - b.op : a.isCall ? -1 : 1));

  const head: Node = { op: -1, isCall: false, match: undefined, prev: undefined, next: undefined };
  let tail = head;
  const calls = new Map<number, Node>();
  for (const e of events) {
    const n: Node = { op: e.op, isCall: e.isCall, match: undefined, prev: tail, next: undefined };
    tail.next = n;
    tail = n;
    if (e.isCall) calls.set(e.op, n);
    else calls.get(e.op)!.match = n;
  }

  const lift = (call: Node): void => {
    call.prev!.next = call.next;
    if (call.next) call.next.prev = call.prev;
    const ret = call.match!;
    ret.prev!.next = ret.next;
    if (ret.next) ret.next.prev = ret.prev;
  };
  const unlift = (call: Node): void => {
    const ret = call.match!;
    ret.prev!.next = ret;
    if (ret.next) ret.next.prev = ret;
    call.prev!.next = call;
    if (call.next) call.next.prev = call;
  };

  const words = new Uint32Array(Math.ceil(ops.length / 32) || 1);
  const cache = new Set<string>();
  const stack: { call: Node; state: string }[] = [];
  let state = '';
  let entry = head.next;
  while (head.next) {
    if (!entry) throw new Error('linearizability search ran off the history');
    if (entry.isCall) {
      const op = ops[entry.op]!;
      const ok = op.kind === 'put' || op.value === state;
      if (ok) {
        const newState = op.kind === 'put' ? op.value : state;
        const w = entry.op >>> 5;
        const bit = 1 << (entry.op & 31);
        words[w] = words[w]! | bit;
        const key = `${words.join(',')}|${newState}`;
        if (!cache.has(key)) {
          cache.add(key);
          stack.push({ call: entry, state });
          state = newState;
          lift(entry);
          entry = head.next;
          continue;
        }
        words[w] = words[w]! & ~bit;
      }
      entry = entry.next;
    } else {
      // A return whose call is still pending: something before it must be linearized differently.
      const top = stack.pop();
      if (!top) return false;
      state = top.state;
      const w = top.call.op >>> 5;
      words[w] = words[w]! & ~(1 << (top.call.op & 31));
      unlift(top.call);
      entry = top.call.next;
    }
  }
  return true;
}

export function checkKvHistory(ops: readonly KvOperation[]): CheckResult {
  const byKey = new Map<string, KvOperation[]>();
  for (const op of ops) {
    const list = byKey.get(op.key);
    if (list) list.push(op);
    else byKey.set(op.key, [op]);
  }
  for (const key of [...byKey.keys()].sort()) {
    if (!checkRegister(byKey.get(key)!)) return { ok: false, key, keys: byKey.size };
  }
  return { ok: true, keys: byKey.size };
}
