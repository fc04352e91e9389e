// The routes a server answers without authentication, because they come before trust: the cluster CA
// certificate (GET /cacerts, k3s' path), the proof that this server holds the CA's key (discovery/locate.ts
// explains the construction), the advertisement document for static discovery, and the join routes, which
// check the cluster secret themselves (ClusterMember.joinRoutes).
//
// createApp's auth middleware guards every other path, so these are served by a small app in front of it:
// `publicRoutesFirst(deps, app.fetch)` answers its own paths and hands everything else to the API app.
import { Hono } from 'hono';
import type { HttpBindings } from '@hono/node-server';
import { statusObject } from '../../../api-types/index.js';
import type { Advertisement } from '../../../discovery/advertisement.js';
import { PROOF_PATH, PROOF_PURPOSES, checkNonce, proofData, secretProof, type ProofAnswer, type ProofPurpose } from '../../../discovery/locate.js';
import { DISCOVERY_PATH, advertisementDocument } from '../../../discovery/static.js';
import { CA_CERTS_PATH } from '../../../client/tokens.js';
import type { ClusterCa } from '../../pki/ca.js';

export interface PublicRouteDeps {
  clusterId: string;
  /** Keys the proofs asked for with key=cluster-secret (servers forming a cluster together). */
  clusterSecret: string;
  ca: ClusterCa;
  /** SHA-256 (hex) of the certificate this server presents now: proofs are answered only for it. */
  servingCertSha256: () => string | undefined;
  /** What this server advertises; undefined until it is ready (then DISCOVERY_PATH answers 503). */
  advertisement: () => Advertisement | undefined;
  /** Routes authenticated by the cluster secret alone (joining). */
  joinRoutes?: Hono;
}

function failure(code: number, reason: string, message: string): Response {
  return Response.json(statusObject({ code, reason, message }), { status: code });
}

type Handler = (req: Request, env?: HttpBindings) => Response | Promise<Response>;

/** A fetch handler: the routes above here, every other request to `next` (with the node bindings, for peerCertificate). */
export function publicRoutesFirst(deps: PublicRouteDeps, next: Handler): Handler {
  const app = new Hono<{ Bindings: HttpBindings }>();
  app.get(CA_CERTS_PATH, (c) => c.body(deps.ca.certPem, 200, { 'content-type': 'application/x-pem-file' }));
  app.get(PROOF_PATH, async (c) => {
    const nonce = c.req.query('nonce') ?? '';
    const purpose = c.req.query('purpose') ?? '';
    const certSha256 = c.req.query('cert-sha256') ?? '';
    try {
      checkNonce(nonce);
    } catch (err) {
      return failure(400, 'BadRequest', (err as Error).message);
    }
    if (!PROOF_PURPOSES.includes(purpose as ProofPurpose)) return failure(400, 'BadRequest', `purpose: expected one of ${PROOF_PURPOSES.join(', ')}`);
    // Signing for a certificate this server does not present would let a relay pass its channel off as ours.
    if (certSha256 !== deps.servingCertSha256()) {
      return failure(400, 'BadRequest', 'cert-sha256 is not the certificate this server presents: a proof is only given for the TLS channel it is asked on');
    }
    const data = proofData(deps.clusterId, purpose as ProofPurpose, certSha256, nonce);
    const answer: ProofAnswer = {
      clusterId: deps.clusterId, purpose: purpose as ProofPurpose, nonce, certSha256, ca: deps.ca.certPem, signature: await deps.ca.sign(data),
      ...(c.req.query('key') === 'cluster-secret' ? { secretProof: secretProof(deps.clusterSecret, data, deps.ca.hash) } : {}),
    };
    return c.json(answer);
  });
  app.get(DISCOVERY_PATH, (c) => {
    const ad = deps.advertisement();
    if (!ad) return failure(503, 'ServiceUnavailable', 'this server is not ready yet');
    return c.body(advertisementDocument(ad), 200, { 'content-type': 'application/json' });
  });
  if (deps.joinRoutes) app.route('/', deps.joinRoutes);
  app.notFound((c) => next(c.req.raw, c.env));
  return (req, env) => app.fetch(req, env);
}
