// The Service environment variables a container starts with, exactly as the kubelet makes them
// (pkg/kubelet/envvars FromServices, kubelet getServiceEnvVarMap): for every Service of the pod's namespace that
// has a ClusterIP when the container starts, `{SVC}_SERVICE_HOST`, `{SVC}_SERVICE_PORT`,
// `{SVC}_SERVICE_PORT_{PORTNAME}` and the Docker-link variables `{SVC}_PORT`, `{SVC}_PORT_{port}_{PROTO}` with
// `_PROTO`, `_PORT` and `_ADDR`; plus those of the `kubernetes` Service of `default` in every namespace, even
// when the pod says `enableServiceLinks: false`. A Service of the pod's own namespace wins over `default`'s
// `kubernetes` of the same name. The container's own env and envFrom win over all of them.
import type { Service } from '../../api-types/index.js';

/** Services whose variables every pod gets (Kubernetes' "master services"), all in namespace `default`. */
const MASTER_SERVICES = new Set(['kubernetes']);

/** Kubernetes' makeEnvVariableName: upper case, '-' as '_'. */
function envName(name: string): string {
  return name.replaceAll('-', '_').toUpperCase();
}

/** Whether the Service has a ClusterIP (not headless, not ExternalName, allocated). */
function hasClusterIP(s: Service): boolean {
  const ip = s.spec?.clusterIP;
  return ip !== undefined && ip !== '' && ip !== 'None';
}

function hostPort(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** The variables of one Service, in Kubernetes' order; none for a Service without ClusterIP or ports. */
function variablesOf(s: Service): Array<[string, string]> {
  const ports = s.spec?.ports ?? [];
  if (!hasClusterIP(s) || ports.length === 0) return [];
  const ip = s.spec!.clusterIP!;
  const prefix = envName(s.metadata.name ?? '');
  const out: Array<[string, string]> = [[`${prefix}_SERVICE_HOST`, ip], [`${prefix}_SERVICE_PORT`, String(ports[0]!.port)]];
  for (const p of ports) if (p.name) out.push([`${prefix}_SERVICE_PORT_${envName(p.name)}`, String(p.port)]);
  ports.forEach((p, i) => {
    const proto = (p.protocol ?? 'TCP').toLowerCase();
    const url = `${proto}://${hostPort(ip, p.port)}`;
    if (i === 0) out.push([`${prefix}_PORT`, url]);
    const portPrefix = `${prefix}_PORT_${p.port}_${proto.toUpperCase()}`;
    out.push([portPrefix, url], [`${portPrefix}_PROTO`, proto], [`${portPrefix}_PORT`, String(p.port)], [`${portPrefix}_ADDR`, ip]);
  });
  return out;
}

/**
 * The Service variables of a container of a pod in `namespace`, from the Services that exist now (any
 * namespace; the others are ignored). `enableServiceLinks` is the pod's field (Kubernetes' default: true).
 */
export function serviceEnv(services: readonly Service[], namespace: string, enableServiceLinks = true): Record<string, string> {
  const chosen = new Map<string, Service>();
  for (const s of services) {
    if (!hasClusterIP(s)) continue;
    const name = s.metadata.name ?? '';
    const ns = s.metadata.namespace ?? 'default';
    if (ns === namespace && enableServiceLinks) chosen.set(name, s);
    else if (ns === 'default' && MASTER_SERVICES.has(name) && !chosen.has(name)) chosen.set(name, s);
  }
  const env: Record<string, string> = {};
  for (const s of chosen.values()) for (const [k, v] of variablesOf(s)) env[k] = v;
  return env;
}
