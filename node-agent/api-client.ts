// The agent's side of the server's Kubernetes-shaped HTTP API: register and report the Node, renew its lease,
// list and watch the pods bound to it, report pod status, read ConfigMaps and Secrets.
import type { ConfigMap, Pod, PodStatus, Secret } from './kube-objects.js';

export interface ApiClientOptions {
  /** Base URL of any server member, e.g. https://10.0.0.2:6443 */
  server: string;
  /** Bearer token (join token or node credential). */
  token?: string;
  fetch?: typeof fetch;
}

/** A non-2xx answer; reason and message come from the server's Status object when it sent one. */
export class ApiError extends Error {
  constructor(readonly status: number, readonly reason: string, message: string) {
    super(message);
    this.name = 'ApiError';
  }
}

export interface NodeObject {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string>; resourceVersion?: string };
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
}

export interface WatchEvent<T> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: T;
}

export class ApiClient {
  private readonly base: string;
  private readonly token: string | undefined;
  private readonly fetch: typeof fetch;

  constructor(options: ApiClientOptions) {
    this.base = options.server.replace(/\/+$/, '');
    this.token = options.token;
    this.fetch = options.fetch ?? fetch;
  }

  /** Creates the Node, or returns the existing one when it is already registered (agent restart). */
  async registerNode(node: NodeObject): Promise<NodeObject> {
    try {
      return await this.request<NodeObject>('POST', '/api/v1/nodes', node);
    } catch (err) {
      if (err instanceof ApiError && err.status === 409) return this.request<NodeObject>('GET', `/api/v1/nodes/${enc(node.metadata.name)}`);
      throw err;
    }
  }

  updateNodeStatus(node: NodeObject): Promise<NodeObject> {
    return this.request('PUT', `/api/v1/nodes/${enc(node.metadata.name)}/status`, node);
  }

  /** The node heartbeat: the server keeps leases in memory, so this never costs a durable write. */
  renewLease(nodeName: string, durationSeconds: number, now = new Date()): Promise<unknown> {
    return this.request('PUT', `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${enc(nodeName)}`, {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: nodeName, namespace: 'kube-node-lease' },
      spec: { holderIdentity: nodeName, leaseDurationSeconds: durationSeconds, renewTime: now.toISOString() },
    });
  }

  listPods(nodeName: string): Promise<{ items: Pod[]; metadata: { resourceVersion?: string } }> {
    return this.request('GET', `/api/v1/pods?fieldSelector=${enc(`spec.nodeName=${nodeName}`)}`);
  }

  /**
   * Streams pod events after resourceVersion until the server ends the stream or the signal aborts.
   * Throws ApiError 410 (reason Expired/Gone) when the version is too old: the caller must list again.
   */
  async watchPods(nodeName: string, resourceVersion: string, onEvent: (e: WatchEvent<Pod>) => void, signal: AbortSignal): Promise<void> {
    const path = `/api/v1/pods?fieldSelector=${enc(`spec.nodeName=${nodeName}`)}&watch=true&resourceVersion=${enc(resourceVersion)}`;
    const res = await this.fetch(this.base + path, { headers: this.headers(), signal });
    if (!res.ok) throw await apiError(res);
    if (!res.body) return;
    const decoder = new TextDecoder();
    let pending = '';
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        pending += decoder.decode(chunk, { stream: true });
        let nl: number;
        while ((nl = pending.indexOf('\n')) >= 0) {
          const line = pending.slice(0, nl).trim();
          pending = pending.slice(nl + 1);
          if (!line) continue;
          const event = JSON.parse(line) as WatchEvent<Pod & { code?: number; reason?: string; message?: string }>;
          if (event.type === 'ERROR') {
            const st = event.object;
            throw new ApiError(st.code ?? 500, st.reason ?? 'InternalError', st.message ?? 'watch error');
          }
          onEvent(event);
        }
      }
    } catch (err) {
      if (!signal.aborted) throw err;
    }
  }

  updatePodStatus(pod: Pod, status: PodStatus): Promise<Pod> {
    const { namespace = 'default', name } = pod.metadata;
    return this.request('PUT', `/api/v1/namespaces/${enc(namespace)}/pods/${enc(name)}/status`, { ...pod, status });
  }

  /** Removes a pod whose containers are gone (the last step of a graceful delete, as the kubelet does). */
  async deletePod(pod: Pod): Promise<void> {
    const { namespace = 'default', name, uid } = pod.metadata;
    try {
      await this.request('DELETE', `/api/v1/namespaces/${enc(namespace)}/pods/${enc(name)}`, {
        apiVersion: 'v1', kind: 'DeleteOptions', gracePeriodSeconds: 0, ...(uid ? { preconditions: { uid } } : {}),
      });
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404)) throw err;
    }
  }

  getConfigMap(namespace: string, name: string): Promise<ConfigMap | undefined> {
    return this.getOptional(`/api/v1/namespaces/${enc(namespace)}/configmaps/${enc(name)}`);
  }

  getSecret(namespace: string, name: string): Promise<Secret | undefined> {
    return this.getOptional(`/api/v1/namespaces/${enc(namespace)}/secrets/${enc(name)}`);
  }

  private async getOptional<T>(path: string): Promise<T | undefined> {
    try {
      return await this.request<T>('GET', path);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) return undefined;
      throw err;
    }
  }

  private headers(json = false): Record<string, string> {
    const h: Record<string, string> = { Accept: 'application/json' };
    if (json) h['Content-Type'] = 'application/json';
    if (this.token) h.Authorization = `Bearer ${this.token}`;
    return h;
  }

  private async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.fetch(this.base + path, {
      method,
      headers: this.headers(body !== undefined),
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(30_000),
    });
    if (!res.ok) throw await apiError(res);
    return (await res.json()) as T;
  }
}

async function apiError(res: Response): Promise<ApiError> {
  const text = await res.text().catch(() => '');
  try {
    const st = JSON.parse(text) as { reason?: string; message?: string };
    return new ApiError(res.status, st.reason ?? res.statusText, st.message ?? text);
  } catch {
    return new ApiError(res.status, res.statusText, text || `${res.status} ${res.statusText}`);
  }
}

function enc(s: string): string {
  return encodeURIComponent(s);
}
