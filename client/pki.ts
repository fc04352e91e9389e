// Keys, certificate requests and CA pinning: the side of the cluster PKI that every process needs (the agent and
// the CLI as well as the servers). Signing lives with the CA, in server/pki/ca.ts.
//
// All keys are ECDSA P-256 with SHA-256 signatures, made and used through WebCrypto (@peculiar/x509 builds the
// ASN.1): no openssl binary. Certificates and keys travel as PEM; Node's tls module takes them as they are.
//
// A CA is pinned by its hash: the hex SHA-256 of the CA certificate's DER bytes (k3s pins the same way). Join
// tokens carry it, so that whoever holds a token checks the server's CA before sending anything secret.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { createHash, X509Certificate, webcrypto } from 'node:crypto';
import { isIP } from 'node:net';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

/** The one key and signature algorithm of the cluster PKI. */
export const PKI_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

/** Subject O= of every node certificate: Kubernetes' group of kubelets. */
export const NODE_GROUP = 'system:nodes';
/** Subject O= of the servers' own client certificates (what an agent endpoint admits). */
export const SERVER_GROUP = 'flotilla:servers';
const NODE_CN_PREFIX = 'system:node:';

/** Subject CN of node `nodeName`'s certificate, and the user name of its identity: `system:node:<N>` (Kubernetes' form). */
export function nodeCommonName(nodeName: string): string {
  return `${NODE_CN_PREFIX}${nodeName}`;
}

/** N for a subject CN (or user name) `system:node:<N>`; undefined for anything else. */
export function nodeNameOfCommonName(commonName: string): string | undefined {
  return commonName.startsWith(NODE_CN_PREFIX) && commonName.length > NODE_CN_PREFIX.length ? commonName.slice(NODE_CN_PREFIX.length) : undefined;
}

/**
 * checkServerIdentity for connections to Flotilla servers: the name check of TLS, and the certificate must be a
 * server's (O flotilla:servers). Node certificates come from the same CA and may serve (their agent endpoint),
 * naming the node's addresses: without this, one of them would pass for a server at those addresses.
 */
export function checkFlotillaServer(host: string, cert: PeerCertificate): Error | undefined {
  const orgs = cert.subject?.O;
  const isServer = Array.isArray(orgs) ? orgs.includes(SERVER_GROUP) : orgs === SERVER_GROUP;
  return checkServerIdentity(host, cert) ?? (isServer ? undefined : new Error(`the server at ${host} presents a certificate for "${cert.subject?.CN ?? ''}", which is not a Flotilla server's (O=${SERVER_GROUP})`));
}

/**
 * Why `cert`, presented by an agent endpoint (the TLS layer has checked it chains to the cluster CA), is not node
 * `nodeName`'s: its CN must be `system:node:<nodeName>`, its O system:nodes, and its key the one the node is bound
 * to (`keySha256`, hex SHA-256 of the SubjectPublicKeyInfo: the servers' binding, or the Node's flotilla.io/node-key
 * annotation for an agent). Undefined when it is node `nodeName`'s. What servers and agents calling an agent check.
 */
export function agentIdentityError(nodeName: string, cert: PeerCertificate, keySha256: string | undefined): Error | undefined {
  const info = certificateInfo(new X509Certificate(cert.raw));
  if (info.commonName !== nodeCommonName(nodeName) || !info.organizations.includes(NODE_GROUP)) {
    return new Error(`the agent endpoint presents a certificate for "${info.commonName}", not ${nodeCommonName(nodeName)}`);
  }
  if (keySha256 !== info.publicKeySha256) return new Error(`the agent endpoint's certificate is not for the key node ${nodeName} is bound to`);
  return undefined;
}

export interface KeyPair { privateKey: CryptoKey; publicKey: CryptoKey }

/** What a certificate or request names: the subject and the alternative names. */
export interface CertificateSubject {
  commonName: string;
  /** Subject O= values: the groups of a client certificate (Kubernetes reads groups from O). */
  organizations?: readonly string[];
  /** Subject alternative names; each entry is an IP address or a DNS name. */
  altNames?: readonly string[];
}

export function newKeyPair(): Promise<KeyPair> {
  return webcrypto.subtle.generateKey(PKI_ALGORITHM, true, ['sign', 'verify']) as Promise<KeyPair>;
}

/** PKCS#8 PEM of a private key. */
export async function privateKeyPem(key: CryptoKey): Promise<string> {
  return pem('PRIVATE KEY', Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key)));
}

/** The key pair of a PKCS#8 PEM private key made by newKeyPair. Throws when the PEM is not a P-256 key. */
export async function importKeyPair(privatePem: string): Promise<KeyPair> {
  const der = pemBody(privatePem, 'PRIVATE KEY');
  const privateKey = await webcrypto.subtle.importKey('pkcs8', der, PKI_ALGORITHM, true, ['sign']);
  // WebCrypto derives no public key from a private one; the JWK form of the private key carries x and y.
  const { d: _d, key_ops: _ops, ...publicJwk } = await webcrypto.subtle.exportKey('jwk', privateKey);
  const publicKey = await webcrypto.subtle.importKey('jwk', publicJwk, PKI_ALGORITHM, true, ['verify']);
  return { privateKey, publicKey };
}

/** X.509 distinguished name text for @peculiar/x509 (values escaped per RFC 4514). */
export function distinguishedName(subject: Pick<CertificateSubject, 'commonName' | 'organizations'>): string {
  const escape = (v: string) => v.replace(/([,+"\\<>;=])/g, '\\$1').replace(/^([ #])/, '\\$1').replace(/ $/, '\\ ');
  return [`CN=${escape(subject.commonName)}`, ...(subject.organizations ?? []).map((o) => `O=${escape(o)}`)].join(', ');
}

/** The SubjectAlternativeName entries of `altNames` (IP addresses as iPAddress, everything else as dNSName). */
export function altNameEntries(altNames: readonly string[]): x509.JsonGeneralName[] {
  return altNames.map((n) => (isIP(n) ? { type: 'ip', value: n } : { type: 'dns', value: n }));
}

/** A PKCS#10 request (PEM) for `subject`, signed with `keys`. */
export async function createCsr(keys: KeyPair, subject: CertificateSubject): Promise<string> {
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: distinguishedName(subject), keys, signingAlgorithm: PKI_ALGORITHM,
    extensions: subject.altNames && subject.altNames.length > 0 ? [new x509.SubjectAlternativeNameExtension(altNameEntries(subject.altNames))] : [],
  });
  return csr.toString('pem');
}

/** Hex SHA-256 of the DER of the first certificate in `certPem`: the CA pin that tokens carry. */
export function caHash(certPem: string): string {
  return createHash('sha256').update(new X509Certificate(certPem).raw).digest('hex');
}

/** What a certificate says about its holder. */
export interface CertificateInfo {
  commonName: string;
  organizations: string[];
  /** Serial number, upper-case hex without separators (Node's X509Certificate form). */
  serialNumber: string;
  notBefore: Date;
  notAfter: Date;
  /** Hex SHA-256 of the certificate's SubjectPublicKeyInfo: stays the same across renewals with the same key. */
  publicKeySha256: string;
}

export function certificateInfo(certPem: string | X509Certificate): CertificateInfo {
  const cert = typeof certPem === 'string' ? new X509Certificate(certPem) : certPem;
  const fields = cert.subject.split('\n');
  const values = (key: string) => fields.filter((f) => f.startsWith(`${key}=`)).map((f) => f.slice(key.length + 1));
  return {
    commonName: values('CN')[0] ?? '',
    organizations: values('O'),
    serialNumber: cert.serialNumber.toUpperCase(),
    notBefore: new Date(cert.validFrom),
    notAfter: new Date(cert.validTo),
    publicKeySha256: createHash('sha256').update(cert.publicKey.export({ type: 'spki', format: 'der' })).digest('hex'),
  };
}

/**
 * Whether `certPem` was issued by the CA `caPem` (signature checked) and is valid at `now`. Nothing here checks
 * names or usages; callers decide what a verified certificate may do.
 */
export function issuedBy(certPem: string | X509Certificate, caPem: string | X509Certificate, now: number = Date.now()): boolean {
  const cert = typeof certPem === 'string' ? new X509Certificate(certPem) : certPem;
  const ca = typeof caPem === 'string' ? new X509Certificate(caPem) : caPem;
  return cert.checkIssued(ca) && cert.verify(ca.publicKey) && Date.parse(cert.validFrom) <= now && now < Date.parse(cert.validTo);
}

/** Verifies a CA signature (server/pki/ca.ts ClusterCa.sign) against the CA certificate `caPem` (what a client does with the pinned CA). */
export async function verifyCaSignature(caPem: string, data: string, signature: string): Promise<boolean> {
  const cert = new x509.X509Certificate(caPem);
  const key = await cert.publicKey.export(PKI_ALGORITHM, ['verify']);
  return webcrypto.subtle.verify(PKI_ALGORITHM, key, Buffer.from(signature, 'base64url'), Buffer.from(data));
}

export function pem(label: string, der: Buffer): string {
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

function pemBody(text: string, label: string): Buffer {
  const m = new RegExp(`-----BEGIN ${label}-----([A-Za-z0-9+/=\\s]+)-----END ${label}-----`).exec(text);
  if (!m) throw new Error(`not a PEM ${label}`);
  return Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64');
}
