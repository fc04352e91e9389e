// The agent's DNS server: answers the cluster zone (node-agent/network/dns-zone.ts) from the agent's in-memory
// view of Services and EndpointSlices, which it keeps while no API server is reachable, and forwards every other
// name to the host's resolvers. UDP and TCP on one address and port (the node's address, port 53, by default).
//
// Contracts:
// - A name of the zone (or a reverse name of the cluster's networks) is never sent upstream.
// - UDP answers fit the client's limit (512 bytes, or its EDNS0 payload size up to 4096); a bigger one goes out
//   truncated (TC, question only) and the client asks again over TCP, which has no limit.
// - Forwarded queries: at most `maxInFlight` at once (beyond that SERVFAIL at once, so a flood costs bounded
//   memory); each upstream gets `timeoutMs`, tried in resolv.conf order; none answering is SERVFAIL.
// - The zone is rebuilt on the first query after the view changed, so a burst of changes costs one rebuild.
import { randomInt } from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';
import { readFile } from 'node:fs/promises';
import packet, { type DecodedPacket, type Packet, type Question } from 'dns-packet';
import type { Logger } from 'pino';
import { ClusterZone, type QueryType, type ZoneSettings } from './dns-zone.js';
import type { ServiceView } from './service-cache.js';
import { parseResolvConf } from './pod-dns.js';

export interface DnsServerOptions {
  /** The address to listen on (the node's DNS address) and the port (53; 0 picks a free one, for tests). */
  host: string;
  port: number;
  view: ServiceView;
  zone: ZoneSettings;
  /** Resolvers for every other name ("IP" or "IP:PORT"); none: such names get SERVFAIL. */
  upstreams: string[];
  /** Per upstream try (default 2000 ms). */
  timeoutMs?: number;
  /** Forwarded queries waiting for an upstream at once (default 1024). */
  maxInFlight?: number;
  log?: Logger;
}

export interface DnsServer {
  /** The port bound (UDP and TCP alike). */
  port: number;
  /** Serves the zone under new settings (the cluster domain or networks changed) from the next query on. */
  setZone(zone: ZoneSettings): void;
  close(): Promise<void>;
}

/** The DNS port is taken, or the address is not this machine's: the agent logs it and runs without DNS. */
export class DnsListenError extends Error {
  constructor(readonly host: string, readonly port: number, cause: Error) {
    super(`cannot serve DNS on ${host}:${port}: ${cause.message}${(cause as NodeJS.ErrnoException).code === 'EADDRINUSE' ? ' (another DNS server, such as systemd-resolved or dnsmasq, holds that port on that address)' : ''}`);
    this.name = 'DnsListenError';
  }
}

const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
const UDP_LIMIT = 512;
const EDNS_MAX = 4096;
const TCP_IDLE_MS = 10_000;

/**
 * The host's resolvers for forwarding: the nameservers of resolv.conf (default /etc/resolv.conf), less the DNS
 * server's own address (a resolv.conf naming this server would loop).
 */
export async function hostUpstreams(ownAddress: string, file = '/etc/resolv.conf'): Promise<string[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return parseResolvConf(text).nameservers.filter((ns) => ns !== ownAddress);
}

function splitHostPort(upstream: string): { host: string; port: number } {
  const m = /^\[(.+)\]:(\d+)$/.exec(upstream) ?? /^([^:]+):(\d+)$/.exec(upstream);
  return m ? { host: m[1]!, port: Number(m[2]) } : { host: upstream, port: 53 };
}

/** Encoded answers of the zone kept at most (then the cache starts again empty). */
const ANSWER_CACHE_MAX = 10_000;

/**
 * The zone of the view, rebuilt lazily after a change, and the encoded answers it gave: keyed by the query's
 * bytes after its id (flags, counts, question, EDNS) and the transport, so a repeated question is answered
 * without decoding or encoding. Both are dropped together when the view or the settings change.
 */
class ZoneFollower {
  private zone: ClusterZone | undefined;
  readonly answers = new Map<string, Buffer>();
  readonly stop: () => void;
  constructor(private readonly view: ServiceView, private settings: ZoneSettings) {
    this.stop = view.onChange(() => this.invalidate());
  }
  set(settings: ZoneSettings): void {
    this.settings = settings;
    this.invalidate();
  }
  private invalidate(): void {
    this.zone = undefined;
    this.answers.clear();
  }
  remember(key: string, answer: Buffer): void {
    if (this.answers.size >= ANSWER_CACHE_MAX) this.answers.clear();
    this.answers.set(key, answer);
  }
  current(): ClusterZone {
    return this.zone ??= new ClusterZone(this.settings, this.view.services(), (ns, name) => this.view.slicesOf(ns, name));
  }
}

interface Pending {
  resolve: (reply: Buffer) => void;
  timer: NodeJS.Timeout;
  /** Who was asked, and the question section asked (lower case): a reply from elsewhere or about another question is ignored. */
  from: { host: string; port: number };
  question: string;
}

/** The question section of a message (one question, uncompressed, as in a query), lower case; '' when malformed. */
function questionOf(msg: Buffer): string {
  let i = 12;
  while (i < msg.length && msg[i] !== 0) i += msg[i]! + 1;
  return i + 5 <= msg.length ? msg.toString('latin1', 12, i + 5).toLowerCase() : '';
}

/** Listens until close(); resolves once bound on UDP and TCP, rejects with DnsListenError when it cannot. */
export async function startDnsServer(options: DnsServerOptions): Promise<DnsServer> {
  const timeoutMs = options.timeoutMs ?? 2000;
  const maxInFlight = options.maxInFlight ?? 1024;
  const zones = new ZoneFollower(options.view, options.zone);
  const upstreams = options.upstreams.map(splitHostPort);
  const family = net.isIPv6(options.host) ? 'udp6' : 'udp4';
  const udp = dgram.createSocket({ type: family });
  const tcp = net.createServer();
  const connections = new Set<net.Socket>();
  // One socket per address family sends every forwarded UDP query; replies are matched by a random id, the
  // upstream's address and the question, so that a forged reply must guess all three.
  const forwarders = new Map<'udp4' | 'udp6', dgram.Socket>();
  const pending = new Map<number, Pending>();
  let inFlight = 0;

  const forwarder = (type: 'udp4' | 'udp6'): dgram.Socket => {
    let s = forwarders.get(type);
    if (s) return s;
    s = dgram.createSocket({ type });
    s.on('message', (msg, rinfo) => {
      if (msg.length < 12) return;
      const p = pending.get(msg.readUInt16BE(0));
      if (!p || rinfo.address !== p.from.host || rinfo.port !== p.from.port || questionOf(msg) !== p.question) return;
      pending.delete(msg.readUInt16BE(0));
      clearTimeout(p.timer);
      p.resolve(msg);
    });
    s.on('error', (err) => options.log?.warn({ err: err.message }, 'DNS forwarding socket error'));
    forwarders.set(type, s);
    return s;
  };

  /** One try on one upstream: its reply with the query's id, or undefined on timeout. */
  const askUdp = (query: Buffer, to: { host: string; port: number }): Promise<Buffer | undefined> => new Promise((resolve) => {
    let id = randomInt(65536);
    while (pending.has(id)) id = randomInt(65536);
    const original = query.readUInt16BE(0);
    const out = Buffer.from(query);
    out.writeUInt16BE(id, 0);
    const timer = setTimeout(() => { pending.delete(id); resolve(undefined); }, timeoutMs);
    pending.set(id, {
      resolve: (reply) => {
        reply.writeUInt16BE(original, 0);
        resolve(reply);
      },
      timer,
      from: to,
      question: questionOf(query),
    });
    forwarder(net.isIPv6(to.host) ? 'udp6' : 'udp4').send(out, to.port, to.host, (err) => {
      if (!err) return;
      clearTimeout(timer);
      pending.delete(id);
      resolve(undefined);
    });
  });

  /** One try over TCP (for TCP clients, and for UDP answers that came back truncated). */
  const askTcp = (query: Buffer, to: { host: string; port: number }): Promise<Buffer | undefined> => new Promise((resolve) => {
    const socket = net.connect({ host: to.host, port: to.port });
    let buffered = Buffer.alloc(0);
    const done = (reply: Buffer | undefined): void => {
      socket.destroy();
      clearTimeout(timer);
      resolve(reply);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    socket.on('connect', () => socket.write(Buffer.concat([lengthPrefix(query.length), query])));
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) done(buffered.subarray(2, 2 + buffered.readUInt16BE(0)));
    });
    socket.on('error', () => done(undefined));
    socket.on('close', () => done(undefined));
  });

  /** The upstreams' answer to a query (its id kept), or undefined when none answered or too many wait already. */
  const forward = async (query: Buffer, overTcp: boolean): Promise<Buffer | undefined> => {
    if (inFlight >= maxInFlight) return undefined;
    inFlight++;
    try {
      for (const to of upstreams) {
        let reply = overTcp ? await askTcp(query, to) : await askUdp(query, to);
        if (reply && !overTcp && (reply.readUInt16BE(2) & packet.TRUNCATED_RESPONSE)) reply = await askTcp(query, to) ?? reply;
        if (reply) return reply;
      }
      return undefined;
    } finally {
      inFlight--;
    }
  };

  /** The answer to one message, sized for the transport (limit: bytes a UDP answer may have; Infinity on TCP). */
  const answer = async (msg: Buffer, udpClient: boolean): Promise<Buffer | undefined> => {
    const key = msg.length >= 12 ? (udpClient ? 'u' : 't') + msg.toString('latin1', 2) : '';
    const known = zones.answers.get(key);
    if (known) {
      const reply = Buffer.from(known);
      msg.copy(reply, 0, 0, 2);
      return reply;
    }
    let query: DecodedPacket;
    try {
      query = packet.decode(msg);
    } catch {
      return msg.length >= 12 ? errorReply(msg.readUInt16BE(0), msg.readUInt16BE(2), [], RCODE.FORMERR) : undefined;
    }
    if (query.type !== 'query') return undefined;
    const flags = query.flags ?? 0;
    const questions = query.questions ?? [];
    const opt = query.additionals?.find((a) => a.type === 'OPT');
    const limit = !udpClient ? Infinity : opt && 'udpPayloadSize' in opt ? Math.min(Math.max(opt.udpPayloadSize, UDP_LIMIT), EDNS_MAX) : UDP_LIMIT;
    if (((flags >> 11) & 0xf) !== 0) return errorReply(query.id ?? 0, flags, questions, RCODE.NOTIMP);
    const q = questions[0];
    if (questions.length !== 1 || !q) return errorReply(query.id ?? 0, flags, questions, RCODE.FORMERR);
    const zone = zones.current();
    if (!zone.isLocal(q.name)) {
      const reply = await forward(msg, !udpClient);
      return fit(reply ?? errorReply(query.id ?? 0, flags, questions, RCODE.SERVFAIL), limit);
    }
    const local = zone.lookup(q.name, q.type as QueryType);
    const response: Packet = {
      id: query.id ?? 0,
      type: 'response',
      flags: packet.AUTHORITATIVE_ANSWER | packet.RECURSION_AVAILABLE | (flags & packet.RECURSION_DESIRED) | RCODE[local.rcode],
      questions: [q],
      answers: local.answers,
      authorities: local.authorities,
      additionals: local.additionals,
    };
    if (opt) response.additionals = [...response.additionals ?? [], { type: 'OPT', name: '.', udpPayloadSize: EDNS_MAX, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }];
    if (local.chase !== undefined) {
      await chase(response, q, local.chase, !udpClient);
      return fit(packet.encode(response), limit);
    }
    const reply = fit(packet.encode(response), limit);
    zones.remember(key, reply);
    return Buffer.from(reply);
  };

  /** An ExternalName's target outside the zone: the upstreams' records of it follow the CNAME. */
  const chase = async (response: Packet, q: Question, target: string, overTcp: boolean): Promise<void> => {
    const reply = await forward(packet.encode({ id: response.id ?? 0, type: 'query', flags: packet.RECURSION_DESIRED, questions: [{ ...q, name: target }] }), overTcp);
    if (!reply) return;
    try {
      const upstream = packet.decode(reply);
      response.answers = [...response.answers ?? [], ...(upstream.answers ?? [])];
      response.authorities = upstream.authorities ?? [];
      response.flags = ((response.flags ?? 0) & ~0xf & ~packet.AUTHORITATIVE_ANSWER) | ((upstream.flags ?? 0) & 0xf);
    } catch {
      // A malformed upstream answer leaves the CNAME alone; the client asks for the target itself.
    }
  };

  udp.on('message', (msg, rinfo) => {
    answer(msg, true).then((reply) => {
      if (reply) udp.send(reply, rinfo.port, rinfo.address);
    }, (err: unknown) => options.log?.warn({ err: (err as Error).message }, 'DNS query failed'));
  });
  udp.on('error', (err) => options.log?.warn({ err: err.message }, 'DNS UDP socket error'));

  tcp.on('connection', (socket) => {
    connections.add(socket);
    socket.setTimeout(TCP_IDLE_MS, () => socket.destroy());
    socket.on('close', () => connections.delete(socket));
    socket.on('error', () => socket.destroy());
    let buffered = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
        const msg = buffered.subarray(2, 2 + buffered.readUInt16BE(0));
        buffered = buffered.subarray(2 + msg.length);
        answer(Buffer.from(msg), false).then((reply) => {
          if (reply && !socket.destroyed) socket.write(Buffer.concat([lengthPrefix(reply.length), reply]));
        }, () => socket.destroy());
      }
    });
  });

  const port = await new Promise<number>((resolve, reject) => {
    udp.once('error', reject);
    udp.bind(options.port, options.host, () => {
      udp.off('error', reject);
      resolve(udp.address().port);
    });
  }).catch((err: Error) => {
    udp.close();
    zones.stop();
    throw new DnsListenError(options.host, options.port, err);
  });
  await new Promise<void>((resolve, reject) => {
    tcp.once('error', reject);
    tcp.listen(port, options.host, () => {
      tcp.off('error', reject);
      resolve();
    });
  }).catch((err: Error) => {
    udp.close();
    zones.stop();
    throw new DnsListenError(options.host, port, err);
  });
  options.log?.info({ address: options.host, port, domain: options.zone.domain, upstreams: options.upstreams }, 'DNS server listening');

  return {
    port,
    setZone: (zone) => zones.set(zone),
    async close() {
      zones.stop();
      for (const p of pending.values()) clearTimeout(p.timer);
      pending.clear();
      for (const s of connections) s.destroy();
      await Promise.all([
        new Promise<void>((resolve) => udp.close(() => resolve())),
        new Promise<void>((resolve) => tcp.close(() => resolve())),
        ...[...forwarders.values()].map((s) => new Promise<void>((resolve) => s.close(() => resolve()))),
      ]);
    },
  };
}

function lengthPrefix(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n, 0);
  return b;
}

function errorReply(id: number, queryFlags: number, questions: Question[], rcode: number): Buffer {
  return packet.encode({
    id, type: 'response', flags: packet.RECURSION_AVAILABLE | (queryFlags & packet.RECURSION_DESIRED) | rcode, questions,
  });
}

/** `reply` when it fits `limit`; else the same header with TC set and only the question (RFC 2181 9, RFC 7766). */
function fit(reply: Buffer, limit: number): Buffer {
  if (reply.length <= limit) return reply;
  const decoded = packet.decode(reply);
  return packet.encode({ id: decoded.id ?? 0, type: 'response', flags: (decoded.flags ?? 0) | packet.TRUNCATED_RESPONSE, questions: decoded.questions ?? [] });
}
