// The simulator's state machine: a key-value map fed by committed entries, with per-client deduplication
// (a proposal delivered twice, or retried, applies once), which the real server store needs as well.

export interface KvCommand {
  client: number;
  op: number;
  key: string;
  value: string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeKvCommand(c: KvCommand): Uint8Array {
  return encoder.encode(JSON.stringify(c));
}

export function decodeKvCommand(data: Uint8Array): KvCommand {
  const c = JSON.parse(decoder.decode(data)) as Partial<KvCommand>;
  if (typeof c.client !== 'number' || typeof c.op !== 'number' || typeof c.key !== 'string' || typeof c.value !== 'string') {
    throw new Error(`malformed kv command: ${decoder.decode(data)}`);
  }
  return c as KvCommand;
}

export class KvStateMachine {
  private data = new Map<string, string>();
  /** Highest op id applied per client: ops arrive in increasing id order from one client. */
  private lastOp = new Map<number, number>();
  applied = 0;

  /** Returns whether the command took effect (false for a duplicate or an op overtaken by a later one). */
  apply(index: number, c: KvCommand): boolean {
    this.applied = index;
    if ((this.lastOp.get(c.client) ?? -1) >= c.op) return false;
    this.lastOp.set(c.client, c.op);
    this.data.set(c.key, c.value);
    return true;
  }

  get(key: string): string {
    return this.data.get(key) ?? '';
  }

  snapshot(): Uint8Array {
    return encoder.encode(JSON.stringify({ data: [...this.data], lastOp: [...this.lastOp], applied: this.applied }));
  }

  static restore(bytes: Uint8Array): KvStateMachine {
    const kv = new KvStateMachine();
    if (bytes.byteLength === 0) return kv;
    const parsed = JSON.parse(decoder.decode(bytes)) as { data: [string, string][]; lastOp: [number, number][]; applied: number };
    kv.data = new Map(parsed.data);
    kv.lastOp = new Map(parsed.lastOp);
    kv.applied = parsed.applied;
    return kv;
  }
}
