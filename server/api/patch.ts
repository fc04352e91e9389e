// The patch formats kube-apiserver accepts on PATCH, as pure functions of (object, patch): JSON Patch (RFC 6902),
// JSON merge patch (RFC 7386, ./merge-patch.ts) and strategic merge patch (k8s.io/apimachinery
// pkg/util/strategicpatch) with the patch strategies and merge keys of the built-in kinds. Failures are StoreErrors
// with the codes kube-apiserver answers with: 400 for a patch that cannot be read, 422 for one that cannot apply.
import { StoreError } from '../store/types.js';
import { mergePatch } from './merge-patch.js';
import { badRequest } from '../objects/service.js';

export const JSON_PATCH = 'application/json-patch+json';
export const MERGE_PATCH = 'application/merge-patch+json';
export const STRATEGIC_MERGE_PATCH = 'application/strategic-merge-patch+json';
export const APPLY_PATCH = 'application/apply-patch+yaml';
export type PatchType = typeof JSON_PATCH | typeof MERGE_PATCH | typeof STRATEGIC_MERGE_PATCH | typeof APPLY_PATCH;
const PATCH_TYPES: readonly PatchType[] = [JSON_PATCH, MERGE_PATCH, APPLY_PATCH, STRATEGIC_MERGE_PATCH];

/** The patch type a Content-Type names; 415 with kube-apiserver's message for any other. */
export function patchTypeOf(contentType: string | undefined): PatchType {
  const media = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  const found = PATCH_TYPES.find((t) => t === media);
  if (found) return found;
  throw new StoreError({
    code: 415, reason: 'UnsupportedMediaType',
    message: `the body of the request was in an unknown format - accepted media types include: ${PATCH_TYPES.join(', ')}`,
  });
}

const unprocessable = (message: string) => new StoreError({ code: 422, reason: 'Invalid', message });

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// ---------------------------------------------------------------------------------------------------------------
// JSON Patch (RFC 6902)

interface Operation { op: string; path: string; from?: string; value?: Json }

/** Applies an RFC 6902 patch (an array of operations) to `doc`, which it does not change. */
export function jsonPatch(doc: unknown, patch: unknown): unknown {
  if (!Array.isArray(patch)) throw badRequest('a JSON Patch must be an array of operations');
  const ops = patch.map((op, i): Operation => {
    if (!isObject(op)) throw badRequest(`JSON Patch operation ${i}: expected an object`);
    if (typeof op.op !== 'string') throw badRequest(`JSON Patch operation ${i}: "op" is required`);
    if (typeof op.path !== 'string') throw badRequest(`JSON Patch operation ${i}: "path" is required`);
    if ((op.op === 'move' || op.op === 'copy') && typeof op.from !== 'string') throw badRequest(`JSON Patch operation ${i} (${op.op}): "from" is required`);
    if (['add', 'replace', 'test'].includes(op.op) && !('value' in op)) throw badRequest(`JSON Patch operation ${i} (${op.op}): "value" is required`);
    if (!['add', 'remove', 'replace', 'move', 'copy', 'test'].includes(op.op)) throw badRequest(`JSON Patch operation ${i}: unexpected op "${op.op}"`);
    return op as unknown as Operation;
  });
  let root = structuredClone(doc) as Json;
  for (const op of ops) {
    switch (op.op) {
      case 'add': root = addAt(root, op.path, structuredClone(op.value!)); break;
      case 'remove': root = removeAt(root, op.path).root; break;
      case 'replace': root = addAt(removeAt(root, op.path).root, op.path, structuredClone(op.value!)); break;
      case 'move': {
        if (op.path.startsWith(`${op.from!}/`)) throw unprocessable(`move operation: "${op.path}" is inside "${op.from!}"`);
        const taken = removeAt(root, op.from!);
        root = addAt(taken.root, op.path, taken.value);
        break;
      }
      case 'copy': root = addAt(root, op.path, structuredClone(valueAt(root, op.from!))); break;
      case 'test':
        if (canonical(valueAt(root, op.path)) !== canonical(op.value!)) throw unprocessable(`testing value ${op.path} failed: test failed`);
        break;
    }
  }
  return root;
}

function pointer(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw badRequest(`JSON Pointer "${path}" must start with "/"`);
  return path.slice(1).split('/').map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** The container holding `path`'s last token, and that token; 422 when the container is missing. */
function parentOf(root: Json, path: string): { parent: JsonObject | Json[]; last: string } {
  const tokens = pointer(path);
  const last = tokens.pop()!;
  let at: Json = root;
  for (const t of tokens) {
    const next: Json | undefined = Array.isArray(at) ? at[arrayIndex(at, t, path, false)] : isObject(at) ? at[t] : undefined;
    if (next === undefined || next === null || typeof next !== 'object') throw unprocessable(`doc is missing path: "${path}": missing value`);
    at = next;
  }
  if (at === null || typeof at !== 'object') throw unprocessable(`doc is missing path: "${path}": missing value`);
  return { parent: at, last };
}

function arrayIndex(a: Json[], token: string, path: string, forAdd: boolean): number {
  if (forAdd && token === '-') return a.length;
  if (!/^(0|[1-9]\d*)$/.test(token)) throw unprocessable(`path "${path}": "${token}" is not an array index`);
  const i = Number(token);
  if (i > a.length || (!forAdd && i === a.length)) throw unprocessable(`path "${path}": index ${i} is out of bounds (length ${a.length})`);
  return i;
}

function valueAt(root: Json, path: string): Json {
  if (path === '') return root;
  const { parent, last } = parentOf(root, path);
  const v = Array.isArray(parent) ? parent[arrayIndex(parent, last, path, false)] : parent[last];
  if (v === undefined) throw unprocessable(`doc is missing path: "${path}": missing value`);
  return v;
}

function addAt(root: Json, path: string, value: Json): Json {
  if (path === '') return value;
  const { parent, last } = parentOf(root, path);
  if (Array.isArray(parent)) parent.splice(arrayIndex(parent, last, path, true), 0, value);
  else parent[last] = value;
  return root;
}

function removeAt(root: Json, path: string): { root: Json; value: Json } {
  if (path === '') throw unprocessable('cannot remove the whole document');
  const { parent, last } = parentOf(root, path);
  if (Array.isArray(parent)) return { root, value: parent.splice(arrayIndex(parent, last, path, false), 1)[0]! };
  if (!(last in parent)) throw unprocessable(`unable to remove nonexistent key: ${last}: missing value`);
  const value = parent[last]!;
  delete parent[last];
  return { root, value };
}

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (isObject(v)) return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`).join(',')}}`;
  return JSON.stringify(v);
}

// ---------------------------------------------------------------------------------------------------------------
// Strategic merge patch

/**
 * What strategic merge knows of one field of a built-in type: the Go struct tags `patchStrategy` ("merge",
 * "retainKeys") and `patchMergeKey`, and the fields of the type it holds (a list's element type for a list).
 * A list without `merge` is replaced by the patch's list, as in Kubernetes (tolerations, taints, args, ...).
 */
export interface FieldPatchMeta { merge?: boolean; retainKeys?: boolean; key?: string; fields?: StructPatchMeta }
export type StructPatchMeta = Readonly<Record<string, FieldPatchMeta>>;

const byKey = (key: string, fields?: StructPatchMeta): FieldPatchMeta => ({ merge: true, key, ...(fields ? { fields } : {}) });
const conditions = byKey('type');
const objectMeta: StructPatchMeta = { finalizers: { merge: true }, ownerReferences: byKey('uid') };
const container: StructPatchMeta = { ports: byKey('containerPort'), env: byKey('name'), volumeMounts: byKey('mountPath'), volumeDevices: byKey('devicePath') };
const podSpec: StructPatchMeta = {
  containers: byKey('name', container), initContainers: byKey('name', container), ephemeralContainers: byKey('name', container),
  volumes: { ...byKey('name'), retainKeys: true }, imagePullSecrets: byKey('name'), hostAliases: byKey('ip'),
  topologySpreadConstraints: byKey('topologyKey'), resourceClaims: { ...byKey('name'), retainKeys: true }, schedulingGates: byKey('name'),
};
const podTemplate: FieldPatchMeta = { fields: { metadata: { fields: objectMeta }, spec: { fields: podSpec } } };
const workloadStatus: FieldPatchMeta = { fields: { conditions } };
const retainKeys: FieldPatchMeta = { retainKeys: true };

/** The patch metadata of each built-in kind that has any beyond metadata (k8s.io/api, the tags on each field). */
const kindPatchMeta: Readonly<Record<string, StructPatchMeta>> = {
  Pod: { spec: { fields: podSpec }, status: { fields: { conditions, podIPs: byKey('ip'), hostIPs: byKey('ip') } } },
  Node: { spec: { fields: { podCIDRs: { merge: true } } }, status: { fields: { conditions, addresses: byKey('type'), volumesAttached: byKey('name') } } },
  Namespace: { status: { fields: { conditions } } },
  Service: { spec: { fields: { ports: byKey('port') } }, status: { fields: { conditions } } },
  PersistentVolumeClaim: { status: { fields: { conditions } } },
  Deployment: { spec: { fields: { template: podTemplate, strategy: retainKeys } }, status: workloadStatus },
  ReplicaSet: { spec: { fields: { template: podTemplate } }, status: workloadStatus },
  DaemonSet: { spec: { fields: { template: podTemplate, updateStrategy: retainKeys } }, status: workloadStatus },
  StatefulSet: { spec: { fields: { template: podTemplate, updateStrategy: retainKeys } }, status: workloadStatus },
  Job: { spec: { fields: { template: podTemplate } }, status: workloadStatus },
  CronJob: { spec: { fields: { jobTemplate: { fields: { spec: { fields: { template: podTemplate } } } } } } },
  HorizontalPodAutoscaler: { status: workloadStatus },
};

/** The patch metadata of a whole object of `kind`: its kind's fields, and metadata's everywhere. */
export function patchMetaOf(kind: string): StructPatchMeta {
  return { metadata: { fields: objectMeta }, ...kindPatchMeta[kind] };
}

const DIRECTIVE = '$patch';
const RETAIN_KEYS = '$retainKeys';
const DELETE_FROM_PRIMITIVE_LIST = '$deleteFromPrimitiveList/';
const SET_ELEMENT_ORDER = '$setElementOrder/';

/**
 * Applies a strategic merge patch to `doc` (which it does not change), as k8s.io/apimachinery's
 * StrategicMergeMapPatch: maps merge, null deletes, lists with a merge strategy merge by their merge key (or,
 * of primitives, as a set), others are replaced; the directives $patch (replace, delete, merge),
 * $retainKeys, $deleteFromPrimitiveList/FIELD and $setElementOrder/FIELD as kubectl writes them.
 */
export function strategicMergePatch(doc: unknown, patch: unknown, meta: StructPatchMeta): unknown {
  if (!isObject(patch)) throw badRequest('a strategic merge patch must be a JSON object');
  return mergeMap(isObject(doc) ? structuredClone(doc) : {}, patch, meta);
}

function mergeMap(original: JsonObject, patch: JsonObject, meta: StructPatchMeta | undefined): JsonObject {
  const directive = patch[DIRECTIVE];
  if (directive !== undefined) {
    if (directive === 'replace') return stripDirectives(withoutKey(patch, DIRECTIVE)) as JsonObject;
    if (directive === 'delete') return {};
    if (directive !== 'merge') throw badRequest(`Unknown patch type: ${String(directive)} in map: ${JSON.stringify(patch)}`);
  }
  const retain = patch[RETAIN_KEYS];
  if (retain !== undefined) {
    if (!Array.isArray(retain) || !retain.every((k) => typeof k === 'string')) throw badRequest('invalid patch: the $retainKeys directive must be a list of field names');
    for (const k of Object.keys(patch)) {
      if (!k.startsWith('$') && !retain.includes(k)) throw unprocessable(`patch content doesn't match retainKeys list: ${k} is not in ${JSON.stringify(retain)}`);
    }
    for (const k of Object.keys(original)) if (!retain.includes(k)) delete original[k];
  }
  // Deletions from primitive lists first: a field may be both trimmed and added to in one patch.
  for (const [k, v] of Object.entries(patch)) {
    if (!k.startsWith(DELETE_FROM_PRIMITIVE_LIST)) continue;
    const field = k.slice(DELETE_FROM_PRIMITIVE_LIST.length);
    if (!Array.isArray(v)) throw badRequest(`invalid patch: ${k} must be a list`);
    const current = original[field];
    if (Array.isArray(current)) original[field] = current.filter((x) => !v.some((d) => canonical(d) === canonical(x)));
  }
  for (const [k, patchV] of Object.entries(patch)) {
    if (k === DIRECTIVE || k === RETAIN_KEYS || k.startsWith(DELETE_FROM_PRIMITIVE_LIST) || k.startsWith(SET_ELEMENT_ORDER)) continue;
    const field = meta?.[k];
    if (patchV === null) { delete original[k]; continue; }
    const originalV = original[k];
    if (isObject(patchV)) {
      original[k] = mergeMap(isObject(originalV) ? originalV : {}, patchV, field?.fields);
    } else if (Array.isArray(patchV)) {
      original[k] = mergeList(Array.isArray(originalV) ? originalV : [], patchV, field, k);
    } else {
      original[k] = patchV;
    }
  }
  for (const [k, order] of Object.entries(patch)) {
    if (!k.startsWith(SET_ELEMENT_ORDER)) continue;
    const field = k.slice(SET_ELEMENT_ORDER.length);
    if (!Array.isArray(order)) throw badRequest(`invalid patch: ${k} must be a list`);
    const list = original[field];
    if (Array.isArray(list)) original[field] = inElementOrder(list, order, meta?.[field]?.key);
  }
  return original;
}

function mergeList(original: Json[], patch: Json[], field: FieldPatchMeta | undefined, name: string): Json[] {
  const replace = patch.findIndex((e) => isObject(e) && e[DIRECTIVE] === 'replace');
  if (replace >= 0) return patch.filter((_, i) => i !== replace).map(stripDirectives);
  if (!field?.merge) return patch.map(stripDirectives);
  if (!patch.some(isObject) && !original.some(isObject)) {
    const out: Json[] = [];
    for (const v of [...original, ...patch]) if (!out.some((x) => canonical(x) === canonical(v))) out.push(v);
    return out;
  }
  const key = field.key;
  if (key === undefined) throw badRequest(`the list ${name} has a merge strategy but no merge key`);
  const out = [...original];
  for (const element of patch) {
    if (Array.isArray(element)) throw unprocessable('lists of lists are not supported');
    if (!isObject(element)) throw badRequest(`the elements of ${name} must be objects`);
    if (!(key in element)) throw badRequest(`map: ${JSON.stringify(element)} does not contain declared merge key: ${key}`);
    const at = out.findIndex((o) => isObject(o) && canonical(o[key]) === canonical(element[key]));
    if (element[DIRECTIVE] === 'delete') {
      if (at >= 0) out.splice(at, 1);
      continue;
    }
    if (at >= 0) out[at] = mergeMap(out[at] as JsonObject, element, field.fields);
    else out.push(mergeMap({}, element, field.fields));
  }
  return out;
}

/**
 * `list` ordered as `order` says (kubectl's $setElementOrder: the elements of the applied configuration, by
 * merge key or value); elements it does not name (added by others) keep their place after the one before them.
 */
function inElementOrder(list: Json[], order: Json[], key: string | undefined): Json[] {
  const id = (e: Json) => canonical(key !== undefined && isObject(e) ? e[key] : e);
  const wanted = order.map((o) => canonical(key !== undefined && isObject(o) ? o[key] : o));
  const rank = new Map(wanted.map((w, i) => [w, i]));
  const named = list.filter((e) => rank.has(id(e))).sort((a, b) => rank.get(id(a))! - rank.get(id(b))!);
  const out: Json[] = [];
  let next = 0;
  for (const e of list) out.push(rank.has(id(e)) ? named[next++]! : e);
  return out;
}

function withoutKey(o: JsonObject, key: string): JsonObject {
  const { [key]: _dropped, ...rest } = o;
  return rest;
}

/** A value from a patch as it is stored: with no directive left in it. */
function stripDirectives(v: Json): Json {
  if (Array.isArray(v)) return v.filter((e) => !(isObject(e) && e[DIRECTIVE] === 'delete')).map(stripDirectives);
  if (!isObject(v)) return v;
  const out: JsonObject = {};
  for (const [k, x] of Object.entries(v)) if (!k.startsWith('$')) out[k] = stripDirectives(x);
  return out;
}

/** Applies a patch of `type` to `doc` (apply-patch is server-side apply, which needs field managers). */
export function applyPatch(type: Exclude<PatchType, typeof APPLY_PATCH>, doc: unknown, patch: unknown, kind: string): unknown {
  switch (type) {
    case JSON_PATCH: return jsonPatch(doc, patch);
    case MERGE_PATCH:
      if (!isObject(patch)) throw badRequest('a merge patch must be a JSON object');
      return mergePatch(doc, patch);
    case STRATEGIC_MERGE_PATCH: return strategicMergePatch(doc, patch, patchMetaOf(kind));
  }
}
