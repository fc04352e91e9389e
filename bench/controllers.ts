// Controllers at fleet scale, end to end: a real `flotilla server` process and one real agent process running
// NODES hollow nodes (`flotilla agent --simulate NODES`). A Deployment (binpack, small requests) is scaled from
// 0 to REPLICAS: seconds and pods/s until every pod is bound and until every pod is Running and Ready. Then
// failover: one hollow node holding about 100 pods is stopped (control file + SIGUSR2), and the figure is the
// seconds until all REPLICAS are ready again with none on it. It runs once per failover setting on a fresh
// cluster: "default" (node grace 15 s, eviction delay 30 s) and "short" (7 s + 3 s; hollow agents renew their
// lease every 5 s, so the grace period must stay above that).
// Usage: node dist/bench/controllers.js [--nodes 100] [--replicas 3000] [--settings default,short]
// Needs the build of this file (it spawns the CLI of the same build). The last line is one JSON object.
import { performance } from 'node:perf_hooks';
import { E2eCluster, deployment, isReady, type PodView } from '../test/e2e/cluster.js';

const SETTINGS = { default: { graceS: 15, delayS: 30 }, short: { graceS: 7, delayS: 3 } } as const;
type SettingName = keyof typeof SETTINGS;

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] ?? '' : fallback;
}
const nodes = Number(option('nodes', '100'));
const replicas = Number(option('replicas', '3000'));
const settings = option('settings', 'default,short').split(',');
if (!Number.isInteger(nodes) || nodes < 2 || !Number.isInteger(replicas) || replicas < 1 || !settings.every((s): s is SettingName => s in SETTINGS)) {
  console.error('usage: controllers.js [--nodes N >= 2] [--replicas R >= 1] [--settings default,short]');
  process.exit(2);
}

/** Live (not terminating) pods of the watched Deployment by name, kept current by one watch stream. */
class PodTally {
  readonly pods = new Map<string, PodView>();
  readonly #stop = new AbortController();
  #waiters: Array<() => void> = [];
  #done: Promise<void> | undefined;

  constructor(private readonly cluster: E2eCluster, private readonly selector: string) {}

  async start(): Promise<void> {
    const list = await this.cluster.client.request<{ metadata: { resourceVersion: string }; items: PodView[] }>('GET', `/api/v1/namespaces/default/pods?labelSelector=${encodeURIComponent(this.selector)}`);
    for (const p of list.items) this.#put(p);
    this.#done = this.cluster.client.watch<PodView>(`/api/v1/namespaces/default/pods?watch=true&resourceVersion=${list.metadata.resourceVersion}&labelSelector=${encodeURIComponent(this.selector)}`, (e) => {
      if (e.type === 'DELETED') this.pods.delete(e.object.metadata.name);
      else if (e.type === 'ADDED' || e.type === 'MODIFIED') this.#put(e.object);
      else return;
      for (const wake of this.#waiters.splice(0)) wake();
    }, this.#stop.signal).catch((err: unknown) => { if (!this.#stop.signal.aborted) throw err; });
  }

  /** Resolves when `cond` holds after some event; fails after limitMs naming `what`. */
  async until(what: string, cond: () => boolean, limitMs: number): Promise<void> {
    const deadline = Date.now() + limitMs;
    while (!cond()) {
      if (Date.now() > deadline) throw new Error(`gave up after ${limitMs} ms waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 1000);
        this.#waiters.push(() => { clearTimeout(timer); resolve(); });
      });
    }
  }

  count(pred: (p: PodView) => boolean): number {
    let n = 0;
    for (const p of this.pods.values()) if (pred(p)) n++;
    return n;
  }

  async stop(): Promise<void> {
    this.#stop.abort();
    await this.#done;
  }

  #put(p: PodView): void {
    if (p.metadata.deletionTimestamp) this.pods.delete(p.metadata.name);
    else this.pods.set(p.metadata.name, p);
  }
}

async function runOnce(setting: SettingName): Promise<Record<string, number | string>> {
  const { graceS, delayS } = SETTINGS[setting];
  const cluster = new E2eCluster({ serverArgs: ['--node-grace-period', `${graceS}s`, '--pod-eviction-delay', `${delayS}s`] });
  await cluster.start();
  try {
    const agent = await cluster.addAgent('bench', nodes);
    await cluster.client.request('POST', '/apis/apps/v1/namespaces/default/deployments',
      deployment('bench', 0, 'app:1', { placement: 'binpack', requests: { cpu: '10m', memory: '16Mi' } }));
    const tally = new PodTally(cluster, 'app=bench');
    await tally.start();
    try {
      const t0 = performance.now();
      await cluster.client.request('PATCH', '/apis/apps/v1/namespaces/default/deployments/bench', { spec: { replicas } }, { contentType: 'application/merge-patch+json' });
      await tally.until(`${replicas} pods bound`, () => tally.count((p) => Boolean(p.spec.nodeName)) === replicas, 600_000);
      const boundS = (performance.now() - t0) / 1000;
      await tally.until(`${replicas} pods ready`, () => tally.count(isReady) === replicas, 600_000);
      const runningS = (performance.now() - t0) / 1000;

      // The node holding the number of pods closest to 100.
      const perNode = new Map<string, number>();
      for (const p of tally.pods.values()) perNode.set(p.spec.nodeName ?? '', (perNode.get(p.spec.nodeName ?? '') ?? 0) + 1);
      const [victim, held] = [...perNode].sort((x, y) => Math.abs(x[1] - 100) - Math.abs(y[1] - 100))[0]!;
      const t1 = performance.now();
      agent.control([`stop ${victim}`]);
      await tally.until(`${replicas} pods ready, none on ${victim}`,
        () => tally.count((p) => isReady(p) && p.spec.nodeName !== victim) === replicas && tally.pods.size === replicas, (graceS + delayS + 300) * 1000);
      const failoverS = (performance.now() - t1) / 1000;
      const r = (n: number) => Math.round(n * 100) / 100;
      return {
        setting, graceS, delayS, boundS: r(boundS), runningS: r(runningS),
        bindPodsPerS: Math.round(replicas / boundS), runningPodsPerS: Math.round(replicas / runningS),
        failoverPods: held, failoverS: r(failoverS), failoverBeyondGraceAndDelayS: r(failoverS - graceS - delayS),
      };
    } finally {
      await tally.stop();
    }
  } finally {
    await cluster.stop();
  }
}

const runs: Record<string, Record<string, number | string>> = {};
for (const s of settings as SettingName[]) {
  runs[s] = await runOnce(s);
  console.error(JSON.stringify(runs[s]));
}
console.log(JSON.stringify({ bench: 'controllers', nodes, replicas, runs }));
