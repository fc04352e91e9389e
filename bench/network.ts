// Pod network throughput across machines, on the multi-host lab (test/lab: network namespaces on one switch, one
// dockerd per host, real `flotilla agent`s with the pod network on; needs root):
//   pod-to-pod: from the network namespace of a pod on h1 to a pod on h2 by pod IP (routed host-gw, no
//   encapsulation: the pod's veth, h1's bridge, the link, h2's bridge, the other pod's veth);
//   host-to-host: the same program between the hosts' own namespaces, h1 to h2's address, over the same link.
// The program is a small node TCP sender and receiver run with nsenter in the pod's network namespace (busybox
// nc of the test image closes early or crawls with a pipe on stdin); the receiver times from its first byte to
// the sender's end. Samples alternate pod and host runs after one warm-up pair; the rates are medians, the ratio is
// the median of each pod run over the host run right after it.
// The lab's link is a veth pair through a bridge, with no speed of its own: left alone, every path is bound by
// the CPU (sender, receiver and the kernel's forwarding share the machine's cores), and the ratio measures the
// pod path's extra CPU per byte (two more veth pairs and bridges, netfilter). --link-mbit N (default 1000, 0 for
// none) shapes each host's eth0 to N Mbit/s with a token bucket, as a LAN's link is, and the ratio then measures
// what the pod network costs on that link. Goal: podToPodThroughputRatio >= 0.95.
// Keys left null here are the Service and DNS figures that bench files of the Service proxy and DNS fill in
// (same key names in their JSON lines).
// Usage: node dist/bench/network.js [--mib N] [--runs R] [--link-mbit M]   (defaults 256 MiB, 7 runs, 1000 Mbit/s)
import type { Lab } from '../test/lab/lab.js';
import { PodNetworkLab, type PodView } from '../test/lab/pod-network-lab.js';
import { median } from '../test/lab/lab-api.js';

function numberArg(name: string, fallback: number, min = 1): number {
  const i = process.argv.indexOf(name);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!(Number.isInteger(v) && v >= min)) throw new Error(`${name} wants an integer >= ${min}, got ${process.argv[i + 1]}`);
  return v;
}
const mib = numberArg('--mib', 256);
const linkMbit = numberArg('--link-mbit', 1000, 0);
const runs = numberArg('--runs', 7);
const SUBNET = '10.85.0';

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

/** MiB/s of one transfer of `mib` MiB from h1 to `address` on h2, each side's program behind its prefix (nsenter ...). */
async function transfer(lab: Lab, receiverPrefix: string[], senderPrefix: string[], address: string, port: number): Promise<number> {
  const [rcmd, ...rargs] = [...receiverPrefix, process.execPath, '-e', RECEIVER, address, String(port)];
  const receiving = lab.spawn(2, rcmd!, rargs);
  await receiving.waitFor(/listening/, 30_000);
  const [scmd, ...sargs] = [...senderPrefix, process.execPath, '-e', SENDER, address, String(port), String(mib)];
  const sent = await lab.exec(1, scmd!, sargs, { timeoutMs: 120_000 });
  if (sent.code !== 0) throw new Error(`sender: ${sent.stderr}`);
  const output = await receiving.waitFor(/rate [\d.]+/, 120_000);
  return Number(/rate ([\d.]+)/.exec(output)![1]);
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
  const idle = ['sleep', '3600'];
  const [sender, receiver] = await Promise.all([cluster.runPod('sender', 'bench-a', idle), cluster.runPod('receiver', 'bench-b', idle)]);
  const netnsOf = async (host: number, pod: PodView) => {
    const ps = await cluster.lab.docker(host, ['ps', '-q', '--filter', `label=io.flotilla.pod=${pod.metadata.name}`, '--filter', 'label=io.flotilla.container=POD']);
    const pid = (await cluster.lab.docker(host, ['inspect', '-f', '{{.State.Pid}}', ps.stdout.trim()])).stdout.trim();
    return `--net=/proc/${pid}/ns/net`;
  };
  const [senderNs, receiverNs] = await Promise.all([netnsOf(1, sender), netnsOf(2, receiver)]);

  const podRates: number[] = [];
  const hostRates: number[] = [];
  for (let i = 0; i < runs + 1; i++) {
    const port = 5000 + i;
    const pod = await transfer(cluster.lab, ['nsenter', receiverNs], ['nsenter', senderNs], receiver.status!.podIP!, port);
    const host = await transfer(cluster.lab, [], [], `${SUBNET}.2`, port + 100);
    if (i === 0) continue; // warm-up
    podRates.push(pod);
    hostRates.push(host);
    console.log(`run ${i}: pod-to-pod ${pod.toFixed(1)} MiB/s, host-to-host ${host.toFixed(1)} MiB/s`);
  }
  const pod = median(podRates);
  const host = median(hostRates);
  // Each pod run and the host run right after it share the machine's load of the moment: their ratio is the figure.
  const ratio = median(podRates.map((p, i) => p / hostRates[i]!));
  console.log(JSON.stringify({
    bench: 'network', mib, runs, linkMbit: linkMbit || null,
    podToPodMiBps: Math.round(pod * 10) / 10,
    hostToHostMiBps: Math.round(host * 10) / 10,
    podToPodThroughputRatio: Math.round(ratio * 1000) / 1000,
    clusterIpThroughputRatio: null, clusterIpAddedP50Us: null, serviceCreateToFirstRequestMs: null, readyToRotationMs: null,
    nftFullSync5000Ms: null, nftOneChangeMs: null, dnsQps: null, dnsRssMiB: null,
  }));
} finally {
  await cluster.destroy();
}

