// The controller manager: level-triggered reconcile loops driven by watches of the objects, one work queue
// per controller. Controllers run on the Raft leader only: the server calls runControllers on gaining
// leadership and aborts the signal on losing it. They read, write and watch the state only through the Objects interface (ObjectService).
import { WorkQueue } from './work-queue.js';
import type { Controller, ControllerDeps } from './controller.js';
import { replicaSetController } from './replicaset.js';
import { deploymentController } from './deployment.js';
import { daemonSetController } from './daemonset.js';
import { statefulSetController } from './statefulset.js';
import { jobController } from './job.js';
import { cronJobController } from './cronjob.js';
import { garbageCollector } from './garbage-collector.js';
import { nodeLifecycleController } from './node-lifecycle.js';
import { horizontalPodAutoscaler } from './hpa.js';
import { namespaceController } from './namespace.js';
import { endpointsController } from './endpoints.js';
import { kubernetesServiceController } from './kubernetes-service.js';
import { addressPoolStatusController, loadBalancerController } from './load-balancer.js';
import { ingressController } from './ingress.js';
import { persistentVolumeController } from './persistentvolume.js';
import { rootCaCertPublisher, serviceAccountController } from './serviceaccount.js';

export * from './controller.js';

export interface ManagerOptions {
  /** Every key of every controller is queued again this often (clock ms). */
  resyncMs?: number;
  /** How often (real ms) the manager checks the clock for delayed keys and resyncs. */
  tickMs?: number;
  /** A key whose retries are exhausted, with the last error (the leader logs it). */
  onGiveUp: (controller: string, key: string, err: unknown) => void;
}

/** The controllers the leader runs, in start order. */
export function leaderControllers(deps: ControllerDeps): Controller[] {
  return [
    replicaSetController(deps),
    deploymentController(deps),
    daemonSetController(deps),
    statefulSetController(deps),
    jobController(deps),
    cronJobController(deps),
    garbageCollector(deps),
    nodeLifecycleController(deps),
    horizontalPodAutoscaler(deps),
    namespaceController(deps),
    endpointsController(deps),
    kubernetesServiceController(deps),
    loadBalancerController(deps),
    addressPoolStatusController(deps),
    ingressController(deps),
    persistentVolumeController(deps),
    serviceAccountController(deps),
    rootCaCertPublisher(deps),
  ];
}

/** Runs `controllers` until `signal` aborts; resolves once every worker has stopped. */
export function runControllers(signal: AbortSignal, deps: ControllerDeps, controllers: readonly Controller[], options: ManagerOptions): Promise<void> {
  return new ControllerManager(deps, controllers, options).run(signal);
}

interface Entry {
  controller: Controller;
  queue: WorkQueue;
}

export class ControllerManager {
  readonly #entries: Entry[];
  /** A manager runs once: its queues are shut down when it stops. */
  #started = false;
  #stopped = false;

  constructor(readonly deps: ControllerDeps, controllers: readonly Controller[], readonly options: ManagerOptions) {
    this.#entries = controllers.map((controller) => ({ controller, queue: new WorkQueue() }));
  }

  async run(signal: AbortSignal): Promise<void> {
    if (this.#started) throw new Error('a ControllerManager runs once; make another');
    this.#started = true;
    const stops: (() => void)[] = [];
    // One abort listener wakes every idle worker: a listener per worker would grow with the controllers.
    const shutDown = () => {
      this.#stopped = true;
      for (const e of this.#entries) e.queue.shutDown();
    };
    signal.addEventListener('abort', shutDown, { once: true });
    stops.push(() => signal.removeEventListener('abort', shutDown));
    try {
      const from = this.deps.objects.revision();
      for (const e of this.#entries) {
        for (const w of e.controller.watches) {
          stops.push(this.deps.objects.watch(w.resource, undefined, from, (event) => {
            for (const key of w.keys(event)) e.queue.add(key);
          }));
        }
      }
      this.#resync();
      let lastResync = this.deps.now();
      const resyncMs = this.options.resyncMs ?? 300_000;
      const timer = setInterval(() => {
        const now = this.deps.now();
        if (now - lastResync >= resyncMs) {
          lastResync = now;
          this.#resync();
        }
        for (const e of this.#entries) e.queue.promote(now);
      }, this.options.tickMs ?? 200);
      timer.unref();
      try {
        await Promise.all(this.#entries.map((e) => this.#work(e, signal)));
      } finally {
        clearInterval(timer);
      }
    } finally {
      for (const stop of stops) stop();
    }
  }

  /**
   * Resolves once every queue is idle with nothing due at the current clock: the state no longer changes
   * unless time moves or something outside writes. For tests that drive a fake clock; throws after `maxRounds`
   * event-loop turns so that a reconcile loop that never settles fails the test instead of hanging it. A stopped
   * manager (its signal aborted) is settled: nothing of it runs again.
   */
  async settle(maxRounds = 100_000): Promise<void> {
    let quietTurns = 0;
    for (let round = 0; round < maxRounds; round++) {
      if (this.#stopped) return;
      const now = this.deps.now();
      for (const e of this.#entries) e.queue.promote(now);
      if (this.#entries.every((e) => e.queue.idle)) {
        // Writes resolve on a later turn than their watch events; two quiet turns in a row mean settled.
        if (++quietTurns >= 2) return;
      } else {
        quietTurns = 0;
      }
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    throw new Error(`controllers did not settle within ${maxRounds} turns: ${this.#entries.filter((e) => !e.queue.idle).map((e) => e.controller.name).join(', ')} still busy`);
  }

  #resync(): void {
    for (const e of this.#entries) for (const key of e.controller.allKeys()) e.queue.add(key);
  }

  async #work(e: Entry, signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const key = e.queue.take();
      if (key === undefined) {
        await e.queue.wait();
        continue;
      }
      try {
        const result = await e.controller.reconcile(key);
        e.queue.forget(key);
        if (result?.requeueAfterMs !== undefined) e.queue.addAt(key, this.deps.now() + Math.max(0, result.requeueAfterMs));
      } catch (err) {
        if (!e.queue.retry(key, this.deps.now())) {
          this.options.onGiveUp(e.controller.name, key, err);
        }
      } finally {
        e.queue.done(key);
      }
    }
  }
}
