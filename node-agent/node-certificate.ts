// The node certificate on the agent's side (server/tokens/node-certificates.ts is the other side): obtained
// once with the join token through a CSR for the machine's key (node-agent/identity.ts), kept in
// <data>/pki/node.crt, used as the client certificate of every API call and as the serving certificate of the
// agent endpoint, and renewed with the same key, authenticated by itself, once two thirds of its life have
// passed. Whoever holds `current` sees a renewal at once: the ApiClient reads it per connection (ClientTls
// identity), the endpoint takes it through onRenewed (server.setSecureContext). No restart.
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { caHash, certificateInfo, createCsr, issuedBy, nodeCommonName } from '../client/pki.js';
import { delay } from './agent.js';
import { ApiClientError, type NodeApi } from './api-client.js';
import { NODE_PKI_DIR, type NodeIdentity } from './identity.js';

export const NODE_CERT_FILE = 'node.crt';

/** What TLS takes to present the node certificate, and the CA it chains to. */
export interface NodeTlsMaterial { certPem: string; keyPem: string; caPem: string }

export interface NodeCertificateOptions {
  dataDir: string;
  nodeName: string;
  identity: NodeIdentity;
  /** The node's addresses (the InternalIP it publishes): SANs of its certificate, which serves its agent endpoint. */
  addresses: readonly string[];
  /** The CA the agent pinned (node-agent/cluster-ca.ts); an answer of another CA is refused. */
  caPem: string;
  /** The clock of the renewal decisions; default Date.now. */
  now?: () => number;
  /** First wait before asking again after a failure (seconds), doubled up to retryMaxSeconds. */
  retrySeconds: number;
  retryMaxSeconds: number;
  log: Logger;
}

/** A refusal no retry cures (the join token is refused, the name is another machine's): the agent stops. */
export class NodeCertificateRefused extends Error {
  constructor(message: string, readonly code: number) {
    super(message);
    this.name = 'NodeCertificateRefused';
  }
}

export class NodeCertificates {
  #current: NodeTlsMaterial;
  #renewAt: number;
  readonly #listeners: ((m: NodeTlsMaterial) => void)[] = [];
  readonly #now: () => number;

  /** `received`: the local time a certificate just issued arrived (undefined for one kept from an earlier run). */
  private constructor(readonly o: NodeCertificateOptions, current: NodeTlsMaterial, received?: number) {
    this.#current = current;
    this.#now = o.now ?? Date.now;
    this.#renewAt = renewalTime(current.certPem, received);
  }

  /**
   * The kept certificate while it is valid for this node, key and CA (due at once for renewal, by itself, when
   * it no longer names the node's addresses); else a new one, asked of `bootstrap` (the join token's API) until
   * a server answers. Undefined when the signal aborts first; NodeCertificateRefused when a server refuses.
   */
  static async obtain(o: NodeCertificateOptions, bootstrap: NodeApi, signal: AbortSignal): Promise<NodeCertificates | undefined> {
    const kept = readKept(o);
    const verdict = kept ? judge(kept, o, (o.now ?? Date.now)()) : 'unusable';
    if (kept && verdict !== 'unusable') {
      const certs = new NodeCertificates(o, kept);
      if (verdict === 'renew') certs.#renewAt = 0;
      return certs;
    }
    for (let failures = 0; !signal.aborted; failures++) {
      try {
        const m = await request(o, bootstrap);
        const certs = new NodeCertificates(o, m, (o.now ?? Date.now)());
        o.log.info({ node: o.nodeName, notAfter: certificateInfo(certs.current.certPem).notAfter }, 'node certificate issued');
        return certs;
      } catch (err) {
        if (signal.aborted) return undefined;
        if (err instanceof NodeCertificateRefused) throw err;
        const waitMs = retryMs(o, failures);
        o.log.warn({ err: (err as Error).message, retryMs: waitMs }, 'waiting for a server to issue this node\'s certificate');
        await delay(waitMs, signal);
      }
    }
    return undefined;
  }

  get current(): NodeTlsMaterial {
    return this.#current;
  }

  /** When the current certificate is due for renewal, by this agent's clock: two thirds into its life (the kubelet's rule, without jitter). */
  get renewAt(): number {
    return this.#renewAt;
  }

  /** Calls `listener` with each renewed certificate. */
  onRenewed(listener: (m: NodeTlsMaterial) => void): void {
    this.#listeners.push(listener);
  }

  /** A new certificate for the same key, asked of `api` (authenticated by the current certificate). */
  async renew(api: NodeApi): Promise<void> {
    this.#current = await request(this.o, api);
    this.#renewAt = renewalTime(this.#current.certPem, this.#now());
    this.o.log.info({ node: this.o.nodeName, notAfter: certificateInfo(this.#current.certPem).notAfter }, 'node certificate renewed');
    for (const l of this.#listeners) l(this.#current);
  }

  /**
   * Renews whenever the clock passes renewAt, looking every `checkSeconds` (so a clock that jumps is noticed),
   * until the signal aborts. A failed renewal is tried again with back-off.
   */
  async renewals(api: NodeApi, signal: AbortSignal, checkSeconds: number): Promise<void> {
    for (let failures = 0; !signal.aborted;) {
      if (this.#now() < this.renewAt) {
        failures = 0;
        await delay(Math.min(checkSeconds * 1000, this.renewAt - this.#now()), signal);
        continue;
      }
      try {
        await this.renew(api);
      } catch (err) {
        if (signal.aborted) return;
        const waitMs = retryMs(this.o, failures++);
        this.o.log.warn({ err: (err as Error).message, retryMs: waitMs }, 'node certificate renewal failed; trying again');
        await delay(waitMs, signal);
      }
    }
  }
}

function retryMs(o: Pick<NodeCertificateOptions, 'retrySeconds' | 'retryMaxSeconds'>, failures: number): number {
  return Math.min(o.retryMaxSeconds * 1000, o.retrySeconds * 1000 * 2 ** Math.min(failures, 16));
}

/**
 * Two thirds into the certificate's life. A certificate that just arrived counts its life from `received` (this
 * agent's clock) rather than from its notBefore (the server's): a clock that disagrees with the servers' then
 * neither renews at once again and again nor too late.
 */
function renewalTime(certPem: string, received?: number): number {
  const { notBefore, notAfter } = certificateInfo(certPem);
  const life = notAfter.getTime() - notBefore.getTime();
  return (received ?? notBefore.getTime()) + life * 2 / 3;
}

function certPath(dataDir: string): string {
  return join(dataDir, NODE_PKI_DIR, NODE_CERT_FILE);
}

function readKept(o: NodeCertificateOptions): NodeTlsMaterial | undefined {
  const path = certPath(o.dataDir);
  return existsSync(path) ? { certPem: readFileSync(path, 'utf8'), keyPem: o.identity.keyPem, caPem: o.caPem } : undefined;
}

/**
 * What a kept certificate is good for: 'unusable' unless it is valid now, of the pinned CA, this node's and this
 * key's (then only the join token gets a new one); 'renew' when it no longer names every address of the node (its
 * renewal asks for them); else 'use'. Renewal by age is the renewal loop's business.
 */
function judge(m: NodeTlsMaterial, o: NodeCertificateOptions, now: number): 'use' | 'renew' | 'unusable' {
  try {
    const cert = new X509Certificate(m.certPem);
    const info = certificateInfo(cert);
    if (!issuedBy(cert, m.caPem, now) || info.commonName !== nodeCommonName(o.nodeName) || info.publicKeySha256 !== o.identity.publicKeySha256) return 'unusable';
    const sans = (cert.subjectAltName ?? '').split(', ');
    return o.addresses.every((a) => sans.includes(`IP Address:${a}`)) ? 'use' : 'renew';
  } catch {
    return 'unusable';
  }
}

/** Sends a CSR for the node key, checks the answer and keeps the certificate (written whole). */
async function request(o: NodeCertificateOptions, api: NodeApi): Promise<NodeTlsMaterial> {
  const csr = await createCsr(o.identity.keys, { commonName: nodeCommonName(o.nodeName), altNames: o.addresses });
  let answer: { certificate: string; ca: string };
  try {
    answer = await api.requestCertificate(o.nodeName, csr);
  } catch (err) {
    if (err instanceof ApiClientError && err.code >= 400 && err.code < 500 && err.code !== 429) {
      throw new NodeCertificateRefused(`the server refused a certificate for node "${o.nodeName}": ${err.message}`, err.code);
    }
    throw err;
  }
  if (caHash(answer.ca) !== caHash(o.caPem)) {
    throw new NodeCertificateRefused(`the server answered with a certificate of CA sha256:${caHash(answer.ca)}, not the pinned CA sha256:${caHash(o.caPem)}`, 0);
  }
  const m: NodeTlsMaterial = { certPem: answer.certificate, keyPem: o.identity.keyPem, caPem: o.caPem };
  if (!issuedBy(m.certPem, m.caPem) || certificateInfo(m.certPem).publicKeySha256 !== o.identity.publicKeySha256 || certificateInfo(m.certPem).commonName !== nodeCommonName(o.nodeName)) {
    throw new NodeCertificateRefused(`the server's answer is no certificate of its CA for node "${o.nodeName}" and this machine's key`, 0);
  }
  const path = certPath(o.dataDir);
  writeFileSync(`${path}.tmp`, m.certPem, { mode: 0o644 });
  renameSync(`${path}.tmp`, path);
  return m;
}
