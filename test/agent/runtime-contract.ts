// The behaviour every ContainerRuntime must have, run against FakeRuntime (runtime-fake.test.ts) and
// DockerRuntime (runtime-docker.docker.test.ts). A harness says how to express each "program" on its runtime:
// a shell line in flotilla/testbox for Docker, a scripted behaviour for the fake.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  ContainerNotFoundError,
  ImagePullError,
  LABEL_RESTART_COUNT,
  ownerLabels,
  type ContainerConfig,
  type ContainerEvent,
  type ContainerRuntime,
} from '../../node-agent/runtime/types.js';
import { eventually } from '../support/eventually.js';

export type Program = Pick<ContainerConfig, 'image' | 'entrypoint' | 'cmd'>;

export interface RuntimeHarness {
  runtime: ContainerRuntime;
  /** Labels unique to this run; everything the suite creates carries them, and cleanup removes by them. */
  labels: Record<string, string>;
  sandbox: { image: string; command?: string[] };
  programs: {
    /** Runs until stopped. */
    sleep(): Program;
    /** Exits with this code after a short while (well under a second). */
    exit(code: number): Program;
    /** Writes these lines to stdout, then runs until stopped. */
    print(lines: string[]): Program;
    /** Grows its memory until killed; run under an 8 MiB limit. */
    memoryHog(): Program;
  };
  /** Runs in exec: writes "out" to stdout, "err" to stderr, exits 3. */
  execCommand: string[];
  /** The driver and driver options of named volume `name` as the engine has it; undefined when it has none. */
  volume(name: string): Promise<{ driver: string; options: Record<string, string> } | undefined>;
  /** Removes named volume `name` if it exists. */
  removeVolume(name: string): Promise<void>;
  cleanup(): Promise<void>;
}

export function runtimeContract(name: string, newHarness: () => Promise<RuntimeHarness>): void {
  const test = suite<{ h: RuntimeHarness }>(`ContainerRuntime contract: ${name}`);
  let serial = 0;

  test.before.each(async (ctx) => {
    ctx.h = await newHarness();
  });
  test.after.each(async (ctx) => {
    await ctx.h.cleanup();
  });

  async function pod(h: RuntimeHarness) {
    const n = `${process.pid}-${++serial}`;
    const sandboxId = await h.runtime.runSandbox({
      name: `flotilla-contract-${n}-pod`, image: h.sandbox.image, ...(h.sandbox.command ? { command: h.sandbox.command } : {}),
      hostname: `contract-${n}`, ports: [], labels: { ...h.labels, role: 'sandbox' },
    });
    const container = async (program: Program, extra: Partial<ContainerConfig> = {}) => {
      const id = await h.runtime.createContainer({
        name: `flotilla-contract-${n}-${++serial}`, env: {}, mounts: [], sandboxId,
        labels: { ...h.labels, role: 'app', [LABEL_RESTART_COUNT]: '2' }, ...program, ...extra,
      });
      await h.runtime.startContainer(id);
      return id;
    };
    return { sandboxId, container };
  }

  const exited = (h: RuntimeHarness, id: string) =>
    eventually(`container ${id} exits`, async () => {
      const s = await h.runtime.inspectContainer(id);
      return s.state === 'exited' ? s : undefined;
    });

  test('an image that is present is ensured; an unreachable registry gives ErrImagePull', async ({ h }) => {
    await h.runtime.ensureImage(h.programs.sleep().image);
    try {
      await h.runtime.ensureImage('127.0.0.1:1/none:1');
      assert.unreachable('pull from 127.0.0.1:1 succeeded');
    } catch (err) {
      assert.instance(err, ImagePullError);
      assert.is((err as ImagePullError).reason, 'ErrImagePull');
      assert.ok((err as Error).message.length > 0);
    }
  });

  test('inspectImage tells a present image (id, size) from a missing one; pullImage from an unreachable registry gives ErrImagePull', async ({ h }) => {
    const present = await h.runtime.inspectImage(h.programs.sleep().image);
    assert.ok(present && present.id.length > 0 && present.sizeBytes > 0, JSON.stringify(present));
    assert.is(await h.runtime.inspectImage('127.0.0.1:1/none:1'), undefined);
    try {
      await h.runtime.pullImage('127.0.0.1:1/none:1', { auth: { username: 'u', password: 'p', serveraddress: '127.0.0.1:1' } });
      assert.unreachable('pull from 127.0.0.1:1 succeeded');
    } catch (err) {
      assert.instance(err, ImagePullError);
      assert.is((err as ImagePullError).reason, 'ErrImagePull');
      assert.is((err as Error).message, 'Get "http://127.0.0.1:1/v2/": dial tcp 127.0.0.1:1: connect: connection refused', 'the engine\'s own words');
    }
  });

  test('sandbox and container run, are listed by label and inspected with the restart count label', async ({ h }) => {
    const { sandboxId, container } = await pod(h);
    const id = await container(h.programs.sleep());
    const listed = await h.runtime.listContainers(h.labels);
    assert.equal(listed.map((c) => c.id).sort(), [sandboxId, id].sort());
    assert.equal((await h.runtime.listContainers({ ...h.labels, role: 'app' })).map((c) => c.id), [id]);
    assert.equal(await h.runtime.listContainers({ ...h.labels, role: 'nobody' }), []);
    const s = await h.runtime.inspectContainer(id);
    assert.is(s.state, 'running');
    assert.is(s.exitCode, null);
    assert.is(s.restartCount, 2);
    assert.ok(s.startedAt && !Number.isNaN(Date.parse(s.startedAt)));
    assert.ok((await h.runtime.inspectContainer(sandboxId)).ip, 'sandbox has an IP address');
  });

  test('runtimeHandlers lists the default runc; a container runs with a runtime named from it; an unknown one is refused', async ({ h }) => {
    const handlers = await h.runtime.runtimeHandlers();
    assert.ok(handlers.includes('runc'), JSON.stringify(handlers));
    const { container } = await pod(h);
    const id = await container(h.programs.sleep(), { runtime: 'runc' });
    assert.is((await h.runtime.inspectContainer(id)).state, 'running');
    try {
      await container(h.programs.sleep(), { runtime: `no-such-runtime-${process.pid}` });
      assert.unreachable('an unknown runtime was accepted');
    } catch (err) {
      assert.match((err as Error).message, /runtime/);
    }
  });

  test('a container that exits reports its exit code', async ({ h }) => {
    const { container } = await pod(h);
    const s = await exited(h, await container(h.programs.exit(3)));
    assert.is(s.exitCode, 3);
    assert.is(s.oomKilled, false);
    assert.ok(s.finishedAt);
  });

  test('logs: all lines, tail, and follow that ends when the container stops', async ({ h }) => {
    const { container } = await pod(h);
    const id = await container(h.programs.print(['one', 'two', 'three']));
    await eventually('three lines logged', async () => {
      const lines: string[] = [];
      for await (const l of h.runtime.logs(id)) lines.push(l.line);
      return lines.length === 3 ? lines : undefined;
    }).then((lines) => assert.equal(lines, ['one', 'two', 'three']));
    const tail: string[] = [];
    for await (const l of h.runtime.logs(id, { tail: 1 })) tail.push(l.line);
    assert.equal(tail, ['three']);
    const followed: string[] = [];
    const follow = (async () => {
      for await (const l of h.runtime.logs(id, { follow: true })) followed.push(l.line);
    })();
    await h.runtime.stopContainer(id, 1);
    await follow;
    assert.equal(followed, ['one', 'two', 'three']);
  });

  test('exec returns stdout, stderr and the exit code', async ({ h }) => {
    const { container } = await pod(h);
    const id = await container(h.programs.sleep());
    const r = await h.runtime.exec(id, h.execCommand);
    assert.equal(r, { exitCode: 3, stdout: 'out\n', stderr: 'err\n' });
  });

  test('ensureVolume makes a named volume with its driver options, once (an NFS volume of the local driver, not mounted)', async ({ h }) => {
    const name = `flotilla-contract-${process.pid}-nfs`;
    const options = { Name: name, Driver: 'local', DriverOpts: { type: 'nfs', o: 'addr=192.0.2.1,ro', device: ':/exports/x' } };
    try {
      await h.runtime.ensureVolume(options);
      assert.equal(await h.volume(name), { driver: 'local', options: options.DriverOpts });
      await h.runtime.ensureVolume({ ...options, DriverOpts: { type: 'nfs', o: 'addr=192.0.2.2', device: ':/y' } });
      assert.equal(await h.volume(name), { driver: 'local', options: options.DriverOpts }, 'an existing volume is kept as it is');
    } finally {
      await h.removeVolume(name);
    }
  });

  test('stop, remove, and removal of what is gone', async ({ h }) => {
    const { container } = await pod(h);
    const id = await container(h.programs.sleep());
    await h.runtime.stopContainer(id, 1);
    assert.is((await h.runtime.inspectContainer(id)).state, 'exited');
    await h.runtime.stopContainer(id, 1);
    await h.runtime.removeContainer(id);
    await h.runtime.removeContainer(id);
    try {
      await h.runtime.inspectContainer(id);
      assert.unreachable('inspect of a removed container succeeded');
    } catch (err) {
      assert.instance(err, ContainerNotFoundError);
    }
  });

  test('events: start and die of labelled containers reach the watcher', async ({ h }) => {
    const events: ContainerEvent[] = [];
    const ac = new AbortController();
    const watching = h.runtime.watchEvents({ ...h.labels, role: 'app' }, (e) => events.push(e), ac.signal);
    const { container } = await pod(h);
    // watchEvents gives no sign that it has started watching: containers are started until one is reported.
    const started: string[] = [];
    await eventually('the watcher reports a start', async () => {
      started.push(await container(h.programs.sleep()));
      return events.some((e) => e.type === 'start');
    }, { everyMs: 200 });
    const id = await container(h.programs.exit(0));
    started.push(id);
    await eventually('die event', () => events.some((e) => e.id === id && e.type === 'die'));
    ac.abort();
    await watching;
    assert.ok(events.some((e) => e.id === id && e.type === 'start'));
    assert.ok(events.every((e) => started.includes(e.id)), 'only the labelled containers are reported, not the sandbox');
  });

  test('ownership: a container of another cluster with the same node name is neither listed nor reported', async ({ h }) => {
    const n = `${process.pid}-${++serial}`;
    const mine = { ...h.labels, ...ownerLabels({ clusterId: `cluster-a-${n}`, nodeName: 'twin' }) };
    const theirs = { ...h.labels, ...ownerLabels({ clusterId: `cluster-b-${n}`, nodeName: 'twin' }) };
    const events: ContainerEvent[] = [];
    const ac = new AbortController();
    const watching = h.runtime.watchEvents(mine, (e) => events.push(e), ac.signal);
    await new Promise((r) => setTimeout(r, 200)); // let the event stream open before acting
    const sandboxes: Record<string, string> = {};
    const apps: Record<string, string> = {};
    for (const [who, labels] of [['mine', mine], ['theirs', theirs]] as const) {
      sandboxes[who] = await h.runtime.runSandbox({
        name: `flotilla-contract-${n}-${who}-pod`, image: h.sandbox.image, ...(h.sandbox.command ? { command: h.sandbox.command } : {}),
        hostname: `contract-${n}-${who}`, ports: [], labels,
      });
      apps[who] = await h.runtime.createContainer({ name: `flotilla-contract-${n}-${who}-app`, env: {}, mounts: [], sandboxId: sandboxes[who]!, labels, ...h.programs.exit(0) });
      await h.runtime.startContainer(apps[who]!);
    }
    assert.equal((await h.runtime.listContainers(mine)).map((c) => c.id).sort(), [sandboxes.mine!, apps.mine!].sort());
    assert.equal((await h.runtime.listContainers(theirs)).map((c) => c.id).sort(), [sandboxes.theirs!, apps.theirs!].sort());
    await eventually('their container exits', async () => ((await h.runtime.inspectContainer(apps.theirs!)).state === 'exited' ? true : undefined));
    await eventually('die event of mine', () => (events.some((e) => e.id === apps.mine && e.type === 'die') ? true : undefined));
    ac.abort();
    await watching;
    assert.not.ok(events.some((e) => e.id === apps.theirs || e.id === sandboxes.theirs), 'no event of the other cluster\'s containers');
  });

  test('a memory limit is enforced: the process is OOM-killed', async ({ h }) => {
    const { container } = await pod(h);
    const s = await exited(h, await container(h.programs.memoryHog(), { memoryBytes: 8 << 20 }));
    assert.is(s.oomKilled, true);
    assert.is(s.exitCode, 137);
  });

  test('stats report CPU time and memory of a running container', async ({ h }) => {
    const { container } = await pod(h);
    const id = await container(h.programs.sleep());
    const s = await h.runtime.stats(id);
    assert.ok(s.memoryBytes > 0, `memory ${s.memoryBytes}`);
    assert.ok(s.cpuNanos >= 0);
  });

  test('listImages names a present image with its id, size and platform, once', async ({ h }) => {
    const image = h.programs.sleep().image;
    await h.runtime.ensureImage(image);
    const images = await h.runtime.listImages();
    const found = images.filter((i) => i.names.includes(image));
    assert.is(found.length, 1, `${image} listed once`);
    assert.match(found[0]!.id, /^sha256:[0-9a-f]{64}$/);
    assert.ok(found[0]!.sizeBytes > 0);
    assert.is(found[0]!.os, 'linux');
    assert.ok(found[0]!.architecture.length > 0);
    assert.is(new Set(images.map((i) => i.id)).size, images.length, 'one entry per image');
  });

  test.run();
}
