// Turns a Kubernetes container spec (plus the ConfigMaps and Secrets handed in) into the runtime's
// ContainerConfig: environment, volumes as host directories, CPU/memory limits, assigned GPUs.
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, normalize } from 'node:path';
import { ANNOTATION_ASSIGNED_GPUS, ANNOTATION_RUNTIME_HANDLER, GPU_RESOURCE_AMD, GPU_RESOURCE_NVIDIA } from '../api-types/index.js';
import { bytes, cpuMillis } from '../api-types/quantity.js';
import type { Container, Service, Volume } from '../api-types/index.js';
import { serviceEnv } from './network/service-env.js';
import type { PodInputs } from './pod-actions.js';
import type { ContainerConfig, ContainerRuntime, Mount } from './runtime/types.js';
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
  for (const v of inputs.pod.spec.volumes ?? []) paths.set(v.name, await prepareVolume(inputs, v, podDir, runtime));
  return paths;
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

export function buildContainerConfig(inputs: PodInputs, container: Container, ctx: ContainerContext): ContainerConfig {
  const where = `container "${container.name}"`;
  const mounts: Mount[] = (container.volumeMounts ?? []).map((m) => {
    const hostPath = ctx.volumePaths.get(m.name);
    if (hostPath === undefined) throw new ContainerConfigError(`${where}: volumeMount "${m.name}" names no volume of the pod`);
    const source = m.subPath ? join(hostPath, normalize(m.subPath)) : hostPath;
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
