import { randomUUID } from 'node:crypto';
import { Hono } from 'hono';
import type { Context } from 'hono';
import pino, { type Logger } from 'pino';
import { bodyLimit } from 'hono/body-limit';
import { Registry, Counter, Histogram, Gauge, collectDefaultMetrics } from 'prom-client';
import { AUTHENTICATED_GROUP } from '../../api-types/index.js';
import { authorization, bearerAuth, identityOf } from './middleware/auth.js';
import { urlEncoding } from './middleware/url-encoding.js';
import { PodGraph } from '../objects/node-graph.js';
import { StoredPolicy } from '../auth/rbac.js';
import { accessReviewRoutes } from '../auth/access-review.js';
import type { Authenticator } from './middleware/auth.js';
import { resourceRoutes } from './routes/resources.js';
import type { ResourceDeps } from './routes/resources.js';
import { statusResponse } from './status.js';
import { StoreError } from '../store/types.js';
import { OpenApiDocuments } from './openapi.js';
import { discoveryRoutes } from './discovery.js';
import { requestInfo } from './request-info.js';
import { DEFAULT_SERVING_LIMITS, type ServingLimits } from './serving-limits.js';
import { maxInFlight } from './middleware/max-in-flight.js';
import { watchLimit } from './middleware/watch-limit.js';
import { requestTimeout } from './middleware/request-timeout.js';
import { admissionWarnings } from './middleware/admission-warnings.js';
import { audit, type AuditOptions } from './middleware/audit.js';

/** One readiness check as Kubernetes' /readyz lists it: its name and, when it fails, why. */
export interface ReadinessCheck {
  name: string;
  failure?: string;
}

export interface AppDeps extends ResourceDeps {
  authenticate: Authenticator;
  version: { flotilla: string; gitVersion: string };
  /** What /readyz checks; ready (200) when none failed, which must mean that an authenticated request is served. */
  readiness: () => ReadinessCheck[] | Promise<ReadinessCheck[]>;
  /** Request bodies above this many bytes get 413 (default MAX_REQUEST_BODY_BYTES). */
  maxBodyBytes?: number;
  /** Extra authenticated routes mounted at the root (cluster status, agent proxy...). */
  extraRoutes?: Hono[];
  /** Where internal errors (500) are logged; silent when not given. */
  log?: Logger;
  /** In-flight limits, watch caps and the request timeout (default DEFAULT_SERVING_LIMITS). */
  servingLimits?: ServingLimits;
  /** The audit log: one event per request (./middleware/audit.ts); none when not given. */
  audit?: AuditOptions;
}

/** kube-apiserver's limit on a request body (MaxRequestBodyBytes): twice what etcd stores, for JSON's overhead. */
export const MAX_REQUEST_BODY_BYTES = 3 * 1024 * 1024;

const PUBLIC_PATHS = ['/healthz', '/livez', '/readyz', '/version'] as const;

/** Builds the API server application; it never listens (see server/run.ts for that). */
export function createApp(deps: AppDeps): Hono {
  const app = new Hono();
  const metrics = apiMetrics(deps);
  const log = deps.log ?? pino({ level: 'silent' });

  // What went wrong inside stays in the log: the answer carries only the id that finds it there.
  app.onError((err, c) => {
    if (err instanceof StoreError) return statusResponse(c, err.failure);
    metrics.internalErrors.inc();
    const id = randomUUID();
    log.error({ err, errorId: id, method: c.req.method, path: c.req.path }, 'internal error');
    return statusResponse(c, { code: 500, reason: 'InternalError', message: `Internal error occurred: error id ${id}` });
  });
  app.notFound((c) => statusResponse(c, { code: 404, reason: 'NotFound', message: `the server could not find the requested resource: ${c.req.method} ${c.req.path}` }));

  // First, so that every answer is audited, refusals included.
  if (deps.audit) app.use('*', audit(deps.audit));
  app.use('*', async function requestMetrics(c, next) {
    const end = metrics.duration.startTimer();
    await next();
    const labels = { method: c.req.method, code: String(c.res.status) };
    metrics.requests.inc(labels);
    end(labels);
  });
  // An answer that leaves the request body unread (refused before it was needed) ends the connection: the server
  // would otherwise drop it while draining the rest, under a client already sending its next request on it.
  app.use('*', async function closeWhenBodyUnread(c, next) {
    await next();
    const sent = Number(c.req.header('content-length') ?? 0) > 0 || c.req.header('transfer-encoding') !== undefined;
    if (sent && !c.req.raw.bodyUsed) {
      try { c.res.headers.set('connection', 'close'); } catch { /* a relayed answer with fixed headers: left as it is */ }
    }
  });
  app.use('*', urlEncoding());
  const maxBody = deps.maxBodyBytes ?? MAX_REQUEST_BODY_BYTES;
  const limitBody = bodyLimit({
    maxSize: maxBody,
    // The rest of the body is left unread: the connection cannot carry another request.
    onError: (c) => {
      c.header('connection', 'close');
      return statusResponse(c, { code: 413, reason: 'RequestEntityTooLarge', message: `Request entity too large: limit is ${maxBody}` });
    },
  });
  // Image archives (nodes/NAME/images, routes/node-images.ts) go on to the agent as they arrive: never held whole.
  app.use('*', (c, next) => (isImageArchiveUpload(c) ? next() : limitBody(c, next)));

  app.get('/healthz', (c) => c.text('ok'));
  app.get('/livez', (c) => c.text('ok'));
  // As Kubernetes answers: "ok", or every check as [+]name ok / [-]name failed: why (also with ?verbose).
  app.get('/readyz', async (c) => {
    const checks = await deps.readiness();
    const failed = checks.some((k) => k.failure !== undefined);
    if (!failed && c.req.query('verbose') === undefined) return c.text('ok');
    const lines = checks.map((k) => (k.failure === undefined ? `[+]${k.name} ok` : `[-]${k.name} failed: ${k.failure}`));
    return c.text(`${lines.join('\n')}\nreadyz check ${failed ? 'failed' : 'passed'}\n`, failed ? 503 : 200);
  });
  app.get('/version', (c) => c.json(versionInfo(deps.version)));

  app.use('*', bearerAuth({ authenticate: deps.authenticate, publicPaths: PUBLIC_PATHS }));
  // After authentication, before authorization, as in kube-apiserver: the limits tell nodes and members apart.
  const limits = deps.servingLimits ?? DEFAULT_SERVING_LIMITS;
  app.use('*', requestTimeout({ timeoutMs: limits.requestTimeoutMs }));
  app.use('*', maxInFlight({ ...limits, metrics }));
  app.use('*', watchLimit({ ...limits, metrics }));
  // Nodes are authorized against the pods bound to them (the graph is built at the first node request), everyone
  // else by RBAC over the stored roles and bindings (indexed at the first request that needs them).
  const policy = { graph: new PodGraph(deps.objects), rbac: new StoredPolicy(deps.objects) };
  app.use('*', authorization(policy));
  app.use('*', admissionWarnings());

  app.get('/metrics', async (c) => c.text(await metrics.registry.metrics(), 200, { 'content-type': metrics.registry.contentType }));
  const openApi = new OpenApiDocuments(deps.version.flotilla);
  const jsonBody = (c: Context, text: string) => c.body(text, 200, { 'content-type': 'application/json' });
  app.get('/openapi.json', (c) => jsonBody(c, openApi.full()));
  // JSON only: a client asking for the protobuf form alone is told 406, and asks again for JSON (client-go does).
  app.get('/openapi/v2', (c) => {
    const accept = c.req.header('accept') ?? '';
    if (accept !== '' && !/application\/json|\*\/\*/.test(accept)) return statusResponse(c, { code: 406, reason: 'NotAcceptable', message: `only application/json is served here, not ${accept}` });
    return jsonBody(c, openApi.v2());
  });
  app.get('/openapi/v3', (c) => c.json(openApi.v3Index()));
  app.get('/openapi/v3/*', (c, next) => {
    const text = openApi.v3(c.req.path.slice('/openapi/v3/'.length));
    return text === undefined ? next() : jsonBody(c, text);
  });
  app.route('/', discoveryRoutes());
  // authentication.k8s.io/v1 SelfSubjectReview (`kubectl auth whoami`): who the API takes the caller for.
  app.post('/apis/authentication.k8s.io/v1/selfsubjectreviews', (c) => {
    const who = identityOf(c);
    const groups = [...new Set([...(who?.groups ?? []), AUTHENTICATED_GROUP])];
    return c.json({
      kind: 'SelfSubjectReview', apiVersion: 'authentication.k8s.io/v1', metadata: { creationTimestamp: new Date().toISOString() },
      status: { userInfo: { username: who?.name ?? '', groups } },
    }, 201);
  });
  app.route('/', accessReviewRoutes(policy));
  for (const extra of deps.extraRoutes ?? []) app.route('/', extra);
  app.route('/', resourceRoutes(deps));
  return app;
}

/**
 * Kubernetes' version.Info: major, minor and gitVersion are the Kubernetes API this server speaks (kubectl warns
 * when they are more than one minor version from its own); Flotilla's own version is in `flotilla`.
 */
function versionInfo(v: AppDeps['version']): Record<string, string> {
  const [, major = '', minor = ''] = /^v(\d+)\.(\d+)/.exec(v.gitVersion) ?? [];
  return {
    major, minor, gitVersion: v.gitVersion, gitCommit: '', gitTreeState: '', buildDate: '', goVersion: '', compiler: '',
    platform: `${process.platform}/${process.arch}`, flotilla: v.flotilla,
  };
}

function isImageArchiveUpload(c: Context): boolean {
  const info = requestInfo(c.req.method, c.req.path, undefined);
  return info?.verb === 'create' && info.group === 'flotilla.io' && info.resource === 'nodes' && info.subresource === 'images';
}

function apiMetrics(deps: AppDeps) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const requests = new Counter({ name: 'flotilla_http_requests_total', help: 'API requests by method and status code', labelNames: ['method', 'code'], registers: [registry] });
  const duration = new Histogram({ name: 'flotilla_http_request_duration_seconds', help: 'API request latency', labelNames: ['method', 'code'], buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: [registry] });
  const internalErrors = new Counter({ name: 'flotilla_http_internal_errors_total', help: 'Requests that failed with 500', registers: [registry] });
  // kube-apiserver's apiserver_current_inflight_requests and apiserver_dropped_requests_total.
  const inFlight = new Gauge({ name: 'flotilla_current_inflight_requests', help: 'Requests served now, by kind (readOnly, mutating), long-running ones not counted', labelNames: ['request_kind'], registers: [registry] });
  const rejected = new Counter({ name: 'flotilla_dropped_requests_total', help: 'Requests refused with 429, by kind (readOnly, mutating; watch: over a watch cap)', labelNames: ['request_kind'], registers: [registry] });
  new Gauge({ name: 'flotilla_store_revision', help: 'Revision of the newest applied write', registers: [registry], collect() { this.set(deps.objects.revision()); } });
  new Gauge({ name: 'flotilla_watchers', help: 'Open watch streams', registers: [registry], collect() { this.set(deps.objects.watcherCount); } });
  return { registry, requests, duration, internalErrors, inFlight, rejected };
}
