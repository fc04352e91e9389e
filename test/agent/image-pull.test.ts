// The image step without Docker: image references as Docker parses them, pull secrets matched to registries as
// the kubelet's keyring matches them, the pull policy table (node-agent/images/pull.ts) with its Events on the
// FakeRuntime, bounded pull progress, and the pod worker's waiting reasons for each outcome.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { parseImageReference, withDefaultTag, type Pod, type Secret } from '../../api-types/index.js';
import { ensureContainerImage, PullProgressMeter, pullFailureKind, type PeerImageSource, type PullPolicy } from '../../node-agent/images/pull.js';
import { DockerKeyring, locationMatches, podPullCredentials, PullSecretError } from '../../node-agent/images/registry-auth.js';
import type { PodEvent } from '../../node-agent/pod-events.js';
import type { PodInputs } from '../../node-agent/pod-actions.js';
import { PodWorkers, type WorkerPodStatus } from '../../node-agent/pod-worker.js';
import { FakeRuntime } from '../../node-agent/runtime/fake.js';
import { ImagePullError } from '../../node-agent/runtime/types.js';
import { eventually } from '../support/eventually.js';
import { stopAfterEach } from '../support/set-up.js';

const log = pino({ level: 'silent' });
const b64 = (s: string) => Buffer.from(s).toString('base64');

// ---- image references --------------------------------------------------------------------------------

const references: [string, string, string, string | undefined, string | undefined][] = [
  // image, domain, path, tag, digest
  ['nginx', 'docker.io', 'library/nginx', undefined, undefined],
  ['nginx:1.27', 'docker.io', 'library/nginx', '1.27', undefined],
  ['team/app:v2', 'docker.io', 'team/app', 'v2', undefined],
  ['index.docker.io/team/app', 'docker.io', 'team/app', undefined, undefined],
  ['docker.io/nginx', 'docker.io', 'library/nginx', undefined, undefined],
  ['localhost/app', 'localhost', 'app', undefined, undefined],
  ['localhost:5000/app:latest', 'localhost:5000', 'app', 'latest', undefined],
  ['127.0.0.1:5000/flotilla/testbox:1', '127.0.0.1:5000', 'flotilla/testbox', '1', undefined],
  ['registry.lan/team/img:2024.05', 'registry.lan', 'team/img', '2024.05', undefined],
  [`ghcr.io/org/app:1@sha256:${'ab'.repeat(32)}`, 'ghcr.io', 'org/app', '1', `sha256:${'ab'.repeat(32)}`],
  [`app@sha256:${'0'.repeat(64)}`, 'docker.io', 'library/app', undefined, `sha256:${'0'.repeat(64)}`],
  ['Registry.LAN/app', 'Registry.LAN', 'app', undefined, undefined],
];
for (const [image, domain, path, tag, digest] of references) {
  test(`image reference ${image}`, () => {
    const ref = parseImageReference(image);
    assert.equal([ref.domain, ref.path, ref.tag, ref.digest], [domain, path, tag, digest]);
  });
}

const badReferences: [string, RegExp][] = [
  ['', /at least one component/],
  ['Nginx', /must be lowercase/],
  ['reg.lan/Team/app', /must be lowercase/],
  ['nginx:', /invalid reference format/],
  ['nginx:bad tag', /invalid reference format/],
  ['reg.lan:port/app', /invalid reference format/],
  ['f'.repeat(64), /64-byte hexadecimal/],
  [`${'a'.repeat(250)}/bbbbbb`, /not be more than 255 characters/],
];
for (const [image, reason] of badReferences) {
  test(`not an image reference: ${JSON.stringify(image.slice(0, 40))}`, () => {
    assert.throws(() => parseImageReference(image), reason);
  });
}

test('the default tag is added to short names only when neither a tag nor a digest is given', () => {
  assert.is(withDefaultTag('busybox'), 'busybox:latest');
  assert.is(withDefaultTag('reg.lan:5000/app'), 'reg.lan:5000/app:latest');
  assert.is(withDefaultTag('busybox:1.36'), 'busybox:1.36');
  assert.is(withDefaultTag(`busybox@sha256:${'1'.repeat(64)}`), `busybox@sha256:${'1'.repeat(64)}`);
});

// ---- pull secrets ------------------------------------------------------------------------------------

// The kubelet's TestURLsMatch cases.
const matches: [string, string, boolean][] = [
  ['*.kubernetes.io', 'prefix.kubernetes.io', true],
  ['prefix.*.io', 'prefix.kubernetes.io', true],
  ['prefix.kubernetes.*', 'prefix.kubernetes.io', true],
  ['*-good.kubernetes.io', 'prefix-good.kubernetes.io', true],
  ['*.kubernetes.io', 'kubernetes.io', false],
  ['*.*.kubernetes.io', 'prefix.kubernetes.io', false],
  ['prefix.*.kubernetes.io', 'prefix.kubernetes.io', false],
  ['p?efix.kubernetes.io', 'prefix.kubernetes.io', true],
  ['[a-q]refix.kubernetes.io', 'prefix.kubernetes.io', true],
  ['[^p]refix.kubernetes.io', 'prefix.kubernetes.io', false],
  ['prefix.kubernetes.io:8080', 'prefix.kubernetes.io:8080/foo', true],
  ['prefix.kubernetes.io:8080', 'prefix.kubernetes.io:8081/foo', false],
  ['prefix.kubernetes.io', 'prefix.kubernetes.io:8080/foo', false],
  ['prefix.kubernetes.io/foo', 'prefix.kubernetes.io/foo/bar', true],
  ['prefix.kubernetes.io/foo', 'prefix.kubernetes.io/bar', false],
  ['*.kubernetes.io/foo', 'prefix.kubernetes.io/foo/bar', true],
  ['127.0.0.1:5000', '127.0.0.1:5000/flotilla/testbox', true],
  ['127.0.0.1', '127.0.0.1:5000/flotilla/testbox', false],
];
for (const [location, repository, expected] of matches) {
  test(`location ${location} ${expected ? 'covers' : 'does not cover'} ${repository}`, () => {
    assert.is(locationMatches(location, repository), expected);
  });
}

const entry = (user: string) => ({ username: user, password: `${user}-pw` });

test('keyring locations lose their scheme and /v1/ or /v2/; the most specific match comes first', () => {
  const keyring = new DockerKeyring();
  keyring.add('hub', { 'https://index.docker.io/v1/': entry('hub-user') });
  keyring.add('quay', { 'https://quay.io/v2/': entry('quay-user'), 'quay.io/coreos': entry('coreos-user') });
  keyring.add('lan', { 'http://reg.lan:5000': entry('lan-user'), 'reg.lan:5000': entry('lan-user-2') });
  const users = (image: string) => keyring.lookup(image).map((c) => c.auth.username);
  assert.equal(users('quay.io/coreos/etcd:3'), ['coreos-user', 'quay-user']);
  assert.equal(users('quay.io/other/app'), ['quay-user']);
  assert.equal(users('nginx'), ['hub-user'], 'Docker Hub images fall back to index.docker.io');
  assert.equal(users('docker.io/team/app:1'), ['hub-user']);
  assert.equal(users('reg.lan:5000/app:1'), ['lan-user', 'lan-user-2'], 'same location: in the order the secrets were added');
  assert.equal(users('reg.lan/app:1'), [], 'another port is another registry');
  assert.equal(users('ghcr.io/org/app'), []);
  assert.is(keyring.lookup('reg.lan:5000/app:1')[0]!.auth.serveraddress, 'reg.lan:5000');
  assert.is(keyring.lookup('reg.lan:5000/app:1')[0]!.secret, 'lan');
});

function secret(name: string, type: string, data: Record<string, string>): Secret {
  return { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: 'ns' }, type, data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)])) };
}

function inputsWith(image: string, pullSecrets: string[], secrets: Secret[], policy?: PullPolicy): PodInputs {
  const pod: Pod = {
    apiVersion: 'v1', kind: 'Pod', metadata: { name: `pull-${image.replace(/[^a-z0-9]/g, '-')}`, namespace: 'ns', uid: `uid-${Math.random().toString(16).slice(2)}` },
    spec: { nodeName: 'n', containers: [{ name: 'c', image, ...(policy ? { imagePullPolicy: policy } : {}) }], imagePullSecrets: pullSecrets.map((name) => ({ name })) },
  };
  return { pod, configMaps: {}, secrets: Object.fromEntries(secrets.map((s) => [s.metadata.name!, s])) };
}

test('pull secrets: dockerconfigjson auths, legacy dockercfg, the auth field, missing and empty names', () => {
  const creds = podPullCredentials(inputsWith('reg.lan:5000/app:1', ['new', 'old', 'gone', '', 'opaque'], [
    secret('new', 'kubernetes.io/dockerconfigjson', { '.dockerconfigjson': JSON.stringify({ auths: { 'reg.lan:5000': { auth: b64('alice:pa:ss') } } }) }),
    secret('old', 'kubernetes.io/dockercfg', { '.dockercfg': JSON.stringify({ 'https://reg.lan:5000': { username: 'bob', password: 'pw', email: 'b@lan' } }) }),
    secret('opaque', 'Opaque', { '.dockerconfigjson': JSON.stringify({ auths: { 'reg.lan:5000': entry('never') } }) }),
  ]));
  assert.equal(creds.missing, ['gone']);
  assert.equal(creds.lookup('reg.lan:5000/app:1').map((c) => [c.secret, c.auth.username, c.auth.password]), [['new', 'alice', 'pa:ss'], ['old', 'bob', 'pw']]);
  assert.is(creds.lookup('reg.lan:5000/app:1')[1]!.auth.email, 'b@lan');
});

test('an unreadable pull secret fails the lookup, naming the secret but not its contents', () => {
  const creds = podPullCredentials(inputsWith('reg.lan/app:1', ['broken'], [secret('broken', 'kubernetes.io/dockerconfigjson', { '.dockerconfigjson': '{"auths": {"reg.lan": {"auth": "bm9jb2xvbg=="}}}' })]));
  assert.throws(() => creds.lookup('reg.lan/app:1'), (err: Error) => err instanceof PullSecretError && /pull secret "broken".*base64\(username:password\)/.test(err.message));
});

// ---- the pull policy table ---------------------------------------------------------------------------

interface Case {
  name: string;
  image: string;
  policy: PullPolicy;
  present: boolean;
  /** What a peer node does when asked; no peer source when absent. */
  peer?: boolean;
  events: string[];
  /** Registry pulls made. */
  pulls: number;
  peerAsked: number;
  error?: [string, RegExp];
}

const REG = 'reg.lan:5000/app:1';
const DOWN = '127.0.0.1:1/app:1';
const DENIED = 'reg.lan:5000/denied:1';

const cases: Case[] = [
  { name: 'Never, present', image: REG, policy: 'Never', present: true, events: ['Normal Pulled: Container image "reg.lan:5000/app:1" already present on machine'], pulls: 0, peerAsked: 0 },
  { name: 'Never, missing', image: 'app', policy: 'Never', present: false, peer: true,
    events: ['Warning ErrImageNeverPull: Container image "app:latest" is not present with pull policy of Never'], pulls: 0, peerAsked: 0,
    error: ['ErrImageNeverPull', /^Container image "app:latest" is not present with pull policy of Never$/] },
  { name: 'IfNotPresent, present', image: REG, policy: 'IfNotPresent', present: true, peer: true, events: ['Normal Pulled: Container image "reg.lan:5000/app:1" already present on machine'], pulls: 0, peerAsked: 0 },
  { name: 'IfNotPresent, missing, from the registry', image: REG, policy: 'IfNotPresent', present: false,
    events: ['Normal Pulling: Pulling image "reg.lan:5000/app:1"', 'Normal Pulled: Successfully pulled image "reg.lan:5000/app:1" in Xs (Xs including waiting). Image size: 1048576 bytes.'], pulls: 1, peerAsked: 0 },
  { name: 'IfNotPresent, missing, a peer has it', image: REG, policy: 'IfNotPresent', present: false, peer: true,
    events: ['Normal Pulling: Pulling image "reg.lan:5000/app:1"', 'Normal Pulled: Successfully pulled image "reg.lan:5000/app:1" from a peer node in Xs (Xs including waiting). Image size: 1048576 bytes.'], pulls: 0, peerAsked: 1 },
  { name: 'IfNotPresent, missing, no peer has it', image: REG, policy: 'IfNotPresent', present: false, peer: false,
    events: ['Normal Pulling: Pulling image "reg.lan:5000/app:1"', 'Normal Pulled: Successfully pulled image "reg.lan:5000/app:1" in Xs (Xs including waiting). Image size: 1048576 bytes.'], pulls: 1, peerAsked: 1 },
  { name: 'Always, present: pulled again', image: REG, policy: 'Always', present: true, peer: true,
    events: ['Normal Pulling: Pulling image "reg.lan:5000/app:1"', 'Normal Pulled: Successfully pulled image "reg.lan:5000/app:1" in Xs (Xs including waiting). Image size: 1048576 bytes.'], pulls: 1, peerAsked: 0 },
  { name: 'Always, registry unreachable, present: the present copy', image: DOWN, policy: 'Always', present: true, peer: true,
    events: ['Normal Pulling: Pulling image "127.0.0.1:1/app:1"',
      'Warning RegistryUnavailable: image pull failed for 127.0.0.1:1/app:1 because the registry is unavailable: Get "http://127.0.0.1:1/v2/": dial tcp 127.0.0.1:1: connect: connection refused; using the image present on machine',
      'Normal Pulled: Container image "127.0.0.1:1/app:1" already present on machine'], pulls: 1, peerAsked: 0 },
  { name: 'Always, registry unreachable, missing: a peer', image: DOWN, policy: 'Always', present: false, peer: true,
    events: ['Normal Pulling: Pulling image "127.0.0.1:1/app:1"', 'Normal Pulled: Successfully pulled image "127.0.0.1:1/app:1" from a peer node in Xs (Xs including waiting). Image size: 1048576 bytes.'], pulls: 1, peerAsked: 1 },
  { name: 'Always, registry unreachable, missing, no peer has it', image: DOWN, policy: 'Always', present: false, peer: false,
    events: ['Normal Pulling: Pulling image "127.0.0.1:1/app:1"', 'Warning Failed: Failed to pull image "127.0.0.1:1/app:1": Get "http://127.0.0.1:1/v2/": dial tcp 127.0.0.1:1: connect: connection refused'], pulls: 1, peerAsked: 1,
    error: ['ErrImagePull', /connection refused/] },
  { name: 'Always, registry refuses: no peer, no present copy', image: DENIED, policy: 'Always', present: true, peer: true,
    events: ['Normal Pulling: Pulling image "reg.lan:5000/denied:1"', 'Warning Failed: Failed to pull image "reg.lan:5000/denied:1": manifest for reg.lan:5000/denied:1 not found: manifest unknown: manifest unknown'], pulls: 1, peerAsked: 0,
    error: ['ErrImagePull', /manifest unknown/] },
  { name: 'an image name Docker cannot parse', image: 'Reg/App', policy: 'IfNotPresent', present: false,
    events: ['Warning InspectFailed: Failed to apply default image tag "Reg/App": couldn\'t parse image name "Reg/App": invalid reference format: repository name must be lowercase'], pulls: 0, peerAsked: 0,
    error: ['InvalidImageName', /couldn't parse image name "Reg\/App"/] },
];

async function runStep(c: Pick<Case, 'image' | 'policy' | 'present' | 'peer'>, inputs = inputsWith(c.image, [], []), runtime = new FakeRuntime({ images: c.present ? [c.image] : [] })) {
  runtime.failPull(DENIED, `manifest for ${DENIED} not found: manifest unknown: manifest unknown`);
  const events: string[] = [];
  let peerAsked = 0;
  const peer: PeerImageSource = async (image) => {
    peerAsked++;
    if (c.peer) runtime.addImage(image);
    return c.peer === true;
  };
  const before = runtime.pullAttempts;
  let error: ImagePullError | undefined;
  try {
    await ensureContainerImage({
      runtime, ...(c.peer !== undefined ? { peerImages: peer } : {}), log, progressIntervalMs: 1000,
      emit: (type, reason, message) => events.push(`${type} ${reason}: ${message.replace(/ in \d+(?:\.\d+)?m?s \(\d+(?:\.\d+)?m?s including/, ' in Xs (Xs including')}`),
    }, c.image, c.policy, podPullCredentials(inputs));
  } catch (err) {
    if (!(err instanceof ImagePullError)) throw err;
    error = err;
  }
  return { events, error, peerAsked, pulls: runtime.pullAttempts - before, runtime };
}

for (const c of cases) {
  test(`pull policy: ${c.name}`, async () => {
    const r = await runStep(c);
    assert.equal(r.events, c.events);
    assert.is(r.pulls, c.pulls, 'registry pulls');
    assert.is(r.peerAsked, c.peerAsked, 'peer asked');
    if (c.error) {
      assert.ok(r.error, 'an ImagePullError');
      assert.is(r.error!.reason, c.error[0]);
      assert.match(r.error!.message, c.error[1]);
    } else {
      assert.is(r.error, undefined, r.error?.message);
      assert.ok(await r.runtime.inspectImage(c.image), 'the image is present afterwards');
    }
  });
}

// ---- credentials at work -----------------------------------------------------------------------------

const PRIVATE = 'reg.lan:5000/private/app:1';
const regcred = (user: string, password: string, name = 'regcred') => secret(name, 'kubernetes.io/dockerconfigjson', { '.dockerconfigjson': JSON.stringify({ auths: { 'reg.lan:5000': { username: user, password } } }) });

async function privatePull(pullSecrets: string[], secrets: Secret[]) {
  const runtime = new FakeRuntime();
  runtime.requireAuth('reg.lan:5000/private/', 'alice', 's3cret');
  return runStep({ image: PRIVATE, policy: 'IfNotPresent', present: false }, inputsWith(PRIVATE, pullSecrets, secrets), runtime);
}

test('the right pull secret pulls, with its credentials handed to the runtime', async () => {
  const r = await privatePull(['regcred'], [regcred('alice', 's3cret')]);
  assert.is(r.error, undefined, r.error?.message);
  assert.equal(r.runtime.pullAuths, [{ username: 'alice', password: 's3cret', serveraddress: 'reg.lan:5000' }]);
});

test('rotated credentials: each matching secret is tried in turn until one works', async () => {
  const r = await privatePull(['stale', 'fresh'], [regcred('alice', 'old', 'stale'), regcred('alice', 's3cret', 'fresh')]);
  assert.is(r.error, undefined, r.error?.message);
  assert.equal(r.runtime.pullAuths.map((a) => a?.password), ['old', 's3cret']);
});

test('wrong credentials: ErrImagePull saying authentication failed, naming the registry and the secret', async () => {
  const r = await privatePull(['regcred'], [regcred('alice', 'wrong')]);
  assert.is(r.error?.reason, 'ErrImagePull');
  assert.is(r.error?.message, 'authentication failed: registry reg.lan:5000 refused the credentials of pull secret "regcred": unauthorized: authentication required');
});

test('no credentials for a registry that wants them: authentication failed, saying no pull secret has any', async () => {
  const r = await privatePull(['other'], [secret('other', 'kubernetes.io/dockerconfigjson', { '.dockerconfigjson': JSON.stringify({ auths: { 'ghcr.io': entry('x') } }) })]);
  assert.equal(r.runtime.pullAuths, [undefined], 'pulled anonymously');
  assert.match(r.error?.message ?? '', /^authentication failed: registry reg\.lan:5000 requires credentials and no imagePullSecret of the pod has any for it: .*no basic auth credentials$/);
});

test('a missing pull secret: the kubelet warning, then the pull goes on without it', async () => {
  const r = await privatePull(['absent'], []);
  assert.is(r.events[0], 'Warning FailedToRetrieveImagePullSecret: Unable to retrieve some image pull secrets (absent); attempting to pull the image may not succeed.');
  assert.is(r.error?.reason, 'ErrImagePull');
});

test('registry failures are told apart: authentication, out of reach, other', () => {
  assert.is(pullFailureKind('unauthorized: authentication required'), 'unauthorized');
  assert.is(pullFailureKind('Head "http://127.0.0.1:5599/v2/a/manifests/1": no basic auth credentials'), 'unauthorized');
  assert.is(pullFailureKind('Get "https://registry-1.docker.io/v2/": dial tcp: lookup registry-1.docker.io on 10.0.0.53:53: no such host'), 'unreachable');
  assert.is(pullFailureKind('Get "http://127.0.0.1:1/v2/": dial tcp 127.0.0.1:1: connect: connection refused'), 'unreachable');
  assert.is(pullFailureKind('Get "https://reg.lan/v2/": net/http: request canceled while waiting for connection (Client.Timeout exceeded while awaiting headers)'), 'unreachable');
  assert.is(pullFailureKind('manifest for reg.lan/a:1 not found: manifest unknown: manifest unknown'), 'other');
});

// ---- progress ----------------------------------------------------------------------------------------

test('pull progress sums the layers whose size is known; a finished download counts whole', () => {
  const m = new PullProgressMeter();
  m.update({ status: 'Pulling fs layer', layer: 'a' });
  m.update({ status: 'Downloading', layer: 'a', current: 10, total: 100 });
  m.update({ status: 'Downloading', layer: 'b', current: 5, total: 50 });
  assert.equal(m.bytes, { current: 15, total: 150 });
  m.update({ status: 'Download complete', layer: 'a' });
  m.update({ status: 'Already exists', layer: 'c' });
  assert.equal(m.bytes, { current: 105, total: 150 });
});

test('pull progress is told at most once per interval, however many chunks arrive', async () => {
  let clock = 0;
  const runtime = new FakeRuntime();
  const chunks = 1000;
  runtime.pullImage = async (_image, options = {}) => {
    for (let i = 1; i <= chunks; i++) {
      clock += 10; // 10 s of pulling in all
      options.onProgress?.({ status: 'Downloading', layer: 'l', current: i * 100_000, total: chunks * 100_000 });
    }
  };
  const events: PodEvent[] = [];
  await ensureContainerImage({ runtime, log, progressIntervalMs: 2000, now: () => clock, emit: (type, reason, message) => events.push({ type, reason, message }) },
    'reg.lan/big:1', 'IfNotPresent', podPullCredentials(inputsWith('reg.lan/big:1', [], [])));
  const progress = events.filter((e) => e.reason === 'Pulling' && e.message.includes(' of '));
  assert.is(progress.length, 5, progress.map((e) => e.message).join('\n'));
  assert.is(progress[0]!.message, 'Pulling image "reg.lan/big:1": 20.0 MB of 100.0 MB');
  assert.is(events.at(-1)!.message, 'Successfully pulled image "reg.lan/big:1" in 10s (10s including waiting). Image size: 0 bytes.');
});

// ---- the pod worker --------------------------------------------------------------------------------

const dataDir = mkdtempSync(join(tmpdir(), 'flotilla-image-pull-'));
const stopLater = stopAfterEach(test);
test.after(() => rmSync(dataDir, { recursive: true, force: true }));

function workers(runtime: FakeRuntime) {
  const events: PodEvent[] = [];
  const statuses: WorkerPodStatus[] = [];
  const w = new PodWorkers({
    runtime, clusterId: 'c', nodeName: 'n', dataDir, sandboxImage: 'fake/pause', backoffBaseMs: 40, backoffMaxMs: 200, resyncMs: 100, log,
    onEvent: (_inputs, e) => events.push(e), onStatus: (_inputs, s) => statuses.push(s),
  });
  const ac = new AbortController();
  const running = w.run(ac.signal);
  stopLater(async () => { ac.abort(); await running; });
  return { w, events, statuses };
}

const waitingOf = (w: PodWorkers, inputs: PodInputs) => {
  const st = w.get(inputs.pod.metadata.uid!)?.status?.containerStatuses[0]?.state;
  return st?.waiting;
};

test('Never with a missing image stays ErrImageNeverPull (no pull back-off, no pull) until the image appears', async () => {
  const runtime = new FakeRuntime({ images: ['fake/pause'] });
  const { w, events, statuses } = workers(runtime);
  const inputs = inputsWith('fake/loaded:1', [], [], 'Never');
  w.update(inputs);
  const waiting = await eventually('ErrImageNeverPull', () => (waitingOf(w, inputs)?.reason === 'ErrImageNeverPull' ? waitingOf(w, inputs) : undefined));
  assert.is(waiting.message, 'Container image "fake/loaded:1" is not present with pull policy of Never');
  await eventually('retried', () => events.filter((e) => e.reason === 'ErrImageNeverPull').length >= 3);
  assert.ok(events.some((e) => e.type === 'Warning' && e.reason === 'Failed' && e.message === 'Error: ErrImageNeverPull'));
  assert.not.ok(statuses.some((s) => s.containerStatuses[0]!.state.waiting?.reason === 'ImagePullBackOff'));
  runtime.addImage('fake/loaded:1');
  const pulls = runtime.pullAttempts;
  await eventually('running once the image is there', () => (w.get(inputs.pod.metadata.uid!)?.status?.phase === 'Running' ? true : undefined));
  assert.is(runtime.pullAttempts, pulls, 'Never never pulls');
});

test('wrong credentials: ErrImagePull saying authentication failed, then ImagePullBackOff; right ones run the pod', async () => {
  const runtime = new FakeRuntime({ images: ['fake/pause'] });
  runtime.requireAuth('reg.lan:5000/private/', 'alice', 's3cret');
  const { w, statuses } = workers(runtime);
  const inputs = inputsWith(PRIVATE, ['regcred'], [regcred('alice', 'wrong')]);
  w.update(inputs);
  const backOff = await eventually('ImagePullBackOff', () => (waitingOf(w, inputs)?.reason === 'ImagePullBackOff' ? waitingOf(w, inputs) : undefined));
  const err = statuses.map((s) => s.containerStatuses[0]!.state.waiting).find((wt) => wt?.reason === 'ErrImagePull');
  assert.match(err?.message ?? '', /^authentication failed: .*unauthorized: authentication required$/);
  assert.is(backOff.message, `Back-off pulling image "${PRIVATE}": ErrImagePull: ${err?.message}`, 'the back-off still says why');
  w.update({ ...inputs, secrets: { regcred: regcred('alice', 's3cret') } });
  await eventually('Running with the right secret', () => (w.get(inputs.pod.metadata.uid!)?.status?.phase === 'Running' ? true : undefined));
});

test.run();
