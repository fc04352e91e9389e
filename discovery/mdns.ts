// Discovery over multicast DNS (RFC 6762) with DNS-SD records (RFC 6763) of service type _flotilla._tcp.
//
// multicast-dns is used directly rather than bonjour-service because a Flotilla process must be pinned to one
// interface (`--interface NAME|ADDR`): the socket is bound to 0.0.0.0:5353 (binding to the interface address
// would filter out datagrams sent to the multicast group), joins the group on the chosen interface only,
// sends through it, and ignores datagrams from outside that interface's subnet.
//
// Liveness: an advertiser announces three times one second apart whenever its link comes up or its addresses
// change, answers queries, and says goodbye (TTL 0) on abort. A browser queries with a doubling interval
// (1 s up to maxQueryIntervalMs), re-queries when a peer has lived 80% of its TTL, and drops a peer on goodbye
// or when its records expire. Addresses are polled (os.networkInterfaces lists only interfaces that are up and
// running), and any change restarts the socket, so a cable pulled and plugged back is seen on both sides.
import makeMdns from 'multicast-dns';
import type { MulticastDNS } from 'multicast-dns';
import type { Answer } from 'dns-packet';
import type { RemoteInfo } from 'node:dgram';
import { existsSync } from 'node:fs';
import { isIPv4 } from 'node:net';
import { networkInterfaces } from 'node:os';
import {
  comparePeers, decodeTxt, encodeTxt, instanceLabel, matchesFilter, parseAdvertisement, validateFilter,
  type Advertisement, type Discovery, type Peer, type WarningSink,
} from './advertisement.js';

export const SERVICE_TYPE = '_flotilla._tcp.local';
const SERVICE_SUFFIX = `.${SERVICE_TYPE}`;
// Bounds on what strangers on the segment can make a browser hold: entries, and how long each may live.
const MAX_PEERS = 1024;
const MAX_TTL_SECONDS = 4500;

export interface MdnsDiscoveryOptions {
  /** Interface name ("eth0") or one of its IPv4 addresses; absent: every IPv4 interface, default route out. */
  interface?: string;
  /** TTL of the records this process advertises, in seconds (default 120): how long a killed peer lingers. */
  ttlSeconds?: number;
  /** Upper bound of the browse query interval (default 30 000 ms). */
  maxQueryIntervalMs?: number;
  /** How often addresses are checked for changes (default 2 000 ms). */
  addressPollMs?: number;
  onWarning?: WarningSink;
}

/**
 * The addresses a socket works with: those advertised in A records (every IPv4 address of a chosen interface,
 * or only the chosen address), and `interfaceAddress`, the one multicast is joined and sent on, when an
 * interface was chosen.
 */
interface Link {
  addresses: string[];
  interfaceAddress?: string;
  subnets: { address: string; netmask: string }[];
}

interface LinkHandlers {
  up(socket: MulticastDNS, link: Link): void;
  down(): void;
  packet(socket: MulticastDNS, message: { type: string; questions?: { name: string; type: string }[]; answers?: Answer[]; additionals?: Answer[] }, from: RemoteInfo, link: Link): void;
  /** Runs on abort while the socket is still open (the advertiser's goodbye). */
  beforeClose(socket: MulticastDNS): Promise<void>;
}

export function createMdnsDiscovery(options: MdnsDiscoveryOptions = {}): Discovery {
  const ttlSeconds = options.ttlSeconds ?? 120;
  if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > MAX_TTL_SECONDS) throw new Error(`mdns: ttlSeconds ${ttlSeconds} must be an integer in 1..${MAX_TTL_SECONDS}`);
  const maxQueryIntervalMs = options.maxQueryIntervalMs ?? 30_000;
  if (!(maxQueryIntervalMs >= 1000)) throw new Error(`mdns: maxQueryIntervalMs ${maxQueryIntervalMs} must be at least 1000`);
  const addressPollMs = options.addressPollMs ?? 2000;
  if (!(addressPollMs >= 100)) throw new Error(`mdns: addressPollMs ${addressPollMs} must be at least 100`);
  const warn = options.onWarning ?? (() => {});
  const spec = options.interface;
  if (spec !== undefined) checkInterfaceSpec(spec);
  const run = (signal: AbortSignal, handlers: LinkHandlers) => runLink({ spec, addressPollMs, warn }, signal, handlers);

  return {
    async advertise(input, signal) {
      const ad = parseAdvertisement(input);
      const records = serviceRecords(ad);
      let announceTimers: NodeJS.Timeout[] = [];
      const stopAnnouncing = () => { announceTimers.forEach(clearTimeout); announceTimers = []; };
      let current: Link | undefined;
      const answer = (socket: MulticastDNS, link: Link, ttl: number) => new Promise<void>((resolve) => {
        socket.respond({ answers: records(link.addresses, ttl) }, () => resolve());
      });
      await run(signal, {
        up(socket, link) {
          current = link;
          stopAnnouncing();
          announceTimers = [0, 1000, 2000].map((ms) => setTimeout(() => void answer(socket, link, ttlSeconds), ms));
        },
        down() { stopAnnouncing(); current = undefined; },
        packet(socket, message, _from, link) {
          if (message.type !== 'query' || !current) return;
          const asked = (message.questions ?? []).some((q) => {
            const name = q.name.toLowerCase();
            return name === SERVICE_TYPE || name === records.instance || name === records.host;
          });
          if (asked) void answer(socket, link, ttlSeconds);
        },
        async beforeClose(socket) {
          stopAnnouncing();
          if (current) await answer(socket, current, 0);
        },
      });
    },

    async browse(filter, onChange, signal) {
      validateFilter(filter);
      // Keyed by DNS-SD instance name; an entry is dropped at expiresAt unless a fresher answer extends it.
      const table = new Map<string, { peer: Peer; expiresAt: number; requeryAt: number }>();
      let reported = '[]';
      let socket: MulticastDNS | undefined;
      let queryIntervalMs = 1000;
      let nextQueryAt = Infinity;
      let wake: NodeJS.Timeout | undefined;

      const report = () => {
        const peers = [...table.values()].map((e) => e.peer).filter((p) => matchesFilter(p, filter)).sort(comparePeers);
        const text = JSON.stringify(peers);
        if (text === reported) return;
        reported = text;
        onChange(peers);
      };
      const query = () => socket?.query({ questions: [{ name: SERVICE_TYPE, type: 'PTR' }] });
      const schedule = () => {
        clearTimeout(wake);
        if (signal.aborted) return;
        let next = nextQueryAt;
        for (const e of table.values()) next = Math.min(next, e.expiresAt, e.requeryAt);
        if (next === Infinity) return;
        wake = setTimeout(tick, Math.max(0, next - Date.now()));
      };
      const tick = () => {
        const now = Date.now();
        let requery = false;
        for (const [name, e] of table) {
          if (e.expiresAt <= now) table.delete(name);
          else if (e.requeryAt <= now) { requery = true; e.requeryAt = Infinity; }
        }
        if (socket && now >= nextQueryAt) {
          requery = true;
          queryIntervalMs = Math.min(queryIntervalMs * 2, maxQueryIntervalMs);
          nextQueryAt = now + queryIntervalMs;
        }
        if (requery) query();
        report();
        schedule();
      };

      await run(signal, {
        up(s) {
          socket = s;
          queryIntervalMs = 1000;
          nextQueryAt = Date.now();
          tick();
        },
        down() { socket = undefined; nextQueryAt = Infinity; schedule(); },
        packet(_s, message, from) {
          if (message.type !== 'response') return;
          const now = Date.now();
          const records = [...(message.answers ?? []), ...(message.additionals ?? [])];
          for (const r of records) {
            const name = r.name.toLowerCase();
            if (r.type === 'PTR' && name === SERVICE_TYPE && r.ttl === 0) table.delete(String(r.data).toLowerCase());
            if (r.type !== 'TXT' || !name.endsWith(SERVICE_SUFFIX)) continue;
            if (r.ttl === 0) { table.delete(name); continue; }
            let ad: Advertisement;
            try {
              ad = decodeTxt(Array.isArray(r.data) ? r.data : [r.data]);
            } catch (e) {
              warn(`mdns: ignoring ${r.name} from ${from.address}: ${(e as Error).message}`);
              continue;
            }
            if (!table.has(name) && table.size >= MAX_PEERS) {
              warn(`mdns: ignoring ${r.name} from ${from.address}: already tracking ${MAX_PEERS} instances`);
              continue;
            }
            const ttlMs = Math.min(r.ttl ?? ttlSeconds, MAX_TTL_SECONDS) * 1000;
            table.set(name, { peer: { ...ad, addresses: addressesOf(name, records, from) }, expiresAt: now + ttlMs, requeryAt: now + ttlMs * 0.8 });
          }
          report();
          schedule();
        },
        async beforeClose() {},
      });
      clearTimeout(wake);
    },
  };
}

/** The records of one advertisement; `instance` and `host` are the names it answers for. */
function serviceRecords(ad: Advertisement) {
  const label = instanceLabel(ad);
  const instance = `${label}${SERVICE_SUFFIX}`;
  const host = `${label}.local`;
  const url = new URL(ad.apiUrl);
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  const txt = encodeTxt(ad);
  const records = (addresses: string[], ttl: number): Answer[] => [
    { name: SERVICE_TYPE, type: 'PTR', ttl, data: instance },
    { name: instance, type: 'SRV', ttl, flush: true, data: { port, target: host } },
    { name: instance, type: 'TXT', ttl, flush: true, data: txt },
    ...addresses.map((a): Answer => ({ name: host, type: 'A', ttl, flush: true, data: a })),
  ];
  return Object.assign(records, { instance: instance.toLowerCase(), host: host.toLowerCase() });
}

/** Addresses from the A records of the SRV target in the same packet, else the sender's address. */
function addressesOf(instance: string, records: Answer[], from: RemoteInfo): string[] {
  const srv = records.find((r) => r.type === 'SRV' && r.name.toLowerCase() === instance);
  const target = srv?.type === 'SRV' ? srv.data.target.toLowerCase() : undefined;
  const found = records.flatMap((r) => (r.type === 'A' && r.name.toLowerCase() === target ? [r.data] : []));
  return found.length > 0 ? [...new Set(found)].sort() : [from.address];
}

function checkInterfaceSpec(spec: string): void {
  if (isIPv4(spec)) {
    if (!currentLink(spec)) throw new Error(`mdns: no interface has the address ${spec} (present: ${describeInterfaces()})`);
    return;
  }
  // An interface that exists but is down is missing from networkInterfaces(); /sys/class/net still lists it.
  const known = currentLink(spec) !== undefined || (existsSync('/sys/class/net') && existsSync(`/sys/class/net/${spec}`));
  if (!/^[A-Za-z0-9_.:@-]{1,15}$/.test(spec) || !known) {
    throw new Error(`mdns: interface ${JSON.stringify(spec)} is neither an interface name nor an IPv4 address of this machine (present: ${describeInterfaces()})`);
  }
}

function describeInterfaces(): string {
  return Object.entries(networkInterfaces())
    .map(([name, addrs]) => `${name} ${(addrs ?? []).filter((a) => a.family === 'IPv4').map((a) => a.address).join(' ')}`.trim())
    .join(', ') || 'none';
}

/** The link for `spec` as the interfaces are now; undefined while the chosen interface has no IPv4 address. */
function currentLink(spec: string | undefined): Link | undefined {
  const all = Object.entries(networkInterfaces());
  if (spec === undefined) {
    const external = all.flatMap(([, addrs]) => addrs ?? []).filter((a) => a.family === 'IPv4' && !a.internal);
    if (external.length === 0) return undefined;
    return { addresses: external.map((a) => a.address).sort(), subnets: [] };
  }
  for (const [name, addrs] of all) {
    const v4 = (addrs ?? []).filter((a) => a.family === 'IPv4');
    const chosen = isIPv4(spec) ? v4.find((a) => a.address === spec) : name === spec ? v4[0] : undefined;
    if (chosen) {
      const addresses = isIPv4(spec) ? [chosen.address] : v4.map((a) => a.address).sort();
      return { addresses, interfaceAddress: chosen.address, subnets: v4.map((a) => ({ address: a.address, netmask: a.netmask })) };
    }
  }
  return undefined;
}

function ipv4ToInt(a: string): number {
  return a.split('.').reduce((n, part) => (n << 8) + Number(part), 0) >>> 0;
}

function fromLink(link: Link, address: string): boolean {
  if (link.subnets.length === 0) return true;
  const a = ipv4ToInt(address);
  return link.subnets.some((s) => {
    const mask = ipv4ToInt(s.netmask);
    return ((a & mask) >>> 0) === ((ipv4ToInt(s.address) & mask) >>> 0);
  });
}

/**
 * Keeps one multicast-dns socket open for the current link until `signal` aborts, restarting it whenever the
 * link's addresses change (and closing it while the chosen interface is gone). Resolves after the last close.
 */
function runLink(config: { spec: string | undefined; addressPollMs: number; warn: WarningSink }, signal: AbortSignal, handlers: LinkHandlers): Promise<void> {
  return new Promise<void>((resolve) => {
    let open: { socket: MulticastDNS; link: Link; key: string } | undefined;
    let broken = false;
    const close = (socket: MulticastDNS) => new Promise<void>((done) => socket.destroy(() => done()));

    const refresh = () => {
      const link = currentLink(config.spec);
      const key = link ? JSON.stringify(link) : '';
      if (open && open.key === key && !broken) return;
      broken = false;
      if (open) { handlers.down(); void close(open.socket); open = undefined; }
      if (!link) return;
      const socket = makeMdns({ bind: '0.0.0.0', interface: link.interfaceAddress, reuseAddr: true, loopback: true });
      open = { socket, link, key };
      socket.on('warning', (e: Error) => config.warn(`mdns: ${e.message}`));
      socket.on('error', (e: Error) => { config.warn(`mdns: socket failed, retrying: ${e.message}`); broken = true; });
      socket.on('ready', () => { if (open?.socket === socket) handlers.up(socket, link); });
      socket.on('packet', (message, from: RemoteInfo) => {
        if (open?.socket === socket && fromLink(link, from.address)) handlers.packet(socket, message, from, link);
      });
    };

    const poll = setInterval(refresh, config.addressPollMs);
    const stop = async () => {
      clearInterval(poll);
      const last = open;
      open = undefined;
      if (last) {
        await handlers.beforeClose(last.socket).catch((e: Error) => config.warn(`mdns: ${e.message}`));
        handlers.down();
        await close(last.socket);
      }
      resolve();
    };
    if (signal.aborted) { void stop(); return; }
    signal.addEventListener('abort', () => void stop(), { once: true });
    refresh();
  });
}
