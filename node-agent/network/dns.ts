// The agent's DNS server: answers the cluster zone (node-agent/network/dns-zone.ts) from the agent's in-memory
// view of Services and EndpointSlices, which it keeps while no API server is reachable, and forwards every other
// name to the host's resolvers. UDP and TCP on one address and port (the node's address, port 53, by default).
//
// Contracts:
// - A name of the zone (or a reverse name of the cluster's networks) is never sent upstream.
// - Only the clients of `clients` (the node's pods, the node itself) are answered; any other gets REFUSED, as
//   CoreDNS's acl plugin answers, so that the server is no open resolver on the node's LAN address.
// - UDP answers fit the client's limit (512 bytes, or its EDNS0 payload size up to 4096); a bigger one goes out
//   truncated (TC, question only) and the client asks again over TCP, which has no limit but the 64 KiB of a message.
// - Forwarded queries: at most `maxInFlight` at once (beyond that SERVFAIL at once, so a flood costs bounded
//   memory); each upstream gets `timeoutMs`, tried in resolv.conf order; none answering is SERVFAIL.
// - The zone is rebuilt on the first query after the view changed, so a burst of changes costs one rebuild; the
//   records of each of its names are encoded once, the first time they are asked (dns-wire.ts), and every reply
//   is then the query's header and question followed by those bytes.
import { randomInt } from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';
import { readFile } from 'node:fs/promises';
import packet, { type Packet } from 'dns-packet';
import type { Logger } from 'pino';
import { cidrContains, parseIPv4, type Cidr } from '../../api-types/network.js';
import { ClusterZone, type ZoneSettings } from './dns-zone.js';
import { assemble, badVersionReply, decodeQuery, encodeBody, errorReply, fitReply, udpLimit, EDNS_MAX, FLAG, HEADER_BYTES, RCODE, TYPE, type Body, type Query } from './dns-wire.js';
import type { ServiceView } from './service-cache.js';
import { parseResolvConf } from './pod-dns.js';

export interface DnsServerOptions {
  /** The address to listen on (the node's DNS address) and the port (53; 0 picks a free one, for tests). */
  host: string;
  port: number;
  view: ServiceView;
  zone: ZoneSettings;
  /** Who is answered; everyone else gets REFUSED. */
  clients: DnsClients;
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
  /** Answers these clients from the next query on. */
  setClients(clients: DnsClients): void;
  close(): Promise<void>;
}

/** The DNS port is taken, or the address is not this machine's: the agent logs it and runs without DNS. */
export class DnsListenError extends Error {
  constructor(readonly host: string, readonly port: number, cause: Error) {
    super(`cannot serve DNS on ${host}:${port}: ${cause.message}${(cause as NodeJS.ErrnoException).code === 'EADDRINUSE' ? ' (another DNS server, such as systemd-resolved or dnsmasq, holds that port on that address)' : ''}`);
    this.name = 'DnsListenError';
  }
}

const TCP_IDLE_MS = 10_000;
/** The most a DNS message over TCP can have (its 2-byte length prefix). */
const TCP_LIMIT = 65_535;
/** Client addresses whose verdict is kept at most (then they are judged again). */
const CLIENT_VERDICTS_MAX = 4096;

/**
 * The clients a DNS server answers: IPv4 addresses inside one of `networks`, and the `addresses` named (IPv4 or
 * IPv6; an IPv4-mapped IPv6 address counts as its IPv4 address).
 */
export class DnsClients {
  private readonly verdicts = new Map<string, boolean>();
  private readonly addresses: ReadonlySet<string>;
  constructor(private readonly networks: readonly Cidr[], addresses: Iterable<string>) {
    this.addresses = new Set(addresses);
  }
  allows(address: string): boolean {
    let verdict = this.verdicts.get(address);
    if (verdict === undefined) {
      const plain = address.startsWith('::ffff:') ? address.slice(7) : address;
      const ip = parseIPv4(plain);
      verdict = this.addresses.has(plain) || (ip !== undefined && this.networks.some((c) => cidrContains(c, ip)));
      if (this.verdicts.size >= CLIENT_VERDICTS_MAX) this.verdicts.clear();
      this.verdicts.set(address, verdict);
    }
    return verdict;
  }
}

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

/** Question types whose answers are kept per name; every other type has no records here, and shares key 0. */
const KEPT_TYPES: ReadonlySet<number> = new Set([TYPE.A, TYPE.NS, TYPE.CNAME, TYPE.SOA, TYPE.PTR, TYPE.TXT, TYPE.AAAA, TYPE.SRV, TYPE.ANY]);

/**
 * The zone of the view, rebuilt lazily after a change, and its answers encoded: per name of the zone and question
 * type (so at most its names times the kept types), and the NXDOMAIN answers per place of the zone's name in the
 * question (under 256). Both are dropped with the zone when the view or the settings change.
 */
class ZoneFollower {
  private zone: ClusterZone | undefined;
  private readonly bodies = new Map<string, Map<number, Body>>();
  private readonly negatives = new Map<number, Body>();
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
    this.bodies.clear();
    this.negatives.clear();
  }
  current(): ClusterZone {
    return this.zone ??= new ClusterZone(this.settings, this.view.services(), (ns, name) => this.view.slicesOf(ns, name));
  }

  /** The records answering `q` (a name isLocal() accepts), encoded to follow its question; undefined when there is an ExternalName to chase upstream. */
  body(q: Query): Body | undefined {
    const zone = this.current();
    if (q.dotInLabel) return this.negative(zone, q);
    const key = KEPT_TYPES.has(q.type) ? q.type : 0;
    const kept = this.bodies.get(q.name)?.get(key);
    if (kept) return kept;
    const local = zone.lookup(q.name, q.type);
    if (local.chase !== undefined) return undefined;
    if (local.rcode === 'NXDOMAIN' && local.answers.length === 0) return this.negative(zone, q);
    const body = encodeBody(local, FLAG.AA | RCODE[local.rcode], q.questionEnd, [[q.name, HEADER_BYTES]]);
    // Names outside the zone's index (pod records) are made up per query: not kept, so no query grows memory.
    if (zone.has(q.name)) {
      const byType = this.bodies.get(q.name) ?? new Map<number, Body>();
      this.bodies.set(q.name, byType.set(key, body));
    }
    return body;
  }

  /** NXDOMAIN: the zone's SOA, its name pointing into the question where the question ends in it. */
  private negative(zone: ClusterZone, q: Query): Body {
    const domain = zone.soa.name;
    const under = !q.dotInLabel && zone.inZone(q.name);
    const at = HEADER_BYTES + q.name.length - domain.length;
    const key = under ? at : -q.questionEnd;
    let body = this.negatives.get(key);
    if (!body) {
      body = encodeBody({ answers: [], authorities: [zone.soa], additionals: [] }, FLAG.AA | RCODE.NXDOMAIN, q.questionEnd, under ? [[domain, at]] : []);
      this.negatives.set(key, body);
    }
    return body;
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
  let clients = options.clients;
  const upstreams = options.upstreams.map(splitHostPort);
  const family = net.isIPv6(options.host) ? 'udp6' : 'udp4';
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
        if (reply && !overTcp && (reply.readUInt16BE(2) & FLAG.TC)) reply = await askTcp(query, to) ?? reply;
        if (reply) return reply;
      }
      return undefined;
    } finally {
      inFlight--;
    }
  };

  /** The answer to one message from `client`, sized for the transport; undefined when it gets none. */
  const answer = async (msg: Buffer, udpClient: boolean, client: string): Promise<Buffer | undefined> => {
    const q = decodeQuery(msg);
    if (!q) return undefined;
    if (!clients.allows(client)) return errorReply(msg, q, 'REFUSED');
    if (q.error) return errorReply(msg, q, q.error);
    if (q.edns && q.edns.version !== 0) return badVersionReply(msg, q);
    const limit = udpClient ? udpLimit(q) : TCP_LIMIT;
    try {
      if (!zones.current().isLocal(q.name)) {
        const reply = await forward(msg, !udpClient);
        return reply ? fitReply(reply, msg, q, limit) : errorReply(msg, q, 'SERVFAIL');
      }
      const body = zones.body(q);
      return body ? assemble(msg, q, body, limit) : await chased(msg, q, limit, !udpClient);
    } catch (err) {
      options.log?.warn({ err: (err as Error).message, name: q.name }, 'DNS answer failed');
      return errorReply(msg, q, 'SERVFAIL');
    }
  };

  /**
   * The answer to an ExternalName whose target is outside the zone: its CNAME(s), then the upstreams' records of
   * the target (their rcode, and not authoritative); the CNAME alone when no upstream answers.
   */
  const chased = async (msg: Buffer, q: Query, limit: number, overTcp: boolean): Promise<Buffer> => {
    const asked = packet.decode(msg).questions![0]!;
    const local = zones.current().lookup(asked.name, q.type);
    const response: Packet = {
      id: q.id, type: 'response', flags: FLAG.AA | FLAG.RA | (q.flags & FLAG.RD), questions: [asked],
      answers: local.answers, authorities: local.authorities,
      additionals: q.edns ? [{ type: 'OPT', name: '.', udpPayloadSize: EDNS_MAX, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }] : [],
    };
    const reply = await forward(packet.encode({ id: 0, type: 'query', flags: packet.RECURSION_DESIRED, questions: [{ ...asked, name: local.chase! }] }), overTcp);
    if (reply) {
      try {
        const upstream = packet.decode(reply);
        response.answers = [...response.answers ?? [], ...(upstream.answers ?? [])];
        response.authorities = upstream.authorities ?? [];
        response.flags = ((response.flags ?? 0) & ~FLAG.AA) | ((upstream.flags ?? 0) & 0xf);
      } catch {
        // A malformed upstream answer leaves the CNAME alone; the client asks for the target itself.
      }
    }
    return fitReply(packet.encode(response), msg, q, limit);
  };

  const { udp, tcp, port } = await listen(options.host, options.port, family).catch((err: unknown) => {
    zones.stop();
    throw err;
  });
  udp.on('message', (msg, rinfo) => {
    answer(msg, true, rinfo.address).then((reply) => {
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
        answer(Buffer.from(msg), false, socket.remoteAddress ?? '').then((reply) => {
          if (reply && !socket.destroyed) socket.write(Buffer.concat([lengthPrefix(reply.length), reply]));
        }, () => socket.destroy());
      }
    });
  });

  options.log?.info({ address: options.host, port, domain: options.zone.domain, upstreams: options.upstreams }, 'DNS server listening');

  return {
    port,
    setZone: (zone) => zones.set(zone),
    setClients: (next) => { clients = next; },
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

/** Tries to take a port left to the system (0) this often: the UDP port it gives may be taken over TCP. */
const FREE_PORT_TRIES = 5;

/** A UDP socket and a TCP server bound to one address and port; DnsListenError when that cannot be. */
async function listen(host: string, port: number, family: 'udp4' | 'udp6'): Promise<{ udp: dgram.Socket; tcp: net.Server; port: number }> {
  for (let attempt = 1; ; attempt++) {
    const udp = dgram.createSocket({ type: family });
    const bound = await new Promise<number>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(port, host, () => {
        udp.off('error', reject);
        resolve(udp.address().port);
      });
    }).catch((err: Error) => {
      udp.close();
      throw new DnsListenError(host, port, err);
    });
    const tcp = net.createServer();
    const err = await new Promise<Error | undefined>((resolve) => {
      tcp.once('error', resolve);
      tcp.listen(bound, host, () => {
        tcp.off('error', resolve);
        resolve(undefined);
      });
    });
    if (!err) return { udp, tcp, port: bound };
    udp.close();
    if (port !== 0 || attempt >= FREE_PORT_TRIES || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw new DnsListenError(host, bound, err);
  }
}

function lengthPrefix(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n, 0);
  return b;
}
