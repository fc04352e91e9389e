// Images without a registry, on the multi-host lab (test/lab: network namespaces on one switch, one dockerd per
// host, real `flotilla agent`s; needs root). The image: one layer of --mb MB of random bytes (`docker import` on
// the machine's engine), which no compression or shared layer makes cheaper.
//   loadAll: `flotilla image load IMAGE --all` from h1 to the three nodes, timed end to end by the CLI's own exit:
//     the local `docker save` to a file with its digest, the three uploads through the server on h1 to the agents
//     (each writes the archive to a file while hashing it, then `docker load`s it), all three loaded.
//   loadOne: the same to n2 alone (`--node n2`), the like of saveLoad for one machine.
//   saveLoad: `docker save IMAGE | docker load` from the machine's engine into h1's engine, timed the same way:
//     what moving the image to one machine by hand costs.
//   peerFetch: a pod bound to n2 while only n1 holds the image (listed in n1's status.images): the time n2's
//     agent took to fetch and load it from n1 (its "image fetched from a peer node" log record).
// Where n2's time went (…AgentMs, medians): receive, from the request's start to the archive's last byte written
// (the sender's save included, as it streams), and load, the `docker load` of the file after it.
// MB/s are the image's MB over those times (loadAll: to all three nodes at once). Each round removes the image from
// every lab engine first; the figures are medians over --runs rounds, and ratio is the median over rounds of
// loadAll's MB/s over saveLoad's MB/s in the same round (goal >= 0.8), ratioOne the same for loadOne. The lab
// shares the machine's cores: the three agents and their engines load at once on them, where three machines
// would each load their own copy.
// Usage: node dist/bench/image-load.js [--mb N] [--runs R]   (defaults 100 MB, 3 runs)
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BOUND_MS, PodNetworkLab } from '../test/lab/pod-network-lab.js';
import { median } from '../test/lab/lab-api.js';
import { eventually } from '../test/support/eventually.js';
import { numberArg } from './args.js';

const mb = numberArg('--mb', 100);
const runs = numberArg('--runs', 3);
const IMAGE = `flotilla/bench-image:${process.pid}`;
const NODES = ['n1', 'n2', 'n3'];
const round = (x: number, places: number) => Math.round(x * 10 ** places) / 10 ** places;

function sh(script: string): void {
  const r = spawnSync('sh', ['-c', script], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${script}: ${r.stderr}`);
}

const work = mkdtempSync(join(tmpdir(), 'fl-ib-'));
let cluster: PodNetworkLab | undefined;
try {
  sh(`head -c ${mb * 1_000_000} /dev/urandom > ${work}/blob && tar -C ${work} -cf - blob | docker import - ${IMAGE} >/dev/null && rm ${work}/blob`);
  const imageBytes = Number(spawnSync('docker', ['image', 'inspect', '--format', '{{.Size}}', IMAGE], { encoding: 'utf8' }).stdout.trim());
  const imageMB = imageBytes / 1e6;
  const lab = cluster = await PodNetworkLab.start({ hosts: 3, prefix: 'fl-ib', subnet: '10.88.0' });
  await Promise.all(NODES.map((n, i) => lab.startAgent(i + 1, n)));
  const h1 = lab.lab.host(1);
  const timed = async (what: string, run: () => Promise<{ code: number | null; stderr: string }>): Promise<number> => {
    const started = performance.now();
    const r = await run();
    if (r.code !== 0) throw new Error(`${what}: exit ${r.code}: ${r.stderr}`);
    return (performance.now() - started) / 1000;
  };
  const removeEverywhere = async () => {
    for (const h of [1, 2, 3]) await lab.lab.docker(h, ['rmi', IMAGE]);
  };
  const records = (msg: string) => lab.agents.get('n2')!.output().split('\n').filter((l) => l.includes(`"${msg}"`))
    .map((l) => JSON.parse(l) as { ms: number; receiveMs: number; loadMs: number });
  const fetchRecords = () => records('image fetched from a peer node');
  const rounds: { loadAllS: number; loadOneS: number; saveLoadS: number; peerFetchMs: number; one: { receiveMs: number; loadMs: number }; fetch: { receiveMs: number; loadMs: number } }[] = [];
  for (let r = 0; r < runs; r++) {
    await removeEverywhere();
    const loadAllS = await timed('flotilla image load --all', () => lab.cli(1, ['image', 'load', IMAGE, '--all'], 600_000));
    await lab.lab.docker(2, ['rmi', IMAGE]);
    const loadOneS = await timed('flotilla image load --node n2', () => lab.cli(1, ['image', 'load', IMAGE, '--node', 'n2'], 600_000));
    await lab.lab.docker(1, ['rmi', IMAGE]);
    const saveLoadS = await timed('docker save | docker load', () => lab.lab.exec(1, 'sh', ['-c', `docker save ${IMAGE} | DOCKER_HOST=${h1.dockerHost} docker load`], { timeoutMs: 600_000 }));
    // Only n1 holds the image now (h1's engine has it from the save | load): a pod on n2 fetches it from there.
    await lab.lab.docker(2, ['rmi', IMAGE]);
    await lab.lab.docker(3, ['rmi', IMAGE]);
    const before = fetchRecords().length;
    const pod = `fetch-${r}`;
    await lab.create({ apiVersion: 'v1', kind: 'Pod', metadata: { name: pod }, spec: { nodeName: 'n2', terminationGracePeriodSeconds: 0, containers: [{ name: 'c', image: IMAGE, command: ['/blob'] }] } });
    const record = await eventually(`n2 fetched the image for pod ${pod}`, async () => {
      await lab.advertiseImage('n1', IMAGE, imageBytes);
      return fetchRecords()[before];
    }, { limitMs: BOUND_MS, everyMs: 200 });
    await lab.api('DELETE', `/api/v1/namespaces/default/pods/${pod}`, { gracePeriodSeconds: 0 });
    await eventually(`pod ${pod} and its containers gone`, async () => {
      const ps = await lab.lab.docker(2, ['ps', '-aq', '--filter', `label=io.flotilla.pod=${pod}`]);
      return (await lab.api('GET', `/api/v1/namespaces/default/pods/${pod}`)).code === 404 && ps.code === 0 && ps.stdout.trim() === '';
    }, { limitMs: BOUND_MS, everyMs: 200 });
    const one = records('image archive loaded').at(-1)!;
    rounds.push({ loadAllS, loadOneS, saveLoadS, peerFetchMs: record.ms, one, fetch: record });
    console.error(`round ${r + 1}/${runs}: load --all ${loadAllS.toFixed(2)} s, load --node ${loadOneS.toFixed(2)} s, save | load ${saveLoadS.toFixed(2)} s, peer fetch ${record.ms} ms`);
  }
  const loadAllS = median(rounds.map((x) => x.loadAllS));
  const saveLoadS = median(rounds.map((x) => x.saveLoadS));
  const loadOneS = median(rounds.map((x) => x.loadOneS));
  const peerFetchMs = median(rounds.map((x) => x.peerFetchMs));
  console.log(JSON.stringify({
    bench: 'image-load', imageMB: round(imageMB, 1), nodes: NODES.length, runs,
    loadAllSeconds: round(loadAllS, 2), loadAllMBps: round(imageMB / loadAllS, 1),
    loadOneSeconds: round(loadOneS, 2), loadOneMBps: round(imageMB / loadOneS, 1),
    saveLoadSeconds: round(saveLoadS, 2), saveLoadMBps: round(imageMB / saveLoadS, 1),
    ratio: round(median(rounds.map((x) => x.saveLoadS / x.loadAllS)), 2), ratioOne: round(median(rounds.map((x) => x.saveLoadS / x.loadOneS)), 2), goal: 0.8,
    peerFetchMs: round(peerFetchMs, 0), peerFetchMBps: round(imageMB / (peerFetchMs / 1000), 1),
    loadOneAgentMs: { receive: median(rounds.map((x) => x.one.receiveMs)), load: median(rounds.map((x) => x.one.loadMs)) },
    peerFetchAgentMs: { receive: median(rounds.map((x) => x.fetch.receiveMs)), load: median(rounds.map((x) => x.fetch.loadMs)) },
  }));
} finally {
  await cluster?.destroy();
  spawnSync('docker', ['rmi', '-f', IMAGE]);
  rmSync(work, { recursive: true, force: true });
}
