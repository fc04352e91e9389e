// The Ingress controller (leader only) for the Ingresses of the classes whose controller is the agents' router
// (flotilla.io/ingress). It writes what one place must write, so that the agents do not race:
// - status.loadBalancer.ingress: the InternalIPs of the Ready nodes whose router serves (Node annotation
//   flotilla.io/ingress-ports, kept by each agent), sorted;
// - Warning Events on the Ingress for what the router cannot honour: an unknown or bad annotation
//   (UnsupportedAnnotation, InvalidAnnotation), a backend Service or port that does not exist (ServiceNotFound,
//   PortNotFound: that path answers 503, the others keep working), a resource backend (UnsupportedBackend), a
//   tls[] Secret that is missing or not a valid kubernetes.io/tls key pair (InvalidTLSSecret: its hosts get the
//   router's fallback certificate, the other hosts keep theirs).
// Each problem is recorded once per leadership term while it lasts (the EventRecorder would count a repeat).
import { X509Certificate, createPrivateKey } from 'node:crypto';
import {
  ANNOTATION_INGRESS_PORTS, INGRESS_CONTROLLER, ingressSettings, resourceOfKind,
  type Ingress, type IngressBackend, type IngressLoadBalancerIngress, type Node, type Secret, type Service,
} from '../../api-types/index.js';
import type { Stored } from '../store/types.js';
import { objectKey, resources, sameContent, splitKey } from './cluster-objects.js';
import type { Controller, ControllerDeps } from './controller.js';
import { EventRecorder } from './events.js';

const ingresses = resourceOfKind('Ingress');
const ingressClasses = resourceOfKind('IngressClass');
const secrets = resourceOfKind('Secret');
const SECRET_TYPE_TLS = 'kubernetes.io/tls';

interface Problem { reason: string; message: string }

/** The addresses Ingresses of the router are served at: InternalIPs of Ready nodes that carry the router annotation. */
export function servingAddresses(nodes: readonly Node[]): IngressLoadBalancerIngress[] {
  const ips = new Set<string>();
  for (const n of nodes) {
    if (n.metadata.annotations?.[ANNOTATION_INGRESS_PORTS] === undefined) continue;
    if (n.status?.conditions?.find((c) => c.type === 'Ready')?.status !== 'True') continue;
    const ip = n.status?.addresses?.find((a) => a.type === 'InternalIP')?.address;
    if (ip) ips.add(ip);
  }
  return [...ips].sort().map((ip) => ({ ip }));
}

/** What the router cannot honour in an Ingress, one line each (the reasons are the Events'). */
export function ingressProblems(ing: Ingress, services: (name: string) => Stored<Service> | undefined, secret: (name: string) => Secret | undefined): Problem[] {
  const problems: Problem[] = ingressSettings(ing.metadata.annotations).problems.map((message) => ({
    reason: message.endsWith('has no effect') ? 'UnsupportedAnnotation' : 'InvalidAnnotation', message,
  }));
  const backends: IngressBackend[] = [
    ...(ing.spec.defaultBackend ? [ing.spec.defaultBackend] : []),
    ...(ing.spec.rules ?? []).flatMap((r) => (r.http?.paths ?? []).map((p) => p.backend)),
  ];
  const seen = new Set<string>();
  for (const b of backends) {
    const text = JSON.stringify(b);
    if (seen.has(text)) continue;
    seen.add(text);
    if (!b.service) {
      problems.push({ reason: 'UnsupportedBackend', message: `resource backend ${b.resource?.kind ?? ''}/${b.resource?.name ?? ''} is not supported by the flotilla ingress router: requests for it get 503` });
      continue;
    }
    const { name, port } = b.service;
    const svc = services(name);
    const portText = port?.name ?? String(port?.number ?? '');
    if (!svc) problems.push({ reason: 'ServiceNotFound', message: `service "${name}" not found: requests for it get 503` });
    else if (!(svc.spec?.ports ?? []).some((p) => (port?.name !== undefined ? p.name === port.name : p.port === port?.number))) {
      problems.push({ reason: 'PortNotFound', message: `service "${name}" has no port ${portText}: requests for it get 503` });
    }
  }
  for (const t of ing.spec.tls ?? []) {
    if (!t.secretName) continue;
    const why = tlsSecretError(secret(t.secretName));
    if (why) problems.push({ reason: 'InvalidTLSSecret', message: `TLS secret "${t.secretName}" ${why}: hosts ${(t.hosts ?? []).join(', ') || '(none)'} get the default certificate` });
  }
  return problems;
}

/** Why a Secret cannot serve as a TLS certificate, or undefined when it can. */
function tlsSecretError(s: Secret | undefined): string | undefined {
  if (!s) return 'not found';
  if (s.type !== SECRET_TYPE_TLS) return `is of type ${s.type ?? 'Opaque'}, not ${SECRET_TYPE_TLS}`;
  const crt = s.data?.['tls.crt'];
  const key = s.data?.['tls.key'];
  if (!crt || !key) return 'lacks tls.crt or tls.key';
  try {
    const cert = new X509Certificate(Buffer.from(crt, 'base64'));
    if (!cert.checkPrivateKey(createPrivateKey(Buffer.from(key, 'base64')))) return 'holds a key that does not match its certificate';
  } catch (err) {
    return `is not a valid key pair (${(err as Error).message})`;
  }
  return undefined;
}

export function ingressController(deps: ControllerDeps): Controller {
  const events = new EventRecorder(deps.objects, 'ingress-controller', deps.now);
  /** Problems already recorded, by Ingress key: "reason\nmessage" lines. */
  const reported = new Map<string, Set<string>>();
  const allKeys = (): string[] => deps.objects.list(ingresses).items.map(objectKey);
  const inNamespace = (ns: string | undefined): string[] => deps.objects.list(ingresses, ns).items.map(objectKey);
  return {
    name: 'ingress',
    watches: [
      { resource: ingresses, keys: (e) => [objectKey(e.object)] },
      { resource: ingressClasses, keys: allKeys },
      { resource: resources.nodes, keys: allKeys },
      { resource: resources.services, keys: (e) => inNamespace(e.object.metadata.namespace) },
      { resource: secrets, keys: (e) => (e.object as Secret).type === SECRET_TYPE_TLS || e.type === 'DELETED' ? inNamespace(e.object.metadata.namespace) : [] },
    ],
    allKeys,
    async reconcile(key) {
      const { namespace, name } = splitKey(key);
      const ing = deps.objects.get(ingresses, namespace, name);
      const cls = ing?.spec.ingressClassName ? deps.objects.get(ingressClasses, undefined, ing.spec.ingressClassName) : undefined;
      if (!ing || cls?.spec.controller !== INGRESS_CONTROLLER) { reported.delete(key); return; }
      const problems = ingressProblems(ing, (svc) => deps.objects.get(resources.services, namespace, svc), (s) => deps.objects.get(secrets, namespace, s));
      const lines = new Set(problems.map((p) => `${p.reason}\n${p.message}`));
      const before = reported.get(key) ?? new Set();
      for (const p of problems) if (!before.has(`${p.reason}\n${p.message}`)) await events.record(ing, 'Warning', p.reason, p.message);
      reported.set(key, lines);
      const addresses = servingAddresses(deps.objects.list(resources.nodes).items);
      if (!sameContent(ing.status?.loadBalancer?.ingress ?? [], addresses)) {
        await deps.objects.replaceStatus(ingresses, namespace, name, { ...ing.status, loadBalancer: addresses.length > 0 ? { ingress: addresses } : {} }, ing.metadata.resourceVersion);
      }
    },
  };
}
