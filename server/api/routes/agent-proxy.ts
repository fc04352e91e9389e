import https from 'node:https';
import { Readable } from 'node:stream';
import { X509Certificate } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import type { Context } from 'hono';
import type { ObjectService } from '../../objects/service.js';
import { isKind, resourceOfKind } from '../../../api-types/index.js';
import { NODE_GROUP, certificateInfo, nodeCommonName } from '../../../client/pki.js';
import { StoreError } from '../../store/types.js';
import { methodNotAllowed } from '../status.js';
import type { StoredObject } from '../../store/types.js';

/** What this server presents to agents (its own client certificate, O flotilla:servers) and the CA it verifies them with. */
export interface AgentCallTls { ca: string; certPem: string; keyPem: string }

/**
 * Serves pods/NAME/log and pods/NAME/exec by calling the agent of the pod's node over mutual TLS. The agent
 * publishes where it listens in its Node (InternalIP address, status.daemonEndpoints.kubeletEndpoint.Port); the
 * server verifies that whatever answers there holds a certificate of the cluster CA for `system:node:<the pod's
 * node>` (O system:nodes) with the key that node is bound to, not merely one for the address, and presents its
 * own client certificate (`tls()`). Redirects are not followed (node:https never does): the answer is relayed.
 *
 * Agent endpoints (node-agent/endpoint.ts):
 *   GET  /v1/pods/NS/NAME/log?container=C&follow=true&tailLines=N   text, streamed while following
 *   POST /v1/pods/NS/NAME/exec  {"container": C, "command": [..]}     {"stdout","stderr","exitCode"}
 */
export function agentProxy(objects: ObjectService, tls: () => AgentCallTls): (c: Context, pod: StoredObject, sub: string) => Promise<Response> {
  const nodes = resourceOfKind('Node');
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
    const node = objects.get(nodes, undefined, nodeName);
    if (!node) throw new StoreError({ code: 404, reason: 'NotFound', message: `nodes "${nodeName}" not found` });
    const address = node.status?.addresses?.find((a) => a.type === 'InternalIP')?.address;
    const port = node.status?.daemonEndpoints?.kubeletEndpoint?.Port;
    if (!address || !port) throw new StoreError({ code: 503, reason: 'ServiceUnavailable', message: `node ${nodeName} has not published its agent endpoint` });
    const host = address.includes(':') ? `[${address}]` : address;
    const path = `/v1/pods/${encodeURIComponent(pod.metadata.namespace ?? 'default')}/${encodeURIComponent(pod.metadata.name)}`;
    let target: { path: string; method: string; body?: string; signal: AbortSignal };
    if (sub === 'log') {
      const q = new URL(c.req.url).searchParams;
      const params = new URLSearchParams();
      for (const k of ['container', 'follow', 'tailLines', 'timestamps', 'sinceSeconds', 'previous']) { const v = q.get(k); if (v !== null) params.set(k, v); }
      target = { path: `${path}/log?${params}`, method: 'GET', signal: c.req.raw.signal };
    } else {
      target = { path: `${path}/exec`, method: 'POST', body: await c.req.text(), signal: AbortSignal.any([c.req.raw.signal, AbortSignal.timeout(300_000)]) };
    }
    const { ca, certPem, keyPem } = tls();
    return new Promise<Response>((resolve, reject) => {
      const req = https.request({
        host: address, port, path: target.path, method: target.method, signal: target.signal, agent: false,
        ca, cert: certPem, key: keyPem, minVersion: 'TLSv1.2',
        headers: target.body !== undefined ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(target.body)) } : {},
        checkServerIdentity: (_host: string, cert: PeerCertificate) => agentIdentityError(objects, nodeName, cert),
      }, (res) => {
        const status = res.statusCode ?? 502;
        resolve(new Response(Readable.toWeb(res) as ReadableStream<Uint8Array>, { status, headers: { 'content-type': res.headers['content-type'] ?? 'text/plain; charset=utf-8' } }));
      });
      req.on('error', (err) => reject(new StoreError({ code: 502, reason: 'BadGateway', message: `cannot reach the agent of node ${nodeName} at ${host}:${port}: ${err.message}` })));
      req.end(target.body);
    });
  };
}

/** Why the certificate an agent endpoint presented is not node `nodeName`'s (the TLS layer has checked it chains to the CA); undefined when it is. */
function agentIdentityError(objects: ObjectService, nodeName: string, cert: PeerCertificate): Error | undefined {
  const info = certificateInfo(new X509Certificate(cert.raw));
  if (info.commonName !== nodeCommonName(nodeName) || !info.organizations.includes(NODE_GROUP)) {
    return new Error(`the agent endpoint presents a certificate for "${info.commonName}", not ${nodeCommonName(nodeName)}`);
  }
  if (objects.boundNodeKey(nodeName) !== info.publicKeySha256) return new Error(`the agent endpoint's certificate is not for the key node ${nodeName} is bound to`);
  return undefined;
}
