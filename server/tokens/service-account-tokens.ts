// Service account tokens: ES256 JWTs with Kubernetes' claims (iss, sub system:serviceaccount:NS:NAME, aud, exp,
// iat, nbf, jti, and kubernetes.io {namespace, serviceaccount {name, uid}, pod {name, uid}}), as the TokenRequest
// API issues them.
//
// The signing key is derived from the cluster CA's private key (HKDF-SHA256, its own label), which every server
// holds: every member signs and verifies with the same key, and no key is written to the replicated state. The
// key id is the base64url SHA-256 of the public key's DER, as Kubernetes names its keys.
import { createECDH, createHash, createPrivateKey, createPublicKey, hkdfSync, randomUUID, sign, verify, type KeyObject } from 'node:crypto';

/** The issuer of the tokens, and the audience the API accepts (kube-apiserver's --service-account-issuer and --api-audiences, as kubeadm sets them). */
export const SERVICE_ACCOUNT_ISSUER = 'https://kubernetes.default.svc.cluster.local';
export const API_AUDIENCES: readonly string[] = [SERVICE_ACCOUNT_ISSUER];
/** kube-apiserver's leeway on exp and nbf (go-jose's DefaultLeeway). */
export const TOKEN_LEEWAY_SECONDS = 60;

/** The claims of a service account token. */
export interface ServiceAccountClaims {
  iss: string;
  sub: string;
  aud: string[];
  exp: number;
  iat: number;
  nbf: number;
  jti: string;
  'kubernetes.io': {
    namespace: string;
    serviceaccount: { name: string; uid: string };
    pod?: { name: string; uid: string };
  };
}

/** What a token is issued for. */
export interface TokenSubject {
  namespace: string;
  serviceAccount: { name: string; uid: string };
  pod?: { name: string; uid: string };
  audiences: readonly string[];
  expirationSeconds: number;
}

const P256_ORDER = BigInt('0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551');
const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url');

export class ServiceAccountTokens {
  readonly keyId: string;
  readonly #private: KeyObject;
  readonly #public: KeyObject;

  private constructor(privateKey: KeyObject) {
    this.#private = privateKey;
    this.#public = createPublicKey(privateKey);
    this.keyId = b64url(createHash('sha256').update(this.#public.export({ format: 'der', type: 'spki' })).digest());
  }

  /** The signer of the cluster whose CA key is `caKeyPem` (the same on every member). */
  static fromClusterCa(caKeyPem: string): ServiceAccountTokens {
    const ikm = createPrivateKey(caKeyPem).export({ format: 'der', type: 'pkcs8' });
    // A scalar in [1, n-1]: the rare derivation at or above the order is derived again with the next counter.
    for (let counter = 0; ; counter++) {
      const d = Buffer.from(hkdfSync('sha256', ikm, 'flotilla', `service-account-token-signing/${counter}`, 32));
      const n = BigInt(`0x${d.toString('hex')}`);
      if (n === 0n || n >= P256_ORDER) continue;
      const ecdh = createECDH('prime256v1');
      ecdh.setPrivateKey(d);
      const point = ecdh.getPublicKey();
      const jwk = { kty: 'EC', crv: 'P-256', d: b64url(d), x: b64url(point.subarray(1, 33)), y: b64url(point.subarray(33, 65)) };
      return new ServiceAccountTokens(createPrivateKey({ key: jwk, format: 'jwk' }));
    }
  }

  /** A signed token for `subject`, issued at `nowMs`; returns it with its claims. */
  issue(subject: TokenSubject, nowMs: number): { token: string; claims: ServiceAccountClaims } {
    const now = Math.floor(nowMs / 1000);
    const claims: ServiceAccountClaims = {
      iss: SERVICE_ACCOUNT_ISSUER,
      sub: `system:serviceaccount:${subject.namespace}:${subject.serviceAccount.name}`,
      aud: [...subject.audiences],
      exp: now + subject.expirationSeconds,
      iat: now,
      nbf: now,
      jti: randomUUID(),
      'kubernetes.io': {
        namespace: subject.namespace,
        serviceaccount: { ...subject.serviceAccount },
        ...(subject.pod ? { pod: { ...subject.pod } } : {}),
      },
    };
    const signingInput = `${b64url(JSON.stringify({ alg: 'ES256', kid: this.keyId }))}.${b64url(JSON.stringify(claims))}`;
    const signature = sign('sha256', Buffer.from(signingInput), { key: this.#private, dsaEncoding: 'ieee-p1363' });
    return { token: `${signingInput}.${b64url(signature)}`, claims };
  }

  /**
   * The claims of a token this cluster signed, when its signature, issuer, times (with TOKEN_LEEWAY_SECONDS) and
   * audience (one of `audiences`) hold; undefined otherwise, and for anything that is not such a JWT. Whether its
   * account and pod still exist is the caller's check.
   */
  verify(token: string, nowMs: number, audiences: readonly string[] = API_AUDIENCES): ServiceAccountClaims | undefined {
    const parts = token.split('.');
    if (parts.length !== 3) return undefined;
    const [header, payload, signature] = parts as [string, string, string];
    let h: { alg?: unknown; kid?: unknown };
    let claims: ServiceAccountClaims;
    try {
      h = JSON.parse(Buffer.from(header, 'base64url').toString('utf8')) as typeof h;
      claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as ServiceAccountClaims;
    } catch {
      return undefined;
    }
    if (h.alg !== 'ES256' || h.kid !== this.keyId) return undefined;
    if (!verify('sha256', Buffer.from(`${header}.${payload}`), { key: this.#public, dsaEncoding: 'ieee-p1363' }, Buffer.from(signature, 'base64url'))) return undefined;
    const now = Math.floor(nowMs / 1000);
    if (claims.iss !== SERVICE_ACCOUNT_ISSUER || typeof claims.exp !== 'number' || typeof claims.nbf !== 'number') return undefined;
    if (now > claims.exp + TOKEN_LEEWAY_SECONDS || now < claims.nbf - TOKEN_LEEWAY_SECONDS) return undefined;
    if (!Array.isArray(claims.aud) || !claims.aud.some((a) => audiences.includes(a))) return undefined;
    const k = claims['kubernetes.io'];
    if (typeof k?.namespace !== 'string' || typeof k.serviceaccount?.name !== 'string' || typeof k.serviceaccount.uid !== 'string') return undefined;
    if (claims.sub !== `system:serviceaccount:${k.namespace}:${k.serviceaccount.name}`) return undefined;
    return claims;
  }
}
