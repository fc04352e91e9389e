// HTTP upgrades (kubectl's WebSocket streams: exec, attach, port-forward) served by the same handler as every
// other request, so that authentication, the policy and the route's own checks decide them as they decide the
// rest. The node server hands an upgrade request to the `upgrade` event, not to the request handler: here it
// becomes a Request whose bindings carry the connection. A route that takes the connection marks it taken and
// owns it from then on; otherwise the Response it returned is written on the connection, which then closes.
import { STATUS_CODES, type IncomingMessage, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Context } from 'hono';
import type { TLSSocket } from 'node:tls';

/** The connection of an upgrade request, as a route sees it (upgradeOf). */
export interface UpgradeConnection {
  socket: Duplex;
  /** Bytes the client sent after the request's head. */
  head: Buffer;
  /** Set by the route that took the connection. */
  taken: boolean;
}

/** Bindings of an upgrade request: node's request as every request has it, and the connection. */
export interface UpgradeBindings {
  incoming: IncomingMessage;
  outgoing: undefined;
  upgrade: UpgradeConnection;
}

export type UpgradeHandler = (req: Request, env: UpgradeBindings) => Response | Promise<Response>;

/** Serves the server's upgrade requests through `handler` (looked up per request: it may be replaced once ready). */
export function serveUpgrades(server: Server, handler: () => UpgradeHandler): void {
  server.on('upgrade', (incoming: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    const upgrade: UpgradeConnection = { socket, head, taken: false };
    Promise.resolve()
      .then(() => handler()(requestOf(incoming), { incoming, outgoing: undefined, upgrade }))
      .catch(() => new Response(null, { status: 500 }))
      .then(async (response) => { if (!upgrade.taken) await refuse(socket, response); })
      .catch(() => socket.destroy());
  });
}

/** The connection when this request is an upgrade; undefined for an ordinary request. */
export function upgradeOf(c: Context): UpgradeConnection | undefined {
  return (c.env as Partial<UpgradeBindings> | undefined)?.upgrade;
}

function requestOf(incoming: IncomingMessage): Request {
  const scheme = (incoming.socket as TLSSocket).encrypted ? 'https' : 'http';
  const headers = new Headers();
  for (const [k, v] of Object.entries(incoming.headers)) {
    if (v === undefined) continue;
    for (const one of Array.isArray(v) ? v : [v]) headers.append(k, one);
  }
  return new Request(new URL(incoming.url ?? '/', `${scheme}://${incoming.headers.host ?? 'localhost'}`), { method: incoming.method ?? 'GET', headers });
}

/** Writes a Response (a refusal: no upgrade took place) as HTTP/1.1 and closes the connection. */
async function refuse(socket: Duplex, response: Response): Promise<void> {
  const body = Buffer.from(await response.arrayBuffer());
  if (socket.destroyed) return;
  const lines = [`HTTP/1.1 ${response.status} ${STATUS_CODES[response.status] ?? ''}`];
  response.headers.forEach((v, k) => { if (!['connection', 'content-length', 'transfer-encoding'].includes(k)) lines.push(`${k}: ${v}`); });
  lines.push(`Content-Length: ${body.length}`, 'Connection: close', '', '');
  socket.end(Buffer.concat([Buffer.from(lines.join('\r\n')), body]));
}
