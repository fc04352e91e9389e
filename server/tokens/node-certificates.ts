// Node certificates: Kubernetes' kubelet TLS bootstrap, our way. An agent sends a CSR once it has checked the
// cluster CA, authenticated with its join token; it gets a certificate for `system:node:<N>` (O system:nodes,
// serving and client usage: the same certificate serves its agent endpoint) and from then on authenticates with
// it, renewing with the same key before it expires. A join token therefore only bootstraps.
//
// A node name is bound to the key of its first certificate (ObjectService.bindNodeKey, NODE_KEYS_RESOURCE). The
// binding is a record of its own rather than the Node's flotilla.io/node-key annotation because it must exist
// before the Node does (the CSR comes first, and the certificate is what registers the Node), and because it
// must not be writable by whoever may write the Node. It goes with the Node: deleting the Node (or
// `flotilla node replace N`) removes it, and a certificate whose binding is gone authenticates nobody.
import * as x509 from '@peculiar/x509';
import type { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { dns1123SubdomainError } from '../../api-types/index.js';
import { NODE_GROUP, certificateInfo, issuedBy, nodeCommonName, nodeNameOfCommonName } from '../../client/pki.js';
import type { ClusterCa } from '../pki/ca.js';
import { nodeKeyOf } from '../objects/service.js';
import type { ObjectService } from '../objects/service.js';
import { StoreError } from '../store/types.js';
import type { StateStore } from '../store/types.js';
import { identity, type Identity } from '../api/middleware/auth.js';

/** At most this many addresses from a CSR go into a node certificate. */
const MAX_NODE_ADDRESSES = 16;
/** id-ce-subjectAltName (RFC 5280). */
const SUBJECT_ALT_NAME_OID = '2.5.29.17';

export interface NodeCertificateRequest { nodeName: string; csr: string }
export interface NodeCertificateAnswer { certificate: string; ca: string }

/** Checks the body of a CSR request; throws a 400 StoreError naming the bad field. */
export function parseNodeCertificateRequest(body: unknown): NodeCertificateRequest {
  const bad = (message: string) => new StoreError({ code: 400, reason: 'BadRequest', message });
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw bad('the request body must be a JSON object {"nodeName": NAME, "csr": PEM}');
  const { nodeName, csr, ...rest } = body as Record<string, unknown>;
  const unknown = Object.keys(rest);
  if (unknown.length > 0) throw bad(`unknown field ${unknown.map((k) => `"${k}"`).join(', ')} (expected nodeName, csr)`);
  if (typeof nodeName !== 'string') throw bad('nodeName: a node name is required');
  const why = dns1123SubdomainError(nodeName);
  if (why !== undefined) throw bad(`nodeName: ${why}`);
  if (typeof csr !== 'string' || !csr.includes('-----BEGIN CERTIFICATE REQUEST-----')) throw bad('csr: a PEM certificate request (-----BEGIN CERTIFICATE REQUEST-----) is required');
  return { nodeName, csr };
}

/** The IP addresses a CSR names in its SubjectAlternativeName: the node's own addresses, as the agent reports them. */
function requestedAddresses(csrPem: string): string[] {
  let san: x509.SubjectAlternativeNameExtension | undefined;
  try {
    const ext = new x509.Pkcs10CertificateRequest(csrPem).getExtension(SUBJECT_ALT_NAME_OID);
    san = ext ? new x509.SubjectAlternativeNameExtension(ext.rawData) : undefined;
  } catch (err) {
    throw new StoreError({ code: 400, reason: 'BadRequest', message: `csr: not a PEM certificate request: ${err instanceof Error ? err.message : String(err)}` });
  }
  return [...new Set((san?.names.items ?? []).filter((n) => n.type === 'ip' && isIP(n.value) !== 0).map((n) => n.value))].slice(0, MAX_NODE_ADDRESSES);
}

/**
 * Signs the CSR of node `nodeName`: CN system:node:<N>, O system:nodes, SANs the IP addresses of the CSR and N,
 * for the CSR's key, which must be the key N is bound to (the first one N asked with binds it). A CSR for a
 * name bound to another key gets 409 naming the fix. What the CSR asks for is not trusted beyond its addresses.
 */
export async function signNodeCertificate(deps: { objects: ObjectService; ca: ClusterCa; now?: () => number }, req: NodeCertificateRequest): Promise<NodeCertificateAnswer> {
  const { nodeName } = req;
  let certificate: string;
  try {
    certificate = await deps.ca.signCsr(req.csr, { commonName: nodeCommonName(nodeName), organizations: [NODE_GROUP], altNames: [...requestedAddresses(req.csr), nodeName] }, {
      usage: 'server+client', ...(deps.now ? { now: deps.now() } : {}),
    });
  } catch (err) {
    if (err instanceof StoreError) throw err;
    throw new StoreError({ code: 400, reason: 'BadRequest', message: `csr: ${err instanceof Error ? err.message : String(err)}` });
  }
  const key = certificateInfo(certificate).publicKeySha256;
  const bound = await deps.objects.bindNodeKey(nodeName, key);
  if (bound !== key) {
    throw new StoreError({
      code: 409, reason: 'Conflict', details: { name: nodeName, kind: 'nodes' },
      message: `node "${nodeName}" is bound to another machine's key (sha256:${bound.slice(0, 16)}…; this machine's is sha256:${key.slice(0, 16)}…). If this machine replaces it (re-imaged, same host name), run "flotilla node replace ${nodeName}" with the admin token, then start this agent again; otherwise give this machine another node name`,
    });
  }
  return { certificate, ca: deps.ca.certPem };
}

/**
 * The identity of a client certificate that is a node certificate: issued by the cluster CA (`caPem`) and valid
 * now, O system:nodes, CN system:node:<N>, for the key N is bound to at this moment. Undefined for anything else,
 * so a certificate of a deleted (or replaced) node authenticates nobody.
 */
export function nodeCertificateIdentity(store: Pick<StateStore, 'get'>, caPem: string, now: () => number = Date.now): (certificate: X509Certificate) => Identity | undefined {
  return (certificate) => {
    if (!issuedBy(certificate, caPem, now())) return undefined;
    const info = certificateInfo(certificate);
    const nodeName = nodeNameOfCommonName(info.commonName);
    if (nodeName === undefined || !info.organizations.includes(NODE_GROUP)) return undefined;
    return nodeKeyOf(store, nodeName) === info.publicKeySha256 ? identity(info.commonName, [NODE_GROUP]) : undefined;
  };
}
