import { createHash } from 'node:crypto';
import type { Objects } from '../objects/service.js';
import { StoreError } from '../store/types.js';
import type { StoredObject } from '../store/types.js';
import { resources } from './cluster-objects.js';

export type EventKind = 'Normal' | 'Warning';

/**
 * Writes core/v1 Events about objects. An event is named after its object and a hash of (object uid, type,
 * reason, message, component), so a repeat of the same event bumps `count` and `lastTimestamp` of the one
 * object instead of creating another, also across leader changes. Events are best effort: a failed write
 * is reported to `onError` and never fails the reconcile that recorded it.
 */
export class EventRecorder {
  constructor(
    readonly objects: Objects,
    readonly component: string,
    readonly now: () => number,
    readonly onError: (err: unknown) => void = () => {},
  ) {}

  async record(involved: StoredObject, type: EventKind, reason: string, message: string): Promise<void> {
    const namespace = involved.metadata.namespace || 'default';
    const digest = createHash('sha256').update(`${involved.metadata.uid ?? ''}\n${type}\n${reason}\n${message}\n${this.component}`).digest('hex').slice(0, 16);
    const name = `${involved.metadata.name}.${digest}`;
    const at = new Date(this.now()).toISOString();
    try {
      for (let attempt = 0; attempt < 3; attempt++) {
        const current = this.objects.get(resources.events, namespace, name);
        try {
          if (current) {
            await this.objects.replace(resources.events, namespace, name, {
              ...current, count: ((current.count as number | undefined) ?? 1) + 1, lastTimestamp: at,
            });
          } else {
            await this.objects.create(resources.events, namespace, {
              apiVersion: 'v1', kind: 'Event',
              metadata: { name, namespace },
              involvedObject: {
                apiVersion: involved.apiVersion, kind: involved.kind, name: involved.metadata.name,
                ...(involved.metadata.namespace ? { namespace: involved.metadata.namespace } : {}),
                ...(involved.metadata.uid ? { uid: involved.metadata.uid } : {}),
                ...(involved.metadata.resourceVersion ? { resourceVersion: involved.metadata.resourceVersion } : {}),
              },
              reason, message, type, count: 1, firstTimestamp: at, lastTimestamp: at,
              source: { component: this.component },
            });
          }
          return;
        } catch (err) {
          // A concurrent writer of the same event: read it again and bump the newer count.
          if (err instanceof StoreError && (err.failure.code === 409 || err.failure.code === 404)) continue;
          throw err;
        }
      }
    } catch (err) {
      this.onError(err);
    }
  }
}
