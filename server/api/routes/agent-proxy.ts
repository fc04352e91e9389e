import https from 'node:https';
import { Readable } from 'node:stream';
import type { PeerCertificate } from 'node:tls';
import type { Context } from 'hono';
import type { ObjectService } from '../../objects/service.js';
import { isKind, resourceOfKind } from '../../../api-types/index.js';
import { agentIdentityError } from '../../../client/pki.js';
import { StoreError } from '../../store/types.js';
import { methodNotAllowed } from '../status.js';
import type { StoredObject } from '../../store/types.js';
import { upgradeOf, type UpgradeConnection } from '../streams/upgrade.js';

/** What this server presents to agents (its own client certificate, O flotilla:servers) and the CA it verifies them with. */
export interface AgentCallTls { ca: string; certPem: string; keyPem: string }

/** One request to an agent endpoint (node-agent/endpoint.ts). A stream body is sent as it arrives (chunked). */
export interface AgentRequest {
  path: string;
  method: string;
  headers?: Record<string, string>;
  body?: string | Readable;
  /** Sent after a stream body has ended (name them in headers.trailer). */
  trailers?: () => Record<string, string>;
  signal: AbortSignal;
  /**
   * The client's connection of an upgrade request: the agent is asked for the same upgrade and, when it
   * switches protocols, its answer's head goes to the client and the two connections are joined byte for byte
   * (the connection is then taken; the resolved Response means nothing). A refusal resolves as any answer.
   */
  upgrade?: UpgradeConnection;
}

/** Request headers of an upgrade passed on to the agent (the WebSocket handshake's). */
const UPGRADE_HEADERS = ['upgrade', 'sec-websocket-key', 'sec-websocket-version', 'sec-websocket-protocol'];

/** Answer headers relayed from an agent besides content-type and content-length: Flotilla's own (x-flotilla-*). */
const RELAYED_HEADER = /^x-flotilla-/;

/**
 * Calls the agent of node `nodeName` over mutual TLS; resolves with its answer as it streams. The agent publishes
 * where it listens in its Node (InternalIP address, status.daemonEndpoints.kubeletEndpoint.Port); the server
 * verifies that whatever answers there holds a certificate of the cluster CA for `system:node:<nodeName>` (O
 * system:nodes) with the key that node is bound to, not merely one for the address, and presents its own client
 * certificate (`tls()`). Redirects are not followed (node:https never does): the answer is relayed. A node that
 * does not exist is 404, one without a published endpoint 503, an agent that cannot be reached 502, each naming
 * the node.
 */
export type AgentCaller = (nodeName: string, request: AgentRequest) => Promise<Response>;

export function agentCaller(objects: ObjectService, tls: () => AgentCallTls): AgentCaller {
  const nodes = resourceOfKind('Node');
  return async (nodeName, target) => {
    const node = objects.get(nodes, undefined, nodeName);
    if (!node) throw new StoreError({ code: 404, reason: 'NotFound', message: `nodes "${nodeName}" not found` });
    const address = node.status?.addresses?.find((a) => a.type === 'InternalIP')?.address;
    const port = node.status?.daemonEndpoints?.kubeletEndpoint?.Port;
    if (!address || !port) throw new StoreError({ code: 503, reason: 'ServiceUnavailable', message: `node ${nodeName} has not published its agent endpoint` });
    const host = address.includes(':') ? `[${address}]` : address;
    const { ca, certPem, keyPem } = tls();
    const headers: Record<string, string> = { ...target.headers, ...(typeof target.body === 'string' ? { 'content-length': String(Buffer.byteLength(target.body)) } : {}) };
    if (target.upgrade) {
      headers.connection = 'Upgrade';
      for (const h of UPGRADE_HEADERS) { const v = target.headers?.[h]; if (v !== undefined) headers[h] = v; }
    }
    return new Promise<Response>((resolve, reject) => {
      const req = https.request({
        host: address, port, path: target.path, method: target.method, signal: target.signal, agent: false,
        ca, cert: certPem, key: keyPem, minVersion: 'TLSv1.2', headers,
        checkServerIdentity: (_host: string, cert: PeerCertificate) => agentIdentityError(nodeName, cert, objects.boundNodeKey(nodeName)),
      }, (res) => {
        target.upgrade?.socket.off('close', cancel);
        const status = res.statusCode ?? 502;
        const relayed: Record<string, string> = { 'content-type': res.headers['content-type'] ?? 'text/plain; charset=utf-8' };
        for (const [k, v] of Object.entries(res.headers)) if ((RELAYED_HEADER.test(k) || k === 'content-length') && typeof v === 'string') relayed[k] = v;
        resolve(new Response(Readable.toWeb(res) as ReadableStream<Uint8Array>, { status, headers: relayed }));
      });
      const cancel = () => req.destroy();
      if (target.upgrade) {
        const client = target.upgrade;
        client.socket.once('close', cancel);
        req.on('upgrade', (res, agentSocket, agentHead) => {
          client.socket.off('close', cancel);
          client.taken = true;
          const head = [`HTTP/1.1 101 Switching Protocols`];
          for (let i = 0; i < res.rawHeaders.length; i += 2) head.push(`${res.rawHeaders[i]}: ${res.rawHeaders[i + 1]}`);
          client.socket.write(`${head.join('\r\n')}\r\n\r\n`);
          if (agentHead.length) client.socket.write(agentHead);
          if (client.head.length) agentSocket.write(client.head);
          agentSocket.on('error', () => client.socket.destroy());
          client.socket.on('error', () => agentSocket.destroy());
          agentSocket.on('close', () => client.socket.destroy());
          client.socket.on('close', () => agentSocket.destroy());
          agentSocket.pipe(client.socket);
          client.socket.pipe(agentSocket);
          resolve(new Response(null, { status: 200 }));
        });
      }
      req.on('error', (err) => {
        // The rest of a stream body is read and dropped, so that its sender gets this answer rather than a reset.
        if (target.body instanceof Readable) target.body.unpipe(req).resume();
        reject(new StoreError({ code: 502, reason: 'BadGateway', message: `cannot reach the agent of node ${nodeName} at ${host}:${port}: ${err.message}` }));
      });
      if (target.body instanceof Readable) {
        const body = target.body;
        body.on('error', (err) => req.destroy(err));
        body.pipe(req, { end: false });
        body.on('end', () => {
          if (target.trailers) req.addTrailers(target.trailers());
          req.end();
        });
      } else {
        req.end(target.body);
      }
    });
  };
}

/**
 * Serves pods/NAME/log, /exec and /attach by calling the agent of the pod's node (agentCaller). An exec or attach
 * that asks for a WebSocket upgrade (kubectl's, Kubernetes' remote command protocol) is joined to the agent's
 * stream of the same name with the query as it came (command, container, stdin, stdout, stderr, tty).
 *
 * Agent endpoints (node-agent/endpoint.ts):
 *   GET  /v1/pods/NS/NAME/log?container=C&follow&tailLines&sinceSeconds|sinceTime&timestamps&limitBytes&previous   text
 *   POST /v1/pods/NS/NAME/exec  {"container": C, "command": [..]}     {"stdout","stderr","exitCode"}
 *   GET  /v1/pods/NS/NAME/exec|attach?command=..  upgrade: websocket  v5.channel.k8s.io / v4.channel.k8s.io
 */
export function agentProxy(callAgent: AgentCaller): (c: Context, pod: StoredObject, sub: string) => Promise<Response> {
  return async (c, pod, sub) => {
    const upgrade = upgradeOf(c);
    const allowed = sub === 'log' ? ['GET'] : ['GET', 'POST'];
    if (!allowed.includes(c.req.method)) throw methodNotAllowed(`pods/${sub} accepts ${allowed.join(' and ')} only`);
    if (sub === 'attach' && !upgrade) throw new StoreError({ code: 400, reason: 'BadRequest', message: 'pods/attach is a stream: upgrade the connection to a WebSocket (v5.channel.k8s.io or v4.channel.k8s.io)' });
    if (!isKind(pod, 'Pod')) throw new StoreError({ code: 400, reason: 'BadRequest', message: `${pod.metadata.name} is not a pod` });
    const nodeName = pod.spec.nodeName;
    if (!nodeName) throw new StoreError({ code: 400, reason: 'BadRequest', message: `pod ${pod.metadata.name} is not scheduled to a node yet` });
    // Kubernetes' answer while no container has started (no agent has reported the pod): nothing to proxy to yet.
    if (!pod.status?.containerStatuses?.length) {
      throw new StoreError({ code: 400, reason: 'BadRequest', message: `container "${pod.spec.containers[0]?.name}" in pod "${pod.metadata.name}" is waiting to start: ContainerCreating` });
    }
    // kube-apiserver's own check, before anything reaches the node.
    const container = new URL(c.req.url).searchParams.get('container');
    const names = [...(pod.spec.initContainers ?? []), ...pod.spec.containers].map((k) => k.name);
    if (container !== null && container !== '' && !names.includes(container)) {
      throw new StoreError({ code: 400, reason: 'BadRequest', message: `container ${container} is not valid for pod ${pod.metadata.name}` });
    }
    const path = `/v1/pods/${encodeURIComponent(pod.metadata.namespace ?? 'default')}/${encodeURIComponent(pod.metadata.name)}`;
    if (upgrade) {
      const headers: Record<string, string> = {};
      for (const h of UPGRADE_HEADERS) { const v = c.req.header(h); if (v !== undefined) headers[h] = v; }
      return callAgent(nodeName, { path: `${path}/${sub}${new URL(c.req.url).search}`, method: 'GET', headers, upgrade, signal: new AbortController().signal });
    }
    if (sub === 'log') {
      const q = new URL(c.req.url).searchParams;
      const params = new URLSearchParams();
      for (const k of ['container', 'follow', 'tailLines', 'timestamps', 'sinceSeconds', 'sinceTime', 'limitBytes', 'previous']) { const v = q.get(k); if (v !== null) params.set(k, v); }
      return callAgent(nodeName, { path: `${path}/log?${params}`, method: 'GET', signal: c.req.raw.signal });
    }
    return callAgent(nodeName, {
      path: `${path}/exec`, method: 'POST', headers: { 'content-type': 'application/json' }, body: await c.req.text(),
      signal: AbortSignal.any([c.req.raw.signal, AbortSignal.timeout(300_000)]),
    });
  };
}
