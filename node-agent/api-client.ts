// The calls the agent makes on the server's Kubernetes-shaped API, as typed methods over the shared HTTP client
// (client/client.ts): ask for the node certificate, register and report the Node, renew its lease, post Events,
// list and watch the pods bound to it, report pod status, read ConfigMaps and Secrets, list and watch the Nodes
// (the pod network's routes) and the Services and EndpointSlices (the service proxy and DNS).
import { ApiClient, ApiClientError, type WatchEvent } from '../client/client.js';
import { LB_SPEAKER_LEASE_NAMESPACE, NODE_CERTIFICATES_PATH, type ConfigMap, type EndpointSlice, type Node, type Pod, type PodStatus, type Secret, type Service, type Ingress, type IngressClass, type PersistentVolume, type PersistentVolumeClaim } from '../api-types/index.js';

export { ApiClient, ApiClientError, type WatchEvent };

/** A watch event other than ERROR (watchFrom turns those into an ApiClientError). */
export type ObjectEvent<T> = Exclude<WatchEvent<T>, { type: 'ERROR' }>;

export interface ObjectList<T> {
  items: T[];
  metadata: { resourceVersion?: string };
}

export interface NodeObject {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string>; resourceVersion?: string; uid?: string };
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
}

export interface NodeEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

export class NodeApi {
  constructor(readonly client: ApiClient) {}

  /** The id of the cluster the server belongs to: GET /cluster/status, which only a valid token may read. */
  async clusterId(signal?: AbortSignal): Promise<string> {
    const st = await this.client.request<{ clusterId?: unknown }>('GET', '/cluster/status', undefined, signal ? { signal } : {});
    if (typeof st.clusterId !== 'string' || st.clusterId === '') throw new Error('GET /cluster/status answered without a clusterId');
    return st.clusterId;
  }

  /** Creates the Node, or returns the existing one when it is already registered (agent restart). */
  async registerNode(node: NodeObject): Promise<NodeObject> {
    try {
      return await this.client.request<NodeObject>('POST', '/api/v1/nodes', node);
    } catch (err) {
      if (err instanceof ApiClientError && err.code === 409) return this.client.request<NodeObject>('GET', `/api/v1/nodes/${enc(node.metadata.name)}`);
      throw err;
    }
  }

  /** Replaces Node.status; the spec and metadata the server holds stay (cordon, taints, labels set by users). */
  async updateNodeStatus(node: NodeObject): Promise<NodeObject> {
    const path = `/api/v1/nodes/${enc(node.metadata.name)}`;
    const current = await this.client.request<NodeObject>('GET', path);
    const { resourceVersion: _, ...metadata } = current.metadata;
    return this.client.request('PUT', `${path}/status`, { ...current, metadata, status: node.status });
  }

  /** The node heartbeat: the server keeps leases in memory, so this never costs a durable write. */
  renewLease(nodeName: string, durationSeconds: number, now = new Date()): Promise<unknown> {
    return this.client.request('PUT', `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${enc(nodeName)}`, {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: nodeName, namespace: 'kube-node-lease' },
      spec: { holderIdentity: nodeName, leaseDurationSeconds: durationSeconds, renewTime: now.toISOString() },
    });
  }

  /**
   * Asks for a certificate for node `nodeName`'s key (the CSR's): with the join token the first time, with the
   * current certificate to renew (server/api/routes/node-certificates.ts).
   */
  requestCertificate(nodeName: string, csr: string): Promise<{ certificate: string; ca: string }> {
    return this.client.request('POST', NODE_CERTIFICATES_PATH, { nodeName, csr });
  }

  /** Records an Event about the Node (preflight findings), as `describe node` shows them. */
  async nodeEvent(nodeName: string, nodeUid: string | undefined, event: NodeEvent, now = new Date()): Promise<void> {
    const stamp = now.toISOString();
    await this.client.request('POST', '/api/v1/namespaces/default/events', {
      apiVersion: 'v1', kind: 'Event',
      metadata: { name: `${nodeName}.${now.getTime().toString(16)}.${event.reason.toLowerCase()}`, namespace: 'default' },
      involvedObject: { kind: 'Node', apiVersion: 'v1', name: nodeName, ...(nodeUid ? { uid: nodeUid } : {}) },
      type: event.type, reason: event.reason, message: event.message,
      source: { component: 'flotilla-agent', host: nodeName },
      firstTimestamp: stamp, lastTimestamp: stamp, count: 1,
    });
  }

  /** The LoadBalancer speaker lease (in memory on the servers, as the node lease): see server/controllers/load-balancer.ts. */
  renewSpeakerLease(nodeName: string, now = new Date()): Promise<unknown> {
    return this.client.request('PUT', `/apis/coordination.k8s.io/v1/namespaces/${LB_SPEAKER_LEASE_NAMESPACE}/leases/${enc(nodeName)}`, {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: nodeName, namespace: LB_SPEAKER_LEASE_NAMESPACE },
      spec: { holderIdentity: nodeName, leaseDurationSeconds: 1, renewTime: now.toISOString() },
    });
  }

  /** Records an Event about a Service this node announces (the servers refuse one about any other). */
  async serviceEvent(nodeName: string, service: Service, event: NodeEvent, now = new Date()): Promise<void> {
    const stamp = now.toISOString();
    const namespace = service.metadata.namespace ?? 'default';
    await this.client.request('POST', `/api/v1/namespaces/${enc(namespace)}/events`, {
      apiVersion: 'v1', kind: 'Event',
      metadata: { name: `${service.metadata.name}.${now.getTime().toString(16)}.${event.reason.toLowerCase()}`, namespace },
      involvedObject: { kind: 'Service', apiVersion: 'v1', namespace, name: service.metadata.name, ...(service.metadata.uid ? { uid: service.metadata.uid } : {}) },
      type: event.type, reason: event.reason, message: event.message,
      source: { component: 'flotilla-agent', host: nodeName },
      firstTimestamp: stamp, lastTimestamp: stamp, count: 1,
    });
  }

  listPods(nodeName: string): Promise<ObjectList<Pod>> {
    return this.client.request('GET', `/api/v1/pods?fieldSelector=${enc(`spec.nodeName=${nodeName}`)}`);
  }

  /**
   * Streams pod events after resourceVersion until the server ends the stream or the signal aborts.
   * Throws ApiClientError 410 when the version is too old (a 410 answer or an ERROR event): list again.
   */
  watchPods(nodeName: string, resourceVersion: string, onEvent: (e: ObjectEvent<Pod>) => void, signal: AbortSignal): Promise<void> {
    return this.watchFrom(`/api/v1/pods?fieldSelector=${enc(`spec.nodeName=${nodeName}`)}`, resourceVersion, onEvent, signal);
  }

  /** Every Service of every namespace (the service proxy and the DNS server serve them all). */
  listServices(): Promise<ObjectList<Service>> {
    return this.client.request('GET', '/api/v1/services');
  }

  watchServices(resourceVersion: string, onEvent: (e: ObjectEvent<Service>) => void, signal: AbortSignal): Promise<void> {
    return this.watchFrom('/api/v1/services', resourceVersion, onEvent, signal);
  }

  listEndpointSlices(): Promise<ObjectList<EndpointSlice>> {
    return this.client.request('GET', '/apis/discovery.k8s.io/v1/endpointslices');
  }

  watchEndpointSlices(resourceVersion: string, onEvent: (e: ObjectEvent<EndpointSlice>) => void, signal: AbortSignal): Promise<void> {
    return this.watchFrom('/apis/discovery.k8s.io/v1/endpointslices', resourceVersion, onEvent, signal);
  }

  /** Every Ingress and IngressClass (the ingress router serves the Ingresses of its classes). */
  listIngresses(): Promise<ObjectList<Ingress>> {
    return this.client.request('GET', '/apis/networking.k8s.io/v1/ingresses');
  }

  watchIngresses(resourceVersion: string, onEvent: (e: ObjectEvent<Ingress>) => void, signal: AbortSignal): Promise<void> {
    return this.watchFrom('/apis/networking.k8s.io/v1/ingresses', resourceVersion, onEvent, signal);
  }

  listIngressClasses(): Promise<ObjectList<IngressClass>> {
    return this.client.request('GET', '/apis/networking.k8s.io/v1/ingressclasses');
  }

  watchIngressClasses(resourceVersion: string, onEvent: (e: ObjectEvent<IngressClass>) => void, signal: AbortSignal): Promise<void> {
    return this.watchFrom('/apis/networking.k8s.io/v1/ingressclasses', resourceVersion, onEvent, signal);
  }

  /** Sets (a string) or removes (null) annotations of the Node, by merge patch; the rest of the Node stays. */
  patchNodeAnnotations(nodeName: string, annotations: Record<string, string | null>): Promise<NodeObject> {
    return this.client.request('PATCH', `/api/v1/nodes/${enc(nodeName)}`, { metadata: { annotations } }, { contentType: 'application/merge-patch+json' });
  }

  /** The watch contract of watchPods for any list path (no query string of its own beyond selectors). */
  private async watchFrom<T>(listPath: string, resourceVersion: string, onEvent: (e: ObjectEvent<T>) => void, signal: AbortSignal): Promise<void> {
    const path = `${listPath}${listPath.includes('?') ? '&' : '?'}watch=true&resourceVersion=${enc(resourceVersion)}`;
    try {
      await this.client.watch<T>(path, (e) => {
        if (e.type === 'ERROR') {
          const st = e.object;
          throw new ApiClientError(st.message ?? 'watch error', st.code ?? 410, st.reason ?? 'Expired');
        }
        onEvent(e);
      }, signal);
    } catch (err) {
      if (!signal.aborted) throw err;
    }
  }

  /**
   * Replaces the pod's status. The agent owns pod status, so the write carries no resourceVersion: it must not
   * fail because the spec or metadata moved on since the agent last saw the pod.
   */
  updatePodStatus(pod: Pod, status: PodStatus): Promise<Pod> {
    const { namespace = 'default', name = '' } = pod.metadata;
    const { resourceVersion: _, ...metadata } = pod.metadata;
    return this.client.request('PUT', `/api/v1/namespaces/${enc(namespace)}/pods/${enc(name)}/status`, { ...pod, metadata, status });
  }

  /**
   * Removes a pod whose containers are gone (the last step of a graceful delete, as the kubelet does). Gone
   * already, or replaced by another pod of that name (the uid precondition fails): nothing left to do.
   */
  async deletePod(pod: Pod): Promise<void> {
    const { namespace = 'default', name = '', uid } = pod.metadata;
    try {
      await this.client.request('DELETE', `/api/v1/namespaces/${enc(namespace)}/pods/${enc(name)}`, {
        apiVersion: 'v1', kind: 'DeleteOptions', gracePeriodSeconds: 0, ...(uid ? { preconditions: { uid } } : {}),
      });
    } catch (err) {
      if (!(err instanceof ApiClientError && (err.code === 404 || (err.code === 409 && uid !== undefined)))) throw err;
    }
  }

  listNodes(): Promise<{ items: Node[]; metadata: { resourceVersion?: string } }> {
    return this.client.request('GET', '/api/v1/nodes');
  }

  /** Streams Node events after resourceVersion until the server ends the stream or the signal aborts; 410 as watchPods. */
  watchNodes(resourceVersion: string, onEvent: (e: ObjectEvent<Node>) => void, signal: AbortSignal): Promise<void> {
    return this.watchFrom<Node>('/api/v1/nodes', resourceVersion, onEvent, signal);
  }

  getConfigMap(namespace: string, name: string): Promise<ConfigMap | undefined> {
    return this.getOptional(`/api/v1/namespaces/${enc(namespace)}/configmaps/${enc(name)}`);
  }

  getSecret(namespace: string, name: string): Promise<Secret | undefined> {
    return this.getOptional(`/api/v1/namespaces/${enc(namespace)}/secrets/${enc(name)}`);
  }

  getPersistentVolumeClaim(namespace: string, name: string): Promise<PersistentVolumeClaim | undefined> {
    return this.getOptional(`/api/v1/namespaces/${enc(namespace)}/persistentvolumeclaims/${enc(name)}`);
  }

  getPersistentVolume(name: string): Promise<PersistentVolume | undefined> {
    return this.getOptional(`/api/v1/persistentvolumes/${enc(name)}`);
  }

  /** Removes one finalizer of a PersistentVolume, as of the version read (a concurrent change: 409). */
  async removeVolumeFinalizer(volume: PersistentVolume, finalizer: string): Promise<void> {
    const finalizers = (volume.metadata.finalizers ?? []).filter((f) => f !== finalizer);
    await this.client.request('PATCH', `/api/v1/persistentvolumes/${enc(volume.metadata.name ?? '')}`,
      { metadata: { resourceVersion: volume.metadata.resourceVersion, finalizers } }, { contentType: 'application/merge-patch+json' });
  }

  private async getOptional<T>(path: string): Promise<T | undefined> {
    try {
      return await this.client.request<T>('GET', path);
    } catch (err) {
      if (err instanceof ApiClientError && err.code === 404) return undefined;
      throw err;
    }
  }
}

function enc(s: string): string {
  return encodeURIComponent(s);
}
