// The OpenAPI documents of the served API, generated from the resource table and from the zod schemas that
// validate requests (api-types/validate.ts), so they cannot drift from what the server accepts. kubectl reads
// them as it reads kube-apiserver's: `kubectl explain` walks the schemas found by x-kubernetes-group-version-kind,
// and `kubectl apply/create` see the fieldValidation parameter on PATCH and leave validation to the server
// (which refuses unknown fields).
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { allResources, apiPath, kindSchemas } from '../../api-types/index.js';
import type { ResourceInfo } from '../../api-types/index.js';

type Json = Record<string, unknown>;

/** The components.schemas name of a kind, in kube's reverse-domain style (io.k8s.api.apps.v1.Deployment). */
export function schemaName(r: Pick<ResourceInfo, 'group' | 'version' | 'kind'>): string {
  if (r.group === 'flotilla.io') return `io.flotilla.${r.version}.${r.kind}`;
  return `io.k8s.api.${r.group === '' ? 'core' : r.group.replace(/\.k8s\.io$/, '')}.${r.version}.${r.kind}`;
}

const gvk = (r: ResourceInfo) => ({ group: r.group, version: r.version, kind: r.kind });

/** The JSON schema of what a client may send for `r`'s kind (zod's input side: defaulted fields are optional). */
function kindSchema(r: ResourceInfo): Json {
  const schema = kindSchemas[r.kind as keyof typeof kindSchemas];
  if (schema === undefined) throw new Error(`openapi: kind ${r.kind} has no schema in validate.ts`);
  // Refinements and transforms have no JSON Schema form: the field is then described by its type alone.
  const json = z.toJSONSchema(schema, { target: 'openapi-3.0', io: 'input', unrepresentable: 'any', cycles: 'ref', reused: 'inline' }) as Json;
  delete json.$schema;
  return { ...json, 'x-kubernetes-group-version-kind': [gvk(r)] };
}

const query = (name: string, description: string) => ({ name, in: 'query', description, schema: { type: 'string', uniqueItems: true } });
const pathParam = (name: string, description: string) => ({ name, in: 'path', required: true, description, schema: { type: 'string', uniqueItems: true } });
/** The parameters kube-apiserver takes on every write; kubectl looks for fieldValidation and dryRun on PATCH. */
const WRITE_PARAMETERS = [
  query('dryRun', 'When present, the write is checked and answered but not stored: All is the one value.'),
  query('fieldManager', 'The name of the actor making the change.'),
  query('fieldValidation', 'How unknown or duplicate fields are treated: Ignore, Warn or Strict. Flotilla refuses unknown fields.'),
];
const LIST_PARAMETERS = ['labelSelector', 'fieldSelector', 'watch', 'resourceVersion', 'resourceVersionMatch', 'timeoutSeconds', 'limit', 'continue', 'allowWatchBookmarks']
  .map((name) => query(name, ''));

function operation(r: ResourceInfo, action: string, summary: string, o: { body?: Json; response: Json; parameters?: Json[] }): Json {
  return {
    description: summary, operationId: `${action}${r.kind}`,
    ...(o.parameters ? { parameters: o.parameters } : {}),
    ...(o.body ? { requestBody: { content: { '*/*': { schema: o.body } }, required: true } } : {}),
    responses: { 200: { description: 'OK', content: { 'application/json': { schema: o.response } } }, default: { description: 'a Kubernetes Status object' } },
    'x-kubernetes-action': action, 'x-kubernetes-group-version-kind': gvk(r),
  };
}

/** The paths of one resource: its collection, its objects and its subresources. */
function resourcePaths(r: ResourceInfo): Record<string, Json> {
  const ref = { $ref: `#/components/schemas/${schemaName(r)}` };
  const objectRef = { type: 'object' };
  const ns = r.namespaced ? '{namespace}' : undefined;
  // apiPath encodes segments; OpenAPI templates keep their braces.
  const collection = decodeURIComponent(apiPath(r, ns));
  const item = decodeURIComponent(apiPath(r, ns, '{name}'));
  const scope = r.namespaced ? [pathParam('namespace', 'object name and auth scope, such as for teams and projects')] : [];
  const paths: Record<string, Json> = {
    [collection]: {
      get: operation(r, 'list', `list or watch objects of kind ${r.kind}`, { response: objectRef, parameters: LIST_PARAMETERS }),
      post: operation(r, 'post', `create a ${r.kind}`, { body: ref, response: ref, parameters: WRITE_PARAMETERS }),
      parameters: scope,
    },
    [item]: {
      get: operation(r, 'get', `read the specified ${r.kind}`, { response: ref }),
      put: operation(r, 'put', `replace the specified ${r.kind}`, { body: ref, response: ref, parameters: WRITE_PARAMETERS }),
      patch: operation(r, 'patch', `partially update the specified ${r.kind}`, { body: objectRef, response: ref, parameters: [...WRITE_PARAMETERS, query('force', '')] }),
      delete: operation(r, 'delete', `delete a ${r.kind}`, { response: objectRef, parameters: [query('dryRun', ''), query('gracePeriodSeconds', ''), query('propagationPolicy', '')] }),
      parameters: [pathParam('name', `name of the ${r.kind}`), ...scope],
    },
  };
  for (const sub of r.subresources) {
    paths[`${item}/${sub}`] = {
      get: operation(r, 'get', `read ${sub} of the specified ${r.kind}`, { response: sub === 'status' ? ref : objectRef }),
      put: operation(r, 'put', `replace ${sub} of the specified ${r.kind}`, { body: sub === 'status' ? ref : objectRef, response: objectRef, parameters: WRITE_PARAMETERS }),
      patch: operation(r, 'patch', `partially update ${sub} of the specified ${r.kind}`, { body: objectRef, response: objectRef, parameters: WRITE_PARAMETERS }),
      parameters: [pathParam('name', `name of the ${r.kind}`), ...scope],
    };
  }
  return paths;
}

/** The OpenAPI 3 document of `resources`: their paths and their kinds' schemas. */
function openApiV3(resources: readonly ResourceInfo[], version: string): Json {
  const paths: Record<string, Json> = {};
  const schemas: Record<string, Json> = {};
  for (const r of resources) {
    Object.assign(paths, resourcePaths(r));
    schemas[schemaName(r)] = kindSchema(r);
  }
  return {
    openapi: '3.0.0', info: { title: 'Flotilla', version }, paths,
    components: { schemas, securitySchemes: { BearerToken: { type: 'apiKey', description: 'Bearer Token authentication', name: 'authorization', in: 'header' } } },
    security: [{ BearerToken: [] }],
  };
}

/** Every served path in one OpenAPI 3 document (/openapi.json). */
export function openApiDocument(version: string): Json {
  return openApiV3(allResources, version);
}

/** OpenAPI 3 keywords that Swagger 2.0 lacks: dropped from the v2 document's definitions. */
const NOT_IN_V2 = new Set(['nullable']);

function toV2Schema(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(toV2Schema);
  if (v === null || typeof v !== 'object') return v;
  const out: Json = {};
  for (const [k, x] of Object.entries(v as Json)) {
    if (NOT_IN_V2.has(k)) continue;
    out[k] = k === '$ref' && typeof x === 'string' ? x.replace('#/components/schemas/', '#/definitions/') : toV2Schema(x);
  }
  return out;
}

/** The Swagger 2.0 document (/openapi/v2): the kinds' schemas as definitions, and the paths without bodies. */
function openApiV2(version: string): Json {
  const v3 = openApiDocument(version);
  const definitions = toV2Schema((v3.components as { schemas: Json }).schemas);
  const paths: Record<string, Json> = {};
  for (const [path, item] of Object.entries(v3.paths as Record<string, Json>)) {
    paths[path] = Object.fromEntries(Object.entries(item).map(([method, op]) => {
      if (method === 'parameters') return [method, (op as Json[]).map(({ schema, ...p }) => ({ ...p, type: (schema as Json).type }))];
      const { requestBody, responses, parameters, ...rest } = op as Json & { requestBody?: { content: Record<string, { schema: Json }> }; parameters?: Json[] };
      const body = requestBody ? [{ name: 'body', in: 'body', required: true, schema: toV2Schema(requestBody.content['*/*']!.schema) }] : [];
      const params = (parameters ?? []).map(({ schema, ...p }) => ({ ...p, type: (schema as Json).type }));
      return [method, { ...rest, consumes: ['*/*'], produces: ['application/json'], parameters: [...params, ...body], responses: { 200: { description: 'OK' } } }];
    }));
  }
  return {
    swagger: '2.0', info: { title: 'Flotilla', version }, paths, definitions,
    securityDefinitions: { BearerToken: { type: 'apiKey', description: 'Bearer Token authentication', name: 'authorization', in: 'header' } }, security: [{ BearerToken: [] }],
  };
}

/** The group versions' paths under /openapi/v3: "api/v1", "apis/apps/v1", ... */
const gvPath = (r: ResourceInfo) => (r.group === '' ? `api/${r.version}` : `apis/${r.group}/${r.version}`);

/**
 * The documents kube-apiserver serves: /openapi/v2, the /openapi/v3 index (each group version's document with
 * its hash, so that clients cache it) and /openapi/v3/api/v1, /openapi/v3/apis/GROUP/VERSION. Built once.
 */
export class OpenApiDocuments {
  readonly #version: string;
  #v2: string | undefined;
  #full: string | undefined;
  #byGroupVersion: Map<string, { text: string; hash: string }> | undefined;

  constructor(version: string) {
    this.#version = version;
  }

  /** Every served path in one document (/openapi.json). */
  full(): string {
    return (this.#full ??= JSON.stringify(openApiDocument(this.#version)));
  }

  v2(): string {
    return (this.#v2 ??= JSON.stringify(openApiV2(this.#version)));
  }

  #groupVersions(): Map<string, { text: string; hash: string }> {
    if (this.#byGroupVersion === undefined) {
      const byPath = new Map<string, ResourceInfo[]>();
      for (const r of allResources) byPath.set(gvPath(r), [...(byPath.get(gvPath(r)) ?? []), r]);
      this.#byGroupVersion = new Map([...byPath].map(([path, resources]) => {
        const text = JSON.stringify(openApiV3(resources, this.#version));
        return [path, { text, hash: createHash('sha512').update(text).digest('hex').slice(0, 128).toUpperCase() }];
      }));
    }
    return this.#byGroupVersion;
  }

  /** The /openapi/v3 index. */
  v3Index(): Json {
    return { paths: Object.fromEntries([...this.#groupVersions()].map(([path, d]) => [path, { serverRelativeURL: `/openapi/v3/${path}?hash=${d.hash}` }])) };
  }

  /** The document of one group version ("apis/apps/v1"), or undefined when none is served. */
  v3(path: string): string | undefined {
    return this.#groupVersions().get(path)?.text;
  }
}
