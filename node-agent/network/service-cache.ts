// The agent's one view of the cluster's Services and EndpointSlices, fed by list + watch through NodeApi, read by
// the service proxy (node-agent/network/service-proxy.ts) and the DNS server. Each kind is listed, then watched
// from the list's resourceVersion; a watch that ends is resumed from the last version seen, one that is too old
// (410) or fails lists again (with back-off while no server answers). What was seen last stays served while the
// servers are unreachable: Services keep working on a node cut off from the control plane.
//
// Contract (ServiceView): services() and slicesOf() answer from memory; onChange listeners run
// once per burst of changes (coalesceMs after the first change of the burst), never for an event that changed
// nothing, and once after each (re)list that changed something, and are told which Services changed (their
// object, or their EndpointSlices: a slice event names the Service it left and the one it joined), each as it is
// when they run, so that a reader can look at only those.
import type { Logger } from 'pino';
import { LABEL_SERVICE_NAME, type EndpointSlice, type Service } from '../../api-types/index.js';
import { delay } from '../agent.js';
import { ApiClientError, type NodeApi, type ObjectEvent, type ObjectList } from '../api-client.js';

/** Services by key (`namespace/name`), each as it is now (undefined: gone). */
export type ChangedServices = ReadonlyMap<string, Service | undefined>;

export interface ServiceView {
  services(): Service[];
  slicesOf(namespace: string, serviceName: string): EndpointSlice[];
  /**
   * Calls fn after changes (coalesced) with the Services that changed, where the view knows them (the service cache
   * always does; without them any may have); returns the function that removes it.
   */
  onChange(fn: (changed?: ChangedServices) => void): () => void;
}

export interface ServiceCacheOptions {
  log: Logger;
  /** How long a burst of changes may gather before listeners run (default 20 ms). */
  coalesceMs?: number;
  /** First wait before listing again after a failure (default 1 s), doubled per failure up to retryMaxSeconds (default 30 s). */
  retrySeconds?: number;
  retryMaxSeconds?: number;
}

export interface Named {
  metadata: { name?: string; namespace?: string; resourceVersion?: string; labels?: Record<string, string> };
}

export class ServiceCache implements ServiceView {
  readonly #services = new Map<string, Service>();
  /** Slices by `namespace/service-name` (their kubernetes.io/service-name label), then by slice name. */
  readonly #slices = new Map<string, Map<string, EndpointSlice>>();
  readonly #listeners = new Set<(changed: ChangedServices) => void>();
  /** Keys (`namespace/name`) of the Services changed since listeners last ran. */
  readonly #dirty = new Set<string>();
  #pending: NodeJS.Timeout | undefined;
  #resolveSynced!: () => void;
  /** Resolves once both kinds have been listed once. */
  readonly synced = new Promise<void>((resolve) => { this.#resolveSynced = resolve; });

  constructor(private readonly api: NodeApi, private readonly options: ServiceCacheOptions) {}

  services(): Service[] {
    return [...this.#services.values()];
  }

  slicesOf(namespace: string, serviceName: string): EndpointSlice[] {
    return [...(this.#slices.get(`${namespace}/${serviceName}`)?.values() ?? [])];
  }

  onChange(fn: (changed: ChangedServices) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** Lists and watches both kinds until the signal aborts. */
  async run(signal: AbortSignal): Promise<void> {
    let listed = 0;
    const listedOnce = (): void => { if (++listed === 2) this.#resolveSynced(); };
    try {
      await Promise.all([
        listAndWatch<Service>('Service', () => this.api.listServices(), (rv, on, s) => this.api.watchServices(rv, on, s),
          (items) => this.#replaceServices(items), (e) => this.#serviceEvent(e), listedOnce, () => this.#changed(), this.options, signal),
        listAndWatch<EndpointSlice>('EndpointSlice', () => this.api.listEndpointSlices(), (rv, on, s) => this.api.watchEndpointSlices(rv, on, s),
          (items) => this.#replaceSlices(items), (e) => this.#sliceEvent(e), listedOnce, () => this.#changed(), this.options, signal),
      ]);
    } finally {
      clearTimeout(this.#pending);
    }
  }

  #replaceServices(items: Service[]): boolean {
    const next = new Map(items.map((s) => [serviceKey(s), s]));
    let changed = false;
    for (const [k, s] of next) {
      if (this.#services.get(k)?.metadata.resourceVersion === s.metadata.resourceVersion) continue;
      changed = true;
      this.#dirty.add(k);
    }
    for (const k of this.#services.keys()) {
      if (next.has(k)) continue;
      changed = true;
      this.#dirty.add(k);
    }
    this.#services.clear();
    for (const [k, s] of next) this.#services.set(k, s);
    return changed;
  }

  #serviceEvent(e: ObjectEvent<Service>): boolean {
    const key = serviceKey(e.object);
    if (e.type === 'DELETED' ? !this.#services.has(key) : this.#services.get(key)?.metadata.resourceVersion === e.object.metadata.resourceVersion) return false;
    if (e.type === 'DELETED') this.#services.delete(key);
    else this.#services.set(key, e.object);
    this.#dirty.add(key);
    return true;
  }

  #replaceSlices(items: EndpointSlice[]): boolean {
    const before = new Map<string, { version: string | undefined; owner: string }>();
    for (const [owner, bySlice] of this.#slices) for (const s of bySlice.values()) before.set(sliceKey(s), { version: s.metadata.resourceVersion, owner });
    this.#slices.clear();
    let changed = items.length !== before.size;
    for (const s of items) {
      const owner = this.#putSlice(s);
      const was = before.get(sliceKey(s));
      before.delete(sliceKey(s));
      if (was && was.version === s.metadata.resourceVersion && was.owner === owner) continue;
      changed = true;
      if (owner) this.#dirty.add(owner);
      if (was) this.#dirty.add(was.owner);
    }
    for (const gone of before.values()) this.#dirty.add(gone.owner);
    return changed;
  }

  #sliceEvent(e: ObjectEvent<EndpointSlice>): boolean {
    // The service a slice belongs to may change with its label: drop it wherever it was, then put it back.
    let had: EndpointSlice | undefined;
    let hadOwner: string | undefined;
    for (const [owner, bySlice] of this.#slices) {
      const s = bySlice.get(sliceKey(e.object));
      if (!s) continue;
      had = s;
      hadOwner = owner;
      bySlice.delete(sliceKey(e.object));
      if (bySlice.size === 0) this.#slices.delete(owner);
    }
    const owner = e.type === 'DELETED' ? undefined : this.#putSlice(e.object);
    if (e.type === 'DELETED' ? had === undefined : had?.metadata.resourceVersion === e.object.metadata.resourceVersion && hadOwner === owner) return false;
    if (hadOwner) this.#dirty.add(hadOwner);
    if (owner) this.#dirty.add(owner);
    return true;
  }

  /** Files a slice under its Service; the Service's key, undefined for a slice of none (no service-name label). */
  #putSlice(s: EndpointSlice): string | undefined {
    const service = s.metadata.labels?.[LABEL_SERVICE_NAME];
    if (!service) return undefined;
    const owner = `${s.metadata.namespace ?? 'default'}/${service}`;
    let bySlice = this.#slices.get(owner);
    if (!bySlice) this.#slices.set(owner, bySlice = new Map());
    bySlice.set(sliceKey(s), s);
    return owner;
  }

  #changed(): void {
    if (this.#pending) return;
    this.#pending = setTimeout(() => {
      this.#pending = undefined;
      const changed: ChangedServices = new Map([...this.#dirty].map((k) => [k, this.#services.get(k)]));
      this.#dirty.clear();
      for (const fn of this.#listeners) fn(changed);
    }, this.options.coalesceMs ?? 20);
  }
}

/**
 * Lists kind `kind`, then watches it from the list's resourceVersion until the signal aborts: a stream the server
 * ends is resumed from the last version seen, a 410 lists again at once, another failure lists again after a
 * back-off (what was seen stays served meanwhile). `replace` and `apply` say whether they changed anything;
 * `changed` runs when they did; `listedOnce` after the first list.
 */
export async function listAndWatch<T extends Named>(
  kind: string,
  list: () => Promise<ObjectList<T>>,
  watch: (rv: string, onEvent: (e: ObjectEvent<T>) => void, signal: AbortSignal) => Promise<void>,
  replace: (items: T[]) => boolean,
  apply: (e: ObjectEvent<T>) => boolean,
  listedOnce: () => void,
  changed: () => void,
  options: Pick<ServiceCacheOptions, 'log' | 'retrySeconds' | 'retryMaxSeconds'>,
  signal: AbortSignal,
): Promise<void> {
  const { log, retrySeconds = 1, retryMaxSeconds = 30 } = options;
  let failures = 0;
  let first = true;
  while (!signal.aborted) {
    try {
      const listing = await list();
      if (replace(listing.items)) changed();
      if (first) listedOnce();
      first = false;
      failures = 0;
      let rv = listing.metadata.resourceVersion ?? '0';
      // A stream the server ends cleanly resumes from the last version seen; a 410 or an error lists again.
      while (!signal.aborted) {
        await watch(rv, (e) => {
          if (e.object.metadata?.resourceVersion) rv = e.object.metadata.resourceVersion;
          if (e.type !== 'BOOKMARK' && apply(e)) changed();
        }, signal);
      }
    } catch (err) {
      if (signal.aborted) return;
      const expired = err instanceof ApiClientError && err.code === 410;
      const waitMs = expired ? 0 : Math.min(retryMaxSeconds * 1000, retrySeconds * 1000 * 2 ** Math.min(failures++, 16));
      if (!expired) log.warn({ kind, err: (err as Error).message, retryMs: waitMs }, 'watching failed; serving what was seen last; listing again');
      await delay(waitMs, signal);
    }
  }
}

function serviceKey(s: Named): string {
  return `${s.metadata.namespace ?? 'default'}/${s.metadata.name ?? ''}`;
}

/** Slices are keyed by namespace and name: the slice name is unique in its namespace, whatever service it serves. */
const sliceKey = serviceKey;
