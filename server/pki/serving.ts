// A server's own certificate, issued by itself with the cluster CA: it serves the API with it, and presents it as
// its client certificate to the other members (usage server+client). Subject CN flotilla:server:<memberId>,
// O flotilla:servers (what the auth middleware maps to a peer); SANs: every address it listens on and advertises,
// the host name, localhost, 127.0.0.1 and ::1.
//
// Kept in `<data>/pki/server.crt` and `server.key` (0600); issued again at start when the SANs or the subject
// changed, when it is not from the current CA, or when less than a third of its life remains (ensureServing).
import { X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname, networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { certificateInfo, issuedBy } from '../../client/pki.js';
import { SERVERS_ORGANIZATION, serverCommonName } from '../api/middleware/auth.js';
import { PKI_DIR, type ClusterCa, type IssuedCertificate } from './ca.js';

export const SERVER_CERT_FILE = 'server.crt';
export const SERVER_KEY_FILE = 'server.key';

/** The names a server's certificate must carry: the hosts of its listen address and advertised URL, and the local names. */
export function servingAltNames(listenHost: string, urls: readonly string[], machineHostname = hostname()): string[] {
  const names = new Set<string>([machineHostname, 'localhost', '127.0.0.1', '::1']);
  const wildcard = listenHost === '' || listenHost === '0.0.0.0' || listenHost === '::';
  if (!wildcard) names.add(listenHost);
  else {
    // Listening on every address: each one of this machine's addresses may be dialled.
    for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) names.add(a.address.replace(/%.*$/, ''));
  }
  for (const u of urls) names.add(new URL(u).hostname.replace(/^\[|\]$/g, ''));
  return [...names].filter((n) => n !== '').sort();
}

/** A certificate's SANs (Node writes IPv6 addresses in their long form). */
function altNamesOf(cert: X509Certificate): string[] {
  return (cert.subjectAltName ?? '').split(', ').filter(Boolean).map((e) => e.replace(/^(DNS|IP Address):/, ''));
}

function sameNames(cert: X509Certificate, wanted: readonly string[]): boolean {
  // The URL parser writes every IPv6 address in one canonical form.
  const normal = (n: string) => (n.includes(':') ? new URL(`http://[${n}]`).hostname : n);
  const have = altNamesOf(cert).map(normal).sort();
  const want = wanted.map(normal).sort();
  return have.length === want.length && have.every((n, i) => n === want[i]);
}

/**
 * The server certificate in `<dataDir>/pki/`, issued anew by `ca` for member `memberId` with `altNames` unless the
 * one there already names exactly that, comes from this CA, and has more than a third of its life left at `now`.
 */
export async function ensureServingCertificate(dataDir: string, ca: ClusterCa, memberId: number, altNames: readonly string[], now: number = Date.now()): Promise<IssuedCertificate> {
  const dir = join(dataDir, PKI_DIR);
  const certPath = join(dir, SERVER_CERT_FILE);
  const keyPath = join(dir, SERVER_KEY_FILE);
  if (existsSync(certPath) && existsSync(keyPath)) {
    const kept = { certPem: readFileSync(certPath, 'utf8'), keyPem: readFileSync(keyPath, 'utf8') };
    if (stillGood(kept.certPem, ca, memberId, altNames, now)) return kept;
  }
  const issued = await ca.issue({ commonName: serverCommonName(memberId), organizations: [SERVERS_ORGANIZATION], altNames }, { usage: 'server+client', now });
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(keyPath, issued.keyPem, { mode: 0o600 });
  chmodSync(keyPath, 0o600);
  writeFileSync(certPath, issued.certPem);
  return issued;
}

function stillGood(certPem: string, ca: ClusterCa, memberId: number, altNames: readonly string[], now: number): boolean {
  try {
    const cert = new X509Certificate(certPem);
    const info = certificateInfo(cert);
    const life = info.notAfter.getTime() - info.notBefore.getTime();
    return issuedBy(cert, ca.certPem, now) && info.commonName === serverCommonName(memberId) && info.organizations.includes(SERVERS_ORGANIZATION)
      && sameNames(cert, altNames) && info.notAfter.getTime() - now > life / 3;
  } catch {
    return false;
  }
}
