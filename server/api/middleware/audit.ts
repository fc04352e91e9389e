// The audit log, as kube-apiserver's: one audit.k8s.io/v1 Event per request, as a JSON line, at the level an
// audit.k8s.io/v1 Policy gives it (None, Metadata, Request, RequestResponse; the first rule that matches decides,
// none matching is None), written to a file rotated by size (--audit-log-path, --audit-log-maxsize in MB,
// --audit-log-maxbackup, named as kube-apiserver names its backups: NAME-2006-01-02T15-04-05.000.EXT).
//
// Without a policy file every request is logged at Metadata. Secrets are never logged above Metadata, nor are
// the cluster routes (tokens, keys, backups, the CA): their bodies are credentials. The request's body is
// logged (level Request and up) as the handler read it; a body the handler never read is not read here.
import { randomUUID } from 'node:crypto';
import { closeSync, fstatSync, openSync, readdirSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import type { Context, MiddlewareHandler } from 'hono';
import { parse as parseYaml } from 'yaml';
import { requestInfo } from '../request-info.js';
import type { Identity } from './auth.js';

export type AuditLevel = 'None' | 'Metadata' | 'Request' | 'RequestResponse';
export type AuditStage = 'RequestReceived' | 'ResponseStarted' | 'ResponseComplete' | 'Panic';

const LEVELS: readonly AuditLevel[] = ['None', 'Metadata', 'Request', 'RequestResponse'];
const STAGES: readonly AuditStage[] = ['RequestReceived', 'ResponseStarted', 'ResponseComplete', 'Panic'];

export interface GroupResources { group?: string; resources?: string[]; resourceNames?: string[] }

/** A rule of an audit.k8s.io/v1 Policy. */
export interface PolicyRule {
  level: AuditLevel;
  users?: string[];
  userGroups?: string[];
  verbs?: string[];
  resources?: GroupResources[];
  namespaces?: string[];
  nonResourceURLs?: string[];
  omitStages?: AuditStage[];
  omitManagedFields?: boolean;
}

export interface AuditPolicy { rules: PolicyRule[]; omitStages?: AuditStage[] }

/** What applies without a policy file: everything at Metadata. */
export const DEFAULT_AUDIT_POLICY: AuditPolicy = { rules: [{ level: 'Metadata' }] };

/**
 * An audit.k8s.io/v1 (or v1beta1) Policy from its YAML or JSON text; anything not of the Policy schema is refused
 * with its path (`what` names the file).
 */
export function parseAuditPolicy(text: string, what: string): AuditPolicy {
  const fail = (message: string): never => { throw new Error(`audit policy ${what}: ${message}`); };
  let value: unknown;
  try {
    value = parseYaml(text);
  } catch (err) {
    fail(`not YAML (${(err as Error).message})`);
  }
  const object = (v: unknown, path: string, fields: string[]): Record<string, unknown> => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) fail(`${path} must be an object`);
    const unknown = Object.keys(v as object).filter((k) => !fields.includes(k));
    if (unknown.length > 0) fail(`${path}: unknown field "${unknown[0]}"`);
    return v as Record<string, unknown>;
  };
  const strings = (v: unknown, path: string): string[] | undefined => {
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) fail(`${path} must be a list of strings`);
    return v as string[];
  };
  const stages = (v: unknown, path: string): AuditStage[] | undefined => {
    const list = strings(v, path);
    const bad = list?.find((s) => !STAGES.includes(s as AuditStage));
    if (bad !== undefined) fail(`${path}: unknown stage "${bad}" (one of ${STAGES.join(', ')})`);
    return list as AuditStage[] | undefined;
  };
  const top = object(value, 'the policy', ['apiVersion', 'kind', 'metadata', 'rules', 'omitStages', 'omitManagedFields']);
  if (top.kind !== 'Policy' || (top.apiVersion !== 'audit.k8s.io/v1' && top.apiVersion !== 'audit.k8s.io/v1beta1')) fail('kind must be Policy, apiVersion audit.k8s.io/v1');
  if (!Array.isArray(top.rules)) fail('rules must be a list');
  const rules = (top.rules as unknown[]).map((r, i): PolicyRule => {
    const path = `rules[${i}]`;
    const rule = object(r, path, ['level', 'users', 'userGroups', 'verbs', 'resources', 'namespaces', 'nonResourceURLs', 'omitStages', 'omitManagedFields']);
    if (!LEVELS.includes(rule.level as AuditLevel)) fail(`${path}.level must be one of ${LEVELS.join(', ')}`);
    const resources = rule.resources === undefined ? undefined : Array.isArray(rule.resources)
      ? rule.resources.map((g, j) => {
        const gr = object(g, `${path}.resources[${j}]`, ['group', 'resources', 'resourceNames']);
        if (gr.group !== undefined && typeof gr.group !== 'string') fail(`${path}.resources[${j}].group must be a string`);
        const rs = strings(gr.resources, `${path}.resources[${j}].resources`);
        const names = strings(gr.resourceNames, `${path}.resources[${j}].resourceNames`);
        return { ...(gr.group !== undefined ? { group: gr.group as string } : {}), ...(rs ? { resources: rs } : {}), ...(names ? { resourceNames: names } : {}) };
      })
      : fail(`${path}.resources must be a list`);
    const nonResourceURLs = strings(rule.nonResourceURLs, `${path}.nonResourceURLs`);
    if (nonResourceURLs && (rule.resources !== undefined || rule.namespaces !== undefined)) fail(`${path}: rules can apply to API resources or non-resource URLs, but not both`);
    const out: PolicyRule = { level: rule.level as AuditLevel };
    for (const key of ['users', 'userGroups', 'verbs', 'namespaces'] as const) {
      const list = strings(rule[key], `${path}.${key}`);
      if (list) out[key] = list;
    }
    if (resources) out.resources = resources;
    if (nonResourceURLs) out.nonResourceURLs = nonResourceURLs;
    const omit = stages(rule.omitStages, `${path}.omitStages`);
    if (omit) out.omitStages = omit;
    return out;
  });
  const omitStages = stages(top.omitStages, 'omitStages');
  return { rules, ...(omitStages ? { omitStages } : {}) };
}

/** What a rule is matched against. */
export interface AuditAttributes {
  user: string;
  groups: readonly string[];
  verb: string;
  path: string;
  /** Set for a resource request. */
  resource?: { group: string; resource: string; subresource?: string; namespace?: string; name?: string };
}

/** The rule that decides `a` (kube-apiserver's policy checker: the first that matches), undefined when none does. */
export function matchingRule(policy: AuditPolicy, a: AuditAttributes): PolicyRule | undefined {
  return policy.rules.find((r) => ruleMatches(r, a));
}

function ruleMatches(r: PolicyRule, a: AuditAttributes): boolean {
  if (r.users?.length && !r.users.includes(a.user)) return false;
  if (r.userGroups?.length && !a.groups.some((g) => r.userGroups!.includes(g))) return false;
  if (r.verbs?.length && !r.verbs.includes(a.verb)) return false;
  if (r.namespaces?.length || r.resources?.length) return resourceMatches(r, a);
  if (r.nonResourceURLs?.length) return !a.resource && r.nonResourceURLs.some((spec) => spec === '*' || spec === a.path || (spec.endsWith('*') && a.path.startsWith(spec.replace(/\*+$/, ''))));
  return true;
}

function resourceMatches(r: PolicyRule, a: AuditAttributes): boolean {
  const res = a.resource;
  if (!res) return false;
  if (r.namespaces?.length && !r.namespaces.includes(res.namespace ?? '')) return false;
  if (!r.resources?.length) return true;
  const combined = res.subresource ? `${res.resource}/${res.subresource}` : res.resource;
  return r.resources.some((gr) => (gr.group ?? '') === res.group && (!gr.resources?.length || gr.resources.some((name) =>
    (!gr.resourceNames?.length || gr.resourceNames.includes(res.name ?? ''))
    && (name === combined || name === '*' || (res.subresource !== undefined && name.startsWith('*/') && name.slice(2) === res.subresource)
      || (name.endsWith('/*') && name.slice(0, -2) === res.resource)))));
}

/** Where events go: one JSON text per call. */
export interface AuditSink { write(line: string): void }

/**
 * An append-only log file (0600) rotated once the next line would take it past `maxBytes` (0: never): the file
 * is renamed to NAME-<UTC time>.EXT and a new one begun; beyond `maxBackups` (0: all kept) the oldest backups
 * are removed. Writes are synchronous: a line is in the file when the request's answer goes out.
 */
export class AuditLogFile implements AuditSink {
  #fd: number;
  #size: number;

  constructor(readonly path: string, readonly maxBytes = 0, readonly maxBackups = 0, readonly now: () => Date = () => new Date()) {
    this.#fd = openSync(path, 'a', 0o600);
    this.#size = fstatSync(this.#fd).size;
  }

  write(line: string): void {
    const bytes = Buffer.from(`${line}\n`);
    if (this.maxBytes > 0 && this.#size > 0 && this.#size + bytes.length > this.maxBytes) this.#rotate();
    writeSync(this.#fd, bytes);
    this.#size += bytes.length;
  }

  close(): void {
    closeSync(this.#fd);
  }

  /** The backups, oldest first. */
  backups(): string[] {
    const { stem, ext } = this.#parts();
    const pattern = new RegExp(`^${escapeRegExp(stem)}-\\d{4}-\\d\\d-\\d\\dT\\d\\d-\\d\\d-\\d\\d\\.\\d{3}${escapeRegExp(ext)}$`);
    return readdirSync(dirname(this.path)).filter((f) => pattern.test(f)).sort().map((f) => join(dirname(this.path), f));
  }

  #parts(): { stem: string; ext: string } {
    const ext = extname(this.path);
    return { stem: basename(this.path, ext), ext };
  }

  #rotate(): void {
    closeSync(this.#fd);
    const { stem, ext } = this.#parts();
    const stamp = this.now().toISOString().replace(/:/g, '-').replace(/Z$/, '');
    let target = join(dirname(this.path), `${stem}-${stamp}${ext}`);
    // Two rotations within one millisecond: the later one takes the next free millisecond's name.
    for (let t = this.now().getTime() + 1; this.backups().includes(target); t++) target = join(dirname(this.path), `${stem}-${new Date(t).toISOString().replace(/:/g, '-').replace(/Z$/, '')}${ext}`);
    renameSync(this.path, target);
    this.#fd = openSync(this.path, 'a', 0o600);
    this.#size = 0;
    if (this.maxBackups > 0) for (const old of this.backups().slice(0, -this.maxBackups)) rmSync(old, { force: true });
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export interface AuditOptions {
  policy: AuditPolicy;
  sink: AuditSink;
  now?: () => Date;
}

/** Subresources whose answer is a stream: their event is written as the stream starts (stage ResponseStarted). */
const STREAMING_SUBRESOURCES = new Set(['exec', 'attach', 'portforward', 'log', 'proxy']);

/** RFC 3339 with microseconds, as Kubernetes writes MicroTime. */
function microTime(d: Date): string {
  return d.toISOString().replace(/Z$/, '000Z');
}

/**
 * Writes one event per request once its answer is known. Mounted first, so that refusals (401, 413, 429) are in
 * the log too. Reads `identity` (auth middleware) and `auditAnnotations` (admission, e.g. pod security) from the
 * context; both may be absent.
 */
export function audit(options: AuditOptions): MiddlewareHandler {
  const now = options.now ?? (() => new Date());
  return async function auditLog(c, next) {
    const received = now();
    await next();
    const identity = c.get('identity' as never) as Identity | undefined;
    const user = identity ? { username: identity.name, groups: [...new Set([...(identity.groups ?? []), 'system:authenticated'])] } : { username: 'system:anonymous', groups: ['system:unauthenticated'] };
    const url = new URL(c.req.url);
    const info = requestInfo(c.req.method, url.pathname, url.searchParams.get('watch') ?? undefined);
    const verb = info?.verb ?? c.req.method.toLowerCase();
    const attributes: AuditAttributes = {
      user: user.username, groups: user.groups, verb, path: url.pathname,
      ...(info ? { resource: { group: info.group, resource: info.resource, ...(info.subresource ? { subresource: info.subresource } : {}), ...(info.namespace !== undefined ? { namespace: info.namespace } : {}), ...(info.name !== undefined ? { name: info.name } : {}) } } : {}),
    };
    const rule = matchingRule(options.policy, attributes);
    let level: AuditLevel = rule?.level ?? 'None';
    if (level === 'None') return;
    // Credentials: Secrets' values, and the cluster routes' tokens, keys and backups.
    if ((info?.resource === 'secrets' && info.group === '') || (!info && url.pathname.startsWith('/cluster/'))) level = 'Metadata';
    const streaming = verb === 'watch' || (info?.subresource !== undefined && STREAMING_SUBRESOURCES.has(info.subresource)) || c.req.header('upgrade') !== undefined;
    const stage: AuditStage = streaming && c.res.status < 300 ? 'ResponseStarted' : 'ResponseComplete';
    if ([...(options.policy.omitStages ?? []), ...(rule?.omitStages ?? [])].includes(stage)) return;
    const env = (c.env ?? {}) as { incoming?: { socket?: { remoteAddress?: string } } };
    const remote = env.incoming?.socket?.remoteAddress?.replace(/^::ffff:/, '');
    const forwarded = (c.req.header('x-forwarded-for') ?? '').split(',').map((s) => s.trim()).filter(Boolean);
    const realIp = c.req.header('x-real-ip');
    const sourceIPs = [...forwarded, ...(realIp && !forwarded.includes(realIp) ? [realIp] : []), ...(remote ? [remote] : [])];
    const status: Record<string, unknown> = { metadata: {}, code: c.res.status };
    let responseBody: unknown;
    if (!streaming && (c.res.status >= 400 || level === 'RequestResponse')) {
      responseBody = await c.res.clone().json().catch(() => undefined);
      const failure = responseBody as { kind?: unknown; status?: unknown; reason?: unknown; message?: unknown } | undefined;
      if (c.res.status >= 400 && failure?.kind === 'Status') {
        status.status = failure.status;
        if (failure.reason !== undefined) status.reason = failure.reason;
        if (level !== 'Metadata' || info?.resource !== 'secrets') status.message = failure.message;
      }
    }
    const requestObject = level === 'Metadata' ? undefined : await cachedBody(c);
    const annotations = c.get('auditAnnotations' as never) as Record<string, string> | undefined;
    const event = {
      kind: 'Event', apiVersion: 'audit.k8s.io/v1', level, auditID: c.req.header('audit-id') ?? randomUUID(), stage,
      requestURI: `${url.pathname}${url.search}`, verb, user, sourceIPs,
      ...(c.req.header('user-agent') !== undefined ? { userAgent: c.req.header('user-agent') } : {}),
      ...(info ? {
        objectRef: {
          resource: info.resource, ...(info.namespace !== undefined ? { namespace: info.namespace } : {}), ...(info.name !== undefined ? { name: info.name } : {}),
          ...(info.group !== '' ? { apiGroup: info.group } : {}), apiVersion: info.version, ...(info.subresource ? { subresource: info.subresource } : {}),
        },
      } : {}),
      responseStatus: status,
      ...(requestObject !== undefined ? { requestObject } : {}),
      ...(level === 'RequestResponse' && responseBody !== undefined ? { responseObject: responseBody } : {}),
      requestReceivedTimestamp: microTime(received), stageTimestamp: microTime(now()),
      ...(annotations && Object.keys(annotations).length > 0 ? { annotations } : {}),
    };
    options.sink.write(JSON.stringify(event));
  };
}

/** The request body as the handler read it (JSON, else its text); undefined when it was not read. */
async function cachedBody(c: Context): Promise<unknown> {
  const cache = (c.req as unknown as { bodyCache: Record<string, unknown> }).bodyCache;
  if (Object.keys(cache).length === 0) return undefined;
  const text = await c.req.text().catch(() => undefined);
  if (text === undefined || text === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}
