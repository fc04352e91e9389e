// In-memory stand-ins for the network that --join auto works on: one broadcast segment of advertisements, and
// a fetch that answers proofs as a member holding a given secret would.
import { comparePeers, matchesFilter, type Advertisement, type Discovery, type Peer } from '../../discovery/advertisement.js';
import { PROOF_PATH, membershipProof, tokenSha256 } from '../../discovery/locate.js';

/** One broadcast segment: every advertisement is seen by every browser at once. */
export function memoryNetwork(): Discovery {
  const ads = new Map<symbol, Advertisement>();
  const browsers = new Set<() => void>();
  const changed = () => { for (const b of [...browsers]) b(); };
  const until = (signal: AbortSignal) => new Promise<void>((resolve) => {
    if (signal.aborted) resolve(); else signal.addEventListener('abort', () => resolve(), { once: true });
  });
  return {
    async advertise(ad, signal) {
      const key = Symbol(ad.id);
      ads.set(key, ad);
      changed();
      await until(signal);
      ads.delete(key);
      changed();
    },
    async browse(filter, onChange, signal) {
      let last = '';
      const report = () => {
        const peers: Peer[] = [...ads.values()].filter((a) => matchesFilter(a, filter)).map((a) => ({ ...a, addresses: [] })).sort(comparePeers);
        const text = JSON.stringify(peers);
        if (text !== last) { last = text; onChange(peers); }
      };
      browsers.add(report);
      report();
      await until(signal);
      browsers.delete(report);
    },
  };
}

/** A fetch that answers proofs as a member holding `secret` of `clusterId` would; `asked` collects the hosts asked. */
export function proofFetch(secret: string, clusterId: string, asked: string[] = []): typeof fetch {
  return (async (input: string | URL | Request) => {
    const url = new URL(input instanceof Request ? input.url : input.toString());
    asked.push(url.host);
    if (url.pathname !== PROOF_PATH) return new Response('not found', { status: 404 });
    const tokenId = url.searchParams.get('token-id')!;
    const nonce = url.searchParams.get('nonce')!;
    return Response.json({ clusterId, tokenId, nonce, proof: membershipProof(tokenSha256(secret), clusterId, tokenId, nonce) });
  }) as typeof fetch;
}
