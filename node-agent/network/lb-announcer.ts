// The announcing side of LoadBalancer pool addresses (the leader's side and the timers' reasoning are in
// server/controllers/load-balancer.ts). While it runs, the agent renews its speaker lease every
// LB_SPEAKER_RENEW_MS and holds on its LAN interface (the one with the node's InternalIP) exactly the pool
// addresses whose Service names this node in flotilla.io/load-balancer-node:
// - before it takes an address it asks the LAN whether anybody answers for it (ARP duplicate address detection,
//   IPv6 neighbour solicitation); if somebody does it leaves the address alone and, when that lasts longer than a
//   handover from a dead announcer can (IN_USE_REPORT_MS), records the event AddressInUse on the Service;
// - it adds the address as /32 (/128) with a kernel lifetime of ADDRESS_LIFETIME_S, refreshed every tick, so an
//   agent that dies leaves nothing behind for long, and sends a gratuitous ARP (unsolicited neighbour
//   advertisement) so that the LAN's neighbour caches move to this node at once;
// - it withdraws every address as soon as its last speaker renewal that a server confirmed was sent more than
//   LB_SPEAKER_FENCE_MS ago (self-fencing: the leader may give the address away LB_SPEAKER_EXPIRY_MS after that
//   renewal), and when its Service no longer names it.
// The data path needs nothing more: the service proxy already answers on status.loadBalancer.ingress addresses.
import { isIPv6 } from 'node:net';
import type { Logger } from 'pino';
import { ANNOTATION_LOAD_BALANCER_NODE, LB_SPEAKER_FENCE_MS, LB_SPEAKER_RENEW_MS, type Service } from '../../api-types/index.js';
import { delay } from '../agent.js';
import type { NodeEvent } from '../api-client.js';
import type { RunCommand } from './nft-applier.js';
import type { ServiceView } from './service-cache.js';

/** The lifetime the kernel gives an announced address unless refreshed (whole seconds: the kernel's unit). */
export const ADDRESS_LIFETIME_S = 1;
/** How often the addresses are checked and refreshed (well within the lifetime). */
const TICK_MS = 250;
/** How long duplicate address detection waits for an answer. */
const PROBE_WAIT_S = '0.3';
/** An address answered for by somebody else longer than this is reported: a dead announcer's lapses sooner. */
const IN_USE_REPORT_MS = 3_000;

/** The interface commands, one method per packet or address change; LinuxLink runs ip, arping and ndisc6. */
export interface AnnouncerLink {
  /** Whether another host answers for `address` on the LAN. */
  inUse(address: string): Promise<boolean>;
  /** Adds `address`, or renews its lifetime. */
  hold(address: string): Promise<void>;
  /** Tells the LAN that `address` is here now (gratuitous ARP, unsolicited NA). */
  announce(address: string): Promise<void>;
  release(address: string): Promise<void>;
}

export interface AnnouncerOptions {
  nodeName: string;
  view: ServiceView;
  link: AnnouncerLink;
  /** One speaker lease renewal; resolves once a server confirmed it. */
  renew(): Promise<void>;
  /** Records an event on a Service this node announces. */
  event(service: Service, event: NodeEvent): Promise<void>;
  log: Logger;
  now?: () => number;
}

export class LoadBalancerAnnouncer {
  /** The addresses on the interface now. */
  readonly #held = new Set<string>();
  /** Since when each wanted address has been found in use by somebody else. */
  readonly #inUseSince = new Map<string, number>();
  readonly #reported = new Set<string>();
  /** When the newest renewal a server confirmed was sent (clock ms); -Infinity before the first. */
  #confirmedSentMs = -Infinity;
  readonly #now: () => number;

  constructor(readonly options: AnnouncerOptions) {
    this.#now = options.now ?? (() => performance.now());
  }

  /** The addresses this node holds now. */
  held(): string[] {
    return [...this.#held].sort();
  }

  /** Renews and announces until the signal aborts; then withdraws every address. Never rejects. */
  async run(signal: AbortSignal): Promise<void> {
    await Promise.all([this.#renewals(signal), this.#ticks(signal)]);
    for (const address of [...this.#held]) await this.#release(address);
  }

  async #renewals(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const sent = this.#now();
      await this.renew().catch((err: unknown) => this.options.log.debug({ err: (err as Error).message }, 'load balancer: speaker lease renewal failed'));
      await delay(Math.max(0, LB_SPEAKER_RENEW_MS - (this.#now() - sent)), signal);
    }
  }

  /** One speaker lease renewal; once a server confirmed it, the fence counts from when it was sent. */
  async renew(): Promise<void> {
    const sent = this.#now();
    await this.options.renew();
    this.#confirmedSentMs = Math.max(this.#confirmedSentMs, sent);
  }

  async #ticks(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await this.tick().catch((err: unknown) => this.options.log.error({ err }, 'load balancer: announcing failed'));
      await delay(TICK_MS, signal);
    }
  }

  /** The Services whose pool address this node should hold now (none while fenced), by address. */
  wanted(): Map<string, Service> {
    const wanted = new Map<string, Service>();
    if (this.#now() - this.#confirmedSentMs > LB_SPEAKER_FENCE_MS) return wanted;
    for (const svc of this.options.view.services()) {
      const address = svc.spec?.loadBalancerIP;
      if (svc.spec?.type === 'LoadBalancer' && address && svc.metadata.annotations?.[ANNOTATION_LOAD_BALANCER_NODE] === this.options.nodeName) wanted.set(address, svc);
    }
    return wanted;
  }

  /** One pass: withdraws what is no longer wanted, refreshes what is held, takes what is wanted and free. */
  async tick(): Promise<void> {
    const wanted = this.wanted();
    for (const address of [...this.#held]) if (!wanted.has(address)) await this.#release(address);
    for (const address of [...this.#inUseSince.keys()]) {
      if (!wanted.has(address)) { this.#inUseSince.delete(address); this.#reported.delete(address); }
    }
    for (const [address, svc] of wanted) {
      if (this.#held.has(address)) {
        await this.options.link.hold(address);
        continue;
      }
      if (await this.options.link.inUse(address)) {
        const since = this.#inUseSince.get(address) ?? this.#now();
        this.#inUseSince.set(address, since);
        if (this.#now() - since >= IN_USE_REPORT_MS && !this.#reported.has(address)) {
          this.#reported.add(address);
          this.options.log.warn({ address, service: `${svc.metadata.namespace}/${svc.metadata.name}` }, 'load balancer: another host answers for the address; not taking it');
          await this.options.event(svc, { type: 'Warning', reason: 'AddressInUse', message: `node ${this.options.nodeName} did not take ${address}: another host on the LAN answers for it (ARP)` })
            .catch((err: unknown) => this.options.log.warn({ err: (err as Error).message }, 'load balancer: recording AddressInUse failed'));
        }
        continue;
      }
      this.#inUseSince.delete(address);
      this.#reported.delete(address);
      // Fenced between the check and now: take nothing.
      if (!this.wanted().has(address)) continue;
      await this.options.link.hold(address);
      this.#held.add(address);
      await this.options.link.announce(address);
      this.options.log.info({ address, service: `${svc.metadata.namespace}/${svc.metadata.name}` }, 'load balancer: announcing');
    }
  }

  async #release(address: string): Promise<void> {
    try {
      await this.options.link.release(address);
      this.#held.delete(address);
      this.options.log.info({ address }, 'load balancer: withdrawn');
    } catch (err) {
      this.options.log.error({ err: (err as Error).message, address }, 'load balancer: withdrawing failed (the kernel lifetime removes it)');
      this.#held.delete(address);
    }
  }
}

/** The interface of this machine that holds `address` (the node's InternalIP), by `ip -j addr`. */
export async function interfaceOf(run: RunCommand, address: string): Promise<string | undefined> {
  const r = await run('ip', ['-j', 'addr', 'show']);
  if (r.code !== 0) throw new Error(`ip addr show: ${r.stderr.trim()}`);
  const links = JSON.parse(r.stdout) as { ifname: string; addr_info?: { local?: string }[] }[];
  return links.find((l) => (l.addr_info ?? []).some((a) => a.local === address))?.ifname;
}

/** AnnouncerLink on a Linux interface: ip (iproute2), arping (iputils-arping), ndisc6 and ndsend (ndisc6). */
export class LinuxLink implements AnnouncerLink {
  constructor(readonly run: RunCommand, readonly iface: string) {}

  async inUse(address: string): Promise<boolean> {
    // arping -D exits 1 at the first answer; no answer within the wait: `timeout` ends it (124).
    const r = isIPv6(address)
      ? await this.run('ndisc6', ['-1', '-q', '-r', '1', '-w', String(Number(PROBE_WAIT_S) * 1000), address, this.iface])
      : await this.run('timeout', [PROBE_WAIT_S, 'arping', '-D', '-q', '-c', '1', '-I', this.iface, address]);
    if (isIPv6(address)) return r.code === 0;
    if (r.code === 124 || r.code === 0) return false;
    if (r.code === 1) return true;
    throw new Error(`arping -D ${address} on ${this.iface}: exit ${r.code} ${r.stderr.trim()}`);
  }

  async hold(address: string): Promise<void> {
    const lifetime = String(ADDRESS_LIFETIME_S);
    const args = isIPv6(address)
      ? ['-6', 'addr', 'replace', `${address}/128`, 'dev', this.iface, 'valid_lft', lifetime, 'preferred_lft', lifetime, 'nodad']
      : ['addr', 'replace', `${address}/32`, 'dev', this.iface, 'valid_lft', lifetime, 'preferred_lft', lifetime];
    const r = await this.run('ip', args);
    if (r.code !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr.trim()}`);
  }

  async announce(address: string): Promise<void> {
    // The packet leaves at once; arping then waits a second for answers nobody sends, which nobody needs to wait for.
    const sent = isIPv6(address) ? this.run('ndsend', [address, this.iface]) : this.run('arping', ['-U', '-c', '1', '-I', this.iface, address]);
    void sent.catch(() => undefined);
  }

  async release(address: string): Promise<void> {
    const r = await this.run('ip', [...(isIPv6(address) ? ['-6'] : []), 'addr', 'del', `${address}/${isIPv6(address) ? 128 : 32}`, 'dev', this.iface]);
    // Already gone (its lifetime ran out): released all the same.
    if (r.code !== 0 && !/Cannot assign requested address|not found/i.test(r.stderr)) throw new Error(`ip addr del ${address}: ${r.stderr.trim()}`);
  }
}
