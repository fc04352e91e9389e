// A node's images, served by its agent (node-agent/endpoint.ts) through agentCaller (./agent-proxy.ts), for
// `flotilla image load|ls|rm`. Admin only, as other operations on a node's machine are.
//
//   GET    nodeImagesPath(N)              {"images": [{id, names, sizeBytes, os, architecture, variant?}...]}
//   POST   nodeImagesPath(N)              body: a `docker save` archive, streamed on to the agent as it arrives;
//          ARCHIVE_DIGEST_HEADER as a      201 {"images", "digest", "bytes"} once loaded; 400 when it arrived
//          header or a trailer
//                                          incomplete or with another digest (nothing loaded)
//   DELETE nodeImagesPath(N)?name=IMAGE   {"removed": IMAGE}; 404 when N has no such image, 409 while a container uses it
// The body is neither held nor limited in size (createApp leaves these uploads alone), and the request is
// long-running (no request timeout): an archive of gigabytes to a Raspberry Pi takes its time.
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { Hono } from 'hono';
import type { Context } from 'hono';
import { ARCHIVE_DIGEST_HEADER, archiveDigestTrails, isArchiveDigest } from '../../../api-types/index.js';
import { StoreError } from '../../store/types.js';
import type { AgentCaller } from './agent-proxy.js';

const NODE_IMAGES_ROUTE = '/apis/flotilla.io/v1/nodes/:name/images';

export function nodeImageRoutes(deps: { callAgent: AgentCaller }): Hono {
  const app = new Hono();
  // Behind the policy middleware: the requester may use flotilla.io nodes/images (cluster-admin, or RBAC).
  const node = (c: Context) => c.req.param('name')!;
  app.get(NODE_IMAGES_ROUTE, (c) => deps.callAgent(node(c), { path: '/v1/images', method: 'GET', signal: c.req.raw.signal }));
  app.post(NODE_IMAGES_ROUTE, async (c) => {
    const name = node(c);
    const digest = c.req.header(ARCHIVE_DIGEST_HEADER);
    // The digest leads the archive (a file) or, for one streamed while it is made (`docker save`), follows it.
    const trailing = digest === undefined && archiveDigestTrails(c.req.header('trailer'));
    if (!trailing && (!digest || !isArchiveDigest(digest))) {
      throw new StoreError({ code: 400, reason: 'BadRequest', message: `an image archive needs its digest in the ${ARCHIVE_DIGEST_HEADER} header or trailer ("sha256:" and 64 hex digits)` });
    }
    // Served by node's HTTP server, the request's own stream is relayed as it is (no conversion to a web stream and
    // back, which costs a node's CPU per byte); the web body otherwise (app.request in tests), without trailers.
    const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
    const web = incoming ? undefined : c.req.raw.body;
    if ((!incoming && !web) || (trailing && !incoming)) throw new StoreError({ code: 400, reason: 'BadRequest', message: 'the request carries no image archive' });
    const length = c.req.header('content-length');
    return deps.callAgent(name, {
      path: '/v1/images', method: 'POST', signal: c.req.raw.signal,
      headers: {
        'content-type': 'application/x-tar', ...(length ? { 'content-length': length } : {}),
        ...(trailing ? { trailer: ARCHIVE_DIGEST_HEADER } : { [ARCHIVE_DIGEST_HEADER]: digest! }),
      },
      body: incoming ?? Readable.fromWeb(web as import('node:stream/web').ReadableStream<Uint8Array>),
      ...(trailing ? { trailers: (): Record<string, string> => {
        const sent = incoming!.trailers[ARCHIVE_DIGEST_HEADER];
        return sent === undefined ? {} : { [ARCHIVE_DIGEST_HEADER]: sent };
      } } : {}),
    });
  });
  app.delete(NODE_IMAGES_ROUTE, (c) => {
    const name = node(c);
    const image = c.req.query('name');
    if (!image) throw new StoreError({ code: 400, reason: 'BadRequest', message: 'name the image to remove: ?name=IMAGE' });
    return deps.callAgent(name, { path: `/v1/images?name=${encodeURIComponent(image)}`, method: 'DELETE', signal: c.req.raw.signal });
  });
  return app;
}
