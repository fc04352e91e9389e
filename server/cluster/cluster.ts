import { existsSync, mkdirSync, readFileSync, writeFileSync, readdirSync, rmSync, createWriteStream } from 'node:fs';
import { basename, join } from 'node:path';
import { randomBytes, randomInt, randomUUID, timingSafeEqual, createHash } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { Hono } from 'hono';
import type { Context } from 'hono';
import { RAFT_LOG_WAY_OUT, SqliteStorage } from '../raft/sqlite-storage.js';
import { encodeConfChange } from '../raft/types.js';
import { ProposalDroppedError } from '../raft/raft.js';
import type { ConfChange, ConfState, NodeId, Role } from '../raft/types.js';
import { StoreError } from '../store/types.js';
import type { Command, StoredObject } from '../store/types.js';
import { MEMBERS_RESOURCE } from '../objects/service.js';
import type { ObjectService } from '../objects/service.js';
import { RaftMember } from './member.js';
import { HttpTransport } from './transport.js';
import { fromWire, parseWireBatch, parseWireMessage, WireError } from './codec.js';
import type { WireMessage } from './codec.js';
import { decodeSnapshotFile, describeSnapshotFile, encodeSnapshotFile, sha256OfFile, sha256OfFileStreamed, stateFileRevision, verifiedSnapshotPath } from './snapshot-file.js';
import type { SnapshotFile } from './snapshot-file.js';
import { DataCorruptionError } from '../store/sqlite-check.js';
import { SqliteStore } from '../store/sqlite-store.js';
import { MASTERS_GROUP, inGroup, isServer, type Identity as CallerIdentity } from '../api/middleware/auth.js';
import { pinnedFetch, type ClientTls } from '../../client/client.js';
import { ENCRYPTION_CONFIG_PATH } from '../secrets/secrets-encrypt.js';
import type { ClusterCa } from '../pki/ca.js';
import { statusObject } from '../../api-types/index.js';

/** A member's files in its data dir (beside state.db, the state machine). */
export const MEMBER_FILES = { identity: 'cluster.json', secret: 'cluster-secret', log: 'raft.db', snapshots: 'snapshots' } as const;

export interface ClusterConfig {
  dataDir: string;
  /** The URL other members reach this one at (its API base URL). */
  advertiseUrl: string;
  /** URL of any member of an existing cluster to join; with `secret`, the cluster secret it was created with. */
  join?: string;
  secret?: string;
  /**
   * The cluster CA (verifies every peer, and the member joined through) and this member's server certificate
   * (authenticates it to the others; `identity` may give nothing until it is issued, after the join).
   */
  peerTls: ClientTls;
  /** The benchmark-only plain-HTTP transport (server/run.ts ServerConfig.transport): peers send the secret as bearer. */
  plainHttpForBenchmarks?: boolean;
  tickMs?: number;
  electionTick?: number;
  snapshotEvery?: number;
}

export interface Identity { clusterId: string; memberId: NodeId }

export interface MemberStatus { id: NodeId; peerUrl: string | undefined; role: 'voter' | 'learner'; matchIndex?: number; healthy?: boolean; self: boolean }
export interface ClusterStatus { clusterId: string; memberId: NodeId; role: Role; leader: NodeId; term: number; commitIndex: number; appliedIndex: number; members: MemberStatus[] }

/**
 * One server's place in the cluster: its identity, its Raft member over SQLite log storage, the HTTP transport
 * to its peers, the peer routes (/raft/v1/*) and the membership routes (/cluster/*).
 *
 * Files in the data dir: cluster.json (cluster id and member id, made once), cluster-secret (0600, shared by
 * all members: new members join with it, and with nothing else), raft.db (log), snapshots/. Members
 * authenticate to each other with their server certificates (server/pki/serving.ts), over TLS verified against
 * the cluster CA.
 */
export class ClusterMember {
  readonly member: RaftMember;
  readonly transport: HttpTransport;
  readonly identity: Identity;
  readonly secret: string;
  readonly #snapshotDir: string;
  readonly #logStore: SqliteStorage;
  /** Peer URLs learned from a join answer, until the replicated member records arrive. */
  readonly #seedPeers = new Map<NodeId, string>();
  readonly #roleListeners: ((leading: boolean) => void)[] = [];
  /** Requests to other members (status, forwarded membership calls): CA-verified, with this member's certificate. */
  readonly peerFetch: ReturnType<typeof pinnedFetch>;
  #leading = false;
  /** True when open() created a new cluster (this member is its first). */
  created = false;

  private constructor(readonly cfg: ClusterConfig, readonly store: SqliteStore, identity: Identity, secret: string, logStore: SqliteStorage, seeds: Map<NodeId, string>) {
    this.identity = identity;
    this.secret = secret;
    this.#seedPeers = seeds;
    this.#logStore = logStore;
    this.#snapshotDir = join(cfg.dataDir, MEMBER_FILES.snapshots);
    mkdirSync(this.#snapshotDir, { recursive: true });
    this.peerFetch = pinnedFetch(cfg.peerTls);
    this.transport = new HttpTransport({
      self: identity.memberId, snapshotDir: this.#snapshotDir, tls: cfg.peerTls, ...(cfg.plainHttpForBenchmarks ? { plainHttpBearer: secret } : {}),
      peerUrl: (id) => this.peerUrl(id),
      onUnreachable: (id) => this.member.reportUnreachable(id),
      onSnapshotSent: (id, ok) => this.member.reportSnapshot(id, ok),
    });
    this.member = new RaftMember({
      id: identity.memberId, store, logStore,
      send: (msgs) => this.transport.send(msgs),
      randomInt: (n) => randomInt(n),
      ...(cfg.tickMs ? { tickMs: cfg.tickMs } : {}),
      ...(cfg.electionTick ? { electionTick: cfg.electionTick } : {}),
      // Keep half a snapshot interval of log behind each snapshot (at most 1,000 entries) for lagging followers.
      ...(cfg.snapshotEvery ? { snapshotEvery: cfg.snapshotEvery, keepEntries: Math.min(1_000, Math.floor(cfg.snapshotEvery / 2)) } : {}),
      makeSnapshot: (index) => this.#makeSnapshot(index),
      restoreSnapshot: (data) => store.restoreFrom(this.#snapshotPath(data, 'the snapshot was not applied')),
      onRoleChange: (role) => this.#onRole(role),
      onConfChange: (_cc, conf) => this.#onConf(conf),
      confChangeCommand: membershipCommand,
    });
  }

  /**
   * Opens (or creates) this member. A new member either bootstraps a one-member cluster (no `join`) or asks
   * the cluster at `join` to add it as a learner; it is promoted to voter once it has caught up.
   */
  static async open(cfg: ClusterConfig, store: SqliteStore): Promise<ClusterMember> {
    mkdirSync(cfg.dataDir, { recursive: true, mode: 0o700 });
    const idPath = join(cfg.dataDir, MEMBER_FILES.identity);
    const secretPath = join(cfg.dataDir, MEMBER_FILES.secret);
    const logPath = join(cfg.dataDir, MEMBER_FILES.log);
    if (existsSync(idPath) && !existsSync(logPath)) {
      throw new DataCorruptionError(logPath, `is missing while ${idPath} says this data dir is member of a cluster`, RAFT_LOG_WAY_OUT);
    }
    const logStore = new SqliteStorage(logPath);
    try {
      checkAgainstLog(cfg.dataDir, store, logStore);
    } catch (err) {
      logStore.close();
      throw err;
    }
    const seeds = new Map<NodeId, string>();
    let identity: Identity;
    let secret: string;
    if (existsSync(idPath)) {
      identity = JSON.parse(readFileSync(idPath, 'utf8')) as Identity;
      secret = readFileSync(secretPath, 'utf8').trim();
    } else if (!cfg.join) {
      identity = { clusterId: randomUUID(), memberId: newMemberId() };
      // A secret chosen up front (`--join auto --token S` on every server) lets the others find and join this one.
      if (cfg.secret !== undefined) checkClusterSecret(cfg.secret);
      secret = cfg.secret ?? randomBytes(32).toString('base64url');
      // Bootstrap as etcd does: the first entry makes this member the only voter; it is committed by definition.
      logStore.save({ entries: [{ term: 1, index: 1, type: 'confChange', data: encodeConfChange({ type: 'addNode', nodeId: identity.memberId }) }], hardState: { term: 1, vote: 0, commit: 1 } });
      writeFileSync(secretPath, `${secret}\n`, { mode: 0o600 });
      writeFileSync(idPath, JSON.stringify(identity));
    } else {
      if (!cfg.secret) throw new Error('joining a cluster needs its secret (--token): the cluster-secret file of any member');
      secret = cfg.secret;
      const memberId = newMemberId();
      const joinFetch = pinnedFetch({ ca: cfg.peerTls.ca });
      const answer = await requestJoin(cfg.join, secret, { id: memberId, peerUrl: cfg.advertiseUrl }, joinFetch).finally(() => joinFetch.close());
      identity = { clusterId: answer.clusterId, memberId };
      for (const m of answer.members) seeds.set(m.id, m.peerUrl);
      writeFileSync(secretPath, `${secret}\n`, { mode: 0o600 });
      writeFileSync(idPath, JSON.stringify(identity));
    }
    const member = new ClusterMember(cfg, store, identity, secret, logStore, seeds);
    member.created = !existsSync(idPath) || (!cfg.join && logStore.lastIndex() === 1 && store.revision() === 0);
    return member;
  }

  /** Runs the member until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    const promoter = setInterval(() => this.#promoteLearners(), 500);
    try {
      await this.member.run(signal);
    } finally {
      clearInterval(promoter);
      this.transport.close();
      this.peerFetch.close();
      // The member processes nothing more (RaftMember.run): the log is checkpointed and closed.
      this.#logStore.close();
    }
  }

  /** Called with true when this member becomes leader and false when it stops being leader. */
  onLeadership(listener: (leading: boolean) => void): void {
    this.#roleListeners.push(listener);
  }

  get leading(): boolean {
    return this.#leading;
  }

  peerUrl(id: NodeId): string | undefined {
    const rec = this.store.get(MEMBERS_RESOURCE, '', String(id)) as (StoredObject & { spec?: { peerUrl?: string } }) | undefined;
    return rec?.spec?.peerUrl ?? this.#seedPeers.get(id);
  }

  /** The member record of this server, written by the leader once (for the bootstrap member, by itself). */
  async registerSelf(objects: Pick<ObjectService, 'putMember'>): Promise<void> {
    if (this.store.get(MEMBERS_RESOURCE, '', String(this.identity.memberId))) return;
    await objects.putMember(this.identity.memberId, this.cfg.advertiseUrl);
  }

  /** Constant-time check of the shared cluster secret. */
  isClusterSecret(token: string): boolean {
    const a = createHash('sha256').update(token).digest();
    const b = createHash('sha256').update(this.secret).digest();
    return timingSafeEqual(a, b);
  }

  async status(): Promise<ClusterStatus> {
    const raft = this.member.node.raft;
    const st = this.member.node.status();
    if (st.role !== 'leader' && st.lead !== 0) {
      const leaderUrl = this.peerUrl(st.lead);
      if (leaderUrl) {
        try {
          const res = await this.peerFetch(`${leaderUrl}/cluster/status`, { signal: AbortSignal.timeout(2000) });
          if (res.ok) {
            const leaderView = (await res.json()) as ClusterStatus;
            return { ...leaderView, memberId: this.identity.memberId, role: st.role, appliedIndex: this.member.applied, members: leaderView.members.map((m) => ({ ...m, self: m.id === this.identity.memberId })) };
          }
        } catch { /* fall back to the local view */ }
      }
    }
    const members: MemberStatus[] = [];
    const conf = st.confState;
    for (const [list, role] of [[conf.voters, 'voter'], [conf.learners, 'learner']] as const) {
      for (const id of list) {
        const pr = st.role === 'leader' ? raft.trk.progress.get(id) : undefined;
        members.push({
          id, peerUrl: this.peerUrl(id), role, self: id === this.identity.memberId,
          ...(pr ? { matchIndex: id === this.identity.memberId ? raft.log.lastIndex() : pr.match, healthy: id === this.identity.memberId || pr.recentActive } : {}),
        });
      }
    }
    return { clusterId: this.identity.clusterId, memberId: this.identity.memberId, role: st.role, leader: st.lead, term: st.term, commitIndex: st.commit, appliedIndex: this.member.applied, members };
  }

  /**
   * Whether `id` is a member, as far as this one knows: in the Raft configuration, or with a member record (the
   * leader writes it before it adds a joiner), or named by the join answer (a joiner knows no more at first).
   * A removed member is none of these.
   */
  isMember(id: NodeId): boolean {
    const conf = this.member.node.status().confState;
    return conf.voters.includes(id) || conf.learners.includes(id) || this.#seedPeers.has(id)
      || this.store.get(MEMBERS_RESOURCE, '', String(id)) !== undefined;
  }

  /**
   * Peer and membership routes. `identityOf(c)` returns the caller as the API's auth middleware established it
   * (name flotilla:server:<id> in SERVER_GROUP, for a member's server certificate); member records are written
   * through `objects`.
   */
  routes(identityOf: (c: Context) => CallerIdentity | undefined): Hono {
    const app = new Hono();
    const requirePeer = (c: Context) => {
      if (!isServer(identityOf(c))) throw new StoreError({ code: 403, reason: 'Forbidden', message: 'only cluster members may call this (with their server certificate)' });
    };
    /**
     * Raft messages come only from current members, each from the member whose certificate the caller holds
     * (over the benchmark-only plain HTTP no certificate says who the caller is: only membership is checked).
     */
    const requireSender = (c: Context, messages: WireMessage[]) => {
      requirePeer(c);
      const certified = /^flotilla:server:([1-9]\d*)$/.exec(identityOf(c)?.name ?? '')?.[1];
      for (const m of messages) {
        if (certified !== undefined && String(m.from) !== certified) {
          throw new StoreError({ code: 403, reason: 'Forbidden', message: `a message from member ${m.from} sent with the certificate of member ${certified}` });
        }
        if (!this.isMember(m.from)) throw new StoreError({ code: 403, reason: 'Forbidden', message: `member ${m.from} is not a member of this cluster` });
      }
    };
    const parsed = <T>(parse: () => T): T => {
      try {
        return parse();
      } catch (err) {
        if (err instanceof WireError) throw new StoreError({ code: 400, reason: 'BadRequest', message: err.message });
        throw err;
      }
    };
    const requireAdminOrPeer = (c: Context) => {
      const who = identityOf(c);
      if (!isServer(who) && !inGroup(who, MASTERS_GROUP)) throw new StoreError({ code: 403, reason: 'Forbidden', message: 'the admin token or a member\'s server certificate is required' });
    };
    app.post('/raft/v1/messages', async (c) => {
      requirePeer(c);
      const body: unknown = await c.req.json().catch(() => { throw new StoreError({ code: 400, reason: 'BadRequest', message: 'expected a JSON array of Raft messages' }); });
      const batch = parsed(() => parseWireBatch(body));
      requireSender(c, batch);
      this.member.receive(batch.filter((m) => m.to === this.identity.memberId && m.type !== 'MsgSnap').map((m) => fromWire(m)));
      return c.body(null, 204);
    });
    app.post('/raft/v1/snapshot', async (c) => {
      requirePeer(c);
      let header: unknown;
      try {
        header = JSON.parse(Buffer.from(c.req.header('x-flotilla-raft-message') ?? '', 'base64').toString('utf8'));
      } catch {
        throw new StoreError({ code: 400, reason: 'BadRequest', message: 'missing or malformed x-flotilla-raft-message header' });
      }
      const wire = parsed(() => parseWireMessage(header));
      const snap = wire.snapshot;
      if (wire.type !== 'MsgSnap' || !snap || snap.sha256 === undefined) {
        throw new StoreError({ code: 400, reason: 'BadRequest', message: 'the header must carry a MsgSnap with its snapshot\'s meta and sha256' });
      }
      requireSender(c, [wire]);
      if (wire.to !== this.identity.memberId) throw new StoreError({ code: 400, reason: 'BadRequest', message: `the snapshot is for member ${wire.to}, this is member ${this.identity.memberId}` });
      // The file name is this member's own: nothing the peer sent is part of it.
      const path = join(this.#snapshotDir, `received-${Date.now()}-${randomBytes(8).toString('hex')}.db`);
      let revision: number;
      try {
        await pipeline(Readable.fromWeb(c.req.raw.body as never), createWriteStream(path, { mode: 0o600 }));
        const sha256 = await sha256OfFileStreamed(path);
        if (sha256 !== snap.sha256) throw new StoreError({ code: 400, reason: 'BadRequest', message: `the snapshot's SHA-256 is ${sha256}, its sender said ${snap.sha256}: not applied` });
        const damage = SqliteStore.damage(path);
        if (damage) throw new StoreError({ code: 400, reason: 'BadRequest', message: `the snapshot is not a sound state file (${damage.what}): not applied` });
        revision = stateFileRevision(path);
      } catch (err) {
        rmSync(path, { force: true });
        throw err;
      }
      const file: SnapshotFile = { file: basename(path), sha256: snap.sha256, revision };
      this.member.receive([fromWire(wire, encodeSnapshotFile(file))]);
      return c.body(null, 204);
    });
    // One operation: the conf change and the member record's removal are one log entry (membershipCommand),
    // proposed by the leader, and the answer is 200 only once that entry is committed and applied there. Every
    // other answer but a 504 (outcome not known yet: no quorum, or the leader did not answer) means nothing
    // changed; a retry after a 504 answers 404 when the removal did happen.
    app.post('/cluster/v1/members/:id/remove', async (c) => {
      requireAdminOrPeer(c);
      const name = c.req.param('id');
      if (!/^[1-9]\d*$/.test(name)) throw new StoreError({ code: 400, reason: 'BadRequest', message: `member id must be a positive integer, got "${name}"` });
      if (!this.#leading) return this.#askLeader(`/cluster/v1/members/${name}/remove`, {});
      const id = Number(name);
      const conf = this.member.node.status().confState;
      if (![...conf.voters, ...conf.learners].includes(id)) throw new StoreError({ code: 404, reason: 'NotFound', message: `member ${name} is not in the cluster` });
      try {
        await this.member.commitConfChange({ type: 'removeNode', nodeId: id });
      } catch (err) {
        if (err instanceof ProposalDroppedError) throw new StoreError({ code: 409, reason: 'Conflict', message: `member ${name} was not removed, nothing was changed: ${err.message}` });
        throw err;
      }
      return c.json({ removed: id });
    });
    app.get('/cluster/status', async (c) => c.json(await this.status()));
    app.post('/cluster/v1/leader', async (c) => {
      requireAdminOrPeer(c);
      const body = (await c.req.json().catch(() => undefined)) as { id?: unknown } | undefined;
      const id = body?.id;
      const voters = this.member.node.status().confState.voters;
      if (typeof id !== 'number' || !voters.includes(id)) throw new StoreError({ code: 400, reason: 'BadRequest', message: `leadership goes to a voting member: {"id": one of ${voters.join(', ')}}` });
      // Only the leader can hand leadership over: ask it.
      if (!this.#leading) return this.#askLeader('/cluster/v1/leader', { id });
      this.member.transferLeadership(id);
      const deadline = Date.now() + 5_000;
      while (this.member.leader !== id && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      if (this.member.leader !== id) throw new StoreError({ code: 504, reason: 'Timeout', message: `member ${id} did not take over within 5 s (is it caught up and reachable?)` });
      return c.json({ leader: id });
    });
    return app;
  }

  /**
   * The routes a server that is not a member yet calls, authenticated by the cluster secret alone (mounted before
   * the API's auth middleware, which knows no cluster secret): joining, and receiving the cluster CA (its
   * certificate and key) and the Secrets' encryption keys (`encryptionConfig`, server/secrets/) that every member
   * holds. A joiner calls them only over TLS verified against the CA its server token pins
   * (server/join/server-membership.ts).
   */
  joinRoutes(objects: Pick<ObjectService, 'putMember'>, ca: ClusterCa, encryptionConfig: () => unknown): Hono {
    const app = new Hono();
    const requireSecret = (c: Context) => {
      const m = /^Bearer\s+(\S+)$/i.exec(c.req.header('authorization') ?? '');
      if (!m || !this.isClusterSecret(m[1]!)) throw new StoreError({ code: 401, reason: 'Unauthorized', message: 'joining takes the cluster secret as bearer token (the credential of the server token)' });
    };
    app.post('/cluster/v1/join', async (c) => {
      requireSecret(c);
      const body = (await c.req.json().catch(() => undefined)) as { id?: unknown; peerUrl?: unknown } | undefined;
      if (!body || !Number.isSafeInteger(body.id) || (body.id as number) <= 0 || typeof body.peerUrl !== 'string' || !/^https?:\/\//.test(body.peerUrl)) {
        throw new StoreError({ code: 400, reason: 'BadRequest', message: 'a join request needs {"id": positive integer, "peerUrl": "http(s)://..."}' });
      }
      // A follower would forward the conf change to the leader, which may drop it silently; the leader answers.
      if (!this.#leading) return this.#askLeader('/cluster/v1/join', body, this.secret);
      const id = body.id as NodeId;
      await objects.putMember(id, body.peerUrl);
      try {
        this.member.proposeConfChange({ type: 'addLearner', nodeId: id });
      } catch (err) {
        // One membership change at a time (servers joining together, a learner being promoted): the joiner retries.
        if (err instanceof ProposalDroppedError) throw new StoreError({ code: 503, reason: 'ServiceUnavailable', message: `membership change in progress (${err.message}); retry` });
        throw err;
      }
      const conf = this.member.node.status().confState;
      const members = [...conf.voters, ...conf.learners].map((m) => ({ id: m, peerUrl: this.peerUrl(m) })).filter((m): m is { id: NodeId; peerUrl: string } => !!m.peerUrl);
      return c.json({ clusterId: this.identity.clusterId, members });
    });
    app.get(CLUSTER_CA_PATH, (c) => {
      requireSecret(c);
      return c.json({ certPem: ca.certPem, keyPem: ca.keyPem });
    });
    app.get(ENCRYPTION_CONFIG_PATH, (c) => {
      requireSecret(c);
      return c.json(encryptionConfig());
    });
    app.onError((err, c) => {
      if (err instanceof StoreError) return c.json(statusObject(err.failure), err.failure.code as 400);
      throw err;
    });
    return app;
  }

  /** Passes a membership request on to the leader, as a member (or with `bearer`, the joiner's secret), and relays its answer. */
  async #askLeader(path: string, body: unknown, bearer?: string): Promise<Response> {
    const leaderUrl = this.peerUrl(this.member.leader);
    if (!leaderUrl) throw new StoreError({ code: 503, reason: 'ServiceUnavailable', message: 'no leader is known yet; retry' });
    let res: Response;
    try {
      // Longer than the leader's own wait for a commit (the proposal timeout), so that its answer gets through.
      res = await this.peerFetch(new URL(path, leaderUrl), { method: 'POST', headers: { ...(bearer ? { authorization: `Bearer ${bearer}` } : {}), 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(15_000) });
    } catch (err) {
      throw new StoreError({ code: 504, reason: 'Timeout', message: `the leader at ${leaderUrl} did not answer POST ${path} (${err instanceof Error ? err.message : String(err)}): its outcome is not known; see flotilla cluster status` });
    }
    return new Response(res.body, { status: res.status, headers: { 'content-type': res.headers.get('content-type') ?? 'application/json' } });
  }

  #makeSnapshot(index: number): Uint8Array {
    const path = join(this.#snapshotDir, `snapshot-${String(index).padStart(12, '0')}.db`);
    rmSync(path, { force: true });
    // The log is compacted behind this snapshot: what the store applied must be durable first.
    this.store.checkpoint();
    this.store.snapshotTo(path);
    const file: SnapshotFile = { file: basename(path), sha256: sha256OfFile(path), revision: this.store.revision() };
    // Keep the newest two of our own snapshots and drop received ones already applied, but never the file the
    // log's snapshot record names until the new snapshot replaces it there (a crash in between must find it).
    const recorded = decodeSnapshotFile(this.#logStore.snapshot().data);
    const keep = 'file' in recorded ? recorded.file : undefined;
    const files = readdirSync(this.#snapshotDir).sort().filter((f) => f !== keep);
    const own = files.filter((f) => f.startsWith('snapshot-'));
    for (const f of own.slice(0, -2)) rmSync(join(this.#snapshotDir, f), { force: true });
    for (const f of files.filter((f) => f.startsWith('received-'))) rmSync(join(this.#snapshotDir, f), { force: true });
    return encodeSnapshotFile(file);
  }

  /** The checked path of the file a snapshot's data names; a DataCorruptionError when it is damaged. */
  #snapshotPath(data: Uint8Array, wayOut: string): string {
    const f = decodeSnapshotFile(data);
    if ('legacyPath' in f) throw new Error(`snapshot data names no checked file: ${f.legacyPath}`);
    return verifiedSnapshotPath(this.#snapshotDir, f, wayOut);
  }

  #onRole(role: Role): void {
    const leading = role === 'leader';
    if (leading === this.#leading) return;
    this.#leading = leading;
    for (const l of this.#roleListeners) l(leading);
  }

  #onConf(conf: ConfState): void {
    // A lone voter need not wait an election timeout to lead.
    if (conf.voters.length === 1 && conf.voters[0] === this.identity.memberId && this.member.leader === 0) this.member.campaign();
  }

  /** Leader only: a learner whose log has caught up with the commit index becomes a voter. */
  #promoteLearners(): void {
    if (!this.#leading) return;
    const raft = this.member.node.raft;
    for (const id of raft.trk.learners) {
      const pr = raft.trk.progress.get(id);
      if (pr && pr.match >= raft.log.committed) {
        try { this.member.proposeConfChange({ type: 'addNode', nodeId: id }); } catch { /* retried on the next round */ }
      }
    }
  }
}

/**
 * Start-up checks of the state against the Raft log, made before the member runs: the snapshot the log refers
 * to is there and intact (a snapshot record from before the hashes gets its hash now); the state has not
 * applied more than the log holds (the log lost committed entries: refused); a state behind the snapshot
 * (rebuilt, or its file damaged and set aside) is restored from the snapshot, and the log replays the rest.
 */
function checkAgainstLog(dataDir: string, store: SqliteStore, logStore: SqliteStorage): void {
  const logPath = join(dataDir, MEMBER_FILES.log);
  const snapshotDir = join(dataDir, MEMBER_FILES.snapshots);
  const snap = logStore.snapshot();
  if (store.revision() > logStore.lastIndex()) {
    throw new DataCorruptionError(logPath, `the Raft log ends at index ${logStore.lastIndex()}, but the state has applied entries up to ${store.revision()}: committed entries are missing from the log`, RAFT_LOG_WAY_OUT);
  }
  if (snap.meta.index === 0) return;
  let file = decodeSnapshotFile(snap.data);
  if ('legacyPath' in file) {
    // Looked for in this data dir's snapshots (the dir may have moved since the path was written).
    const name = basename(file.legacyPath);
    if (!existsSync(join(snapshotDir, name))) throw new DataCorruptionError(join(snapshotDir, name), 'the snapshot file the Raft log refers to is missing', RAFT_LOG_WAY_OUT);
    file = describeSnapshotFile(snapshotDir, name);
    logStore.replaceSnapshotData(encodeSnapshotFile(file));
  }
  const path = verifiedSnapshotPath(snapshotDir, file, RAFT_LOG_WAY_OUT);
  if (store.revision() < file.revision) store.restoreFrom(path);
}

/** The state-machine write that a committed conf change carries (see MemberOptions.confChangeCommand). */
export function membershipCommand(cc: ConfChange): Command | undefined {
  return cc.type === 'removeNode' ? { op: 'delete', resource: MEMBERS_RESOURCE, namespace: '', name: String(cc.nodeId) } : undefined;
}

/** Shortest cluster secret accepted from a user (--token with --cluster-init); made ones are 43 characters. */
export const MIN_SECRET_LENGTH = 32;

/**
 * Refuses a user-chosen cluster secret that could be guessed: the secret keys the proofs servers forming a
 * cluster exchange, which anyone on the network can ask for and test guesses against offline. It must be long
 * (MIN_SECRET_LENGTH) and varied (at least 12 different characters, no character more than a quarter of it).
 */
export function checkClusterSecret(secret: string): void {
  const counts = new Map<string, number>();
  for (const ch of secret) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  const most = Math.max(0, ...counts.values());
  if (secret.length < MIN_SECRET_LENGTH || counts.size < 12 || most > secret.length / 4) {
    throw new Error(`the cluster secret (--token) is too weak: it needs at least ${MIN_SECRET_LENGTH} characters of some variety (at least 12 different ones); `
      + 'make a good one with: openssl rand -base64 32 (or: node -e "console.log(require(\'crypto\').randomBytes(32).toString(\'base64url\'))")');
  }
}

/** Member ids: random positive integers that JSON carries exactly. */
export function newMemberId(): NodeId {
  return randomInt(1, 2 ** 47);
}

/** How long a joiner keeps retrying answers of 503 (no leader yet, another membership change in progress). */
const JOIN_RETRY_MS = 30_000;

/** Where a joining server receives the cluster CA (certificate and key), with the cluster secret. */
export const CLUSTER_CA_PATH = '/cluster/v1/ca';

async function requestJoin(url: string, secret: string, body: { id: NodeId; peerUrl: string }, fetch: typeof globalThis.fetch): Promise<{ clusterId: string; members: { id: NodeId; peerUrl: string }[] }> {
  const deadline = Date.now() + JOIN_RETRY_MS;
  for (;;) {
    let res: Response;
    try {
      res = await fetch(new URL('/cluster/v1/join', url), { method: 'POST', headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(15_000) });
    } catch (err) {
      throw new Error(`cannot reach ${url} to join: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (res.status === 503 && Date.now() < deadline) {
      await res.body?.cancel();
      await new Promise((r) => setTimeout(r, 200 + randomInt(300)));
      continue;
    }
    if (!res.ok) throw new Error(`joining through ${url} failed with ${res.status}: ${(await res.text()).slice(0, 300)}`);
    return (await res.json()) as { clusterId: string; members: { id: NodeId; peerUrl: string }[] };
  }
}
