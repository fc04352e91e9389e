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

const ownerOf = (s: EndpointSlice): string => `${s.metadata.namespace}/${s.metadata.labels?.[LABEL_SERVICE_NAME]}`;

/** Services and slices by key, as the service cache keeps them. */
export class StaticServiceSource implements ServiceSource {
  readonly svcs = new Map<string, Service>();
  readonly #slices = new Map<string, EndpointSlice>();
  /** The slices by service, kept as the service cache keeps its index: a change touches one service's entry. */
  readonly #byService = new Map<string, EndpointSlice[]>();

  /** By `namespace/name`; changed through putSlice / deleteSlice, which keep the index by service. */
  get slices(): ReadonlyMap<string, EndpointSlice> {
    return this.#slices;
  }

  putService(s: Service): void {
    this.svcs.set(`${s.metadata.namespace}/${s.metadata.name}`, s);
  }

  putSlice(s: EndpointSlice): void {
    const key = `${s.metadata.namespace}/${s.metadata.name}`;
    this.#unfile(key);
    this.#slices.set(key, s);
    const owner = ownerOf(s);
    this.#byService.set(owner, [...(this.#byService.get(owner) ?? []), s]);
  }

  deleteSlice(key: string): void {
    this.#unfile(key);
    this.#slices.delete(key);
  }

  services(): Service[] {
    return [...this.svcs.values()];
  }

  slicesOf(namespace: string, serviceName: string): EndpointSlice[] {
    return this.#byService.get(`${namespace}/${serviceName}`) ?? [];
  }

  #unfile(key: string): void {
    const was = this.#slices.get(key);
    if (!was) return;
    const owner = ownerOf(was);
    const rest = this.#byService.get(owner)!.filter((x) => x !== was);
    if (rest.length > 0) this.#byService.set(owner, rest);
    else this.#byService.delete(owner);
  }
}
