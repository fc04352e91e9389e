// A loaded Compose project as Kubernetes objects. The project is a namespace of its own; every object carries
// LABEL_COMPOSE_PROJECT (what `compose down` removes) and, where it belongs to a service, LABEL_COMPOSE_SERVICE.
// Each service is a Deployment (a StatefulSet when it mounts named volumes and runs one replica; a Job when its
// restart policy lets it end), a headless Service of its name (and of each `links` / network alias) so that it
// resolves through the cluster DNS as a compose service name does, and a NodePort Service (or hostPorts) for
// its published ports. docs/compose.md is the user's account of every rule here.
import { readFileSync } from 'node:fs';
import { isAbsolute, posix, resolve } from 'node:path';
import {
  ANNOTATION_GPU_IDS, dns1035LabelError, dns1123SubdomainError, GPU_RESOURCE_NVIDIA, LABEL_ARCH, LABEL_COMPOSE_PROJECT, LABEL_COMPOSE_SERVICE, LABEL_HOSTNAME, LABEL_NODE_ROLE_PREFIX,
  LABEL_OS, LOCAL_PATH_STORAGE_CLASS, parseGoDuration, parseGpuIds, parsePortRange, DEFAULT_NODE_PORT_RANGE,
} from '../../api-types/index.js';
import type { Container, ContainerPort, EnvVar, KubeObject, NodeSelectorRequirement, PodSpec, PortRange, Probe, Volume, VolumeMount } from '../../api-types/index.js';
import { ComposeError, dependsOnOf, listOrDict, parseEnvText } from './load.js';
import type { ComposeMap, ComposeProject, DependsOnCondition } from './load.js';
import { ignoredKeys, ignoredKeyWarning } from './keys.js';
import { LATEST, POD_SECURITY_LABEL_PREFIX, evaluatePod, forbiddenDetail } from '../../server/objects/pod-security.js';

export type WorkloadKind = 'Deployment' | 'StatefulSet' | 'Job';

export interface ServicePlan {
  name: string;
  kind: WorkloadKind;
  replicas: number;
  /** Whether its pods have readiness probes (a healthcheck): what service_healthy waits for. */
  healthcheck: boolean;
  dependsOn: Record<string, DependsOnCondition>;
  /** Its workload first, then its Services. */
  objects: KubeObject[];
}

export interface Conversion {
  project: string;
  namespace: string;
  /** The Namespace, then the ConfigMaps, Secrets and PersistentVolumeClaims the services share. */
  shared: KubeObject[];
  /** In dependency order: every service after the services it depends on. */
  services: ServicePlan[];
  warnings: string[];
}

export interface ConvertOptions {
  /** The cluster's NodePort range: published ports inside it become NodePorts, others hostPorts. */
  nodePortRange?: PortRange;
}

/** The kinds a conversion makes, in the order `compose down` removes them (workloads before what they mount). */
export const COMPOSE_KINDS = ['Deployment', 'StatefulSet', 'Job', 'Service', 'ConfigMap', 'Secret', 'PersistentVolumeClaim'] as const;

/** Every object of a conversion in the order `up` applies them. */
export function conversionObjects(c: Conversion): KubeObject[] {
  return [...c.shared, ...c.services.flatMap((s) => s.objects)];
}

/** The size asked for a named volume: compose volumes have none, and local-path volumes are not held to it. */
export const COMPOSE_VOLUME_SIZE = '1Gi';

interface Ctx {
  project: ComposeProject;
  namespace: string;
  warnings: string[];
  nodePorts: PortRange;
  /** Compose volume name -> claim name. */
  claims: Map<string, string>;
  secrets: Map<string, { name: string; key: string }>;
  configs: Map<string, { name: string; key: string }>;
  /** Services something waits for with service_completed_successfully: they run to completion. */
  completing: Set<string>;
}

export function convertProject(project: ComposeProject, opts: ConvertOptions = {}): Conversion {
  const namespace = project.name.replace(/_/g, '-');
  const nsError = dns1035LabelError(namespace) && dns1123SubdomainError(namespace);
  if (nsError || namespace.length > 63) throw new ComposeError(`project name "${project.name}" cannot name its namespace: ${nsError ?? 'must be no more than 63 characters'}; give another with -p`);
  const warnings = [...project.warnings];
  const services = (project.model.services ?? {}) as Record<string, ComposeMap>;
  for (const [name, def] of Object.entries(services)) {
    if (def.build !== undefined) {
      throw new ComposeError(`service "${name}" has a build section: Flotilla does not build images. Build it with \`docker build -t IMAGE ${typeof def.build === 'string' ? def.build : ((def.build as ComposeMap).context as string | undefined) ?? '.'}\`, `
        + 'load it onto the nodes with `flotilla image load IMAGE --all`, and give the service `image: IMAGE` instead of `build:`');
    }
  }
  warnings.push(...ignoredKeys(project.model).map(ignoredKeyWarning));
  const ctx: Ctx = {
    project, namespace, warnings, nodePorts: opts.nodePortRange ?? parsePortRange(DEFAULT_NODE_PORT_RANGE),
    claims: new Map(), secrets: new Map(), configs: new Map(), completing: new Set(),
  };
  for (const def of Object.values(services)) {
    for (const [dep, cond] of Object.entries(dependsOnOf(def))) if (cond === 'service_completed_successfully') ctx.completing.add(dep);
  }
  const networks = Object.keys((project.model.networks ?? {}) as ComposeMap);
  if (networks.length > 1) warnings.push(`key "networks" declares ${networks.length} networks (${networks.join(', ')}): they are not isolated from each other: ${'every network of a project is the cluster\'s one pod network'}`);
  const shared: KubeObject[] = [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace, labels: { [LABEL_COMPOSE_PROJECT]: project.name } } }];
  shared.push(...fileObjects(ctx, 'secrets'), ...fileObjects(ctx, 'configs'), ...claimObjects(ctx));
  const plans = order(services).map((name) => convertService(ctx, name, services[name]!));
  const byName = new Map(plans.map((p) => [p.name, p]));
  for (const p of plans) {
    for (const [dep, cond] of Object.entries(p.dependsOn)) {
      if (cond === 'service_healthy' && !byName.get(dep)!.healthcheck) throw new ComposeError(`service "${p.name}" depends on "${dep}" being healthy, but service "${dep}" has no healthcheck configured`);
    }
  }
  aliasServices(ctx, services, byName);
  allowWhatServicesAsk(shared[0]!, plans, warnings);
  return { project: project.name, namespace, shared, services: plans, warnings };
}

/**
 * Compose runs on Docker what the file asks (bind mounts, hostPorts, privileged, added capabilities), which the Pod
 * Security baseline level a namespace has by default refuses: the project's namespace is labelled to allow it
 * (enforce privileged), and the warning names each service and what it uses.
 */
function allowWhatServicesAsk(ns: KubeObject, plans: readonly ServicePlan[], warnings: string[]): void {
  const beyond: string[] = [];
  for (const p of plans) {
    const template = (p.objects[0] as { spec?: { template?: { metadata?: KubeObject['metadata']; spec?: PodSpec } } } | undefined)?.spec?.template;
    if (!template?.spec) continue;
    const violations = evaluatePod({ level: 'baseline', version: LATEST }, template.metadata ?? {}, template.spec);
    if (violations.length > 0) beyond.push(`service "${p.name}": ${forbiddenDetail(violations)}`);
  }
  if (beyond.length === 0) return;
  ns.metadata.labels = { ...ns.metadata.labels, [`${POD_SECURITY_LABEL_PREFIX}enforce`]: 'privileged' };
  warnings.push(`namespace "${ns.metadata.name}" is labelled ${POD_SECURITY_LABEL_PREFIX}enforce=privileged, as its services go beyond the Pod Security baseline level (${beyond.join('; ')})`);
}

function meta(ctx: Ctx, name: string, service?: string, annotations?: Record<string, string>): KubeObject['metadata'] {
  return {
    name, namespace: ctx.namespace,
    labels: { [LABEL_COMPOSE_PROJECT]: ctx.project.name, ...(service ? { [LABEL_COMPOSE_SERVICE]: service } : {}) },
    ...(annotations && Object.keys(annotations).length > 0 ? { annotations } : {}),
  };
}

/** A compose name as an object name (lower case, `_` as `-`); refused, naming it, when that is no DNS subdomain. */
function objectName(what: string, name: string): string {
  const n = name.toLowerCase().replace(/_/g, '-');
  const err = dns1123SubdomainError(n);
  if (err) throw new ComposeError(`${what} "${name}" cannot name a Kubernetes object: ${err}`);
  return n;
}

/** A pod volume's name (a DNS label): the prefix and the compose name, cut to 63 characters. */
function volumeName(prefix: string, name: string): string {
  return `${prefix}-${name.toLowerCase().replace(/[^a-z0-9-]/g, '-')}`.slice(0, 63).replace(/-+$/, '');
}

/** Services in dependency order (compose's order: dependencies first, else by name); a cycle is refused. */
function order(services: Record<string, ComposeMap>): string[] {
  const out: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string, path: string[]) => {
    if (state.get(name) === 'done') return;
    if (state.get(name) === 'visiting') throw new ComposeError(`dependency cycle detected: ${[...path, name].join(' -> ')}`);
    state.set(name, 'visiting');
    for (const dep of Object.keys(dependsOnOf(services[name]!)).sort()) visit(dep, [...path, name]);
    state.set(name, 'done');
    out.push(name);
  };
  for (const name of Object.keys(services).sort()) visit(name, []);
  return out;
}

// ---- secrets, configs and volumes ----------------------------------------------------------------------

function fileObjects(ctx: Ctx, kind: 'secrets' | 'configs'): KubeObject[] {
  const defs = (ctx.project.model[kind] ?? {}) as Record<string, ComposeMap>;
  const used = new Set(Object.values((ctx.project.model.services ?? {}) as Record<string, ComposeMap>)
    .flatMap((s) => ((s[kind] as unknown[] | undefined) ?? []).map((r) => (typeof r === 'string' ? r : String((r as ComposeMap).source)))));
  const out: KubeObject[] = [];
  const map = kind === 'secrets' ? ctx.secrets : ctx.configs;
  for (const [key, def] of Object.entries(defs)) {
    if (!used.has(key)) continue;
    const external = def.external;
    const givenName = (typeof external === 'object' && external ? (external as ComposeMap).name : undefined) ?? def.name;
    const name = objectName(`${kind.slice(0, -1)}`, typeof givenName === 'string' ? givenName : key);
    map.set(key, { name, key });
    if (external) continue;
    if (typeof def.file !== 'string') throw new ComposeError(`${kind}.${key}: needs file (or external: true)`);
    const path = resolve(ctx.project.dir, def.file);
    let content: Buffer;
    try { content = readFileSync(path); } catch (err) { throw new ComposeError(`${kind}.${key}: ${path}: ${err instanceof Error ? err.message : String(err)}`); }
    const annotations = listOrDict(def.labels) as Record<string, string>;
    out.push(kind === 'secrets'
      ? { apiVersion: 'v1', kind: 'Secret', metadata: meta(ctx, name, undefined, annotations), type: 'Opaque', data: { [key]: content.toString('base64') } } as KubeObject
      : { apiVersion: 'v1', kind: 'ConfigMap', metadata: meta(ctx, name, undefined, annotations), data: { [key]: content.toString('utf8') } } as KubeObject);
  }
  return out;
}

function claimObjects(ctx: Ctx): KubeObject[] {
  const out: KubeObject[] = [];
  for (const [key, raw] of Object.entries((ctx.project.model.volumes ?? {}) as Record<string, ComposeMap | null>)) {
    const def = raw ?? {};
    const external = def.external;
    const givenName = (typeof external === 'object' && external ? (external as ComposeMap).name : undefined) ?? def.name;
    const name = objectName('volume', typeof givenName === 'string' ? givenName : key);
    ctx.claims.set(key, name);
    if (external) continue;
    out.push({
      apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: meta(ctx, name, undefined, listOrDict(def.labels) as Record<string, string>),
      spec: { accessModes: ['ReadWriteOnce'], storageClassName: LOCAL_PATH_STORAGE_CLASS, resources: { requests: { storage: COMPOSE_VOLUME_SIZE } } },
    } as KubeObject);
  }
  return out;
}

// ---- one service ---------------------------------------------------------------------------------------

interface Warner { (path: string, why: string): void }

function convertService(ctx: Ctx, name: string, def: ComposeMap): ServicePlan {
  const nameError = dns1035LabelError(name);
  if (nameError) throw new ComposeError(`service "${name}": its name must resolve in the cluster DNS as a Service name, which it cannot: ${nameError}`);
  if (typeof def.image !== 'string' || def.image === '') throw new ComposeError(`service "${name}" has neither an image nor a build context specified: give it image:`);
  const warn: Warner = (path, why) => ctx.warnings.push(ignoredKeyWarning({ service: name, path: `services.${name}.${path}`, why }));
  const deploy = (def.deploy ?? {}) as ComposeMap;
  const volumes: Volume[] = [];
  const container: Container = { name, image: def.image };
  const pull = def.pull_policy as string | undefined;
  if (pull !== undefined) {
    const policies: Record<string, Container['imagePullPolicy']> = { always: 'Always', never: 'Never', missing: 'IfNotPresent', if_not_present: 'IfNotPresent' };
    if (policies[pull]) container.imagePullPolicy = policies[pull];
    else warn('pull_policy', `"${pull}" is not supported (always, never, missing)`);
  }
  if (def.entrypoint !== undefined && def.entrypoint !== null) container.command = commandOf(def.entrypoint, `service "${name}": entrypoint`);
  if (def.command !== undefined && def.command !== null) container.args = commandOf(def.command, `service "${name}": command`);
  if (typeof def.working_dir === 'string') container.workingDir = def.working_dir;
  const env = environmentOf(ctx, name, def);
  if (env.length > 0) container.env = env;
  if (def.tty === true) container.tty = true;
  if (def.stdin_open === true) container.stdin = true;
  const security = securityOf(def, warn);
  if (security) container.securityContext = security;
  const { resources, gpuIds } = resourcesOf(def, deploy, warn);
  if (resources) container.resources = resources;
  const { containerPorts, servicePorts, published } = portsOf(ctx, name, def, warn);
  if (containerPorts.length > 0) container.ports = containerPorts;
  const mounts = mountsOf(ctx, name, def, volumes, warn);
  if (mounts.length > 0) container.volumeMounts = mounts;
  const probes = probesOf(def.healthcheck as ComposeMap | undefined, name);
  if (probes) { container.readinessProbe = probes; container.livenessProbe = probes; }

  const spec: PodSpec = { containers: [container] };
  if (volumes.length > 0) spec.volumes = volumes;
  if (typeof def.hostname === 'string') spec.hostname = def.hostname;
  podNetworkOf(def, spec, warn);
  if (typeof def.stop_grace_period === 'string') spec.terminationGracePeriodSeconds = Math.ceil(durationMs(def.stop_grace_period, `service "${name}": stop_grace_period`) / 1000);
  const groups = ((def.group_add as unknown[] | undefined) ?? []).map(String);
  const numericGroups = groups.filter((g) => /^\d+$/.test(g)).map(Number);
  if (numericGroups.length < groups.length) warn('group_add', `groups by name (${groups.filter((g) => !/^\d+$/.test(g)).join(', ')}) are not supported: give numeric group ids`);
  if (numericGroups.length > 0) spec.securityContext = { supplementalGroups: numericGroups };
  const affinity = nodeAffinityOf(def, deploy, warn);
  if (affinity.length > 0) spec.affinity = { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: affinity }] } } };

  const restart = restartOf(ctx, name, def, deploy, warn);
  spec.restartPolicy = restart.policy;
  const mode = deploy.mode as string | undefined;
  if (mode !== undefined && mode !== 'replicated') warn('deploy.mode', `"${mode}" is not supported: the service is replicated`);
  const replicas = typeof deploy.replicas === 'number' ? deploy.replicas : typeof def.scale === 'number' ? def.scale : 1;
  const usesClaims = volumes.some((v) => v.persistentVolumeClaim);
  const kind: WorkloadKind = restart.policy !== 'Always' ? 'Job' : usesClaims && replicas === 1 ? 'StatefulSet' : 'Deployment';
  const selector = { [LABEL_COMPOSE_PROJECT]: ctx.project.name, [LABEL_COMPOSE_SERVICE]: name };
  const podAnnotations = listOrDict(def.labels) as Record<string, string>;
  if (gpuIds.length > 0) podAnnotations[ANNOTATION_GPU_IDS] = gpuIds.join(',');
  const template = { metadata: { labels: selector, ...(Object.keys(podAnnotations).length > 0 ? { annotations: podAnnotations } : {}) }, spec };
  const workloadMeta = meta(ctx, name, name, listOrDict(deploy.labels) as Record<string, string>);
  const workload: KubeObject = kind === 'Job'
    ? { apiVersion: 'batch/v1', kind, metadata: workloadMeta, spec: { completions: replicas, parallelism: replicas, backoffLimit: restart.backoffLimit, template } } as KubeObject
    : { apiVersion: 'apps/v1', kind, metadata: workloadMeta, spec: { replicas, selector: { matchLabels: selector }, ...(kind === 'StatefulSet' ? { serviceName: name } : {}), template } } as KubeObject;
  const objects: KubeObject[] = [workload, headlessService(ctx, name, name, servicePorts)];
  if (published.length > 0) {
    objects.push({
      apiVersion: 'v1', kind: 'Service', metadata: meta(ctx, `${name}-published`, name),
      spec: { type: 'NodePort', selector, ports: published },
    } as KubeObject);
  }
  return { name, kind, replicas, healthcheck: probes !== undefined, dependsOn: dependsOnOf(def), objects };
}

type ServicePort = { name?: string; port: number; targetPort?: number; nodePort?: number; protocol?: 'TCP' | 'UDP' };

/** The Service that makes `alias` resolve to the pods of `service` (compose's service names and aliases). */
function headlessService(ctx: Ctx, alias: string, service: string, ports: ServicePort[]): KubeObject {
  return {
    apiVersion: 'v1', kind: 'Service', metadata: meta(ctx, alias, service),
    spec: { clusterIP: 'None', selector: { [LABEL_COMPOSE_PROJECT]: ctx.project.name, [LABEL_COMPOSE_SERVICE]: service }, ...(ports.length > 0 ? { ports } : {}) },
  } as KubeObject;
}

/** `links: [SERVICE:ALIAS]` and `networks.NET.aliases`: a headless Service per alias, beside its service's own. */
function aliasServices(ctx: Ctx, services: Record<string, ComposeMap>, plans: Map<string, ServicePlan>): void {
  const taken = new Map<string, string>([...plans.keys()].map((n) => [n, n]));
  const add = (alias: string, target: string, from: string, path: string) => {
    const plan = plans.get(target);
    if (!plan) throw new ComposeError(`service "${from}": ${path}: no service "${target}" in the project`);
    if (taken.get(alias) === target) return;
    if (taken.has(alias)) throw new ComposeError(`service "${from}": ${path}: "${alias}" already names service "${taken.get(alias)}"`);
    const err = dns1035LabelError(alias);
    if (err) throw new ComposeError(`service "${from}": ${path}: alias "${alias}" cannot be a cluster DNS name: ${err}`);
    taken.set(alias, target);
    const own = plan.objects.find((o) => o.kind === 'Service' && o.metadata.name === target)!;
    plan.objects.push(headlessService(ctx, alias, target, ((own as unknown as { spec: { ports?: ServicePort[] } }).spec.ports ?? [])));
  };
  for (const [name, def] of Object.entries(services)) {
    for (const link of (def.links as string[] | undefined) ?? []) {
      const [target, alias] = link.split(':') as [string, string | undefined];
      if (alias) add(alias, target, name, `links "${link}"`);
      else if (!plans.has(target)) throw new ComposeError(`service "${name}": links "${link}": no service "${target}" in the project`);
    }
    const nets = def.networks;
    if (nets && typeof nets === 'object' && !Array.isArray(nets)) {
      for (const [net, cfg] of Object.entries(nets as Record<string, ComposeMap | null>)) {
        for (const alias of (cfg?.aliases as string[] | undefined) ?? []) add(alias, name, name, `networks.${net}.aliases`);
      }
    }
  }
}

/** A compose command: a list as it is, a string split as a POSIX shell splits words (quotes, backslashes). */
export function commandOf(value: unknown, what: string): string[] {
  if (Array.isArray(value)) return value.map(String);
  const text = String(value);
  const words: string[] = [];
  let word = '';
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === "'") {
      const end = text.indexOf("'", i + 1);
      if (end < 0) throw new ComposeError(`${what}: unterminated single quote in ${JSON.stringify(text)}`);
      word += text.slice(i + 1, end); inWord = true; i = end;
    } else if (c === '"') {
      let j = i + 1;
      for (; j < text.length && text[j] !== '"'; j++) {
        if (text[j] === '\\' && j + 1 < text.length && '"\\$`\n'.includes(text[j + 1]!)) j++;
        word += text[j];
      }
      if (j >= text.length) throw new ComposeError(`${what}: unterminated double quote in ${JSON.stringify(text)}`);
      inWord = true; i = j;
    } else if (c === '\\' && i + 1 < text.length) {
      word += text[++i]; inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = ''; inWord = false;
    } else { word += c; inWord = true; }
  }
  if (inWord) words.push(word);
  return words;
}

function durationMs(text: string, what: string): number {
  try {
    return parseGoDuration(text);
  } catch (err) {
    throw new ComposeError(`${what}: ${(err as Error).message}`);
  }
}

/** env_file entries first, `environment` over them; a bare NAME takes the project environment's value, or is left out. */
function environmentOf(ctx: Ctx, name: string, def: ComposeMap): EnvVar[] {
  const values: Record<string, string> = {};
  const files = def.env_file === undefined ? [] : Array.isArray(def.env_file) ? def.env_file.map(String) : [String(def.env_file)];
  for (const f of files) {
    const path = resolve(ctx.project.dir, f);
    let text: string;
    try { text = readFileSync(path, 'utf8'); } catch (err) { throw new ComposeError(`service "${name}": env_file ${path}: ${err instanceof Error ? err.message : String(err)}`); }
    Object.assign(values, parseEnvText(text, path, ctx.project.env));
  }
  for (const [k, v] of Object.entries(listOrDict(def.environment))) {
    if (v !== null) values[k] = v;
    else if (ctx.project.env[k] !== undefined) values[k] = ctx.project.env[k]!;
    else delete values[k];
  }
  return Object.entries(values).map(([k, v]) => ({ name: k, value: v }));
}

function securityOf(def: ComposeMap, warn: Warner): Container['securityContext'] {
  const s: NonNullable<Container['securityContext']> = {};
  if (def.privileged === true) s.privileged = true;
  if (def.read_only === true) s.readOnlyRootFilesystem = true;
  const add = (def.cap_add as string[] | undefined) ?? [];
  const drop = (def.cap_drop as string[] | undefined) ?? [];
  // Kubernetes names capabilities without Docker's CAP_ prefix.
  const bare = (c: string) => c.replace(/^CAP_/i, '').toUpperCase();
  if (add.length > 0 || drop.length > 0) s.capabilities = { ...(add.length > 0 ? { add: add.map(bare) } : {}), ...(drop.length > 0 ? { drop: drop.map(bare) } : {}) };
  if (typeof def.user === 'string') {
    const m = /^(\d+)(?::(\d+))?$/.exec(def.user);
    if (m) {
      s.runAsUser = Number(m[1]);
      if (m[2] !== undefined) s.runAsGroup = Number(m[2]);
    } else warn('user', `user "${def.user}" is by name: Kubernetes runs containers as numeric ids only (give uid[:gid]); the image's user is kept`);
  }
  return Object.keys(s).length > 0 ? s : undefined;
}

/** Compose byte sizes: a number of bytes, or digits with b, k/kb, m/mb, g/gb (powers of 1024), any case. */
export function composeBytes(value: unknown, what: string): string {
  const m = /^(\d+(?:\.\d+)?)\s*([bkmg]?)b?$/i.exec(String(value).trim());
  if (!m) throw new ComposeError(`${what}: "${String(value)}" is not a size such as 512m or 2g`);
  const unit = m[2]!.toLowerCase();
  const n = Number(m[1]);
  if (unit === '' || unit === 'b') return String(Math.ceil(n));
  if (!Number.isInteger(n)) return String(Math.ceil(n * 1024 ** ('kmg'.indexOf(unit) + 1)));
  return `${n}${{ k: 'Ki', m: 'Mi', g: 'Gi' }[unit as 'k' | 'm' | 'g']}`;
}

function composeCpus(value: unknown, what: string): string {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new ComposeError(`${what}: "${String(value)}" is not a number of CPUs such as 0.5`);
  return `${Math.round(n * 1000)}m`;
}

/** The container's resources, and the GPU UUIDs that `device_ids` pins (then every GPU of the service). */
function resourcesOf(def: ComposeMap, deploy: ComposeMap, warn: Warner): { resources: Container['resources']; gpuIds: string[] } {
  const res = (deploy.resources ?? {}) as ComposeMap;
  const limitsIn = (res.limits ?? {}) as ComposeMap;
  const reservationsIn = (res.reservations ?? {}) as ComposeMap;
  const limits: Record<string, string> = {};
  const requests: Record<string, string> = {};
  const cpus = limitsIn.cpus ?? def.cpus;
  const memory = limitsIn.memory ?? def.mem_limit;
  if (cpus !== undefined) limits.cpu = composeCpus(cpus, 'deploy.resources.limits.cpus');
  if (memory !== undefined) limits.memory = composeBytes(memory, 'deploy.resources.limits.memory');
  const reservedMemory = reservationsIn.memory ?? def.mem_reservation;
  if (reservationsIn.cpus !== undefined) requests.cpu = composeCpus(reservationsIn.cpus, 'deploy.resources.reservations.cpus');
  if (reservedMemory !== undefined) requests.memory = composeBytes(reservedMemory, 'deploy.resources.reservations.memory');
  let gpus = 0; const gpuIds: string[] = [];
  ((reservationsIn.devices as ComposeMap[] | undefined) ?? []).forEach((d, i) => {
    const at = `deploy.resources.reservations.devices[${i}]`;
    const caps = ((d.capabilities as string[] | undefined) ?? []);
    if (!caps.includes('gpu')) { warn(`${at}.capabilities`, `only the gpu capability is supported (got ${caps.join(', ') || 'none'})`); return; }
    if (d.driver !== undefined && d.driver !== 'nvidia') { warn(`${at}.driver`, `only nvidia GPUs are asked this way (got "${String(d.driver)}")`); return; }
    const ids = (d.device_ids as string[] | undefined) ?? [];
    if (ids.length > 0) {
      if (d.count !== undefined) throw new ComposeError(`${at}: count and device_ids are mutually exclusive`);
      gpus += ids.length;
      gpuIds.push(...ids.map(String));
      return;
    }
    const count = d.count;
    if (count === undefined || count === 'all' || count === -1) throw new ComposeError(`${at}: count ${count === undefined ? 'left out (all GPUs)' : `"${String(count)}"`} is not supported: give count: N, the number of GPUs the service needs`);
    const n = Number(count);
    if (!Number.isInteger(n) || n < 0) throw new ComposeError(`${at}.count: "${String(count)}" is not a number of GPUs`);
    gpus += n;
  });
  if (gpuIds.length > 0 && gpuIds.length !== gpus) {
    throw new ComposeError('deploy.resources.reservations.devices: device_ids pins every GPU of the service; it cannot be combined with a count in another entry');
  }
  try { if (gpuIds.length > 0) parseGpuIds(gpuIds.join(',')); } catch (e) {
    throw new ComposeError(`deploy.resources.reservations.devices: device_ids: ${(e as Error).message}`);
  }
  if (gpus > 0) {
    limits[GPU_RESOURCE_NVIDIA] = String(gpus);
    // Extended resources must ask as much as they limit (Kubernetes requires requests == limits for them).
    requests[GPU_RESOURCE_NVIDIA] = String(gpus);
  }
  if (Object.keys(limits).length === 0 && Object.keys(requests).length === 0) return { resources: undefined, gpuIds };
  return { resources: { ...(Object.keys(limits).length > 0 ? { limits } : {}), ...(Object.keys(requests).length > 0 ? { requests } : {}) }, gpuIds };
}

interface Ports { containerPorts: ContainerPort[]; servicePorts: ServicePort[]; published: ServicePort[] }

interface PortSpec { target: number; published?: number; hostIp?: string; protocol: 'TCP' | 'UDP'; hostMode: boolean }

/** The short syntax: [[HOST_IP:]PUBLISHED:]TARGET[/PROTOCOL], with ranges (a-b) on either side. */
function parsePorts(entry: unknown, what: string): PortSpec[] {
  if (typeof entry === 'object' && entry !== null) {
    const p = entry as ComposeMap;
    const protocol = String(p.protocol ?? 'tcp').toUpperCase();
    if (protocol !== 'TCP' && protocol !== 'UDP') throw new ComposeError(`${what}: protocol "${String(p.protocol)}" is not supported (tcp, udp)`);
    if (typeof p.target !== 'number') throw new ComposeError(`${what}: target is required`);
    return [{ target: p.target, ...(p.published !== undefined ? { published: Number(p.published) } : {}), ...(p.host_ip ? { hostIp: String(p.host_ip) } : {}), protocol, hostMode: p.mode === 'host' }];
  }
  const text = String(entry);
  const m = /^(?:(?:\[([^\]]+)\]|(\d+\.\d+\.\d+\.\d+)):)?(?:(\d+)(?:-(\d+))?:)?(\d+)(?:-(\d+))?(?:\/(tcp|udp))?$/i.exec(text);
  if (!m) throw new ComposeError(`${what}: "${text}" is not a port mapping such as 8080:80, 127.0.0.1:53:53/udp or 3000-3005`);
  const [, ip6, ip4, pubFrom, pubTo, tgtFrom, tgtTo, proto] = m;
  const targets = range(Number(tgtFrom), tgtTo ? Number(tgtTo) : Number(tgtFrom), what);
  const published = pubFrom ? range(Number(pubFrom), pubTo ? Number(pubTo) : Number(pubFrom), what) : undefined;
  if (published && published.length !== targets.length) throw new ComposeError(`${what}: "${text}": the published and target ranges differ in length`);
  return targets.map((t, i) => ({
    target: t, ...(published ? { published: published[i]! } : {}), ...(ip6 ?? ip4 ? { hostIp: (ip6 ?? ip4)! } : {}),
    protocol: (proto ?? 'tcp').toUpperCase() as 'TCP' | 'UDP', hostMode: false,
  }));
}

function range(from: number, to: number, what: string): number[] {
  if (from < 1 || to > 65535 || to < from) throw new ComposeError(`${what}: invalid port range ${from}-${to}`);
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

/**
 * `ports` and `expose`. Every target is a container port and a port of the service's own (headless) Service. A
 * published port inside the NodePort range is that NodePort (the same host port as compose, on every node); one
 * outside it, or `mode: host`, or with a host_ip, is a hostPort on the node the pod runs on (as compose's on its
 * one host); a port without a published one gets a NodePort the servers choose (compose: an ephemeral port).
 */
function portsOf(ctx: Ctx, name: string, def: ComposeMap, warn: Warner): Ports {
  const out: Ports = { containerPorts: [], servicePorts: [], published: [] };
  const seen = new Set<string>();
  const target = (port: number, protocol: 'TCP' | 'UDP') => {
    const key = `${port}/${protocol}`;
    if (seen.has(key)) return;
    seen.add(key);
    out.containerPorts.push({ containerPort: port, protocol });
    out.servicePorts.push({ name: `${protocol.toLowerCase()}-${port}`, port, targetPort: port, protocol });
  };
  ((def.ports as unknown[] | undefined) ?? []).forEach((entry, i) => {
    for (const p of parsePorts(entry, `service "${name}": ports[${i}]`)) {
      target(p.target, p.protocol);
      const inRange = p.published !== undefined && p.published >= ctx.nodePorts.min && p.published <= ctx.nodePorts.max;
      if (p.published !== undefined && (p.hostMode || p.hostIp !== undefined || !inRange)) {
        const cp = out.containerPorts.find((c) => c.containerPort === p.target && c.protocol === p.protocol)!;
        if (cp.hostPort !== undefined) { warn(`ports[${i}]`, `target ${p.target}/${p.protocol} is published twice: only host port ${cp.hostPort} is kept`); continue; }
        cp.hostPort = p.published;
        if (p.hostIp !== undefined && p.hostIp !== '0.0.0.0' && p.hostIp !== '::') cp.hostIP = p.hostIp;
        continue;
      }
      // The Service port is the published one (compose's host port), unique where targets repeat.
      const port = p.published ?? p.target;
      if (out.published.some((s) => s.port === port && s.protocol === p.protocol)) continue;
      out.published.push({
        name: `${p.protocol.toLowerCase()}-${port}`, port, targetPort: p.target, protocol: p.protocol, ...(p.published !== undefined ? { nodePort: p.published } : {}),
      });
    }
  });
  ((def.expose as unknown[] | undefined) ?? []).forEach((entry, i) => {
    const m = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp))?$/i.exec(String(entry));
    if (!m) throw new ComposeError(`service "${name}": expose[${i}]: "${String(entry)}" is not a port such as 80 or 53/udp`);
    for (const port of range(Number(m[1]), m[2] ? Number(m[2]) : Number(m[1]), `service "${name}": expose[${i}]`)) target(port, (m[3] ?? 'tcp').toUpperCase() as 'TCP' | 'UDP');
  });
  if (out.servicePorts.length === 1) delete out.servicePorts[0]!.name;
  if (out.published.length === 1) delete out.published[0]!.name;
  return out;
}

/** Named volumes are claims, bind mounts hostPath (warned: the path is on whichever node runs the pod), tmpfs in memory. */
function mountsOf(ctx: Ctx, name: string, def: ComposeMap, volumes: Volume[], warn: Warner): VolumeMount[] {
  const mounts: VolumeMount[] = [];
  const addVolume = (v: Volume) => { if (!volumes.some((x) => x.name === v.name)) volumes.push(v); };
  ((def.volumes as unknown[] | undefined) ?? []).forEach((entry, i) => {
    const at = `volumes[${i}]`;
    const m = volumeSpec(entry, `service "${name}": ${at}`);
    if (!m.target.startsWith('/')) throw new ComposeError(`service "${name}": ${at}: the target "${m.target}" must be an absolute path`);
    if (m.type === 'volume' && m.source) {
      const claim = ctx.claims.get(m.source);
      if (!claim) throw new ComposeError(`service "${name}" refers to undefined volume ${m.source}: invalid compose project`);
      const vol = volumeName('vol', m.source);
      addVolume({ name: vol, persistentVolumeClaim: { claimName: claim } });
      mounts.push({ name: vol, mountPath: m.target, ...(m.readOnly ? { readOnly: true } : {}) });
    } else if (m.type === 'volume' || m.type === 'tmpfs') {
      // An anonymous volume lives as long as its container in compose: the pod's emptyDir is the same.
      const vol = volumeName(m.type === 'tmpfs' ? 'tmpfs' : 'anon', String(i));
      addVolume({ name: vol, emptyDir: { ...(m.type === 'tmpfs' ? { medium: 'Memory' as const } : {}), ...(m.size ? { sizeLimit: m.size } : {}) } });
      mounts.push({ name: vol, mountPath: m.target, ...(m.readOnly ? { readOnly: true } : {}) });
    } else if (m.type === 'bind') {
      const path = isAbsolute(m.source!) ? m.source! : resolve(ctx.project.dir, m.source!);
      warn(at, `the bind mount of ${path} is a hostPath volume: the path on whichever node runs the pod, not on this machine (use a named volume, a config or a secret to carry data)`);
      const vol = volumeName('bind', String(i));
      addVolume({ name: vol, hostPath: { path, type: m.createHostPath ? 'DirectoryOrCreate' : '' } });
      mounts.push({ name: vol, mountPath: m.target, ...(m.readOnly ? { readOnly: true } : {}) });
    } else {
      warn(`${at}.type`, `volumes of type "${m.type}" are not supported (volume, bind, tmpfs)`);
    }
  });
  ((def.tmpfs === undefined ? [] : Array.isArray(def.tmpfs) ? def.tmpfs : [def.tmpfs]) as unknown[]).forEach((t, i) => {
    const [target] = String(t).split(':');
    const vol = volumeName('tmpfs', `t${i}`);
    addVolume({ name: vol, emptyDir: { medium: 'Memory' } });
    mounts.push({ name: vol, mountPath: target! });
  });
  for (const kind of ['secrets', 'configs'] as const) {
    ((def[kind] as unknown[] | undefined) ?? []).forEach((ref) => {
      const r = typeof ref === 'string' ? { source: ref } : ref as { source: string; target?: string; mode?: number };
      const found = (kind === 'secrets' ? ctx.secrets : ctx.configs).get(r.source);
      if (!found) throw new ComposeError(`service "${name}" refers to undefined ${kind.slice(0, -1)} ${r.source}: invalid compose project`);
      // Compose's defaults: secrets under /run/secrets, configs at /NAME; a relative target is under those.
      const base = kind === 'secrets' ? '/run/secrets' : '/';
      const target = r.target === undefined ? posix.join(base, r.source) : posix.isAbsolute(r.target) ? r.target : posix.join(base, r.target);
      // One file in the volume, mounted by subPath at the target; a volume per mode, as the mode is the file's.
      const vol = volumeName(kind === 'secrets' ? 'secret' : 'config', r.mode !== undefined ? `${r.source}-${r.mode.toString(8)}` : r.source);
      const items = [{ key: found.key, path: found.key, ...(r.mode !== undefined ? { mode: r.mode } : {}) }];
      addVolume(kind === 'secrets' ? { name: vol, secret: { secretName: found.name, items } } : { name: vol, configMap: { name: found.name, items } });
      mounts.push({ name: vol, mountPath: target, subPath: found.key, readOnly: true });
    });
  }
  return mounts;
}

interface VolumeSpec { type: string; source?: string; target: string; readOnly: boolean; createHostPath: boolean; size?: string }

/** The short syntax [SOURCE:]TARGET[:MODE] (a SOURCE with / or . is a bind mount) or the long one. */
function volumeSpec(entry: unknown, what: string): VolumeSpec {
  if (typeof entry === 'object' && entry !== null) {
    const v = entry as ComposeMap;
    const tmpfs = v.tmpfs as ComposeMap | undefined;
    const bind = v.bind as ComposeMap | undefined;
    return {
      type: String(v.type), ...(v.source !== undefined ? { source: String(v.source) } : {}), target: String(v.target ?? ''), readOnly: v.read_only === true,
      createHostPath: bind?.create_host_path !== false, ...(tmpfs?.size !== undefined ? { size: composeBytes(tmpfs.size, `${what}.tmpfs.size`) } : {}),
    };
  }
  const parts = String(entry).split(':');
  if (parts.length === 1) return { type: 'volume', target: parts[0]!, readOnly: false, createHostPath: true };
  if (parts.length > 3) throw new ComposeError(`${what}: "${String(entry)}" is not SOURCE:TARGET[:MODE]`);
  const [source, target, mode = 'rw'] = parts as [string, string, string?];
  const modes = mode.split(',');
  const bindLike = source.startsWith('/') || source.startsWith('.') || source.startsWith('~');
  return { type: bindLike ? 'bind' : 'volume', source, target, readOnly: modes.includes('ro'), createHostPath: true };
}

/** A healthcheck as one probe, used for readiness and liveness: compose's defaults (30s, 30s, 3 retries). */
function probesOf(hc: ComposeMap | undefined, name: string): Probe | undefined {
  if (!hc || hc.disable === true) return undefined;
  const test = hc.test;
  let command: string[];
  if (typeof test === 'string') command = ['/bin/sh', '-c', test];
  else if (Array.isArray(test) && test.length > 0) {
    const [kind, ...rest] = test.map(String);
    if (kind === 'NONE') return undefined;
    if (kind === 'CMD') command = rest;
    else if (kind === 'CMD-SHELL') command = ['/bin/sh', '-c', rest.join(' ')];
    else throw new ComposeError(`service "${name}": healthcheck.test must start with "CMD", "CMD-SHELL" or "NONE" (got "${kind}")`);
    if (command.length === 0) throw new ComposeError(`service "${name}": healthcheck.test has no command`);
  } else return undefined;
  const seconds = (key: string, dflt: number) => {
    const v = hc[key];
    return v === undefined ? dflt : Math.max(1, Math.ceil(durationMs(String(v), `service "${name}": healthcheck.${key}`) / 1000));
  };
  const startPeriod = hc.start_period === undefined ? 0 : Math.ceil(durationMs(String(hc.start_period), `service "${name}": healthcheck.start_period`) / 1000);
  return {
    exec: { command }, periodSeconds: seconds('interval', 30), timeoutSeconds: seconds('timeout', 30),
    failureThreshold: typeof hc.retries === 'number' && hc.retries > 0 ? hc.retries : 3, ...(startPeriod > 0 ? { initialDelaySeconds: startPeriod } : {}),
  };
}

function podNetworkOf(def: ComposeMap, spec: PodSpec, warn: Warner): void {
  const mode = def.network_mode as string | undefined;
  if (mode === 'host') { spec.hostNetwork = true; spec.dnsPolicy = 'ClusterFirstWithHostNet'; }
  else if (mode !== undefined && mode !== 'bridge' && mode !== 'default') warn('network_mode', `"${mode}" is not supported: the pod is on the pod network`);
  if (def.pid === 'host') spec.hostPID = true;
  else if (def.pid !== undefined) warn('pid', `"${String(def.pid)}" is not supported (only "host")`);
  if (def.ipc === 'host') spec.hostIPC = true;
  else if (def.ipc !== undefined && def.ipc !== 'private' && def.ipc !== 'shareable') warn('ipc', `"${String(def.ipc)}" is not supported (only "host")`);
  const list = (v: unknown) => (v === undefined ? [] : Array.isArray(v) ? v.map(String) : [String(v)]);
  const nameservers = list(def.dns);
  const searches = list(def.dns_search);
  const options = list(def.dns_opt).map((o) => { const i = o.indexOf(':'); return i < 0 ? { name: o } : { name: o.slice(0, i), value: o.slice(i + 1) }; });
  if (nameservers.length + searches.length + options.length > 0) {
    spec.dnsConfig = { ...(nameservers.length > 0 ? { nameservers } : {}), ...(searches.length > 0 ? { searches } : {}), ...(options.length > 0 ? { options } : {}) };
  }
}

/** Swarm's names for Docker's architectures, as Kubernetes' (GOARCH) values. */
const ARCHES: Record<string, string> = { x86_64: 'amd64', amd64: 'amd64', aarch64: 'arm64', arm64: 'arm64', armv7l: 'arm', armhf: 'arm', arm: 'arm', i386: '386', ppc64le: 'ppc64le', s390x: 's390x' };

/** deploy.placement.constraints and platform as required node affinity. */
function nodeAffinityOf(def: ComposeMap, deploy: ComposeMap, warn: Warner): NodeSelectorRequirement[] {
  const out: NodeSelectorRequirement[] = [];
  const placement = (deploy.placement ?? {}) as ComposeMap;
  ((placement.constraints as string[] | undefined) ?? []).forEach((c, i) => {
    const m = /^\s*([\w.\-/]+)\s*(==|!=)\s*(.+?)\s*$/.exec(c);
    const at = `deploy.placement.constraints[${i}]`;
    if (!m) { warn(at, `"${c}" is not a constraint such as node.labels.zone==shelf-1`); return; }
    const [, attr, op, value] = m as unknown as [string, string, string, string];
    const operator = op === '==' ? 'In' : 'NotIn';
    if (attr.startsWith('node.labels.')) out.push({ key: attr.slice('node.labels.'.length), operator, values: [value] });
    else if (attr === 'node.hostname') out.push({ key: LABEL_HOSTNAME, operator, values: [value] });
    else if (attr === 'node.platform.arch') out.push({ key: LABEL_ARCH, operator, values: [ARCHES[value] ?? value] });
    else if (attr === 'node.platform.os') out.push({ key: LABEL_OS, operator, values: [value] });
    else if (attr === 'node.role' && (value === 'manager' || value === 'worker')) {
      const manager = (value === 'manager') === (op === '==');
      out.push({ key: `${LABEL_NODE_ROLE_PREFIX}control-plane`, operator: manager ? 'Exists' : 'DoesNotExist' });
    } else warn(at, `"${c}": ${attr} is not supported (node.labels.KEY, node.hostname, node.platform.arch, node.platform.os, node.role)`);
  });
  if (typeof def.platform === 'string') {
    const [os, arch] = def.platform.split('/');
    if (os) out.push({ key: LABEL_OS, operator: 'In', values: [os] });
    if (arch) out.push({ key: LABEL_ARCH, operator: 'In', values: [ARCHES[arch] ?? arch] });
  }
  return out;
}

/**
 * `restart` (or deploy.restart_policy.condition): always / unless-stopped / any run as a Deployment or StatefulSet;
 * "no" / none and on-failure[:N] are a Job (restartPolicy Never / OnFailure, backoffLimit N), and so is a service
 * something waits for with service_completed_successfully. Without either key the service is long-running (Always).
 */
function restartOf(ctx: Ctx, name: string, def: ComposeMap, deploy: ComposeMap, warn: Warner): { policy: 'Always' | 'OnFailure' | 'Never'; backoffLimit?: number } {
  const rp = (deploy.restart_policy ?? {}) as ComposeMap;
  const condition = rp.condition as string | undefined;
  const restart = def.restart as string | undefined;
  const maxAttempts = typeof rp.max_attempts === 'number' ? rp.max_attempts : undefined;
  let policy: 'Always' | 'OnFailure' | 'Never' = 'Always';
  let backoffLimit: number | undefined;
  if (condition !== undefined) {
    if (condition === 'none') policy = 'Never';
    else if (condition === 'on-failure') policy = 'OnFailure';
    else if (condition !== 'any') warn('deploy.restart_policy.condition', `"${condition}" is not a condition (none, on-failure, any)`);
  } else if (restart !== undefined) {
    const m = /^on-failure(?::(\d+))?$/.exec(restart);
    if (restart === 'no') policy = 'Never';
    else if (m) { policy = 'OnFailure'; if (m[1] !== undefined) backoffLimit = Number(m[1]); }
    else if (restart !== 'always' && restart !== 'unless-stopped') throw new ComposeError(`service "${name}": restart "${restart}" is not a restart policy (no, always, on-failure[:N], unless-stopped)`);
  }
  if (maxAttempts !== undefined) backoffLimit = maxAttempts;
  if (policy === 'Always' && ctx.completing.has(name)) policy = 'OnFailure';
  if (policy === 'Never' && backoffLimit === undefined) backoffLimit = 0;
  return { policy, ...(backoffLimit !== undefined ? { backoffLimit } : {}) };
}
