import http from 'node:http';
import https from 'node:https';
import { createReadStream } from 'node:fs';
import { TlsAgents, type ClientTls } from '../../client/client.js';
import type { Message, NodeId } from '../raft/types.js';
import { toWire } from './codec.js';
import { decodeSnapshotFile, verifiedSnapshotPath } from './snapshot-file.js';

export interface TransportOptions {
  /** This member's id, to skip messages to itself. */
  self: NodeId;
  /** Where the snapshot files a MsgSnap names are (server/cluster/snapshot-file.ts). */
  snapshotDir: string;
  /** The peer URL of a member (its API base URL), or undefined when not known (yet). */
  peerUrl: (id: NodeId) => string | undefined;
  /** The cluster CA to verify peers with, and this member's certificate, which authenticates it to them. */
  tls: ClientTls;
  /**
   * Only for the plain-HTTP benchmark transport (server/run.ts ServerConfig.transport), where no client
   * certificate can travel: the bearer (the cluster secret) peers authenticate with there. Never set over TLS.
   */
  plainHttpBearer?: string;
  onUnreachable: (id: NodeId) => void;
  onSnapshotSent: (id: NodeId, ok: boolean) => void;
  timeoutMs?: number;
}

/**
 * Raft messages over HTTPS/1.1 keep-alive connections, each side verified against the cluster CA (peers present
 * their server certificate as client certificate; a plain http peer URL exists only for the benchmark transport). Per peer, one request is in flight; messages produced
 * meanwhile are batched into the next one, which keeps order and lets many entries share one round trip.
 * A MsgSnap streams the snapshot file in its own request (chunked body), then its status is reported to Raft.
 * Delivery is best effort: a failed request drops its batch and tells Raft the peer is unreachable.
 */
export class HttpTransport {
  readonly #agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  readonly #tlsAgents: TlsAgents;
  readonly #queues = new Map<NodeId, Message[]>();
  readonly #busy = new Set<NodeId>();
  /** After close() nothing more is sent: the member's store, which peerUrl reads, is closed next. */
  #closed = false;

  constructor(readonly opts: TransportOptions) {
    this.#tlsAgents = new TlsAgents(opts.tls, 4);
  }

  send(messages: Message[]): void {
    if (this.#closed) return;
    for (const m of messages) {
      if (m.to === this.opts.self) continue;
      if (m.type === 'MsgSnap') { void this.#sendSnapshot(m); continue; }
      const q = this.#queues.get(m.to) ?? [];
      q.push(m);
      this.#queues.set(m.to, q);
      this.#pump(m.to);
    }
  }

  close(): void {
    this.#closed = true;
    this.#queues.clear();
    this.#agent.destroy();
    this.#tlsAgents.close();
  }

  #pump(to: NodeId): void {
    if (this.#closed || this.#busy.has(to)) return;
    const batch = this.#queues.get(to);
    if (!batch || batch.length === 0) return;
    this.#queues.set(to, []);
    const url = this.opts.peerUrl(to);
    if (!url) { this.opts.onUnreachable(to); return; }
    this.#busy.add(to);
    const body = Buffer.from(JSON.stringify(batch.map((m) => toWire(m))));
    this.#post(`${url}/raft/v1/messages`, body, { 'content-type': 'application/json' })
      .then((ok) => { if (!ok) this.opts.onUnreachable(to); })
      .finally(() => { this.#busy.delete(to); this.#pump(to); });
  }

  async #sendSnapshot(m: Message): Promise<void> {
    const url = this.opts.peerUrl(m.to);
    let ok = false;
    try {
      const file = decodeSnapshotFile(m.snapshot?.data ?? new Uint8Array());
      if (url && !('legacyPath' in file)) {
        // A file damaged since it was made is not sent (the follower would refuse it anyway).
        const path = verifiedSnapshotPath(this.opts.snapshotDir, file, 'it is not sent');
        const header = Buffer.from(JSON.stringify(toWire(m, file))).toString('base64');
        ok = await this.#post(`${url}/raft/v1/snapshot`, createReadStream(path), { 'content-type': 'application/octet-stream', 'x-flotilla-raft-message': header }, 0);
      }
    } catch {
      ok = false;
    }
    this.opts.onSnapshotSent(m.to, ok);
  }

  #post(url: string, body: Buffer | NodeJS.ReadableStream, headers: Record<string, string>, timeoutMs = this.opts.timeoutMs ?? 5_000): Promise<boolean> {
    return new Promise((resolve) => {
      const secure = url.startsWith('https:');
      const req = (secure ? https : http).request(url, { method: 'POST', agent: secure ? this.#tlsAgents.agent() : this.#agent, headers: {
        ...headers, ...(Buffer.isBuffer(body) ? { 'content-length': String(body.length) } : {}),
        ...(!secure && this.opts.plainHttpBearer ? { authorization: `Bearer ${this.opts.plainHttpBearer}` } : {}),
      } }, (res) => {
        res.resume();
        res.on('end', () => resolve((res.statusCode ?? 500) < 300));
        res.on('error', () => resolve(false));
      });
      if (timeoutMs > 0) req.setTimeout(timeoutMs, () => req.destroy());
      req.on('error', () => resolve(false));
      if (Buffer.isBuffer(body)) req.end(body);
      else body.pipe(req);
    });
  }
}
