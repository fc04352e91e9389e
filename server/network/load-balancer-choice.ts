// Which node announces each LoadBalancer pool address: a pure function of the addresses, the nodes that may
// serve each one, and who announces it now (server/controllers/load-balancer.ts applies it).
//
// Rules, in order: an address whose announcer may still serve it keeps it (a move costs a failover's worth of
// lost packets, so nothing moves only to even out the spread); every other address goes to the eligible node
// announcing the fewest addresses so far, ties broken by a hash of address and node (rendezvous hashing, so that
// the same inputs give the same answer on every leader, and addresses spread over equal nodes); an address no
// node may serve has no announcer. Addresses are decided in their sorted order.
import { createHash } from 'node:crypto';

export interface AnnouncementInput {
  address: string;
  /** The nodes that may announce it now: Ready, announcing (a fresh speaker lease), a ready local endpoint under Local. */
  eligible: readonly string[];
  /** Who announces it now, if anybody. */
  current?: string | undefined;
}

/** The announcer of every address (undefined: none may serve it). */
export function chooseAnnouncers(inputs: readonly AnnouncementInput[]): Map<string, string | undefined> {
  const sorted = [...inputs].sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
  const load = new Map<string, number>();
  const chosen = new Map<string, string | undefined>();
  for (const i of sorted) {
    if (i.current !== undefined && i.eligible.includes(i.current)) {
      chosen.set(i.address, i.current);
      load.set(i.current, (load.get(i.current) ?? 0) + 1);
    }
  }
  for (const i of sorted) {
    if (chosen.has(i.address)) continue;
    let best: { node: string; load: number; rank: string } | undefined;
    for (const node of i.eligible) {
      const candidate = { node, load: load.get(node) ?? 0, rank: rendezvous(i.address, node) };
      if (!best || candidate.load < best.load || (candidate.load === best.load && candidate.rank < best.rank)) best = candidate;
    }
    chosen.set(i.address, best?.node);
    if (best) load.set(best.node, best.load + 1);
  }
  return chosen;
}

function rendezvous(address: string, node: string): string {
  return createHash('sha256').update(`${address}\n${node}`).digest('hex');
}
