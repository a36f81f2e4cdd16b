/**
 * The OpenAPI 3.1 document of the Admin API, built from the route table
 * (host/admin/api.ts), so it cannot drift from what the listener serves.
 * docs/openapi.json is this document, regenerated with
 * `hookwire openapi > docs/openapi.json`; test/admin/openapi.test.ts fails
 * when the file is stale and checks every registered route is documented.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../config/load.js';
import { adminRoutes, COMPONENTS, type ApiRoute } from './api.js';

type Json = Record<string, unknown>;

function version(): string {
  try {
    return (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
}

const TAGS = [
  { name: 'event-hooks', description: "Kong's Event Hooks: hooks, sources, test and ping, plus deliveries, retries and the ingest endpoint" },
  { name: 'services', description: 'Upstream services (Kong entity)' },
  { name: 'routes', description: 'Routes to services (Kong entity)' },
  { name: 'consumers', description: 'Consumers (Kong entity)' },
  { name: 'plugins', description: 'proxy-wasm plugin instances, global or attached to a workspace, service or route' },
  { name: 'operations', description: 'Metrics, status, the current configuration and this document' },
];

function operation(r: ApiRoute): Json {
  const pathParams = [...r.path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!);
  const parameters = [
    ...pathParams.map((name) => ({ name, in: 'path', required: true, description: r.params?.[name] ?? name, schema: { type: 'string' } })),
    ...(r.query ?? []).map((q) => ({ name: q.name, in: 'query', required: false, description: q.description, schema: q.schema })),
  ];
  const responses: Json = {};
  for (const [status, doc] of Object.entries(r.responses)) {
    const content: Json = {};
    if (doc.schema) content[doc.contentType ?? 'application/json'] = { schema: doc.schema };
    for (const [type, schema] of Object.entries(doc.alternatives ?? {})) content[type] = { schema };
    responses[status] = { description: doc.description, ...(Object.keys(content).length ? { content } : {}) };
  }
  return {
    operationId: r.operationId,
    summary: r.summary,
    ...(r.description ? { description: r.description } : {}),
    tags: [...r.tags],
    ...(parameters.length ? { parameters } : {}),
    ...(r.body
      ? {
          requestBody: {
            required: r.body.required,
            ...(r.body.description ? { description: r.body.description } : {}),
            content: { 'application/json': { schema: r.body.schema } },
          },
        }
      : {}),
    responses,
    ...(r.security === 'ingest' ? { security: [{ ingestToken: [] }] } : {}),
  };
}

/** The document for `routes` (default: every Admin API route). */
export function openApiDocument(routes: readonly ApiRoute[] = adminRoutes()): Json {
  const paths: Record<string, Json> = {};
  for (const r of routes) {
    const item = (paths[r.path] ??= {});
    item[r.method.toLowerCase()] = operation(r);
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'hookwire Admin API',
      version: version(),
      description:
        "The admin listener of hookwire (127.0.0.1:8001 by default): Kong's Admin API paths and status codes for event hooks, services, routes, consumers and plugins, " +
        'each also under a `/{workspace}` prefix (unprefixed: the workspace "default"). JSON in and out. When admin.token is set (required off loopback), every ' +
        'request but the ingest endpoint sends it as `Authorization: Bearer <token>` or `Hookwire-Admin-Token: <token>`; otherwise no credentials are needed.',
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    servers: [{ url: 'http://127.0.0.1:8001' }],
    tags: TAGS,
    security: [{}, { adminToken: [] }, { adminTokenHeader: [] }],
    paths,
    components: {
      schemas: COMPONENTS,
      securitySchemes: {
        adminToken: { type: 'http', scheme: 'bearer', description: 'admin.token' },
        adminTokenHeader: { type: 'apiKey', in: 'header', name: 'Hookwire-Admin-Token', description: 'admin.token' },
        ingestToken: { type: 'http', scheme: 'bearer', description: 'event_hooks.ingest_token' },
      },
    },
  };
}
