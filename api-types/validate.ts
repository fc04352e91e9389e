// Strict schemas for every kind, the validation entry point, Kubernetes defaults and the generation rule.
//
// Contract: unknown fields are refused (never dropped), one issue per field, with a path that reads like
// `spec.template.spec.containers[0].resources.limits.memory` (keys that are not identifiers are quoted:
// `metadata.labels["app.kubernetes.io/name"]`). Server-set metadata and status are accepted so that objects
// read from the server validate again unchanged.
import { z } from 'zod';
import { DELETION_PROPAGATIONS, FINALIZER_KUBERNETES } from './meta.js';
import type { DeleteOptions, KubeObject, ObjectMeta } from './meta.js';
import { dns1035LabelError, dns1123LabelError, dns1123SubdomainError, labelKeyError, labelValueError } from './names.js';
import { HIGHEST_USER_DEFINABLE_PRIORITY, SYSTEM_PRIORITY_CLASS_PREFIX, SYSTEM_PRIORITY_CLASSES } from './objects.js';
import type {
  Container, CronJob, DaemonSet, Deployment, HorizontalPodAutoscaler, IngressClass, Job, PersistentVolume, PersistentVolumeClaim, Pod, PodSpec,
  PriorityClass, Probe, ReplicaSet, Secret, Service, StatefulSet, StorageClass,
} from './objects.js';
import {
  ANNOTATION_GPU_IDS, ANNOTATION_GPU_MEMORY_MIN, ANNOTATION_GPU_MODEL, ANNOTATION_GPU_SHARING, ANNOTATION_IMAGE_ARCH, ANNOTATION_PLACEMENT,
  GPU_RESOURCE_AMD, GPU_RESOURCE_NVIDIA, parseGpuIds,
} from './well-known.js';
import { parseGpuModelPattern } from './gpu-model-pattern.js';
import { loadTimeZone, parseCronSchedule } from './cron-schedule.js';
import { parseQuantity } from './quantity.js';
import { canonicalJson } from './canonical.js';
import { allResources, bindingResource, resourceForKind } from './resources.js';
import type { ResourceInfo } from './resources.js';
import { labelSelectorFromSpec, matchesLabels } from './selector.js';
import { parseImageReference, type ImageReference } from './image-reference.js';

type Ctx = z.core.$RefinementCtx;
type PathPart = string | number;

function issue(ctx: Ctx, path: PathPart[], message: string): void {
  ctx.addIssue({ code: 'custom', message, path });
}

// ---- scalars -------------------------------------------------------------------------------------------

const str = z.string();
const int = z.number().int();
const int32 = int.min(-(2 ** 31), { error: 'must fit in 32 bits' }).max(2 ** 31 - 1, { error: 'must fit in 32 bits' });
/** Kubernetes' int64 fields (generations, uids and gids, grace periods, sizes): any safe integer >= 0. */
const nonNegInt64 = int.min(0, { error: 'must be greater than or equal to 0' });
/** Kubernetes' int32 fields (replicas, counts, limits, modes): what does not fit is refused, as decoding into int32 refuses it. */
const nonNegInt = nonNegInt64.max(2 ** 31 - 1, { error: 'must fit in 32 bits' });
const posInt = z.number().int().min(1, { error: 'must be greater than or equal to 1' });
const bool = z.boolean();
const strList = z.array(z.string());
const port = z.number().int().min(1, { error: 'must be between 1 and 65535' }).max(65535, { error: 'must be between 1 and 65535' });
/** hostPort and nodePort: 0 means "not set", as in Kubernetes. */
const portOrZero = z.number().int().min(0, { error: 'must be between 0 and 65535' }).max(65535, { error: 'must be between 0 and 65535' });
const intOrString = z.union([int, str], { error: 'must be an integer or a string' });
/** RFC 3339 time. */
const time = z.iso.datetime({ offset: true, error: 'must be an RFC 3339 time, e.g. 2024-01-02T03:04:05Z' });
/**
 * A time that may be null, meaning unset as in Kubernetes (`kubectl create --dry-run -o yaml` writes
 * `creationTimestamp: null`); the parsed object carries undefined instead, so its type stays `string`.
 */
const nullableTime = time.nullable().transform((v) => v ?? undefined).optional();
const protocol = z.enum(['TCP', 'UDP', 'SCTP']);
/** Longest string a node may report about itself in status.nodeInfo, status.gpus and status.hardware. The
 * scheduler and its pattern matching take these from nodes, so they are bounded like label values are. */
export const NODE_STATUS_STRING_MAX_LENGTH = 256;
const nodeString = str.max(NODE_STATUS_STRING_MAX_LENGTH, { error: (i) => `must be no more than ${NODE_STATUS_STRING_MAX_LENGTH} characters (got ${(i.input as string).length})` });

const quantity = z.union([z.string(), z.number()], { error: 'must be a quantity such as "500m", "2Gi" or 1' })
  .superRefine((v, ctx) => {
    try { parseQuantity(v); } catch (e) { issue(ctx, [], (e as Error).message); }
  });

function safeMilli(q: string | number): bigint | undefined {
  try { return parseQuantity(q).milli; } catch { return undefined; }
}

function named(rule: (s: string) => string | undefined) {
  return z.string().superRefine((v, ctx) => {
    const why = rule(v);
    if (why !== undefined) issue(ctx, [], why);
  });
}
const dnsLabel = named(dns1123LabelError);
const dnsSubdomain = named(dns1123SubdomainError);

/** IANA service name, as used for named ports: at most 15 of [a-z0-9-], at least one letter, no "--". */
function portNameError(v: string): string | undefined {
  if (v.length === 0 || v.length > 15) return `port name "${v}" must be 1 to 15 characters`;
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(v) || v.includes('--') || !/[a-z]/.test(v)) {
    return `port name "${v}" must be lowercase alphanumerics or '-', contain a letter, and not start, end or repeat '-'`;
  }
  return undefined;
}
const portName = named(portNameError);
const intOrPortName = z.union([port, portName], { error: 'must be a port number (1..65535) or a port name' });

/** Amounts of a resource (requests, limits, capacity, GPU memory) are never negative. */
const amount = quantity.superRefine((v, ctx) => {
  const milli = safeMilli(v);
  if (milli !== undefined && milli < 0n) issue(ctx, [], `must be greater than or equal to 0 (got ${JSON.stringify(v)})`);
});

const resourceList = z.record(z.string(), amount).superRefine((m, ctx) => {
  for (const key of Object.keys(m)) {
    const why = labelKeyError(key);
    if (why !== undefined) issue(ctx, [key], `invalid resource name: ${why}`);
  }
});

const labels = z.record(z.string(), z.string()).superRefine((m, ctx) => {
  for (const [key, value] of Object.entries(m)) {
    const why = labelKeyError(key) ?? labelValueError(value);
    if (why !== undefined) issue(ctx, [key], why);
  }
});

/** Kubernetes' bound on all of an object's annotations together (keys and values, in bytes). */
export const TOTAL_ANNOTATION_SIZE_LIMIT_BYTES = 256 * 1024;
/** Kubernetes' bound on the data of one ConfigMap or Secret (MaxSecretSize), in bytes. */
export const MAX_SECRET_SIZE_BYTES = 1024 * 1024;

/** Kubernetes' text for a value over a size bound (field.TooLong). */
const tooLong = (limit: number): string => `Too long: must have at most ${limit} bytes`;

/** The UTF-8 length of a string, as Go's len() counts what the bounds above limit. */
function utf8Bytes(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c < 0xdc00) { n += 1; i++; } else if (c >= 0x800) n += 2; else if (c >= 0x80) n += 1;
  }
  return n;
}

/** How many bytes a base64 value (as checked by base64Values) decodes to. */
function base64Bytes(s: string): number {
  return (s.length / 4) * 3 - (s.endsWith('==') ? 2 : s.endsWith('=') ? 1 : 0);
}

const annotations = z.record(z.string(), z.string()).superRefine((m, ctx) => {
  let total = 0;
  for (const [key, value] of Object.entries(m)) {
    const why = labelKeyError(key);
    if (why !== undefined) issue(ctx, [key], why);
    total += utf8Bytes(key) + utf8Bytes(value);
  }
  if (total > TOTAL_ANNOTATION_SIZE_LIMIT_BYTES) issue(ctx, [], tooLong(TOTAL_ANNOTATION_SIZE_LIMIT_BYTES));
});

/** The Flotilla pod annotations must be usable by the scheduler: checked wherever a pod's metadata is. */
const podAnnotations = annotations.superRefine((m, ctx) => {
  const memory = m[ANNOTATION_GPU_MEMORY_MIN];
  if (memory !== undefined) {
    try { parseQuantity(memory); } catch (e) { issue(ctx, [ANNOTATION_GPU_MEMORY_MIN], (e as Error).message); }
  }
  const model = m[ANNOTATION_GPU_MODEL];
  if (model !== undefined) {
    try { parseGpuModelPattern(model); } catch (e) { issue(ctx, [ANNOTATION_GPU_MODEL], (e as Error).message); }
  }
  const ids = m[ANNOTATION_GPU_IDS];
  if (ids !== undefined) {
    try { parseGpuIds(ids); } catch (e) { issue(ctx, [ANNOTATION_GPU_IDS], (e as Error).message); }
  }
  const sharing = m[ANNOTATION_GPU_SHARING];
  if (sharing !== undefined && sharing !== 'shared') issue(ctx, [ANNOTATION_GPU_SHARING], `must be "shared" (got "${sharing}")`);
  const placement = m[ANNOTATION_PLACEMENT];
  if (placement !== undefined && placement !== 'binpack' && placement !== 'spread') {
    issue(ctx, [ANNOTATION_PLACEMENT], `must be "binpack" or "spread" (got "${placement}")`);
  }
  const arch = m[ANNOTATION_IMAGE_ARCH];
  if (arch !== undefined && !/^[a-z0-9]+(,[a-z0-9]+)*$/.test(arch)) {
    issue(ctx, [ANNOTATION_IMAGE_ARCH], `must be a comma-separated list of architectures like "amd64,arm64" (got "${arch}")`);
  }
});

// ---- metadata ------------------------------------------------------------------------------------------

const ownerReference = z.strictObject({
  apiVersion: str, kind: str, name: str, uid: str, controller: bool.optional(), blockOwnerDeletion: bool.optional(),
});

interface MetaRules {
  /** Rule for metadata.name; undefined for pod template metadata, where the name is not used. */
  name?: (s: string) => string | undefined;
  namespaced: boolean;
  pod: boolean;
}

/** The metadata schema of a kind (or of a pod template); every variant has the same shape, ObjectMeta. */
export function metadataSchema(rules: MetaRules) {
  return z.strictObject({
    name: str.optional(),
    generateName: str.optional(),
    namespace: str.optional(),
    uid: str.optional(),
    resourceVersion: str.optional(),
    generation: nonNegInt64.optional(),
    creationTimestamp: nullableTime,
    deletionTimestamp: time.optional(),
    deletionGracePeriodSeconds: nonNegInt64.optional(),
    labels: labels.optional(),
    annotations: (rules.pod ? podAnnotations : annotations).optional(),
    ownerReferences: z.array(ownerReference).optional(),
    finalizers: strList.optional(),
  }).superRefine((m, ctx) => {
    if (rules.name !== undefined) {
      if (m.name !== undefined) {
        const why = rules.name(m.name);
        if (why !== undefined) issue(ctx, ['name'], why);
      } else if (m.generateName === undefined) {
        issue(ctx, ['name'], 'name or generateName is required');
      }
    }
    if (m.namespace !== undefined) {
      if (!rules.namespaced) issue(ctx, ['namespace'], 'not allowed on a cluster-scoped kind');
      else {
        const why = dns1123LabelError(m.namespace);
        if (why !== undefined) issue(ctx, ['namespace'], why);
      }
    }
  });
}

const templateMetadata = metadataSchema({ namespaced: true, pod: true });

// ---- shared pieces -------------------------------------------------------------------------------------

const condition = z.strictObject({
  type: str,
  status: z.enum(['True', 'False', 'Unknown']),
  reason: str.optional(),
  message: str.optional(),
  lastTransitionTime: time.optional(),
  lastHeartbeatTime: time.optional(),
  lastProbeTime: nullableTime,
  lastUpdateTime: time.optional(),
  observedGeneration: nonNegInt64.optional(),
});
const conditions = z.array(condition);

const objectReference = z.strictObject({
  apiVersion: str.optional(), kind: str.optional(), namespace: str.optional(), name: str.optional(),
  uid: str.optional(), resourceVersion: str.optional(), fieldPath: str.optional(),
});

const labelSelectorSpec = z.strictObject({
  matchLabels: labels.optional(),
  matchExpressions: z.array(z.strictObject({
    key: str,
    operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']),
    values: strList.optional(),
  })).optional(),
}).superRefine((s, ctx) => {
  (s.matchExpressions ?? []).forEach((e, i) => {
    if ((e.operator === 'In' || e.operator === 'NotIn') && (e.values ?? []).length === 0) {
      issue(ctx, ['matchExpressions', i, 'values'], `must be non-empty for operator ${e.operator}`);
    }
    if ((e.operator === 'Exists' || e.operator === 'DoesNotExist') && (e.values ?? []).length > 0) {
      issue(ctx, ['matchExpressions', i, 'values'], `must be empty for operator ${e.operator}`);
    }
    const why = labelKeyError(e.key);
    if (why !== undefined) issue(ctx, ['matchExpressions', i, 'key'], why);
    (e.values ?? []).forEach((v, j) => {
      const bad = labelValueError(v);
      if (bad !== undefined) issue(ctx, ['matchExpressions', i, 'values', j], bad);
    });
  });
});

// ---- Pod -----------------------------------------------------------------------------------------------

/** Extended resources (GPUs) come in whole units, and a request, when given, equals the limit. */
const WHOLE_UNIT_RESOURCES = new Set([GPU_RESOURCE_NVIDIA, GPU_RESOURCE_AMD]);

const resourceRequirements = z.strictObject({
  limits: resourceList.optional(),
  requests: resourceList.optional(),
}).superRefine((r, ctx) => {
  for (const [where, list] of [['limits', r.limits], ['requests', r.requests]] as const) {
    for (const [key, value] of Object.entries(list ?? {})) {
      if (!WHOLE_UNIT_RESOURCES.has(key)) continue;
      const milli = safeMilli(value);
      if (milli !== undefined && milli % 1000n !== 0n) {
        issue(ctx, [where, key], `must be a whole number of GPUs (got ${JSON.stringify(value)})`);
      }
    }
  }
  for (const [key, request] of Object.entries(r.requests ?? {})) {
    const limit = r.limits?.[key];
    if (limit === undefined) continue;
    const req = safeMilli(request);
    const lim = safeMilli(limit);
    if (req === undefined || lim === undefined) continue;
    if (WHOLE_UNIT_RESOURCES.has(key) && req !== lim) {
      issue(ctx, ['requests', key], `must equal the limit (${String(limit)}) for ${key}`);
    } else if (req > lim) {
      issue(ctx, ['requests', key], `must be less than or equal to the ${key} limit (${String(limit)})`);
    }
  }
});

const execAction = z.strictObject({ command: strList.optional() });
const httpGetAction = z.strictObject({
  path: str.optional(),
  port: intOrPortName,
  host: str.optional(),
  scheme: z.enum(['HTTP', 'HTTPS']).optional(),
  httpHeaders: z.array(z.strictObject({ name: str, value: str })).optional(),
});
const tcpSocketAction = z.strictObject({ port: intOrPortName, host: str.optional() });
const grpcAction = z.strictObject({ port, service: str.optional() });

const PROBE_HANDLERS = ['exec', 'httpGet', 'tcpSocket', 'grpc'] as const;

const probe = z.strictObject({
  exec: execAction.optional(),
  httpGet: httpGetAction.optional(),
  tcpSocket: tcpSocketAction.optional(),
  grpc: grpcAction.optional(),
  initialDelaySeconds: nonNegInt.optional(),
  timeoutSeconds: posInt.optional(),
  periodSeconds: posInt.optional(),
  successThreshold: posInt.optional(),
  failureThreshold: posInt.optional(),
  terminationGracePeriodSeconds: posInt.optional(),
}).superRefine((p, ctx) => {
  const given = PROBE_HANDLERS.filter((h) => p[h] !== undefined);
  if (given.length !== 1) {
    issue(ctx, [], `must specify exactly one handler of exec, httpGet, tcpSocket, grpc (got ${given.length === 0 ? 'none' : given.join(', ')})`);
  }
});

const lifecycleHandler = z.strictObject({
  exec: execAction.optional(),
  httpGet: httpGetAction.optional(),
  tcpSocket: tcpSocketAction.optional(),
  sleep: z.strictObject({ seconds: nonNegInt64 }).optional(),
});

const keySelector = z.strictObject({ name: str.optional(), key: str, optional: bool.optional() });

const envVar = z.strictObject({
  name: z.string().min(1, { error: 'must not be empty' }),
  value: str.optional(),
  valueFrom: z.strictObject({
    configMapKeyRef: keySelector.optional(),
    secretKeyRef: keySelector.optional(),
    fieldRef: z.strictObject({ apiVersion: str.optional(), fieldPath: str }).optional(),
    resourceFieldRef: z.strictObject({ containerName: str.optional(), resource: str, divisor: quantity.optional() }).optional(),
  }).superRefine((v, ctx) => {
    const n = [v.configMapKeyRef, v.secretKeyRef, v.fieldRef, v.resourceFieldRef].filter((x) => x !== undefined).length;
    if (n !== 1) issue(ctx, [], 'must specify exactly one of configMapKeyRef, secretKeyRef, fieldRef, resourceFieldRef');
  }).optional(),
}).superRefine((e, ctx) => {
  if (e.value !== undefined && e.valueFrom !== undefined) issue(ctx, ['valueFrom'], 'may not be given together with value');
});

const envFromSource = z.strictObject({
  prefix: str.optional(),
  configMapRef: z.strictObject({ name: str.optional(), optional: bool.optional() }).optional(),
  secretRef: z.strictObject({ name: str.optional(), optional: bool.optional() }).optional(),
});

const containerPort = z.strictObject({
  name: portName.optional(),
  containerPort: port,
  hostPort: portOrZero.optional(),
  hostIP: str.optional(),
  protocol: protocol.optional(),
});

// securityContext: what the agent applies on Docker (node-agent/container-config.ts). The fields Kubernetes defines
// that a Docker node cannot honour (SELinux labels, Windows options, Localhost seccomp and AppArmor profiles,
// an unmasked /proc) are accepted by the schema, so that they are refused by name below, never ignored.
const NOT_HONOURED = 'is not supported: Flotilla nodes cannot apply it, and a pod never runs without what it asks';
const profileType = z.enum(['RuntimeDefault', 'Unconfined', 'Localhost']);
const seccompProfile = z.strictObject({ type: profileType, localhostProfile: str.optional() }).superRefine((p, ctx) => {
  if (p.type === 'Localhost') issue(ctx, ['type'], `"Localhost" ${NOT_HONOURED} (use RuntimeDefault)`);
  else if (p.localhostProfile !== undefined) issue(ctx, ['localhostProfile'], 'can only be set when `type` is "Localhost"');
});
const appArmorProfile = seccompProfile;
const refusedOption = z.record(z.string(), z.unknown()).superRefine((_v, ctx) => issue(ctx, [], NOT_HONOURED));
const capabilityList = z.array(z.string().min(1, { error: 'must not be empty' }));

const securityContext = z.strictObject({
  privileged: bool.optional(),
  runAsUser: nonNegInt64.optional(),
  runAsGroup: nonNegInt64.optional(),
  runAsNonRoot: bool.optional(),
  readOnlyRootFilesystem: bool.optional(),
  allowPrivilegeEscalation: bool.optional(),
  capabilities: z.strictObject({ add: capabilityList.optional(), drop: capabilityList.optional() }).optional(),
  seccompProfile: seccompProfile.optional(),
  appArmorProfile: appArmorProfile.optional(),
  procMount: z.enum(['Default', 'Unmasked']).superRefine((v, ctx) => { if (v === 'Unmasked') issue(ctx, [], `"Unmasked" ${NOT_HONOURED}`); }).optional(),
  seLinuxOptions: refusedOption.optional(),
  windowsOptions: refusedOption.optional(),
}).superRefine((sc, ctx) => {
  // Kubernetes' ValidateSecurityContext: no_new_privs cannot hold for a privileged process or one with CAP_SYS_ADMIN.
  if (sc.allowPrivilegeEscalation === false && sc.privileged === true) {
    issue(ctx, [], 'cannot set `allowPrivilegeEscalation` to false and `privileged` to true');
  }
  if (sc.allowPrivilegeEscalation === false && sc.capabilities?.add?.some((c) => c === 'SYS_ADMIN' || c === 'CAP_SYS_ADMIN')) {
    issue(ctx, [], 'cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN');
  }
});

/** Kubernetes' validateLocalDescendingPath: a path inside a volume, never out of it. */
const descendingPath = z.string().superRefine((p, ctx) => {
  if (p.startsWith('/')) issue(ctx, [], 'must be a relative path');
  if (p.split('/').includes('..')) issue(ctx, [], "must not contain '..'");
});

/** A sysctl name as Kubernetes' IsValidSysctlName: dot- or slash-separated segments of lowercase letters, digits, '_' and '-'. */
const sysctlName = /^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$/;
const podSecurityContext = z.strictObject({
  runAsUser: nonNegInt64.optional(), runAsGroup: nonNegInt64.optional(), runAsNonRoot: bool.optional(),
  fsGroup: nonNegInt64.optional(), supplementalGroups: z.array(nonNegInt64).optional(),
  fsGroupChangePolicy: z.enum(['OnRootMismatch', 'Always']).optional(),
  seccompProfile: seccompProfile.optional(),
  appArmorProfile: appArmorProfile.optional(),
  sysctls: z.array(z.strictObject({
    name: str.refine((n) => n.length <= 253 && sysctlName.test(n), { error: "must have at most 253 characters and match the regex ^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$" }),
    value: str,
  })).superRefine((list, ctx) => {
    const seen = new Set<string>();
    list.forEach((s, i) => { if (seen.has(s.name)) issue(ctx, [i, 'name'], `Duplicate value: "${s.name}"`); seen.add(s.name); });
  }).optional(),
  seLinuxOptions: refusedOption.optional(),
  windowsOptions: refusedOption.optional(),
});

const container = z.strictObject({
  name: dnsLabel,
  image: z.string().min(1, { error: 'must not be empty' }),
  imagePullPolicy: z.enum(['Always', 'IfNotPresent', 'Never']).optional(),
  command: strList.optional(),
  args: strList.optional(),
  workingDir: str.optional(),
  env: z.array(envVar).optional(),
  envFrom: z.array(envFromSource).optional(),
  ports: z.array(containerPort).optional(),
  resources: resourceRequirements.optional(),
  volumeMounts: z.array(z.strictObject({
    name: str, mountPath: z.string().min(1, { error: 'must not be empty' }), readOnly: bool.optional(), subPath: descendingPath.optional(),
  })).optional(),
  livenessProbe: probe.optional(),
  readinessProbe: probe.optional(),
  startupProbe: probe.optional(),
  lifecycle: z.strictObject({ postStart: lifecycleHandler.optional(), preStop: lifecycleHandler.optional() }).optional(),
  securityContext: securityContext.optional(),
  stdin: bool.optional(),
  stdinOnce: bool.optional(),
  tty: bool.optional(),
  terminationMessagePath: str.optional(),
  terminationMessagePolicy: z.enum(['File', 'FallbackToLogsOnError']).optional(),
});

const keyToPath = z.strictObject({ key: str, path: str, mode: nonNegInt.optional() });

/** Kubernetes' bounds on a projected service account token's lifetime (ValidateProjectedVolumeSource, TokenRequest). */
export const MIN_TOKEN_EXPIRATION_SECONDS = 600;
export const MAX_TOKEN_EXPIRATION_SECONDS = 2 ** 32;
const tokenExpirationSeconds = int.superRefine((n, ctx) => {
  if (n < MIN_TOKEN_EXPIRATION_SECONDS) issue(ctx, [], 'may not specify a duration less than 10 minutes');
  if (n > MAX_TOKEN_EXPIRATION_SECONDS) issue(ctx, [], 'may not specify a duration larger than 2^32 seconds');
});

const downwardAPIFile = z.strictObject({
  path: z.string().min(1, { error: 'Required value' }),
  fieldRef: z.strictObject({ apiVersion: str.optional(), fieldPath: str }).optional(),
  resourceFieldRef: z.strictObject({ containerName: str.optional(), resource: str, divisor: quantity.optional() }).optional(),
  mode: nonNegInt.optional(),
}).superRefine((f, ctx) => {
  if ((f.fieldRef === undefined) === (f.resourceFieldRef === undefined)) issue(ctx, [], 'must specify exactly one of fieldRef, resourceFieldRef');
});

/** A projected volume (Kubernetes' ProjectedVolumeSource): each source exactly one of its four kinds. */
const projectedVolumeSource = z.strictObject({
  sources: z.array(z.strictObject({
    configMap: z.strictObject({ name: str.optional(), items: z.array(keyToPath).optional(), optional: bool.optional() }).optional(),
    secret: z.strictObject({ name: str.optional(), items: z.array(keyToPath).optional(), optional: bool.optional() }).optional(),
    downwardAPI: z.strictObject({ items: z.array(downwardAPIFile).optional() }).optional(),
    serviceAccountToken: z.strictObject({
      audience: str.optional(),
      expirationSeconds: tokenExpirationSeconds.optional(),
      path: z.string().min(1, { error: 'Required value' }),
    }).optional(),
  }).superRefine((p, ctx) => {
    const kinds = ['configMap', 'secret', 'downwardAPI', 'serviceAccountToken'] as const;
    const given = kinds.filter((k) => p[k] !== undefined);
    if (given.length !== 1) issue(ctx, [], `must specify exactly one of ${kinds.join(', ')} (got ${given.length === 0 ? 'none' : given.join(', ')})`);
  })).optional(),
  defaultMode: nonNegInt.optional(),
});

const volume = z.strictObject({
  name: dnsLabel,
  emptyDir: z.strictObject({ medium: z.enum(['', 'Memory']).optional(), sizeLimit: amount.optional() }).optional(),
  hostPath: z.strictObject({ path: str, type: str.optional() }).optional(),
  configMap: z.strictObject({
    name: str.optional(), items: z.array(keyToPath).optional(), defaultMode: nonNegInt.optional(), optional: bool.optional(),
  }).optional(),
  secret: z.strictObject({
    secretName: str.optional(), items: z.array(keyToPath).optional(), defaultMode: nonNegInt.optional(), optional: bool.optional(),
  }).optional(),
  persistentVolumeClaim: z.strictObject({ claimName: str, readOnly: bool.optional() }).optional(),
  projected: projectedVolumeSource.optional(),
}).superRefine((v, ctx) => {
  const sources = ['emptyDir', 'hostPath', 'configMap', 'secret', 'persistentVolumeClaim', 'projected'] as const;
  const given = sources.filter((s) => v[s] !== undefined);
  if (given.length !== 1) {
    issue(ctx, [], `must specify exactly one volume source of ${sources.join(', ')} (got ${given.length === 0 ? 'none' : given.join(', ')})`);
  }
});

const nodeSelectorRequirement = z.strictObject({
  key: str, operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist', 'Gt', 'Lt']), values: strList.optional(),
});
const nodeSelectorTerm = z.strictObject({
  matchExpressions: z.array(nodeSelectorRequirement).optional(),
  matchFields: z.array(nodeSelectorRequirement).optional(),
});
const podAffinityTerm = z.strictObject({
  labelSelector: labelSelectorSpec.optional(),
  namespaces: strList.optional(),
  topologyKey: z.string().min(1, { error: 'must not be empty' }),
});
const weight = z.number().int().min(1, { error: 'must be between 1 and 100' }).max(100, { error: 'must be between 1 and 100' });
const podAffinity = z.strictObject({
  requiredDuringSchedulingIgnoredDuringExecution: z.array(podAffinityTerm).optional(),
  preferredDuringSchedulingIgnoredDuringExecution: z.array(z.strictObject({ weight, podAffinityTerm })).optional(),
});
const affinity = z.strictObject({
  nodeAffinity: z.strictObject({
    requiredDuringSchedulingIgnoredDuringExecution: z.strictObject({ nodeSelectorTerms: z.array(nodeSelectorTerm) }).optional(),
    preferredDuringSchedulingIgnoredDuringExecution: z.array(z.strictObject({ weight, preference: nodeSelectorTerm })).optional(),
  }).optional(),
  podAffinity: podAffinity.optional(),
  podAntiAffinity: podAffinity.optional(),
});

const preemptionPolicy = z.enum(['PreemptLowerPriority', 'Never']);

const toleration = z.strictObject({
  key: str.optional(),
  operator: z.enum(['Exists', 'Equal']).optional(),
  value: str.optional(),
  effect: z.enum(['', 'NoSchedule', 'PreferNoSchedule', 'NoExecute']).optional(),
  tolerationSeconds: int.optional(),
});

const podSpecObject = z.strictObject({
  containers: z.array(container).min(1, { error: 'must have at least one container' }),
  initContainers: z.array(container).optional(),
  volumes: z.array(volume).optional(),
  restartPolicy: z.enum(['Always', 'OnFailure', 'Never']).optional(),
  terminationGracePeriodSeconds: nonNegInt64.optional(),
  activeDeadlineSeconds: posInt.optional(),
  nodeName: str.optional(),
  nodeSelector: labels.optional(),
  affinity: affinity.optional(),
  tolerations: z.array(toleration).optional(),
  schedulerName: str.optional(),
  priority: int32.optional(),
  priorityClassName: dnsSubdomain.optional(),
  preemptionPolicy: preemptionPolicy.optional(),
  runtimeClassName: dnsSubdomain.optional(),
  overhead: resourceList.optional(),
  os: z.strictObject({ name: z.enum(['linux', 'windows']) }).optional(),
  // Refused below unless empty; its items are not modelled until topology spread is supported.
  topologySpreadConstraints: z.array(z.unknown()).optional(),
  hostNetwork: bool.optional(),
  hostPID: bool.optional(),
  hostIPC: bool.optional(),
  hostname: dnsLabel.optional(),
  subdomain: dnsLabel.optional(),
  dnsPolicy: z.enum(['ClusterFirst', 'ClusterFirstWithHostNet', 'Default', 'None']).optional(),
  dnsConfig: z.strictObject({
    nameservers: z.array(z.union([z.ipv4(), z.ipv6()], { error: 'must be an IP address' })).max(3, { error: 'must not have more than 3 nameservers' }).optional(),
    searches: z.array(str.refine((d) => dns1123SubdomainError(d.replace(/\.$/, '')) === undefined, { error: 'must be a DNS domain such as ns1.svc.cluster.local' }))
      .max(32, { error: 'must not have more than 32 search paths' })
      .refine((l) => l.join(' ').length <= 2048, { error: 'must not have more than 2048 characters (including spaces) in the search list' }).optional(),
    options: z.array(z.strictObject({ name: str.min(1, { error: 'must not be empty' }), value: str.optional() })).optional(),
  }).optional(),
  enableServiceLinks: bool.optional(),
  serviceAccountName: dnsSubdomain.optional(),
  /** Deprecated alias of serviceAccountName, mirrored from it (Kubernetes' DeprecatedServiceAccount). */
  serviceAccount: str.optional(),
  automountServiceAccountToken: bool.optional(),
  securityContext: podSecurityContext.optional(),
  imagePullSecrets: z.array(z.strictObject({ name: str })).optional(),
});

/**
 * The rules on a pod spec beyond its fields, with issues under `at`. `claimVolumes`: the volumes a StatefulSet
 * adds to its pods (one per volumeClaimTemplate), which its template's containers may mount.
 */
function checkPodSpec(ctx: Ctx, spec: z.infer<typeof podSpecObject>, at: PathPart[], claimVolumes: readonly string[]): void {
  if (spec.dnsPolicy === 'None' && !spec.dnsConfig?.nameservers?.length) {
    issue(ctx, [...at, 'dnsConfig', 'nameservers'], 'must provide at least one DNS nameserver when `dnsPolicy` is None');
  }
  if (spec.topologySpreadConstraints?.length) {
    issue(ctx, [...at, 'topologySpreadConstraints'], 'is not supported yet: to keep replicas apart use spec.affinity.podAntiAffinity '
      + '(required or preferred) with topologyKey kubernetes.io/hostname or topology.kubernetes.io/zone');
  }
  // Container names are unique across init and app containers; volume names are unique; mounts name a volume.
  const seen = new Set<string>();
  const volumes = new Set<string>(claimVolumes);
  (spec.volumes ?? []).forEach((v, i) => {
    if (volumes.has(v.name) && !claimVolumes.includes(v.name)) issue(ctx, [...at, 'volumes', i, 'name'], `duplicate volume name "${v.name}"`);
    volumes.add(v.name);
  });
  for (const field of ['initContainers', 'containers'] as const) {
    (spec[field] ?? []).forEach((c, i) => {
      if (seen.has(c.name)) issue(ctx, [...at, field, i, 'name'], `duplicate container name "${c.name}"`);
      seen.add(c.name);
      (c.volumeMounts ?? []).forEach((m, j) => {
        if (!volumes.has(m.name)) issue(ctx, [...at, field, i, 'volumeMounts', j, 'name'], `no volume named "${m.name}" in spec.volumes`);
      });
    });
  }
}

const podSpec = podSpecObject.superRefine((spec, ctx) => checkPodSpec(ctx, spec, [], []));

const containerState = z.strictObject({
  waiting: z.strictObject({ reason: str.optional(), message: str.optional() }).optional(),
  running: z.strictObject({ startedAt: time.optional() }).optional(),
  terminated: z.strictObject({
    exitCode: int, signal: int.optional(), reason: str.optional(), message: str.optional(),
    startedAt: time.optional(), finishedAt: time.optional(), containerID: str.optional(),
  }).optional(),
}).superRefine((s, ctx) => {
  const n = [s.waiting, s.running, s.terminated].filter((x) => x !== undefined).length;
  if (n > 1) issue(ctx, [], 'at most one of waiting, running, terminated may be set');
});

const containerStatus = z.strictObject({
  name: str,
  state: containerState.optional(),
  lastState: containerState.optional(),
  ready: bool,
  restartCount: nonNegInt,
  image: str,
  imageID: str.optional(),
  containerID: str.optional(),
  started: bool.optional(),
});

const podStatus = z.strictObject({
  phase: z.enum(['Pending', 'Running', 'Succeeded', 'Failed', 'Unknown']).optional(),
  conditions: conditions.optional(),
  message: str.optional(),
  reason: str.optional(),
  hostIP: str.optional(),
  hostIPs: z.array(z.strictObject({ ip: str })).optional(),
  podIP: str.optional(),
  podIPs: z.array(z.strictObject({ ip: str })).optional(),
  startTime: time.optional(),
  containerStatuses: z.array(containerStatus).optional(),
  initContainerStatuses: z.array(containerStatus).optional(),
  qosClass: z.enum(['Guaranteed', 'Burstable', 'BestEffort']).optional(),
  nominatedNodeName: str.optional(),
});

const podTemplate = z.strictObject({ metadata: templateMetadata.optional(), spec: podSpec });
/** A StatefulSet's template: its spec is checked by the StatefulSet, which knows the claim volumes its pods get. */
const statefulSetPodTemplate = z.strictObject({ metadata: templateMetadata.optional(), spec: podSpecObject });

// ---- kind schemas --------------------------------------------------------------------------------------

/**
 * Builds the schema of one kind: apiVersion and kind literals, metadata by the kind's rules, and its fields.
 * The kind must be in the resource table (resources.ts), which says whether it is namespaced.
 */
function kindSchema<A extends string, K extends string, T extends z.core.$ZodLooseShape>(
  apiVersion: A, kind: K, nameRule: (s: string) => string | undefined, fields: T,
) {
  const r = resourceForKind(apiVersion, kind);
  if (r === undefined) throw new Error(`api-types: ${apiVersion}/${kind} has a schema but no entry in resources.ts`);
  return z.strictObject({
    apiVersion: z.literal(apiVersion),
    kind: z.literal(kind),
    metadata: metadataSchema({ name: nameRule, namespaced: r.namespaced, pod: r.kind === 'Pod' }),
    ...fields,
  });
}

/** Kubernetes' rule: `system-` names are the built-in classes only, with their values; others stay at or below 1e9. */
function checkPriorityClass(ctx: Ctx, pc: { value: number; globalDefault?: boolean | undefined; metadata: { name?: string | undefined } }): void {
  const name = pc.metadata.name ?? '';
  if (name.startsWith(SYSTEM_PRIORITY_CLASS_PREFIX)) {
    const known = SYSTEM_PRIORITY_CLASSES.find((c) => c.name === name);
    const why = !known ? `${name} is not a known system priority class`
      : pc.value !== known.value ? `value of ${name} PriorityClass must be ${known.value}`
        : pc.globalDefault ? `globalDefault of ${name} PriorityClass must be false` : undefined;
    if (why) issue(ctx, ['metadata', 'name'], `priority class names with '${SYSTEM_PRIORITY_CLASS_PREFIX}' prefix are reserved for system use only. error: ${why}`);
  } else if (pc.value > HIGHEST_USER_DEFINABLE_PRIORITY) {
    issue(ctx, ['value'], `maximum allowed value of a user defined priority is ${HIGHEST_USER_DEFINABLE_PRIORITY}`);
  }
}

/** A workload's selector must be non-empty and select its own template, else it would create pods forever. */
function checkSelectsTemplate(
  ctx: Ctx,
  spec: { selector?: z.infer<typeof labelSelectorSpec>; template?: { metadata?: { labels?: Record<string, string> } } },
): void {
  if (spec.selector === undefined || spec.template === undefined) return;
  const s = spec.selector;
  if (Object.keys(s.matchLabels ?? {}).length === 0 && (s.matchExpressions ?? []).length === 0) {
    issue(ctx, ['spec', 'selector'], 'must not be empty');
    return;
  }
  try {
    if (!matchesLabels(labelSelectorFromSpec(s), spec.template.metadata?.labels)) {
      issue(ctx, ['spec', 'template', 'metadata', 'labels'], '`selector` does not match template `labels`');
    }
  } catch {
    // The selector's own errors are reported by labelSelectorSpec.
  }
}

/** `spec`: the path of the spec holding the template (a CronJob's is spec.jobTemplate.spec). */
function checkRestartPolicy(ctx: Ctx, template: { spec: { restartPolicy?: string } } | undefined, allowed: readonly string[], kind: string, spec: PathPart[] = ['spec']): void {
  const policy = template?.spec.restartPolicy ?? 'Always';
  if (!allowed.includes(policy)) {
    issue(ctx, [...spec, 'template', 'spec', 'restartPolicy'], `must be ${allowed.join(' or ')} for a ${kind} (got ${policy})`);
  }
}

const rollingUpdate = z.strictObject({ maxUnavailable: intOrString.optional(), maxSurge: intOrString.optional() });

const serviceSpec = z.strictObject({
  type: z.enum(['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName']).optional(),
  selector: labels.optional(),
  ports: z.array(z.strictObject({
    name: portName.optional(),
    protocol: protocol.optional(),
    appProtocol: str.optional(),
    port,
    targetPort: intOrPortName.optional(),
    nodePort: portOrZero.optional(),
  })).optional(),
  clusterIP: str.optional(),
  clusterIPs: strList.optional(),
  externalIPs: strList.optional(),
  externalName: str.optional(),
  sessionAffinity: z.enum(['None', 'ClientIP']).optional(),
  sessionAffinityConfig: z.strictObject({
    clientIP: z.strictObject({
      timeoutSeconds: posInt.max(86400, { error: 'must be less than or equal to 86400' }).optional(),
    }).optional(),
  }).optional(),
  externalTrafficPolicy: z.enum(['Cluster', 'Local']).optional(),
  internalTrafficPolicy: z.enum(['Cluster', 'Local']).optional(),
  loadBalancerIP: str.optional(),
  publishNotReadyAddresses: bool.optional(),
  ipFamilies: z.array(z.enum(['IPv4', 'IPv6'])).optional(),
  ipFamilyPolicy: z.enum(['SingleStack', 'PreferDualStack', 'RequireDualStack']).optional(),
}).superRefine((s, ctx) => {
  const ports = s.ports ?? [];
  const names = new Set<string>();
  const keys = new Set<string>();
  ports.forEach((p, i) => {
    if (ports.length > 1 && p.name === undefined) issue(ctx, ['ports', i, 'name'], 'is required when a service has more than one port');
    if (p.name !== undefined) {
      if (names.has(p.name)) issue(ctx, ['ports', i, 'name'], `duplicate port name "${p.name}"`);
      names.add(p.name);
    }
    const key = `${p.port}/${p.protocol ?? 'TCP'}`;
    if (keys.has(key)) issue(ctx, ['ports', i, 'port'], `duplicate port ${key}`);
    keys.add(key);
    if (p.nodePort !== undefined && p.nodePort !== 0 && s.type !== 'NodePort' && s.type !== 'LoadBalancer') {
      issue(ctx, ['ports', i, 'nodePort'], 'may only be set when type is NodePort or LoadBalancer');
    }
  });
  if (s.type === 'ExternalName' && !s.externalName) issue(ctx, ['externalName'], 'is required when type is ExternalName');
});

/** A port of an Endpoints subset or an EndpointSlice: the name is the Service port's ("" or absent when it has none). */
const endpointPort = z.strictObject({ name: str.optional(), port: port.optional(), protocol: protocol.optional(), appProtocol: str.optional() });
const endpointAddress = z.strictObject({ ip: str, hostname: str.optional(), nodeName: str.optional(), targetRef: objectReference.optional() });

/** EndpointSlices hold at most this many endpoints, as in Kubernetes. */
export const ENDPOINTSLICE_MAX_ENDPOINTS = 1000;

const CONFIG_KEY = /^[-._a-zA-Z0-9]+$/;
const configKeys = (ctx: Ctx, field: string, data: Record<string, string> | undefined): void => {
  for (const key of Object.keys(data ?? {})) {
    if (key.length > 253 || !CONFIG_KEY.test(key) || key === '.' || key === '..') {
      issue(ctx, [field, key], `invalid key "${key}": must be at most 253 of alphanumerics, '-', '_' or '.'`);
    }
  }
};
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const base64Values = (ctx: Ctx, field: string, data: Record<string, string> | undefined): void => {
  for (const [key, value] of Object.entries(data ?? {})) {
    if (!BASE64.test(value)) issue(ctx, [field, key], 'must be base64-encoded');
  }
};

/** The Secret types holding a Docker config file, and the data key it lives under (the kubelet's pull secrets). */
export const DOCKER_CONFIG_KEYS: Readonly<Record<string, string>> = {
  'kubernetes.io/dockerconfigjson': '.dockerconfigjson',
  'kubernetes.io/dockercfg': '.dockercfg',
};

/** The plain text of a data value that base64Values accepts. */
function fromBase64(value: string): string {
  return new TextDecoder().decode(Uint8Array.from(atob(value), (c) => c.charCodeAt(0)));
}

/**
 * A Docker config Secret must hold its key, as a JSON object (Kubernetes' ValidateSecret; stringData counts, as
 * it is merged into data before validation). `auths`, where present, must map registries to objects: the kubelet
 * could not read the file otherwise. The contents are never echoed.
 */
function dockerConfigValue(ctx: Ctx, type: string, key: string, o: { data?: Record<string, string> | undefined; stringData?: Record<string, string> | undefined }): void {
  const inString = o.stringData?.[key] !== undefined;
  const raw = inString ? o.stringData![key]! : o.data?.[key];
  const path = [inString ? 'stringData' : 'data', key];
  if (raw === undefined) return issue(ctx, ['data', key], `required field is missing: a Secret of type ${type} holds its Docker config under this key`);
  if (!inString && !BASE64.test(raw)) return;
  let parsed: unknown;
  try {
    parsed = JSON.parse(inString ? raw : fromBase64(raw));
  } catch (err) {
    return issue(ctx, path, `Invalid value: "<secret contents redacted>": ${(err as Error).message}`);
  }
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isObject(parsed)) return issue(ctx, path, 'Invalid value: "<secret contents redacted>": must be a JSON object');
  const auths = type === 'kubernetes.io/dockerconfigjson' ? parsed.auths : parsed;
  if (auths === undefined) return;
  if (!isObject(auths) || Object.values(auths).some((entry) => !isObject(entry))) {
    issue(ctx, path, `Invalid value: "<secret contents redacted>": ${type === 'kubernetes.io/dockerconfigjson' ? '"auths" must map' : 'must map'} each registry to an object with username and password or auth`);
  }
}

const metricTarget = z.strictObject({
  type: z.enum(['Utilization', 'Value', 'AverageValue']),
  value: quantity.optional(),
  averageValue: quantity.optional(),
  averageUtilization: posInt.optional(),
});
const metricIdentifier = z.strictObject({ name: str, selector: labelSelectorSpec.optional() });
const hpaScalingRules = z.strictObject({
  stabilizationWindowSeconds: nonNegInt.optional(),
  selectPolicy: z.enum(['Max', 'Min', 'Disabled']).optional(),
  policies: z.array(z.strictObject({ type: z.enum(['Pods', 'Percent']), value: posInt, periodSeconds: posInt })).optional(),
});


// ---- storage -------------------------------------------------------------------------------------------

const accessModes = z.array(z.enum(['ReadWriteOnce', 'ReadOnlyMany', 'ReadWriteMany', 'ReadWriteOncePod']));
const volumeMode = z.enum(['Filesystem', 'Block']);

/** A claim's spec, as a PersistentVolumeClaim and a StatefulSet's volumeClaimTemplates carry it. */
const pvcSpecShape = z.strictObject({
  accessModes: accessModes.optional(),
  selector: labelSelectorSpec.optional(),
  resources: resourceRequirements.optional(),
  volumeName: str.optional(),
  storageClassName: str.optional(),
  volumeMode: volumeMode.optional(),
  volumeAttributesClassName: str.optional(),
});

/** Kubernetes' ValidatePersistentVolumeClaimSpec: at least one access mode, a storage request above zero. */
function checkClaimSpec(ctx: Ctx, spec: z.infer<typeof pvcSpecShape>, path: PathPart[]): void {
  if (!spec.accessModes?.length) issue(ctx, [...path, 'accessModes'], 'Required value: at least 1 access mode is required');
  if (spec.accessModes?.includes('ReadWriteOncePod') && spec.accessModes.length > 1) {
    issue(ctx, [...path, 'accessModes'], 'Forbidden: may not use ReadWriteOncePod with other access modes');
  }
  const storage = spec.resources?.requests?.storage;
  if (storage === undefined) issue(ctx, [...path, 'resources', 'requests', 'storage'], 'Required value');
  else if ((safeMilli(storage) ?? 1n) <= 0n) issue(ctx, [...path, 'resources', 'requests', 'storage'], `Invalid value: ${JSON.stringify(storage)}: must be greater than zero`);
}

const PERSISTENT_VOLUME_SOURCES = ['hostPath', 'local', 'nfs'] as const;

const persistentVolumeSpec = z.strictObject({
  capacity: resourceList.optional(),
  accessModes: accessModes.optional(),
  claimRef: objectReference.optional(),
  persistentVolumeReclaimPolicy: z.enum(['Retain', 'Delete', 'Recycle']).optional(),
  storageClassName: str.optional(),
  volumeMode: volumeMode.optional(),
  mountOptions: strList.optional(),
  volumeAttributesClassName: str.optional(),
  nodeAffinity: z.strictObject({
    required: z.strictObject({ nodeSelectorTerms: z.array(nodeSelectorTerm).min(1, { error: 'Required value: must have at least one node selector term' }) }).optional(),
  }).optional(),
  hostPath: z.strictObject({
    path: z.string().min(1, { error: 'Required value' }),
    type: z.enum(['', 'DirectoryOrCreate', 'Directory', 'FileOrCreate', 'File', 'Socket', 'CharDevice', 'BlockDevice']).optional(),
  }).optional(),
  local: z.strictObject({ path: z.string().min(1, { error: 'Required value' }), fsType: str.optional() }).optional(),
  nfs: z.strictObject({ server: z.string().min(1, { error: 'Required value' }), path: z.string().min(1, { error: 'Required value' }), readOnly: bool.optional() }).optional(),
}).superRefine((spec, ctx) => {
  if (!spec.accessModes?.length) issue(ctx, ['accessModes'], 'Required value: at least 1 access mode is required');
  const storage = spec.capacity?.storage;
  if (storage === undefined) issue(ctx, ['capacity'], 'Required value: must specify storage');
  else if ((safeMilli(storage) ?? 1n) <= 0n) issue(ctx, ['capacity', 'storage'], `Invalid value: ${JSON.stringify(storage)}: must be greater than zero`);
  for (const key of Object.keys(spec.capacity ?? {})) {
    if (key !== 'storage') issue(ctx, ['capacity', key], `Unsupported value: ${JSON.stringify(key)}: supported values: "storage"`);
  }
  const given = PERSISTENT_VOLUME_SOURCES.filter((s) => spec[s] !== undefined);
  if (given.length === 0) issue(ctx, [], 'Required value: must specify a volume type');
  if (given.length > 1) issue(ctx, [given[1]!], 'Forbidden: may not specify more than 1 volume type');
  if (spec.local !== undefined && spec.nodeAffinity?.required === undefined) issue(ctx, ['nodeAffinity'], 'Required value: Local volume requires node affinity');
  for (const [i, t] of (spec.nodeAffinity?.required?.nodeSelectorTerms ?? []).entries()) {
    if (!t.matchExpressions?.length && !t.matchFields?.length) {
      issue(ctx, ['nodeAffinity', 'required', 'nodeSelectorTerms', i], 'Required value: must have at least one node selector requirement');
    }
  }
  if (spec.persistentVolumeReclaimPolicy === 'Recycle' && spec.hostPath === undefined && spec.nfs === undefined) {
    issue(ctx, ['persistentVolumeReclaimPolicy'], 'Unsupported value: "Recycle": only NFS and HostPath persistent volumes support recycling');
  }
});

const persistentVolumeStatus = z.strictObject({
  phase: z.enum(['Pending', 'Available', 'Bound', 'Released', 'Failed']).optional(),
  message: str.optional(),
  reason: str.optional(),
  lastPhaseTransitionTime: time.optional(),
});

const persistentVolumeClaimStatus = z.strictObject({
  phase: z.enum(['Pending', 'Bound', 'Lost']).optional(),
  accessModes: accessModes.optional(),
  capacity: resourceList.optional(),
  conditions: conditions.optional(),
});

const storageClassFields = {
  provisioner: z.string().min(1, { error: 'Required value' }),
  parameters: z.record(z.string(), z.string()).optional(),
  reclaimPolicy: z.enum(['Delete', 'Retain']).optional(),
  volumeBindingMode: z.enum(['Immediate', 'WaitForFirstConsumer']).optional(),
  allowVolumeExpansion: bool.optional(),
  mountOptions: strList.optional(),
  allowedTopologies: z.array(z.strictObject({
    matchLabelExpressions: z.array(z.strictObject({ key: str, values: strList })).optional(),
  })).optional(),
};

/** The schema of every served kind (and of Binding bodies), by kind. objects.ts derives the kinds' types from these. */
/** Kubernetes' default sessionAffinityConfig.clientIP.timeoutSeconds: 3 hours. */
export const DEFAULT_SESSION_AFFINITY_TIMEOUT_SECONDS = 10800;

const jobSpec = z.strictObject({
  template: podTemplate,
  parallelism: nonNegInt.optional(),
  completions: nonNegInt.optional(),
  backoffLimit: nonNegInt.optional(),
  activeDeadlineSeconds: posInt.optional(),
  ttlSecondsAfterFinished: nonNegInt.optional(),
  completionMode: z.enum(['NonIndexed', 'Indexed']).optional(),
  suspend: bool.optional(),
  selector: labelSelectorSpec.optional(),
  manualSelector: bool.optional(),
});

/** Kubernetes' bound on a CronJob's name: its Jobs are named NAME-<minutes since the epoch>, an 11-character suffix within 63. */
export const CRONJOB_NAME_MAX_LENGTH = 52;

/** Kubernetes' check of a time zone name (IANA naming rules, then the zone database): the reason it is refused, or undefined. */
function timeZoneError(zone: string): string | undefined {
  if (zone === '') return 'timeZone must be nil or non-empty string';
  if (zone.split('/').some((part) => part === '.' || part === '..' || part.startsWith('-') || !/^[A-Za-z.\-_0-9+]{1,14}$/.test(part))) return `unknown time zone ${zone}`;
  if (zone.toLowerCase() === 'local') return 'timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones';
  try { loadTimeZone(zone); } catch (e) { return (e as Error).message; }
  return undefined;
}

// ---- Ingress (networking.k8s.io/v1), with the rules and messages of Kubernetes' networking validation ----

const WILDCARD_DNS1123_SUBDOMAIN = /^\*\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const IPV4_OR_IPV6 = /^(\d{1,3}(\.\d{1,3}){3}|[0-9a-fA-F:]*:[0-9a-fA-F:.]*)$/;

/** An Ingress host: a DNS subdomain or a wildcard one ("*.example.com"), never an IP address. */
function ingressHostError(host: string): string | undefined {
  if (IPV4_OR_IPV6.test(host)) return 'must be a DNS name, not an IP address';
  if (host.includes('*')) {
    return WILDCARD_DNS1123_SUBDOMAIN.test(host) && host.length <= 253 ? undefined
      : "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character (e.g. '*.example.com')";
  }
  return dns1123SubdomainError(host);
}

/** Path parts Kubernetes refuses in Exact and Prefix paths (they would be matched after normalisation). */
const INVALID_PATH_SEQUENCES = ['//', '/./', '/../', '%2f', '%2F'];
const INVALID_PATH_SUFFIXES = ['/..', '/.'];

const typedLocalObjectReference = z.strictObject({ apiGroup: str.optional(), kind: str, name: str });

const ingressBackend = z.strictObject({
  service: z.strictObject({
    name: str,
    port: z.strictObject({ name: str.optional(), number: port.optional() }).optional(),
  }).optional(),
  resource: typedLocalObjectReference.optional(),
});

function checkIngressBackend(ctx: Ctx, path: PathPart[], b: z.infer<typeof ingressBackend>): void {
  if (b.service && b.resource) { issue(ctx, path, 'cannot set both resource and service backends'); return; }
  if (!b.service && !b.resource) { issue(ctx, path, 'resource or service backend is required'); return; }
  if (!b.service) return;
  const svc = b.service;
  const nameWhy = svc.name === '' ? 'Required value' : dns1035LabelError(svc.name);
  if (nameWhy) issue(ctx, [...path, 'service', 'name'], nameWhy);
  const p = svc.port;
  if (p?.name !== undefined && p.number !== undefined) issue(ctx, [...path, 'service', 'port'], 'cannot set both port name & port number');
  else if (p?.name !== undefined) {
    const why = portNameError(p.name);
    if (why) issue(ctx, [...path, 'service', 'port', 'name'], why);
  } else if (p?.number === undefined) issue(ctx, [...path, 'service', 'port'], 'port name or number is required');
}

const ingressSpec = z.strictObject({
  ingressClassName: str.optional(),
  defaultBackend: ingressBackend.optional(),
  tls: z.array(z.strictObject({ hosts: strList.optional(), secretName: str.optional() })).optional(),
  rules: z.array(z.strictObject({
    host: str.optional(),
    http: z.strictObject({
      paths: z.array(z.strictObject({
        path: str.optional(),
        pathType: z.enum(['Exact', 'Prefix', 'ImplementationSpecific']).optional(),
        backend: ingressBackend,
      })),
    }).optional(),
  })).optional(),
}).superRefine((s, ctx) => {
  if (s.ingressClassName !== undefined) {
    const why = dns1123SubdomainError(s.ingressClassName);
    if (why) issue(ctx, ['ingressClassName'], why);
  }
  if (s.defaultBackend) checkIngressBackend(ctx, ['defaultBackend'], s.defaultBackend);
  else if ((s.rules ?? []).length === 0) issue(ctx, [], 'either `defaultBackend` or `rules` must be specified');
  s.tls?.forEach((t, i) => t.hosts?.forEach((h, j) => {
    const why = ingressHostError(h);
    if (why) issue(ctx, ['tls', i, 'hosts', j], why);
  }));
  s.rules?.forEach((rule, i) => {
    if (rule.host !== undefined && rule.host !== '') {
      const why = ingressHostError(rule.host);
      if (why) issue(ctx, ['rules', i, 'host'], why);
    }
    if (!rule.http) return;
    if (rule.http.paths.length === 0) issue(ctx, ['rules', i, 'http', 'paths'], 'Required value');
    rule.http.paths.forEach((p, j) => {
      const at: PathPart[] = ['rules', i, 'http', 'paths', j];
      checkIngressBackend(ctx, [...at, 'backend'], p.backend);
      if (p.pathType === undefined) { issue(ctx, [...at, 'pathType'], 'pathType must be specified'); return; }
      const path = p.path ?? '';
      if (p.pathType === 'ImplementationSpecific') {
        if (path !== '' && !path.startsWith('/')) issue(ctx, [...at, 'path'], 'must be an absolute path');
        return;
      }
      if (!path.startsWith('/')) { issue(ctx, [...at, 'path'], 'must be an absolute path'); return; }
      const sequence = INVALID_PATH_SEQUENCES.find((q) => path.includes(q));
      if (sequence) issue(ctx, [...at, 'path'], `must not contain '${sequence}'`);
      const suffix = INVALID_PATH_SUFFIXES.find((q) => path.endsWith(q));
      if (suffix) issue(ctx, [...at, 'path'], `cannot end with '${suffix}'`);
    });
  });
});

/** IngressClass spec.controller: a domain-prefixed path ("example.com/ingress"), at most 250 characters. */
function ingressControllerError(controller: string): string | undefined {
  if (controller === '') return 'Required value';
  if (controller.length > 250) return `must be no more than 250 characters (got ${controller.length})`;
  const slash = controller.indexOf('/');
  const domain = slash > 0 ? controller.slice(0, slash) : '';
  const rest = slash > 0 ? controller.slice(slash + 1) : '';
  if (domain === '' || rest === '' || dns1123SubdomainError(domain) !== undefined || !/^[A-Za-z0-9/\-._~%!$&'()*+,;=:]+$/.test(rest)) {
    return "must be a domain-prefixed path (such as \"acme.io/foo\")";
  }
  return undefined;
}

// ---- rbac.authorization.k8s.io/v1 (as Kubernetes' pkg/apis/rbac/validation) ------------------------------

/** The RBAC API group: what roleRef.apiGroup and the User and Group subjects' apiGroup name. */
export const RBAC_GROUP = 'rbac.authorization.k8s.io';

/** Kubernetes' ValidatePathSegmentName: RBAC names may hold colons ("system:node"), never "/", "%", "." or "..". */
function pathSegmentNameError(value: string): string | undefined {
  if (value === '.' || value === '..') return `may not be '${value}'`;
  for (const bad of ['/', '%']) if (value.includes(bad)) return `may not contain '${bad}'`;
  return undefined;
}

const policyRule = z.strictObject({
  verbs: strList,
  apiGroups: strList.optional(),
  resources: strList.optional(),
  resourceNames: strList.optional(),
  nonResourceURLs: strList.optional(),
});

/** Kubernetes' ValidatePolicyRule; `namespaced`: a Role's rule, which may not name non-resource URLs. */
function checkPolicyRules(ctx: Ctx, rules: readonly z.output<typeof policyRule>[] | undefined, namespaced: boolean): void {
  (rules ?? []).forEach((rule, i) => {
    const at = (field: string): PathPart[] => ['rules', i, field];
    if (rule.verbs.length === 0) issue(ctx, at('verbs'), 'verbs must contain at least one value');
    if ((rule.nonResourceURLs ?? []).length > 0) {
      if (namespaced) issue(ctx, at('nonResourceURLs'), 'namespaced rules cannot apply to non-resource URLs');
      if ((rule.apiGroups ?? []).length > 0 || (rule.resources ?? []).length > 0 || (rule.resourceNames ?? []).length > 0) {
        issue(ctx, at('nonResourceURLs'), 'rules cannot apply to both regular resources and non-resource URLs');
      }
      return;
    }
    if ((rule.apiGroups ?? []).length === 0) issue(ctx, at('apiGroups'), 'resource rules must supply at least one api group');
    if ((rule.resources ?? []).length === 0) issue(ctx, at('resources'), 'resource rules must supply at least one resource');
  });
}

const roleRef = z.strictObject({ apiGroup: str, kind: str, name: str });
const subject = z.strictObject({ kind: str, apiGroup: str.optional(), name: str, namespace: str.optional() });

/** Kubernetes' ValidateRoleBindingSubject and roleRef checks; a RoleBinding may name a Role or a ClusterRole. */
function checkBinding(ctx: Ctx, b: { roleRef: z.output<typeof roleRef>; subjects?: z.output<typeof subject>[] | undefined }, namespaced: boolean): void {
  if (b.roleRef.apiGroup !== RBAC_GROUP) issue(ctx, ['roleRef', 'apiGroup'], `supported values: "${RBAC_GROUP}"`);
  const kinds = namespaced ? ['Role', 'ClusterRole'] : ['ClusterRole'];
  if (!kinds.includes(b.roleRef.kind)) issue(ctx, ['roleRef', 'kind'], `supported values: ${kinds.map((k) => `"${k}"`).join(', ')}`);
  if (b.roleRef.name === '') issue(ctx, ['roleRef', 'name'], 'Required value');
  else {
    const bad = pathSegmentNameError(b.roleRef.name);
    if (bad) issue(ctx, ['roleRef', 'name'], bad);
  }
  (b.subjects ?? []).forEach((s, i) => {
    const at = (field: string): PathPart[] => ['subjects', i, field];
    if (s.name === '') issue(ctx, at('name'), 'Required value');
    switch (s.kind) {
      case 'ServiceAccount':
        if ((s.apiGroup ?? '') !== '') issue(ctx, at('apiGroup'), 'supported values: ""');
        if (s.name !== '' && dns1123SubdomainError(s.name)) issue(ctx, at('name'), dns1123SubdomainError(s.name)!);
        if (!namespaced && (s.namespace ?? '') === '') issue(ctx, at('namespace'), 'Required value');
        break;
      case 'User': case 'Group':
        if (s.apiGroup !== RBAC_GROUP) issue(ctx, at('apiGroup'), `supported values: "${RBAC_GROUP}"`);
        break;
      default:
        issue(ctx, at('kind'), 'supported values: "ServiceAccount", "User", "Group"');
    }
  });
}

export const kindSchemas = {
  Namespace: kindSchema('v1', 'Namespace', dns1123LabelError, {
    spec: z.strictObject({ finalizers: strList.optional() }).optional(),
    status: z.strictObject({ phase: z.enum(['Active', 'Terminating']).optional(), conditions: conditions.optional() }).optional(),
  }),
  Node: kindSchema('v1', 'Node', dns1123SubdomainError, {
    spec: z.strictObject({
      podCIDR: str.optional(),
      podCIDRs: strList.optional(),
      providerID: str.optional(),
      unschedulable: bool.optional(),
      // Kubernetes: a taint's key is a label key, its value a label value.
      taints: z.array(z.strictObject({
        key: named(labelKeyError), value: named(labelValueError).optional(), effect: z.enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute']),
        timeAdded: time.optional(),
      })).optional(),
    }).optional(),
    status: z.strictObject({
      capacity: resourceList.optional(),
      allocatable: resourceList.optional(),
      conditions: conditions.optional(),
      addresses: z.array(z.strictObject({
        type: z.enum(['Hostname', 'InternalIP', 'ExternalIP', 'InternalDNS', 'ExternalDNS']), address: str,
      })).optional(),
      nodeInfo: z.strictObject({
        machineID: nodeString.optional(), systemUUID: nodeString.optional(), bootID: nodeString.optional(), kernelVersion: nodeString.optional(),
        osImage: nodeString.optional(), containerRuntimeVersion: nodeString.optional(), kubeletVersion: nodeString.optional(),
        kubeProxyVersion: nodeString.optional(), operatingSystem: nodeString.optional(), architecture: nodeString.optional(),
      }).optional(),
      daemonEndpoints: z.strictObject({ kubeletEndpoint: z.strictObject({ Port: port }).optional() }).optional(),
      images: z.array(z.strictObject({ names: strList.optional(), sizeBytes: nonNegInt64.optional() })).optional(),
      gpus: z.array(z.strictObject({
        index: nonNegInt,
        uuid: nodeString.min(1, { error: 'must not be empty' }),
        vendor: nodeString.regex(/^[a-z0-9][a-z0-9._-]*$/, { error: 'must be a lowercase vendor name such as "nvidia", "amd", "intel"' }),
        model: nodeString,
        memory: amount,
        health: z.enum(['Healthy', 'Unhealthy']),
        busId: nodeString.optional(),
        driver: nodeString.optional(),
      })).superRefine((gpus, ctx) => {
        const uuids = new Set<string>();
        gpus.forEach((g, i) => {
          if (uuids.has(g.uuid)) issue(ctx, [i, 'uuid'], `duplicate GPU uuid "${g.uuid}"`);
          uuids.add(g.uuid);
        });
      }).optional(),
      hardware: z.strictObject({
        piModel: nodeString.optional(),
        jetsonModel: nodeString.optional(),
        temperatureC: z.number().optional(),
        throttled: bool.optional(),
        undervoltage: bool.optional(),
        cpuModel: nodeString.optional(),
      }).optional(),
      imagePlatforms: z.array(z.strictObject({
        names: strList,
        os: nodeString,
        architecture: nodeString,
        variant: nodeString.optional(),
      })).optional(),
    }).optional(),
  }),
  Pod: kindSchema('v1', 'Pod', dns1123SubdomainError, { spec: podSpec, status: podStatus.optional() }).superRefine((pod, ctx) => {
    // Pinned GPUs are all the pod's GPUs: one UUID per nvidia.com/gpu it asks.
    const ids = pod.metadata.annotations?.[ANNOTATION_GPU_IDS];
    if (ids === undefined) return;
    let listed: number;
    try { listed = parseGpuIds(ids).length; } catch { return; }
    let asked = 0;
    for (const c of pod.spec.containers) {
      for (const resource of [GPU_RESOURCE_NVIDIA, GPU_RESOURCE_AMD]) {
        const q = c.resources?.limits?.[resource] ?? c.resources?.requests?.[resource];
        if (q === undefined) continue;
        try { asked += Number(parseQuantity(q).milli) / 1000; } catch { return; }
      }
    }
    if (listed !== asked) {
      issue(ctx, ['metadata', 'annotations', ANNOTATION_GPU_IDS], `lists ${listed} GPU${listed === 1 ? '' : 's'} but the containers ask ${asked} (limits ${GPU_RESOURCE_NVIDIA} / ${GPU_RESOURCE_AMD})`);
    }
  }),
  Binding: kindSchema('v1', 'Binding', dns1123SubdomainError, {
    target: objectReference.superRefine((t, ctx) => { if (!t.name) issue(ctx, ['name'], 'is required'); }),
  }),
  Service: kindSchema('v1', 'Service', dns1035LabelError, {
    spec: serviceSpec.optional(),
    status: z.strictObject({
      loadBalancer: z.strictObject({
        ingress: z.array(z.strictObject({ ip: str.optional(), hostname: str.optional() })).optional(),
      }).optional(),
      conditions: conditions.optional(),
    }).optional(),
  }),
  Endpoints: kindSchema('v1', 'Endpoints', dns1123SubdomainError, {
    subsets: z.array(z.strictObject({
      addresses: z.array(endpointAddress).optional(),
      notReadyAddresses: z.array(endpointAddress).optional(),
      ports: z.array(endpointPort.extend({ port })).optional(),
    })).optional(),
  }),
  EndpointSlice: kindSchema('discovery.k8s.io/v1', 'EndpointSlice', dns1123SubdomainError, {
    addressType: z.enum(['IPv4', 'IPv6', 'FQDN']),
    endpoints: z.array(z.strictObject({
      addresses: z.array(str).min(1, { error: 'must contain at least 1 address' }).max(100, { error: 'must contain at most 100 addresses' }),
      conditions: z.strictObject({ ready: bool.optional(), serving: bool.optional(), terminating: bool.optional() }).optional(),
      hostname: str.optional(),
      nodeName: str.optional(),
      zone: str.optional(),
      targetRef: objectReference.optional(),
    })).max(ENDPOINTSLICE_MAX_ENDPOINTS, { error: `must contain at most ${ENDPOINTSLICE_MAX_ENDPOINTS} endpoints` }),
    ports: z.array(endpointPort).optional(),
  }),
  Ingress: kindSchema('networking.k8s.io/v1', 'Ingress', dns1123SubdomainError, {
    spec: ingressSpec,
    status: z.strictObject({
      loadBalancer: z.strictObject({
        ingress: z.array(z.strictObject({
          ip: str.optional(),
          hostname: str.optional(),
          ports: z.array(z.strictObject({ port, protocol, error: str.optional() })).optional(),
        })).optional(),
      }).optional(),
    }).optional(),
  }),
  IngressClass: kindSchema('networking.k8s.io/v1', 'IngressClass', dns1123SubdomainError, {
    spec: z.strictObject({
      controller: str,
      parameters: z.strictObject({
        apiGroup: str.optional(), kind: str, name: str, scope: z.enum(['Cluster', 'Namespace']).optional(), namespace: str.optional(),
      }).optional(),
    }),
  }).superRefine((o, ctx) => {
    const why = ingressControllerError(o.spec.controller);
    if (why) issue(ctx, ['spec', 'controller'], why);
    const p = o.spec.parameters;
    if (p?.scope === 'Namespace' && !p.namespace) issue(ctx, ['spec', 'parameters', 'namespace'], '`parameters.scope` is set to \'Namespace\'');
    if (p?.scope === 'Cluster' && p.namespace !== undefined) issue(ctx, ['spec', 'parameters', 'namespace'], '`parameters.scope` is set to \'Cluster\'');
  }),
  ConfigMap: kindSchema('v1', 'ConfigMap', dns1123SubdomainError, {
    data: z.record(z.string(), z.string()).optional(),
    binaryData: z.record(z.string(), z.string()).optional(),
    immutable: bool.optional(),
  }).superRefine((o, ctx) => {
    configKeys(ctx, 'data', o.data);
    configKeys(ctx, 'binaryData', o.binaryData);
    base64Values(ctx, 'binaryData', o.binaryData);
    for (const key of Object.keys(o.binaryData ?? {})) {
      if (o.data?.[key] !== undefined) issue(ctx, ['binaryData', key], `duplicate of key "${key}" in data`);
    }
    const total = Object.values(o.data ?? {}).reduce((n, v) => n + utf8Bytes(v), 0) + Object.values(o.binaryData ?? {}).reduce((n, v) => n + base64Bytes(v), 0);
    // Kubernetes names no field here: the bound is on the whole object.
    if (total > MAX_SECRET_SIZE_BYTES) issue(ctx, [], tooLong(MAX_SECRET_SIZE_BYTES));
  }),
  Secret: kindSchema('v1', 'Secret', dns1123SubdomainError, {
    type: str.optional(),
    data: z.record(z.string(), z.string()).optional(),
    stringData: z.record(z.string(), z.string()).optional(),
    immutable: bool.optional(),
  }).superRefine((o, ctx) => {
    configKeys(ctx, 'data', o.data);
    configKeys(ctx, 'stringData', o.stringData);
    base64Values(ctx, 'data', o.data);
    // stringData is data written in plain text: it counts as the bytes it adds to data.
    const total = Object.values(o.data ?? {}).reduce((n, v) => n + base64Bytes(v), 0) + Object.values(o.stringData ?? {}).reduce((n, v) => n + utf8Bytes(v), 0);
    if (total > MAX_SECRET_SIZE_BYTES) issue(ctx, ['data'], tooLong(MAX_SECRET_SIZE_BYTES));
    const dockerKey = o.type === undefined ? undefined : DOCKER_CONFIG_KEYS[o.type];
    if (dockerKey !== undefined) dockerConfigValue(ctx, o.type!, dockerKey, o);
  }),
  ServiceAccount: kindSchema('v1', 'ServiceAccount', dns1123SubdomainError, {
    secrets: z.array(objectReference).optional(),
    imagePullSecrets: z.array(z.strictObject({ name: str })).optional(),
    automountServiceAccountToken: bool.optional(),
  }),
  Event: kindSchema('v1', 'Event', dns1123SubdomainError, {
    involvedObject: objectReference,
    reason: str.optional(),
    message: str.optional(),
    type: z.enum(['Normal', 'Warning']).optional(),
    source: z.strictObject({ component: str.optional(), host: str.optional() }).optional(),
    firstTimestamp: nullableTime,
    lastTimestamp: nullableTime,
    eventTime: nullableTime,
    count: nonNegInt.optional(),
    reportingComponent: str.optional(),
    reportingInstance: str.optional(),
    action: str.optional(),
    related: objectReference.optional(),
  }),
  Lease: kindSchema('coordination.k8s.io/v1', 'Lease', dns1123SubdomainError, {
    spec: z.strictObject({
      holderIdentity: str.optional(),
      leaseDurationSeconds: posInt.optional(),
      acquireTime: time.optional(),
      renewTime: time.optional(),
      leaseTransitions: nonNegInt.optional(),
    }).optional(),
  }),
  RuntimeClass: kindSchema('node.k8s.io/v1', 'RuntimeClass', dns1123SubdomainError, {
    handler: dnsLabel,
    overhead: z.strictObject({ podFixed: resourceList.optional() }).optional(),
    scheduling: z.strictObject({ nodeSelector: labels.optional(), tolerations: z.array(toleration).optional() }).optional(),
  }),
  PriorityClass: kindSchema('scheduling.k8s.io/v1', 'PriorityClass', dns1123SubdomainError, {
    value: int32,
    globalDefault: bool.optional(),
    description: str.optional(),
    preemptionPolicy: preemptionPolicy.optional(),
  }).superRefine((o, ctx) => checkPriorityClass(ctx, o)),
  // LoadBalancer addresses on the LAN (server/network/load-balancer-pools.ts parses and checks the ranges at write).
  AddressPool: kindSchema('flotilla.io/v1', 'AddressPool', dns1123SubdomainError, {
    spec: z.strictObject({
      addresses: z.array(str).min(1, { error: 'must list at least one range or CIDR' }),
      autoAssign: bool.optional(),
    }),
    status: z.strictObject({
      assignedIPv4: nonNegInt.optional(), assignedIPv6: nonNegInt.optional(),
      availableIPv4: nonNegInt.optional(), availableIPv6: nonNegInt.optional(),
    }).optional(),
  }),
  PersistentVolume: kindSchema('v1', 'PersistentVolume', dns1123SubdomainError, {
    spec: persistentVolumeSpec,
    status: persistentVolumeStatus.optional(),
  }),
  PersistentVolumeClaim: kindSchema('v1', 'PersistentVolumeClaim', dns1123SubdomainError, {
    spec: pvcSpecShape,
    status: persistentVolumeClaimStatus.optional(),
  }).superRefine((o, ctx) => checkClaimSpec(ctx, o.spec, ['spec'])),
  StorageClass: kindSchema('storage.k8s.io/v1', 'StorageClass', dns1123SubdomainError, storageClassFields),
  Role: kindSchema('rbac.authorization.k8s.io/v1', 'Role', pathSegmentNameError, {
    rules: z.array(policyRule).optional(),
  }).superRefine((o, ctx) => checkPolicyRules(ctx, o.rules, true)),
  ClusterRole: kindSchema('rbac.authorization.k8s.io/v1', 'ClusterRole', pathSegmentNameError, {
    rules: z.array(policyRule).optional(),
    aggregationRule: z.strictObject({ clusterRoleSelectors: z.array(labelSelectorSpec).optional() }).optional(),
  }).superRefine((o, ctx) => checkPolicyRules(ctx, o.rules, false)),
  RoleBinding: kindSchema('rbac.authorization.k8s.io/v1', 'RoleBinding', pathSegmentNameError, {
    subjects: z.array(subject).optional(),
    roleRef,
  }).superRefine((o, ctx) => checkBinding(ctx, o, true)),
  ClusterRoleBinding: kindSchema('rbac.authorization.k8s.io/v1', 'ClusterRoleBinding', pathSegmentNameError, {
    subjects: z.array(subject).optional(),
    roleRef,
  }).superRefine((o, ctx) => checkBinding(ctx, o, false)),
  Deployment: kindSchema('apps/v1', 'Deployment', dns1123SubdomainError, {
    spec: z.strictObject({
      replicas: nonNegInt.optional(),
      selector: labelSelectorSpec,
      template: podTemplate,
      strategy: z.strictObject({ type: z.enum(['RollingUpdate', 'Recreate']).optional(), rollingUpdate: rollingUpdate.optional() })
        .superRefine((s, ctx) => {
          if (s.type === 'Recreate' && s.rollingUpdate !== undefined) issue(ctx, ['rollingUpdate'], 'may not be set when type is Recreate');
        }).optional(),
      minReadySeconds: nonNegInt.optional(),
      revisionHistoryLimit: nonNegInt.optional(),
      progressDeadlineSeconds: posInt.optional(),
      paused: bool.optional(),
    }),
    status: z.strictObject({
      observedGeneration: nonNegInt64.optional(),
      replicas: nonNegInt.optional(),
      updatedReplicas: nonNegInt.optional(),
      readyReplicas: nonNegInt.optional(),
      availableReplicas: nonNegInt.optional(),
      unavailableReplicas: nonNegInt.optional(),
      collisionCount: nonNegInt.optional(),
      conditions: conditions.optional(),
    }).optional(),
  }).superRefine((o, ctx) => {
    checkSelectsTemplate(ctx, o.spec);
    checkRestartPolicy(ctx, o.spec.template, ['Always'], 'Deployment');
  }),
  ReplicaSet: kindSchema('apps/v1', 'ReplicaSet', dns1123SubdomainError, {
    spec: z.strictObject({
      replicas: nonNegInt.optional(),
      selector: labelSelectorSpec,
      template: podTemplate.optional(),
      minReadySeconds: nonNegInt.optional(),
    }),
    status: z.strictObject({
      replicas: nonNegInt,
      fullyLabeledReplicas: nonNegInt.optional(),
      readyReplicas: nonNegInt.optional(),
      availableReplicas: nonNegInt.optional(),
      observedGeneration: nonNegInt64.optional(),
      conditions: conditions.optional(),
    }).optional(),
  }).superRefine((o, ctx) => {
    checkSelectsTemplate(ctx, o.spec);
    if (o.spec.template !== undefined) checkRestartPolicy(ctx, o.spec.template, ['Always'], 'ReplicaSet');
  }),
  DaemonSet: kindSchema('apps/v1', 'DaemonSet', dns1123SubdomainError, {
    spec: z.strictObject({
      selector: labelSelectorSpec,
      template: podTemplate,
      updateStrategy: z.strictObject({ type: z.enum(['RollingUpdate', 'OnDelete']).optional(), rollingUpdate: rollingUpdate.optional() }).optional(),
      minReadySeconds: nonNegInt.optional(),
      revisionHistoryLimit: nonNegInt.optional(),
    }),
    status: z.strictObject({
      currentNumberScheduled: nonNegInt,
      numberMisscheduled: nonNegInt,
      desiredNumberScheduled: nonNegInt,
      numberReady: nonNegInt,
      observedGeneration: nonNegInt64.optional(),
      updatedNumberScheduled: nonNegInt.optional(),
      numberAvailable: nonNegInt.optional(),
      numberUnavailable: nonNegInt.optional(),
      collisionCount: nonNegInt.optional(),
      conditions: conditions.optional(),
    }).optional(),
  }).superRefine((o, ctx) => {
    checkSelectsTemplate(ctx, o.spec);
    checkRestartPolicy(ctx, o.spec.template, ['Always'], 'DaemonSet');
  }),
  StatefulSet: kindSchema('apps/v1', 'StatefulSet', dns1123SubdomainError, {
    spec: z.strictObject({
      replicas: nonNegInt.optional(),
      selector: labelSelectorSpec,
      template: statefulSetPodTemplate,
      serviceName: str.optional(),
      podManagementPolicy: z.enum(['OrderedReady', 'Parallel']).optional(),
      updateStrategy: z.strictObject({
        type: z.enum(['RollingUpdate', 'OnDelete']).optional(),
        rollingUpdate: z.strictObject({ partition: nonNegInt.optional(), maxUnavailable: intOrString.optional() }).optional(),
      }).optional(),
      volumeClaimTemplates: z.array(z.strictObject({
        apiVersion: str.optional(),
        kind: str.optional(),
        metadata: templateMetadata.optional(),
        spec: pvcSpecShape,
        status: persistentVolumeClaimStatus.optional(),
      })).optional(),
      persistentVolumeClaimRetentionPolicy: z.strictObject({
        whenDeleted: z.enum(['Retain', 'Delete']).optional(),
        whenScaled: z.enum(['Retain', 'Delete']).optional(),
      }).optional(),
      minReadySeconds: nonNegInt.optional(),
      revisionHistoryLimit: nonNegInt.optional(),
    }),
    status: z.strictObject({
      replicas: nonNegInt,
      observedGeneration: nonNegInt64.optional(),
      readyReplicas: nonNegInt.optional(),
      currentReplicas: nonNegInt.optional(),
      updatedReplicas: nonNegInt.optional(),
      availableReplicas: nonNegInt.optional(),
      currentRevision: str.optional(),
      updateRevision: str.optional(),
      collisionCount: nonNegInt.optional(),
      conditions: conditions.optional(),
    }).optional(),
  }).superRefine((o, ctx) => {
    checkSelectsTemplate(ctx, o.spec);
    checkRestartPolicy(ctx, o.spec.template, ['Always'], 'StatefulSet');
    const claims = (o.spec.volumeClaimTemplates ?? []).map((t) => t.metadata?.name ?? '');
    checkPodSpec(ctx, o.spec.template.spec, ['spec', 'template', 'spec'], claims);
    (o.spec.volumeClaimTemplates ?? []).forEach((t, i) => {
      if (!t.metadata?.name) issue(ctx, ['spec', 'volumeClaimTemplates', i, 'metadata', 'name'], 'Required value');
      checkClaimSpec(ctx, t.spec, ['spec', 'volumeClaimTemplates', i, 'spec']);
    });
  }),
  Job: kindSchema('batch/v1', 'Job', dns1123SubdomainError, {
    spec: jobSpec,
    status: z.strictObject({
      active: nonNegInt.optional(),
      succeeded: nonNegInt.optional(),
      failed: nonNegInt.optional(),
      ready: nonNegInt.optional(),
      startTime: time.optional(),
      completionTime: time.optional(),
      conditions: conditions.optional(),
    }).optional(),
  }).superRefine((o, ctx) => {
    checkRestartPolicy(ctx, o.spec.template, ['OnFailure', 'Never'], 'Job');
  }),
  CronJob: kindSchema('batch/v1', 'CronJob', dns1123SubdomainError, {
    spec: z.strictObject({
      schedule: str,
      timeZone: str.optional(),
      startingDeadlineSeconds: nonNegInt64.optional(),
      concurrencyPolicy: z.enum(['Allow', 'Forbid', 'Replace'], {
        error: (iss) => `Unsupported value: ${JSON.stringify(iss.input)}: supported values: "Allow", "Forbid", "Replace"`,
      }).optional(),
      suspend: bool.optional(),
      jobTemplate: z.strictObject({ metadata: metadataSchema({ namespaced: true, pod: false }).optional(), spec: jobSpec }),
      successfulJobsHistoryLimit: nonNegInt.optional(),
      failedJobsHistoryLimit: nonNegInt.optional(),
    }),
    status: z.strictObject({
      active: z.array(objectReference).optional(),
      lastScheduleTime: time.optional(),
      lastSuccessfulTime: time.optional(),
    }).optional(),
  }).superRefine((o, ctx) => {
    // As Kubernetes' ValidateCronJobCreate / validateCronJobSpec / ValidateJobTemplateSpec.
    const name = o.metadata.name ?? '';
    if (name.length > CRONJOB_NAME_MAX_LENGTH) issue(ctx, ['metadata', 'name'], `Invalid value: ${JSON.stringify(name)}: must be no more than ${CRONJOB_NAME_MAX_LENGTH} characters`);
    const { schedule, timeZone } = o.spec;
    if (schedule === '') {
      issue(ctx, ['spec', 'schedule'], 'Required value');
    } else {
      try { parseCronSchedule(schedule); } catch (e) { issue(ctx, ['spec', 'schedule'], `Invalid value: ${JSON.stringify(schedule)}: ${(e as Error).message}`); }
      if (schedule.includes('TZ')) issue(ctx, ['spec', 'schedule'], `Invalid value: ${JSON.stringify(schedule)}: cannot use TZ or CRON_TZ in schedule, use timeZone field instead`);
    }
    const zoneWhy = timeZone === undefined ? undefined : timeZoneError(timeZone);
    if (zoneWhy !== undefined) issue(ctx, ['spec', 'timeZone'], `Invalid value: ${JSON.stringify(timeZone)}: ${zoneWhy}`);
    const job = o.spec.jobTemplate.spec;
    if (job.selector !== undefined) issue(ctx, ['spec', 'jobTemplate', 'spec', 'selector'], 'Invalid value: `selector` will be auto-generated');
    if (job.manualSelector === true) issue(ctx, ['spec', 'jobTemplate', 'spec', 'manualSelector'], 'Unsupported value: true: supported values: "nil", "false"');
    checkRestartPolicy(ctx, job.template, ['OnFailure', 'Never'], 'Job', ['spec', 'jobTemplate', 'spec']);
  }),
  HorizontalPodAutoscaler: kindSchema('autoscaling/v2', 'HorizontalPodAutoscaler', dns1123SubdomainError, {
    spec: z.strictObject({
      scaleTargetRef: z.strictObject({ apiVersion: str.optional(), kind: str, name: str }),
      minReplicas: posInt.optional(),
      maxReplicas: posInt,
      metrics: z.array(z.strictObject({
        type: z.enum(['Resource', 'Pods', 'Object', 'External', 'ContainerResource']),
        resource: z.strictObject({ name: str, target: metricTarget }).optional(),
        containerResource: z.strictObject({ name: str, container: str, target: metricTarget }).optional(),
        pods: z.strictObject({ metric: metricIdentifier, target: metricTarget }).optional(),
        object: z.strictObject({
          describedObject: z.strictObject({ apiVersion: str.optional(), kind: str, name: str }),
          metric: metricIdentifier,
          target: metricTarget,
        }).optional(),
        external: z.strictObject({ metric: metricIdentifier, target: metricTarget }).optional(),
      }).superRefine((m, ctx) => {
        const field = ({ Resource: 'resource', Pods: 'pods', Object: 'object', External: 'external', ContainerResource: 'containerResource' } as const)[m.type];
        if (m[field] === undefined) issue(ctx, [field], `is required when type is ${m.type}`);
      })).optional(),
      behavior: z.strictObject({ scaleUp: hpaScalingRules.optional(), scaleDown: hpaScalingRules.optional() }).optional(),
    }).superRefine((s, ctx) => {
      if (s.minReplicas !== undefined && s.minReplicas > s.maxReplicas) {
        issue(ctx, ['minReplicas'], `must be less than or equal to maxReplicas (${s.maxReplicas})`);
      }
    }),
    status: z.strictObject({
      observedGeneration: nonNegInt64.optional(),
      lastScaleTime: time.optional(),
      currentReplicas: nonNegInt.optional(),
      desiredReplicas: nonNegInt,
      currentMetrics: z.array(z.unknown()).optional(),
      conditions: conditions.optional(),
    }).optional(),
  }),
} satisfies Record<string, z.ZodType>;

/** The autoscaling/v1 Scale body of the `scale` subresource: not stored, read and written through its parent. */
export const scaleSchema = z.strictObject({
  apiVersion: z.literal('autoscaling/v1'),
  kind: z.literal('Scale'),
  metadata: metadataSchema({ namespaced: true, pod: false }),
  spec: z.strictObject({ replicas: nonNegInt.optional() }),
  status: z.strictObject({ replicas: nonNegInt, selector: str.optional() }).optional(),
});

/**
 * The authentication.k8s.io/v1 TokenRequest body of POST serviceaccounts/NAME/token: not stored. Audiences
 * default to the API's, the lifetime to an hour; a bound object is a Pod (by name, and uid when given).
 */
export const tokenRequestSchema = z.strictObject({
  apiVersion: z.literal('authentication.k8s.io/v1'),
  kind: z.literal('TokenRequest'),
  metadata: metadataSchema({ namespaced: true, pod: false }).optional(),
  spec: z.strictObject({
    // kubectl create token sends `audiences: null` when none are given.
    audiences: strList.nullable().transform((v) => v ?? undefined).optional(),
    expirationSeconds: tokenExpirationSeconds.optional(),
    boundObjectRef: z.strictObject({
      kind: z.literal('Pod', { error: (i) => `Unsupported value: ${JSON.stringify(i.input)}: supported values: "Pod"` }),
      apiVersion: z.literal('v1', { error: 'must be "v1"' }).optional(),
      name: z.string().min(1, { error: 'Required value' }),
      uid: str.optional(),
    }).optional(),
  }),
  // Clients send the empty status of their type ({"token": "", "expirationTimestamp": null}); the server's answer fills it.
  status: z.strictObject({ token: str.optional(), expirationTimestamp: nullableTime }).optional(),
});

// ---- validation ----------------------------------------------------------------------------------------

export interface ValidationIssue {
  path: string;
  message: string;
}

export type ValidationResult =
  | { ok: true; object: KubeObject; resource: ResourceInfo }
  | { ok: false; issues: ValidationIssue[] };

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** `['spec','containers',0,'name']` -> `spec.containers[0].name`; odd keys are quoted: `labels["a.b/c"]`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else if (typeof part === 'string' && IDENTIFIER.test(part)) out += out === '' ? part : `.${part}`;
    else out += `[${JSON.stringify(String(part))}]`;
  }
  return out;
}

function toIssues(error: z.ZodError): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  for (const i of error.issues) {
    if (i.code === 'unrecognized_keys') {
      for (const key of i.keys) issues.push({ path: formatPath([...i.path, key]), message: `unknown field "${key}"` });
    } else if (i.code === 'invalid_type' && i.message.endsWith('received undefined')) {
      issues.push({ path: formatPath(i.path), message: 'required field is missing' });
    } else {
      issues.push({ path: formatPath(i.path), message: i.message });
    }
  }
  return issues;
}

/**
 * Validates a manifest or a stored object of any served kind (and Binding bodies). On success `object` is
 * the parsed copy (nothing dropped, nothing defaulted) and `resource` its table entry.
 */
export function validateObject(input: unknown): ValidationResult {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    return { ok: false, issues: [{ path: '', message: `expected an object with apiVersion and kind, got ${Array.isArray(input) ? 'a list' : input === null ? 'null' : typeof input}` }] };
  }
  const { apiVersion, kind } = input as { apiVersion?: unknown; kind?: unknown };
  const resource = typeof apiVersion === 'string' && typeof kind === 'string' ? resourceForKind(apiVersion, kind) : undefined;
  if (resource === undefined) {
    const known = [...allResources, bindingResource].map((r) => `${r.apiVersion}/${r.kind}`).join(', ');
    const what = typeof kind !== 'string' ? 'kind is missing' : typeof apiVersion !== 'string'
      ? `apiVersion is missing for kind "${kind}"` : `unknown kind "${kind}" in apiVersion "${apiVersion}"`;
    return { ok: false, issues: [{ path: 'kind', message: `${what}; served kinds: ${known}` }] };
  }
  const schema = kindSchemas[resource.kind as keyof typeof kindSchemas];
  const parsed = schema.safeParse(input);
  if (!parsed.success) return { ok: false, issues: toIssues(parsed.error) };
  return { ok: true, object: parsed.data, resource };
}

export const deleteOptionsSchema = z.strictObject({
  kind: z.literal('DeleteOptions').optional(),
  apiVersion: z.enum(['v1', 'meta.k8s.io/v1']).optional(),
  gracePeriodSeconds: int.optional(),
  propagationPolicy: z.enum(DELETION_PROPAGATIONS, {
    error: (iss) => `Unsupported value: ${JSON.stringify(iss.input)}: supported values: ${DELETION_PROPAGATIONS.map((p) => `"${p}"`).join(', ')}`,
  }).optional(),
  orphanDependents: bool.optional(),
  preconditions: z.strictObject({ uid: str.optional(), resourceVersion: str.optional() }).optional(),
}).superRefine((o, ctx) => {
  if (o.orphanDependents !== undefined && o.propagationPolicy !== undefined) {
    issue(ctx, ['propagationPolicy'], 'orphanDependents and propagationPolicy cannot both be set');
  }
});

/**
 * Validates DeleteOptions (a DELETE body, or its query parameters as an object). On success the deprecated
 * orphanDependents is folded into propagationPolicy.
 */
export function validateDeleteOptions(input: unknown): { ok: true; options: DeleteOptions } | { ok: false; issues: ValidationIssue[] } {
  const parsed = deleteOptionsSchema.safeParse(input);
  if (!parsed.success) return { ok: false, issues: toIssues(parsed.error) };
  const { orphanDependents, ...options } = parsed.data;
  if (orphanDependents !== undefined) options.propagationPolicy = orphanDependents ? 'Orphan' : 'Background';
  return { ok: true, options };
}

// ---- defaults ------------------------------------------------------------------------------------------

/**
 * The Kubernetes rule: Always when the tag is "latest", or when there is neither a tag nor a digest (the tag then
 * defaults to latest); IfNotPresent for any other tag, a digest alone, and a name Docker cannot parse (its tag
 * reads as empty).
 */
export function defaultPullPolicy(image: string): 'Always' | 'IfNotPresent' {
  let ref: ImageReference;
  try {
    ref = parseImageReference(image);
  } catch {
    return 'IfNotPresent';
  }
  const tag = ref.tag ?? (ref.digest === undefined ? 'latest' : undefined);
  return tag === 'latest' ? 'Always' : 'IfNotPresent';
}

function defaultProbe(p: Probe | undefined): void {
  if (p === undefined) return;
  p.timeoutSeconds ??= 1;
  p.periodSeconds ??= 10;
  p.successThreshold ??= 1;
  p.failureThreshold ??= 3;
  if (p.httpGet !== undefined) {
    p.httpGet.path ??= '/';
    p.httpGet.scheme ??= 'HTTP';
  }
}

function defaultContainer(c: Container): void {
  c.imagePullPolicy ??= defaultPullPolicy(c.image);
  for (const p of c.ports ?? []) p.protocol ??= 'TCP';
  defaultProbe(c.livenessProbe);
  defaultProbe(c.readinessProbe);
  defaultProbe(c.startupProbe);
}

/** `restartPolicy` is left alone for Jobs, which must say OnFailure or Never themselves. */
function defaultPodSpec(spec: PodSpec | undefined, restartPolicy: boolean): void {
  if (spec === undefined) return;
  if (restartPolicy) spec.restartPolicy ??= 'Always';
  spec.terminationGracePeriodSeconds ??= 30;
  spec.dnsPolicy ??= 'ClusterFirst';
  for (const c of spec.containers ?? []) defaultContainer(c);
  for (const c of spec.initContainers ?? []) defaultContainer(c);
}

/**
 * Returns a new object with the Kubernetes defaults filled in; fields already set are kept. Meant for
 * objects that passed validateObject, so that `kind` says which type the object has.
 */
export function applyDefaults(object: KubeObject): KubeObject {
  const o = structuredClone(object);
  const resource = resourceForKind(o.apiVersion, o.kind);
  o.metadata ??= {} as ObjectMeta;
  if (resource?.namespaced && o.kind !== 'Binding') o.metadata.namespace ??= 'default';
  switch (o.kind) {
    case 'Pod':
      defaultPodSpec((o as Pod).spec, true);
      break;
    case 'Namespace':
      // As Kubernetes' namespace registry: a new namespace is Active and held by the namespace controller's finalizer.
      o.spec = { finalizers: [FINALIZER_KUBERNETES], ...(o.spec ?? {}) };
      o.status ??= { phase: 'Active' };
      break;
    case 'Deployment': {
      const spec = (o as Deployment).spec;
      if (spec === undefined) break;
      spec.replicas ??= 1;
      spec.strategy ??= {};
      spec.strategy.type ??= 'RollingUpdate';
      if (spec.strategy.type === 'RollingUpdate') {
        spec.strategy.rollingUpdate ??= {};
        spec.strategy.rollingUpdate.maxUnavailable ??= '25%';
        spec.strategy.rollingUpdate.maxSurge ??= '25%';
      }
      spec.revisionHistoryLimit ??= 10;
      spec.progressDeadlineSeconds ??= 600;
      defaultPodSpec(spec.template?.spec, true);
      break;
    }
    case 'ReplicaSet': {
      const spec = (o as ReplicaSet).spec;
      if (spec === undefined) break;
      spec.replicas ??= 1;
      defaultPodSpec(spec.template?.spec, true);
      break;
    }
    case 'DaemonSet': {
      const spec = (o as DaemonSet).spec;
      if (spec === undefined) break;
      spec.updateStrategy ??= {};
      spec.updateStrategy.type ??= 'RollingUpdate';
      if (spec.updateStrategy.type === 'RollingUpdate') {
        spec.updateStrategy.rollingUpdate ??= {};
        spec.updateStrategy.rollingUpdate.maxUnavailable ??= 1;
        spec.updateStrategy.rollingUpdate.maxSurge ??= 0;
      }
      spec.revisionHistoryLimit ??= 10;
      defaultPodSpec(spec.template?.spec, true);
      break;
    }
    case 'StatefulSet': {
      const spec = (o as StatefulSet).spec;
      if (spec === undefined) break;
      spec.replicas ??= 1;
      spec.podManagementPolicy ??= 'OrderedReady';
      spec.updateStrategy ??= {};
      spec.updateStrategy.type ??= 'RollingUpdate';
      if (spec.updateStrategy.type === 'RollingUpdate') {
        spec.updateStrategy.rollingUpdate ??= {};
        spec.updateStrategy.rollingUpdate.partition ??= 0;
      }
      spec.revisionHistoryLimit ??= 10;
      spec.persistentVolumeClaimRetentionPolicy ??= {};
      spec.persistentVolumeClaimRetentionPolicy.whenDeleted ??= 'Retain';
      spec.persistentVolumeClaimRetentionPolicy.whenScaled ??= 'Retain';
      for (const t of spec.volumeClaimTemplates ?? []) t.spec.volumeMode ??= 'Filesystem';
      defaultPodSpec(spec.template?.spec, true);
      break;
    }
    case 'Job': {
      const spec = (o as Job).spec;
      if (spec === undefined) break;
      spec.parallelism ??= 1;
      spec.completions ??= 1;
      spec.backoffLimit ??= 6;
      spec.completionMode ??= 'NonIndexed';
      spec.suspend ??= false;
      defaultPodSpec(spec.template?.spec, false);
      break;
    }
    case 'CronJob': {
      const spec = (o as CronJob).spec;
      if (spec === undefined) break;
      spec.concurrencyPolicy ??= 'Allow';
      spec.suspend ??= false;
      spec.successfulJobsHistoryLimit ??= 3;
      spec.failedJobsHistoryLimit ??= 1;
      defaultPodSpec(spec.jobTemplate?.spec?.template?.spec, false);
      break;
    }
    case 'HorizontalPodAutoscaler': {
      const spec = (o as HorizontalPodAutoscaler).spec;
      if (spec === undefined) break;
      spec.minReplicas ??= 1;
      spec.metrics ??= [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 80 } } }];
      break;
    }
    case 'Service': {
      const svc = o as Service;
      svc.spec ??= {};
      svc.spec.type ??= 'ClusterIP';
      svc.spec.sessionAffinity ??= 'None';
      if (svc.spec.sessionAffinity === 'ClientIP') {
        const clientIP = (svc.spec.sessionAffinityConfig ??= {}).clientIP ??= {};
        clientIP.timeoutSeconds ??= DEFAULT_SESSION_AFFINITY_TIMEOUT_SECONDS;
      }
      for (const p of svc.spec.ports ?? []) {
        p.protocol ??= 'TCP';
        p.targetPort ??= p.port;
      }
      break;
    }
    case 'Secret':
      (o as Secret).type ??= 'Opaque';
      break;
    case 'PersistentVolume': {
      const pv = o as PersistentVolume;
      pv.spec.persistentVolumeReclaimPolicy ??= 'Retain';
      pv.spec.volumeMode ??= 'Filesystem';
      pv.status ??= { phase: 'Pending' };
      break;
    }
    case 'PersistentVolumeClaim': {
      const pvc = o as PersistentVolumeClaim;
      pvc.spec.volumeMode ??= 'Filesystem';
      pvc.status ??= { phase: 'Pending' };
      break;
    }
    case 'StorageClass': {
      const sc = o as StorageClass;
      sc.reclaimPolicy ??= 'Delete';
      sc.volumeBindingMode ??= 'Immediate';
      break;
    }
    case 'PriorityClass':
      (o as PriorityClass).preemptionPolicy ??= 'PreemptLowerPriority';
      break;
    case 'IngressClass': {
      const parameters = (o as IngressClass).spec?.parameters;
      if (parameters) parameters.scope ??= 'Cluster';
      break;
    }
  }
  return o;
}

// ---- generation ----------------------------------------------------------------------------------------

const NOT_SPEC = new Set(['apiVersion', 'kind', 'metadata', 'status']);

/**
 * Whether an update changes the desired state, which bumps metadata.generation: every top-level field other
 * than apiVersion, kind, metadata and status (spec for most kinds; data, binaryData, stringData, type and
 * immutable for ConfigMap and Secret). Metadata-only and status-only updates keep the generation.
 */
export function specChanged(before: object, after: object): boolean {
  const desired = (o: object): Record<string, unknown> =>
    Object.fromEntries(Object.entries(o).filter(([k]) => !NOT_SPEC.has(k)));
  return canonicalJson(desired(before)) !== canonicalJson(desired(after));
}
