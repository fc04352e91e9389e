// In-memory stand-ins for the network that --join auto works on: one broadcast segment of advertisements, and
// proof exchanges with servers holding a given CA and secret.
import { comparePeers, matchesFilter, type Advertisement, type Discovery, type Peer } from '../../discovery/advertisement.js';
import { X509Certificate } from 'node:crypto';
import { certificateSha256, type ProofExchange } from '../../discovery/locate.js';
import { ClusterCa } from '../../server/pki/ca.js';
import { publicRoutesFirst } from '../../server/api/routes/public.js';

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

/** A server of the in-memory network: its CA, the certificate it presents, and the proof route it answers. */
export interface MemoryServer { ca: ClusterCa; clusterId: string; exchange: ProofExchange }

/**
 * A proof exchange with a server holding `ca` and `secret` of `clusterId`, answered by the real proof route
 * (server/api/routes/public.ts) as if over TLS with a certificate that CA issued; `asked` collects the hosts asked.
 */
export async function memoryServer(clusterId: string, secret: string, asked: string[] = [], ca?: ClusterCa): Promise<MemoryServer> {
  const cert = await (ca ??= await ClusterCa.create(clusterId)).issue({ commonName: 'flotilla:server:1', altNames: ['localhost'] }, { usage: 'server+client' });
  const certificate = new X509Certificate(cert.certPem);
  const handler = publicRoutesFirst({ clusterId, clusterSecret: secret, ca, servingCertSha256: () => certificateSha256(certificate), advertisement: () => undefined },
    () => new Response('not found', { status: 404 }));
  const exchange: ProofExchange = async (apiUrl, path) => {
    asked.push(new URL(apiUrl).host);
    const res = await handler(new Request(new URL(path(certificateSha256(certificate)), apiUrl)));
    return { status: res.status, body: await res.text(), certificate };
  };
  return { ca, clusterId, exchange };
}

/** One exchange for many servers of the network, by host. */
export function networkExchange(servers: Record<string, MemoryServer>): ProofExchange {
  return (apiUrl, path, signal) => {
    const server = servers[new URL(apiUrl).host];
    if (!server) return Promise.reject(new Error(`connect ECONNREFUSED ${new URL(apiUrl).host}`));
    return server.exchange(apiUrl, path, signal);
  };
}
