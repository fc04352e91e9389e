// The agent's own HTTPS endpoint, called by the servers (server/api/routes/agent-proxy.ts) to serve `logs`, `exec`
// and the node's images, and by other nodes' agents to fetch an image (node-agent/images/peer-fetch.ts). Mutual
// TLS: it serves with the node certificate (node-agent/node-certificate.ts) and admits only clients with a
// certificate of the cluster CA whose subject O is flotilla:servers (the servers' own client certificates); a
// node certificate of the cluster CA (O system:nodes, CN system:node:<N>) is admitted to GET /v1/images/archive
// only. Any other certificate or none: refused. No secret of this endpoint is stored anywhere.
//
//   GET  /v1/pods/NS/NAME/log?container=C&follow=true&tailLines=N&sinceSeconds=S|sinceTime=T&timestamps=true&limitBytes=B&previous=true
//        text/plain, one line per log line (after its RFC 3339 time with timestamps), streamed while following
//        until the container stops, cut after limitBytes; previous: the attempt before the newest (kept once ended)
//   GET  /v1/pods/NS/NAME/exec?command=..&container=C&stdin=true&tty=true   upgrade: websocket, and .../attach:
//        Kubernetes' remote command protocol (streams/remote-command.ts)
//   POST /v1/pods/NS/NAME/exec  {"container": C, "command": [..]}     {"stdout","stderr","exitCode"}
//   GET  /v1/images                                                  {"images": [ImageSummary...]}
//   POST /v1/images  body: a `docker save` archive, ARCHIVE_DIGEST_HEADER as a header or trailer   201 {"images", "digest", "bytes"}
//        loaded only when it arrived whole with that digest (node-agent/images/load.ts); 400 otherwise
//   DELETE /v1/images?name=IMAGE                                     {"removed": IMAGE}; 404, or 409 while in use
//   GET  /v1/images/archive?name=IMAGE   the image's `docker save` archive, its id in IMAGE_ID_HEADER and the
//        archive's digest in the trailer ARCHIVE_DIGEST_HEADER; servers and nodes alike
import { STATUS_CODES, type default as http } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { createHash } from 'node:crypto';
import { Transform, type Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { REMOTE_COMMAND_PROTOCOLS, chooseProtocol, serveRemoteCommand } from './streams/remote-command.js';
import { pipeline } from 'node:stream/promises';
import { NODE_GROUP, SERVER_GROUP, certificateInfo, nodeNameOfCommonName } from '../client/pki.js';
import type { NodeTlsMaterial } from './node-certificate.js';
import type { Logger } from 'pino';
import { ARCHIVE_DIGEST_HEADER, IMAGE_ID_HEADER, archiveDigestTrails, isArchiveDigest, statusObject } from '../api-types/index.js';
import { ArchiveDigestError, loadArchive } from './images/load.js';
import {
  ContainerNotFoundError,
  ImageNotFoundError,
  LABEL_CONTAINER,
  LABEL_NAMESPACE,
  LABEL_POD,
  LABEL_RESTART_COUNT,
  SANDBOX_CONTAINER_NAME,
  ownerLabels,
  type ContainerRuntime,
  type ContainerSummary,
} from './runtime/types.js';

export interface EndpointOptions {
  runtime: ContainerRuntime;
  /** Logs and exec reach only containers of this cluster and node (runtime/types.ts ownerLabels). */
  clusterId: string;
  nodeName: string;
  /** The agent's data directory: image archives arrive under it (node-agent/images/load.ts). */
  dataDir: string;
  /** The node certificate and the CA clients must chain to. */
  tls: NodeTlsMaterial;
  host: string;
  /** 0 picks a free port. */
  port: number;
  log?: Logger;
}

export interface AgentEndpoint {
  /** The port actually bound. */
  port: number;
  /** Serves new connections with this (renewed) certificate; open ones keep theirs. */
  setCertificate(tls: NodeTlsMaterial): void;
  close(): Promise<void>;
}

class EndpointError extends Error {
  constructor(readonly code: number, readonly reason: string, message: string) {
    super(message);
  }
}

/** Listens until close(); resolves once bound. */
export async function startEndpoint(options: EndpointOptions): Promise<AgentEndpoint> {
  // A client without a certificate of the CA is refused in the handshake; one with a CA certificate that is no
  // server's (a node's) gets 403 here.
  const server = https.createServer({ ...secureContext(options.tls), requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.2' }, (req, res) => {
    const caller = callerOf(req);
    if (caller instanceof EndpointError) return sendStatus(res, caller);
    handle(options, req, res, caller).catch((err: unknown) => sendStatus(res, endpointError(options, err)));
  });
  const sockets = new WebSocketServer({ noServer: true, handleProtocols: (offered) => chooseProtocol(offered) ?? false });
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    const caller = callerOf(req);
    if (caller instanceof EndpointError) return refuseUpgrade(socket, caller);
    upgrade(options, sockets, req, socket, head).catch((err: unknown) => refuseUpgrade(socket, endpointError(options, err)));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => { server.off('error', reject); resolve(); });
  });
  return {
    port: (server.address() as AddressInfo).port,
    setCertificate: (tls) => server.setSecureContext(secureContext(tls)),
    close: () => new Promise((resolve) => {
      for (const ws of sockets.clients) ws.terminate();
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** The caller's certificate CN, or the refusal: servers may call everything, nodes only GET /v1/images/archive. */
function callerOf(req: http.IncomingMessage): string | EndpointError {
  const peer = (req.socket as TLSSocket).getPeerX509Certificate();
  const subject = peer ? certificateInfo(peer) : undefined;
  const peerNode = subject?.organizations.includes(NODE_GROUP) ? nodeNameOfCommonName(subject.commonName) : undefined;
  const archiveFetch = req.method === 'GET' && req.headers.upgrade === undefined && new URL(req.url ?? '/', 'http://agent').pathname === '/v1/images/archive';
  if (subject?.organizations.includes(SERVER_GROUP) || (archiveFetch && peerNode !== undefined)) return subject?.commonName ?? '';
  return new EndpointError(403, 'Forbidden', `only the cluster's servers (certificate O=${SERVER_GROUP}) may call this agent${archiveFetch ? ` (and nodes, O=${NODE_GROUP}, fetch images)` : ''}; ${subject ? `CN=${subject.commonName} is not one` : 'no client certificate was presented'}`);
}

function endpointError(o: EndpointOptions, err: unknown): EndpointError {
  if (err instanceof EndpointError) return err;
  if (err instanceof ImageNotFoundError) return new EndpointError(404, 'NotFound', `${err.message} on node ${o.nodeName}`);
  if (err instanceof ArchiveDigestError) return new EndpointError(400, 'BadRequest', `node ${o.nodeName}: ${err.message}`);
  if (err instanceof ContainerNotFoundError) return new EndpointError(404, 'NotFound', `${err.message} on node ${o.nodeName}`);
  o.log?.warn({ err }, 'agent endpoint request failed');
  return new EndpointError(500, 'InternalError', err instanceof Error ? err.message : String(err));
}

/**
 * exec and attach as Kubernetes' WebSocket remote command protocol (streams/remote-command.ts), with kube's
 * query: command (repeated, exec), container, stdin, tty. The container is found before the upgrade (a refusal
 * is an HTTP Status); what happens after it is told on the error channel.
 */
async function upgrade(o: EndpointOptions, sockets: WebSocketServer, req: http.IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://agent');
  const m = /^\/v1\/pods\/([^/]+)\/([^/]+)\/(exec|attach)$/.exec(url.pathname);
  if (!m) throw new EndpointError(404, 'NotFound', `no such agent stream: ${req.method} ${url.pathname}`);
  const q = url.searchParams;
  const flag = (name: string) => q.get(name) === 'true' || q.get(name) === '1';
  const command = q.getAll('command');
  if (m[3] === 'exec' && command.length === 0) throw new EndpointError(400, 'BadRequest', 'you must specify at least 1 command');
  // The container first: its refusal is the same whatever the protocol (kubectl tries SPDY after a refused WebSocket).
  const id = await containerOf(o, decodeURIComponent(m[1]!), decodeURIComponent(m[2]!), q.get('container') ?? undefined);
  const offered = String(req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim()).filter(Boolean);
  if (req.headers.upgrade?.toLowerCase() !== 'websocket' || !chooseProtocol(offered)) {
    throw new EndpointError(400, 'BadRequest', `${m[3]} is served over WebSocket with subprotocol ${REMOTE_COMMAND_PROTOCOLS.join(' or ')}; got upgrade ${req.headers.upgrade ?? 'none'} offering ${offered.join(', ') || 'no subprotocol'}`);
  }
  const ws = await new Promise<WebSocket>((resolve) => sockets.handleUpgrade(req, socket, head, resolve));
  const options = { stdin: flag('stdin'), tty: flag('tty') };
  await serveRemoteCommand(ws, () => (m[3] === 'exec' ? o.runtime.execStreams(id, command, options) : o.runtime.attach(id, options)), m[3] === 'exec' ? command : undefined);
}

/** An upgrade refused before it happened: the Status as a plain HTTP answer, then the connection closes. */
function refuseUpgrade(socket: Duplex, err: EndpointError): void {
  if (socket.destroyed) return;
  const body = JSON.stringify(statusObject({ code: err.code, reason: err.reason, message: err.message }));
  socket.end(`HTTP/1.1 ${err.code} ${STATUS_CODES[err.code] ?? ''}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

function secureContext(tls: NodeTlsMaterial): { cert: string; key: string; ca: string } {
  return { cert: tls.certPem, key: tls.keyPem, ca: tls.caPem };
}

async function handle(o: EndpointOptions, req: http.IncomingMessage, res: http.ServerResponse, caller: string): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://agent');
  if (url.pathname === '/v1/images' || url.pathname === '/v1/images/archive') return handleImages(o, req, res, url, caller);
  const m = /^\/v1\/pods\/([^/]+)\/([^/]+)\/(log|exec)$/.exec(url.pathname);
  if (!m) throw new EndpointError(404, 'NotFound', `no such agent endpoint: ${req.method} ${url.pathname}`);
  const namespace = decodeURIComponent(m[1]!);
  const pod = decodeURIComponent(m[2]!);
  if (m[3] === 'log') {
    if (req.method !== 'GET') throw new EndpointError(405, 'MethodNotAllowed', 'log takes GET');
    const q = logQuery(url.searchParams);
    const id = await containerOf(o, namespace, pod, url.searchParams.get('container') ?? undefined, q.previous);
    const stop = new AbortController();
    res.on('close', () => stop.abort());
    const lines = o.runtime.logs(id, {
      follow: q.follow && !q.previous, signal: stop.signal, timestamps: q.timestamps,
      ...(q.tailLines !== undefined ? { tail: q.tailLines } : {}), ...(q.since !== undefined ? { since: q.since } : {}),
    });
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-cache' });
    res.flushHeaders();
    let left = q.limitBytes ?? Infinity;
    for await (const line of lines) {
      if (stop.signal.aborted) break;
      const text = Buffer.from(`${q.timestamps && line.time ? `${line.time} ` : ''}${line.line}\n`);
      res.write(text.length <= left ? text : text.subarray(0, left));
      left -= text.length;
      if (left <= 0) break;
    }
    res.end();
    return;
  }
  if (req.method !== 'POST') throw new EndpointError(405, 'MethodNotAllowed', 'exec takes POST');
  let body: { container?: unknown; command?: unknown };
  try {
    body = JSON.parse(await readBody(req)) as typeof body;
  } catch {
    throw new EndpointError(400, 'BadRequest', 'exec wants a JSON body {"container": NAME, "command": [ARG...]}');
  }
  if (!Array.isArray(body.command) || body.command.length === 0 || !body.command.every((a) => typeof a === 'string')) {
    throw new EndpointError(400, 'BadRequest', 'exec: "command" must be a non-empty array of strings');
  }
  if (body.container !== undefined && typeof body.container !== 'string') throw new EndpointError(400, 'BadRequest', 'exec: "container" must be a string');
  const id = await containerOf(o, namespace, pod, body.container as string | undefined);
  const stop = new AbortController();
  res.on('close', () => { if (!res.writableFinished) stop.abort(); });
  const result = await o.runtime.exec(id, body.command as string[], { signal: stop.signal });
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(result));
}

/** The image routes (the table at the top). */
async function handleImages(o: EndpointOptions, req: http.IncomingMessage, res: http.ServerResponse, url: URL, caller: string): Promise<void> {
  const sendJson = (code: number, body: unknown): void => { res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(body)); };
  const name = () => {
    const n = url.searchParams.get('name');
    if (!n) throw new EndpointError(400, 'BadRequest', 'name the image: ?name=IMAGE');
    return n;
  };
  if (url.pathname === '/v1/images/archive') return sendArchive(o, res, name(), caller);
  if (req.method === 'GET') return sendJson(200, { images: await o.runtime.listImages() });
  if (req.method === 'DELETE') {
    const image = name();
    try {
      await o.runtime.removeImage(image);
    } catch (err) {
      if (err instanceof ImageNotFoundError) throw err;
      const message = err instanceof Error ? err.message : String(err);
      throw new EndpointError(/^conflict/i.test(message) ? 409 : 500, /^conflict/i.test(message) ? 'Conflict' : 'InternalError', `node ${o.nodeName}: ${message}`);
    }
    o.log?.info({ image, by: caller }, 'image removed');
    return sendJson(200, { removed: image });
  }
  if (req.method !== 'POST') throw new EndpointError(405, 'MethodNotAllowed', '/v1/images takes GET, POST and DELETE');
  const digest = req.headers[ARCHIVE_DIGEST_HEADER];
  const trailing = digest === undefined && archiveDigestTrails(req.headers.trailer);
  if (!trailing && (typeof digest !== 'string' || !isArchiveDigest(digest))) {
    req.resume();
    throw new EndpointError(400, 'BadRequest', `an image archive needs its digest in the ${ARCHIVE_DIGEST_HEADER} header or trailer ("sha256:" and 64 hex digits)`);
  }
  const stop = new AbortController();
  res.on('close', () => { if (!res.writableFinished) stop.abort(); });
  const loaded = await loadArchive(o.runtime, req, {
    dataDir: o.dataDir, signal: stop.signal,
    expectedDigest: () => (typeof digest === 'string' ? digest : req.complete ? req.trailers[ARCHIVE_DIGEST_HEADER] : undefined),
  });
  o.log?.info({ ...loaded, by: caller }, 'image archive loaded');
  sendJson(201, loaded);
}

/**
 * The image's archive as `docker save` streams it, its digest in the trailer; the stream is cut (no trailer) when
 * the save fails, so that the receiver sees an incomplete body rather than a short archive.
 */
async function sendArchive(o: EndpointOptions, res: http.ServerResponse, image: string, caller: string): Promise<void> {
  const id = (await o.runtime.inspectImage(image))?.id;
  if (id === undefined) throw new ImageNotFoundError(image);
  const archive = await o.runtime.saveImage(image);
  const hash = createHash('sha256');
  let bytes = 0;
  const hashing = new Transform({ transform(chunk: Buffer, _e, done) { hash.update(chunk); bytes += chunk.length; done(null, chunk); } });
  res.writeHead(200, { 'content-type': 'application/x-tar', [IMAGE_ID_HEADER]: id, trailer: ARCHIVE_DIGEST_HEADER });
  try {
    await pipeline(archive, hashing, res, { end: false });
  } catch (err) {
    res.destroy();
    throw err;
  }
  res.addTrailers({ [ARCHIVE_DIGEST_HEADER]: `sha256:${hash.digest('hex')}` });
  res.end();
  o.log?.info({ image, id, bytes, to: caller }, 'image archive served');
}

interface LogQuery { follow: boolean; previous: boolean; timestamps: boolean; tailLines?: number; limitBytes?: number; since?: number }

/** Kubernetes' PodLogOptions from the query, refused (400) as kube's validation refuses them. */
function logQuery(q: URLSearchParams): LogQuery {
  const bool = (name: string) => q.get(name) === 'true' || q.get(name) === '1';
  const integer = (name: string, min: number): number | undefined => {
    const text = q.get(name);
    if (text === null) return undefined;
    if (!/^-?\d+$/.test(text)) throw new EndpointError(400, 'BadRequest', `${name} must be an integer, got "${text}"`);
    const n = Number(text);
    if (n < min) throw new EndpointError(400, 'BadRequest', `${name}: Invalid value: ${n}: must be greater than ${min === 0 ? 'or equal to 0' : '0'}`);
    return n;
  };
  const tailLines = integer('tailLines', 0);
  const limitBytes = integer('limitBytes', 1);
  const sinceSeconds = integer('sinceSeconds', 1);
  const sinceTime = q.get('sinceTime');
  if (sinceSeconds !== undefined && sinceTime !== null) throw new EndpointError(400, 'BadRequest', 'at most one of `sinceTime` or `sinceSeconds` may be specified');
  let since: number | undefined;
  if (sinceSeconds !== undefined) since = Date.now() / 1000 - sinceSeconds;
  if (sinceTime !== null) {
    const ms = Date.parse(sinceTime);
    if (!/^\d{4}-\d\d-\d\dT/.test(sinceTime) || Number.isNaN(ms)) throw new EndpointError(400, 'BadRequest', `sinceTime must be an RFC 3339 time, got "${sinceTime}"`);
    since = ms / 1000;
  }
  return {
    follow: bool('follow'), previous: bool('previous'), timestamps: bool('timestamps'),
    ...(tailLines !== undefined ? { tailLines } : {}), ...(limitBytes !== undefined ? { limitBytes } : {}), ...(since !== undefined ? { since } : {}),
  };
}

/**
 * The newest container of that name in the pod (without a name, the pod's only container's); with `previous`,
 * the attempt before it, which the agent keeps once it has ended (as the kubelet keeps one dead container).
 */
async function containerOf(o: EndpointOptions, namespace: string, pod: string, container: string | undefined, previous = false): Promise<string> {
  const all = (await o.runtime.listContainers({ ...ownerLabels(o), [LABEL_NAMESPACE]: namespace, [LABEL_POD]: pod }))
    .filter((c) => c.labels[LABEL_CONTAINER] !== SANDBOX_CONTAINER_NAME);
  if (all.length === 0) throw new EndpointError(404, 'NotFound', `pod ${namespace}/${pod} has no containers on node ${o.nodeName}`);
  const names = [...new Set(all.map((c) => c.labels[LABEL_CONTAINER] ?? ''))].sort();
  const name = container ?? (names.length === 1 ? names[0]! : undefined);
  if (name === undefined) throw new EndpointError(400, 'BadRequest', `pod ${namespace}/${pod} has several containers; choose one of: ${names.join(', ')}`);
  const attempts = all.filter((c) => c.labels[LABEL_CONTAINER] === name).sort((a, b) => restarts(b) - restarts(a));
  if (attempts.length === 0) throw new EndpointError(404, 'NotFound', `container "${name}" is not valid for pod ${namespace}/${pod}; choose one of: ${names.join(', ')}`);
  if (!previous) return attempts[0]!.id;
  const before = attempts.find((c) => restarts(c) < restarts(attempts[0]!) && c.state === 'exited');
  if (!before) throw new EndpointError(400, 'BadRequest', `previous terminated container "${name}" in pod "${pod}" not found`);
  return before.id;
}

function restarts(c: ContainerSummary): number {
  return Number(c.labels[LABEL_RESTART_COUNT] ?? 0);
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => { text += c; if (text.length > 1 << 20) req.destroy(new Error('request body over 1 MiB')); });
    req.on('end', () => resolve(text));
    req.on('error', reject);
  });
}

function sendStatus(res: http.ServerResponse, err: EndpointError): void {
  if (res.headersSent) { res.end(); return; }
  res.writeHead(err.code, { 'content-type': 'application/json' })
    .end(JSON.stringify(statusObject({ code: err.code, reason: err.reason, message: err.message })));
}
