// Images shared between nodes: a pod's image missing here but held by another Ready node (its Node.status.images,
// as the kubelet reports them) is fetched from that node's agent endpoint (GET /v1/images/archive, node-agent/
// endpoint.ts) with this node's certificate, and loaded through ./load.ts (whole, digest checked, nothing left
// behind otherwise). The peer must prove it is that node: a certificate of the cluster CA for system:node:<it> with
// the key its Node is registered with (flotilla.io/node-key). Loading an image on one node is thereby enough for
// the fleet, without a registry.
import https from 'node:https';
import type { IncomingMessage } from 'node:http';
import type { PeerCertificate } from 'node:tls';
import type { Logger } from 'pino';
import { ANNOTATION_NODE_KEY, ARCHIVE_DIGEST_HEADER, canonicalImageName, type Node } from '../../api-types/index.js';
import { agentIdentityError } from '../../client/pki.js';
import type { NodeTlsMaterial } from '../node-certificate.js';
import type { ContainerRuntime } from '../runtime/types.js';
import { loadArchive, type LoadedArchive } from './load.js';
import type { PeerImageSource } from './pull.js';


export interface PeerFetchOptions {
  runtime: ContainerRuntime;
  nodeName: string;
  /** Archives arrive under this data directory (./load.ts IMAGE_TRANSFER_DIR). */
  dataDir: string;
  /** The cluster's Nodes, read when a fetch starts. */
  nodes: () => Promise<Node[]>;
  /** This node's certificate now (renewals included) and the cluster CA. */
  tls: () => NodeTlsMaterial;
  /** Fetches end when this aborts (the agent stops). */
  signal: AbortSignal;
  /** One fetch from one peer gives up after this long (default 10 minutes). */
  fetchTimeoutMs?: number;
  log: Logger;
}

const DEFAULT_FETCH_TIMEOUT_MS = 10 * 60_000;

/**
 * The PeerImageSource of this node: makes an image present from a peer node; true when it was loaded from one,
 * false when no Ready peer holds it or every peer that does failed (the caller then pulls from the registry).
 * Never rejects. Concurrent calls for one image share one fetch; a caller's signal ends only its own wait (false).
 */
export function peerImageSource(o: PeerFetchOptions): PeerImageSource {
  const inFlight = new Map<string, Promise<boolean>>();
  return async (image, signal) => {
    let fetching = inFlight.get(image);
    if (!fetching) {
      fetching = fetchFromPeers(o, image).finally(() => inFlight.delete(image));
      inFlight.set(image, fetching);
    }
    if (!signal) return fetching;
    if (signal.aborted) return false;
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<boolean>((resolve) => { onAbort = () => resolve(false); signal.addEventListener('abort', onAbort, { once: true }); });
    try {
      return await Promise.race([fetching, aborted]);
    } finally {
      signal.removeEventListener('abort', onAbort!);
    }
  };
}

/** The Ready nodes other than this one that list `image` among their images, with the name each knows it by. */
export function peersHolding(nodes: readonly Node[], image: string, self: string): { node: Node; name: string }[] {
  const wanted = canonicalImageName(image);
  const found: { node: Node; name: string }[] = [];
  for (const node of nodes) {
    if (node.metadata.name === self || node.status?.conditions?.find((c) => c.type === 'Ready')?.status !== 'True') continue;
    const name = node.status?.images?.flatMap((i) => i.names ?? []).find((n) => canonicalImageName(n) === wanted);
    if (name !== undefined) found.push({ node, name });
  }
  return found.sort((a, b) => (a.node.metadata.name ?? '').localeCompare(b.node.metadata.name ?? ''));
}

async function fetchFromPeers(o: PeerFetchOptions, image: string): Promise<boolean> {
  let nodes: Node[];
  try {
    nodes = await o.nodes();
  } catch (err) {
    o.log.warn({ image, err: (err as Error).message }, 'cannot list the nodes to fetch an image from a peer');
    return false;
  }
  for (const { node, name } of peersHolding(nodes, image, o.nodeName)) {
    if (o.signal.aborted) return false;
    const peer = node.metadata.name ?? '';
    const started = Date.now();
    try {
      const loaded = await fetchArchive(o, node, name);
      o.log.info({ image, from: peer, bytes: loaded.bytes, ms: Date.now() - started, receiveMs: loaded.receiveMs, loadMs: loaded.loadMs }, 'image fetched from a peer node');
      if (await o.runtime.inspectImage(image) !== undefined) return true;
      o.log.warn({ image, from: peer, loaded: loaded.images }, 'the archive a peer node sent does not hold the image');
    } catch (err) {
      o.log.warn({ image, from: peer, err: (err as Error).message }, 'fetching an image from a peer node failed');
    }
  }
  return false;
}

/** GET /v1/images/archive?name=NAME of `node`'s agent, loaded here; rejects naming what failed. */
async function fetchArchive(o: PeerFetchOptions, node: Node, name: string): Promise<LoadedArchive> {
  const peer = node.metadata.name ?? '';
  const address = node.status?.addresses?.find((a) => a.type === 'InternalIP')?.address;
  const port = node.status?.daemonEndpoints?.kubeletEndpoint?.Port;
  if (!address || !port) throw new Error(`node ${peer} has not published its agent endpoint`);
  const key = node.metadata.annotations?.[ANNOTATION_NODE_KEY]?.replace(/^sha256:/, '');
  const tls = o.tls();
  const signal = AbortSignal.any([o.signal, AbortSignal.timeout(o.fetchTimeoutMs ?? DEFAULT_FETCH_TIMEOUT_MS)]);
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    const req = https.request({
      host: address, port, path: `/v1/images/archive?name=${encodeURIComponent(name)}`, method: 'GET', agent: false, signal,
      ca: tls.caPem, cert: tls.certPem, key: tls.keyPem, minVersion: 'TLSv1.2',
      checkServerIdentity: (_host: string, cert: PeerCertificate) => agentIdentityError(peer, cert, key),
    }, resolve);
    req.on('error', reject);
    req.end();
  });
  if (res.statusCode !== 200) {
    const chunks: Buffer[] = [];
    for await (const c of res) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    let message = text.slice(0, 300);
    try { message = (JSON.parse(text) as { message?: string }).message ?? message; } catch { /* not a Status */ }
    throw new Error(`node ${peer} answered ${res.statusCode}: ${message}`);
  }
  return loadArchive(o.runtime, res, {
    dataDir: o.dataDir, signal,
    expectedDigest: () => (res.complete ? res.trailers[ARCHIVE_DIGEST_HEADER] : undefined),
  });
}
