// A cluster for the pod network on the multi-host lab, shared by test/lab/pod-network.netns.test.ts and
// bench/network.ts: a server on h1, and on any host a real `flotilla agent` (its own dockerd, the pod network on);
// the servers allocate each Node its podCIDR.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLab, type Lab, type LabProcess } from './lab.js';
import { apiRequest, type ApiAnswer } from './lab-api.js';
import { StopWaiting, eventually } from '../support/eventually.js';
import { apiPath, resourceForKind } from '../../api-types/resources.js';

const SERVER = new URL('../join/lab-server.js', import.meta.url).pathname;
const CLI = new URL('./flotilla-cli.js', import.meta.url).pathname;
const PORT = 7400;
export const BOUND_MS = 90_000;

export interface PodView {
  metadata: { name: string; labels?: Record<string, string> };
  spec: { nodeName?: string };
  status?: { phase?: string; podIP?: string; podIPs?: { ip: string }[] };
}

export class PodNetworkLab {
  readonly agents = new Map<string, LabProcess>();
  /** The lab host each started agent's node runs on, by node name. */
  private readonly hostOfNode = new Map<string, number>();
  /** The server process on h1 (lab-server.js). */
  server: LabProcess | undefined;
  private admin = '';
  private joinToken = '';

  private constructor(readonly lab: Lab, private readonly dir: string) {}

  /** A lab of `hosts` hosts, each with its own dockerd, and a server on h1. */
  static async start(options: { hosts: number; prefix: string; subnet: string }): Promise<PodNetworkLab> {
    const dir = mkdtempSync(join(tmpdir(), `${options.prefix}-`));
    let lab: Lab | undefined;
    try {
      lab = await createLab({ ...options, docker: true });
      const cluster = new PodNetworkLab(lab, dir);
      const server = lab.spawn(1, process.execPath, [SERVER, '--data', join(dir, 'server'), '--listen', `${lab.host(1).address}:${PORT}`, '--cluster-init', '--token', 'pod-network-lab-secret-0123456789']);
      cluster.server = server;
      await server.waitFor(/^ready /m, BOUND_MS);
      cluster.admin = readFileSync(join(dir, 'server', 'admin-token'), 'utf8').trim();
      const created = await cluster.api('POST', '/apis/flotilla.io/v1/jointokens', {});
      if (created.code !== 201) throw new Error(`join token: ${created.code} ${JSON.stringify(created.json)}`);
      cluster.joinToken = created.json.token as string;
      return cluster;
    } catch (err) {
      await lab?.destroy();
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }

  /** The cluster CA the server made (its data dir's pki/ca.crt): agents and API calls pin it. */
  get caFile(): string {
    return join(this.dir, 'server', 'pki', 'ca.crt');
  }

  get url(): string {
    return `https://${this.lab.host(1).address}:${PORT}`;
  }

  api(method: string, path: string, body?: unknown): Promise<ApiAnswer> {
    return apiRequest(this.lab, 1, method, `${this.url}${path}`, { token: this.admin, caFile: this.caFile }, body);
  }

  /** `flotilla agent` on `host` as node `name`, against its host's dockerd; resolves once the Node is registered. */
  async startAgent(host: number, name: string): Promise<LabProcess> {
    const h = this.lab.host(host);
    const agent = this.lab.spawn(host, process.execPath, ['--enable-source-maps', CLI, 'agent', '--server', this.url, '--token', this.joinToken, '--ca', this.caFile, '--name', name,
      '--data', join(this.dir, `agent-${name}`), '--advertise-address', h.address], { env: { ...process.env, DOCKER_HOST: h.dockerHost, FLOTILLA_LOG_LEVEL: 'debug' } });
    this.agents.set(name, agent);
    this.hostOfNode.set(name, host);
    await eventually(`node ${name} registered`, async () => {
      if (agent.exitCode !== null) throw new StopWaiting(`the agent exited (${agent.exitCode}): ${agent.output().slice(-1500)}`);
      return (await this.api('GET', `/api/v1/nodes/${name}`)).code === 200 ? true : undefined;
    }, { limitMs: BOUND_MS, everyMs: 200 });
    return agent;
  }

  /**
   * `flotilla agent --simulate COUNT --simulate-gpus GPUS` on `host`: hollow nodes (FakeRuntime, node-agent/hollow.ts)
   * named PREFIX-0..PREFIX-(COUNT-1); resolves once they are all registered.
   */
  async startHollowAgents(host: number, prefix: string, count: number, gpus: number): Promise<LabProcess> {
    const agent = this.lab.spawn(host, process.execPath, ['--enable-source-maps', CLI, 'agent', '--server', this.url, '--token', this.joinToken, '--ca', this.caFile, '--name', prefix,
      '--data', join(this.dir, `hollow-${prefix}`), '--simulate', String(count), '--simulate-gpus', String(gpus)]);
    this.agents.set(prefix, agent);
    await eventually(`hollow nodes ${prefix}-0..${count - 1} registered`, async () => {
      if (agent.exitCode !== null) throw new StopWaiting(`the hollow agent exited (${agent.exitCode}): ${agent.output().slice(-1500)}`);
      for (let i = 0; i < count; i++) if ((await this.api('GET', `/api/v1/nodes/${prefix}-${i}`)).code !== 200) return undefined;
      return true;
    }, { limitMs: BOUND_MS, everyMs: 200 });
    return agent;
  }

  /** The podCIDR the servers allocated to the Node (spec.podCIDR), once it has one. */
  podCidr(name: string): Promise<string> {
    return eventually(`the podCIDR of ${name}`, async () => {
      const node = await this.api('GET', `/api/v1/nodes/${name}`);
      const cidr = (node.json.spec as { podCIDR?: string } | undefined)?.podCIDR;
      return node.code === 200 && cidr ? cidr : undefined;
    }, { limitMs: BOUND_MS, everyMs: 200 });
  }

  /** Creates a pod bound to `node` and waits until it runs; returns it with its status. */
  async runPod(name: string, node: string, command: string[]): Promise<PodView> {
    const pod = {
      apiVersion: 'v1', kind: 'Pod', metadata: { name },
      spec: { nodeName: node, terminationGracePeriodSeconds: 0, containers: [{ name: 'c', image: 'flotilla/testbox:latest', command }] },
    };
    const created = await this.api('POST', '/api/v1/namespaces/default/pods', pod);
    if (created.code !== 201) throw new Error(`create pod ${name}: ${created.code} ${JSON.stringify(created.json)}`);
    let last: unknown;
    return eventually(`pod ${name} running with a pod IP`, async () => {
      const r = await this.api('GET', `/api/v1/namespaces/default/pods/${name}`);
      last = r.json.status;
      const view = r.json as unknown as PodView;
      return r.code === 200 && view.status?.phase === 'Running' && view.status.podIP ? view : undefined;
    }, { limitMs: BOUND_MS, everyMs: 200, detail: () => JSON.stringify(last) });
  }

  /**
   * Creates `obj` (a manifest with apiVersion, kind and metadata.name; namespaced kinds in metadata.namespace,
   * default "default") and returns the object the server stored; throws unless the server answers 201.
   */
  async create(obj: { apiVersion: string; kind: string; metadata: { name: string; namespace?: string }; [field: string]: unknown }): Promise<Record<string, unknown>> {
    const r = resourceForKind(obj.apiVersion, obj.kind);
    if (!r) throw new Error(`create: no served resource for ${obj.apiVersion} ${obj.kind}`);
    const created = await this.api('POST', apiPath(r, r.namespaced ? obj.metadata.namespace ?? 'default' : undefined), obj);
    if (created.code !== 201) throw new Error(`create ${obj.kind} ${obj.metadata.name}: ${created.code} ${JSON.stringify(created.json)}`);
    return created.json;
  }

  /** The pods of `namespace` matching the label selector `selector` (e.g. "app=web"), sorted by name. */
  async podsOf(selector: string, namespace = 'default'): Promise<PodView[]> {
    const r = await this.api('GET', `/api/v1/namespaces/${namespace}/pods?labelSelector=${encodeURIComponent(selector)}`);
    if (r.code !== 200) throw new Error(`list pods ${selector}: ${r.code} ${JSON.stringify(r.json)}`);
    return (r.json.items as PodView[]).sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  }

  /**
   * Waits until the EndpointSlices of Service `name` list exactly `count` ready endpoint addresses and returns
   * them sorted.
   */
  waitEndpoints(namespace: string, name: string, count: number): Promise<string[]> {
    let last: string[] = [];
    return eventually(`${count} ready endpoints of service ${namespace}/${name}`, async () => {
      last = await this.endpointAddresses(namespace, name);
      return last.length === count ? last : undefined;
    }, { limitMs: BOUND_MS, everyMs: 200, detail: () => JSON.stringify(last) });
  }

  /** The ready endpoint addresses the EndpointSlices of Service `name` list now, sorted. */
  async endpointAddresses(namespace: string, name: string): Promise<string[]> {
    const r = await this.api('GET', `/apis/discovery.k8s.io/v1/namespaces/${namespace}/endpointslices?labelSelector=${encodeURIComponent(`kubernetes.io/service-name=${name}`)}`);
    if (r.code !== 200) throw new Error(`list endpointslices of ${name}: ${r.code} ${JSON.stringify(r.json)}`);
    const slices = r.json.items as { endpoints?: { addresses: string[]; conditions?: { ready?: boolean } }[] }[];
    return slices.flatMap((s) => s.endpoints ?? []).filter((e) => e.conditions?.ready !== false).flatMap((e) => e.addresses).sort();
  }

  /** The lab host the agent of node `name` runs on (startAgent's `host`). */
  hostOf(name: string): number {
    const host = this.hostOfNode.get(name);
    if (host === undefined) throw new Error(`no agent started as node ${name}`);
    return host;
  }

  /** Runs a command in the container of pod `name` on `host` (docker exec against that host's engine). */
  async execInPod(host: number, name: string, command: string[], timeoutMs = 30_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const ps = await this.lab.docker(host, ['ps', '-q', '--filter', `label=io.flotilla.pod=${name}`, '--filter', 'label=io.flotilla.container=c']);
    const id = ps.stdout.trim().split('\n')[0];
    if (!id) throw new Error(`no container of pod ${name} on h${host}: ${ps.stderr}`);
    return this.lab.docker(host, ['exec', id, ...command], { timeoutMs });
  }

  /** `flotilla ARGS...` (the CLI of this build) run on `host` against the server, as the admin; waits for it to end. */
  cli(host: number, args: readonly string[], timeoutMs = 30_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return this.lab.exec(host, process.execPath, [CLI, ...args], {
      timeoutMs, env: { ...process.env, FLOTILLA_SERVER: this.url, FLOTILLA_TOKEN: this.admin, FLOTILLA_CA: this.caFile },
    });
  }

  /** The kernel routes the pod network made on `host` (ip route ... proto 152), as "DST via GATEWAY" lines. */
  async routes(host: number): Promise<string[]> {
    const r = await this.lab.exec(host, 'ip', ['route', 'show', 'proto', '152']);
    return r.stdout.split('\n').map((l) => l.trim().replace(/ dev \S+/, '').replace(/ proto 152/, '')).filter(Boolean).sort();
  }

  async destroy(): Promise<void> {
    try {
      await this.lab.destroy();
    } finally {
      rmSync(this.dir, { recursive: true, force: true });
    }
  }

  /**
   * Node `name`'s status lists `image`, as the kubelet reports images (status.images), so that other agents fetch it
   * from there. The agent writes its whole status on its own period; where it reports no images (an agent that does
   * not yet), they are put back: call this while waiting on what depends on it.
   */
  async advertiseImage(name: string, image: string, sizeBytes: number): Promise<void> {
    const node = await this.api('GET', `/api/v1/nodes/${name}`);
    const status = (node.json.status ?? {}) as { images?: { names?: string[] }[] };
    if (status.images?.some((i) => i.names?.includes(image))) return;
    const images = [...status.images ?? [], { names: [image], sizeBytes }];
    const { resourceVersion: _, ...metadata } = node.json.metadata as Record<string, unknown>;
    await this.api('PUT', `/api/v1/nodes/${name}/status`, { ...node.json, metadata, status: { ...status, images } });
  }

  /** The data directory of the agent started as node `name` (startAgent). */
  agentDataDir(name: string): string {
    this.hostOf(name);
    return join(this.dir, `agent-${name}`);
  }

  /** The admin's bearer token, for programs that call the API themselves from inside the lab (bench/network.ts's prober in a pod). */
  get adminToken(): string {
    return this.admin;
  }
}
