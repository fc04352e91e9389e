// NodeRestriction admission (after Kubernetes' plugin/pkg/admission/noderestriction): what node N's agent may
// put into the objects the Node authorizer (server/api/middleware/node-authorizer.ts) let it write. It runs in
// ObjectService's write path on the object as stored and as about to be committed (the write is conditional on
// that stored version), so no concurrent writer can slip a change between the check and the commit.
import { ANNOTATION_EVICTION_AT, ANNOTATION_LOAD_BALANCER_NODE, FINALIZER_LOCAL_PATH, LABEL_NODE_RESTRICTION_PREFIX, canonicalJson, isKind, resourceOfKind } from '../../api-types/index.js';
import { localPathNode } from './node-graph.js';
import type { ResourceInfo } from '../../api-types/index.js';
import { StoreError } from '../store/types.js';
import type { StoredObject } from '../store/types.js';
import type { Objects } from './service.js';

/** Node annotations the controllers keep: the node lifecycle controller's eviction deadline. */
const CONTROLLER_ANNOTATIONS = [ANNOTATION_EVICTION_AT];

const pods = resourceOfKind('Pod');
const services = resourceOfKind('Service');

function isRestrictedLabel(key: string): boolean {
  const prefix = key.includes('/') ? `${key.slice(0, key.indexOf('/'))}/` : '';
  return prefix === LABEL_NODE_RESTRICTION_PREFIX || prefix.endsWith(`.${LABEL_NODE_RESTRICTION_PREFIX}`);
}

function forbidden(r: ResourceInfo, name: string, reason: string): StoreError {
  return new StoreError({
    code: 403, reason: 'Forbidden', message: `${r.group ? `${r.plural}.${r.group}` : r.plural} "${name}" is forbidden: ${reason}`,
    details: { name, group: r.group, kind: r.plural },
  });
}

/** Refuses (403 Forbidden) node `node` deleting `stored`: a node deletes only the pods bound to it. */
export function admitNodeDelete(node: string, r: ResourceInfo, stored: StoredObject): void {
  if (!(isKind(stored, 'Pod') && stored.spec.nodeName === node)) {
    throw forbidden(r, stored.metadata.name, `node "${node}" can only delete pods with spec.nodeName set to itself`);
  }
}

/**
 * Refuses (403 Forbidden) a write by node `node` of `incoming` over `stored` (undefined for a create) that
 * NodeRestriction forbids; `status` is a status-subresource write, which changes nothing but status.
 */
export function admitNodeWrite(node: string, r: ResourceInfo, stored: StoredObject | undefined, incoming: StoredObject, status: boolean, objects: Pick<Objects, 'get'>): void {
  const name = incoming.metadata.name;
  const forbid = (reason: string): never => { throw forbidden(r, name, reason); };
  if (r.group === '' && r.plural === 'nodes') {
    if (name !== node) forbid(`node "${node}" cannot modify node "${name}"`);
    if (status) return;
    const labels = changedKeys(stored?.metadata.labels, incoming.metadata.labels).filter(isRestrictedLabel);
    if (labels.length > 0) forbid(`node "${node}" is not allowed to ${stored ? 'modify' : 'set'} labels: ${labels.join(', ')}`);
    const annotations = changedKeys(stored?.metadata.annotations, incoming.metadata.annotations).filter((k) => CONTROLLER_ANNOTATIONS.includes(k));
    if (annotations.length > 0) forbid(`node "${node}" is not allowed to modify annotations: ${annotations.join(', ')}`);
    const spec = (o: StoredObject | undefined): Record<string, unknown> => (o && isKind(o, 'Node') ? { ...o.spec } : {});
    // The spec is the admin's (unschedulable, taints) and the server's (podCIDR): a registering node may bring
    // taints and ask to start cordoned, as a kubelet does, but takes no pod CIDR of its own choosing.
    const owned = stored ? changedKeys(spec(stored), spec(incoming)) : Object.keys(spec(incoming)).filter((k) => k === 'podCIDR' || k === 'podCIDRs');
    if (owned.includes('taints')) forbid(`node "${node}" is not allowed to modify taints`);
    if (owned.length > 0) forbid(`node "${node}" is not allowed to ${stored ? 'modify' : 'set'} ${owned.map((k) => `spec.${k}`).join(', ')}`);
    return;
  }
  if (r.group === '' && r.plural === 'events') {
    for (const event of stored ? [stored, incoming] : [incoming]) {
      const about = isKind(event, 'Event') ? event.involvedObject : undefined;
      const mine = about?.kind === 'Node' ? about.name === node
        : about?.kind === 'Pod' && about.name !== undefined && objects.get(pods, about.namespace ?? event.metadata.namespace, about.name)?.spec.nodeName === node;
      // The announcer of a LoadBalancer address reports on its Service (AddressInUse).
      const announcing = about?.kind === 'Service' && about.name !== undefined
        && objects.get(services, about.namespace ?? event.metadata.namespace, about.name)?.metadata.annotations?.[ANNOTATION_LOAD_BALANCER_NODE] === node;
      if (!mine && !announcing) forbid(`node "${node}" can only write events about itself and the pods bound to it`);
    }
    return;
  }
  if (r.group === '' && r.plural === 'persistentvolumes') {
    // A node removes the cleanup finalizer of its own local-path volume once the directory is gone, and nothing else.
    const finalizers = stored?.metadata.finalizers?.filter((f) => f !== FINALIZER_LOCAL_PATH);
    const asLeft = stored && { ...stored, metadata: { ...stored.metadata, finalizers, resourceVersion: incoming.metadata.resourceVersion } };
    if (!stored || !isKind(stored, 'PersistentVolume') || localPathNode(stored) !== node || canonicalJson(asLeft) !== canonicalJson(incoming)) {
      forbid(`node "${node}" may only remove finalizer ${FINALIZER_LOCAL_PATH} from the local-path volumes on itself`);
    }
    return;
  }
  if (r.group === '' && r.plural === 'pods' && stored && isKind(stored, 'Pod') && stored.spec.nodeName !== node) {
    forbid(`node "${node}" can only update pod status for pods with spec.nodeName set to itself`);
  }
}

/** The keys whose values differ between two maps (set, changed or removed), by canonical JSON of the value. */
function changedKeys(before: Record<string, unknown> | undefined, after: Record<string, unknown> | undefined): string[] {
  const keys = new Set([...Object.keys(before ?? {}), ...Object.keys(after ?? {})]);
  const json = (v: unknown) => (v === undefined ? undefined : canonicalJson(v));
  return [...keys].filter((k) => json(before?.[k]) !== json(after?.[k])).sort();
}
