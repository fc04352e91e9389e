// The routes a server answers without authentication, because they come before trust: the proof of membership
// (discovery/locate.ts explains the construction) and the advertisement document for static discovery.
//
// createApp's bearer middleware guards every other path, so these are served by a small app in front of it:
// `publicRoutesFirst(deps, app.fetch)` answers its own paths and hands everything else to the API app.
import { Hono } from 'hono';
import { statusObject } from '../../../api-types/index.js';
import type { Advertisement } from '../../../discovery/advertisement.js';
import { CLUSTER_SECRET_TOKEN_ID, PROOF_PATH, checkNonce, membershipProof, tokenSha256 } from '../../../discovery/locate.js';
import type { ProofAnswer } from '../../../discovery/locate.js';
import { DISCOVERY_PATH, advertisementDocument } from '../../../discovery/static.js';
import type { SqliteStore } from '../../store/sqlite-store.js';
import { isExpired, joinTokenRecord } from '../../tokens/join-tokens.js';

export interface PublicRouteDeps {
  store: SqliteStore;
  clusterId: string;
  clusterSecret: string;
  /** What this server advertises; undefined until it is ready (then DISCOVERY_PATH answers 503). */
  advertisement: () => Advertisement | undefined;
  now?: () => number;
}

function failure(code: number, reason: string, message: string): Response {
  return Response.json(statusObject({ code, reason, message }), { status: code });
}

/** A fetch handler: PROOF_PATH and DISCOVERY_PATH here, every other request to `next`. */
export function publicRoutesFirst(deps: PublicRouteDeps, next: (req: Request) => Response | Promise<Response>): (req: Request) => Response | Promise<Response> {
  const now = deps.now ?? Date.now;
  const secretDigest = tokenSha256(deps.clusterSecret);
  const app = new Hono();
  app.get(PROOF_PATH, (c) => {
    const tokenId = c.req.query('token-id') ?? '';
    const nonce = c.req.query('nonce') ?? '';
    try {
      checkNonce(nonce);
    } catch (err) {
      return failure(400, 'BadRequest', (err as Error).message);
    }
    let digest: string;
    if (tokenId === CLUSTER_SECRET_TOKEN_ID) {
      digest = secretDigest;
    } else {
      const rec = /^[a-z0-9]{10}$/.test(tokenId) ? joinTokenRecord(deps.store, tokenId) : undefined;
      // Expired and revoked tokens get no proof: an agent holding one learns so before it sends it anywhere.
      if (!rec || isExpired(rec, now())) return failure(404, 'NotFound', `no valid join token "${tokenId}"`);
      digest = rec.sha256;
    }
    const answer: ProofAnswer = { clusterId: deps.clusterId, tokenId, nonce, proof: membershipProof(digest, deps.clusterId, tokenId, nonce) };
    return c.json(answer);
  });
  app.get(DISCOVERY_PATH, (c) => {
    const ad = deps.advertisement();
    if (!ad) return failure(503, 'ServiceUnavailable', 'this server is not ready yet');
    return c.body(advertisementDocument(ad), 200, { 'content-type': 'application/json' });
  });
  app.notFound((c) => next(c.req.raw));
  return (req) => app.fetch(req);
}
