// `flotilla image load|ls|rm`: images onto nodes without a registry. load sends a `docker save` archive (of an
// image of the local engine, or a file) through the servers to each chosen node's agent, which loads it only once
// it arrived whole with the digest sent along (server/api/routes/node-images.ts, node-agent/images/load.ts).
// Loading an image on one node is enough for pods elsewhere: agents fetch it from the nodes that hold it.
import { createHash } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
import { PassThrough, Transform, type Readable } from 'node:stream';
import { ARCHIVE_DIGEST_HEADER, nodeImagesPath, platformName } from '../api-types/index.js';
import { ApiClientError, type ApiClient } from '../client/client.js';
import { DockerRuntime } from '../node-agent/runtime/docker.js';
import type { ImageSummary } from '../node-agent/runtime/types.js';
import { boolFlag, listFlag, UsageError, type ParsedArgs } from './args.js';
import { clientFor, connectionFlags, type CliCommand, type Io } from './command.js';
import { renderTable } from './printers.js';

/** What the command line asks for; `nodes` undefined means every node. */
export type ImageCommand =
  | { verb: 'load'; source: string; nodes: string[] | undefined }
  | { verb: 'ls'; nodes: string[] | undefined }
  | { verb: 'rm'; image: string; nodes: string[] | undefined };

const USAGE = 'flotilla image load IMAGE|FILE.tar (--node NAME ... | --all) | flotilla image ls [--node NAME ...] | flotilla image rm IMAGE (--node NAME ... | --all)';

/** Reads the subcommand, its one argument and the node choice; what is wrong is a UsageError naming it. */
export function parseImageCommand(a: ParsedArgs): ImageCommand {
  const [verb, ...args] = a.positionals;
  if (verb !== 'load' && verb !== 'ls' && verb !== 'rm') throw new UsageError(verb ? `unknown image subcommand "${verb}" (load, ls, rm)` : 'name a subcommand: load, ls or rm');
  const named = listFlag(a, 'node');
  const all = boolFlag(a, 'all');
  if (named.length > 0 && all) throw new UsageError('give either --node NAME or --all, not both');
  for (const n of named) if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(n)) throw new UsageError(`--node "${n}" is not a node name`);
  const nodes = named.length > 0 ? [...new Set(named)] : undefined;
  if (verb === 'ls') {
    if (args.length > 0) throw new UsageError(`image ls takes no arguments, got "${args.join(' ')}"`);
    return { verb, nodes };
  }
  const what = verb === 'load' ? 'an image of the local Docker engine or an archive file (docker save)' : 'an image';
  if (args.length !== 1 || !args[0]) throw new UsageError(`image ${verb} takes one argument: ${what}${args.length > 1 ? `, got ${args.length}` : ''}`);
  if (!nodes && !all) throw new UsageError(`choose the nodes: --node NAME (repeatable) or --all`);
  return verb === 'load' ? { verb, source: args[0], nodes } : { verb, image: args[0], nodes };
}

export const imageCommand: CliCommand = {
  summary: 'load images onto nodes without a registry (load), list (ls) or remove (rm) them',
  usage: USAGE,
  flags: [...connectionFlags, { name: 'node', kind: 'list' }, { name: 'all', kind: 'boolean' }],
  async run(a, io, signal) {
    const command = parseImageCommand(a);
    const client = clientFor(a, io);
    try {
      const nodes = command.nodes ?? await allNodes(client);
      if (command.verb === 'load') return await load(client, command.source, nodes, io, signal);
      if (command.verb === 'rm') return await remove(client, command.image, nodes, io);
      return await list(client, nodes, io);
    } finally {
      client.close();
    }
  },
};

async function allNodes(client: ApiClient): Promise<string[]> {
  const list = await client.request<{ items: { metadata: { name: string } }[] }>('GET', '/api/v1/nodes');
  const names = list.items.map((n) => n.metadata.name).sort();
  if (names.length === 0) throw new ApiClientError('the cluster has no nodes', 404, 'NotFound');
  return names;
}

/**
 * What is sent to every node: an archive file as it is (its digest, computed first, leads the upload), or the
 * local engine's `docker save` of an image, read once and sent to all nodes as it is made (its digest follows each
 * upload as a trailer). `bytes` is known for a file only.
 */
interface ArchiveSource { bytes: number | undefined; bodies: (count: number) => Promise<{ bodies: Readable[]; digest: () => string }> }

async function archiveSource(source: string, io: Io): Promise<ArchiveSource> {
  const file = statSync(source, { throwIfNoEntry: false });
  if (file?.isFile()) {
    const digest = await fileDigest(source);
    return { bytes: file.size, bodies: async (count) => ({ bodies: Array.from({ length: count }, () => createReadStream(source, { highWaterMark: 1 << 20 })), digest: () => digest }) };
  }
  if (/\.tar(\.gz)?$/.test(source)) throw new UsageError(`${source}: no such file`);
  const docker = new DockerRuntime();
  const id = await docker.inspectImage(source).then((i) => i?.id).catch((err: unknown) => {
    throw new ApiClientError(`cannot ask the local Docker engine for image ${source}: ${err instanceof Error ? err.message : String(err)}`, 0, 'Unreachable');
  });
  if (id === undefined) throw new ApiClientError(`image ${source} is not in the local Docker engine (docker images lists what is; or give an archive file)`, 404, 'NotFound');
  io.err(`sending ${source} (${id.replace(/^sha256:/, '').slice(0, 12)}) as the local Docker engine saves it\n`);
  return {
    bytes: undefined,
    bodies: async (count) => {
      const hash = createHash('sha256');
      const saved = (await docker.saveImage(source)).pipe(new Transform({ transform(c: Buffer, _e, done) { hash.update(c); done(null, c); } }));
      // One reading for all: the slowest node sets the pace (pipe's back-pressure).
      const bodies = Array.from({ length: count }, () => saved.pipe(new PassThrough()));
      saved.on('error', (err) => { for (const b of bodies) b.destroy(err); });
      let digest: string | undefined;
      return { bodies, digest: () => (digest ??= `sha256:${hash.digest('hex')}`) };
    },
  };
}

async function fileDigest(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}

async function load(client: ApiClient, source: string, nodes: string[], io: Io, signal: AbortSignal): Promise<number> {
  const archive = await archiveSource(source, io);
  io.err(`loading ${source}${archive.bytes === undefined ? '' : ` (${megabytes(archive.bytes)})`} onto ${nodes.map((n) => `node/${n}`).join(', ')}\n`);
  const progress = new Progress(archive.bytes === undefined ? undefined : archive.bytes * nodes.length, io);
  const started = Date.now();
  const { bodies, digest } = await archive.bodies(nodes.length);
  let sent = 0;
  const results = await Promise.all(nodes.map(async (node, i) => {
    // A node that does not exist is named before its upload starts (the answer would otherwise race the upload).
    const known = await client.request('GET', `/api/v1/nodes/${encodeURIComponent(node)}`).then(() => undefined, (err: unknown) => (err instanceof Error ? err.message : String(err)));
    if (known !== undefined) {
      bodies[i]!.destroy();
      return { node, error: known };
    }
    const body = bodies[i]!.pipe(new Transform({ transform(c: Buffer, _e, done) { progress.add(c.length); if (i === 0) sent += c.length; done(null, c); } }));
    try {
      const headers: Record<string, string> = { 'content-type': 'application/x-tar' };
      if (archive.bytes !== undefined) Object.assign(headers, { 'content-length': String(archive.bytes), [ARCHIVE_DIGEST_HEADER]: digest() });
      const trailers = archive.bytes === undefined ? { names: [ARCHIVE_DIGEST_HEADER], values: () => ({ [ARCHIVE_DIGEST_HEADER]: digest() }) } : undefined;
      const loaded = await client.upload<{ images?: string[] }>(nodeImagesPath(node), body, headers, signal, trailers);
      return { node, loaded: loaded.images ?? [] };
    } catch (err) {
      body.destroy();
      return { node, error: err instanceof Error ? err.message : String(err) };
    }
  }));
  progress.done();
  const seconds = (Date.now() - started) / 1000;
  const bytes = archive.bytes ?? sent;
  let failed = 0;
  for (const r of results) {
    if ('error' in r) {
      failed++;
      io.err(`node/${r.node}: error: ${r.error}\n`);
    } else {
      io.out(`node/${r.node}: loaded ${r.loaded.join(', ') || source}\n`);
    }
  }
  if (failed < results.length) io.err(`${megabytes(bytes)} (${digest().slice(0, 19)}) to ${results.length - failed} node(s) in ${seconds.toFixed(1)}s (${megabytes(bytes * (results.length - failed) / Math.max(seconds, 0.001))}/s)\n`);
  return failed > 0 ? 1 : 0;
}

async function remove(client: ApiClient, image: string, nodes: string[], io: Io): Promise<number> {
  let failed = 0;
  for (const node of nodes) {
    try {
      await client.request('DELETE', `${nodeImagesPath(node)}?name=${encodeURIComponent(image)}`);
      io.out(`node/${node}: removed ${image}\n`);
    } catch (err) {
      if (!(err instanceof ApiClientError)) throw err;
      failed++;
      io.err(`node/${node}: error: ${err.message}\n`);
    }
  }
  return failed > 0 ? 1 : 0;
}

async function list(client: ApiClient, nodes: string[], io: Io): Promise<number> {
  const rows: string[][] = [];
  let failed = 0;
  for (const node of nodes) {
    try {
      const { images } = await client.request<{ images: ImageSummary[] }>('GET', nodeImagesPath(node));
      rows.push(...imageRows(node, images));
    } catch (err) {
      if (!(err instanceof ApiClientError)) throw err;
      failed++;
      io.err(`node/${node}: error: ${err.message}\n`);
    }
  }
  io.out(renderTable(['NODE', 'IMAGE', 'ID', 'SIZE', 'PLATFORM'], rows));
  return failed > 0 ? 1 : 0;
}

/** One row per repo:tag name of each image (repo@digest names are the same image again); `<none>` for an image without one. */
export function imageRows(node: string, images: readonly ImageSummary[]): string[][] {
  const rows: string[][] = [];
  for (const image of images) {
    const tags = image.names.filter((n) => !n.includes('@'));
    const id = image.id.replace(/^sha256:/, '').slice(0, 12);
    const platform = platformName(image);
    for (const name of tags.length > 0 ? tags : ['<none>']) rows.push([node, name, id, humanSize(image.sizeBytes), platform]);
  }
  return rows.sort((a, b) => a[1]!.localeCompare(b[1]!));
}

/** Docker's sizes (go-units HumanSize): decimal units, three significant digits ("1.98MB", "105MB"). */
export function humanSize(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) { value /= 1000; unit++; }
  return `${Number(value.toPrecision(3))}${units[unit]}`;
}

function megabytes(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

/** On a terminal (stderr), one line redrawn at most every 200 ms: bytes sent (of the total, when known) and the rate; elsewhere nothing. */
class Progress {
  private sent = 0;
  private drawnAt = 0;
  private readonly started = Date.now();
  constructor(private readonly total: number | undefined, private readonly io: Io) {}

  add(bytes: number): void {
    this.sent += bytes;
    if (!this.io.errIsTty || Date.now() - this.drawnAt < 200) return;
    this.drawnAt = Date.now();
    this.draw();
  }

  done(): void {
    if (!this.io.errIsTty) return;
    this.draw();
    this.io.err('\n');
  }

  private draw(): void {
    const rate = `${megabytes(this.sent / Math.max((Date.now() - this.started) / 1000, 0.001))}/s`;
    if (this.total === undefined) {
      this.io.err(`\r${megabytes(this.sent)} sent  ${rate} `);
      return;
    }
    const width = 30;
    const filled = this.total === 0 ? width : Math.round(width * Math.min(1, this.sent / this.total));
    this.io.err(`\r[${'='.repeat(filled)}${' '.repeat(width - filled)}] ${megabytes(this.sent)} / ${megabytes(this.total)}  ${rate} `);
  }
}
