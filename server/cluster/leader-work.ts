import type { Logger } from 'pino';
import { ANNOTATION_ASSIGNED_GPUS, isKind, resourceOfKind } from '../../api-types/index.js';
import type { Objects } from '../objects/service.js';
import { StoreError } from '../store/types.js';
import type { WatchEvent } from '../store/types.js';
import { runSchedulingLoop } from '../scheduler/loop.js';
import { RegistryPlatforms } from '../scheduler/registry-platforms.js';
import type { ClusterEvent, SchedulerCluster } from '../scheduler/loop.js';
import { Scheduler } from '../scheduler/scheduler.js';
import { volumeVerdict } from '../scheduler/volume-binding.js';
import type { VolumeVerdict } from '../scheduler/volume-binding.js';
import type { SchedulerOptions } from '../scheduler/scheduler.js';
import type { Node, Pod } from '../../api-types/index.js';
import { leaderControllers, runControllers } from '../controllers/manager.js';
import type { ControllerSettings } from '../controllers/controller.js';
import { EventRecorder } from '../controllers/events.js';
import { PodsByOwner } from '../controllers/cluster-objects.js';
import type { PodMetricsSource } from '../controllers/pod-metrics.js';

const pods = resourceOfKind('Pod');
const nodes = resourceOfKind('Node');
const claims = resourceOfKind('PersistentVolumeClaim');
const volumes = resourceOfKind('PersistentVolume');
const storageClasses = resourceOfKind('StorageClass');

/**
 * The scheduler's view of the cluster, on the replicated store: node and pod changes from watches in,
 * bindings (pods/binding semantics, resourceVersion as precondition) and PodScheduled=False reports out.
 */
export class StoreSchedulerCluster implements SchedulerCluster {
  readonly #events: EventRecorder;

  constructor(readonly objects: Objects, now: () => number = Date.now) {
    this.#events = new EventRecorder(objects, 'flotilla-scheduler', now);
  }

  async snapshot(): Promise<{ nodes: Node[]; pods: Pod[] }> {
    return {
      nodes: this.objects.list(nodes).items,
      pods: this.objects.list(pods).items,
    };
  }

  watch(onEvent: (event: ClusterEvent) => void, signal: AbortSignal): void {
    if (signal.aborted) return;
    const from = this.objects.revision();
    const stopNodes = this.objects.watch(nodes, undefined, from, (e: WatchEvent) => {
      if (e.type === 'DELETED') onEvent({ kind: 'node', type: 'delete', name: e.object.metadata.name });
      else if (isKind(e.object, 'Node')) onEvent({ kind: 'node', type: 'upsert', node: e.object });
    });
    const stopPods = this.objects.watch(pods, undefined, from, (e: WatchEvent) => {
      const pod = e.object;
      if (!isKind(pod, 'Pod')) return;
      onEvent(e.type === 'DELETED' ? { kind: 'pod', type: 'delete', pod } : { kind: 'pod', type: 'upsert', pod });
    });
    signal.addEventListener('abort', () => { stopNodes(); stopPods(); }, { once: true });
  }

  async bind(pod: Pod, nodeName: string, gpuUuids: string[], resourceVersion: string | undefined): Promise<'bound' | 'conflict'> {
    const ns = pod.metadata.namespace ?? 'default';
    try {
      const bound = await this.objects.bindPod(ns, pod.metadata.name ?? '', nodeName, {
        ...(gpuUuids.length > 0 ? { annotations: { [ANNOTATION_ASSIGNED_GPUS]: gpuUuids.join(',') } } : {}),
        ...(resourceVersion ? { resourceVersion } : {}),
      });
      void this.#events.record(bound, 'Normal', 'Scheduled', `Successfully assigned ${ns}/${pod.metadata.name} to ${nodeName}${gpuUuids.length ? ` with GPUs ${gpuUuids.join(', ')}` : ''}`);
      return 'bound';
    } catch (err) {
      if (err instanceof StoreError && (err.failure.code === 409 || err.failure.code === 404)) return 'conflict';
      throw err;
    }
  }

  volumes(pod: Pod): VolumeVerdict {
    return volumeVerdict(pod, {
      claim: (namespace, name) => this.objects.get(claims, namespace, name),
      volume: (name) => this.objects.get(volumes, undefined, name),
      storageClass: (name) => this.objects.get(storageClasses, undefined, name),
      volumes: () => this.objects.list(volumes).items,
    });
  }

  async reportUnschedulable(pod: Pod, message: string): Promise<void> {
    const ns = pod.metadata.namespace ?? 'default';
    const current = this.objects.get(pods, ns, pod.metadata.name ?? '');
    if (!current || current.spec.nodeName) return;
    const conditions = current.status?.conditions ?? [];
    const existing = conditions.find((c) => c.type === 'PodScheduled');
    if (!(existing?.status === 'False' && existing.message === message)) {
      const condition = { type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message, lastTransitionTime: new Date().toISOString() };
      const status = { phase: 'Pending', ...(current.status ?? {}), conditions: [...conditions.filter((c) => c.type !== 'PodScheduled'), condition] };
      try {
        await this.objects.replaceStatus(pods, ns, pod.metadata.name ?? '', status, current.metadata.resourceVersion);
      } catch (err) {
        if (!(err instanceof StoreError && err.failure.code === 409)) throw err;
      }
    }
    await this.#events.record(current, 'Warning', 'FailedScheduling', message);
  }
}

export interface LeaderWorkDeps {
  objects: Objects;
  heartbeats: { lastRenewMs(node: string): number | undefined };
  lbSpeakers?: { lastRenewMs(node: string): number | undefined };
  metrics: PodMetricsSource;
  controllerSettings?: Partial<ControllerSettings>;
  /** The cluster CA certificate (PEM), published in every namespace as kube-root-ca.crt. */
  clusterCaPem?: string;
  scheduler?: SchedulerOptions;
  log: Logger;
}

/**
 * What only the leader runs: the scheduling loop and the controllers, until `signal` aborts (leadership lost).
 * Everything they derive from the store (the scheduler's node table, the pod index) is built for this term.
 */
export async function runLeaderWork(signal: AbortSignal, deps: LeaderWorkDeps): Promise<void> {
  const report = (what: string) => (err: unknown) => deps.log.error({ err }, what);
  const pods = new PodsByOwner(deps.objects);
  const controllerDeps = { objects: deps.objects, heartbeats: deps.heartbeats, ...(deps.lbSpeakers ? { lbSpeakers: deps.lbSpeakers } : {}), pods, now: Date.now, settings: deps.controllerSettings ?? {}, metrics: deps.metrics, ...(deps.clusterCaPem ? { clusterCaPem: deps.clusterCaPem } : {}) };
  try {
    await Promise.all([
      runSchedulingLoop(new StoreSchedulerCluster(deps.objects), signal, {
        scheduler: new Scheduler({ ...deps.scheduler, onFallback: report('scheduler wasm core failed to load; using the TypeScript reference') }),
        registry: new RegistryPlatforms(),
        onError: report('scheduler'),
      }).catch(report('scheduler')),
      runControllers(signal, controllerDeps, leaderControllers(controllerDeps), { onGiveUp: (controller, key, err) => deps.log.warn({ err, controller, key }, 'giving up on a key until the next resync') }).catch(report('controllers')),
    ]);
  } finally {
    pods.close();
  }
}
