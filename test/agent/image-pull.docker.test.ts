// Pulls from real registries: two Debian docker-registry processes on loopback (one open, one demanding basic
// auth) holding the local flotilla/testbox image, and a real agent (this process, DockerRuntime, no pod network,
// no service proxy) against a real server. A pod pulls with the right imagePullSecret and runs; wrong credentials
// read as authentication failed until the Secret is fixed; Never with a missing image waits with ErrImageNeverPull
// and asks no registry; Always pulls at every container start (the registry counts the manifest requests) and
// IfNotPresent does not; a pull that downloads reports its progress.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import Docker from 'dockerode';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { KubeObject } from '../../api-types/index.js';
import { DockerRuntime } from '../../node-agent/runtime/docker.js';
import { singleFileTar } from '../../node-agent/runtime/pause-image.js';
import { LABEL_NODE } from '../../node-agent/runtime/types.js';
import { eventually } from '../support/eventually.js';
import { LocalRegistry } from '../support/registry.js';
import { setUp } from '../support/set-up.js';
import { appPod, FAST_AGENT_TUNING, RealServer } from './real-server.js';

const TESTBOX = 'flotilla/testbox:latest';
const NODE = `docker-pull-${process.pid}`;
const USER = 'alice';
const PASSWORD = 's3cret';

const srv = new RealServer();
const runtime = new DockerRuntime();
let open: LocalRegistry | undefined;
let guarded: LocalRegistry | undefined;
let stopAgent: (() => Promise<void>) | undefined;
/** Image names this suite made the engine pull, removed after it. */
const pulled = new Set<string>();

interface Waiting { reason?: string; message?: string }
interface PodState { phase?: string; containerStatuses?: Array<{ restartCount: number; state: { waiting?: Waiting; running?: unknown } }> }
interface EventView { involvedObject: { name?: string }; type?: string; reason?: string; message?: string }

setUp(test, async () => {
  await srv.start();
  open = await LocalRegistry.start();
  guarded = await LocalRegistry.start({ users: { [USER]: PASSWORD } });
  stopAgent = srv.startAgent(NODE, runtime, { tuning: { ...FAST_AGENT_TUNING, podWorkers: { resyncMs: 300, backoffBaseMs: 200, backoffMaxMs: 1000, pullProgressMs: 1 } } }).stop;
}, async () => {
  await stopAgent?.();
  for (const c of await runtime.listContainers({ [LABEL_NODE]: NODE })) await runtime.removeContainer(c.id);
  const docker = new Docker();
  for (const image of pulled) await docker.getImage(image).remove().catch(() => undefined);
  await open?.stop();
  await guarded?.stop();
  await srv.close();
});

async function podState(name: string): Promise<PodState | undefined> {
  return (await srv.getPod(name))?.status as PodState | undefined;
}

function waitingOf(s: PodState | undefined): Waiting | undefined {
  return s?.containerStatuses?.[0]?.state.waiting;
}

async function eventsOf(pod: string): Promise<EventView[]> {
  const list = await srv.client.request<{ items: EventView[] }>('GET', '/api/v1/namespaces/default/events');
  return list.items.filter((e) => e.involvedObject.name === pod);
}

function pullSecret(name: string, password: string): Record<string, unknown> {
  const auths = { [guarded!.address]: { username: USER, password, auth: Buffer.from(`${USER}:${password}`).toString('base64') } };
  return {
    apiVersion: 'v1', kind: 'Secret', metadata: { name }, type: 'kubernetes.io/dockerconfigjson',
    data: { '.dockerconfigjson': Buffer.from(JSON.stringify({ auths })).toString('base64') },
  };
}

function withPullSecret(pod: Record<string, unknown>, secret: string): Record<string, unknown> {
  return { ...pod, spec: { ...(pod.spec as Record<string, unknown>), imagePullSecrets: [{ name: secret }] } };
}

test('a pod pulls from a registry with basic auth through its imagePullSecret and runs; the events say so', async () => {
  const image = await guarded!.push(TESTBOX, 'private/testbox', 'right', { username: USER, password: PASSWORD });
  pulled.add(image);
  await srv.client.request('POST', '/api/v1/namespaces/default/secrets', pullSecret('regcred', PASSWORD));
  await srv.createPod(withPullSecret(appPod('private-right', NODE, image, { command: ['sleep', '3600'] }), 'regcred'));
  await srv.podReady('private-right', 60_000);
  const events = await eventually('Pulling and Pulled events', async () => {
    const seen = await eventsOf('private-right');
    return seen.some((e) => e.reason === 'Pulled') ? seen : undefined;
  });
  assert.ok(events.some((e) => e.reason === 'Pulling' && e.message === `Pulling image "${image}"`), JSON.stringify(events));
  const done = events.find((e) => e.reason === 'Pulled');
  assert.match(done?.message ?? '', new RegExp(`^Successfully pulled image "${image.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}" in [0-9.]+m?s \\([0-9.]+m?s including waiting\\)\\. Image size: [1-9][0-9]+ bytes\\.$`));
  assert.is(guarded!.manifestRequests('private/testbox', 'right'), 1);
});

test('wrong credentials: ErrImagePull saying authentication failed, then ImagePullBackOff', async () => {
  const image = await guarded!.push(TESTBOX, 'private/testbox', 'wrong', { username: USER, password: PASSWORD });
  await srv.client.request('POST', '/api/v1/namespaces/default/secrets', pullSecret('badcred', 'not-the-password'));
  await srv.createPod(withPullSecret(appPod('private-wrong', NODE, image), 'badcred'));
  const failed = await eventually('ErrImagePull on the server', async () => {
    const w = waitingOf(await podState('private-wrong'));
    return w?.reason === 'ErrImagePull' ? w : undefined;
  }, 60_000);
  assert.is(failed.message, `authentication failed: registry ${guarded!.address} refused the credentials of pull secret "badcred": unauthorized: authentication required`);
  const backOff = await eventually('ImagePullBackOff on the server', async () => {
    const w = waitingOf(await podState('private-wrong'));
    return w?.reason === 'ImagePullBackOff' ? w : undefined;
  }, 60_000);
  assert.is(backOff.message, `Back-off pulling image "${image}": ErrImagePull: ${failed.message}`);
  const events = await eventually('the Failed event', async () => {
    const seen = await eventsOf('private-wrong');
    return seen.some((e) => e.reason === 'Failed' && e.message?.startsWith('Failed to pull image')) ? seen : undefined;
  });
  assert.ok(events.some((e) => e.type === 'Warning' && e.message === `Failed to pull image "${image}": ${failed.message}`), JSON.stringify(events));
  assert.is(guarded!.manifestRequests('private/testbox', 'wrong'), 0, 'the registry gave nothing away');

  // Fixing the Secret is enough: the agent re-reads it, and the next pull after the back-off works.
  const fixed = pullSecret('badcred', PASSWORD);
  await srv.client.request('PUT', '/api/v1/namespaces/default/secrets/badcred', fixed);
  await srv.podReady('private-wrong', 60_000);
  pulled.add(image);
});

test('Never with a missing image: ErrImageNeverPull with the kubelet message, and no registry is asked', async () => {
  const image = `${open!.address}/flotilla/testbox:absent`;
  await srv.createPod(appPod('never-missing', NODE, image, { imagePullPolicy: 'Never' }));
  const waiting = await eventually('ErrImageNeverPull on the server', async () => {
    const w = waitingOf(await podState('never-missing'));
    return w?.reason === 'ErrImageNeverPull' ? w : undefined;
  }, 60_000);
  assert.is(waiting.message, `Container image "${image}" is not present with pull policy of Never`);
  assert.ok((await eventsOf('never-missing')).some((e) => e.type === 'Warning' && e.reason === 'ErrImageNeverPull'));
  assert.is(open!.manifestRequests('flotilla/testbox', 'absent'), 0);
});

test('Always pulls at every container start; IfNotPresent pulls only a missing image', async () => {
  const image = await open!.push(TESTBOX, 'flotilla/testbox', '1');
  pulled.add(image);
  const crashing = { command: ['sh', '-c', 'sleep 0.2; exit 1'] };
  await srv.createPod(appPod('always', NODE, image, { ...crashing, imagePullPolicy: 'Always' }));
  const restarts = await eventually('the Always pod restarted twice', async () => {
    const n = (await podState('always'))?.containerStatuses?.[0]?.restartCount ?? 0;
    return n >= 2 ? n : undefined;
  }, 60_000);
  assert.ok(open!.manifestRequests('flotilla/testbox', '1') >= restarts + 1, `${open!.manifestRequests('flotilla/testbox', '1')} pulls for ${restarts + 1} starts`);
  await srv.deletePod('always');
  await eventually('the Always pod gone', async () => (await srv.getPod('always')) === undefined, 60_000);

  const before = open!.manifestRequests('flotilla/testbox', '1');
  await srv.createPod(appPod('if-not-present', NODE, image, { ...crashing, imagePullPolicy: 'IfNotPresent' }));
  await eventually('the IfNotPresent pod restarted twice', async () => ((await podState('if-not-present'))?.containerStatuses?.[0]?.restartCount ?? 0) >= 2, 60_000);
  assert.is(open!.manifestRequests('flotilla/testbox', '1'), before, 'no pull for an image that is present');
  const events = await eventsOf('if-not-present');
  assert.ok(events.some((e) => e.reason === 'Pulled' && e.message === `Container image "${image}" already present on machine`), JSON.stringify(events));
  assert.not.ok(events.some((e) => e.reason === 'Pulling'));
});

test('a pull that downloads layers reports its progress in Pulling events', async () => {
  // An image of 20 MB of random bytes that the engine does not have once pushed: the pull must download it.
  const docker = new Docker();
  const local = `flotilla/pull-progress:${process.pid}`;
  const [repo, tag] = local.split(':') as [string, string];
  const archive = singleFileTar('blob', randomBytes(20_000_000), 0o644);
  const out = await docker.importImage(Readable.from([Buffer.from(archive)]), { repo, tag });
  await new Promise<void>((resolve, reject) => docker.modem.followProgress(out, (err: unknown) => (err ? reject(err) : resolve())));
  const image = await open!.push(local, 'flotilla/pull-progress', '1');
  await docker.getImage(local).remove();
  pulled.add(image);
  await srv.createPod(appPod('progress', NODE, image, { imagePullPolicy: 'IfNotPresent' }));
  const progress = await eventually('progress events', async () => {
    const seen = (await eventsOf('progress')).filter((e) => e.reason === 'Pulling' && / of /.test(e.message ?? ''));
    return seen.length > 0 ? seen : undefined;
  }, 60_000);
  for (const e of progress) assert.match(e.message ?? '', new RegExp(`^Pulling image "${image.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}": [0-9]+\\.[0-9] MB of 20\\.[0-9] MB$`));
  await eventually('Pulled', async () => (await eventsOf('progress')).some((e) => e.reason === 'Pulled' && /Image size: 2[0-9]{7} bytes/.test(e.message ?? '')), 60_000);
});

test('a Secret of type kubernetes.io/dockerconfigjson is refused on write when its config is not JSON', async () => {
  const err = await srv.client.request<KubeObject>('POST', '/api/v1/namespaces/default/secrets', {
    apiVersion: 'v1', kind: 'Secret', metadata: { name: 'broken' }, type: 'kubernetes.io/dockerconfigjson',
    stringData: { '.dockerconfigjson': '{"auths": ' },
  }).then(() => undefined, (e: unknown) => e as Error & { code?: number });
  assert.ok(err, 'refused');
  assert.is(err!.code, 422);
  assert.match(err!.message, /stringData\[".dockerconfigjson"\].*<secret contents redacted>/);
});

test.run();
