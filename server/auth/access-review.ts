// authorization.k8s.io/v1 access reviews, answered as kube-apiserver answers them: SelfSubjectAccessReview
// (`kubectl auth can-i VERB RESOURCE`), SelfSubjectRulesReview (`kubectl auth can-i --list`) and
// SubjectAccessReview (a question about another user; asking it is itself the RBAC verb `create` on
// subjectaccessreviews, decided by the policy middleware before the route runs). The answer is the one policy's
// (./policy.ts): what a review says is allowed is exactly what a request would be allowed.
//
// kubectl sends these bodies in Kubernetes' protobuf envelope (client-go's default for built-in kinds), so the
// few fields of these three messages are read from protobuf as well as from JSON; answers are JSON, which
// client-go accepts whatever it asked for first.
import { Hono } from 'hono';
import type { Context } from 'hono';
import { z } from 'zod';
import { AUTHENTICATED_GROUP } from '../../api-types/index.js';
import type { PolicyRule } from '../../api-types/index.js';
import { identityOf } from '../api/middleware/auth.js';
import { StoreError } from '../store/types.js';
import { badRequest } from '../objects/service.js';
import { authorize, type Policy } from './policy.js';
import { rulesFor, type Attributes } from './rbac.js';
import { MASTERS_GROUP, SERVER_GROUP, identity, type Identity } from './identity.js';

const GROUP_VERSION = 'authorization.k8s.io/v1';

const resourceAttributes = z.strictObject({
  namespace: z.string().optional(), verb: z.string().optional(), group: z.string().optional(), version: z.string().optional(),
  resource: z.string().optional(), subresource: z.string().optional(), name: z.string().optional(),
  fieldSelector: z.unknown().optional(), labelSelector: z.unknown().optional(),
});
const nonResourceAttributes = z.strictObject({ path: z.string().optional(), verb: z.string().optional() });
const metadata = z.record(z.string(), z.unknown()).optional();
const accessReviewSpec = z.strictObject({
  resourceAttributes: resourceAttributes.optional(), nonResourceAttributes: nonResourceAttributes.optional(),
  user: z.string().optional(), groups: z.array(z.string()).optional(), uid: z.string().optional(),
  extra: z.record(z.string(), z.array(z.string())).optional(),
});
const accessReview = z.strictObject({ apiVersion: z.string().optional(), kind: z.string().optional(), metadata, spec: accessReviewSpec, status: z.unknown().optional() });
const rulesReview = z.strictObject({ apiVersion: z.string().optional(), kind: z.string().optional(), metadata, spec: z.strictObject({ namespace: z.string().optional() }), status: z.unknown().optional() });
type AccessReviewSpec = z.output<typeof accessReviewSpec>;

/** The `authorization.k8s.io/v1` review routes, answered by `policy`. */
export function accessReviewRoutes(policy: Policy): Hono {
  const app = new Hono();
  app.post(`/apis/${GROUP_VERSION}/selfsubjectaccessreviews`, async (c) => {
    const review = parse(accessReview, await reviewBody(c, 'SelfSubjectAccessReview'));
    return c.json(answer('SelfSubjectAccessReview', review.spec, caller(c), policy), 201);
  });
  app.post(`/apis/${GROUP_VERSION}/subjectaccessreviews`, async (c) => {
    const review = parse(accessReview, await reviewBody(c, 'SubjectAccessReview'));
    const { user, groups } = review.spec;
    if ((user ?? '') === '' && (groups ?? []).length === 0) throw invalid('SubjectAccessReview', 'spec.user', 'at least one of user or group must be specified');
    return c.json(answer('SubjectAccessReview', review.spec, identity(user ?? '', groups ?? []), policy), 201);
  });
  app.post(`/apis/${GROUP_VERSION}/selfsubjectrulesreviews`, async (c) => {
    const review = parse(rulesReview, await reviewBody(c, 'SelfSubjectRulesReview'));
    const namespace = review.spec.namespace ?? '';
    if (namespace === '') throw invalid('SelfSubjectRulesReview', 'spec.namespace', 'Required value');
    return c.json({ kind: 'SelfSubjectRulesReview', apiVersion: GROUP_VERSION, metadata: { creationTimestamp: null }, spec: { namespace }, status: rulesStatus(policy, caller(c), namespace) }, 201);
  });
  return app;
}

/** The authenticated caller, in system:authenticated as every authenticated request is. */
function caller(c: Context): Identity {
  const who = identityOf(c);
  return identity(who?.name ?? '', [...new Set([...(who?.groups ?? []), AUTHENTICATED_GROUP])]);
}

function answer(kind: string, spec: AccessReviewSpec, user: Identity, policy: Policy): Record<string, unknown> {
  const r = spec.resourceAttributes;
  const n = spec.nonResourceAttributes;
  if ((r === undefined) === (n === undefined)) throw invalid(kind, 'spec.resourceAttributes', 'exactly one of nonResourceAttributes or resourceAttributes must be specified');
  const a: Attributes = r !== undefined
    ? {
      user, verb: r.verb ?? '', apiGroup: r.group ?? '', resource: r.resource ?? '',
      ...(r.subresource ? { subresource: r.subresource } : {}), ...(r.namespace ? { namespace: r.namespace } : {}), ...(r.name ? { name: r.name } : {}),
    }
    : { user, verb: n!.verb ?? '', apiGroup: '', path: n!.path ?? '' };
  const info = r !== undefined
    ? { verb: a.verb, group: a.apiGroup, version: r.version ?? '', resource: a.resource!, extra: false, ...(a.subresource ? { subresource: a.subresource } : {}), ...(a.namespace ? { namespace: a.namespace } : {}), ...(a.name ? { name: a.name } : {}) }
    : undefined;
  const decision = authorize(policy, a, info);
  return {
    kind, apiVersion: GROUP_VERSION, metadata: { creationTimestamp: null }, spec,
    // As RBAC answers: a refusal names no reason (kubectl prints a bare "no"); the Forbidden text is for requests.
    status: { allowed: decision.allowed },
  };
}

/** SelfSubjectRulesReview's status: the superuser groups hold every rule; everyone else their RBAC rules. */
function rulesStatus(policy: Policy, user: Identity, namespace: string): Record<string, unknown> {
  const rules: readonly PolicyRule[] = user.groups.some((g) => g === MASTERS_GROUP || g === SERVER_GROUP)
    ? [{ verbs: ['*'], apiGroups: ['*'], resources: ['*'] }, { verbs: ['*'], nonResourceURLs: ['*'] }]
    : rulesFor(policy.rbac, user, namespace);
  const resourceRules = rules.filter((x) => (x.nonResourceURLs ?? []).length === 0)
    .map((x) => ({ verbs: x.verbs, apiGroups: x.apiGroups ?? [], resources: x.resources ?? [], ...(x.resourceNames ? { resourceNames: x.resourceNames } : {}) }));
  const nonResourceRules = rules.filter((x) => (x.nonResourceURLs ?? []).length > 0).map((x) => ({ verbs: x.verbs, nonResourceURLs: x.nonResourceURLs }));
  // Nodes are also authorized by the pods bound to them, which no rule lists: their list is incomplete, as kube says.
  const incomplete = user.groups.includes('system:nodes');
  return { resourceRules, nonResourceRules, incomplete };
}

function parse<T extends z.ZodType>(schema: T, value: unknown): z.output<T> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const first = r.error.issues[0]!;
  throw badRequest(`${first.path.join('.') || 'body'}: ${first.message}`);
}

function invalid(kind: string, field: string, message: string): StoreError {
  return new StoreError({ code: 422, reason: 'Invalid', message: `${kind}.authorization.k8s.io "" is invalid: ${field}: Invalid value: ${message}`, details: { kind, group: 'authorization.k8s.io', causes: [{ reason: 'FieldValueInvalid', message, field }] } });
}

/** The review in the request, from JSON or from Kubernetes' protobuf envelope. */
async function reviewBody(c: Context, kind: string): Promise<unknown> {
  const media = (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (media !== 'application/vnd.kubernetes.protobuf') {
    const text = await c.req.text();
    try { return JSON.parse(text) as unknown; } catch { throw badRequest(`the ${kind} in the request body is not valid JSON`); }
  }
  return decodeReview(new Uint8Array(await c.req.arrayBuffer()), kind);
}

/** Kubernetes' protobuf envelope: the magic "k8s\0", then runtime.Unknown { typeMeta = 1, raw = 2 }. */
const ENVELOPE_MAGIC = [0x6b, 0x38, 0x73, 0x00];

/**
 * The review in `bytes` as its JSON form. Field numbers are those of k8s.io/api/authorization/v1/generated.proto:
 * SubjectAccessReview { metadata = 1, spec = 2 }; SubjectAccessReviewSpec { resourceAttributes = 1,
 * nonResourceAttributes = 2, user = 3, groups = 4, uid = 6 } (SelfSubjectAccessReviewSpec has the first two);
 * ResourceAttributes { namespace = 1, verb = 2, group = 3, version = 4, resource = 5, subresource = 6, name = 7 };
 * NonResourceAttributes { path = 1, verb = 2 }; SelfSubjectRulesReviewSpec { namespace = 1 }.
 */
export function decodeReview(bytes: Uint8Array, kind: string): unknown {
  if (bytes.length < 4 || ENVELOPE_MAGIC.some((b, i) => bytes[i] !== b)) throw badRequest(`the ${kind} in the request body is not in Kubernetes' protobuf envelope`);
  try {
    const raw = field(fields(bytes.subarray(4)), 2);
    if (raw === undefined) throw new Error('the envelope holds no object');
    const spec = fields(field(fields(raw), 2) ?? new Uint8Array());
    const text = (m: Map<number, Uint8Array[]>, n: number) => { const v = field(m, n); return v === undefined ? undefined : new TextDecoder('utf-8', { fatal: true }).decode(v); };
    const strings = <K extends string>(m: Map<number, Uint8Array[]>, names: Record<number, K>) => {
      const out: Partial<Record<K, string>> = {};
      for (const [n, name] of Object.entries(names) as [string, K][]) { const v = text(m, Number(n)); if (v !== undefined && v !== '') out[name] = v; }
      return out;
    };
    if (kind === 'SelfSubjectRulesReview') return { spec: strings(spec, { 1: 'namespace' }) };
    const resource = field(spec, 1);
    const nonResource = field(spec, 2);
    const groups = (spec.get(4) ?? []).map((g) => new TextDecoder('utf-8', { fatal: true }).decode(g));
    return {
      spec: {
        ...(resource !== undefined ? { resourceAttributes: strings(fields(resource), { 1: 'namespace', 2: 'verb', 3: 'group', 4: 'version', 5: 'resource', 6: 'subresource', 7: 'name' }) } : {}),
        ...(nonResource !== undefined ? { nonResourceAttributes: strings(fields(nonResource), { 1: 'path', 2: 'verb' }) } : {}),
        ...strings(spec, { 3: 'user', 6: 'uid' }),
        ...(groups.length > 0 ? { groups } : {}),
      },
    };
  } catch (e) {
    if (e instanceof StoreError) throw e;
    throw badRequest(`the ${kind} in the request body is not valid protobuf: ${(e as Error).message}`);
  }
}

function field(m: Map<number, Uint8Array[]>, n: number): Uint8Array | undefined {
  const all = m.get(n);
  return all === undefined ? undefined : all[all.length - 1];
}

/** The length-delimited fields of one protobuf message by number (varint and fixed fields are skipped). */
function fields(b: Uint8Array): Map<number, Uint8Array[]> {
  const out = new Map<number, Uint8Array[]>();
  let i = 0;
  const varint = (): number => {
    let v = 0;
    for (let shift = 0; ; shift += 7) {
      if (i >= b.length || shift > 49) throw new Error('truncated varint');
      const byte = b[i++]!;
      v += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) return v;
    }
  };
  while (i < b.length) {
    const key = varint();
    const wire = key % 8;
    const n = Math.floor(key / 8);
    if (wire === 0) varint();
    else if (wire === 1) i += 8;
    else if (wire === 5) i += 4;
    else if (wire === 2) {
      const len = varint();
      if (i + len > b.length) throw new Error(`field ${n} runs past the end`);
      out.set(n, [...(out.get(n) ?? []), b.subarray(i, i + len)]);
      i += len;
    } else throw new Error(`unsupported wire type ${wire}`);
    if (i > b.length) throw new Error('truncated message');
  }
  return out;
}
