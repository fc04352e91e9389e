// The pod network and the Service data path across machines, on the multi-host lab (test/lab: network namespaces
// on one switch, one dockerd per host, real `flotilla agent`s with the pod network, the service proxy (nftables)
// and cluster DNS on, as `flotilla agent` runs by default; needs root). The client side is a pod on h1, the
// server side pods on h2.
// Throughput (MiB/s of one transfer of --mib MiB; a small node TCP sender and receiver run with nsenter in the
// pods' network namespaces, as busybox nc of the test image closes early or crawls with a pipe on stdin; the
// receiver times from its first byte to the sender's end):
//   pod-to-pod: from the pod on h1 to the pod on h2 by pod IP (routed host-gw, no encapsulation: the pod's veth,
//   h1's bridge, the link, h2's bridge, the other pod's veth);
//   ClusterIP: the same, to a ClusterIP Service selecting that pod (h1's nftables DNAT to the pod IP);
//   host-to-host: the same program between the hosts' own namespaces, h1 to h2's address, over the same link.
//   After one warm-up round, R rounds of one transfer each (pod and ClusterIP in alternating order, then host).
//   The rates are medians; each ratio is the median over rounds of the two rates of one round (pod over host,
//   ClusterIP over pod), which share the machine's load of the moment. Goals: both ratios >= 0.95.
// The lab's link is a veth pair through a bridge, with no speed of its own: left alone, every path is bound by
// the CPU (sender, receiver and the kernel's forwarding share the machine's cores), and the ratios measure the
// pod path's extra CPU per byte (two more veth pairs and bridges, netfilter). --link-mbit N (default 1000, 0 for
// none) shapes each host's eth0 to N Mbit/s with a token bucket, as a LAN's link is, and the ratios then measure
// what the pod network and the ClusterIP cost on that link.
// Service create to first request (serviceCreateToFirstRequestMs, goal <= 1000 ms): a prober in the h1 pod's
// network namespace POSTs a new Service selecting the already running pod on h2 and then opens a new connection
// to its ClusterIP every 5 ms until one gets an HTTP answer; the time runs from the POST leaving (the TLS
// connection to the server is up) to that answer. Median of --services S Services.
// Ready to rotation (readyToRotationMs, goal <= 1000 ms): a Service with one Ready backend on h2; a new backend
// pod on h2 (readinessProbe) is created while the prober polls the ClusterIP every 5 ms until the new pod's
// name answers; the time runs from the pod's Ready condition's lastTransitionTime (stamped by h2's agent when it
// saw the pod Ready; the lab's hosts share one clock) to that answer. Median of --backends B pods, each
// deleted before the next.
// Where those times go (…BreakdownMs, medians of each part over the samples, so they need not add up), by the
// last sync of h1's service proxy that started before the answer (its "service rules synced" debug log record:
// its end as the agent saw it, and its duration): toSync, from the start to that sync's start (h2's agent
// reporting the pod's status, the servers' commit, the endpoints controller's EndpointSlice, the watch to h1's
// agent, its 20 ms coalescing, and any sync still running then); syncToAnswer, from the sync's start to the answer
// (compiling the ruleset, `nft -f` committing it, the prober's next 5 ms step; with two Ready backends a new
// connection reaches the new one half the time); sync, its duration as the agent saw it, which can end after the
// answer (nft's exit is noticed late on a loaded machine); syncs, how many of h1's syncs started in between.
// Keys left null here are filled by the benches of their own: clusterIpAddedP50Us, nftFullSync5000Ms and
// nftOneChangeMs by bench/nft-sync.ts (its addedP50Us, fullSyncMs, changeSyncMs), dnsQps and dnsRssMiB by
// bench/dns.ts.
// Usage: node dist/bench/network.js [--mib N] [--runs R] [--link-mbit M] [--services S] [--backends B]
//   (defaults 256 MiB, 7 runs, 1000 Mbit/s, 5 Services, 5 backends)
import type { Pod } from '../api-types/index.js';
import { podCondition } from '../server/controllers/cluster-objects.js';
import type { Lab } from '../test/lab/lab.js';
import { BOUND_MS, PodNetworkLab, type PodView } from '../test/lab/pod-network-lab.js';
import { median } from '../test/lab/lab-api.js';
import { eventually } from '../test/support/eventually.js';
import { numberArg } from './args.js';

const mib = numberArg('--mib', 256);
const linkMbit = numberArg('--link-mbit', 1000, 0);
const runs = numberArg('--runs', 7);
const serviceSamples = numberArg('--services', 5);
const backendSamples = numberArg('--backends', 5);
const SUBNET = '10.85.0';
const round = (x: number, places: number) => Math.round(x * 10 ** places) / 10 ** places;
/** The port of every transfer: the receiver pod's, the Service's (port = targetPort) and h2's own. */
const BULK_PORT = 5201;

const RECEIVER = `const [host, port] = process.argv.slice(1);
let bytes = 0; let first = 0;
require('node:net').createServer((s) => {
  s.on('data', (d) => { if (!first) first = performance.now(); bytes += d.length; });
  s.on('end', () => { console.log('rate ' + (bytes / 1048576 / ((performance.now() - first) / 1000))); process.exit(0); });
}).listen(Number(port), host, () => console.log('listening'));`;
const SENDER = `const [host, port, mib] = process.argv.slice(1);
const chunk = Buffer.alloc(1048576, 7); let left = Number(mib);
const s = require('node:net').connect(Number(port), host, function pump() {
  while (left > 0) { left--; if (!s.write(chunk)) return s.once('drain', pump); }
  s.end();
});`;
// The prober, in the client pod's network namespace:
//   answer ADDRESS PORT NAME: prints "polling", then "answered <Date.now()>" once NAME answers at ADDRESS:PORT;
//   create URL CA SERVICE-JSON NAME: POSTs the Service (bearer token in FLOTILLA_TOKEN), then polls its
//     ClusterIP's first port until NAME answers; prints "answered {sentAt, postMs, firstMs}": when the POST left
//     (Date.now()), and the POST's answer and the first request's, in ms after that.
// Polling opens a new connection every 5 ms (at most 32 open, each given 1 s): a connection's first packet is
// the one the nftables DNAT decides on, so retrying on one connection would miss rules installed meanwhile.
// It gives up after 60 s ("gave up", exit 1).
const PROBER = `const [mode, ...args] = process.argv.slice(1);
const net = require('node:net');
setTimeout(() => { console.log('gave up'); process.exit(1); }, 60000);
function poll(address, port, name) {
  return new Promise((resolve) => {
    let open = 0; let done = false;
    const attempt = () => {
      if (done || open >= 32) return;
      open++;
      let data = '';
      const s = net.connect({ host: address, port: Number(port) });
      s.setTimeout(1000, () => s.destroy());
      s.on('connect', () => s.write('GET / HTTP/1.0\\r\\n\\r\\n'));
      s.on('data', (d) => { data += d; });
      s.on('end', () => {
        if (done || !data.startsWith('HTTP/1.') || data.slice(data.indexOf('\\r\\n\\r\\n') + 4).trim() !== name) return;
        done = true; clearInterval(timer); resolve(Date.now());
      });
      s.on('error', () => {});
      s.on('close', () => { open--; });
    };
    const timer = setInterval(attempt, 5);
    attempt();
  });
}
if (mode === 'answer') {
  console.log('polling');
  poll(args[0], args[1], args[2]).then((at) => { console.log('answered ' + at); process.exit(0); });
} else {
  const [url, ca, service, name] = args;
  let sent = 0; let sentAt = 0;
  const req = require('node:https').request(url + '/api/v1/namespaces/default/services', {
    method: 'POST', ca: require('node:fs').readFileSync(ca),
    headers: { authorization: 'Bearer ' + process.env.FLOTILLA_TOKEN, 'content-type': 'application/json' },
  }, (res) => {
    let text = '';
    res.on('data', (d) => { text += d; });
    res.on('end', () => {
      const postMs = performance.now() - sent;
      if (res.statusCode !== 201) { console.log('refused ' + res.statusCode + ' ' + text); process.exit(1); }
      const spec = JSON.parse(text).spec;
      poll(spec.clusterIP, spec.ports[0].port, name).then(() => {
        console.log('answered ' + JSON.stringify({ sentAt, postMs, firstMs: performance.now() - sent }));
        process.exit(0);
      });
    });
  });
  req.on('socket', (s) => s.once('secureConnect', () => { sent = performance.now(); sentAt = Date.now(); }));
  req.end(service);
}`;

/** MiB/s of one transfer of `mib` MiB from h1 to `address` on h2 where the receiver listens on `listen`, each side's program behind its prefix (nsenter ...). */
async function transfer(lab: Lab, receiverPrefix: string[], senderPrefix: string[], listen: string, address: string): Promise<number> {
  const [rcmd, ...rargs] = [...receiverPrefix, process.execPath, '-e', RECEIVER, listen, String(BULK_PORT)];
  const receiving = lab.spawn(2, rcmd!, rargs);
  await receiving.waitFor(/listening/, 30_000);
  const [scmd, ...sargs] = [...senderPrefix, process.execPath, '-e', SENDER, address, String(BULK_PORT), String(mib)];
  const sent = await lab.exec(1, scmd!, sargs, { timeoutMs: 120_000 });
  if (sent.code !== 0) throw new Error(`sender: ${sent.stderr}`);
  const output = await receiving.waitFor(/rate [\d.]+/, 120_000);
  await receiving.exited(); // the next receiver listens on the same port
  return Number(/rate ([\d.]+)/.exec(output)![1]);
}

/** A pod on `node` labelled app=`app` whose busybox httpd answers GET / on :8080 with the pod's name (its hostname); Ready once that answers. */
function namedServer(name: string, node: string, app: string) {
  return {
    apiVersion: 'v1', kind: 'Pod', metadata: { name, labels: { app } },
    spec: {
      nodeName: node, terminationGracePeriodSeconds: 0,
      containers: [{
        name: 'c', image: 'flotilla/testbox:latest', ports: [{ name: 'http', containerPort: 8080 }],
        command: ['sh', '-c', 'mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 0.0.0.0:8080 -h /www'],
        readinessProbe: { httpGet: { path: '/', port: 8080 }, periodSeconds: 1 },
      }],
    },
  };
}

/** A ClusterIP Service selecting app=`app`, port 80 to the pods' http port, and `extra` ports (port = targetPort). */
function service(name: string, app: string, extra: number[] = []) {
  return {
    apiVersion: 'v1', kind: 'Service', metadata: { name },
    spec: {
      selector: { app },
      ports: [{ name: 'http', port: 80, targetPort: 'http' }, ...extra.map((port) => ({ name: `tcp-${port}`, port, targetPort: port }))],
    },
  };
}

const cluster = await PodNetworkLab.start({ hosts: 2, prefix: `fl-bn${process.pid % 100000}`, subnet: SUBNET });
try {
  if (linkMbit > 0) {
    for (const h of [1, 2]) {
      const shaped = await cluster.lab.exec(h, 'tc', ['qdisc', 'add', 'dev', 'eth0', 'root', 'tbf', 'rate', `${linkMbit}mbit`, 'burst', '1mb', 'latency', '50ms']);
      if (shaped.code !== 0) throw new Error(`tc on h${h}: ${shaped.stderr}`);
    }
  }
  await cluster.startAgent(1, 'bench-a');
  await cluster.startAgent(2, 'bench-b');
  await Promise.all([cluster.podCidr('bench-a'), cluster.podCidr('bench-b')]);

  /** The pod `name` once Ready, with the moment its Ready condition says it turned so (epoch ms). */
  const readyPod = (name: string) => eventually(`pod ${name} Ready`, async () => {
    const r = await cluster.api('GET', `/api/v1/namespaces/default/pods/${name}`);
    const ready = r.code === 200 ? podCondition(r.json as unknown as Pod, 'Ready') : undefined;
    return ready?.status === 'True' ? { pod: r.json as unknown as PodView, readySince: Date.parse(ready.lastTransitionTime!) } : undefined;
  }, { limitMs: BOUND_MS, everyMs: 100 });
  const netnsOf = async (host: number, pod: PodView) => {
    const ps = await cluster.lab.docker(host, ['ps', '-q', '--filter', `label=io.flotilla.pod=${pod.metadata.name}`, '--filter', 'label=io.flotilla.container=POD']);
    const pid = (await cluster.lab.docker(host, ['inspect', '-f', '{{.State.Pid}}', ps.stdout.trim()])).stdout.trim();
    return `--net=/proc/${pid}/ns/net`;
  };

  await Promise.all([
    cluster.create(namedServer('receiver', 'bench-b', 'bench-receiver')),
    cluster.create(namedServer('rotation-0', 'bench-b', 'bench-rotation')),
    cluster.create(service('bench-bulk', 'bench-receiver', [BULK_PORT])),
    cluster.create(service('bench-rotation', 'bench-rotation')),
  ]);
  const [sender, { pod: receiver }] = await Promise.all([cluster.runPod('sender', 'bench-a', ['sleep', '3600']), readyPod('receiver'), readyPod('rotation-0')]);
  const [senderNs, receiverNs] = await Promise.all([netnsOf(1, sender), netnsOf(2, receiver)]);
  const clusterIpOf = async (name: string) => ((await cluster.api('GET', `/api/v1/namespaces/default/services/${name}`)).json.spec as { clusterIP: string }).clusterIP;
  const [bulkIp, rotationIp] = await Promise.all([clusterIpOf('bench-bulk'), clusterIpOf('bench-rotation')]);

  /** Runs the prober in the sender pod's network namespace on h1; resolves with what follows "answered ". */
  const probe = async (args: string[], started?: () => Promise<void>): Promise<string> => {
    const prober = cluster.lab.spawn(1, 'nsenter', [senderNs, process.execPath, '-e', PROBER, ...args], { env: { ...process.env, FLOTILLA_TOKEN: cluster.adminToken } });
    if (started) {
      await prober.waitFor(/^polling$/m, 30_000);
      await started();
    }
    return /^answered (.+)$/m.exec(await prober.waitFor(/^answered .+$/m, 70_000))![1]!;
  };
  // Both Services answer from h1's pod before anything is timed through them.
  await probe(['answer', bulkIp, '80', 'receiver']);
  await probe(['answer', rotationIp, '80', 'rotation-0']);

  const podRates: number[] = [];
  const clusterIpRates: number[] = [];
  const hostRates: number[] = [];
  const direct = () => transfer(cluster.lab, ['nsenter', receiverNs], ['nsenter', senderNs], receiver.status!.podIP!, receiver.status!.podIP!);
  const viaClusterIp = () => transfer(cluster.lab, ['nsenter', receiverNs], ['nsenter', senderNs], receiver.status!.podIP!, bulkIp);
  for (let i = 0; i < runs + 1; i++) {
    let pod: number;
    let clusterIp: number;
    if (i % 2 === 0) {
      pod = await direct();
      clusterIp = await viaClusterIp();
    } else {
      clusterIp = await viaClusterIp();
      pod = await direct();
    }
    const host = await transfer(cluster.lab, [], [], `${SUBNET}.2`, `${SUBNET}.2`);
    if (i === 0) continue; // warm-up
    podRates.push(pod);
    clusterIpRates.push(clusterIp);
    hostRates.push(host);
    console.log(`run ${i}: pod-to-pod ${pod.toFixed(1)} MiB/s, ClusterIP ${clusterIp.toFixed(1)} MiB/s, host-to-host ${host.toFixed(1)} MiB/s`);
  }

  /** h1's syncs of the service rules that reached the kernel: when each started (epoch ms) and how long it took. */
  const h1Syncs = () => cluster.agents.get('bench-a')!.output().split('\n').flatMap((line) => {
    if (!line.includes('"service rules synced"')) return [];
    const record = JSON.parse(line) as { time: number; ms: number };
    return [{ start: record.time - record.ms, ms: record.ms }];
  });
  type Breakdown = { toSyncMs: number; syncToAnswerMs: number; syncMs: number; syncs: number };
  /** Where the time from `from` to `answeredAt` (epoch ms) went, by the last of h1's syncs that started in between. */
  const breakdown = (from: number, answeredAt: number): Breakdown => {
    const syncs = h1Syncs().filter((s) => s.start >= from && s.start <= answeredAt);
    const last = syncs.at(-1);
    if (!last) throw new Error(`no sync of h1's service rules started between ${new Date(from).toISOString()} and the answer ${answeredAt - from} ms later`);
    return { toSyncMs: last.start - from, syncToAnswerMs: answeredAt - last.start, syncMs: last.ms, syncs: syncs.length };
  };
  const medians = (parts: Breakdown[]) => ({
    toSyncMs: median(parts.map((p) => p.toSyncMs)), syncToAnswerMs: median(parts.map((p) => p.syncToAnswerMs)),
    syncMs: median(parts.map((p) => p.syncMs)), syncs: median(parts.map((p) => p.syncs)),
  });
  const describe = (b: Breakdown) => `h1's sync started after ${b.toSyncMs} ms, answer ${b.syncToAnswerMs} ms after its start (the sync took ${b.syncMs} ms as the agent saw it; syncs in between: ${b.syncs})`;

  /** One timed sample: from what moment to the answer (epoch ms), and what it is (a line of the log). */
  type Sample = { from: number; answeredAt: number; what: string };
  const created: Sample[] = [];
  for (let i = 0; i < serviceSamples; i++) {
    const answered = JSON.parse(await probe(['create', cluster.url, cluster.caFile, JSON.stringify(service(`bench-new-${i}`, 'bench-receiver')), 'receiver'])) as { sentAt: number; postMs: number; firstMs: number };
    created.push({ from: answered.sentAt, answeredAt: answered.sentAt + Math.round(answered.firstMs), what: `service ${i}: POST answered after ${Math.round(answered.postMs)} ms` });
  }

  const rotated: Sample[] = [];
  for (let i = 1; i <= backendSamples; i++) {
    const name = `rotation-${i}`;
    const answeredAt = Number(await probe(['answer', rotationIp, '80', name], async () => { await cluster.create(namedServer(name, 'bench-b', 'bench-rotation')); }));
    const { readySince } = await readyPod(name);
    rotated.push({ from: readySince, answeredAt, what: `backend ${i}: Ready at ${new Date(readySince).toISOString()}` });
    const deleted = await cluster.api('DELETE', `/api/v1/namespaces/default/pods/${name}`);
    if (deleted.code !== 200) throw new Error(`delete pod ${name}: ${deleted.code} ${JSON.stringify(deleted.json)}`);
    await cluster.waitEndpoints('default', 'bench-rotation', 1);
  }
  // Broken down only now: h1's agent logs a sync when it sees nft exit, which can be after the answer; the record
  // has arrived long before the samples end (each is followed by several API calls, the last by a pod's deletion).
  const report = (samples: Sample[]) => samples.map((s) => {
    const parts = breakdown(s.from, s.answeredAt);
    console.log(`${s.what}, answering through the ClusterIP ${s.answeredAt - s.from} ms after: ${describe(parts)}`);
    return parts;
  });
  const createParts = report(created);
  const rotationParts = report(rotated);

  console.log(JSON.stringify({
    bench: 'network', mib, runs, linkMbit: linkMbit || null, services: serviceSamples, backends: backendSamples,
    podToPodMiBps: round(median(podRates), 1),
    clusterIpMiBps: round(median(clusterIpRates), 1),
    hostToHostMiBps: round(median(hostRates), 1),
    podToPodThroughputRatio: round(median(podRates.map((p, i) => p / hostRates[i]!)), 3),
    clusterIpThroughputRatio: round(median(clusterIpRates.map((c, i) => c / podRates[i]!)), 3),
    serviceCreateToFirstRequestMs: Math.round(median(created.map((s) => s.answeredAt - s.from))),
    readyToRotationMs: Math.round(median(rotated.map((s) => s.answeredAt - s.from))),
    serviceCreateBreakdownMs: medians(createParts), readyToRotationBreakdownMs: medians(rotationParts),
    clusterIpAddedP50Us: null, nftFullSync5000Ms: null, nftOneChangeMs: null, dnsQps: null, dnsRssMiB: null,
    goals: { podToPodThroughputRatio: 0.95, clusterIpThroughputRatio: 0.95, serviceCreateToFirstRequestMs: 1000, readyToRotationMs: 1000 },
  }));
} finally {
  await cluster.destroy();
}
