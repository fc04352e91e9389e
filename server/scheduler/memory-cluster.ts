// In-memory SchedulerCluster: the reference implementation of the loop's cluster interface, used by tests
// and benchmarks. resourceVersion is a global counter, as in the store.
import type { ClusterEvent, SchedulerCluster } from './loop.js';
import { ANNOTATION_ASSIGNED_GPUS } from '../../api-types/index.js';
import type { Node, Pod } from '../../api-types/index.js';
import { podKey } from './pod-request.js';

export class MemoryCluster implements SchedulerCluster {
  readonly nodes = new Map<string, Node>();
  readonly pods = new Map<string, Pod>();
  /** Last unschedulable message per pod key. */
  readonly unschedulable = new Map<string, string>();
  #revision = 0;
  #watchers = new Set<(e: ClusterEvent) => void>();
  /** Runs before each bind decision; tests use it to change a pod underneath the scheduler. */
  beforeBind: ((pod: Pod) => void) | null = null;

  #emit(e: ClusterEvent): void { for (const w of this.#watchers) w(e); }
  #stamp<T extends Node | Pod>(o: T): T {
    return { ...o, metadata: { ...o.metadata, resourceVersion: String(++this.#revision) } };
  }

  putNode(node: Node): void {
    const n = this.#stamp(node);
    this.nodes.set(n.metadata.name ?? '', n);
    this.#emit({ kind: 'node', type: 'upsert', node: n });
  }
  deleteNode(name: string): void {
    if (this.nodes.delete(name)) this.#emit({ kind: 'node', type: 'delete', name });
  }
  putPod(pod: Pod): Pod {
    const p = this.#stamp(pod);
    this.pods.set(podKey(p), p);
    this.#emit({ kind: 'pod', type: 'upsert', pod: p });
    return p;
  }
  deletePod(key: string): void {
    const p = this.pods.get(key);
    if (!p) return;
    this.pods.delete(key);
    this.#emit({ kind: 'pod', type: 'delete', pod: p });
  }

  async snapshot(): Promise<{ nodes: Node[]; pods: Pod[] }> {
    return { nodes: [...this.nodes.values()], pods: [...this.pods.values()] };
  }

  watch(onEvent: (event: ClusterEvent) => void, signal: AbortSignal): void {
    if (signal.aborted) return;
    this.#watchers.add(onEvent);
    signal.addEventListener('abort', () => this.#watchers.delete(onEvent), { once: true });
  }

  async bind(pod: Pod, nodeName: string, gpuUuids: string[], resourceVersion: string | undefined): Promise<'bound' | 'conflict'> {
    const key = podKey(pod);
    this.beforeBind?.(pod);
    const current = this.pods.get(key);
    if (!current || current.metadata.resourceVersion !== resourceVersion || current.spec.nodeName) return 'conflict';
    const annotations = { ...current.metadata.annotations };
    if (gpuUuids.length) annotations[ANNOTATION_ASSIGNED_GPUS] = gpuUuids.join(',');
    this.unschedulable.delete(key);
    this.putPod({ ...current, metadata: { ...current.metadata, annotations }, spec: { ...current.spec, nodeName } });
    return 'bound';
  }

  async reportUnschedulable(pod: Pod, message: string): Promise<void> {
    this.unschedulable.set(podKey(pod), message);
  }
}
