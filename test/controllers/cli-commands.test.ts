// The rollout, cordon/uncordon/drain and top command modules against the in-process API on a loopback port,
// with the controllers of a simulated cluster acting on what they do.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rejects } from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import type { CronJob, Deployment, Event, Job, Node, Pod } from '../../api-types/index.js';
import { createApp } from '../../server/api/app.js';
import { identity, MASTERS_GROUP, staticTokens } from '../../server/api/middleware/auth.js';
import { parseArgs } from '../../cli/args.js';
import type { Io } from '../../cli/command.js';
import { rolloutCommand, undoTarget } from '../../cli/rollout.js';
import type { CliCommand } from '../../cli/command.js';
import { cordonCommand, uncordonCommand, drainCommand } from '../../cli/node-commands.js';
import { formatNodeTop, formatPodTop } from '../../cli/top.js';
import { main } from '../../cli/main.js';
import { eventually } from '../support/eventually.js';
import { ClusterSim, R, readyPods, webDeployment } from './cluster-sim.js';

const TOKEN = 'test-token-0123456789abcdef';

type Result = { code: number; out: string; err: string };

async function withApi(fn: (sim: ClusterSim, run: (c: CliCommand, ...argv: string[]) => Promise<Result>, flotilla: (...argv: string[]) => Promise<Result>) => Promise<void>): Promise<void> {
  const sim = await new ClusterSim().start();
  const app = createApp({
    objects: sim.objects, readBarrier: async () => {}, readiness: () => [],
    authenticate: staticTokens({ [TOKEN]: identity('admin', [MASTERS_GROUP]) }),
    version: { flotilla: 'test', gitVersion: 'vtest' },
  });
  const server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => server.once('listening', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const capture = async (go: (io: Io) => Promise<number>): Promise<Result> => {
    let out = '';
    let err = '';
    const io: Io = {
      out: (t) => { out += t; }, err: (t) => { err += t; }, readStdin: () => '', isTty: false,
      env: { FLOTILLA_SERVER: url, FLOTILLA_TOKEN: TOKEN, FLOTILLA_CONFIG: '/nonexistent/flotilla-config' },
    };
    const code = await go(io);
    return { code, out, err };
  };
  const run = (c: CliCommand, ...argv: string[]) => capture((io) => c.run(parseArgs(argv, c.flags), io, new AbortController().signal));
  try {
    await fn(sim, run, (...argv) => capture((io) => main(argv, io)));
  } finally {
    await new Promise<void>((resolve) => { server.close(() => resolve()); (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.(); });
    await sim.stop();
  }
}

const image = (p: Pod) => p.spec.containers[0]!.image;

test('rollout status, history and undo through the API', () => withApi(async (sim, run) => {
  for (const n of ['n1', 'n2']) await sim.addNode(n);
  await sim.objects.create(R('deployments'), 'default', webDeployment('web', 3, 'nginx:1.25'));
  await sim.until(() => (sim.get('deployments', 'web') as unknown as Deployment).status?.readyReplicas === 3);
  const ok = await run(rolloutCommand, 'status', 'deployment/web');
  assert.is(ok.code, 0, ok.err);
  assert.match(ok.out, 'deployment "web" successfully rolled out');

  const d = sim.get('deployments', 'web') as unknown as Deployment;
  await sim.objects.patch(R('deployments'), 'default', 'web', { spec: { template: { spec: { containers: [{ ...d.spec.template.spec.containers[0]!, image: 'nginx:bad' }] } } } });
  await sim.manager.settle();
  const waiting = await run(rolloutCommand, 'status', 'deploy', 'web');
  assert.is(waiting.code, 1);
  assert.match(waiting.out, 'Waiting for deployment "web" rollout to finish');
  await sim.until(() => sim.pods().length === 3 && readyPods(sim.pods(), (p) => image(p) === 'nginx:bad') === 3);

  const history = await run(rolloutCommand, 'history', 'deployment/web');
  assert.match(history.out, /1\s+nginx:1\.25/);
  assert.match(history.out, /2\s+nginx:bad/);
  const undo = await run(rolloutCommand, 'undo', 'deployment/web');
  assert.is(undo.code, 0, undo.err);
  assert.match(undo.out, 'rolled back to revision 1');
  await sim.until(() => sim.pods().length === 3 && readyPods(sim.pods(), (p) => image(p) === 'nginx:1.25') === 3);
  assert.match((await run(rolloutCommand, 'history', 'deployment/web')).out, /3\s+nginx:1\.25/);

  await rejects(() => run(rolloutCommand, 'undo', 'deployment/web', '--to-revision', '9'), /unable to find revision 9/);
  await rejects(() => run(rolloutCommand, 'sideways', 'deployment/web'), /must be one of/);
}));

test('undoTarget picks the newest revision before the current one', () => {
  const rs = (rev: number) => ({ apiVersion: 'apps/v1', kind: 'ReplicaSet', metadata: { name: `r${rev}`, annotations: { 'deployment.kubernetes.io/revision': String(rev) } }, spec: { selector: {} } }) as never;
  assert.is(undoTarget([rs(1), rs(4), rs(3)]).metadata.name, 'r3');
  assert.is(undoTarget([rs(1), rs(4), rs(3)], 1).metadata.name, 'r1');
  assert.throws(() => undoTarget([rs(2)]), /no revision before/);
});

test('cordon, drain (DaemonSet pods stay) and uncordon', () => withApi(async (sim, run) => {
  for (const n of ['n1', 'n2']) await sim.addNode(n);
  await sim.objects.create(R('deployments'), 'default', webDeployment('web', 4, 'nginx:1.25'));
  await sim.objects.create(R('daemonsets'), 'default', {
    metadata: { name: 'agent' },
    spec: { selector: { matchLabels: { app: 'agent' } }, template: { metadata: { labels: { app: 'agent' } }, spec: { containers: [{ name: 'a', image: 'busybox:1.36' }] } } },
  });
  await sim.until(() => readyPods(sim.pods()) === 6);
  const cordon = await run(cordonCommand, 'n1');
  assert.is(cordon.out, 'node/n1 cordoned\n');
  assert.is((sim.get('nodes', 'n1') as unknown as Node).spec?.unschedulable, true);
  assert.is((await run(cordonCommand, 'n1')).out, 'node/n1 already cordoned\n');

  const drain = await run(drainCommand, 'n1');
  assert.is(drain.code, 0, drain.err);
  assert.match(drain.err, 'Ignoring DaemonSet-managed pods');
  assert.match(drain.out, 'node/n1 drained');
  await sim.until(() => readyPods(sim.pods(), (p) => p.metadata.labels?.app === 'web') === 4);
  const onN1 = sim.pods().filter((p) => p.spec.nodeName === 'n1');
  assert.equal(onN1.map((p) => p.metadata.labels?.app), ['agent']);

  assert.is((await run(uncordonCommand, 'n1')).out, 'node/n1 uncordoned\n');
  assert.is((sim.get('nodes', 'n1') as unknown as Node).spec?.unschedulable, undefined);
  await rejects(() => run(drainCommand), /name the node/);
}));

test('delete is graceful and waits until the object is gone; --grace-period, --now, --force, --cascade, --wait=false, --timeout as kubectl', () => withApi(async (sim, _run, flotilla) => {
  await sim.addNode('n1');
  for (const name of ['a', 'b', 'c', 'd', 'e']) {
    await sim.objects.create(R('pods'), 'default', { metadata: { name }, spec: { nodeName: 'n1', terminationGracePeriodSeconds: 30, containers: [{ name: 'c', image: 'busybox:1.36' }] } });
  }
  await sim.step();
  const grace = (name: string) => sim.get('pods', name)?.metadata.deletionGracePeriodSeconds;

  const noWait = await flotilla('delete', 'pod', 'a', '--wait=false');
  assert.equal(noWait, { code: 0, out: 'pod/a deleted\n', err: '' });
  assert.is(grace('a'), 30, 'the pod\'s own grace period');
  await flotilla('delete', 'pod', 'b', '--grace-period=0', '--wait=false');
  assert.is(grace('b'), 1, '--grace-period=0 without --force means 1 second');
  await flotilla('delete', 'pod', 'c', '--now', '--wait=false');
  assert.is(grace('c'), 1);
  const forced = await flotilla('delete', 'pod', 'd', '--force');
  assert.is(forced.code, 0, forced.err);
  assert.is(forced.out, 'pod/d force deleted\n');
  assert.match(forced.err, 'Immediate deletion does not wait for confirmation');
  assert.is(sim.get('pods', 'd'), undefined);

  // By default the command returns once the pod is gone: here when the simulated kubelet removes it.
  let waited: Result | undefined;
  const deleting = flotilla('delete', 'pod', 'e').then((r) => { waited = r; });
  await eventually('delete returned after the pod went', async () => {
    if (waited) return waited;
    await sim.step();
    return undefined;
  });
  await deleting;
  assert.equal(waited, { code: 0, out: 'pod/e deleted\n', err: '' });
  assert.is(sim.get('pods', 'e'), undefined);

  await sim.objects.create(R('configmaps'), 'default', { metadata: { name: 'held', finalizers: ['example.com/keep'] } });
  const late = await flotilla('delete', 'configmap', 'held', '--timeout', '1s');
  assert.is(late.code, 1);
  assert.match(late.err, 'timed out waiting for the condition on configmaps/held');

  await sim.objects.create(R('replicasets'), 'default', {
    metadata: { name: 'keep' },
    spec: { replicas: 2, selector: { matchLabels: { app: 'keep' } }, template: { metadata: { labels: { app: 'keep' } }, spec: { containers: [{ name: 'c', image: 'busybox:1.36' }] } } },
  });
  await sim.until(() => readyPods(sim.pods(), (p) => p.metadata.labels?.app === 'keep') === 2);
  const orphaned = await flotilla('delete', 'replicaset', 'keep', '--cascade=orphan');
  assert.is(orphaned.code, 0, orphaned.err);
  const kept = sim.pods().filter((p) => p.metadata.labels?.app === 'keep');
  assert.ok(kept.length === 2 && kept.every((p) => !p.metadata.ownerReferences && !p.metadata.deletionTimestamp), 'the pods stay, released');

  const badCascade = await flotilla('delete', 'pod', 'x', '--cascade=sideways');
  assert.is(badCascade.code, 2);
  assert.match(badCascade.err, 'invalid cascade value (sideways). Must be "background", "foreground", or "orphan".');
  assert.is((await flotilla('delete', 'pod', 'x', '--now', '--grace-period', '5')).code, 2);
  assert.is((await flotilla('delete', 'pod', 'x', '--grace-period', 'soon')).code, 2);
}));

test('create job --from=cronjob runs the template now, owned by the CronJob as kubectl makes it; get and describe show the CronJob', () => withApi(async (sim, _run, flotilla) => {
  await sim.addNode('n1');
  await sim.objects.create(R('cronjobs'), 'default', {
    metadata: { name: 'backup' },
    spec: {
      schedule: '0 3 * * *', timeZone: 'Europe/Berlin',
      jobTemplate: { metadata: { labels: { app: 'backup' }, annotations: { team: 'ops' } }, spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'run', image: 'busybox:1.36' }] } } } },
    },
  });
  const made = await flotilla('create', 'job', 'backup-now', '--from=cronjob/backup');
  assert.is(made.code, 0, made.err);
  assert.is(made.out, 'job.batch/backup-now created\n');
  const cj = sim.get('cronjobs', 'backup') as unknown as CronJob;
  const job = sim.get('jobs', 'backup-now') as unknown as Job;
  assert.equal(job.metadata.annotations, { 'cronjob.kubernetes.io/instantiate': 'manual', team: 'ops' });
  assert.equal(job.metadata.labels, { app: 'backup' });
  assert.equal(job.metadata.ownerReferences, [{ apiVersion: 'batch/v1', kind: 'CronJob', name: 'backup', uid: cj.metadata.uid, controller: true }]);
  assert.equal(job.spec.template.spec.containers.map((c) => c.image), ['busybox:1.36']);
  await sim.until(() => sim.pods().some((p) => p.metadata.labels?.['batch.kubernetes.io/job-name'] === 'backup-now'), 10);
  // As in Kubernetes, the controller sees a Job it did not start, and says so; its schedule is untouched.
  assert.ok((sim.objects.list(R('events'), 'default').items as unknown as Event[]).some((e) => e.involvedObject?.name === 'backup' && e.reason === 'UnexpectedJob'));
  assert.is(cj.status?.lastScheduleTime, undefined);

  for (const [argv, code, message] of [
    [['create', 'job', 'x', '--from=cronjob/nope'], 1, 'not found'],
    [['create', 'job', 'x', '--from=deployment/backup'], 2, '--from must be cronjob/NAME'],
    [['create', 'job', 'x'], 2, '--from=cronjob/NAME is required'],
    [['create', 'job', 'Bad_Name', '--from=cronjob/backup'], 2, 'invalid job name'],
    [['create', 'pod', 'x', '--from=cronjob/backup'], 2, 'create makes jobs'],
    [['create', 'job', 'backup-now', '--from=cronjob/backup'], 1, 'already exists'],
  ] as [string[], number, string][]) {
    const r = await flotilla(...argv);
    assert.is(r.code, code, `${argv.join(' ')}: ${r.err}`);
    assert.match(r.err, message);
  }

  const table = await flotilla('get', 'cj');
  assert.is(table.code, 0, table.err);
  assert.match(table.out, /^NAME\s+SCHEDULE\s+TIMEZONE\s+SUSPEND\s+ACTIVE\s+LAST SCHEDULE\s+AGE\n/);
  assert.match(table.out, /\nbackup\s+0 3 \* \* \*\s+Europe\/Berlin\s+False\s+0\s+<none>\s+\S+\n/);
  const described = await flotilla('describe', 'cronjob', 'backup');
  assert.is(described.code, 0, described.err);
  for (const line of [/Schedule:\s+0 3 \* \* \*/, /Time Zone:\s+Europe\/Berlin/, /Concurrency Policy:\s+Allow/, /Suspend:\s+False/, /Successful Job History Limit:\s+3/,
    /Failed Job History Limit:\s+1/, /Starting Deadline Seconds:\s+<unset>/, /Pod Template:\n {2}run:\n {4}Image:\s+busybox:1\.36/, /Last Schedule Time:\s+<unset>/, /Active Jobs:\s+<none>/, /UnexpectedJob/]) {
    assert.match(described.out, line);
  }
}));

test('top formats node and pod usage against allocatable', () => {
  const nodes = [{ apiVersion: 'v1', kind: 'Node', metadata: { name: 'pi' }, status: { allocatable: { cpu: '4', memory: '4Gi' } } }] as never;
  const text = formatNodeTop([{ metadata: { name: 'pi' }, usage: { cpu: '1', memory: '1Gi' } }, { metadata: { name: 'gone' }, usage: { cpu: '250m', memory: '0' } }], nodes);
  assert.match(text, /^NAME\s+CPU\(cores\)\s+CPU%\s+MEMORY\(bytes\)\s+MEMORY%\n/);
  assert.match(text, /\npi\s+1\s+25%\s+1024Mi\s+25%/);
  assert.match(text, /\ngone\s+250m\s+<unknown>\s+0Mi\s+<unknown>/);
  const pods = formatPodTop([{ metadata: { name: 'web-1', namespace: 'default' }, containers: [{ name: 'a', usage: { cpu: '100m', memory: '64Mi' } }, { name: 'b', usage: { cpu: '50m', memory: '32Mi' } }] }], true);
  assert.match(pods, /\ndefault\s+web-1\s+150m\s+96Mi/);
});

test.run();
