import { allResources, apiPath } from '../../api-types/index.js';

/** An OpenAPI 3 description of the served paths, derived from the resource table so it cannot drift. */
export function openApiDocument(version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  const op = (summary: string, extra: Record<string, unknown> = {}) => ({ summary, responses: { 200: { description: 'OK' }, default: { description: 'a Kubernetes Status object' } }, ...extra });
  for (const r of allResources) {
    const ns = r.namespaced ? '{namespace}' : undefined;
    // apiPath encodes segments; OpenAPI templates keep their braces.
    const collection = decodeURIComponent(apiPath(r, ns));
    const item = decodeURIComponent(apiPath(r, ns, '{name}'));
    paths[collection] = {
      get: op(`list or watch ${r.kind} objects`, { parameters: ['labelSelector', 'fieldSelector', 'watch', 'resourceVersion', 'timeoutSeconds'].map((name) => ({ name, in: 'query', schema: { type: 'string' } })) }),
      post: op(`create a ${r.kind}`),
    };
    paths[item] = { get: op(`read a ${r.kind}`), put: op(`replace a ${r.kind}`), patch: op(`merge-patch a ${r.kind}`), delete: op(`delete a ${r.kind}`) };
    for (const sub of r.subresources) paths[`${item}/${sub}`] = { get: op(`read ${sub} of a ${r.kind}`), put: op(`replace ${sub} of a ${r.kind}`), patch: op(`merge-patch ${sub} of a ${r.kind}`) };
  }
  return { openapi: '3.0.3', info: { title: 'Flotilla', version }, paths, components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } }, security: [{ bearer: [] }] };
}
