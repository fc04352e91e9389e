// Services and EndpointSlices for the service-proxy suites, validated and defaulted as the API server stores them
// (api-types validateObject + applyDefaults), and a ServiceSource over them.
import { LABEL_SERVICE_NAME, applyDefaults, validateObject, type EndpointSlice, type Service } from '../../../api-types/index.js';
import type { ServiceSource } from '../../../node-agent/network/service-plan.js';

function stored<T>(manifest: Record<string, unknown>): T {
  const v = validateObject(manifest);
  if (!v.ok) throw new Error(`invalid ${String(manifest.kind)}: ${v.issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`);
  return applyDefaults(v.object) as T;
}

export function serviceObject(namespace: string, name: string, spec: Record<string, unknown>, status?: Record<string, unknown>): Service {
  return stored<Service>({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace }, spec, ...(status ? { status } : {}) });
}

export interface SliceEndpointInput {
  ip: string;
  nodeName?: string;
  ready?: boolean;
  serving?: boolean;
  terminating?: boolean;
}

export function sliceObject(namespace: string, name: string, service: string, ports: Array<{ name?: string; port: number; protocol?: string }>, endpoints: SliceEndpointInput[], addressType = 'IPv4'): EndpointSlice {
  return stored<EndpointSlice>({
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
    metadata: { name, namespace, labels: { [LABEL_SERVICE_NAME]: service } },
    addressType,
    ports: ports.map((p) => ({ name: p.name ?? '', port: p.port, protocol: p.protocol ?? 'TCP' })),
    endpoints: endpoints.map((e) => {
      const conditions = Object.fromEntries(Object.entries({ ready: e.ready, serving: e.serving, terminating: e.terminating }).filter(([, v]) => v !== undefined));
      return { addresses: [e.ip], ...(e.nodeName ? { nodeName: e.nodeName } : {}), ...(Object.keys(conditions).length ? { conditions } : {}) };
    }),
  });
}

/** Services and slices by key, as the service cache keeps them. */
export class StaticServiceSource implements ServiceSource {
  readonly svcs = new Map<string, Service>();
  readonly #slices = new Map<string, EndpointSlice>();

  /** By `namespace/name`; changed through putSlice / deleteSlice, which keep the index by service. */
  get slices(): ReadonlyMap<string, EndpointSlice> {
    return this.#slices;
  }

  putService(s: Service): void {
    this.svcs.set(`${s.metadata.namespace}/${s.metadata.name}`, s);
  }

  putSlice(s: EndpointSlice): void {
    this.#slices.set(`${s.metadata.namespace}/${s.metadata.name}`, s);
    this.#byService = undefined;
  }

  deleteSlice(key: string): void {
    this.#slices.delete(key);
    this.#byService = undefined;
  }

  services(): Service[] {
    return [...this.svcs.values()];
  }

  slicesOf(namespace: string, serviceName: string): EndpointSlice[] {
    if (!this.#byService) {
      this.#byService = new Map();
      for (const s of this.#slices.values()) {
        const key = `${s.metadata.namespace}/${s.metadata.labels?.[LABEL_SERVICE_NAME]}`;
        this.#byService.set(key, [...(this.#byService.get(key) ?? []), s]);
      }
    }
    return this.#byService.get(`${namespace}/${serviceName}`) ?? [];
  }

  /** The slices by service, rebuilt after a change (the service cache keeps such an index too). */
  #byService: Map<string, EndpointSlice[]> | undefined;
}
