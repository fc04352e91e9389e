// The node's images on a real Docker engine, through a real agent (in this process: no pod network, no service
// proxy) and a real server: Node.status.images as the kubelet reports them (flotilla/testbox among them, its
// size as Docker says) and status.imagePlatforms; an image loaded afterwards appears at once with its platform.
// That image's entrypoint is a program for another architecture (the pause program of node-agent/runtime/
// pause-image.ts), and a pod of it is reported as ExecFormatError naming both platforms, not as a crash loop.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Node, Pod } from '../../api-types/index.js';
import { MAX_NAMES_PER_IMAGE, NODE_STATUS_MAX_IMAGES } from '../../node-agent/images/inventory.js';
import { EXEC_FORMAT_ERROR } from '../../node-agent/pod-worker.js';
import { DockerRuntime } from '../../node-agent/runtime/docker.js';
import { pauseElf, singleFileTar, type PauseArch } from '../../node-agent/runtime/pause-image.js';
import { LABEL_NODE } from '../../node-agent/runtime/types.js';
import { eventually } from '../support/eventually.js';
import { setUp } from '../support/set-up.js';
import { RealServer, appPod } from './real-server.js';

const TESTBOX = 'flotilla/testbox:latest';
const NODE = `docker-images-${process.pid}`;
const HOST_ARCH: PauseArch = process.arch === 'arm64' ? 'arm64' : 'amd64';
const FOREIGN: PauseArch = HOST_ARCH === 'arm64' ? 'amd64' : 'arm64';
const FOREIGN_IMAGE = `flotilla-test/foreign-${process.pid}:1`;
/** binfmt_misc entries that would let the kernel run the foreign program through an emulator. */
const EMULATOR = `/proc/sys/fs/binfmt_misc/qemu-${FOREIGN === 'arm64' ? 'aarch64' : 'x86_64'}`;

const srv = new RealServer();
const runtime = new DockerRuntime();
const dir = mkdtempSync(join(tmpdir(), 'flotilla-images-docker-'));
let stopAgent: (() => Promise<void>) | undefined;

/**
 * A `docker save` archive of a one-layer image whose config says it is for linux/FOREIGN and whose entrypoint
 * is a program for FOREIGN (`docker import` would label it with the engine's own platform).
 */
function foreignImageArchive(): string {
  const root = join(dir, 'archive');
  mkdirSync(join(root, 'layer'), { recursive: true });
  const layer = singleFileTar('pause', pauseElf(FOREIGN));
  writeFileSync(join(root, 'layer', 'layer.tar'), layer);
  const config = JSON.stringify({
    architecture: FOREIGN, os: 'linux', ...(FOREIGN === 'arm64' ? { variant: 'v8' } : {}),
    config: { Entrypoint: ['/pause'] },
    rootfs: { type: 'layers', diff_ids: [`sha256:${createHash('sha256').update(layer).digest('hex')}`] },
  });
  const configName = `${createHash('sha256').update(config).digest('hex')}.json`;
  writeFileSync(join(root, configName), config);
  writeFileSync(join(root, 'manifest.json'), JSON.stringify([{ Config: configName, RepoTags: [FOREIGN_IMAGE], Layers: ['layer/layer.tar'] }]));
  const archive = join(dir, 'foreign.tar');
  execFileSync('tar', ['-cf', archive, '-C', root, 'manifest.json', configName, 'layer/layer.tar']);
  return archive;
}

const getNode = (): Promise<Node> => srv.client.request<Node>('GET', `/api/v1/nodes/${NODE}`);

setUp(test, async () => {
  await srv.start();
  const agent = srv.startAgent(NODE, runtime);
  stopAgent = agent.stop;
  await agent.ready;
}, async () => {
  await stopAgent?.();
  for (const c of await runtime.listContainers({ [LABEL_NODE]: NODE })) await runtime.removeContainer(c.id);
  await runtime.docker.getImage(FOREIGN_IMAGE).remove({ force: true }).catch(() => undefined);
  await srv.close();
  rmSync(dir, { recursive: true, force: true });
});

test('Node.status.images lists the engine\'s images as the kubelet does, with their platforms; a loaded image appears', async () => {
  const inspected = await runtime.docker.getImage(TESTBOX).inspect();
  const node = await eventually('the node reports flotilla/testbox', async () => {
    const n = await getNode();
    return n.status?.images?.some((i) => i.names?.includes(TESTBOX)) ? n : undefined;
  });
  const images = node.status!.images!;
  assert.ok(images.length <= NODE_STATUS_MAX_IMAGES);
  assert.ok(images.every((i, k) => k === 0 || images[k - 1]!.sizeBytes! >= i.sizeBytes!), 'largest first');
  assert.ok(images.every((i) => (i.names ?? []).length <= MAX_NAMES_PER_IMAGE));
  const testbox = images.find((i) => i.names?.includes(TESTBOX))!;
  assert.is(testbox.sizeBytes, inspected.Size);
  assert.equal(testbox.names, [...inspected.RepoDigests, ...inspected.RepoTags].slice(0, MAX_NAMES_PER_IMAGE), 'digests, then tags');
  const platform = node.status!.imagePlatforms!.find((p) => p.names.includes(TESTBOX));
  assert.equal(platform && { os: platform.os, architecture: platform.architecture }, { os: inspected.Os, architecture: inspected.Architecture });

  execFileSync('docker', ['load', '-i', foreignImageArchive()], { stdio: 'ignore' });
  const loaded = await eventually('the loaded image reported with its platform', async () => {
    const n = await getNode();
    return n.status?.imagePlatforms?.find((p) => p.names.includes(FOREIGN_IMAGE));
  }, 10_000);
  assert.equal({ os: loaded.os, architecture: loaded.architecture }, { os: 'linux', architecture: FOREIGN });
  assert.ok((await getNode()).status!.images!.some((i) => i.names?.includes(FOREIGN_IMAGE) && i.sizeBytes! > 0));
});

test('a container whose program is for another architecture is ExecFormatError, naming both platforms', async () => {
  if (existsSync(EMULATOR)) {
    console.log(`skipped: ${EMULATOR} is registered, so this machine runs ${FOREIGN} programs through an emulator`);
    return;
  }
  await srv.createPod(appPod('foreign', NODE, FOREIGN_IMAGE, { imagePullPolicy: 'Never' }));
  const expected = new RegExp(`exec format error: image "${FOREIGN_IMAGE}" is linux/${FOREIGN}.*, node ${NODE} is linux/${HOST_ARCH}`);
  const status = await eventually('the pod reports ExecFormatError', async () => {
    const pod = await srv.client.request<Pod>('GET', '/api/v1/namespaces/default/pods/foreign');
    const c = pod.status?.containerStatuses?.[0];
    return c?.lastState?.terminated?.reason === EXEC_FORMAT_ERROR && c.state?.waiting ? c : undefined;
  }, 60_000);
  assert.match(status.lastState!.terminated!.message ?? '', expected);
  assert.is(status.lastState!.terminated!.exitCode, 1);
  assert.is(status.state!.waiting!.reason, EXEC_FORMAT_ERROR, 'waiting under its own reason, not CrashLoopBackOff');
  assert.match(status.state!.waiting!.message ?? '', expected);
  assert.match(status.state!.waiting!.message ?? '', /back-off \d+m?s restarting failed container=main pod=foreign/);
});

test.run();
