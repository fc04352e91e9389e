import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, extname } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { validateObject, resourceForKind } from '../api-types/index.js';
import type { KubeObject, ResourceInfo } from '../api-types/index.js';

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
      const v = validateObject(withNs);
      if (!v.ok) errors.push(...v.issues.map((issue: { path: string; message: string }) => `${at}: ${issue.path}: ${issue.message}`));
      else if (!v.object.metadata.name) errors.push(`${at}: metadata.name: required (generateName alone cannot be applied)`);
      else out.push({ source: at, name: v.object.metadata.name, object: v.object, resource: v.resource });
    });
  });
}

/** Puts namespaced objects that name no namespace into the -n namespace; one written in the file wins. */
function withNamespace(obj: Record<string, unknown>, namespace: string): Record<string, unknown> {
  const meta = (obj.metadata && typeof obj.metadata === 'object' ? obj.metadata : {}) as Record<string, unknown>;
  if (meta.namespace !== undefined) return obj;
  if (!resourceForKind(String(obj.apiVersion), String(obj.kind))?.namespaced) return obj;
  return { ...obj, metadata: { ...meta, namespace } };
}
