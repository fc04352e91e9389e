// Service environment variables against the names and values the kubelet gives (pkg/kubelet/envvars tests).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { serviceEnv } from '../../../node-agent/network/service-env.js';
import { buildContainerConfig } from '../../../node-agent/container-config.js';
import type { Service } from '../../../api-types/index.js';
import type { PodInputs } from '../../../node-agent/pod-actions.js';

const svc = (namespace: string, name: string, spec: Service['spec']): Service => ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace }, spec });

const kubernetes = svc('default', 'kubernetes', { clusterIP: '10.43.0.1', ports: [{ name: 'https', port: 443, protocol: 'TCP' }] });
const services: Service[] = [
  kubernetes,
  svc('shop', 'web-front', { clusterIP: '10.43.0.10', ports: [{ name: 'http', port: 80, protocol: 'TCP' }, { name: 'dns-udp', port: 53, protocol: 'UDP' }] }),
  svc('shop', 'single', { clusterIP: '10.43.0.11', ports: [{ port: 8080 }] }),
  svc('shop', 'headless', { clusterIP: 'None', ports: [{ port: 80 }] }),
  svc('shop', 'outside', { type: 'ExternalName', externalName: 'example.com' }),
  svc('shop', 'v6', { clusterIP: 'fd00::a', ports: [{ port: 80, protocol: 'TCP' }] }),
  svc('other', 'elsewhere', { clusterIP: '10.43.0.12', ports: [{ port: 80 }] }),
];

const KUBERNETES_VARS = {
  KUBERNETES_SERVICE_HOST: '10.43.0.1',
  KUBERNETES_SERVICE_PORT: '443',
  KUBERNETES_SERVICE_PORT_HTTPS: '443',
  KUBERNETES_PORT: 'tcp://10.43.0.1:443',
  KUBERNETES_PORT_443_TCP: 'tcp://10.43.0.1:443',
  KUBERNETES_PORT_443_TCP_PROTO: 'tcp',
  KUBERNETES_PORT_443_TCP_PORT: '443',
  KUBERNETES_PORT_443_TCP_ADDR: '10.43.0.1',
};

test("the pod's namespace's Services with a ClusterIP, plus kubernetes; headless, ExternalName and other namespaces have none", () => {
  assert.equal(serviceEnv(services, 'shop'), {
    ...KUBERNETES_VARS,
    WEB_FRONT_SERVICE_HOST: '10.43.0.10',
    WEB_FRONT_SERVICE_PORT: '80',
    WEB_FRONT_SERVICE_PORT_HTTP: '80',
    WEB_FRONT_SERVICE_PORT_DNS_UDP: '53',
    WEB_FRONT_PORT: 'tcp://10.43.0.10:80',
    WEB_FRONT_PORT_80_TCP: 'tcp://10.43.0.10:80',
    WEB_FRONT_PORT_80_TCP_PROTO: 'tcp',
    WEB_FRONT_PORT_80_TCP_PORT: '80',
    WEB_FRONT_PORT_80_TCP_ADDR: '10.43.0.10',
    WEB_FRONT_PORT_53_UDP: 'udp://10.43.0.10:53',
    WEB_FRONT_PORT_53_UDP_PROTO: 'udp',
    WEB_FRONT_PORT_53_UDP_PORT: '53',
    WEB_FRONT_PORT_53_UDP_ADDR: '10.43.0.10',
    SINGLE_SERVICE_HOST: '10.43.0.11',
    SINGLE_SERVICE_PORT: '8080',
    SINGLE_PORT: 'tcp://10.43.0.11:8080',
    SINGLE_PORT_8080_TCP: 'tcp://10.43.0.11:8080',
    SINGLE_PORT_8080_TCP_PROTO: 'tcp',
    SINGLE_PORT_8080_TCP_PORT: '8080',
    SINGLE_PORT_8080_TCP_ADDR: '10.43.0.11',
    V6_SERVICE_HOST: 'fd00::a',
    V6_SERVICE_PORT: '80',
    V6_PORT: 'tcp://[fd00::a]:80',
    V6_PORT_80_TCP: 'tcp://[fd00::a]:80',
    V6_PORT_80_TCP_PROTO: 'tcp',
    V6_PORT_80_TCP_PORT: '80',
    V6_PORT_80_TCP_ADDR: 'fd00::a',
  });
});

test('enableServiceLinks: false keeps only the kubernetes Service; so does a namespace without Services', () => {
  assert.equal(serviceEnv(services, 'shop', false), KUBERNETES_VARS);
  assert.equal(serviceEnv(services, 'empty'), KUBERNETES_VARS);
  assert.equal(serviceEnv(services, 'default', false), KUBERNETES_VARS);
});

test("a Service named kubernetes in the pod's namespace wins over default's, whatever the order", () => {
  const own = svc('shop', 'kubernetes', { clusterIP: '10.43.0.99', ports: [{ port: 8443 }] });
  for (const list of [[kubernetes, own], [own, kubernetes]]) {
    const env = serviceEnv(list, 'shop');
    assert.is(env.KUBERNETES_SERVICE_HOST, '10.43.0.99');
    assert.is(env.KUBERNETES_SERVICE_PORT, '8443');
    assert.is(env.KUBERNETES_SERVICE_PORT_HTTPS, undefined);
  }
  assert.is(serviceEnv([kubernetes, own], 'shop', false).KUBERNETES_SERVICE_HOST, '10.43.0.1');
});

test("the container's own env wins over a Service variable of the same name", () => {
  const inputs: PodInputs = {
    pod: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'shop' }, spec: { containers: [{ name: 'c', image: 'i', env: [{ name: 'SINGLE_SERVICE_HOST', value: 'mine' }] }] } },
    configMaps: {}, secrets: {},
  };
  const config = buildContainerConfig(inputs, inputs.pod.spec.containers[0]!, { name: 'n', sandboxId: 's', labels: {}, volumePaths: new Map(), services });
  assert.is(config.env.SINGLE_SERVICE_HOST, 'mine');
  assert.is(config.env.SINGLE_SERVICE_PORT, '8080');
  assert.is(config.env.KUBERNETES_SERVICE_HOST, '10.43.0.1');
  inputs.pod.spec.enableServiceLinks = false;
  const unlinked = buildContainerConfig(inputs, inputs.pod.spec.containers[0]!, { name: 'n', sandboxId: 's', labels: {}, volumePaths: new Map(), services });
  assert.is(unlinked.env.SINGLE_SERVICE_PORT, undefined);
  assert.is(unlinked.env.KUBERNETES_SERVICE_PORT, '443');
});

test.run();
