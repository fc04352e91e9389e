// Each Pod Security Standards check of server/objects/pod-security.ts against Kubernetes' own messages
// (staging/src/k8s.io/pod-security-admission/policy/check_*.go), one table row per case: the pod, the level and
// version, and the ForbiddenDetail Kubernetes gives ('' when the pod is allowed).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { validateObject, type ObjectMeta, type PodSpec } from '../../api-types/index.js';
import { LATEST, evaluatePod, forbiddenDetail, policyLabelErrors, policyOf, levelVersionString, type LevelVersion } from '../../server/objects/pod-security.js';

type Spec = Record<string, unknown>;
const c = (name: string, extra: Record<string, unknown> = {}) => ({ name, image: 'flotilla/testbox:latest', ...extra });
const pod = (spec: Spec = {}): Spec => ({ containers: [c('a')], ...spec });
/** A container the restricted level allows. */
const restrictedContainer = (name: string, sc: Record<string, unknown> = {}) => c(name, {
  securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' }, ...sc },
});
const baseline = (version = LATEST): LevelVersion => ({ level: 'baseline', version });
const restricted = (version = LATEST): LevelVersion => ({ level: 'restricted', version });

/** The pod's spec after validation, as admission sees it (a table row that does not validate fails here). */
function valid(spec: Spec, annotations: Record<string, string> = {}): { meta: ObjectMeta; spec: PodSpec } {
  const v = validateObject({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'default', annotations }, spec });
  if (!v.ok) throw new Error(`the table's pod does not validate: ${JSON.stringify(v.issues)}`);
  const o = v.object as unknown as { metadata: ObjectMeta; spec: PodSpec };
  return { meta: o.metadata, spec: o.spec };
}

const rows: [string, LevelVersion, Spec, string, Record<string, string>?][] = [
  ['a plain pod is baseline', baseline(), pod(), ''],
  ['hostNetwork, hostPID, hostIPC', baseline(), pod({ hostNetwork: true, hostPID: true, hostIPC: true }), 'host namespaces (hostNetwork=true, hostPID=true, hostIPC=true)'],
  ['hostPID alone', baseline(), pod({ hostPID: true }), 'host namespaces (hostPID=true)'],
  ['privileged containers, init first', baseline(), pod({ initContainers: [c('i', { securityContext: { privileged: true } })], containers: [c('a', { securityContext: { privileged: true } }), c('b', { securityContext: { privileged: false } })] }),
    'privileged (containers "i", "a" must not set securityContext.privileged=true)'],
  ['capabilities beyond the default set', baseline(), pod({ containers: [c('a', { securityContext: { capabilities: { add: ['NET_RAW', 'CHOWN', 'SYS_ADMIN'] } } }), c('b', { securityContext: { capabilities: { add: ['KILL'] } } })] }),
    'non-default capabilities (container "a" must not include "NET_RAW", "SYS_ADMIN" in securityContext.capabilities.add)'],
  ['hostPath volumes', baseline(), pod({ volumes: [{ name: 'h', hostPath: { path: '/' } }, { name: 'e', emptyDir: {} }, { name: 'sock', hostPath: { path: '/var/run/docker.sock' } }] }),
    'hostPath volumes (volumes "h", "sock")'],
  ['one hostPath volume', baseline(), pod({ volumes: [{ name: 'h', hostPath: { path: '/' } }] }), 'hostPath volumes (volume "h")'],
  ['hostPorts', baseline(), pod({ containers: [c('a', { ports: [{ containerPort: 80, hostPort: 8080 }, { containerPort: 81, hostPort: 0 }, { containerPort: 82, hostPort: 10 }] })] }),
    'hostPort (container "a" uses hostPorts 10, 8080)'],
  ['probe host from 1.34', baseline(), pod({ containers: [c('a', { livenessProbe: { httpGet: { port: 80, host: 'example.com' } } })] }),
    'probe or lifecycle host (container "a" uses probe or lifecycle host "example.com")'],
  ['probe host allowed before 1.34', baseline(33), pod({ containers: [c('a', { livenessProbe: { httpGet: { port: 80, host: 'example.com' } } })] }), ''],
  ['AppArmor Unconfined', baseline(), pod({ securityContext: { appArmorProfile: { type: 'Unconfined' } }, containers: [c('a', { securityContext: { appArmorProfile: { type: 'Unconfined' } } })] }),
    'forbidden AppArmor profile (pod and container "a" must not set AppArmor profile type to "Unconfined")'],
  ['AppArmor annotation', baseline(), pod(), 'forbidden AppArmor profile (annotation must not set AppArmor profile type to "container.apparmor.security.beta.kubernetes.io/a=\\"unconfined\\"")',
    { 'container.apparmor.security.beta.kubernetes.io/a': 'unconfined' }],
  ['procMount Default is allowed', baseline(), pod({ containers: [c('a', { securityContext: { procMount: 'Default' } })] }), ''],
  ['seccomp Unconfined on pod and container', baseline(), pod({ securityContext: { seccompProfile: { type: 'Unconfined' } }, containers: [c('a', { securityContext: { seccompProfile: { type: 'Unconfined' } } })] }),
    'seccompProfile (pod and container "a" must not set securityContext.seccompProfile.type to "Unconfined")'],
  ['seccomp annotation before 1.19', baseline(18), pod(), 'seccompProfile (forbidden annotation seccomp.security.alpha.kubernetes.io/pod="unconfined")',
    { 'seccomp.security.alpha.kubernetes.io/pod': 'unconfined' }],
  ['seccomp fields are not read before 1.19', baseline(18), pod({ securityContext: { seccompProfile: { type: 'Unconfined' } } }), ''],
  ['unsafe sysctls', baseline(), pod({ securityContext: { sysctls: [{ name: 'kernel.msgmax', value: '1' }, { name: 'net.ipv4.tcp_syncookies', value: '1' }, { name: 'net.core.somaxconn', value: '1' }] } }),
    'forbidden sysctls (kernel.msgmax, net.core.somaxconn)'],
  ['a sysctl made safe in 1.29', baseline(28), pod({ securityContext: { sysctls: [{ name: 'net.ipv4.tcp_keepalive_time', value: '60' }] } }), 'forbidden sysctls (net.ipv4.tcp_keepalive_time)'],
  ['the same sysctl at 1.29', baseline(29), pod({ securityContext: { sysctls: [{ name: 'net.ipv4.tcp_keepalive_time', value: '60' }] } }), ''],
  ['several baseline violations in check order', baseline(), pod({ hostNetwork: true, volumes: [{ name: 'h', hostPath: { path: '/' } }], containers: [c('a', { securityContext: { privileged: true } })] }),
    'host namespaces (hostNetwork=true), hostPath volumes (volume "h"), privileged (container "a" must not set securityContext.privileged=true)'],
  ['restricted: a compliant pod', restricted(), pod({ containers: [restrictedContainer('a', { capabilities: { drop: ['ALL'], add: ['NET_BIND_SERVICE'] }, runAsUser: 1000 })] }), ''],
  ['restricted: pod-level runAsNonRoot and seccomp cover containers', restricted(),
    pod({ securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } }, containers: [c('a', { securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } } })] }), ''],
  ['restricted: a plain pod', restricted(), pod(),
    'allowPrivilegeEscalation != false (container "a" must set securityContext.allowPrivilegeEscalation=false), '
    + 'unrestricted capabilities (container "a" must set securityContext.capabilities.drop=["ALL"]), '
    + 'runAsNonRoot != true (pod or container "a" must set securityContext.runAsNonRoot=true), '
    + 'seccompProfile (pod or container "a" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")'],
  ['restricted: a hostPath volume is a restricted volume type (not the baseline hostPath check)', restricted(),
    pod({ volumes: [{ name: 'h', hostPath: { path: '/' } }], containers: [restrictedContainer('a')] }),
    'restricted volume types (volume "h" uses restricted volume type "hostPath")'],
  ['restricted: capabilities added', restricted(), pod({ containers: [restrictedContainer('a', { capabilities: { drop: ['ALL'], add: ['NET_ADMIN', 'CHOWN'] } })] }),
    'unrestricted capabilities (container "a" must not include "CHOWN", "NET_ADMIN" in securityContext.capabilities.add)'],
  ['restricted before 1.22: the baseline capabilities check', restricted(21), pod({ containers: [restrictedContainer('a', { capabilities: { add: ['NET_ADMIN'] } })] }),
    'non-default capabilities (container "a" must not include "NET_ADMIN" in securityContext.capabilities.add)'],
  ['restricted: drop without ALL', restricted(), pod({ containers: [restrictedContainer('a', { capabilities: { drop: ['NET_RAW'] } })] }),
    'unrestricted capabilities (container "a" must set securityContext.capabilities.drop=["ALL"])'],
  ['restricted: capabilities are not checked before 1.22', restricted(21), pod({ containers: [restrictedContainer('a', { capabilities: {} })] }), ''],
  ['restricted: runAsNonRoot false on pod and container', restricted(),
    pod({ securityContext: { runAsNonRoot: false }, containers: [restrictedContainer('a', { runAsNonRoot: false }), restrictedContainer('b')] }),
    'runAsNonRoot != true (pod and container "a" must not set securityContext.runAsNonRoot=false)'],
  ['restricted: runAsUser 0', restricted(), pod({ securityContext: { runAsUser: 0 }, containers: [restrictedContainer('a', { runAsUser: 0 })] }),
    'runAsUser=0 (pod and container "a" must not set runAsUser=0)'],
  ['restricted: runAsUser 0 is allowed before 1.23', restricted(22), pod({ containers: [restrictedContainer('a', { runAsUser: 0 })] }), ''],
  ['restricted: seccomp Unconfined on a container', restricted(), pod({ securityContext: { seccompProfile: { type: 'RuntimeDefault' } }, containers: [restrictedContainer('a', { seccompProfile: { type: 'Unconfined' } }), restrictedContainer('b', { seccompProfile: undefined })] }),
    'seccompProfile (container "a" must not set securityContext.seccompProfile.type to "Unconfined")'],
  ['restricted: allowPrivilegeEscalation true', restricted(), pod({ containers: [restrictedContainer('a', { allowPrivilegeEscalation: true })] }),
    'allowPrivilegeEscalation != false (container "a" must set securityContext.allowPrivilegeEscalation=false)'],
  ['restricted: Windows pods are exempt from the Linux-only checks from 1.25', restricted(), pod({ os: { name: 'windows' }, securityContext: { runAsNonRoot: true } }), ''],
  ['restricted: not before 1.25', restricted(24), pod({ os: { name: 'windows' }, securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } } }),
    'allowPrivilegeEscalation != false (container "a" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container "a" must set securityContext.capabilities.drop=["ALL"])'],
  ['privileged allows everything', { level: 'privileged', version: LATEST }, pod({ hostNetwork: true, volumes: [{ name: 'h', hostPath: { path: '/' } }] }), ''],
];

for (const [name, lv, spec, detail, annotations] of rows) {
  test(`${levelVersionString(lv)}: ${name}`, () => {
    const p = valid(spec, annotations);
    assert.is(forbiddenDetail(evaluatePod(lv, p.meta, p.spec)), detail);
  });
}

test('namespace labels choose each mode\'s level and version; unlabelled modes get the cluster default', () => {
  const { policy, error } = policyOf('apps', { 'pod-security.kubernetes.io/enforce': 'restricted', 'pod-security.kubernetes.io/warn-version': 'v1.25' });
  assert.is(error, undefined);
  assert.is(levelVersionString(policy.enforce), 'restricted:latest');
  assert.is(levelVersionString(policy.warn), 'baseline:v1.25');
  assert.is(levelVersionString(policy.audit), 'baseline:latest');
  assert.is(levelVersionString(policyOf('kube-system', undefined).policy.enforce), 'privileged:latest');
  assert.is(levelVersionString(policyOf('kube-system', { 'pod-security.kubernetes.io/enforce': 'baseline' }).policy.enforce), 'baseline:latest');
});

test('labels that do not parse are named, and the namespace is evaluated as restricted:latest', () => {
  const labels = { 'pod-security.kubernetes.io/enforce': 'strict', 'pod-security.kubernetes.io/audit-version': '1.25' };
  assert.equal(policyLabelErrors(labels).map((e) => e.label), ['pod-security.kubernetes.io/enforce', 'pod-security.kubernetes.io/audit-version']);
  const { policy, error } = policyOf('apps', labels);
  assert.is(levelVersionString(policy.enforce), 'restricted:latest');
  assert.match(error ?? '', /"strict": must be one of privileged, baseline, restricted/);
});

test.run();
