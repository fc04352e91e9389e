// Pod Security Standards admission, as Kubernetes' pod-security-admission (staging/src/k8s.io/pod-security-admission):
// the same checks, in the same order, with the same messages, chosen per namespace by the labels
// pod-security.kubernetes.io/{enforce,audit,warn}[-version].
//
// - A namespace without a label for a mode gets the cluster default for it: `baseline:latest` for all three modes
//   (Kubernetes' own default is privileged; Flotilla's is the baseline standard, so that nothing may mount the host
//   unasked), except kube-system, whose default is privileged.
// - Pods: a violation of the enforce level is 403 Forbidden (`pods "x" is forbidden: violates PodSecurity
//   "baseline:latest": hostPath volumes (volume "h")`); of the warn level, a warning (an HTTP Warning header)
//   unless the pod is refused anyway; of the audit level, an audit annotation. An update is evaluated only when
//   it changes what the checks read and a pod may change (images, seccomp annotations), as Kubernetes does.
// - Workload templates (Deployment, ReplicaSet, StatefulSet, DaemonSet, Job, CronJob): warn and audit only,
//   never enforce, as Kubernetes; their pods are refused when the controller creates them.
// - Labels that do not parse are refused on the Namespace (422); a namespace holding one anyway (written before
//   this check) is evaluated as restricted:latest, failing closed as Kubernetes does.
//
// Checks for fields the schema refuses outright (seLinuxOptions, windowsOptions.hostProcess: no Flotilla node can
// honour them) are not repeated here: such a pod never reaches admission.
import { SAFE_SYSCTLS, isKind, safeSysctls, type ObjectMeta, type PodSpec } from '../../api-types/index.js';
import type { StoredObject } from '../store/types.js';
import { admissionRecord } from './admission-record.js';

export const LEVELS = ['privileged', 'baseline', 'restricted'] as const;
export type Level = (typeof LEVELS)[number];
export const MODES = ['enforce', 'audit', 'warn'] as const;
export type Mode = (typeof MODES)[number];

export const POD_SECURITY_LABEL_PREFIX = 'pod-security.kubernetes.io/';
/** The audit annotations admission leaves on a request's audit event (admission-record.ts). */
export const AUDIT_ENFORCE_POLICY = `${POD_SECURITY_LABEL_PREFIX}enforce-policy`;
export const AUDIT_VIOLATIONS = `${POD_SECURITY_LABEL_PREFIX}audit-violations`;
export const AUDIT_ERROR = `${POD_SECURITY_LABEL_PREFIX}error`;

/** A policy version: the minor of v1.N, or LATEST. */
export const LATEST = Number.POSITIVE_INFINITY;
export interface LevelVersion { level: Level; version: number }
export type Policy = Record<Mode, LevelVersion>;

export function levelVersionString(lv: LevelVersion): string {
  return `${lv.level}:${lv.version === LATEST ? 'latest' : `v1.${lv.version}`}`;
}

/** The cluster's default policy for a namespace without pod-security labels. */
export function defaultPolicy(namespace: string): Policy {
  const level: Level = namespace === 'kube-system' ? 'privileged' : 'baseline';
  return { enforce: { level, version: LATEST }, audit: { level, version: LATEST }, warn: { level, version: LATEST } };
}

function parseVersion(v: string): number | undefined {
  if (v === 'latest') return LATEST;
  const m = /^v1\.(0|[1-9][0-9]{0,8})$/.exec(v);
  return m ? Number(m[1]) : undefined;
}

/** Problems with a namespace's pod-security labels, as { label, message } (none: the labels are valid). */
export function policyLabelErrors(labels: Record<string, string> | undefined): { label: string; message: string }[] {
  const errors: { label: string; message: string }[] = [];
  for (const mode of MODES) {
    const level = labels?.[POD_SECURITY_LABEL_PREFIX + mode];
    if (level !== undefined && !(LEVELS as readonly string[]).includes(level)) {
      errors.push({ label: POD_SECURITY_LABEL_PREFIX + mode, message: `Invalid value: ${JSON.stringify(level)}: must be one of ${LEVELS.join(', ')}` });
    }
    const version = labels?.[`${POD_SECURITY_LABEL_PREFIX}${mode}-version`];
    if (version !== undefined && parseVersion(version) === undefined) {
      errors.push({ label: `${POD_SECURITY_LABEL_PREFIX}${mode}-version`, message: `Invalid value: ${JSON.stringify(version)}: must be "latest" or "v1.x"` });
    }
  }
  return errors;
}

/** The policy of a namespace with these labels; `error` says what did not parse (then enforce is restricted:latest). */
export function policyOf(namespace: string, labels: Record<string, string> | undefined): { policy: Policy; error?: string } {
  const policy = defaultPolicy(namespace);
  const errors = policyLabelErrors(labels);
  for (const mode of MODES) {
    const level = labels?.[POD_SECURITY_LABEL_PREFIX + mode];
    const version = labels?.[`${POD_SECURITY_LABEL_PREFIX}${mode}-version`];
    if (level !== undefined && (LEVELS as readonly string[]).includes(level)) policy[mode] = { ...policy[mode], level: level as Level };
    const parsed = version === undefined ? undefined : parseVersion(version);
    if (parsed !== undefined) policy[mode] = { ...policy[mode], version: parsed };
  }
  if (errors.length === 0) return { policy };
  policy.enforce = { level: 'restricted', version: LATEST };
  return { policy, error: errors.map((e) => `${e.label}: ${e.message}`).join('; ') };
}

// ---- the checks ------------------------------------------------------------------------------------------

type Container = PodSpec['containers'][number];
interface CheckResult { reason: string; detail?: string }
type CheckFn = (meta: ObjectMeta, spec: PodSpec) => CheckResult | undefined;
interface Check {
  id: string;
  level: 'baseline' | 'restricted';
  /** By minimum version (minor of v1.N), increasing. */
  versions: { min: number; check: CheckFn }[];
  /** Baseline checks this one replaces at the restricted level (from its first version on). */
  overrides?: string[];
}

const pluralize = (one: string, many: string, n: number): string => (n === 1 ? one : many);
const joinQuote = (items: readonly string[]): string => items.map((s) => JSON.stringify(s)).join(', ');
const sorted = (items: Iterable<string>): string[] => [...new Set(items)].sort();
const containersOf = (spec: PodSpec): Container[] => [...spec.initContainers ?? [], ...spec.containers];
const containerList = (names: readonly string[]): string => `${pluralize('container', 'containers', names.length)} ${joinQuote(names)}`;
const isWindows = (spec: PodSpec): boolean => spec.os?.name === 'windows';

/** "pod and containers "a", "b"": the setters of a bad value, pod-level first. */
function setters(pod: boolean, containers: readonly string[]): string {
  return [...pod ? ['pod'] : [], ...containers.length > 0 ? [containerList(containers)] : []].join(' and ');
}

const hostNamespaces: CheckFn = (_m, spec) => {
  const used = [spec.hostNetwork && 'hostNetwork=true', spec.hostPID && 'hostPID=true', spec.hostIPC && 'hostIPC=true'].filter((x): x is string => typeof x === 'string');
  return used.length > 0 ? { reason: 'host namespaces', detail: used.join(', ') } : undefined;
};

const privileged: CheckFn = (_m, spec) => {
  const bad = containersOf(spec).filter((c) => c.securityContext?.privileged === true).map((c) => c.name);
  return bad.length > 0 ? { reason: 'privileged', detail: `${containerList(bad)} must not set securityContext.privileged=true` } : undefined;
};

const BASELINE_CAPABILITIES = new Set(['AUDIT_WRITE', 'CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'MKNOD', 'NET_BIND_SERVICE', 'SETFCAP', 'SETGID', 'SETPCAP', 'SETUID', 'SYS_CHROOT']);
const capabilitiesBaseline: CheckFn = (_m, spec) => {
  const bad: string[] = [];
  const caps: string[] = [];
  for (const c of containersOf(spec)) {
    const extra = (c.securityContext?.capabilities?.add ?? []).filter((x) => !BASELINE_CAPABILITIES.has(x));
    if (extra.length > 0) { bad.push(c.name); caps.push(...extra); }
  }
  return bad.length > 0 ? { reason: 'non-default capabilities', detail: `${containerList(bad)} must not include ${joinQuote(sorted(caps))} in securityContext.capabilities.add` } : undefined;
};

const hostPathVolumes: CheckFn = (_m, spec) => {
  const bad = (spec.volumes ?? []).filter((v) => v.hostPath !== undefined).map((v) => v.name);
  return bad.length > 0 ? { reason: 'hostPath volumes', detail: `${pluralize('volume', 'volumes', bad.length)} ${joinQuote(bad)}` } : undefined;
};

const hostPorts: CheckFn = (_m, spec) => {
  const bad: string[] = [];
  const ports: string[] = [];
  for (const c of containersOf(spec)) {
    const used = (c.ports ?? []).filter((p) => (p.hostPort ?? 0) !== 0).map((p) => String(p.hostPort));
    if (used.length > 0) { bad.push(c.name); ports.push(...used); }
  }
  if (bad.length === 0) return undefined;
  const list = sorted(ports);
  return { reason: 'hostPort', detail: `${containerList(bad)} ${pluralize('uses', 'use', bad.length)} ${pluralize('hostPort', 'hostPorts', list.length)} ${list.join(', ')}` };
};

const hostProbesAndHostLifecycle: CheckFn = (_m, spec) => {
  const bad: string[] = [];
  const hosts: string[] = [];
  for (const c of containersOf(spec)) {
    const handlers = [c.livenessProbe, c.readinessProbe, c.startupProbe, c.lifecycle?.postStart, c.lifecycle?.preStop];
    const used = handlers.flatMap((h) => [h?.httpGet?.host, h?.tcpSocket?.host]).filter((h): h is string => h !== undefined && h !== '');
    if (used.length > 0) { bad.push(c.name); hosts.push(...used); }
  }
  if (bad.length === 0) return undefined;
  const list = sorted(hosts);
  return { reason: 'probe or lifecycle host', detail: `${containerList(sorted(bad))} ${pluralize('uses', 'use', bad.length)} ${pluralize('probe or lifecycle host', 'probe or lifecycle hosts', list.length)} ${joinQuote(list)}` };
};

const APPARMOR_ANNOTATION_PREFIX = 'container.apparmor.security.beta.kubernetes.io/';
const appArmorProfile: CheckFn = (meta, spec) => {
  const allowed = (t: string): boolean => t === 'RuntimeDefault' || t === 'Localhost';
  const values: string[] = [];
  const pod = spec.securityContext?.appArmorProfile !== undefined && !allowed(spec.securityContext.appArmorProfile.type);
  if (pod) values.push(spec.securityContext!.appArmorProfile!.type);
  const bad: string[] = [];
  for (const c of containersOf(spec)) {
    const t = c.securityContext?.appArmorProfile?.type;
    if (t !== undefined && !allowed(t)) { bad.push(c.name); values.push(t); }
  }
  const annotations = Object.entries(meta.annotations ?? {})
    .filter(([k, v]) => k.startsWith(APPARMOR_ANNOTATION_PREFIX) && !(v === '' || v === 'runtime/default' || v.startsWith('localhost/')))
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`).sort();
  const who = [setters(pod, bad), ...annotations.length > 0 ? [pluralize('annotation', 'annotations', annotations.length)] : []].filter(Boolean);
  if (who.length === 0) return undefined;
  const list = [...sorted(values), ...annotations];
  return { reason: pluralize('forbidden AppArmor profile', 'forbidden AppArmor profiles', list.length), detail: `${who.join(' and ')} must not set AppArmor profile type to ${joinQuote(list)}` };
};

const procMount: CheckFn = (_m, spec) => {
  const bad = containersOf(spec).filter((c) => c.securityContext?.procMount !== undefined && c.securityContext.procMount !== 'Default');
  if (bad.length === 0) return undefined;
  return { reason: 'procMount', detail: `${containerList(bad.map((c) => c.name))} must not set securityContext.procMount to ${joinQuote(sorted(bad.map((c) => c.securityContext!.procMount!)))}` };
};

const SECCOMP_POD_ANNOTATION = 'seccomp.security.alpha.kubernetes.io/pod';
const SECCOMP_CONTAINER_ANNOTATION_PREFIX = 'container.seccomp.security.alpha.kubernetes.io/';
const seccompAllowed = (t: string): boolean => t === 'RuntimeDefault' || t === 'Localhost';

const seccompBaselineAnnotations: CheckFn = (meta, spec) => {
  const annotations = meta.annotations ?? {};
  const valid = (v: string): boolean => v === 'runtime/default' || v === 'docker/default' || v.startsWith('localhost/');
  const keys = [SECCOMP_POD_ANNOTATION, ...containersOf(spec).map((c) => SECCOMP_CONTAINER_ANNOTATION_PREFIX + c.name)];
  const bad = sorted(keys.filter((k) => annotations[k] !== undefined && !valid(annotations[k]!)).map((k) => `${k}=${JSON.stringify(annotations[k])}`));
  return bad.length > 0 ? { reason: 'seccompProfile', detail: `forbidden ${pluralize('annotation', 'annotations', bad.length)} ${bad.join(', ')}` } : undefined;
};

/** The seccomp checks of both levels on the fields (v1.19+); `required`: the restricted level, where unset is a violation. */
function seccompFields(required: boolean): CheckFn {
  return (_m, spec) => {
    if (required && isWindows(spec)) return undefined;
    const values: string[] = [];
    const podType = spec.securityContext?.seccompProfile?.type;
    const podBad = podType !== undefined && !seccompAllowed(podType);
    if (podBad) values.push(podType);
    const explicit: string[] = [];
    const implicit: string[] = [];
    for (const c of containersOf(spec)) {
      const t = c.securityContext?.seccompProfile?.type;
      if (t !== undefined) {
        if (!seccompAllowed(t)) { explicit.push(c.name); values.push(t); }
      } else if (required && (podType === undefined || podBad)) implicit.push(c.name);
    }
    if (podBad || explicit.length > 0) {
      return { reason: 'seccompProfile', detail: `${setters(podBad, explicit)} must not set securityContext.seccompProfile.type to ${joinQuote(sorted(values))}` };
    }
    if (implicit.length > 0) {
      return { reason: 'seccompProfile', detail: `pod or ${containerList(implicit)} must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"` };
    }
    return undefined;
  };
}

function sysctls(version: number): CheckFn {
  const allowed = safeSysctls(version);
  return (_m, spec) => {
    const bad = (spec.securityContext?.sysctls ?? []).map((s) => s.name).filter((n) => !allowed.has(n));
    return bad.length > 0 ? { reason: 'forbidden sysctls', detail: bad.join(', ') } : undefined;
  };
}

const allowPrivilegeEscalation = (windowsExempt: boolean): CheckFn => (_m, spec) => {
  if (windowsExempt && isWindows(spec)) return undefined;
  const bad = containersOf(spec).filter((c) => c.securityContext?.allowPrivilegeEscalation !== false).map((c) => c.name);
  return bad.length > 0 ? { reason: 'allowPrivilegeEscalation != false', detail: `${containerList(bad)} must set securityContext.allowPrivilegeEscalation=false` } : undefined;
};

const capabilitiesRestricted = (windowsExempt: boolean): CheckFn => (_m, spec) => {
  if (windowsExempt && isWindows(spec)) return undefined;
  const missingDrop: string[] = [];
  const adding: string[] = [];
  const caps: string[] = [];
  for (const c of containersOf(spec)) {
    const capabilities = c.securityContext?.capabilities;
    if (!capabilities) { missingDrop.push(c.name); continue; }
    if (!(capabilities.drop ?? []).includes('ALL')) missingDrop.push(c.name);
    const extra = (capabilities.add ?? []).filter((x) => x !== 'NET_BIND_SERVICE');
    if (extra.length > 0) { adding.push(c.name); caps.push(...extra); }
  }
  const details = [
    ...missingDrop.length > 0 ? [`${containerList(missingDrop)} must set securityContext.capabilities.drop=["ALL"]`] : [],
    ...adding.length > 0 ? [`${containerList(adding)} must not include ${joinQuote(sorted(caps))} in securityContext.capabilities.add`] : [],
  ];
  return details.length > 0 ? { reason: 'unrestricted capabilities', detail: details.join('; ') } : undefined;
};

/** The inline volume sources the restricted level allows (of those Flotilla has; csi, downwardAPI and ephemeral are allowed too). */
const RESTRICTED_VOLUME_SOURCES = ['configMap', 'emptyDir', 'persistentVolumeClaim', 'projected', 'secret'] as const;
const restrictedVolumes: CheckFn = (_m, spec) => {
  const bad: string[] = [];
  const types: string[] = [];
  for (const v of spec.volumes ?? []) {
    if (RESTRICTED_VOLUME_SOURCES.some((s) => v[s] !== undefined)) continue;
    bad.push(v.name);
    types.push(v.hostPath !== undefined ? 'hostPath' : 'unknown');
  }
  if (bad.length === 0) return undefined;
  const list = sorted(types);
  return {
    reason: 'restricted volume types',
    detail: `${pluralize('volume', 'volumes', bad.length)} ${joinQuote(bad)} ${pluralize('uses', 'use', bad.length)} ${pluralize('restricted volume type', 'restricted volume types', list.length)} ${joinQuote(list)}`,
  };
};

const runAsNonRoot: CheckFn = (_m, spec) => {
  const podValue = spec.securityContext?.runAsNonRoot;
  const explicit: string[] = [];
  const implicit: string[] = [];
  for (const c of containersOf(spec)) {
    const v = c.securityContext?.runAsNonRoot;
    if (v === false) explicit.push(c.name);
    else if (v === undefined && podValue !== true) implicit.push(c.name);
  }
  if (podValue === false || explicit.length > 0) {
    return { reason: 'runAsNonRoot != true', detail: `${setters(podValue === false, explicit)} must not set securityContext.runAsNonRoot=false` };
  }
  if (implicit.length > 0) return { reason: 'runAsNonRoot != true', detail: `pod or ${containerList(implicit)} must set securityContext.runAsNonRoot=true` };
  return undefined;
};

const runAsUser: CheckFn = (_m, spec) => {
  const pod = spec.securityContext?.runAsUser === 0;
  const bad = containersOf(spec).filter((c) => c.securityContext?.runAsUser === 0).map((c) => c.name);
  return pod || bad.length > 0 ? { reason: 'runAsUser=0', detail: `${setters(pod, bad)} must not set runAsUser=0` } : undefined;
};

const CHECKS: Check[] = [
  { id: 'appArmorProfile', level: 'baseline', versions: [{ min: 0, check: appArmorProfile }] },
  { id: 'capabilities_baseline', level: 'baseline', versions: [{ min: 0, check: capabilitiesBaseline }] },
  { id: 'hostNamespaces', level: 'baseline', versions: [{ min: 0, check: hostNamespaces }] },
  { id: 'hostPathVolumes', level: 'baseline', versions: [{ min: 0, check: hostPathVolumes }] },
  { id: 'hostPorts', level: 'baseline', versions: [{ min: 0, check: hostPorts }] },
  { id: 'hostProbesAndHostLifecycle', level: 'baseline', versions: [{ min: 34, check: hostProbesAndHostLifecycle }] },
  { id: 'privileged', level: 'baseline', versions: [{ min: 0, check: privileged }] },
  { id: 'procMount', level: 'baseline', versions: [{ min: 0, check: procMount }] },
  { id: 'seccompProfile_baseline', level: 'baseline', versions: [{ min: 0, check: seccompBaselineAnnotations }, { min: 19, check: seccompFields(false) }] },
  { id: 'sysctls', level: 'baseline', versions: SAFE_SYSCTLS.map((s) => ({ min: s.since, check: sysctls(s.since) })) },
  { id: 'allowPrivilegeEscalation', level: 'restricted', versions: [{ min: 8, check: allowPrivilegeEscalation(false) }, { min: 25, check: allowPrivilegeEscalation(true) }] },
  { id: 'capabilities_restricted', level: 'restricted', versions: [{ min: 22, check: capabilitiesRestricted(false) }, { min: 25, check: capabilitiesRestricted(true) }], overrides: ['capabilities_baseline'] },
  { id: 'restrictedVolumes', level: 'restricted', versions: [{ min: 0, check: restrictedVolumes }], overrides: ['hostPathVolumes'] },
  { id: 'runAsNonRoot', level: 'restricted', versions: [{ min: 0, check: runAsNonRoot }] },
  { id: 'runAsUser', level: 'restricted', versions: [{ min: 23, check: runAsUser }] },
  { id: 'seccompProfile_restricted', level: 'restricted', versions: [{ min: 19, check: seccompFields(true) }], overrides: ['seccompProfile_baseline'] },
];
// Kubernetes orders checks by id (baseline first), so that its messages are stable: so does this table.
const ORDERED = [...CHECKS].sort((a, b) => (a.level === b.level ? (a.id < b.id ? -1 : 1) : a.level === 'baseline' ? -1 : 1));

/** The violations of the pod (meta, spec) at `lv`, in Kubernetes' order; none at the privileged level. */
export function evaluatePod(lv: LevelVersion, meta: ObjectMeta, spec: PodSpec): CheckResult[] {
  if (lv.level === 'privileged') return [];
  const overridden = new Set(lv.level === 'restricted' ? ORDERED.filter((c) => c.level === 'restricted' && c.versions.some((v) => v.min <= lv.version)).flatMap((c) => c.overrides ?? []) : []);
  const results: CheckResult[] = [];
  for (const c of ORDERED) {
    if ((c.level === 'restricted' && lv.level !== 'restricted') || overridden.has(c.id)) continue;
    const versioned = c.versions.filter((v) => v.min <= lv.version).at(-1);
    const result = versioned?.check(meta, spec);
    if (result) results.push(result);
  }
  return results;
}

/** Kubernetes' AggregateCheckResult.ForbiddenDetail: "reason (detail), reason (detail)". */
export function forbiddenDetail(results: readonly CheckResult[]): string {
  return results.map((r) => (r.detail ? `${r.reason} (${r.detail})` : r.reason)).join(', ');
}

// ---- admission -------------------------------------------------------------------------------------------

/** The pod template of a workload kind; undefined for objects without one. */
function podTemplateOf(o: StoredObject): { metadata?: ObjectMeta; spec: PodSpec } | undefined {
  if (isKind(o, 'Deployment') || isKind(o, 'ReplicaSet') || isKind(o, 'StatefulSet') || isKind(o, 'DaemonSet') || isKind(o, 'Job')) return o.spec.template;
  if (isKind(o, 'CronJob')) return o.spec.jobTemplate.spec.template;
  return undefined;
}

/** Whether a pod update changes what the checks read and an update may change (Kubernetes' isSignificantPodUpdate). */
function isSignificantPodUpdate(before: StoredObject & { spec: PodSpec }, after: StoredObject & { spec: PodSpec }): boolean {
  const a = after.metadata.annotations ?? {};
  const b = before.metadata.annotations ?? {};
  if (a[SECCOMP_POD_ANNOTATION] !== b[SECCOMP_POD_ANNOTATION]) return true;
  for (const field of ['containers', 'initContainers'] as const) {
    const now = after.spec[field] ?? [];
    const was = before.spec[field] ?? [];
    if (now.length !== was.length) return true;
    for (let i = 0; i < now.length; i++) {
      const key = SECCOMP_CONTAINER_ANNOTATION_PREFIX + now[i]!.name;
      if (now[i]!.image !== was[i]!.image || a[key] !== b[key]) return true;
    }
  }
  return false;
}

/**
 * Pod Security admission of a write of `object` (stored: the object it replaces) in a namespace with these labels:
 * throws `refuse(message)` for a pod that violates the enforce level; records warnings and audit annotations in
 * the request's admission record.
 */
export function admitPodSecurity(
  object: StoredObject, stored: StoredObject | undefined, namespaceLabels: Record<string, string> | undefined,
  refuse: (message: string) => Error,
): void {
  const isPod = isKind(object, 'Pod');
  const template = isPod ? { metadata: object.metadata, spec: object.spec } : podTemplateOf(object);
  if (!template) return;
  if (isPod && stored && isKind(stored, 'Pod') && !isSignificantPodUpdate(stored, object)) return;
  const { policy, error } = policyOf(object.metadata.namespace ?? 'default', namespaceLabels);
  if (policy.audit.level === 'privileged' && policy.warn.level === 'privileged' && (!isPod || policy.enforce.level === 'privileged') && error === undefined) return;
  const record = admissionRecord();
  if (error !== undefined) record?.auditAnnotate(AUDIT_ERROR, `Failed to parse policy: ${error}`);
  const meta = template.metadata ?? {};
  const cache = new Map<string, CheckResult[]>();
  const evaluate = (lv: LevelVersion): CheckResult[] => {
    const key = levelVersionString(lv);
    let results = cache.get(key);
    if (!results) cache.set(key, results = evaluatePod(lv, meta, template.spec));
    return results;
  };
  let refusal: string | undefined;
  if (isPod) {
    record?.auditAnnotate(AUDIT_ENFORCE_POLICY, levelVersionString(policy.enforce));
    const violations = evaluate(policy.enforce);
    if (violations.length > 0) refusal = `violates PodSecurity ${JSON.stringify(levelVersionString(policy.enforce))}: ${forbiddenDetail(violations)}`;
  }
  const audit = evaluate(policy.audit);
  if (audit.length > 0) record?.auditAnnotate(AUDIT_VIOLATIONS, `would violate PodSecurity ${JSON.stringify(levelVersionString(policy.audit))}: ${forbiddenDetail(audit)}`);
  if (refusal !== undefined) throw refuse(refusal);
  const warn = evaluate(policy.warn);
  if (warn.length > 0) record?.warn(`would violate PodSecurity ${JSON.stringify(levelVersionString(policy.warn))}: ${forbiddenDetail(warn)}`);
}
