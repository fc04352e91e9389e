// The one reading of an API request body into a value: JSON (strict, as kube-apiserver's strict decoding) or
// YAML. Bodies are bounded before anything recursive sees them: merge patches, validation, canonical JSON and the
// store all walk objects recursively, so a body nested deeper than any Kubernetes object is refused here with 400.
import { parse as parseYaml } from 'yaml';
import { badRequest } from '../objects/service.js';

/**
 * How deeply objects and arrays may nest in a request body. The deepest served kinds nest about 15 levels
 * (a Deployment's pod template affinity terms); what walks objects recursively is safe far beyond this.
 */
export const MAX_BODY_NESTING = 100;

/**
 * An upper bound of a YAML text's nesting that the yaml parser is kept under: it recurses once per level and
 * fails the whole process (out of memory) somewhere past a thousand levels instead of throwing.
 */
const MAX_YAML_STRUCTURE = 500;

/** Parses a request body; `what` names it in errors ("the request body", "the DeleteOptions body"). */
export function parseBody(text: string, yaml: boolean, what = 'the request body'): unknown {
  if (yaml) {
    if (yamlStructureBound(text) > MAX_YAML_STRUCTURE) throw tooDeep(what);
    let value: unknown;
    try {
      value = parseYaml(text);
    } catch (err) {
      throw badRequest(`${what} is not valid YAML: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (nestingOf(value) > MAX_BODY_NESTING) throw tooDeep(what);
    return value;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw badRequest(`${what} is not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  checkJsonStructure(text, what);
  return value;
}

const tooDeep = (what: string) => badRequest(`${what} is nested too deeply: objects and arrays may nest at most ${MAX_BODY_NESTING} levels`);

/** A container being scanned: its path (as kube names fields: `spec.containers[0].name`) and, for an object, its keys so far. */
interface Frame {
  path: string;
  keys?: Set<string>;
  /** The key whose value comes next (objects), or the index of the next element (arrays). */
  key: string;
  index: number;
}

/**
 * One pass over JSON text that JSON.parse accepted: refuses nesting deeper than MAX_BODY_NESTING, the key
 * "__proto__" and, as kube-apiserver's strict decoding does, an object that repeats a key (`duplicate field
 * "metadata.name"`).
 */
function checkJsonStructure(text: string, what: string): void {
  const stack: Frame[] = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (ch === 0x22 /* " */) {
      const start = i;
      let escaped = false;
      for (i++; i < text.length; i++) {
        const c = text.charCodeAt(i);
        if (c === 0x5c /* \ */) { escaped = true; i++; } else if (c === 0x22) break;
      }
      const top = stack[stack.length - 1];
      if (expectKey && top?.keys) {
        const key = escaped ? (JSON.parse(text.slice(start, i + 1)) as string) : text.slice(start + 1, i);
        if (top.keys.has(key)) throw badRequest(`strict decoding error: duplicate field "${childPath(top.path, key)}"`);
        // JavaScript objects cannot hold this key as data (assigning it replaces the prototype): it would be lost unseen.
        if (key === '__proto__') throw badRequest(`field "${childPath(top.path, key)}" is not accepted: "__proto__" cannot be a key`);
        top.keys.add(key);
        top.key = key;
        expectKey = false;
      }
    } else if (ch === 0x7b /* { */ || ch === 0x5b /* [ */) {
      if (stack.length >= MAX_BODY_NESTING) throw tooDeep(what);
      const parent = stack[stack.length - 1];
      const path = parent === undefined ? '' : parent.keys ? childPath(parent.path, parent.key) : `${parent.path}[${parent.index}]`;
      stack.push(ch === 0x7b ? { path, keys: new Set(), key: '', index: 0 } : { path, key: '', index: 0 });
      expectKey = ch === 0x7b;
    } else if (ch === 0x7d /* } */ || ch === 0x5d /* ] */) {
      stack.pop();
    } else if (ch === 0x2c /* , */) {
      const top = stack[stack.length - 1]!;
      if (top.keys) expectKey = true;
      else top.index++;
    }
  }
}

function childPath(parent: string, key: string): string {
  return parent === '' ? key : `${parent}.${key}`;
}

/** How deeply objects and arrays nest in a parsed value (0 for a scalar), without recursion. */
function nestingOf(value: unknown): number {
  let deepest = 0;
  const todo: [unknown, number][] = [[value, 0]];
  for (let next = todo.pop(); next !== undefined; next = todo.pop()) {
    const [v, depth] = next;
    if (v === null || typeof v !== 'object') continue;
    if (depth + 1 > deepest) deepest = depth + 1;
    if (deepest > MAX_BODY_NESTING) return deepest;
    for (const child of Object.values(v)) todo.push([child, depth + 1]);
  }
  return deepest;
}

/**
 * At least the nesting of a YAML text, found without parsing it: the deepest line's indentation plus the
 * compact block entries ("- - x") starting it plus the flow collections ('[', '{') open there. Brackets in
 * quoted scalars and comments count too, which only ever overestimates.
 */
function yamlStructureBound(text: string): number {
  let bound = 0;
  let flow = 0;
  for (const line of text.split('\n')) {
    let i = 0;
    while (line[i] === ' ') i++;
    let level = i;
    while ((line[i] === '-' || line[i] === '?') && (line[i + 1] === ' ' || i + 1 === line.length)) { level++; i += 2; while (line[i] === ' ') i++; }
    for (; i < line.length; i++) {
      const c = line[i];
      if (c === '[' || c === '{') { flow++; if (level + flow > bound) bound = level + flow; } else if ((c === ']' || c === '}') && flow > 0) flow--;
    }
    if (level + flow > bound) bound = level + flow;
  }
  return bound;
}
