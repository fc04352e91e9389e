// Node identity on the server side: a Node keeps the key its agent registered with.
//
// An agent sends the fingerprint of its Ed25519 public key as the annotation flotilla.io/node-key
// (node-agent/identity.ts). A machine that is re-imaged makes a new key, so with the same hostname it shows up
// as a different node: it must not silently take over the old Node's record and pods. The old record is removed
// deliberately, with `flotilla node replace NAME`, and the new machine then registers.
import { ANNOTATION_NODE_KEY } from '../../api-types/index.js';
import { StoreError } from '../store/types.js';


interface MaybeNode { metadata?: { name?: unknown; annotations?: Record<string, unknown> | null } }

function nodeKeyOf(node: unknown): string | undefined {
  const value = (node as MaybeNode | null | undefined)?.metadata?.annotations?.[ANNOTATION_NODE_KEY];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/**
 * Admission for a Node create or replace (PUT, PATCH result, status update): throws a 409 StoreError when
 * `stored` carries a node key and `incoming` carries another one or none. A stored Node without a key (one made
 * before keys, or by hand) takes the key of the first agent that registers it.
 *
 * Call it with the Node as stored (undefined for a create) and the object about to be written.
 */
export function admitNodeKey(stored: unknown, incoming: unknown): void {
  const was = nodeKeyOf(stored);
  if (was === undefined) return;
  const now = nodeKeyOf(incoming);
  if (now === was) return;
  const name = String((stored as MaybeNode).metadata?.name ?? (incoming as MaybeNode | null)?.metadata?.name ?? '');
  throw new StoreError({
    code: 409, reason: 'Conflict',
    message: now === undefined
      ? `node "${name}": the annotation ${ANNOTATION_NODE_KEY} cannot be removed; it ties the Node to the machine that registered it`
      : `node "${name}" is registered by another machine (node key ${was}, this one ${now}). A re-imaged machine with the same hostname is a new node: run "flotilla node replace ${name}" to remove the old record and its pods, then restart this agent`,
  });
}
