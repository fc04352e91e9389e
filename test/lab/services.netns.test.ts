// Services, NodePorts and cluster DNS end to end, on the multi-host lab: three hosts, each with its own dockerd
// (FORWARD policy DROP, as Docker 20.10 leaves it) and a real `flotilla agent` (pod network, nftables service
// proxy, cluster DNS all on, as `flotilla agent` runs by default); the server on h1.
// - a Deployment of 3 httpd pods spread over the machines behind a ClusterIP Service: the Endpoints and the
//   EndpointSlice list the 3 pod IPs, and a client pod requesting the ClusterIP gets answers from all 3;
// - a NodePort Service answers on every machine's own address, from every machine's root namespace;
// - a deleted backend pod leaves the Endpoints, and once every agent's rules dropped it (and took its replacement,
//   Ready by its readiness probe on the named port) no request fails;
// - a Service created after its pods resolves by name from a pod (full name and the short name through the
//   search path), and a request by name reaches it;
// - with the server gone, every agent's DNS keeps answering for the names it knew;
// - `flotilla get pods -o wide` shows the pod IPs.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PodNetworkLab, type PodView } from './pod-network-lab.js';
import { eventually } from '../support/eventually.js';

const SUBNET = '10.84.0';
const NODES = ['svc-a', 'svc-b', 'svc-c'];
const REQUESTS = 60;
// Every web pod answers GET /cgi-bin/who with its hostname (its pod name) through busybox httpd's CGI.
const WEB = ['sh', '-c', 'mkdir -p /www/cgi-bin && printf "#!/bin/sh\\necho Content-Type: text/plain\\necho\\nhostname\\n" > /www/cgi-bin/who '
  + '&& chmod +x /www/cgi-bin/who && exec httpd -f -p 0.0.0.0:8080 -h /www'];
const IDLE = ['sleep', '3600'];
/**
 * `times` HTTP GETs of /cgi-bin/who by busybox nc (this busybox's wget crashes on user-defined Docker networks),
 * one after the other, from inside a pod: one line per request, "ok NAME" or "failed".
 */
const requests = (address: string, port: number, times: number) => ['sh', '-c',
  `i=0; while [ $i -lt ${times} ]; do a=$(printf 'GET /cgi-bin/who HTTP/1.0\\r\\n\\r\\n' | nc -w 3 ${address} ${port} | tail -n 1); `
  + `if [ -n "$a" ]; then echo "ok $a"; else echo failed; fi; i=$((i+1)); done`];

/**
 * Whether busybox nslookup's output answers `fqdn` with `ip`. For a short name it asks every search domain and
 * exits 1 when any of them is NXDOMAIN, as it does in Kubernetes, so its exit code says nothing.
 */
const answers = (out: string, fqdn: string, ip: string) => new RegExp(`Name:\\s+${fqdn.replace(/\./g, '\\.')}\\nAddress:\\s+${ip.replace(/\./g, '\\.')}\\n`).test(out);

let cluster: PodNetworkLab | undefined;
test.after(async () => { await cluster?.destroy(); });

let client: PodView;
let clusterIp = '';
let backends: PodView[] = [];
let lateIp = '';

/** The answers of `times` requests from the client pod: how many failed, and which pods answered how often. */
async function ask(address: string, port: number, times: number): Promise<{ failed: number; answered: Map<string, number> }> {
  const r = await cluster!.execInPod(cluster!.hostOf(client.spec.nodeName!), client.metadata.name, requests(address, port, times), 20_000 + times * 3_500);
  assert.is(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.is(lines.length, times, r.stdout);
  const answered = new Map<string, number>();
  for (const l of lines.filter((x) => x.startsWith('ok '))) answered.set(l.slice(3), (answered.get(l.slice(3)) ?? 0) + 1);
  return { failed: lines.filter((l) => l === 'failed').length, answered };
}

const webDeployment = {
  apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web' },
  spec: {
    replicas: 3, selector: { matchLabels: { app: 'web' } },
    template: {
      metadata: { labels: { app: 'web' } },
      spec: {
        terminationGracePeriodSeconds: 0,
        // One per machine, so that the client reaches backends on other machines.
        affinity: { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [{ labelSelector: { matchLabels: { app: 'web' } }, topologyKey: 'kubernetes.io/hostname' }] } },
        containers: [{
          name: 'c', image: 'flotilla/testbox:latest', command: WEB, ports: [{ name: 'http', containerPort: 8080 }],
          // In rotation only once httpd answers: a replacement pod must not fail requests while it starts.
          readinessProbe: { httpGet: { path: '/cgi-bin/who', port: 'http' }, periodSeconds: 1 },
        }],
      },
    },
  },
};

test('a Deployment of 3 web pods spread over the machines, its ClusterIP Service listing their 3 pod IPs', async () => {
  cluster = await PodNetworkLab.start({ hosts: 3, prefix: `fl-svc${process.pid % 100000}`, subnet: SUBNET });
  for (const h of [1, 2, 3]) assert.is((await cluster.lab.exec(h, 'iptables', ['-w', '-P', 'FORWARD', 'DROP'])).code, 0);
  await Promise.all(NODES.map((n, i) => cluster!.startAgent(i + 1, n)));
  await cluster.create(webDeployment);
  const svc = await cluster.create({
    apiVersion: 'v1', kind: 'Service', metadata: { name: 'web' },
    spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }] },
  });
  clusterIp = (svc.spec as { clusterIP: string }).clusterIP;
  assert.match(clusterIp, /^10\.43\.\d+\.\d+$/);
  client = await cluster.runPod('client', 'svc-a', IDLE);
  backends = await eventually('3 web pods running with pod IPs', async () => {
    const pods = await cluster!.podsOf('app=web');
    return pods.length === 3 && pods.every((p) => p.status?.phase === 'Running' && p.status.podIP) ? pods : undefined;
  }, { limitMs: 90_000, everyMs: 500 });
  assert.equal(backends.map((p) => p.spec.nodeName).sort(), NODES);
  const ips = backends.map((p) => p.status!.podIP!).sort();
  assert.equal(await cluster.waitEndpoints('default', 'web', 3), ips);
  const endpoints = await cluster.api('GET', '/api/v1/namespaces/default/endpoints/web');
  assert.is(endpoints.code, 200);
  const subsets = endpoints.json.subsets as { addresses?: { ip: string }[]; ports?: { name?: string; port: number }[] }[];
  assert.equal(subsets.flatMap((s) => s.addresses ?? []).map((a) => a.ip).sort(), ips);
  assert.equal(subsets[0]!.ports, [{ name: 'http', port: 8080, protocol: 'TCP' }]);
});

test('the ClusterIP answers from a pod on another machine, and all 3 backends answer', async () => {
  // The client's own node programs the Service as soon as it sees the EndpointSlice: wait for a first answer.
  await eventually('a first answer through the ClusterIP', async () => ((await ask(clusterIp, 80, 1)).failed === 0 ? true : undefined), { limitMs: 30_000, everyMs: 300 });
  const { failed, answered } = await ask(clusterIp, 80, REQUESTS);
  assert.is(failed, 0);
  assert.equal([...answered.keys()].sort(), backends.map((p) => p.metadata.name));
});

test('a NodePort answers on every machine\'s own address, from every machine\'s root namespace', async () => {
  const svc = await cluster!.create({
    apiVersion: 'v1', kind: 'Service', metadata: { name: 'web-np' },
    spec: { type: 'NodePort', selector: { app: 'web' }, ports: [{ port: 80, targetPort: 8080 }] },
  });
  const nodePort = (svc.spec as { ports: { nodePort: number }[] }).ports[0]!.nodePort;
  assert.ok(nodePort >= 30000 && nodePort <= 32767, `nodePort ${nodePort}`);
  await cluster!.waitEndpoints('default', 'web-np', 3);
  const names = new Set(backends.map((p) => p.metadata.name));
  for (const from of [1, 2, 3]) {
    for (const to of [1, 2, 3]) {
      const url = `http://${SUBNET}.${to}:${nodePort}/cgi-bin/who`;
      const answer = await eventually(`h${from} gets an answer from ${url}`, async () => {
        const r = await cluster!.lab.exec(from, 'curl', ['-s', '-m', '3', url], { timeoutMs: 8000 });
        return r.code === 0 && names.has(r.stdout.trim()) ? r.stdout.trim() : undefined;
      }, { limitMs: 30_000, everyMs: 300 });
      assert.ok(names.has(answer));
    }
  }
});

test('a deleted backend pod leaves the Endpoints, and once the rules dropped it no request fails', async () => {
  const gone = backends.find((p) => p.spec.nodeName !== client.spec.nodeName)!;
  const goneIp = gone.status!.podIP!;
  assert.is((await cluster!.api('DELETE', `/api/v1/namespaces/default/pods/${gone.metadata.name}`)).code, 200);
  await eventually(`${goneIp} gone from the EndpointSlice and the Endpoints`, async () => {
    const slice = await cluster!.endpointAddresses('default', 'web');
    const ep = await cluster!.api('GET', '/api/v1/namespaces/default/endpoints/web');
    return !slice.includes(goneIp) && !JSON.stringify(ep.json.subsets ?? []).includes(`"${goneIp}"`) ? true : undefined;
  }, { limitMs: 60_000, everyMs: 200 });
  // The Deployment replaces it on the same machine; it joins once its readiness probe passes.
  const now = await cluster!.waitEndpoints('default', 'web', 3);
  const replacement = (await cluster!.podsOf('app=web')).find((p) => p.status?.podIP && !backends.some((b) => b.metadata.name === p.metadata.name))!;
  assert.ok(replacement, 'a replacement pod');
  assert.ok(now.includes(replacement.status!.podIP!), `${now.join()} lists the replacement ${replacement.status!.podIP}`);
  let ruleset = '';
  await eventually(`every agent's ruleset without ${goneIp} and with ${replacement.status!.podIP}`, async () => {
    for (const h of [1, 2, 3]) {
      const r = await cluster!.lab.exec(h, 'nft', ['list', 'table', 'inet', 'flotilla']);
      ruleset = `h${h}: ${r.stdout}${r.stderr}`;
      const has = (ip: string) => r.stdout.includes(`${ip}:`);
      if (r.code !== 0 || has(goneIp) || !has(replacement.status!.podIP!)) return undefined;
    }
    return true;
  }, { limitMs: 60_000, everyMs: 300, detail: () => ruleset });
  const { failed, answered } = await ask(clusterIp, 80, 50);
  assert.is(failed, 0);
  assert.not.ok(answered.has(gone.metadata.name), `${gone.metadata.name} still answered`);
  assert.equal([...answered.keys()].sort(), (await cluster!.podsOf('app=web')).map((p) => p.metadata.name));
});

test('a Service created after its pods resolves by name from a pod, and a request by name reaches it', async () => {
  const late = await cluster!.create({
    apiVersion: 'v1', kind: 'Service', metadata: { name: 'late' },
    spec: { selector: { app: 'web' }, ports: [{ port: 8081, targetPort: 8080 }] },
  });
  lateIp = (late.spec as { clusterIP: string }).clusterIP;
  const host = cluster!.hostOf(client.spec.nodeName!);
  for (const name of ['late.default.svc.cluster.local', 'late']) {
    let last = '';
    await eventually(`${name} resolves in the client pod`, async () => {
      const got = await cluster!.execInPod(host, 'client', ['nslookup', name]);
      last = got.stdout + got.stderr;
      return answers(got.stdout, 'late.default.svc.cluster.local', lateIp) ? true : undefined;
    }, { limitMs: 30_000, everyMs: 300, detail: () => last });
  }
  await cluster!.waitEndpoints('default', 'late', 3);
  await eventually('a request to late:8081 by name', async () => ((await ask('late', 8081, 1)).failed === 0 ? true : undefined), { limitMs: 30_000, everyMs: 300 });
  const { failed } = await ask('late', 8081, 10);
  assert.is(failed, 0);
});

test('flotilla get pods -o wide shows the pod IPs', async () => {
  const r = await cluster!.cli(3, ['get', 'pods', '-o', 'wide']);
  assert.is(r.code, 0, r.stderr);
  const line = r.stdout.split('\n').find((l) => l.startsWith('client '));
  assert.ok(line, r.stdout);
  assert.match(line!, ` ${client.status!.podIP!} `);
  assert.match(r.stdout, /\bIP\b/);
});

test('with the server gone, every agent\'s DNS keeps answering for the names it knew', async () => {
  // From a pod on every machine: each asks its own node's DNS (ClusterFirst).
  const pods = [client, ...await cluster!.podsOf('app=web')];
  assert.equal([...new Set(pods.map((p) => p.spec.nodeName))].sort(), NODES);
  const seen = new Map(NODES.map((n) => [n, cluster!.agents.get(n)!.output().length]));
  const server = cluster!.server!;
  server.kill('SIGKILL');
  await server.exited();
  // Each agent noticed: its watches failed and it lists again in vain.
  await eventually('every agent\'s service view lost the server', async () => (NODES.every((n) => /watching failed/.test(cluster!.agents.get(n)!.output().slice(seen.get(n))))
    ? true : undefined), { limitMs: 60_000, everyMs: 300 });
  for (const pod of pods) {
    for (const [name, fqdn, ip] of [['web.default.svc.cluster.local', 'web.default.svc.cluster.local', clusterIp], ['late', 'late.default.svc.cluster.local', lateIp]] as const) {
      const r = await cluster!.execInPod(cluster!.hostOf(pod.spec.nodeName!), pod.metadata.name, ['nslookup', name]);
      assert.ok(answers(r.stdout, fqdn, ip), `${name} from ${pod.metadata.name} on ${pod.spec.nodeName}: ${r.stdout}${r.stderr}`);
    }
  }
});

test.run();
