import http from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { WatchEvent } from '../api-types/index.js';
import { checkFlotillaServer } from './pki.js';

/** A failed API call: the server's Status (code, reason, message), or a transport failure with code 0. */
export class ApiClientError extends Error {
  constructor(message: string, readonly code: number, readonly reason: string, readonly status?: Record<string, unknown>) {
    super(message);
  }
}

export type { WatchEvent };

/**
 * Which server a client talks to when it knows several: the current choice, and a way to say it failed so the
 * next request goes to another one. `serverList` rotates through fixed URLs; discovery/locate.ts provides one
 * fed by mDNS.
 */
export interface ServerChoice {
  current(): string | undefined;
  reportFailure(url: string): void;
}

/** Fixed server URLs, used in order; one that fails to answer goes to the back. */
export function serverList(urls: readonly string[]): ServerChoice {
  if (urls.length === 0) throw new ApiClientError('no server URL given', 0, 'BadConfig');
  for (const u of urls) parseBase(u);
  const order = [...urls];
  return {
    current: () => order[0],
    reportFailure: (url) => {
      const i = order.findIndex((u) => parseBase(u).href === parseBase(url).href);
      if (i >= 0 && order.length > 1) order.push(...order.splice(i, 1));
    },
  };
}

function parseBase(url: string): URL {
  try {
    return new URL(url);
  } catch {
    throw new ApiClientError(`invalid server URL "${url}"`, 0, 'BadConfig');
  }
}

/**
 * How a client verifies Flotilla servers and, optionally, proves who it is. `ca` is the cluster CA (PEM): the
 * only CA a server certificate is checked against (never the system roots, never unverified). `identity` gives
 * the client certificate and key to present; it is read for each new connection, so a renewed certificate is
 * used without a new client.
 */
export interface ClientTls {
  ca: string;
  identity?: () => { certPem: string; keyPem: string } | undefined;
}

/**
 * Keep-alive https.Agents for one ClientTls: the current one is rebuilt when `identity` returns another
 * certificate; agents it replaced keep serving the requests (watches) already on them until close().
 */
export class TlsAgents {
  #current?: { agent: https.Agent; certPem: string | undefined };
  readonly #retired: https.Agent[] = [];
  constructor(readonly tls: ClientTls, readonly maxSockets: number) {}

  agent(): https.Agent {
    const id = this.tls.identity?.();
    if (this.#current && this.#current.certPem === id?.certPem) return this.#current.agent;
    if (this.#current) this.#retired.push(this.#current.agent);
    const agent = new https.Agent({
      keepAlive: true, maxSockets: this.maxSockets, ca: this.tls.ca, minVersion: 'TLSv1.2', checkServerIdentity: checkFlotillaServer,
      ...(id ? { cert: id.certPem, key: id.keyPem } : {}),
    });
    this.#current = { agent, certPem: id?.certPem };
    return agent;
  }

  close(): void {
    this.#current?.agent.destroy();
    for (const a of this.#retired.splice(0)) a.destroy();
    this.#current = undefined;
  }
}

function noCaError(url: URL): ApiClientError {
  return new ApiClientError(`${url.origin}: no cluster CA to verify this https server with`, 0, 'BadConfig');
}

/**
 * A `fetch` that verifies https servers against `tls.ca` (and presents `tls.identity`), for the calls that are
 * not API object requests: servers' calls to each other, proofs, log streams, tests. A plain http URL goes out
 * without TLS (only the benchmark transport serves one). Request bodies are strings or bytes.
 */
export function pinnedFetch(tls: ClientTls | undefined, maxSockets = 16): typeof fetch & { close: () => void } {
  const agents = tls ? new TlsAgents(tls, maxSockets) : undefined;
  const plain = new http.Agent({ keepAlive: true, maxSockets });
  const f = (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    const url = new URL(input instanceof Request ? input.url : input.toString());
    const secure = url.protocol === 'https:';
    if (secure && !agents) return Promise.reject(noCaError(url));
    const headers = new Headers(init.headers ?? (input instanceof Request ? input.headers : undefined));
    const body = init.body;
    if (body !== undefined && body !== null && typeof body !== 'string' && !(body instanceof Uint8Array)) {
      return Promise.reject(new TypeError('pinnedFetch: request bodies are strings or bytes'));
    }
    const payload = body === undefined || body === null ? undefined : Buffer.from(body);
    if (payload) headers.set('content-length', String(payload.length));
    return new Promise<Response>((resolve, reject) => {
      const req = (secure ? https : http).request(url, {
        method: init.method ?? (input instanceof Request ? input.method : 'GET'),
        headers: headerRecord(headers), agent: secure ? agents!.agent() : plain, ...(init.signal ? { signal: init.signal } : {}),
      }, (res) => {
        const resHeaders = new Headers();
        for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) resHeaders.set(k, Array.isArray(v) ? v.join(', ') : v);
        const status = res.statusCode ?? 500;
        const empty = status === 204 || status === 304 || (init.method ?? 'GET') === 'HEAD';
        if (empty) res.resume();
        resolve(new Response(empty ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>), { status, headers: resHeaders }));
      });
      req.on('error', reject);
      req.end(payload);
    });
  };
  return Object.assign(f as typeof fetch, { close: () => { agents?.close(); plain.destroy(); } });
}

function headerRecord(headers: Headers): Record<string, string> {
  const out: Record<string, string> = {};
  headers.forEach((v, k) => { out[k] = v; });
  return out;
}

/**
 * The HTTP client of the Kubernetes-shaped API, shared by the CLI and the agent. Keeps connections alive;
 * every call is bounded by a timeout except watches, which end on their signal. Given a ServerChoice, a
 * request that cannot reach its server reports it, so the caller's retry goes to another one. An https server
 * is verified against `options.tls.ca` only; without `tls` an https server is refused.
 */
export class ApiClient {
  readonly #choice: ServerChoice;
  readonly #agent: http.Agent;
  readonly #tlsAgents: TlsAgents | undefined;
  readonly timeoutMs: number;
  readonly tls: ClientTls | undefined;

  constructor(server: string | ServerChoice, readonly token: string | undefined, options: { tls?: ClientTls; timeoutMs?: number } = {}) {
    this.#choice = typeof server === 'string' ? serverList([server]) : server;
    this.#agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.tls = options.tls;
    this.#tlsAgents = options.tls ? new TlsAgents(options.tls, 64) : undefined;
  }

  /** The server requests go to now. */
  get server(): string {
    return this.#choice.current() ?? '<no server yet>';
  }

  async request<T = Record<string, unknown>>(method: string, path: string, body?: unknown, opts: { contentType?: string; signal?: AbortSignal } = {}): Promise<T> {
    const res = await this.#send(method, path, body, opts.contentType, opts.signal, this.timeoutMs);
    const text = await readAll(res);
    const parsed = parseJson(text);
    if ((res.statusCode ?? 0) >= 400) throw statusError(res.statusCode ?? 0, parsed, text, method, path);
    return parsed as T;
  }

  /** Streams newline-delimited watch events to `onEvent` until the server ends the stream or `signal` aborts. */
  async watch<T = Record<string, unknown>>(path: string, onEvent: (e: WatchEvent<T>) => void, signal: AbortSignal): Promise<void> {
    const res = await this.#send('GET', path, undefined, undefined, signal, 0);
    if ((res.statusCode ?? 0) >= 400) {
      const text = await readAll(res);
      throw statusError(res.statusCode ?? 0, parseJson(text), text, 'GET', path);
    }
    let buffered = '';
    res.setEncoding('utf8');
    await new Promise<void>((resolve, reject) => {
      res.on('data', (chunk: string) => {
        buffered += chunk;
        let nl: number;
        while ((nl = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, nl).trim();
          buffered = buffered.slice(nl + 1);
          if (line === '') continue;
          try {
            onEvent(JSON.parse(line) as WatchEvent<T>);
          } catch (err) {
            res.destroy();
            reject(err);
            return;
          }
        }
      });
      res.on('end', resolve);
      res.on('close', resolve);
      res.on('error', (err) => (signal.aborted ? resolve() : reject(err)));
    });
  }

  /** Streams a GET response body into `dest` (for backups); resolves with the response headers. */
  async download(path: string, dest: NodeJS.WritableStream): Promise<http.IncomingHttpHeaders> {
    const res = await this.#send('GET', path, undefined, undefined, undefined, this.timeoutMs);
    if ((res.statusCode ?? 0) >= 400) {
      const text = await readAll(res);
      throw statusError(res.statusCode ?? 0, parseJson(text), text, 'GET', path);
    }
    await pipeline(res, dest);
    return res.headers;
  }

  /**
   * Sends `body` as it streams (an image archive), with `headers`, and the `trailers` it gives once the body has
   * ended (chunked; their names go in the Trailer header); resolves with the JSON answer. No timeout: the answer
   * may come long after the last byte (the receiver's work), so the signal is what ends it.
   */
  async upload<T = Record<string, unknown>>(path: string, body: Readable, headers: Record<string, string>, signal?: AbortSignal, trailers?: { names: string[]; values: () => Record<string, string> }): Promise<T> {
    const res = await this.#send('POST', path, body, headers['content-type'] ?? 'application/octet-stream', signal, 0, headers, trailers);
    const text = await readAll(res);
    const parsed = parseJson(text);
    if ((res.statusCode ?? 0) >= 400) throw statusError(res.statusCode ?? 0, parsed, text, 'POST', path);
    return parsed as T;
  }

  close(): void {
    this.#agent.destroy();
    this.#tlsAgents?.close();
  }

  #send(method: string, path: string, body: unknown, contentType: string | undefined, signal: AbortSignal | undefined, timeoutMs: number, extraHeaders: Record<string, string> = {},
    trailers?: { names: string[]; values: () => Record<string, string> }): Promise<http.IncomingMessage> {
    const current = this.#choice.current();
    if (!current) return Promise.reject(new ApiClientError('no Flotilla server found yet', 0, 'Unreachable'));
    const base = parseBase(current);
    const url = new URL(path, base);
    const stream = body instanceof Readable ? body : undefined;
    const payload = body === undefined || stream ? undefined : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    const headers: Record<string, string> = { accept: 'application/json', ...extraHeaders };
    if (stream) headers['content-type'] = contentType ?? 'application/octet-stream';
    if (trailers) headers.trailer = trailers.names.join(', ');
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (payload) {
      // A PATCH of a JSON value is a merge patch unless the caller names another patch type (kube-apiserver refuses application/json).
      headers['content-type'] = contentType ?? (method === 'PATCH' ? 'application/merge-patch+json' : 'application/json');
      headers['content-length'] = String(payload.length);
    }
    const secure = url.protocol === 'https:';
    if (secure && !this.#tlsAgents) return Promise.reject(noCaError(url));
    const attempt = (retried: boolean): Promise<http.IncomingMessage> => new Promise((resolve, reject) => {
      const req = (secure ? https : http).request(url, { method, headers, agent: secure ? this.#tlsAgents!.agent() : this.#agent, ...(signal ? { signal } : {}) }, resolve);
      if (timeoutMs > 0) {
        req.setTimeout(timeoutMs, () => req.destroy(new ApiClientError(`${method} ${url.pathname}: no answer from ${base.origin} within ${timeoutMs} ms`, 0, 'Timeout')));
      }
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (err.name === 'AbortError') return reject(err);
        // A streamed body cannot be sent again: it is spent.
        if (!retried && !stream && isStaleKeepAlive(req, err)) { attempt(true).then(resolve, reject); return; }
        this.#choice.reportFailure(current);
        if (err instanceof ApiClientError) reject(err);
        else if (isVerificationError(err)) reject(new ApiClientError(`the server at ${base.origin} presents a certificate the cluster CA did not issue (${err.code ?? err.message}): wrong CA, or a man in the middle; nothing was sent`, 0, 'Unreachable'));
        else reject(new ApiClientError(`cannot reach the Flotilla server at ${base.origin}: ${err.code ?? err.message}`, 0, 'Unreachable'));
      });
      if (stream) {
        stream.on('error', (err) => req.destroy(err));
        stream.pipe(req, { end: false });
        stream.on('end', () => {
          if (trailers) req.addTrailers(trailers.values());
          req.end();
        });
      } else {
        req.end(payload);
      }
    });
    return attempt(false);
  }
}

/**
 * A request on a kept-alive connection that the server had closed as idle meanwhile (its close not yet seen,
 * e.g. while this process was busy): it never reached the server, so it is sent once more on a new connection.
 */
function isStaleKeepAlive(req: http.ClientRequest, err: NodeJS.ErrnoException): boolean {
  return req.reusedSocket && (err.code === 'ECONNRESET' || err.code === 'EPIPE');
}

/** A TLS failure to verify the server's certificate against the CA (its name or its issuer). */
function isVerificationError(err: NodeJS.ErrnoException): boolean {
  return /^(UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT(_LOCALLY)?|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|CERT_|ERR_TLS_CERT_ALTNAME_INVALID)/.test(err.code ?? '');
}

function readAll(res: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', reject);
  });
}

function parseJson(text: string): unknown {
  try {
    return text === '' ? undefined : JSON.parse(text);
  } catch {
    return undefined;
  }
}

function statusError(code: number, parsed: unknown, text: string, method: string, path: string): ApiClientError {
  const s = parsed as { kind?: string; message?: string; reason?: string } | undefined;
  if (s?.kind === 'Status') return new ApiClientError(s.message ?? `${method} ${path} failed with ${code}`, code, s.reason ?? 'Unknown', s as Record<string, unknown>);
  return new ApiClientError(`${method} ${path} failed with ${code}: ${text.slice(0, 200)}`, code, 'Unknown');
}
