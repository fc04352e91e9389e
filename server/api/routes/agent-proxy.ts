import type { Context } from 'hono';
import type { ObjectService } from '../../objects/service.js';
import { resourceByCliName } from '../../../api-types/index.js';
import { StoreError } from '../../store/types.js';
import type { StoredObject } from '../../store/types.js';

/**
 * Serves pods/NAME/log and pods/NAME/exec by calling the agent of the pod's node. The agent publishes where it
 * listens in its Node (InternalIP address, status.daemonEndpoints.kubeletEndpoint.Port) and the bearer secret
 * the servers must present in the Secret kube-system/flotilla-agent-NODE (key "token").
 *
 * Agent endpoints (see node-agent's HTTP server):
 *   GET  /v1/pods/NS/NAME/log?container=C&follow=true&tailLines=N   text, streamed while following
 *   POST /v1/pods/NS/NAME/exec  {"container": C, "command": [..]}     {"stdout","stderr","exitCode"}
 */
export function agentProxy(objects: ObjectService): (c: Context, pod: StoredObject, sub: string) => Promise<Response> {
  const nodes = resourceByCliName('nodes')!;
  return async (c, pod, sub) => {
    const nodeName = (pod.spec as { nodeName?: string } | undefined)?.nodeName;
    if (!nodeName) throw new StoreError({ code: 400, reason: 'BadRequest', message: `pod ${pod.metadata.name} is not scheduled to a node yet` });
    const node = objects.get(nodes, undefined, nodeName) as (StoredObject & { status?: { addresses?: { type: string; address: string }[]; daemonEndpoints?: { kubeletEndpoint?: { Port?: number } } } }) | undefined;
    const address = node?.status?.addresses?.find((a) => a.type === 'InternalIP')?.address;
    const port = node?.status?.daemonEndpoints?.kubeletEndpoint?.Port;
    if (!address || !port) throw new StoreError({ code: 503, reason: 'ServiceUnavailable', message: `node ${nodeName} has not published its agent endpoint` });
    const secret = objects.get(resourceByCliName('secrets')!, 'kube-system', `flotilla-agent-${nodeName}`) as (StoredObject & { data?: { token?: string } }) | undefined;
    const token = secret?.data?.token ? Buffer.from(secret.data.token, 'base64').toString('utf8') : undefined;
    if (!token) throw new StoreError({ code: 503, reason: 'ServiceUnavailable', message: `node ${nodeName} has not published its agent credentials` });
    const host = address.includes(':') ? `[${address}]` : address;
    const base = `http://${host}:${port}/v1/pods/${encodeURIComponent(pod.metadata.namespace ?? 'default')}/${encodeURIComponent(pod.metadata.name)}`;
    const headers = { authorization: `Bearer ${token}` };
    let res: Response;
    try {
      if (sub === 'log') {
        const q = new URL(c.req.url).searchParams;
        const params = new URLSearchParams();
        for (const k of ['container', 'follow', 'tailLines', 'timestamps', 'sinceSeconds', 'previous']) { const v = q.get(k); if (v !== null) params.set(k, v); }
        res = await fetch(`${base}/log?${params}`, { headers, signal: c.req.raw.signal });
      } else {
        const body = await c.req.text();
        res = await fetch(`${base}/exec`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body, signal: AbortSignal.any([c.req.raw.signal, AbortSignal.timeout(300_000)]) });
      }
    } catch (err) {
      throw new StoreError({ code: 502, reason: 'BadGateway', message: `cannot reach the agent of node ${nodeName} at ${host}:${port}: ${err instanceof Error ? err.message : String(err)}` });
    }
    return new Response(res.body, { status: res.status, headers: { 'content-type': res.headers.get('content-type') ?? 'text/plain; charset=utf-8' } });
  };
}
