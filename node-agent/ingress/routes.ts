// The router's routing table: the Ingresses of the classes this router serves, with their Services and
// EndpointSlices, compiled into one immutable value that answers "which upstream serves this host and path".
// Pure: no sockets, no clock. The router swaps whole tables (node-agent/ingress/router.ts), so a request reads
// one consistent table from its start to its end.
//
// Rules as Ingress v1 (networking.k8s.io/v1):
// - host: exact ("foo.com"), or a wildcard of exactly one label ("*.foo.com" matches "bar.foo.com", neither
//   "foo.com" nor "a.bar.foo.com"); compared without the port and case-insensitively. The most specific host
//   level with a matching path answers: exact host, then wildcard, then the rules without a host (which apply to
//   every host), then the oldest Ingress's defaultBackend, else 404.
// - path: Exact matches the whole path, case-sensitively; Prefix matches element-wise on "/"-separated elements
//   ("/foo" matches "/foo", "/foo/" and "/foo/bar", not "/foobar"; a trailing "/" of the path or the request is
//   ignored; "/" matches every path); ImplementationSpecific is Prefix here (an empty path is "/"). Of the
//   matching paths the longest wins; at equal length Exact wins over Prefix.
// - several Ingresses are merged; where two give the same host, path and type, the oldest (creationTimestamp,
//   then namespace/name) wins, as ingress-nginx does.
import type { EndpointSlice, HTTPIngressPath, Ingress, IngressBackend, IngressClass, Service } from '../../api-types/index.js';
import { ANNOTATION_DEFAULT_INGRESS_CLASS, ingressSettings, type IngressSettings } from '../../api-types/index.js';

/** Where a matched request goes: ready endpoints ("ip:port"), or none with the reason (503). */
export interface Upstream {
  /** "namespace/service:port", as logs and error pages name it. */
  readonly name: string;
  readonly endpoints: readonly string[];
  /** Why there is no endpoint: the Service or port is missing, or no endpoint is ready. */
  readonly unavailable?: string;
}

export interface Route {
  readonly ingress: { readonly namespace: string; readonly name: string };
  readonly settings: IngressSettings;
  readonly upstream: Upstream;
}

/** The TLS certificate the router presents for a host: PEM strings from a kubernetes.io/tls Secret. */
export interface TlsKeyPair {
  readonly cert: string;
  readonly key: string;
}

export interface RouteSources {
  ingresses: readonly Ingress[];
  classes: readonly IngressClass[];
  services: readonly Service[];
  slicesOf(namespace: string, serviceName: string): EndpointSlice[];
  /** The controller names this router serves Ingresses of (spec.controller of their IngressClass). */
  controller: string;
}

interface PathEntry { readonly route: Route }

/** The paths of one host level: Exact paths by their text, Prefix paths by their elements joined ("/a/b"). */
class HostPaths {
  readonly exact = new Map<string, PathEntry>();
  readonly prefix = new Map<string, PathEntry>();

  match(path: string): Route | undefined {
    const exact = this.exact.get(path);
    if (exact) return exact.route;
    if (this.prefix.size === 0) return undefined;
    let end = path.endsWith('/') && path.length > 1 ? path.length - 1 : path.length;
    for (;;) {
      const hit = this.prefix.get(end === 0 ? '/' : path.slice(0, end));
      if (hit) return hit.route;
      if (end === 0) return undefined;
      end = path.lastIndexOf('/', end - 1);
      if (end < 0) return undefined;
    }
  }
}

/** Prefix "/foo/" and "/foo" are one prefix, "/" is "/": the key HostPaths.match looks up. */
function prefixKey(path: string): string {
  const trimmed = path.replace(/\/+$/, '');
  return trimmed === '' ? '/' : trimmed;
}

export class RouteTable {
  readonly #exactHosts = new Map<string, HostPaths>();
  /** "*.foo.com" rules by "foo.com". */
  readonly #wildcardHosts = new Map<string, HostPaths>();
  readonly #anyHost = new HostPaths();
  #defaultBackend: Route | undefined;
  /** Certificates by exact host and by wildcard suffix ("foo.com" for "*.foo.com"). */
  readonly #certs = new Map<string, TlsKeyPair>();
  readonly #wildcardCerts = new Map<string, TlsKeyPair>();
  /** The certificate for a client that sends no (or an unknown) server name: the oldest Ingress's first. */
  fallbackCertificate: TlsKeyPair | undefined;
  /** Every upstream of the table, by name: what the router keeps round-robin state for. */
  readonly upstreams = new Map<string, Upstream>();

  /** The route for a request, or undefined (404). `host` may carry a port; `path` is without the query. */
  match(host: string, path: string): Route | undefined {
    const name = hostName(host);
    const exact = this.#exactHosts.get(name)?.match(path);
    if (exact) return exact;
    const dot = name.indexOf('.');
    const wild = dot > 0 ? this.#wildcardHosts.get(name.slice(dot + 1))?.match(path) : undefined;
    return wild ?? this.#anyHost.match(path) ?? this.#defaultBackend;
  }

  /** The key pair for a TLS server name (SNI), exact before wildcard; undefined: none for that name. */
  certificateFor(serverName: string): TlsKeyPair | undefined {
    const name = serverName.toLowerCase();
    const dot = name.indexOf('.');
    return this.#certs.get(name) ?? (dot > 0 ? this.#wildcardCerts.get(name.slice(dot + 1)) : undefined);
  }

  /**
   * Compiles the table. `keyPairs` are the certificates of the Ingresses' tls[] Secrets that were readable and
   * valid, by "namespace/secretName"; a tls[] entry without one adds no certificate (its hosts get the fallback).
   */
  static build(src: RouteSources, keyPairs: ReadonlyMap<string, TlsKeyPair>): RouteTable {
    const t = new RouteTable();
    const services = new Map(src.services.map((s) => [`${s.metadata.namespace ?? 'default'}/${s.metadata.name ?? ''}`, s]));
    const upstreamOf = (namespace: string, backend: IngressBackend): Upstream => {
      const u = resolveUpstream(namespace, backend, services, src.slicesOf);
      const known = t.upstreams.get(u.name);
      if (known) return known;
      t.upstreams.set(u.name, u);
      return u;
    };
    for (const ing of servedIngresses(src.ingresses, src.classes, src.controller)) {
      const namespace = ing.metadata.namespace ?? 'default';
      const ingress = { namespace, name: ing.metadata.name ?? '' };
      const { settings } = ingressSettings(ing.metadata.annotations);
      const route = (backend: IngressBackend): Route => ({ ingress, settings, upstream: upstreamOf(namespace, backend) });
      for (const rule of ing.spec.rules ?? []) {
        const host = (rule.host ?? '').toLowerCase();
        const level = host === '' ? t.#anyHost
          : host.startsWith('*.') ? getOrAdd(t.#wildcardHosts, host.slice(2)) : getOrAdd(t.#exactHosts, host);
        for (const p of rule.http?.paths ?? []) addPath(level, p, route(p.backend));
      }
      if (ing.spec.defaultBackend && !t.#defaultBackend) t.#defaultBackend = route(ing.spec.defaultBackend);
      for (const tls of ing.spec.tls ?? []) {
        const pair = tls.secretName ? keyPairs.get(`${namespace}/${tls.secretName}`) : undefined;
        if (!pair) continue;
        t.fallbackCertificate ??= pair;
        for (const h of tls.hosts ?? []) {
          const host = h.toLowerCase();
          if (host.startsWith('*.')) { if (!t.#wildcardCerts.has(host.slice(2))) t.#wildcardCerts.set(host.slice(2), pair); }
          else if (!t.#certs.has(host)) t.#certs.set(host, pair);
        }
      }
    }
    return t;
  }
}

function addPath(level: HostPaths, p: HTTPIngressPath, route: Route): void {
  const path = p.path ?? '';
  // The oldest Ingress is compiled first and keeps a path another gives again.
  if (p.pathType === 'Exact') { if (!level.exact.has(path)) level.exact.set(path, { route }); return; }
  const key = prefixKey(path === '' ? '/' : path);
  if (!level.prefix.has(key)) level.prefix.set(key, { route });
}

function getOrAdd(m: Map<string, HostPaths>, key: string): HostPaths {
  let v = m.get(key);
  if (!v) m.set(key, v = new HostPaths());
  return v;
}

/** A Host header (or :authority) without its port, lowercased; "[::1]:80" -> "[::1]". */
export function hostName(host: string): string {
  const end = host.startsWith('[') ? host.indexOf(']') + 1 : host.lastIndexOf(':');
  return (end > 0 && end < host.length ? host.slice(0, end) : host).toLowerCase();
}

/**
 * The Ingresses this router serves, oldest first (the order conflicts are decided in): those whose class
 * (spec.ingressClassName, set by admission to the default class when absent) has `controller`.
 */
export function servedIngresses(ingresses: readonly Ingress[], classes: readonly IngressClass[], controller: string): Ingress[] {
  const mine = new Set(classes.filter((c) => c.spec.controller === controller).map((c) => c.metadata.name));
  const defaultClass = classes.find((c) => c.metadata.annotations?.[ANNOTATION_DEFAULT_INGRESS_CLASS] === 'true')?.metadata.name;
  return ingresses
    .filter((i) => { const cls = i.spec.ingressClassName ?? defaultClass; return cls !== undefined && mine.has(cls); })
    .sort((a, b) => (a.metadata.creationTimestamp ?? '').localeCompare(b.metadata.creationTimestamp ?? '')
      || `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace}/${b.metadata.name}`));
}

/**
 * The upstream of a backend in `namespace`: the Service port named or numbered, and the ready addresses of the
 * Service's EndpointSlices for that port (conditions.ready unset counts as ready, as Kubernetes says).
 */
export function resolveUpstream(
  namespace: string, backend: IngressBackend, services: ReadonlyMap<string, Service>, slicesOf: (namespace: string, serviceName: string) => EndpointSlice[],
): Upstream {
  const svc = backend.service;
  if (!svc) {
    const r = backend.resource;
    return { name: `${namespace}/${r?.kind ?? ''}/${r?.name ?? ''}`, endpoints: [], unavailable: 'resource backends are not supported by the flotilla ingress router' };
  }
  const port = svc.port?.name ?? String(svc.port?.number ?? '');
  const name = `${namespace}/${svc.name}:${port}`;
  const service = services.get(`${namespace}/${svc.name}`);
  if (!service) return { name, endpoints: [], unavailable: `service "${namespace}/${svc.name}" not found` };
  if (service.spec?.type === 'ExternalName') return { name, endpoints: [], unavailable: `service "${namespace}/${svc.name}" is of type ExternalName, which the ingress router does not serve` };
  const sp = (service.spec?.ports ?? []).find((p) => (svc.port?.name !== undefined ? p.name === svc.port.name : p.port === svc.port?.number));
  if (!sp) return { name, endpoints: [], unavailable: `service "${namespace}/${svc.name}" has no port ${port}` };
  const endpoints: string[] = [];
  for (const slice of slicesOf(namespace, svc.name)) {
    if (slice.addressType === 'FQDN') continue;
    const target = (slice.ports ?? []).find((p) => (p.name ?? '') === (sp.name ?? ''))?.port;
    if (target === undefined) continue;
    for (const e of slice.endpoints) {
      if (e.conditions?.ready === false) continue;
      for (const a of e.addresses) endpoints.push(slice.addressType === 'IPv6' ? `[${a}]:${target}` : `${a}:${target}`);
    }
  }
  return endpoints.length > 0 ? { name, endpoints } : { name, endpoints, unavailable: `service "${namespace}/${svc.name}" has no ready endpoint for port ${port}` };
}
