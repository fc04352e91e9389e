// HTTPS against servers inside the lab, for scenario suites. The test process sits in the root namespace, which
// has no route into the lab, so every request is made by curl inside a lab host, verifying the server against the
// cluster CA file given (a member's <data>/pki/ca.crt).
import type { HostRef, Lab } from './lab.js';

export interface ApiAnswer {
  /** HTTP status; 0 when nothing answered (connection refused, curl's 3 s limit). */
  code: number;
  /** The JSON body, or {} when the body was not JSON (then `code` says why). */
  json: Record<string, unknown>;
}

/** Who a lab request is made as, and the CA file the server is verified against. */
export interface LabAuth { token: string; caFile: string }

/** One request with a bearer token, made from inside host `from`; a JSON body is sent as `contentType`. */
export async function apiRequest(lab: Lab, from: HostRef, method: string, url: string, auth: LabAuth, body?: unknown, contentType = method === 'PATCH' ? 'application/merge-patch+json' : 'application/json'): Promise<ApiAnswer> {
  const args = ['-s', '-m', '3', '--cacert', auth.caFile, '-X', method, '-H', `authorization: Bearer ${auth.token}`, '-w', '\n%{http_code}', url];
  if (body !== undefined) args.push('-H', `content-type: ${contentType}`, '-d', JSON.stringify(body));
  const r = await lab.exec(from, 'curl', args, { timeoutMs: 8000 });
  const nl = r.stdout.lastIndexOf('\n');
  let json: Record<string, unknown> = {};
  try { json = JSON.parse(r.stdout.slice(0, nl)) as Record<string, unknown>; } catch { /* not JSON: the code says why */ }
  return { code: Number(r.stdout.slice(nl + 1)), json };
}

/** The median of measured durations (the mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error('median: no values');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Prints a measured figure as a line of its own starting with "# lab: " (uvu's progress dots share stdout's line). */
export function reportFigure(text: string): void {
  console.log(`\n# lab: ${text}`);
}
