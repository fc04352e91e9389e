// What Flotilla does with every key of the Compose Specification: one table, read by unsupportedKeys() to name
// each key a project uses and Flotilla ignores (never a silent drop), and checked by a test against every
// property path of the schema load.ts validates with. A path is dotted; `*` stands for a name the user chose
// (a service, a network, a volume...); list items share the path of their list.
import type { ComposeMap } from './load.js';

/**
 * `honoured`: convert.ts turns it into Kubernetes objects (values it cannot honour are warned about there, by
 * value). A string: ignored, and the warning says why. `refused`: the project is refused (`build`).
 */
export type KeySupport = 'honoured' | 'refused' | string;

const POD_NETWORK = 'every network of a project is the cluster\'s one pod network';

export const COMPOSE_KEYS: Readonly<Record<string, KeySupport>> = Object.freeze({
  name: 'honoured',
  version: 'the attribute is obsolete',
  services: 'honoured',
  'services.*.deploy': 'honoured',
  'services.*.deploy.mode': 'honoured',
  'services.*.deploy.endpoint_mode': 'Services are headless (DNS round robin) for every service',
  'services.*.deploy.replicas': 'honoured',
  'services.*.deploy.labels': 'honoured',
  'services.*.deploy.rollback_config': 'rollbacks are `flotilla rollout undo`',
  'services.*.deploy.update_config': 'updates are the Deployment\'s rolling update',
  'services.*.deploy.resources': 'honoured',
  'services.*.deploy.resources.limits': 'honoured',
  'services.*.deploy.resources.limits.cpus': 'honoured',
  'services.*.deploy.resources.limits.memory': 'honoured',
  'services.*.deploy.resources.reservations': 'honoured',
  'services.*.deploy.resources.reservations.cpus': 'honoured',
  'services.*.deploy.resources.reservations.memory': 'honoured',
  'services.*.deploy.resources.reservations.generic_resources': 'Swarm generic resources have no Kubernetes counterpart',
  'services.*.deploy.resources.reservations.devices': 'honoured',
  'services.*.deploy.resources.reservations.devices.capabilities': 'honoured',
  'services.*.deploy.resources.reservations.devices.count': 'honoured',
  'services.*.deploy.resources.reservations.devices.device_ids': 'honoured',
  'services.*.deploy.resources.reservations.devices.driver': 'honoured',
  'services.*.deploy.resources.reservations.devices.options': 'device driver options are not passed to Docker',
  'services.*.deploy.restart_policy': 'honoured',
  'services.*.deploy.restart_policy.condition': 'honoured',
  'services.*.deploy.restart_policy.delay': 'restarts back off as the kubelet\'s do',
  'services.*.deploy.restart_policy.max_attempts': 'honoured',
  'services.*.deploy.restart_policy.window': 'restarts back off as the kubelet\'s do',
  'services.*.deploy.placement': 'honoured',
  'services.*.deploy.placement.constraints': 'honoured',
  'services.*.deploy.placement.preferences': 'placement preferences are not translated (use pod anti-affinity)',
  'services.*.deploy.placement.max_replicas_per_node': 'not translated (use pod anti-affinity)',
  'services.*.build': 'refused',
  'services.*.blkio_config': 'block I/O limits are not passed to Docker',
  'services.*.cap_add': 'honoured',
  'services.*.cap_drop': 'honoured',
  'services.*.cgroup_parent': 'the agent decides the cgroup',
  'services.*.command': 'honoured',
  'services.*.configs': 'honoured',
  'services.*.configs.source': 'honoured',
  'services.*.configs.target': 'honoured',
  'services.*.configs.uid': 'files of ConfigMap volumes belong to root',
  'services.*.configs.gid': 'files of ConfigMap volumes belong to root',
  'services.*.configs.mode': 'honoured',
  'services.*.container_name': 'pods are named by their workload',
  'services.*.cpu_count': 'Windows only',
  'services.*.cpu_percent': 'Windows only',
  'services.*.cpu_shares': 'CPU shares follow the resource requests',
  'services.*.cpu_quota': 'use deploy.resources.limits.cpus',
  'services.*.cpu_period': 'use deploy.resources.limits.cpus',
  'services.*.cpu_rt_period': 'real-time scheduling is not passed to Docker',
  'services.*.cpu_rt_runtime': 'real-time scheduling is not passed to Docker',
  'services.*.cpus': 'honoured',
  'services.*.cpuset': 'CPU pinning is not passed to Docker',
  'services.*.credential_spec': 'Windows only',
  'services.*.depends_on': 'honoured',
  'services.*.depends_on.*.condition': 'honoured',
  'services.*.device_cgroup_rules': 'device cgroup rules are not passed to Docker',
  'services.*.devices': 'host devices are not passed to Docker (GPUs: deploy.resources.reservations.devices)',
  'services.*.dns': 'honoured',
  'services.*.dns_opt': 'honoured',
  'services.*.dns_search': 'honoured',
  'services.*.domainname': 'pods take the cluster domain',
  'services.*.entrypoint': 'honoured',
  'services.*.env_file': 'honoured',
  'services.*.environment': 'honoured',
  'services.*.expose': 'honoured',
  'services.*.extends': 'honoured',
  'services.*.extends.service': 'honoured',
  'services.*.extends.file': 'honoured',
  'services.*.external_links': 'containers outside the project are not in the cluster DNS',
  'services.*.extra_hosts': 'pods have no extra /etc/hosts entries',
  'services.*.group_add': 'honoured',
  'services.*.healthcheck': 'honoured',
  'services.*.healthcheck.disable': 'honoured',
  'services.*.healthcheck.interval': 'honoured',
  'services.*.healthcheck.retries': 'honoured',
  'services.*.healthcheck.test': 'honoured',
  'services.*.healthcheck.timeout': 'honoured',
  'services.*.healthcheck.start_period': 'honoured',
  'services.*.hostname': 'honoured',
  'services.*.image': 'honoured',
  'services.*.init': 'no init process is added to containers',
  'services.*.ipc': 'honoured',
  'services.*.isolation': 'Windows only',
  'services.*.labels': 'honoured',
  'services.*.links': 'honoured',
  'services.*.logging': 'the agent keeps Docker\'s default log driver, which `flotilla logs` reads',
  'services.*.mac_address': 'pods get their addresses from the pod network',
  'services.*.mem_limit': 'honoured',
  'services.*.mem_reservation': 'honoured',
  'services.*.mem_swappiness': 'swap settings are not passed to Docker',
  'services.*.memswap_limit': 'swap settings are not passed to Docker',
  'services.*.network_mode': 'honoured',
  'services.*.networks': 'honoured',
  'services.*.networks.*.aliases': 'honoured',
  'services.*.networks.*.ipv4_address': 'pods get their addresses from the pod network',
  'services.*.networks.*.ipv6_address': 'pods get their addresses from the pod network',
  'services.*.networks.*.link_local_ips': 'pods get their addresses from the pod network',
  'services.*.networks.*.priority': POD_NETWORK,
  'services.*.oom_kill_disable': 'the OOM killer settings are not passed to Docker',
  'services.*.oom_score_adj': 'the OOM killer settings are not passed to Docker',
  'services.*.pid': 'honoured',
  'services.*.pids_limit': 'PID limits are not passed to Docker',
  'services.*.platform': 'honoured',
  'services.*.ports': 'honoured',
  'services.*.ports.mode': 'honoured',
  'services.*.ports.host_ip': 'honoured',
  'services.*.ports.target': 'honoured',
  'services.*.ports.published': 'honoured',
  'services.*.ports.protocol': 'honoured',
  'services.*.privileged': 'honoured',
  'services.*.profiles': 'honoured',
  'services.*.pull_policy': 'honoured',
  'services.*.read_only': 'honoured',
  'services.*.restart': 'honoured',
  'services.*.runtime': 'the runtime is chosen by a RuntimeClass (runtimeClassName), which compose cannot name',
  'services.*.scale': 'honoured',
  'services.*.security_opt': 'security options are not passed to Docker',
  'services.*.shm_size': 'the shared memory size is Docker\'s default',
  'services.*.secrets': 'honoured',
  'services.*.secrets.source': 'honoured',
  'services.*.secrets.target': 'honoured',
  'services.*.secrets.uid': 'files of Secret volumes belong to root',
  'services.*.secrets.gid': 'files of Secret volumes belong to root',
  'services.*.secrets.mode': 'honoured',
  'services.*.sysctls': 'sysctls are not passed to Docker',
  'services.*.stdin_open': 'honoured',
  'services.*.stop_grace_period': 'honoured',
  'services.*.stop_signal': 'containers are stopped with the image\'s stop signal',
  'services.*.storage_opt': 'storage driver options are not passed to Docker',
  'services.*.tmpfs': 'honoured',
  'services.*.tty': 'honoured',
  'services.*.ulimits': 'ulimits are not passed to Docker',
  'services.*.user': 'honoured',
  'services.*.userns_mode': 'user namespaces are not passed to Docker',
  'services.*.volumes': 'honoured',
  'services.*.volumes.type': 'honoured',
  'services.*.volumes.source': 'honoured',
  'services.*.volumes.target': 'honoured',
  'services.*.volumes.read_only': 'honoured',
  'services.*.volumes.consistency': 'Docker Desktop only',
  'services.*.volumes.bind': 'honoured',
  'services.*.volumes.bind.propagation': 'mount propagation is not passed to Docker',
  'services.*.volumes.bind.create_host_path': 'honoured',
  'services.*.volumes.volume': 'honoured',
  'services.*.volumes.volume.nocopy': 'volumes start empty: the image\'s files at the target are not copied in',
  'services.*.volumes.tmpfs': 'honoured',
  'services.*.volumes.tmpfs.size': 'honoured',
  'services.*.volumes_from': 'pods share no volumes with other pods\' containers (use a named volume)',
  'services.*.working_dir': 'honoured',
  networks: 'honoured',
  'networks.*.name': POD_NETWORK,
  'networks.*.driver': POD_NETWORK,
  'networks.*.driver_opts': POD_NETWORK,
  'networks.*.ipam': POD_NETWORK,
  'networks.*.external': POD_NETWORK,
  'networks.*.internal': POD_NETWORK,
  'networks.*.enable_ipv6': POD_NETWORK,
  'networks.*.attachable': POD_NETWORK,
  'networks.*.labels': POD_NETWORK,
  volumes: 'honoured',
  'volumes.*.name': 'honoured',
  'volumes.*.driver': 'named volumes are PersistentVolumeClaims of the local-path StorageClass',
  'volumes.*.driver_opts': 'named volumes are PersistentVolumeClaims of the local-path StorageClass',
  'volumes.*.external': 'honoured',
  'volumes.*.external.name': 'honoured',
  'volumes.*.labels': 'honoured',
  secrets: 'honoured',
  'secrets.*.name': 'honoured',
  'secrets.*.file': 'honoured',
  'secrets.*.external': 'honoured',
  'secrets.*.external.name': 'honoured',
  'secrets.*.labels': 'honoured',
  'secrets.*.driver': 'secrets are Kubernetes Secrets, read from their file',
  'secrets.*.driver_opts': 'secrets are Kubernetes Secrets, read from their file',
  'secrets.*.template_driver': 'secrets are not templated',
  configs: 'honoured',
  'configs.*.name': 'honoured',
  'configs.*.file': 'honoured',
  'configs.*.external': 'honoured',
  'configs.*.external.name': 'honoured',
  'configs.*.labels': 'honoured',
  'configs.*.template_driver': 'configs are not templated',
});

/** Whether the table lists keys below `pattern` (then the walk goes down into its value). */
function hasChildren(pattern: string): boolean {
  const prefix = `${pattern}.`;
  return Object.keys(COMPOSE_KEYS).some((k) => k.startsWith(prefix));
}

export interface IgnoredKey {
  /** The service the key belongs to, when it is under services.NAME. */
  service?: string;
  /** The concrete path: services.web.logging. */
  path: string;
  why: string;
}

/**
 * Every key of `model` the table does not honour, in document order; `x-` extension keys are skipped, as
 * compose skips them. A key the table refuses is not listed here: convert.ts refuses it with its advice.
 */
export function ignoredKeys(model: ComposeMap): IgnoredKey[] {
  const out: IgnoredKey[] = [];
  const walk = (value: unknown, pattern: string, path: string, service: string | undefined) => {
    if (Array.isArray(value)) { for (const item of value) walk(item, pattern, path, service); return; }
    if (value === null || typeof value !== 'object') return;
    for (const [key, child] of Object.entries(value)) {
      if (key.startsWith('x-')) continue;
      const named = COMPOSE_KEYS[pattern ? `${pattern}.${key}` : key] === undefined;
      const childPattern = pattern ? `${pattern}.${named ? '*' : key}` : key;
      const childPath = path ? `${path}.${key}` : key;
      const support = COMPOSE_KEYS[childPattern];
      const childService = service ?? (pattern === 'services' ? key : undefined);
      if (support === undefined) {
        if (named && hasChildren(childPattern)) walk(child, childPattern, childPath, childService);
        continue;
      }
      if (support === 'refused') continue;
      if (support !== 'honoured') { out.push({ ...(childService ? { service: childService } : {}), path: childPath, why: support }); continue; }
      if (hasChildren(childPattern)) walk(child, childPattern, childPath, childService);
    }
  };
  walk(model, '', '', undefined);
  return out;
}

/** The warning for a key, or a key's value, that is not honoured. */
export function ignoredKeyWarning(k: IgnoredKey): string {
  return `${k.service ? `service "${k.service}": ` : ''}key "${k.path}" is not supported and was ignored: ${k.why}`;
}

/**
 * Every property path of a JSON schema (the Compose Specification's), with the same conventions as the table:
 * `$ref`s followed, `oneOf`/`anyOf`/`allOf` branches and list items walked, pattern properties as `*`
 * (`^x-` extensions left out), and no walk below a key the table ignores or refuses (its whole value is).
 */
export function schemaKeyPaths(schema: ComposeMap): string[] {
  const definitions = (schema.definitions ?? {}) as Record<string, ComposeMap>;
  const out = new Set<string>();
  const deref = (n: ComposeMap | undefined): ComposeMap | undefined => {
    let node = n;
    for (let i = 0; node && typeof node.$ref === 'string' && i < 10; i++) node = definitions[node.$ref.split('/').pop()!];
    return node;
  };
  const walk = (raw: ComposeMap | undefined, path: string) => {
    const n = deref(raw);
    if (!n) return;
    for (const key of ['oneOf', 'anyOf', 'allOf'] as const) for (const b of (n[key] as ComposeMap[] | undefined) ?? []) walk(b, path);
    if (n.items) for (const it of ([] as ComposeMap[]).concat(n.items as ComposeMap | ComposeMap[])) walk(it, path);
    const visit = (p: string, v: ComposeMap) => {
      out.add(p);
      const support = COMPOSE_KEYS[p];
      if (support === undefined || support === 'honoured') walk(v, p);
    };
    for (const [k, v] of Object.entries((n.properties ?? {}) as Record<string, ComposeMap>)) visit(path ? `${path}.${k}` : k, v);
    for (const [k, v] of Object.entries((n.patternProperties ?? {}) as Record<string, ComposeMap>)) {
      if (k === '^x-') continue;
      walk(v, path ? `${path}.*` : '*');
    }
  };
  walk(schema, '');
  return [...out];
}
