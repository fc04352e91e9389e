// The agent's Ingress router: HTTP/1.1 on one port, HTTPS with HTTP/2 and HTTP/1.1 (ALPN) on another, proxying
// each request straight to a ready endpoint of the matched Service (node-agent/ingress/routes.ts).
//
// Contracts:
// - setTable swaps the whole table at once: a request uses the table it started with from start to end, and
//   the listeners never close, so a configuration change drops no request in flight.
// - endpoints of an upstream are taken round-robin; connections to them are kept alive and reused. A request
//   whose connection is refused goes to the next endpoint when it is idempotent and has no body (every endpoint
//   is tried at most once); a refused POST gets 502, as it may not be sent twice.
// - answers of the router itself: 404 (no rule matches), 503 (the backend has no ready endpoint, or its Service
//   or port is missing), 502 (the upstream failed), 504 (no response within the read timeout), 413 (body over
//   flotilla.io/proxy-body-size), 308 to https (flotilla.io/ssl-redirect, default for hosts with a certificate).
// - upstream requests carry X-Forwarded-For (the client address appended to what the client sent),
//   X-Forwarded-Proto, X-Forwarded-Host and X-Forwarded-Port; HTTP/2 requests go upstream as HTTP/1.1.
// - WebSocket and other Upgrade requests (HTTP/1.1) are passed through as a tunnel after the upstream's 101.
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import type { Logger } from 'pino';
import { RouteTable, hostName, type Route, type TlsKeyPair, type Upstream } from './routes.js';

export interface RouterListen {
  /** Address both listeners bind (default all: "::" / "0.0.0.0"). */
  host?: string;
  /** Plain HTTP port; undefined: no HTTP listener. 0 picks one. */
  httpPort?: number;
  /** HTTPS port; undefined: no HTTPS listener. 0 picks one. */
  httpsPort?: number;
}

/** Headers that describe one connection and are never forwarded (RFC 9110 7.6.1), plus HTTP/2's forbidden ones. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-authorization', 'http2-settings', 'host']);
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);
const NO_BODY_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'DELETE']);

type AnyRequest = http.IncomingMessage | http2.Http2ServerRequest;
type AnyResponse = http.ServerResponse | http2.Http2ServerResponse;

export class IngressRouter {
  #table = new RouteTable();
  /** Round-robin position per upstream name; survives table swaps so that rebuilt tables keep spreading. */
  readonly #next = new Map<string, number>();
  readonly #contexts = new WeakMap<TlsKeyPair, tls.SecureContext>();
  readonly #agent = new http.Agent({ keepAlive: true, maxFreeSockets: 256, scheduling: 'lifo' });
  #http: http.Server | undefined;
  #https: http2.Http2SecureServer | undefined;
  readonly #open = new Set<net.Socket | Duplex>();

  constructor(private readonly log: Logger) {}

  /** The table requests started from now on use. */
  setTable(table: RouteTable): void {
    this.#table = table;
    for (const name of this.#next.keys()) if (!table.upstreams.has(name)) this.#next.delete(name);
  }

  get table(): RouteTable {
    return this.#table;
  }

  /** Opens the listeners; resolves with their ports once both listen. */
  async listen(o: RouterListen): Promise<{ httpPort?: number; httpsPort?: number }> {
    const ports: { httpPort?: number; httpsPort?: number } = {};
    if (o.httpPort !== undefined) {
      const server = this.#http = http.createServer({ keepAliveTimeout: 65_000 }, (req, res) => this.#serve(req, res, 'http', ports.httpPort!));
      server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => this.#upgrade(req, socket, head, 'http', ports.httpPort!));
      ports.httpPort = await listenOn(server, o.host, o.httpPort);
    }
    if (o.httpsPort !== undefined) {
      const server = this.#https = http2.createSecureServer({
        allowHTTP1: true,
        // The host's certificate, else (none, or a pair that makes no context) the table's fallback one.
        SNICallback: (name, cb) => {
          const own = this.#table.certificateFor(name);
          const fallback = this.#table.fallbackCertificate;
          cb(null, (own && this.#context(own)) || (fallback && this.#context(fallback)) || undefined);
        },
      }, (req, res) => this.#serve(req, res, 'https', ports.httpsPort!));
      server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => this.#upgrade(req, socket, head, 'https', ports.httpsPort!));
      ports.httpsPort = await listenOn(server, o.host, o.httpsPort);
    }
    for (const s of [this.#http, this.#https]) s?.on('connection', (c: net.Socket) => { this.#open.add(c); c.once('close', () => this.#open.delete(c)); });
    return ports;
  }

  /** Stops listening and ends every connection (requests in flight included: the node stops serving). */
  async close(): Promise<void> {
    const closing = [this.#http, this.#https].filter((s) => s !== undefined).map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
    for (const c of this.#open) c.destroy();
    this.#agent.destroy();
    await Promise.all(closing);
  }

  #context(pair: TlsKeyPair): tls.SecureContext | undefined {
    let ctx = this.#contexts.get(pair);
    if (!ctx) {
      try {
        ctx = tls.createSecureContext({ cert: pair.cert, key: pair.key });
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'ingress: a TLS key pair does not make a certificate');
        return undefined;
      }
      this.#contexts.set(pair, ctx);
    }
    return ctx;
  }

  #pick(u: Upstream, skip: ReadonlySet<string>): string | undefined {
    const n = u.endpoints.length;
    const start = this.#next.get(u.name) ?? 0;
    for (let i = 0; i < n; i++) {
      const e = u.endpoints[(start + i) % n]!;
      if (skip.has(e)) continue;
      this.#next.set(u.name, (start + i + 1) % n);
      return e;
    }
    return undefined;
  }

  #serve(req: AnyRequest, res: AnyResponse, proto: 'http' | 'https', port: number): void {
    const host = requestHost(req);
    const path = req.url ?? '/';
    const q = path.indexOf('?');
    const route = this.#table.match(host, q < 0 ? path : path.slice(0, q));
    if (!route) { answer(res, 404, 'default backend - 404'); return; }
    if (proto === 'http' && this.#redirects(route, host)) {
      res.writeHead(308, { location: `https://${hostName(host)}${path}` });
      res.end();
      return;
    }
    if (route.upstream.endpoints.length === 0) { answer(res, 503, `503 Service Unavailable: ${route.upstream.unavailable ?? 'no endpoint'}`); return; }
    const { maxBodyBytes } = route.settings;
    const length = Number(req.headers['content-length'] ?? 0);
    if (maxBodyBytes > 0 && length > maxBodyBytes) { answer(res, 413, '413 Request Entity Too Large'); return; }
    const headers = forwardedHeaders(req, host, proto, port);
    // HTTP/2 sends a body without content-length; a GET, HEAD, OPTIONS, DELETE or TRACE without one has none.
    const hasBody = length > 0 || req.headers['transfer-encoding'] !== undefined
      || (req.httpVersionMajor === 2 && req.headers['content-length'] === undefined && !NO_BODY_METHODS.has(req.method ?? ''));
    this.#forward(req, res, route, headers, hasBody, new Set());
  }

  /** Whether a plain-HTTP request is redirected to https: the annotation, else whether the host has a certificate. */
  #redirects(route: Route, host: string): boolean {
    return route.settings.sslRedirect ?? (this.#https !== undefined && this.#table.certificateFor(hostName(host)) !== undefined);
  }

  #forward(req: AnyRequest, res: AnyResponse, route: Route, headers: http.OutgoingHttpHeaders, hasBody: boolean, tried: Set<string>): void {
    const endpoint = this.#pick(route.upstream, tried);
    if (endpoint === undefined) { answer(res, 502, '502 Bad Gateway: every endpoint refused the connection'); return; }
    tried.add(endpoint);
    const { host, port } = splitEndpoint(endpoint);
    const { connectTimeoutMs, readTimeoutMs, maxBodyBytes } = route.settings;
    let responded = false;
    const up = http.request({ host, port, method: req.method, path: req.url, headers, agent: this.#agent, timeout: readTimeoutMs });
    // Only a new connection has a connect timeout: a kept-alive one is connected already.
    let connectTimer: NodeJS.Timeout | undefined;
    up.on('socket', (s: net.Socket) => {
      if (!s.connecting) return;
      connectTimer = setTimeout(() => up.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })), connectTimeoutMs);
      s.once('connect', () => clearTimeout(connectTimer));
    });
    up.on('timeout', () => up.destroy(Object.assign(new Error('read timeout'), { code: 'ERR_READ_TIMEOUT' })));
    up.on('response', (ur) => {
      responded = true;
      clearTimeout(connectTimer);
      if (res.headersSent || res.destroyed) { ur.destroy(); return; }
      res.writeHead(ur.statusCode ?? 502, responseHeaders(ur.headers));
      ur.pipe(res as NodeJS.WritableStream);
      ur.on('error', () => res.destroy());
    });
    up.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(connectTimer);
      if (responded) { res.destroy(); return; }
      const resend = !hasBody && IDEMPOTENT.has(req.method ?? '');
      // A kept-alive connection the endpoint closed meanwhile: the same endpoint again, on another connection.
      if (resend && err.code === 'ECONNRESET' && up.reusedSocket) tried.delete(endpoint);
      const retry = resend && (err.code === 'ECONNREFUSED' || err.code === 'ETIMEDOUT' || (err.code === 'ECONNRESET' && up.reusedSocket));
      if (retry && tried.size < route.upstream.endpoints.length) { this.#forward(req, res, route, headers, hasBody, tried); return; }
      if (res.headersSent) { res.destroy(); return; }
      if (err.code === 'ERR_READ_TIMEOUT') answer(res, 504, '504 Gateway Timeout');
      else answer(res, 502, `502 Bad Gateway: ${route.upstream.name}: ${err.code ?? err.message}`);
    });
    res.on('close', () => { if (!res.writableFinished) up.destroy(); });
    if (!hasBody) { up.end(); return; }
    let seen = 0;
    req.on('data', (chunk: Buffer) => {
      seen += chunk.length;
      if (maxBodyBytes > 0 && seen > maxBodyBytes) {
        up.destroy();
        if (!res.headersSent) answer(res, 413, '413 Request Entity Too Large');
        return;
      }
      if (!up.write(chunk)) { req.pause(); up.once('drain', () => req.resume()); }
    });
    req.on('end', () => up.end());
  }

  #upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer, proto: 'http' | 'https', port: number): void {
    this.#open.add(socket);
    socket.once('close', () => this.#open.delete(socket));
    socket.on('error', () => socket.destroy());
    const host = requestHost(req);
    const path = req.url ?? '/';
    const q = path.indexOf('?');
    const route = this.#table.match(host, q < 0 ? path : path.slice(0, q));
    const refuse = (status: number, text: string, extra = ''): void => {
      socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\n${extra}content-type: text/plain\r\ncontent-length: ${Buffer.byteLength(text)}\r\nconnection: close\r\n\r\n${text}`);
    };
    if (!route) { refuse(404, 'default backend - 404'); return; }
    if (proto === 'http' && this.#redirects(route, host)) { refuse(308, '', `location: https://${hostName(host)}${path}\r\n`); return; }
    const endpoint = this.#pick(route.upstream, new Set());
    if (endpoint === undefined) { refuse(503, `503 Service Unavailable: ${route.upstream.unavailable ?? 'no endpoint'}`); return; }
    const headers = forwardedHeaders(req, host, proto, port);
    headers.connection = 'Upgrade';
    headers.upgrade = req.headers.upgrade ?? 'websocket';
    const { host: upHost, port: upPort } = splitEndpoint(endpoint);
    const up = http.request({ host: upHost, port: upPort, method: req.method, path, headers });
    up.on('upgrade', (ur, upSocket, upHead) => {
      socket.write(`HTTP/1.1 101 Switching Protocols\r\n${rawHeaders(ur.rawHeaders)}\r\n`);
      if (upHead.length > 0) socket.write(upHead);
      if (head.length > 0) upSocket.write(head);
      // The tunnel lives as long as both ends: either one closing closes the other.
      upSocket.on('error', () => socket.destroy());
      socket.on('error', () => upSocket.destroy());
      upSocket.once('close', () => socket.destroy());
      socket.once('close', () => upSocket.destroy());
      upSocket.pipe(socket).pipe(upSocket);
    });
    up.on('response', (ur) => {
      // The upstream declined the upgrade: its answer goes back as it is, and the connection closes.
      socket.write(`HTTP/1.1 ${ur.statusCode ?? 502} ${ur.statusMessage ?? ''}\r\n${rawHeaders(ur.rawHeaders)}connection: close\r\n\r\n`);
      ur.pipe(socket);
    });
    up.on('error', (err: NodeJS.ErrnoException) => refuse(502, `502 Bad Gateway: ${route.upstream.name}: ${err.code ?? err.message}`));
    up.end();
  }
}

function listenOn(server: net.Server, host: string | undefined, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as net.AddressInfo).port);
    });
  });
}

/** The host a request is for: HTTP/2's :authority, else the Host header. */
function requestHost(req: AnyRequest): string {
  return (req.headers[':authority'] as string | undefined) ?? req.headers.host ?? '';
}

function forwardedHeaders(req: AnyRequest, host: string, proto: 'http' | 'https', port: number): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (k.startsWith(':') || HOP_BY_HOP.has(k) || v === undefined) continue;
    out[k] = v;
  }
  out.host = host;
  const client = req.socket.remoteAddress ?? '';
  const before = req.headers['x-forwarded-for'];
  out['x-forwarded-for'] = before ? `${Array.isArray(before) ? before.join(', ') : before}, ${client}` : client;
  out['x-forwarded-proto'] = proto;
  out['x-forwarded-host'] = host;
  out['x-forwarded-port'] = String(port);
  return out;
}

function responseHeaders(h: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
  return out;
}

/** Raw header pairs as lines ("name: value\r\n" each). */
function rawHeaders(raw: string[]): string {
  let s = '';
  for (let i = 0; i + 1 < raw.length; i += 2) s += `${raw[i]}: ${raw[i + 1]}\r\n`;
  return s;
}

function splitEndpoint(endpoint: string): { host: string; port: number } {
  const colon = endpoint.lastIndexOf(':');
  const host = endpoint.slice(0, colon);
  return { host: host.startsWith('[') ? host.slice(1, -1) : host, port: Number(endpoint.slice(colon + 1)) };
}

function answer(res: AnyResponse, status: number, text: string): void {
  if (res.headersSent) { res.destroy(); return; }
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
