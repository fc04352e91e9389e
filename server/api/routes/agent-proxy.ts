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
}

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
    const headers = { ...target.headers, ...(typeof target.body === 'string' ? { 'content-length': String(Buffer.byteLength(target.body)) } : {}) };
    return new Promise<Response>((resolve, reject) => {
      const req = https.request({
        host: address, port, path: target.path, method: target.method, signal: target.signal, agent: false,
        ca, cert: certPem, key: keyPem, minVersion: 'TLSv1.2', headers,
        checkServerIdentity: (_host: string, cert: PeerCertificate) => agentIdentityError(nodeName, cert, objects.boundNodeKey(nodeName)),
      }, (res) => {
        const status = res.statusCode ?? 502;
        const relayed: Record<string, string> = { 'content-type': res.headers['content-type'] ?? 'text/plain; charset=utf-8' };
        for (const [k, v] of Object.entries(res.headers)) if ((RELAYED_HEADER.test(k) || k === 'content-length') && typeof v === 'string') relayed[k] = v;
        resolve(new Response(Readable.toWeb(res) as ReadableStream<Uint8Array>, { status, headers: relayed }));
      });
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
 * Serves pods/NAME/log and pods/NAME/exec by calling the agent of the pod's node (agentCaller).
 *
 * Agent endpoints (node-agent/endpoint.ts):
 *   GET  /v1/pods/NS/NAME/log?container=C&follow=true&tailLines=N   text, streamed while following
 *   POST /v1/pods/NS/NAME/exec  {"container": C, "command": [..]}     {"stdout","stderr","exitCode"}
 */
export function agentProxy(callAgent: AgentCaller): (c: Context, pod: StoredObject, sub: string) => Promise<Response> {
  return async (c, pod, sub) => {
    const allowed = sub === 'log' ? ['GET'] : ['GET', 'POST'];
    if (!allowed.includes(c.req.method)) throw methodNotAllowed(`pods/${sub} accepts ${allowed.join(' and ')} only`);
    if (!isKind(pod, 'Pod')) throw new StoreError({ code: 400, reason: 'BadRequest', message: `${pod.metadata.name} is not a pod` });
    const nodeName = pod.spec.nodeName;
    if (!nodeName) throw new StoreError({ code: 400, reason: 'BadRequest', message: `pod ${pod.metadata.name} is not scheduled to a node yet` });
    // Kubernetes' answer while no container has started (no agent has reported the pod): nothing to proxy to yet.
    if (!pod.status?.containerStatuses?.length) {
      throw new StoreError({ code: 400, reason: 'BadRequest', message: `container "${pod.spec.containers[0]?.name}" in pod "${pod.metadata.name}" is waiting to start: ContainerCreating` });
    }
    const path = `/v1/pods/${encodeURIComponent(pod.metadata.namespace ?? 'default')}/${encodeURIComponent(pod.metadata.name)}`;
    if (sub === 'log') {
      const q = new URL(c.req.url).searchParams;
      const params = new URLSearchParams();
      for (const k of ['container', 'follow', 'tailLines', 'timestamps', 'sinceSeconds', 'previous']) { const v = q.get(k); if (v !== null) params.set(k, v); }
      return callAgent(nodeName, { path: `${path}/log?${params}`, method: 'GET', signal: c.req.raw.signal });
    }
    return callAgent(nodeName, {
      path: `${path}/exec`, method: 'POST', headers: { 'content-type': 'application/json' }, body: await c.req.text(),
      signal: AbortSignal.any([c.req.raw.signal, AbortSignal.timeout(300_000)]),
    });
  };
}
