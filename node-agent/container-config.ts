// Turns a Kubernetes container spec (plus the ConfigMaps and Secrets handed in) into the runtime's
// ContainerConfig: environment, volumes as host directories, CPU/memory limits, assigned GPUs.
import { createHash } from 'node:crypto';
import { chmod, chown, lstat, mkdir, readFile, readdir, readlink, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, normalize, relative, resolve, sep } from 'node:path';
import { ANNOTATION_ASSIGNED_GPUS, ANNOTATION_RUNTIME_HANDLER, GPU_RESOURCE_AMD, GPU_RESOURCE_NVIDIA } from '../api-types/index.js';
import { bytes, cpuMillis } from '../api-types/quantity.js';
import type { Container, Pod, SecurityContext, Service, Volume } from '../api-types/index.js';
import { serviceEnv } from './network/service-env.js';
import type { PodInputs } from './pod-actions.js';
import type { ContainerConfig, ContainerRuntime, ContainerSecurity, Mount } from './runtime/types.js';
import { nfsVolumeOptions, prepareClaimVolume } from './storage.js';

/** The container cannot be configured as asked (missing ConfigMap key, bad quantity...): Kubernetes' CreateContainerConfigError. */
export class ContainerConfigError extends Error {
  readonly reason = 'CreateContainerConfigError';
  constructor(message: string) {
    super(message);
    this.name = 'ContainerConfigError';
  }
}

/**
 * A resource limit read with the API's exact quantity parser (api-types); a malformed or negative one is a
 * ContainerConfigError naming the field.
 */
export function limitQuantity(parse: (q: string | number) => number, value: string | number, what: string): number {
  let n: number;
  try {
    n = parse(value);
  } catch {
    throw new ContainerConfigError(`${what}: "${value}" is not a quantity (examples: 500m, 2, 128Mi, 1G)`);
  }
  if (n < 0) throw new ContainerConfigError(`${what}: "${value}" is negative`);
  return n;
}

function decodeSecret(base64: string): string {
  return Buffer.from(base64, 'base64').toString('utf8');
}

function configMapValues(inputs: PodInputs, name: string): Record<string, string> | undefined {
  const cm = inputs.configMaps[name];
  if (!cm) return undefined;
  const out: Record<string, string> = { ...(cm.data ?? {}) };
  for (const [k, v] of Object.entries(cm.binaryData ?? {})) out[k] = decodeSecret(v);
  return out;
}

/** A Secret of the pod's inputs as plain text by key (data decoded, stringData merged in); undefined when it is missing. */
export function secretValues(inputs: PodInputs, name: string): Record<string, string> | undefined {
  const s = inputs.secrets[name];
  if (!s) return undefined;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(s.data ?? {})) out[k] = decodeSecret(v);
  Object.assign(out, s.stringData ?? {});
  return out;
}

/** The container's environment: envFrom first, then env (later entries win), as Kubernetes does. */
export function resolveEnv(inputs: PodInputs, container: Container, podIP?: string): Record<string, string> {
  const env: Record<string, string> = {};
  const where = `container "${container.name}"`;
  for (const source of container.envFrom ?? []) {
    const ref = source.configMapRef ?? source.secretRef;
    if (!ref) throw new ContainerConfigError(`${where}: envFrom entry has neither configMapRef nor secretRef`);
    const kind = source.configMapRef ? 'ConfigMap' : 'Secret';
    const values = source.configMapRef ? configMapValues(inputs, ref.name ?? '') : secretValues(inputs, ref.name ?? '');
    if (!values) {
      if (ref.optional) continue;
      throw new ContainerConfigError(`${where}: ${kind} "${ref.name}" not found (envFrom)`);
    }
    for (const [k, v] of Object.entries(values)) env[(source.prefix ?? '') + k] = v;
  }
  for (const e of container.env ?? []) {
    if (e.value !== undefined || !e.valueFrom) {
      env[e.name] = e.value ?? '';
      continue;
    }
    const { configMapKeyRef, secretKeyRef, fieldRef } = e.valueFrom;
    if (fieldRef) {
      env[e.name] = fieldValue(inputs, fieldRef.fieldPath, podIP, `${where}: env ${e.name}`);
      continue;
    }
    const ref = configMapKeyRef ?? secretKeyRef;
    if (!ref) throw new ContainerConfigError(`${where}: env ${e.name}: valueFrom has no configMapKeyRef, secretKeyRef or fieldRef`);
    const kind = configMapKeyRef ? 'ConfigMap' : 'Secret';
    const values = configMapKeyRef ? configMapValues(inputs, ref.name ?? '') : secretValues(inputs, ref.name ?? '');
    const value = values?.[ref.key];
    if (value === undefined) {
      if (ref.optional) continue;
      throw new ContainerConfigError(values
        ? `${where}: env ${e.name}: key "${ref.key}" not found in ${kind} "${ref.name}"`
        : `${where}: env ${e.name}: ${kind} "${ref.name}" not found`);
    }
    env[e.name] = value;
  }
  return env;
}

function fieldValue(inputs: PodInputs, path: string, podIP: string | undefined, where: string): string {
  const meta = inputs.pod.metadata;
  switch (path) {
    case 'metadata.name': return meta.name ?? '';
    case 'metadata.namespace': return meta.namespace ?? 'default';
    case 'metadata.uid': return meta.uid ?? '';
    case 'spec.nodeName': return inputs.pod.spec.nodeName ?? '';
    case 'status.podIP': return podIP ?? '';
  }
  const label = /^metadata\.labels\['(.+)'\]$/.exec(path);
  if (label) return meta.labels?.[label[1]!] ?? '';
  const annotation = /^metadata\.annotations\['(.+)'\]$/.exec(path);
  if (annotation) return meta.annotations?.[annotation[1]!] ?? '';
  throw new ContainerConfigError(`${where}: fieldRef ${path} is not supported`);
}

/**
 * Makes every volume of the pod exist as a host directory under podDir and returns its path by volume name.
 * ConfigMap and Secret files are rewritten in place when their content differs (mode 0644 / 0600), never by
 * replacing the directory, which running containers hold as a bind mount; unchanged files are not written, so a
 * sync every few seconds costs an SD card no writes. Keys removed from the object stay until the pod goes.
 * emptyDir content survives container restarts and lives until the pod's directory is removed.
 */
export async function preparePodVolumes(inputs: PodInputs, podDir: string, runtime?: Pick<ContainerRuntime, 'ensureVolume'>): Promise<Map<string, string>> {
  const paths = new Map<string, string>();
  const fsGroup = inputs.pod.spec.securityContext?.fsGroup;
  for (const v of inputs.pod.spec.volumes ?? []) {
    const path = await prepareVolume(inputs, v, podDir, runtime);
    if (fsGroup !== undefined && (v.emptyDir || v.configMap || v.secret)) await applyFsGroup(path, fsGroup, v.emptyDir !== undefined);
    paths.set(v.name, path);
  }
  return paths;
}

/**
 * The kubelet's volume ownership for spec.securityContext.fsGroup (SetVolumeOwnership): everything in the volume
 * gets group `gid`, readable by it (and writable, in a writable volume), directories setgid so that new files
 * inherit the group. Symlinks are not followed. Applied at every sync, it changes nothing once done
 * (fsGroupChangePolicy OnRootMismatch and Always agree on a volume the agent made).
 */
async function applyFsGroup(root: string, gid: number, writable: boolean): Promise<void> {
  const walk = async (path: string): Promise<void> => {
    const st = await lstat(path);
    if (st.isSymbolicLink()) return;
    if (st.gid !== gid) await chown(path, st.uid, gid);
    const wanted = (st.mode & 0o7777) | 0o040 | (writable ? 0o020 : 0) | (st.isDirectory() ? 0o2010 : 0);
    if ((st.mode & 0o7777) !== wanted) await chmod(path, wanted);
    if (st.isDirectory()) for (const name of await readdir(path)) await walk(join(path, name));
  };
  await walk(root);
}

/**
 * Where the secret volumes of all pods live: memory (tmpfs), as the kubelet keeps them, so that a Secret's values
 * never reach the node's disk and are gone at a power cut. Each pod has its own folder (secretVolumesDir),
 * removed with the pod.
 */
export const SECRET_VOLUMES_ROOT = '/dev/shm/flotilla-secret-volumes';

/** The tmpfs folder of the pod whose directory is `podDir` (unique per agent data dir and pod). */
export function secretVolumesDir(podDir: string): string {
  return join(SECRET_VOLUMES_ROOT, createHash('sha256').update(podDir).digest('hex').slice(0, 32));
}

async function prepareVolume(inputs: PodInputs, v: Volume, podDir: string, runtime: Pick<ContainerRuntime, 'ensureVolume'> | undefined): Promise<string> {
  const dir = v.secret ? join(secretVolumesDir(podDir), v.name) : join(podDir, 'volumes', v.name);
  if (v.hostPath) return v.hostPath.path;
  if (v.persistentVolumeClaim) {
    const claim = v.persistentVolumeClaim.claimName;
    const volume = inputs.persistentVolumes?.[claim];
    if (volume?.spec.nfs) {
      if (!runtime) throw new ContainerConfigError(`volume "${v.name}": NFS volumes are mounted through the container runtime, which was not given`);
      await runtime.ensureVolume(nfsVolumeOptions(volume));
    }
    return prepareClaimVolume(claim, volume);
  }
  if (v.emptyDir) {
    await mkdir(dir, { recursive: true, mode: 0o777 });
    return dir;
  }
  const source = v.configMap
    ? { kind: 'ConfigMap', name: v.configMap.name ?? '', values: configMapValues(inputs, v.configMap.name ?? ''), items: v.configMap.items, optional: v.configMap.optional, mode: 0o644 }
    : v.secret
      ? { kind: 'Secret', name: v.secret.secretName ?? '', values: secretValues(inputs, v.secret.secretName ?? ''), items: v.secret.items, optional: v.secret.optional, mode: 0o600 }
      : undefined;
  if (!source) throw new ContainerConfigError(`volume "${v.name}": only emptyDir, hostPath, configMap, secret and persistentVolumeClaim are supported`);
  if (!source.values && !source.optional) throw new ContainerConfigError(`volume "${v.name}": ${source.kind} "${source.name}" not found`);
  if (v.secret) {
    await mkdir(SECRET_VOLUMES_ROOT, { recursive: true, mode: 0o700 }).catch((err: unknown) => {
      throw new ContainerConfigError(`volume "${v.name}": secret volumes are kept in memory, under ${SECRET_VOLUMES_ROOT} (a tmpfs): ${(err as Error).message}`);
    });
  }
  await mkdir(dir, { recursive: true });
  const values = source.values ?? {};
  const files = source.items ?? Object.keys(values).map((key) => ({ key, path: key }));
  for (const item of files) {
    const value = values[item.key];
    if (value === undefined) throw new ContainerConfigError(`volume "${v.name}": key "${item.key}" not found in ${source.kind} "${source.name}"`);
    const rel = normalize(item.path);
    if (rel.startsWith('..') || rel.startsWith('/')) throw new ContainerConfigError(`volume "${v.name}": item path "${item.path}" leaves the volume`);
    const file = join(dir, rel);
    if (await readFile(file, 'utf8').then((old) => old === value, () => false)) continue;
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, value, { mode: source.mode });
  }
  return dir;
}

export interface ContainerContext {
  name: string;
  sandboxId: string;
  labels: Record<string, string>;
  volumePaths: Map<string, string>;
  /** The host path of each volumeMount with a subPath, by its index in volumeMounts (resolveSubPaths). */
  subPaths?: ReadonlyMap<number, string>;
  /** The image's own user (ImageInfo.user): what runAsNonRoot verifies when runAsUser is not given. */
  imageUser?: string;
  podIP?: string;
  /** The engine's runtimes (ContainerRuntime.runtimeHandlers); needed when the pod has a runtime handler. */
  runtimeHandlers?: readonly string[];
  /** The Services that exist as the container starts: their environment variables (network/service-env.ts), under the container's own. */
  services?: readonly Service[];
}

/** The handler of NVIDIA's RuntimeClass, and the name the NVIDIA Container Toolkit registers its runtime under. */
export const NVIDIA_HANDLER = 'nvidia';

/**
 * The runtime a container of a pod whose RuntimeClass has `handler` runs with on an engine offering `available`:
 * the handler itself where the engine has it; for "nvidia" without the NVIDIA runtime, the engine's default (its
 * GPUs still come through Docker's DeviceRequests, as for any GPU pod); any other missing handler is a
 * ContainerConfigError naming it. No handler: the engine's default (undefined).
 */
export function runtimeFor(handler: string | undefined, available: readonly string[]): string | undefined {
  if (handler === undefined || available.includes(handler)) return handler;
  if (handler === NVIDIA_HANDLER) return undefined;
  throw new ContainerConfigError(`RuntimeClass handler "${handler}" is not a runtime of this node's container engine (it has ${available.join(', ') || 'none'})`);
}

/**
 * The host path of every volumeMount of `container` with a subPath, by mount index: the subPath resolved inside its
 * volume as the kubelet does, made when missing (a directory), and refused (ContainerConfigError) when it, or a
 * symlink on the way, leads out of the volume. What is mounted is the resolved path, so a symlink the container
 * swaps in later changes nothing. Admission has refused absolute paths and '..' already.
 */
export async function resolveSubPaths(container: Container, volumePaths: ReadonlyMap<string, string>): Promise<Map<number, string>> {
  const out = new Map<number, string>();
  for (const [i, m] of (container.volumeMounts ?? []).entries()) {
    if (!m.subPath) continue;
    const root = volumePaths.get(m.name);
    const fail = (why: string): ContainerConfigError => new ContainerConfigError(`failed to prepare subPath for volumeMount "${m.name}" of container "${container.name}": ${why}`);
    if (root === undefined) throw fail('the volume is not prepared');
    if (!isAbsolute(root)) throw fail('subPath is not supported on this kind of volume');
    out.set(i, await resolveInside(resolve(root), m.subPath, fail));
  }
  return out;
}

/** Walks `sub` component by component from `root` without ever leaving it (symlinks resolved against root's inside). */
async function resolveInside(root: string, sub: string, fail: (why: string) => Error): Promise<string> {
  const inside = (p: string): boolean => p === root || p.startsWith(root + sep);
  const pending = sub.split('/').filter((c) => c !== '' && c !== '.');
  let at = root;
  for (let hops = 0; pending.length > 0;) {
    const part = pending.shift()!;
    if (part === '..') {
      at = dirname(at);
      if (!inside(at)) throw fail(`subPath "${sub}" leads out of the volume`);
      continue;
    }
    const next = join(at, part);
    const st = await lstat(next).catch((err: NodeJS.ErrnoException) => { if (err.code === 'ENOENT') return undefined; throw err; });
    if (!st) {
      await mkdir(next, { mode: 0o777 });
      at = next;
      continue;
    }
    if (st.isSymbolicLink()) {
      if (++hops > 40) throw fail(`subPath "${sub}": too many levels of symbolic links`);
      const target = await readlink(next);
      if (isAbsolute(target)) throw fail(`subPath "${sub}" goes through symlink ${relative(root, next)} -> ${target}, out of the volume`);
      pending.unshift(...target.split('/').filter((c) => c !== '' && c !== '.'));
      continue;
    }
    at = next;
  }
  return at;
}

/** Kubernetes' DetermineEffectiveSecurityContext: the pod's securityContext with the container's over it. */
function effectiveSecurityContext(pod: Pod, container: Container): SecurityContext & { supplementalGroups?: number[]; fsGroup?: number } {
  const p = pod.spec.securityContext ?? {};
  const c = container.securityContext ?? {};
  const out: SecurityContext & { supplementalGroups?: number[]; fsGroup?: number } = { ...c };
  for (const key of ['runAsUser', 'runAsGroup', 'runAsNonRoot', 'seccompProfile', 'appArmorProfile'] as const) {
    if (out[key] === undefined && p[key] !== undefined) (out as Record<string, unknown>)[key] = p[key];
  }
  if (p.supplementalGroups) out.supplementalGroups = p.supplementalGroups;
  if (p.fsGroup !== undefined) out.fsGroup = p.fsGroup;
  return out;
}

/** The kubelet's pod name in its messages (format.Pod): name_namespace(uid). */
function podDisplayName(pod: Pod): string {
  return `${pod.metadata.name ?? ''}_${pod.metadata.namespace ?? 'default'}(${pod.metadata.uid ?? ''})`;
}

/**
 * The kubelet's verifyRunAsNonRoot, with its messages: with runAsNonRoot, the user the container will run as
 * (runAsUser, else the image's; an image without one runs as root) must be a non-zero uid.
 */
function verifyRunAsNonRoot(pod: Pod, container: Container, sc: SecurityContext, imageUser: string | undefined): void {
  if (sc.runAsNonRoot !== true) return;
  const who = `(pod: ${JSON.stringify(podDisplayName(pod))}, container: ${container.name})`;
  if (sc.runAsUser !== undefined) {
    if (sc.runAsUser === 0) throw new ContainerConfigError(`container's runAsUser breaks non-root policy ${who}`);
    return;
  }
  const user = (imageUser ?? '').split(':')[0]!;
  if (user !== '' && !/^[0-9]+$/.test(user)) throw new ContainerConfigError(`container has runAsNonRoot and image has non-numeric user (${user}), cannot verify user is non-root ${who}`);
  if (user === '' || Number(user) === 0) throw new ContainerConfigError(`container has runAsNonRoot and image will run as root ${who}`);
}

/** What the container's securityContext (over the pod's) asks of the runtime; runAsNonRoot is verified first. */
export function containerSecurity(pod: Pod, container: Container, imageUser: string | undefined): ContainerSecurity {
  const sc = effectiveSecurityContext(pod, container);
  verifyRunAsNonRoot(pod, container, sc, imageUser);
  const security: ContainerSecurity = {};
  if (sc.runAsUser !== undefined || sc.runAsGroup !== undefined) {
    // Docker's User takes the group only with a user: a group alone goes with the image's user (root when none).
    const user = sc.runAsUser !== undefined ? String(sc.runAsUser) : ((imageUser ?? '').split(':')[0] || '0');
    security.user = sc.runAsGroup !== undefined ? `${user}:${sc.runAsGroup}` : user;
  }
  const groups = [...sc.fsGroup !== undefined ? [sc.fsGroup] : [], ...sc.supplementalGroups ?? []];
  if (groups.length > 0) security.groups = [...new Set(groups)];
  if (sc.privileged) security.privileged = true;
  if (sc.readOnlyRootFilesystem) security.readOnlyRootFilesystem = true;
  const capName = (c: string): string => (c.startsWith('CAP_') ? c.slice(4) : c);
  if (sc.capabilities?.add?.length) security.capAdd = sc.capabilities.add.map(capName);
  if (sc.capabilities?.drop?.length) security.capDrop = sc.capabilities.drop.map(capName);
  if (sc.allowPrivilegeEscalation === false) security.noNewPrivileges = true;
  // Unset or RuntimeDefault: the runtime's default profile, as a kubelet run with --seccomp-default.
  if (sc.seccompProfile?.type === 'Unconfined') security.seccompUnconfined = true;
  if (sc.appArmorProfile?.type === 'Unconfined') security.appArmorUnconfined = true;
  if (pod.spec.hostPID) security.hostPID = true;
  if (pod.spec.hostIPC) security.hostIPC = true;
  return security;
}

export function buildContainerConfig(inputs: PodInputs, container: Container, ctx: ContainerContext): ContainerConfig {
  const where = `container "${container.name}"`;
  const mounts: Mount[] = (container.volumeMounts ?? []).map((m, i) => {
    const hostPath = ctx.volumePaths.get(m.name);
    if (hostPath === undefined) throw new ContainerConfigError(`${where}: volumeMount "${m.name}" names no volume of the pod`);
    const source = m.subPath ? ctx.subPaths?.get(i) : hostPath;
    if (source === undefined) throw new ContainerConfigError(`${where}: volumeMount "${m.name}": subPath "${m.subPath}" was not resolved in its volume (resolveSubPaths)`);
    return { hostPath: source, containerPath: m.mountPath, readOnly: m.readOnly === true || isObjectVolume(inputs, m.name) || isReadOnlyClaim(inputs, m.name) };
  });
  const config: ContainerConfig = {
    name: ctx.name,
    image: container.image,
    env: {
      ...(ctx.services ? serviceEnv(ctx.services, inputs.pod.metadata.namespace ?? 'default', inputs.pod.spec.enableServiceLinks) : {}),
      ...resolveEnv(inputs, container, ctx.podIP),
    },
    mounts,
    sandboxId: ctx.sandboxId,
    labels: ctx.labels,
  };
  const security = containerSecurity(inputs.pod, container, ctx.imageUser);
  if (Object.keys(security).length > 0) config.security = security;
  if (container.command) config.entrypoint = container.command;
  if (container.args) config.cmd = container.args;
  if (container.workingDir) config.workingDir = container.workingDir;
  const limits = container.resources?.limits ?? {};
  if (limits.cpu !== undefined) config.nanoCpus = limitQuantity(cpuMillis, limits.cpu, `${where}: limits.cpu`) * 1e6;
  if (limits.memory !== undefined) config.memoryBytes = limitQuantity(bytes, limits.memory, `${where}: limits.memory`);
  const gpuKey = limits[GPU_RESOURCE_NVIDIA] !== undefined ? GPU_RESOURCE_NVIDIA : GPU_RESOURCE_AMD;
  const gpus = limits[gpuKey];
  const wanted = gpus === undefined ? 0 : limitQuantity(cpuMillis, gpus, `${where}: limits["${gpuKey}"]`) / 1000;
  if (wanted > 0) {
    const assigned = (inputs.pod.metadata.annotations?.[ANNOTATION_ASSIGNED_GPUS] ?? '').split(',').map((s) => s.trim()).filter(Boolean);
    if (assigned.length < wanted) {
      throw new ContainerConfigError(`${where}: asks ${wanted} GPU(s) but annotation ${ANNOTATION_ASSIGNED_GPUS} names ${assigned.length}`);
    }
    config.gpuDeviceIds = assigned;
  }
  const runtime = runtimeFor(inputs.pod.metadata.annotations?.[ANNOTATION_RUNTIME_HANDLER], ctx.runtimeHandlers ?? []);
  if (runtime !== undefined) config.runtime = runtime;
  // The NVIDIA runtime hands a container the GPUs NVIDIA_VISIBLE_DEVICES names, and CUDA images set it to "all":
  // the scheduler's choice (none: "void", no GPU) is the only one, whatever the image or the pod says.
  if (runtime === NVIDIA_HANDLER) config.env.NVIDIA_VISIBLE_DEVICES = config.gpuDeviceIds?.join(',') ?? 'void';
  return config;
}

function isReadOnlyClaim(inputs: PodInputs, name: string): boolean {
  const v = inputs.pod.spec.volumes?.find((x) => x.name === name);
  return v?.persistentVolumeClaim?.readOnly === true || (v?.persistentVolumeClaim !== undefined && inputs.persistentVolumes?.[v.persistentVolumeClaim.claimName]?.spec.nfs?.readOnly === true);
}

function isObjectVolume(inputs: PodInputs, name: string): boolean {
  const v = inputs.pod.spec.volumes?.find((x) => x.name === name);
  return Boolean(v?.configMap || v?.secret);
}
