// The cluster CA: made by the first server, held by every server (each signs serving certificates for itself and
// node certificates for agents), never by an agent or a client. Keys and requests: client/pki.ts.
//
// On disk, in `<data>/pki/`: ca.crt (public) and ca.key (mode 0600). How a joining server receives them is the
// business of the join; this file only makes, reads and uses them.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { randomBytes, X509Certificate, webcrypto } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  PKI_ALGORITHM, altNameEntries, caHash, distinguishedName, importKeyPair, newKeyPair, privateKeyPem,
  type CertificateSubject, type KeyPair,
} from '../../client/pki.js';

export const PKI_DIR = 'pki';
export const CA_CERT_FILE = 'ca.crt';
export const CA_KEY_FILE = 'ca.key';

/** Ten years: a CA outlives the machines of a small fleet; rotating it is a deliberate act. */
export const CA_VALIDITY_DAYS = 3650;
/** Leaf certificates (serving, node, client): one year, renewed well before (Kubernetes' kubelet default). */
export const LEAF_VALIDITY_DAYS = 365;
/** Certificates start a little in the past so that a peer whose clock lags does not see them as not yet valid. */
const BACKDATE_MS = 5 * 60_000;
const DAY_MS = 86_400_000;

/** What a leaf certificate may be used for (extended key usage). */
export type CertificateUsage = 'server' | 'client' | 'server+client';

export interface IssueOptions {
  usage: CertificateUsage;
  /** Default LEAF_VALIDITY_DAYS. */
  days?: number;
  /** Issue time (tests move the clock); default now. */
  now?: number;
}

export interface IssuedCertificate { certPem: string; keyPem: string }

export class ClusterCa {
  readonly hash: string;
  readonly #cert: x509.X509Certificate;

  private constructor(readonly certPem: string, readonly keyPem: string, readonly keys: KeyPair) {
    this.#cert = new x509.X509Certificate(certPem);
    this.hash = caHash(certPem);
  }

  /** A new self-signed CA named after the cluster. */
  static async create(clusterName: string, now: number = Date.now()): Promise<ClusterCa> {
    const keys = await newKeyPair();
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: serial(), name: distinguishedName({ commonName: `flotilla-ca@${clusterName}` }),
      notBefore: new Date(now - BACKDATE_MS), notAfter: new Date(now + CA_VALIDITY_DAYS * DAY_MS),
      keys, signingAlgorithm: PKI_ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    return new ClusterCa(cert.toString('pem'), await privateKeyPem(keys.privateKey), keys);
  }

  /** The CA of a certificate and key in PEM; throws when they do not belong together or the certificate is no CA. */
  static async fromPem(certPem: string, keyPem: string): Promise<ClusterCa> {
    const cert = new X509Certificate(certPem);
    if (!cert.ca) throw new Error('the CA certificate is not a CA (basicConstraints cA is false)');
    const keys = await importKeyPair(keyPem);
    const spki = Buffer.from(await webcrypto.subtle.exportKey('spki', keys.publicKey));
    if (!spki.equals(cert.publicKey.export({ type: 'spki', format: 'der' }))) throw new Error('the CA key does not belong to the CA certificate');
    return new ClusterCa(certPem, keyPem, keys);
  }

  /** Reads `<dataDir>/pki/ca.crt` and `ca.key`; undefined when there is no CA there yet. */
  static async load(dataDir: string): Promise<ClusterCa | undefined> {
    const certPath = join(dataDir, PKI_DIR, CA_CERT_FILE);
    const keyPath = join(dataDir, PKI_DIR, CA_KEY_FILE);
    if (!existsSync(certPath) && !existsSync(keyPath)) return undefined;
    try {
      return await ClusterCa.fromPem(readFileSync(certPath, 'utf8'), readFileSync(keyPath, 'utf8'));
    } catch (err) {
      throw new Error(`${join(dataDir, PKI_DIR)}: unusable cluster CA (${err instanceof Error ? err.message : String(err)})`);
    }
  }

  /** Writes ca.crt and ca.key (0600) into `<dataDir>/pki/`, refusing to replace a CA that is there. */
  save(dataDir: string): void {
    const dir = join(dataDir, PKI_DIR);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(join(dir, CA_KEY_FILE), this.keyPem, { mode: 0o600, flag: 'wx' });
    chmodSync(join(dir, CA_KEY_FILE), 0o600);
    writeFileSync(join(dir, CA_CERT_FILE), this.certPem, { flag: 'wx' });
  }

  /** A new key and a certificate for it. */
  async issue(subject: CertificateSubject, options: IssueOptions): Promise<IssuedCertificate> {
    const keys = await newKeyPair();
    return { certPem: await this.#sign(distinguishedName(subject), keys.publicKey, subject.altNames ?? [], options), keyPem: await privateKeyPem(keys.privateKey) };
  }

  /**
   * A certificate for the key of `csrPem`, naming `subject` (what the CSR asks for is not trusted: the caller
   * decides the names, and the CSR only contributes its key, after its self-signature is checked).
   */
  async signCsr(csrPem: string, subject: CertificateSubject, options: IssueOptions): Promise<string> {
    let csr: x509.Pkcs10CertificateRequest;
    try {
      csr = new x509.Pkcs10CertificateRequest(csrPem);
    } catch (err) {
      throw new Error(`not a PEM certificate request: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (!(await csr.verify())) throw new Error('the certificate request is not signed by its own key');
    const alg = csr.publicKey.algorithm as EcKeyAlgorithm;
    if (alg.name !== 'ECDSA' || alg.namedCurve !== PKI_ALGORITHM.namedCurve) throw new Error(`the certificate request must be for an ECDSA ${PKI_ALGORITHM.namedCurve} key`);
    return this.#sign(distinguishedName(subject), await csr.publicKey.export(PKI_ALGORITHM, ['verify']), subject.altNames ?? [], options);
  }

  /** ECDSA signature (SHA-256, IEEE P1363 form, base64url) of `data` with the CA key: proves holding the CA. */
  async sign(data: string): Promise<string> {
    return Buffer.from(await webcrypto.subtle.sign(PKI_ALGORITHM, this.keys.privateKey, Buffer.from(data))).toString('base64url');
  }

  async #sign(name: string, publicKey: CryptoKey, altNames: readonly string[], options: IssueOptions): Promise<string> {
    const now = options.now ?? Date.now();
    const usages = options.usage === 'server' ? [x509.ExtendedKeyUsage.serverAuth] : options.usage === 'client' ? [x509.ExtendedKeyUsage.clientAuth] : [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth];
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial(), subject: name, issuer: this.#cert.subject,
      notBefore: new Date(now - BACKDATE_MS), notAfter: new Date(now + (options.days ?? LEAF_VALIDITY_DAYS) * DAY_MS),
      signingKey: this.keys.privateKey, publicKey, signingAlgorithm: PKI_ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
        new x509.ExtendedKeyUsageExtension(usages),
        await x509.AuthorityKeyIdentifierExtension.create(this.keys.publicKey),
        ...(altNames.length > 0 ? [new x509.SubjectAlternativeNameExtension(altNameEntries(altNames))] : []),
      ],
    });
    return cert.toString('pem');
  }
}

/** A positive 128-bit serial (RFC 5280: at most 20 octets, unpredictable). */
function serial(): string {
  const bytes = randomBytes(16);
  bytes[0] = bytes[0]! & 0x7f;
  return bytes.toString('hex');
}
