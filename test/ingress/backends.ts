// Fake upstreams for the Ingress router's tests and benchmark: tiny node:http servers, each on its own loopback
// address (127.0.0.x), answering their own name; one also speaks WebSocket (an echo of text frames). And the
// Services and EndpointSlices that point at them, as a selectorless Service with a manual slice would.
import { createHash } from 'node:crypto';
import http from 'node:http';
import type net from 'node:net';
import type { EndpointSlice, Ingress, IngressSpec, Service } from '../../api-types/index.js';
import { LABEL_SERVICE_NAME } from '../../api-types/index.js';

export interface Backend {
  name: string;
  address: string;
  port: number;
  /** The headers of the last request it answered. */
  lastHeaders: http.IncomingHttpHeaders | undefined;
  /** Requests answered. */
  served: number;
  server: http.Server;
  /** Upgraded connections, which the server no longer tracks: closed at stop. */
  tunnels: Set<net.Socket>;
}

/**
 * One backend per name, on 127.0.0.(firstHost + i), port 0 (any). Each answers 200 with its name as the body
 * (header x-backend too); a request with header `x-delay-ms` is answered after that long; an Upgrade to
 * websocket gets a 101 and an echo of each text frame.
 */
export async function startBackends(names: readonly string[], firstHost = 10): Promise<Backend[]> {
  return Promise.all(names.map(async (name, i) => {
    const address = `127.0.0.${firstHost + i}`;
    const b: Backend = { name, address, port: 0, lastHeaders: undefined, served: 0, server: undefined as unknown as http.Server, tunnels: new Set() };
    const server = http.createServer({ keepAliveTimeout: 30_000 }, (req, res) => {
      b.lastHeaders = req.headers;
      b.served++;
      const answer = (): void => { res.writeHead(200, { 'content-type': 'text/plain', 'x-backend': name }); res.end(name); };
      req.resume();
      req.on('end', () => {
        const delayMs = Number(req.headers['x-delay-ms'] ?? 0);
        if (delayMs > 0) setTimeout(answer, delayMs); else answer();
      });
    });
    server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket) => {
      b.lastHeaders = req.headers;
      b.tunnels.add(socket);
      socket.once('close', () => b.tunnels.delete(socket));
      const accept = createHash('sha1').update(`${String(req.headers['sec-websocket-key'])}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\nx-backend: ${name}\r\n\r\n`);
      let pending = Buffer.alloc(0);
      socket.on('data', (chunk: Buffer) => {
        pending = Buffer.concat([pending, chunk]);
        for (let frame = readFrame(pending); frame; frame = readFrame(pending)) {
          pending = pending.subarray(frame.length);
          socket.write(textFrame(`${name}: ${frame.text}`, false));
        }
      });
      socket.on('error', () => socket.destroy());
    });
    await new Promise<void>((resolve) => server.listen(0, address, resolve));
    b.port = (server.address() as net.AddressInfo).port;
    b.server = server;
    return b;
  }));
}

export async function stopBackends(backends: readonly Backend[]): Promise<void> {
  await Promise.all(backends.map((b) => new Promise<void>((resolve) => { b.server.closeAllConnections(); for (const t of b.tunnels) t.destroy(); b.server.close(() => resolve()); })));
}

/** A WebSocket text frame (RFC 6455 5.2), masked as a client must send it, unmasked as a server does; payload < 126 bytes. */
export function textFrame(text: string, masked: boolean): Buffer {
  const payload = Buffer.from(text);
  if (payload.length >= 126) throw new Error('textFrame: payloads of 126 bytes or more are not needed here');
  const mask = masked ? Buffer.from([1, 2, 3, 4]) : Buffer.alloc(0);
  const body = masked ? payload.map((c, i) => c ^ mask[i % 4]!) : payload;
  return Buffer.concat([Buffer.from([0x81, (masked ? 0x80 : 0) | payload.length]), mask, body]);
}

/** The first whole text frame of `buf` (masked or not) and its length in bytes, or undefined when incomplete. */
export function readFrame(buf: Buffer): { text: string; length: number } | undefined {
  if (buf.length < 2) return undefined;
  const masked = (buf[1]! & 0x80) !== 0;
  const size = buf[1]! & 0x7f;
  const start = 2 + (masked ? 4 : 0);
  if (size >= 126 || buf.length < start + size) return undefined;
  const payload = Buffer.from(buf.subarray(start, start + size));
  if (masked) for (let i = 0; i < size; i++) payload[i]! ^= buf[2 + (i % 4)]!;
  return { text: payload.toString(), length: start + size };
}

/** A selectorless Service `name` (port 80, unnamed) and its manual EndpointSlice with the backends' addresses (all ready unless said). */
export function serviceFor(name: string, backends: readonly Pick<Backend, 'address' | 'port'>[], namespace = 'default', ready = true): { service: Service; slice: EndpointSlice } {
  const port = backends[0]?.port ?? 8080;
  return {
    service: { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace }, spec: { type: 'ClusterIP', ports: [{ port: 80, protocol: 'TCP', targetPort: port }] } },
    slice: {
      apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
      metadata: { name: `${name}-manual`, namespace, labels: { [LABEL_SERVICE_NAME]: name } },
      addressType: 'IPv4',
      endpoints: backends.map((b) => ({ addresses: [b.address], conditions: { ready } })),
      ports: [{ port, protocol: 'TCP' }],
    },
  };
}

/** An Ingress of class flotilla, created at `created` (an ISO time: the age conflicts are decided by). */
export function ingressOf(name: string, spec: Partial<IngressSpec>, created = '2024-01-01T00:00:00Z', annotations?: Record<string, string>): Ingress {
  return {
    apiVersion: 'networking.k8s.io/v1', kind: 'Ingress',
    metadata: { name, namespace: 'default', creationTimestamp: created, resourceVersion: '1', ...(annotations ? { annotations } : {}) },
    spec: { ingressClassName: 'flotilla', ...spec },
  };
}

/** A path rule to Service `service` port 80. */
export function pathTo(service: string, path: string | undefined, pathType: 'Exact' | 'Prefix' | 'ImplementationSpecific') {
  return { ...(path !== undefined ? { path } : {}), pathType, backend: { service: { name: service, port: { number: 80 } } } };
}

export interface Answer { status: number; body: string; headers: http.IncomingHttpHeaders }

/** One request through `agent` to 127.0.0.1:port with Host `host`. */
export function get(port: number, host: string, path: string, opts: { method?: string; headers?: http.OutgoingHttpHeaders; body?: string; agent?: http.Agent; address?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: opts.address ?? '127.0.0.1', port, path, method: opts.method ?? 'GET', headers: { host, ...opts.headers }, ...(opts.agent ? { agent: opts.agent } : {}) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), headers: res.headers }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}
