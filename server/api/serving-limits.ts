// How much one API server takes on at once and how long it waits on a client: kube-apiserver's in-flight limits
// (--max-requests-inflight, --max-mutating-requests-inflight) and --request-timeout, caps on open watches, and
// the socket timeouts of its HTTPS server (kube-apiserver's ReadHeaderTimeout and IdleTimeout). The middleware
// that enforces the first three is in ./middleware/max-in-flight.ts, ./middleware/watch-limit.ts and
// ./middleware/request-timeout.ts; server/run.ts gives httpServerOptions to the server it listens with.
import type { ServerOptions } from 'node:https';

export interface ServingLimits {
  /** Read-only requests (get, list) served at once; 0: no limit. kube-apiserver's --max-requests-inflight (400). */
  maxRequestsInFlight: number;
  /** Mutating requests served at once; 0: no limit. kube-apiserver's --max-mutating-requests-inflight (200). */
  maxMutatingRequestsInFlight: number;
  /** Watch streams open at once on this server, from all clients together. */
  maxWatches: number;
  /** Watch streams open at once for one identity (a user, a node, a token). */
  maxWatchesPerClient: number;
  /** A request that is not long-running is answered 504 when its handler has not answered within this (kube's --request-timeout, 60 s). */
  requestTimeoutMs: number;
  /**
   * A connection must complete its TLS handshake, and each request must have sent all its headers, within this;
   * slow senders (slowloris) are cut. kube-apiserver sets ReadHeaderTimeout 32 s, which bounds Go's handshake too.
   */
  headersTimeoutMs: number;
  /** An idle keep-alive connection is closed after this (kube-apiserver's IdleTimeout, 90 s). */
  idleTimeoutMs: number;
}

/**
 * Kubernetes' values, with the in-flight limits halved for the small machines (a Raspberry Pi) a server runs on:
 * a Node.js server serves from one thread, so more requests in flight only queue longer. A node agent holds a
 * handful of watches; the total allows several hundred nodes and their clients.
 */
export const DEFAULT_SERVING_LIMITS: ServingLimits = {
  maxRequestsInFlight: 200,
  maxMutatingRequestsInFlight: 100,
  maxWatches: 2000,
  maxWatchesPerClient: 100,
  requestTimeoutMs: 60_000,
  headersTimeoutMs: 32_000,
  idleTimeoutMs: 90_000,
};

/**
 * The options of node's HTTPS server that enforce headersTimeoutMs and idleTimeoutMs. Node checks the header and
 * request deadlines of open connections every `connectionsCheckingInterval` (30 s by default, which would let a
 * slow sender stay twice as long): here every second, or a quarter of the header timeout when that is shorter.
 * Node's own `requestTimeout` (receiving a whole request, its body included) keeps its default of 5 minutes: a
 * Raft snapshot from a peer over a slow link must fit in it, and users' bodies are bounded by requestTimeoutMs.
 */
export function httpServerOptions(limits: ServingLimits): ServerOptions {
  return {
    headersTimeout: limits.headersTimeoutMs,
    connectionsCheckingInterval: Math.max(10, Math.min(1_000, Math.floor(limits.headersTimeoutMs / 4))),
    keepAliveTimeout: limits.idleTimeoutMs,
    handshakeTimeout: limits.headersTimeoutMs,
  };
}
