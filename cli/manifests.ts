import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, extname } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { apiPath, validateObject, resourceForKind } from '../api-types/index.js';
import type { KubeObject, ResourceInfo } from '../api-types/index.js';
import { ApiClientError } from '../client/client.js';
import type { ApiClient } from '../client/client.js';
import type { Io } from './command.js';
import { applyManifest, BULK_REQUESTS, inParallel, inWaves } from './apply.js';

export interface Manifest {
  /** Where the object came from, for messages: "examples/web.yaml document 2". */
  source: string;
  /** metadata.name, which every manifest must have (apply and delete address objects by name). */
  name: string;
  object: KubeObject;
  resource: ResourceInfo;
}

export class ManifestError extends Error {}

const MANIFEST_EXTENSIONS = new Set(['.yaml', '.yml', '.json']);

/**
 * Reads and validates every object in the given files, folders (their .yaml/.yml/.json files, sorted; with
 * `recursive`, sub-folders too) and `-` (stdin). All-or-nothing: any bad document throws a ManifestError
 * naming the file, the document's 1-based index and the field, before anything is sent to a server.
 */
export function readManifests(paths: readonly string[], opts: { readStdin: () => string; recursive?: boolean; namespace?: string }): Manifest[] {
  const out: Manifest[] = [];
  const errors: string[] = [];
  for (const path of paths) {
    for (const file of expand(path, opts.recursive ?? false)) {
      const text = file === '-' ? opts.readStdin() : readText(file);
      const name = file === '-' ? '<stdin>' : file;
      parseFile(name, text, opts.namespace, out, errors);
    }
  }
  if (errors.length > 0) throw new ManifestError(errors.join('\n'));
  if (out.length === 0) throw new ManifestError(`no objects found in ${paths.join(', ')}`);
  return out;
}

function expand(path: string, recursive: boolean): string[] {
  if (path === '-') return ['-'];
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new ManifestError(`${path}: no such file or directory`);
  }
  if (!st.isDirectory()) return [path];
  const files: string[] = [];
  for (const entry of readdirSync(path).sort()) {
    const p = join(path, entry);
    if (statSync(p).isDirectory()) { if (recursive) files.push(...expand(p, true)); }
    else if (MANIFEST_EXTENSIONS.has(extname(entry))) files.push(p);
  }
  return files;
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new ManifestError(`${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function parseFile(name: string, text: string, namespace: string | undefined, out: Manifest[], errors: string[]): void {
  const docs = parseAllDocuments(text, { prettyErrors: true });
  const list = Array.isArray(docs) ? docs : [docs];
  list.forEach((doc, i) => {
    const where = `${name}: document ${i + 1}`;
    if (doc.errors.length > 0) {
      errors.push(`${where}: malformed YAML: ${doc.errors[0]!.message.split('\n')[0]}`);
      return;
    }
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) return; // an empty document between separators
    if (typeof value !== 'object' || Array.isArray(value)) {
      errors.push(`${where}: expected an object with apiVersion and kind, got ${Array.isArray(value) ? 'a list' : typeof value}`);
      return;
    }
    const obj = value as Record<string, unknown>;
    const items = obj.kind === 'List' || (typeof obj.kind === 'string' && obj.kind.endsWith('List') && Array.isArray(obj.items)) ? obj.items : [obj];
    if (!Array.isArray(items)) { errors.push(`${where}: items: expected a list`); return; }
    items.forEach((item, j) => {
      const at = items.length > 1 || item !== obj ? `${where} item ${j + 1}` : where;
      const withNs = namespace && item && typeof item === 'object' ? withNamespace(item as Record<string, unknown>, namespace) : item;
      const m = manifestOf(at, withNs);
      if (Array.isArray(m)) errors.push(...m);
      else out.push(m);
    });
  });
}

/** One object as a Manifest, validated as the server will; else the issues, each prefixed by `source`. */
export function manifestOf(source: string, value: unknown): Manifest | string[] {
  const v = validateObject(value);
  if (!v.ok) return v.issues.map((issue: { path: string; message: string }) => `${source}: ${issue.path}: ${issue.message}`);
  if (!v.object.metadata.name) return [`${source}: metadata.name: required (generateName alone cannot be applied)`];
  return { source, name: v.object.metadata.name, object: v.object, resource: v.resource };
}

/** kubectl's name of an object in messages: deployment.apps/web, service/web. */
export function qualifiedName(r: ResourceInfo, name: string): string {
  return `${r.group ? `${r.singular}.${r.group}` : r.singular}/${name}`;
}

/**
 * `apply`'s write of each manifest (./apply.ts: up to BULK_REQUESTS at once): created when absent, else replaced
 * (keeping what the server and controllers own: resourceVersion and status), one line each on stdout as kubectl
 * prints, in the manifests' order (Namespaces first: inWaves). A refusal is printed
 * on stderr and counted; the count is returned. Connection failures throw.
 */
export async function applyManifests(client: ApiClient, manifests: readonly Manifest[], io: Pick<Io, 'out' | 'err'>): Promise<number> {
  let failed = 0;
  for (const wave of inWaves(manifests, (m) => m.resource, true)) await inParallel(wave, BULK_REQUESTS, (m) => {
    const namespace = m.resource.namespaced ? m.object.metadata.namespace ?? 'default' : undefined;
    return applyManifest(client, apiPath(m.resource, namespace), apiPath(m.resource, namespace, m.name), m.object);
  }, (m, outcome) => {
    const label = qualifiedName(m.resource, m.name);
    if (outcome.ok) return io.out(`${label} ${outcome.value}\n`);
    const err = outcome.error;
    if (!(err instanceof ApiClientError) || err.code === 0) throw err;
    failed++;
    io.err(`${m.source}: ${label}: ${err.message}\n`);
  });
  return failed;
}

/** Puts namespaced objects that name no namespace into the -n namespace; one written in the file wins. */
function withNamespace(obj: Record<string, unknown>, namespace: string): Record<string, unknown> {
  const meta = (obj.metadata && typeof obj.metadata === 'object' ? obj.metadata : {}) as Record<string, unknown>;
  if (meta.namespace !== undefined) return obj;
  if (!resourceForKind(String(obj.apiVersion), String(obj.kind))?.namespaced) return obj;
  return { ...obj, metadata: { ...meta, namespace } };
}
