// The `kubernetes` Service in `default`, as every Kubernetes cluster has it: ClusterIP the first address of the
// service CIDR, port https 443 to the API servers, and Endpoints and an EndpointSlice listing the API servers'
// addresses, taken from the Raft member records (their advertised URLs). The leader keeps them; a member
// advertised by host name rather than IPv4 address is left out (EndpointSlices of type IPv4 hold addresses).
import {
  ENDPOINTSLICE_CONTROLLER_NAME, LABEL_COMPONENT, LABEL_ENDPOINTSLICE_MANAGED_BY, LABEL_PROVIDER, LABEL_SERVICE_NAME, NETWORK_SETTINGS_CONFIGMAP,
  kubernetesServiceIP, parseIPv4, parseNetworkSettings, resourceOfKind,
} from '../../api-types/index.js';
import type { EndpointSlice, Endpoints, Service } from '../../api-types/index.js';
import { MEMBERS } from '../objects/service.js';
import { controllerRefTo, resources, sameContent } from './cluster-objects.js';
import type { Controller, ControllerDeps } from './controller.js';

export const KUBERNETES_SERVICE = { namespace: 'default', name: 'kubernetes' } as const;
const KEY = `${KUBERNETES_SERVICE.namespace}/${KUBERNETES_SERVICE.name}`;
const configMaps = resourceOfKind('ConfigMap');
const LABELS = { [LABEL_COMPONENT]: 'apiserver', [LABEL_PROVIDER]: 'kubernetes' };

/** The API servers by port: address and port of every member's advertised URL (IPv4 hosts only). */
function apiServers(deps: ControllerDeps): Map<number, string[]> {
  const byPort = new Map<number, string[]>();
  for (const m of deps.objects.list(MEMBERS).items) {
    const url = (m.spec as { peerUrl?: string } | undefined)?.peerUrl;
    if (!url) continue;
    const u = new URL(url);
    if (parseIPv4(u.hostname) === undefined) continue;
    const port = Number(u.port || (u.protocol === 'https:' ? 443 : 80));
    byPort.set(port, [...(byPort.get(port) ?? []), u.hostname].sort());
  }
  return byPort;
}

export function kubernetesServiceController(deps: ControllerDeps): Controller {
  const { namespace, name } = KUBERNETES_SERVICE;
  const mine = (e: { object: { metadata: { namespace?: string; name: string } } }) => (e.object.metadata.namespace === namespace && e.object.metadata.name === name ? [KEY] : []);
  return {
    name: 'kubernetes-service',
    watches: [
      { resource: MEMBERS, keys: () => [KEY] },
      { resource: resources.services, keys: mine },
      { resource: resources.endpoints, keys: mine },
      { resource: resources.endpointSlices, keys: mine },
    ],
    allKeys: () => [KEY],
    async reconcile() {
      const cm = deps.objects.get(configMaps, NETWORK_SETTINGS_CONFIGMAP.namespace, NETWORK_SETTINGS_CONFIGMAP.name);
      if (!cm || !deps.objects.get(resources.namespaces, undefined, namespace)) return;
      const byPort = apiServers(deps);
      const ports = [...byPort.keys()].sort((a, b) => a - b);
      if (ports.length === 0) return;
      const servicePort = { name: 'https', port: 443, protocol: 'TCP' as const, targetPort: ports[0]! };
      let svc = deps.objects.get(resources.services, namespace, name);
      if (!svc) {
        const body: Service = {
          apiVersion: 'v1', kind: 'Service', metadata: { name, namespace, labels: LABELS },
          spec: { type: 'ClusterIP', clusterIP: kubernetesServiceIP(parseNetworkSettings(cm.data)), ports: [servicePort], sessionAffinity: 'None' },
        };
        svc = await deps.objects.create(resources.services, namespace, body);
      } else if (!sameContent(svc.spec?.ports, [servicePort])) {
        svc = await deps.objects.replace(resources.services, namespace, name, { ...svc, spec: { ...svc.spec, ports: [servicePort] } });
      }

      const subsets = ports.map((port) => ({ addresses: byPort.get(port)!.map((ip) => ({ ip })), ports: [{ name: 'https', port, protocol: 'TCP' as const }] }));
      const ep = deps.objects.get(resources.endpoints, namespace, name);
      if (!ep || !sameContent(ep.subsets, subsets)) {
        const body: Endpoints = { apiVersion: 'v1', kind: 'Endpoints', metadata: { name, namespace, labels: LABELS }, subsets };
        if (ep) await deps.objects.replace(resources.endpoints, namespace, name, body);
        else await deps.objects.create(resources.endpoints, namespace, body);
      }

      // One slice per API port: "kubernetes" for the first (as Kubernetes names its one), "kubernetes-PORT" after.
      const sliceNames = new Set<string>();
      for (const [i, port] of ports.entries()) {
        const sliceName = i === 0 ? name : `${name}-${port}`;
        sliceNames.add(sliceName);
        const body: EndpointSlice = {
          apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
          metadata: {
            name: sliceName, namespace, ownerReferences: [controllerRefTo(svc)],
            labels: { ...LABELS, [LABEL_SERVICE_NAME]: name, [LABEL_ENDPOINTSLICE_MANAGED_BY]: ENDPOINTSLICE_CONTROLLER_NAME },
          },
          addressType: 'IPv4',
          endpoints: byPort.get(port)!.map((ip) => ({ addresses: [ip], conditions: { ready: true, serving: true, terminating: false } })),
          ports: [{ name: 'https', port, protocol: 'TCP' }],
        };
        const current = deps.objects.get(resources.endpointSlices, namespace, sliceName);
        if (!current) await deps.objects.create(resources.endpointSlices, namespace, body);
        else if (!sameContent({ e: current.endpoints, p: current.ports, o: current.metadata.ownerReferences }, { e: body.endpoints, p: body.ports, o: body.metadata.ownerReferences })) {
          await deps.objects.replace(resources.endpointSlices, namespace, sliceName, body);
        }
      }
      for (const s of deps.objects.list(resources.endpointSlices, namespace).items) {
        if (s.metadata.labels?.[LABEL_SERVICE_NAME] === name && !sliceNames.has(s.metadata.name)) await deps.objects.delete(resources.endpointSlices, namespace, s.metadata.name);
      }
    },
  };
}
