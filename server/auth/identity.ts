// Who makes a request: the identities the authenticators produce and the policy decides on.
import { NODE_GROUP, SERVER_GROUP, nodeNameOfCommonName } from '../../client/pki.js';
import { AUTHENTICATED_GROUP } from '../../api-types/index.js';

/**
 * Who makes a request, as Kubernetes' user.Info: a user name and the groups RBAC decides on. Every authenticated
 * identity is in AUTHENTICATED_GROUP. The admin token is user "admin" in MASTERS_GROUP; a cluster member's server
 * certificate is flotilla:server:<id> in SERVER_GROUP; a node certificate is system:node:<N> in NODE_GROUP; a join
 * token is system:bootstrap:<id> in BOOTSTRAPPERS_GROUP; a user token is its user with the groups it was made with.
 */
export interface Identity { name: string; groups: readonly string[] }

/** Kubernetes' superuser group: every request of a member is allowed, before any other authorizer is asked. */
export const MASTERS_GROUP = 'system:masters';
export { AUTHENTICATED_GROUP };
/** Kubernetes' group of bootstrap tokens (here: join tokens), which only ask for a node certificate. */
export const BOOTSTRAPPERS_GROUP = 'system:bootstrappers';
export { NODE_GROUP, SERVER_GROUP };

/** The identity of user `name` in `groups`, and in AUTHENTICATED_GROUP (once). */
export function identity(name: string, groups: readonly string[]): Identity {
  return { name, groups: groups.includes(AUTHENTICATED_GROUP) ? [...groups] : [...groups, AUTHENTICATED_GROUP] };
}

export function inGroup(who: Identity | undefined, group: string): boolean {
  return who?.groups.includes(group) ?? false;
}

/** Whether `who` is a cluster member (its server certificate, or the benchmark-only cluster secret over plain HTTP). */
export function isServer(who: Identity | undefined): boolean {
  return inGroup(who, SERVER_GROUP);
}

/** N for a node's identity (`system:node:<N>` in NODE_GROUP); undefined for every other identity, join tokens included. */
export function nodeNameOf(who: Identity | undefined): string | undefined {
  return who !== undefined && inGroup(who, NODE_GROUP) ? nodeNameOfCommonName(who.name) : undefined;
}

