// Image archives between agents, on loopback with the fake runtime: an archive is loaded only when it arrived
// whole with its digest, and its file is gone in every case; a node fetches a missing image from the Ready peer
// that lists it, over mutual TLS with node certificates, once for concurrent asks; the peer endpoint admits a node
// certificate to the archive and to nothing else; an impostor peer is not fetched from.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import https from 'node:https';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createHash } from 'node:crypto';
import pino from 'pino';
import { ANNOTATION_NODE_KEY, type Node } from '../../api-types/index.js';
import { NODE_GROUP, certificateInfo, createCsr, newKeyPair, nodeCommonName, privateKeyPem } from '../../client/pki.js';
import { startEndpoint, type AgentEndpoint } from '../../node-agent/endpoint.js';
import { ArchiveDigestError, IMAGE_TRANSFER_DIR, loadArchive } from '../../node-agent/images/load.js';
import { peerImageSource, peersHolding } from '../../node-agent/images/peer-fetch.js';
import type { NodeTlsMaterial } from '../../node-agent/node-certificate.js';
import { FakeRuntime } from '../../node-agent/runtime/fake.js';
import { ClusterCa } from '../../server/pki/ca.js';

const log = pino({ level: 'silent' });
const dirs: string[] = [];
const endpoints: AgentEndpoint[] = [];
function dataDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'flotilla-image-archive-'));
  dirs.push(d);
  return d;
}
test.after(async () => {
  for (const e of endpoints) await e.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const transfers = (dir: string) => readdirSync(join(dir, IMAGE_TRANSFER_DIR));

async function archiveOf(runtime: FakeRuntime, image: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of await runtime.saveImage(image)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

test('an archive is loaded once it arrived whole with its digest; otherwise nothing is loaded and no file is left', async () => {
  const archive = await archiveOf(new FakeRuntime({ images: ['web:1'] }), 'web:1');
  const runtime = new FakeRuntime();
  const dir = dataDir();
  const loaded = await loadArchive(runtime, Readable.from([archive]), { dataDir: dir, expectedDigest: () => sha256(archive) });
  assert.equal({ ...loaded, receiveMs: 0, loadMs: 0 }, { images: ['web:1'], digest: sha256(archive), bytes: archive.length, receiveMs: 0, loadMs: 0 });
  assert.ok((await runtime.inspectImage('web:1'))?.id);
  assert.equal(transfers(dir), []);

  const other = new FakeRuntime();
  const wrong = await loadArchive(other, Readable.from([archive]), { dataDir: dir, expectedDigest: () => `sha256:${'0'.repeat(64)}` }).catch((err: unknown) => err);
  assert.instance(wrong, ArchiveDigestError);
  assert.match((wrong as Error).message, `the archive's digest is ${sha256(archive)}, not sha256:${'0'.repeat(64)}`);
  const none = await loadArchive(other, Readable.from([archive]), { dataDir: dir, expectedDigest: () => undefined }).catch((err: unknown) => err);
  assert.match((none as Error).message, 'the archive came without its digest');
  // The sender fails half-way: the half that arrived is removed with the failure.
  const cut = new Readable({ read() { this.push(archive.subarray(0, 5)); this.destroy(new Error('connection reset')); } });
  const broken = await loadArchive(other, cut, { dataDir: dir, expectedDigest: () => sha256(archive) }).catch((err: unknown) => err);
  assert.match((broken as Error).message, 'connection reset');
  assert.is(await other.inspectImage('web:1'), undefined);
  assert.equal(transfers(dir), []);
});

test('only Ready peers listing the image (under any name Docker resolves to it) are asked', () => {
  const node = (name: string, ready: string, names: string[]): Node => ({
    apiVersion: 'v1', kind: 'Node', metadata: { name },
    status: { conditions: [{ type: 'Ready', status: ready }], images: [{ names, sizeBytes: 1 }] },
  } as Node);
  const nodes = [node('c', 'True', ['web:1']), node('self', 'True', ['web:1']), node('b', 'Unknown', ['web:1']), node('a', 'True', ['docker.io/library/web:1']), node('d', 'True', ['web:2'])];
  assert.equal(peersHolding(nodes, 'web:1', 'self').map((p) => [p.node.metadata.name, p.name]), [['a', 'docker.io/library/web:1'], ['c', 'web:1']]);
});

async function nodeTls(ca: ClusterCa, nodeName: string): Promise<NodeTlsMaterial> {
  const keys = await newKeyPair();
  const certPem = await ca.signCsr(await createCsr(keys, { commonName: 'ignored' }), { commonName: nodeCommonName(nodeName), organizations: [NODE_GROUP], altNames: ['127.0.0.1', nodeName] }, { usage: 'server+client' });
  return { certPem, keyPem: await privateKeyPem(keys.privateKey), caPem: ca.certPem };
}

/** Node `name` as the servers hold it: Ready, its endpoint on loopback, its key, and the images it lists. */
function nodeObject(name: string, port: number, tls: NodeTlsMaterial, images: string[]): Node {
  return {
    apiVersion: 'v1', kind: 'Node',
    metadata: { name, annotations: { [ANNOTATION_NODE_KEY]: `sha256:${certificateInfo(tls.certPem).publicKeySha256}` } },
    status: {
      conditions: [{ type: 'Ready', status: 'True' }], addresses: [{ type: 'InternalIP', address: '127.0.0.1' }],
      daemonEndpoints: { kubeletEndpoint: { Port: port } }, images: [{ names: images, sizeBytes: 1 }],
    },
  } as Node;
}

function get(port: number, tls: NodeTlsMaterial, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    https.get({ host: '127.0.0.1', port, path, agent: false, ca: tls.caPem, cert: tls.certPem, key: tls.keyPem, servername: 'n1' }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).on('error', reject);
  });
}

test('a missing image comes from the peer that holds it, once for concurrent asks; a node may fetch archives only', async () => {
  const ca = await ClusterCa.create('peer-fetch-test');
  const [n1, n2] = [await nodeTls(ca, 'n1'), await nodeTls(ca, 'n2')];
  const holder = new FakeRuntime({ images: ['web:1'] });
  let saves = 0;
  const save = holder.saveImage.bind(holder);
  holder.saveImage = (image) => { saves++; return save(image); };
  const endpoint = await startEndpoint({ runtime: holder, clusterId: 'c1', nodeName: 'n1', dataDir: dataDir(), tls: n1, host: '127.0.0.1', port: 0, log });
  endpoints.push(endpoint);
  assert.is(await get(endpoint.port, n2, '/v1/images'), 403, 'a node listed another node\'s images');
  assert.is(await get(endpoint.port, n2, '/v1/images/archive?name=nope:1'), 404);

  const runtime = new FakeRuntime();
  const dir = dataDir();
  const stop = new AbortController();
  let lists = 0;
  const fetchImage = peerImageSource({
    runtime, nodeName: 'n2', dataDir: dir, tls: () => n2, signal: stop.signal, log,
    nodes: async () => { lists++; return [nodeObject('n1', endpoint.port, n1, ['web:1']), nodeObject('n2', 0, n2, [])]; },
  });
  assert.equal(await Promise.all([fetchImage('web:1'), fetchImage('web:1'), fetchImage('web:1')]), [true, true, true]);
  assert.is(saves, 1, 'concurrent asks fetched more than once');
  assert.is(lists, 1);
  assert.ok((await runtime.inspectImage('web:1'))?.id);
  assert.equal(transfers(dir), []);
  assert.is(await fetchImage('other:1'), false, 'an image no peer lists');

  // A peer whose certificate is another node's (the Node lists n1's endpoint, but n2's key): not fetched from.
  const fooled = new FakeRuntime();
  const fetchFromImpostor = peerImageSource({
    runtime: fooled, nodeName: 'n3', dataDir: dataDir(), tls: () => n2, signal: stop.signal, log,
    nodes: async () => [nodeObject('n9', endpoint.port, n2, ['web:1'])],
  });
  assert.is(await fetchFromImpostor('web:1'), false);
  assert.is(await fooled.inspectImage('web:1'), undefined);
  assert.is(saves, 1);
  stop.abort();
});

test.run();
