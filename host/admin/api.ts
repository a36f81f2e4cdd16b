/**
 * The Admin API: every route the admin listener serves, with what OpenAPI
 * says about it (host/admin/openapi.ts builds docs/openapi.json from this
 * table) and its handler. `registerAdminApi(admin, ctx)` registers them all.
 *
 * Kong's paths and status codes: /event-hooks (Kong Enterprise's Event
 * Hooks, plus deliveries and the ingest endpoint), /services, /routes,
 * /consumers, /plugins (and their `/{workspace}/...` forms), JSON in and
 * out; plus /config, /openapi.json, /metrics and /status.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { stringify as toYaml } from 'yaml';
import { compactDocument, toDocument } from '../config/document.js';
import type { EventHooksConfig } from '../config/schema.js';
import { WebhookRequestError, EventHookValidationError } from '../errors.js';
import type { EventHooks } from '../hooks/service.js';
import { EVENT_HOOK_PATCH_SCHEMA, EVENT_HOOK_SCHEMA, HANDLER_CONFIG_SCHEMAS } from '../hooks/schemas.js';
import type { StoredDeliveryState } from '../hooks/store.js';
import type { HandlerName, MetricSample, Page as HooksPage } from '../hooks/types.js';
import type { Gateway } from '../proxy/gateway.js';
import { ConfigEntities, DEFAULT_WORKSPACE, pageSize, pluginFormSchema, type EntityKind, type View } from './entities.js';
import { bearerToken, tokenMatches } from './auth.js';
import { AdminHttpError, notFound, readObject, readRecordArray, schemaViolation, type FormSchema } from './http.js';
import type { CoercionSchema } from './form.js';
import { VALIDATE_PLUGIN_ROUTE } from './plugin-schema.js';
import { inputSchema, pageSchema, VIEWS } from './schemas.js';
import type { AdminServer, RouteParams } from './server.js';

type Schema = Record<string, unknown>;

/** What the handlers work with. */
export interface AdminContext {
  readonly gateway: Gateway;
  /** Null when event_hooks.enabled is false. */
  readonly hooks: EventHooks | null;
  readonly entities: ConfigEntities;
  readonly admin: AdminServer;
  readonly logger: Logger;
  /** The event_hooks section hookwire started with (changes need a restart). */
  readonly eventHooks: EventHooksConfig;
  /** `hookwire start --workers N`: the whole node's view (null: one process, this one). */
  readonly workers?: WorkerPeers | null;
}

/** The other worker processes of this node (`--workers`), for /metrics and /status of the whole node. */
export interface WorkerPeers {
  /** The node's metrics: `own` (this worker's text) merged with every other worker's. */
  metrics(own: string): Promise<string>;
  /** The node's status: `own` (this worker's) with the other workers' and one entry per worker. */
  status(own: Record<string, unknown>): Promise<Record<string, unknown>>;
}

export interface ApiRequest {
  readonly req: IncomingMessage;
  readonly url: URL;
  readonly params: RouteParams;
  readonly query: URLSearchParams;
  /** The `{workspace}` of the path, or "default". */
  readonly workspace: string;
  /** The path prefix that names the workspace ("" or "/team-a"), for `next` links. */
  readonly prefix: string;
}

export interface ApiReply {
  readonly status: number;
  /** JSON body (omitted: none). */
  readonly body?: unknown;
  /** A non-JSON body, with its content type. */
  readonly text?: string;
  readonly contentType?: string;
  readonly headers?: Record<string, string>;
}

export interface ApiResponseDoc {
  readonly description: string;
  readonly schema?: Schema;
  /** Default application/json. */
  readonly contentType?: string;
  /** Also serves this content type (GET /config: YAML). */
  readonly alternatives?: Record<string, Schema>;
}

export interface ApiRoute {
  readonly method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  readonly path: string;
  readonly operationId: string;
  readonly summary: string;
  readonly description?: string;
  readonly tags: readonly string[];
  /** Descriptions of the path parameters. */
  readonly params?: Readonly<Record<string, string>>;
  readonly query?: readonly { name: string; description: string; schema: Schema }[];
  readonly body?: { readonly schema: Schema; readonly required: boolean; readonly description?: string };
  readonly responses: Readonly<Record<number, ApiResponseDoc>>;
  /** Served without the admin token (checks its own). */
  readonly public?: boolean;
  /** Ingest bearer token instead of the admin token (OpenAPI security). */
  readonly security?: 'ingest';
  handle(ctx: AdminContext, req: ApiRequest): Promise<ApiReply>;
}

/** Largest Admin API body other than ingest batches. */
export const BODY_LIMIT = 1_048_576;

// ---- schemas shared by the docs ------------------------------------------------------

const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });

function stripIds(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(stripIds);
  if (schema !== null && typeof schema === 'object') {
    return Object.fromEntries(Object.entries(schema).filter(([k]) => k !== '$id').map(([k, v]) => [k, stripIds(v)]));
  }
  return schema;
}

const HANDLER_CONFIG = {
  description: "The handler's configuration (webhook, webhook-custom or log); defaults are filled in",
  oneOf: [ref('WebhookConfig'), ref('WebhookCustomConfig'), ref('LogConfig')],
};

function hookInput(base: Schema): Schema {
  const s = stripIds(base) as Schema;
  const props = { ...(s.properties as Schema), config: { ...HANDLER_CONFIG, type: ['object', 'null'] } };
  return { ...s, properties: props };
}

const EVENT_HOOK_VIEW: Schema = {
  type: 'object',
  required: ['id', 'created_at', 'updated_at', 'source', 'event', 'handler', 'on_change', 'snooze', 'enabled', 'config'],
  properties: {
    id: { type: 'string', description: 'UUID' },
    created_at: { type: 'integer', description: 'seconds since the epoch' },
    updated_at: { type: 'integer', description: 'seconds since the epoch' },
    source: { type: 'string' },
    event: { type: ['string', 'null'], description: 'null: every event of the source' },
    handler: { type: 'string', enum: ['webhook', 'webhook-custom', 'log'] },
    on_change: { type: ['boolean', 'null'] },
    snooze: { type: ['integer', 'null'], description: 'seconds' },
    enabled: { type: 'boolean', description: 'false after the endpoint answered 410 Gone, or when set so' },
    config: HANDLER_CONFIG,
  },
};

const EVENT_SPEC: Schema = {
  type: 'object',
  required: ['fields'],
  properties: {
    fields: { type: 'array', items: { type: 'string' } },
    unique: { type: 'array', items: { type: 'string' } },
    description: { type: 'string' },
  },
};

const ATTEMPT: Schema = {
  type: 'object',
  properties: {
    attempt: { type: 'integer' },
    started_at_ms: { type: 'integer' },
    duration_ms: { type: 'integer' },
    status: { type: ['integer', 'null'] },
    error: { type: ['string', 'null'] },
    response: { type: ['string', 'null'], description: 'the first bytes of the response body' },
    webhook_timestamp: { type: ['integer', 'null'] },
    url: { type: ['string', 'null'] },
  },
};

const DELIVERY: Schema = {
  type: 'object',
  properties: {
    id: { type: 'string', description: 'also the webhook-id header: msg_ + ULID, the same on every attempt' },
    hook_id: { type: 'string' },
    event_id: { type: 'string' },
    source: { type: 'string' },
    event: { type: 'string' },
    data: { type: 'object' },
    state: { type: 'string', enum: ['pending', 'delivering', 'succeeded', 'failed', 'dropped'] },
    attempt_count: { type: 'integer' },
    next_attempt_at_ms: { type: ['integer', 'null'] },
    created_at_ms: { type: 'integer' },
    updated_at_ms: { type: 'integer' },
    last_status: { type: ['integer', 'null'] },
    last_error: { type: ['string', 'null'] },
    attempts: { type: 'array', items: ref('Attempt') },
  },
};

const INGEST_RESULT: Schema = {
  type: 'object',
  required: ['accepted', 'published', 'rejected', 'deliveries', 'errors'],
  properties: {
    accepted: { type: 'integer', description: 'emit records stored' },
    published: { type: 'integer', description: 'publish records applied' },
    rejected: { type: 'integer', description: 'records refused (malformed, unpublished source or event, too large)' },
    deliveries: { type: 'integer', description: 'deliveries the accepted emits created' },
    errors: {
      type: 'array',
      description: 'why each refused record was refused (at most 100)',
      items: { type: 'object', properties: { index: { type: 'integer' }, reason: { type: 'string' } } },
    },
  },
};

const TEST_RESULT: Schema = {
  type: 'object',
  required: ['data', 'result'],
  properties: {
    data: { type: 'object', description: 'the posted data' },
    result: {
      description: 'webhook / webhook-custom / wasm: the answer of the endpoint; log: true; wasm whose transform dropped the data: {dropped, reason}',
      oneOf: [
        { type: 'object', required: ['status'], properties: { status: { type: 'integer' }, headers: { type: 'object' }, body: { type: 'string' } } },
        { const: true },
        { type: 'object', required: ['dropped'], properties: { dropped: { const: true }, reason: { type: ['string', 'null'] } } },
      ],
    },
  },
};

/** Named schemas of the OpenAPI document. */
export const COMPONENTS: Record<string, Schema> = {
  Error: { type: 'object', required: ['message'], properties: { message: { type: 'string' } } },
  SchemaViolation: {
    type: 'object',
    required: ['name', 'message', 'fields'],
    properties: {
      name: { type: 'string', description: '"schema violation", "unique constraint violation", "foreign key violation", "reload refused"' },
      message: { type: 'string', description: 'every problem, each naming its field: "schema violation (config.url: ...; paths.0: ...)"' },
      fields: { type: 'object', description: "Kong's nested form: {config: {url: message}}; whole-entity problems under @entity" },
      issues: {
        type: 'array',
        description: 'each problem with the JSON pointer of the field in the body',
        items: { type: 'object', properties: { path: { type: 'string' }, message: { type: 'string' } } },
      },
    },
  },
  Service: VIEWS.services,
  Route: VIEWS.routes,
  Consumer: VIEWS.consumers,
  Plugin: VIEWS.plugins,
  ServiceInput: inputSchema('services', true),
  ServicePatch: inputSchema('services', false),
  RouteInput: inputSchema('routes', true),
  RoutePatch: inputSchema('routes', false),
  ConsumerInput: inputSchema('consumers', true),
  ConsumerPatch: inputSchema('consumers', false),
  PluginInput: inputSchema('plugins', true),
  PluginPatch: inputSchema('plugins', false),
  EventHook: EVENT_HOOK_VIEW,
  EventHookInput: hookInput(EVENT_HOOK_SCHEMA),
  EventHookPatch: hookInput(EVENT_HOOK_PATCH_SCHEMA),
  WebhookConfig: stripIds(HANDLER_CONFIG_SCHEMAS.webhook) as Schema,
  WebhookCustomConfig: stripIds(HANDLER_CONFIG_SCHEMAS['webhook-custom']) as Schema,
  LogConfig: stripIds(HANDLER_CONFIG_SCHEMAS.log) as Schema,
  EventSpec: EVENT_SPEC,
  Attempt: ATTEMPT,
  Delivery: DELIVERY,
  IngestResult: INGEST_RESULT,
  TestResult: TEST_RESULT,
};

const json = (description: string, schema?: Schema): ApiResponseDoc => ({ description, ...(schema ? { schema } : {}) });
const NOT_FOUND_DOC = json('Not found: {"message":"Not found"}', ref('Error'));
const BAD_REQUEST_DOC = json('The body or a query parameter is invalid; every problem names its field', ref('SchemaViolation'));
const UNSUPPORTED_DOC = json('The body is not JSON (application/json)', ref('Error'));
const TOO_LARGE_DOC = json('The body is too large', ref('Error'));
const UNAVAILABLE_DOC = json('hookwire is shutting down', ref('Error'));

const SIZE_QUERY = { name: 'size', description: 'items per page, 1-1000 (default 100)', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } };
/** The stored states a delivery list can be filtered by. */
const DELIVERY_STATES = ['pending', 'succeeded', 'failed', 'dropped'] as const;
const STATE_QUERY = { name: 'state', description: 'only deliveries in this state (pending includes those in flight)', schema: { type: 'string', enum: [...DELIVERY_STATES] } };
const OFFSET_QUERY = { name: 'offset', description: 'the `offset` of the previous page', schema: { type: 'string' } };

// ---- helpers -------------------------------------------------------------------------------

function hooksOf(ctx: AdminContext): EventHooks {
  if (!ctx.hooks) throw new AdminHttpError(404, { message: 'Not found: event hooks are disabled (event_hooks.enabled is false)' });
  return ctx.hooks;
}

/** The `/{workspace}/event-hooks...` forms name a workspace that must exist (hooks themselves are global, as in Kong). */
function checkWorkspace(ctx: AdminContext, req: ApiRequest): void {
  if (!ctx.gateway.config.workspaces.some((w) => w.name === req.workspace)) throw notFound();
}

function nextLink(req: ApiRequest, path: string, size: number, offset: string | null): { next: string | null; offset?: string } {
  if (offset === null) return { next: null };
  const q = new URLSearchParams({ size: String(size), offset });
  return { next: `${req.prefix}${path}?${q.toString()}`, offset };
}

function hookPageRequest(req: ApiRequest): { size: number; offset: string | null } {
  return { size: pageSize(req.query), offset: req.query.get('offset') };
}

function listReply(req: ApiRequest, path: string, page: HooksPage<unknown>, size: number): ApiReply {
  return { status: 200, body: { data: page.data, ...nextLink(req, path, size, page.offset) } };
}

/**
 * The object body: JSON, or a Kong form body whose strings `formSchema`
 * types (400 for anything else; no body: 400, or `{}` when `optional`).
 */
function objectBody(req: ApiRequest, options: { optional?: boolean; formSchema?: FormSchema } = {}): Promise<Record<string, unknown>> {
  return readObject(req.req, BODY_LIMIT, options);
}

/** Form fields as strings, untyped (free-form data, Kong's `config` text of POST /config). */
const FORM_STRINGS: FormSchema = {};

/** An event hook's fields with the config schema of `handler` (a form body's types depend on it, as Kong's plugin subschemas). */
function hookFormSchema(handler: unknown): CoercionSchema {
  const config = typeof handler === 'string' && Object.hasOwn(HANDLER_CONFIG_SCHEMAS, handler) ? HANDLER_CONFIG_SCHEMAS[handler as HandlerName] : undefined;
  return { type: 'object', properties: { ...(EVENT_HOOK_SCHEMA.properties as Record<string, CoercionSchema>), ...(config ? { config } : {}) } };
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

/** Prometheus text for the event-hooks service's samples. */
export function renderSamples(samples: readonly MetricSample[]): string {
  const lines: string[] = [];
  const described = new Set<string>();
  for (const s of samples) {
    if (!described.has(s.name)) {
      described.add(s.name);
      lines.push(`# HELP ${s.name} ${s.help}`, `# TYPE ${s.name} ${s.type}`);
    }
    const labels = s.labels ? `{${Object.entries(s.labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',')}}` : '';
    lines.push(`${s.name}${labels} ${s.value}`);
  }
  return lines.length ? lines.join('\n') + '\n' : '';
}

// ---- the routes -------------------------------------------------------------------------------

const ENTITY_DOCS: Record<EntityKind, { one: string; key: string; title: string; keyDoc: string }> = {
  services: { one: 'Service', key: 'service', title: 'services', keyDoc: 'the service id or name' },
  routes: { one: 'Route', key: 'route', title: 'routes', keyDoc: 'the route id or name' },
  consumers: { one: 'Consumer', key: 'consumer', title: 'consumers', keyDoc: 'the consumer id or username' },
  plugins: { one: 'Plugin', key: 'plugin', title: 'plugins', keyDoc: 'the plugin id or name' },
};

const LIVE =
  'The change is applied to the serving configuration: it is validated as a whole, the gateway reloads it (plugins are started before they ' +
  'take traffic; a plugin that refuses its configuration answers 400 and the previous configuration keeps serving), then crud events are ' +
  'emitted (crud/<entity>, crud/<entity>:<operation>, dao:crud/<operation>). With a store (storage.kind sqlite, the default) the change is ' +
  'stored before it is acknowledged; DB-less (storage.kind off) entity writes answer 405.';

/** What types a form body of `kind` (plugins: with the plugin's configuration schema). */
function entityFormSchema(ctx: AdminContext, kind: EntityKind): FormSchema {
  return kind === 'plugins' ? (fields) => pluginFormSchema(fields, ctx.gateway.config) : inputSchema(kind, false);
}

function entityRoutes(kind: EntityKind): ApiRoute[] {
  const d = ENTITY_DOCS[kind];
  const collection = `/${kind}`;
  const item = `/${kind}/{${d.key}}`;
  const tags = [d.title];
  const keyParam = { [d.key]: d.keyDoc };
  const entity = ref(d.one);
  const writeErrors = { 400: BAD_REQUEST_DOC, 413: TOO_LARGE_DOC, 415: UNSUPPORTED_DOC, 503: UNAVAILABLE_DOC };
  const pluginNote =
    kind === 'plugins'
      ? ' A plugin is attached to a route or a service with `route` / `service`, else to the workspace of the path (`scope: "global"`: every workspace). The unprefixed paths and `/{workspace}/plugins` list global plugins too.'
      : '';
  return [
    {
      method: 'GET',
      path: collection,
      operationId: `list${d.one}s`,
      summary: `List ${d.title}`,
      description: `The ${d.title} of the workspace (unprefixed: "default"), in configuration order, paginated.${pluginNote}`,
      tags,
      query: [SIZE_QUERY, OFFSET_QUERY],
      responses: { 200: json(`A page of ${d.title}`, pageSchema(entity)), 400: BAD_REQUEST_DOC, 404: NOT_FOUND_DOC },
      async handle(ctx, req) {
        const page = ctx.entities.list(kind, req.workspace, req.query);
        return { status: 200, body: { data: page.data, ...nextLink(req, collection, pageSize(req.query), page.offset) } };
      },
    },
    {
      method: 'POST',
      path: collection,
      operationId: `create${d.one}`,
      summary: `Create a ${d.key}`,
      description: `${LIVE}${pluginNote}`,
      tags,
      body: { schema: ref(`${d.one}Input`), required: true },
      responses: { 201: json(`The ${d.key}`, entity), ...writeErrors, 404: NOT_FOUND_DOC, 409: json('The name is taken', ref('SchemaViolation')) },
      async handle(ctx, req) {
        return { status: 201, body: await ctx.entities.create(kind, req.workspace, await objectBody(req, { formSchema: entityFormSchema(ctx, kind) })) };
      },
    },
    {
      method: 'GET',
      path: item,
      operationId: `get${d.one}`,
      summary: `Get a ${d.key}`,
      tags,
      params: keyParam,
      responses: { 200: json(`The ${d.key}`, entity), 404: NOT_FOUND_DOC },
      async handle(ctx, req) {
        return { status: 200, body: ctx.entities.get(kind, req.workspace, req.params[d.key]!) };
      },
    },
    {
      method: 'PATCH',
      path: item,
      operationId: `update${d.one}`,
      summary: `Update a ${d.key}`,
      description: `Only the fields given change. Renaming changes the id (ids are derived from workspace and name).${kind === 'services' ? ' Routes follow a renamed service.' : ''} ${LIVE}`,
      tags,
      params: keyParam,
      body: { schema: ref(`${d.one}Patch`), required: true },
      responses: { 200: json(`The ${d.key}`, entity), ...writeErrors, 404: NOT_FOUND_DOC, 409: json('The name is taken', ref('SchemaViolation')) },
      async handle(ctx, req) {
        return { status: 200, body: await ctx.entities.update(kind, req.workspace, req.params[d.key]!, await objectBody(req, { formSchema: entityFormSchema(ctx, kind) })) };
      },
    },
    {
      method: 'PUT',
      path: item,
      operationId: `upsert${d.one}`,
      summary: `Create or replace a ${d.key}`,
      description: `Kong's upsert: replaces the ${d.key} named by the path, or creates it (named by the path, or with the name whose id the path gives). ${LIVE}`,
      tags,
      params: keyParam,
      body: { schema: ref(`${d.one}Patch`), required: true },
      responses: { 200: json(`The ${d.key}`, entity), ...writeErrors, 404: NOT_FOUND_DOC, 409: json('The name is taken', ref('SchemaViolation')) },
      async handle(ctx, req) {
        const { view } = await ctx.entities.upsert(kind, req.workspace, req.params[d.key]!, await objectBody(req, { formSchema: entityFormSchema(ctx, kind) }));
        return { status: 200, body: view };
      },
    },
    {
      method: 'DELETE',
      path: item,
      operationId: `delete${d.one}`,
      summary: `Delete a ${d.key}`,
      description:
        (kind === 'services'
          ? 'Refused (400 foreign key violation) while routes use the service. The plugins attached to it go with it. '
          : kind === 'routes'
            ? 'The plugins attached to it go with it. '
            : '') + LIVE,
      tags,
      params: keyParam,
      responses: { 204: { description: 'Deleted' }, 400: json('Still referenced', ref('SchemaViolation')), 404: NOT_FOUND_DOC, 503: UNAVAILABLE_DOC },
      async handle(ctx, req) {
        await ctx.entities.remove(kind, req.workspace, req.params[d.key]!);
        return { status: 204 };
      },
    },
  ];
}

function eventHookRoutes(): ApiRoute[] {
  const tags = ['event-hooks'];
  const id = { id: 'the event hook id' };
  return [
    {
      method: 'GET',
      path: '/event-hooks',
      operationId: 'listEventHooks',
      summary: 'List event hooks',
      description: 'In creation order, paginated. Event hooks are global (not workspaced, as in Kong); the `/{workspace}/event-hooks` forms show the same hooks.',
      tags,
      query: [SIZE_QUERY, OFFSET_QUERY],
      responses: { 200: json('A page of event hooks', pageSchema(ref('EventHook'))), 400: BAD_REQUEST_DOC, 404: NOT_FOUND_DOC },
      async handle(ctx, req) {
        const p = hookPageRequest(req);
        return listReply(req, '/event-hooks', await hooksOf(ctx).listHooks(p), p.size);
      },
    },
    {
      method: 'POST',
      path: '/event-hooks',
      operationId: 'createEventHook',
      summary: 'Create an event hook',
      description: 'Hooks fire on events of `source` (and `event`; null: every event of the source). Stored in the event-hooks store, so they survive restarts.',
      tags,
      body: { schema: ref('EventHookInput'), required: true },
      responses: { 201: json('The event hook', ref('EventHook')), 400: BAD_REQUEST_DOC, 404: NOT_FOUND_DOC, 413: TOO_LARGE_DOC, 415: UNSUPPORTED_DOC, 503: UNAVAILABLE_DOC },
      async handle(ctx, req) {
        const hooks = hooksOf(ctx);
        return { status: 201, body: await hooks.createHook(await objectBody(req, { formSchema: (f) => hookFormSchema(f.handler) })) };
      },
    },
    {
      method: 'GET',
      path: '/event-hooks/sources',
      operationId: 'listEventSources',
      summary: 'List event sources',
      description: 'Built-in sources (crud, dao:crud, wasm) and the ones plugins published: `{"data": {source: {event: {fields, unique?, description?}}}}`.',
      tags,
      responses: {
        200: json('Every source and its events', { type: 'object', required: ['data'], properties: { data: { type: 'object', additionalProperties: { type: 'object', additionalProperties: ref('EventSpec') } } } }),
        404: NOT_FOUND_DOC,
      },
      async handle(ctx) {
        return { status: 200, body: { data: hooksOf(ctx).sources() } };
      },
    },
    {
      method: 'GET',
      path: '/event-hooks/sources/{source}',
      operationId: 'getEventSource',
      summary: "List one source's events",
      tags,
      params: { source: 'the source name (e.g. crud, wasm, http-log)' },
      responses: {
        200: json('Its events', { type: 'object', required: ['data'], properties: { data: { type: 'object', additionalProperties: ref('EventSpec') } } }),
        404: NOT_FOUND_DOC,
      },
      async handle(ctx, req) {
        return { status: 200, body: { data: hooksOf(ctx).source(req.params.source!) } };
      },
    },
    {
      method: 'GET',
      path: '/event-hooks/sources/{source}/{event}',
      operationId: 'getEventSourceEvent',
      summary: 'Get one event of a source',
      tags,
      params: { source: 'the source name', event: 'the event name' },
      responses: { 200: json('The event', { type: 'object', required: ['data'], properties: { data: ref('EventSpec') } }), 404: NOT_FOUND_DOC },
      async handle(ctx, req) {
        return { status: 200, body: { data: hooksOf(ctx).sourceEvent(req.params.source!, req.params.event!) } };
      },
    },
    {
      method: 'GET',
      path: '/event-hooks/{id}',
      operationId: 'getEventHook',
      summary: 'Get an event hook',
      tags,
      params: id,
      responses: { 200: json('The event hook', ref('EventHook')), 404: NOT_FOUND_DOC },
      async handle(ctx, req) {
        return { status: 200, body: await hooksOf(ctx).getHook(req.params.id!) };
      },
    },
    {
      method: 'PATCH',
      path: '/event-hooks/{id}',
      operationId: 'updateEventHook',
      summary: 'Update an event hook',
      description: "Fields given replace the hook's; `config` is merged into the current one unless the handler changes.",
      tags,
      params: id,
      body: { schema: ref('EventHookPatch'), required: true },
      responses: { 200: json('The event hook', ref('EventHook')), 400: BAD_REQUEST_DOC, 404: NOT_FOUND_DOC, 413: TOO_LARGE_DOC, 415: UNSUPPORTED_DOC, 503: UNAVAILABLE_DOC },
      async handle(ctx, req) {
        const hooks = hooksOf(ctx);
        // A PATCH names the handler only to change it: else the hook's own handler types the config.
        const formSchema: FormSchema = async (f) => hookFormSchema(f.handler ?? (await hooks.getHook(req.params.id!).catch(() => null))?.handler);
        return { status: 200, body: await hooks.updateHook(req.params.id!, await objectBody(req, { formSchema })) };
      },
    },
    {
      method: 'DELETE',
      path: '/event-hooks/{id}',
      operationId: 'deleteEventHook',
      summary: 'Delete an event hook',
      description: 'Its deliveries and attempts go with it.',
      tags,
      params: id,
      responses: { 204: { description: 'Deleted' }, 404: NOT_FOUND_DOC, 503: UNAVAILABLE_DOC },
      async handle(ctx, req) {
        await hooksOf(ctx).deleteHook(req.params.id!);
        return { status: 204 };
      },
    },
    {
      method: 'POST',
      path: '/event-hooks/{id}/test',
      operationId: 'testEventHook',
      summary: "Run an event hook's handler now",
      description:
        "Kong's test: the handler runs synchronously on the posted data (a JSON object; no body: {}), bypassing on_change, snooze and the outbox; nothing is stored. The SSRF guard and signing apply. 400 when the request was refused before sending, 502 when no answer came.",
      tags,
      params: id,
      body: { schema: { type: 'object', description: 'the event data' }, required: false },
      responses: {
        200: json('{data, result}', ref('TestResult')),
        400: json('Refused (SSRF guard, invalid URL) or the body is not an object', ref('Error')),
        404: NOT_FOUND_DOC,
        502: json('The endpoint could not be reached', ref('Error')),
        503: UNAVAILABLE_DOC,
      },
      async handle(ctx, req) {
        const hooks = hooksOf(ctx);
        return { status: 200, body: await hooks.test(req.params.id!, await objectBody(req, { optional: true, formSchema: FORM_STRINGS })) };
      },
    },
    {
      method: 'GET',
      path: '/event-hooks/{id}/ping',
      operationId: 'pingEventHook',
      summary: 'Send a ping to a webhook hook',
      description: "Kong's ping: `{\"source\":\"kong:event_hooks\",\"event\":\"ping\",\"event_hooks\":<hook>}` (secrets redacted), signed, sent now. 200 with an empty body on a 2xx answer; 400 otherwise (and for handlers without ping).",
      tags,
      params: id,
      responses: { 200: { description: 'The endpoint answered 2xx (empty body)' }, 400: json('The ping failed, or the handler has no ping', ref('Error')), 404: NOT_FOUND_DOC, 503: UNAVAILABLE_DOC },
      async handle(ctx, req) {
        const hooks = hooksOf(ctx);
        try {
          await hooks.ping(req.params.id!);
        } catch (err) {
          if (err instanceof WebhookRequestError) {
            throw new AdminHttpError(400, { message: err.message, reason: err.reason, ...(err.status !== null ? { status: err.status } : {}) });
          }
          if (err instanceof EventHookValidationError) throw new AdminHttpError(400, { message: err.issues.map((i) => i.message).join('; ') });
          throw err;
        }
        return { status: 200, text: '', contentType: 'text/plain; charset=utf-8' };
      },
    },
    {
      method: 'GET',
      path: '/event-hooks/deliveries',
      operationId: 'listDeliveries',
      summary: "List every hook's deliveries",
      description:
        'Across hooks, newest first, each with its attempts and `hook_id` (within event_hooks.retention_ms); `state` keeps one state (pending includes deliveries in flight, shown as delivering).',
      tags,
      query: [SIZE_QUERY, OFFSET_QUERY, STATE_QUERY],
      responses: { 200: json('A page of deliveries', pageSchema(ref('Delivery'))), 400: BAD_REQUEST_DOC, 404: NOT_FOUND_DOC },
      async handle(ctx, req) {
        const p = hookPageRequest(req);
        const state = req.query.get('state');
        if (state !== null && !(DELIVERY_STATES as readonly string[]).includes(state)) {
          throw schemaViolation([{ path: '/state', message: `must be one of ${DELIVERY_STATES.join(', ')} (found ${JSON.stringify(state)})` }]);
        }
        const page = await hooksOf(ctx).allDeliveries(p, state as StoredDeliveryState | null);
        const reply = listReply(req, '/event-hooks/deliveries', page, p.size);
        // The next page keeps the filter.
        const body = reply.body as { next: string | null };
        if (state !== null && body.next !== null) body.next += `&state=${state}`;
        return reply;
      },
    },
    {
      method: 'GET',
      path: '/event-hooks/{id}/deliveries',
      operationId: 'listEventHookDeliveries',
      summary: "List an event hook's deliveries",
      description: 'Newest first, each with its attempts (within event_hooks.retention_ms).',
      tags,
      params: id,
      query: [SIZE_QUERY, OFFSET_QUERY],
      responses: { 200: json('A page of deliveries', pageSchema(ref('Delivery'))), 400: BAD_REQUEST_DOC, 404: NOT_FOUND_DOC },
      async handle(ctx, req) {
        const p = hookPageRequest(req);
        const id = req.params.id!;
        return listReply(req, `/event-hooks/${encodeURIComponent(id)}/deliveries`, await hooksOf(ctx).deliveries(id, p), p.size);
      },
    },
    {
      method: 'GET',
      path: '/event-hooks/{id}/deliveries/{delivery_id}',
      operationId: 'getEventHookDelivery',
      summary: 'Get one delivery with its attempts',
      tags,
      params: { ...id, delivery_id: 'the delivery id (msg_...), also its webhook-id' },
      responses: { 200: json('The delivery', ref('Delivery')), 404: NOT_FOUND_DOC },
      async handle(ctx, req) {
        return { status: 200, body: await hooksOf(ctx).delivery(req.params.id!, req.params.delivery_id!) };
      },
    },
    {
      method: 'POST',
      path: '/event-hooks/{id}/deliveries/{delivery_id}/retry',
      operationId: 'retryEventHookDelivery',
      summary: 'Deliver again now',
      description: 'Same webhook-id. A failed or succeeded delivery gets a fresh retry cycle; a pending one skips its wait; one in flight is left alone. 400 when the hook is disabled.',
      tags,
      params: { ...id, delivery_id: 'the delivery id (msg_...)' },
      responses: { 200: json('The delivery', ref('Delivery')), 400: BAD_REQUEST_DOC, 404: NOT_FOUND_DOC, 503: UNAVAILABLE_DOC },
      async handle(ctx, req) {
        return { status: 200, body: await hooksOf(ctx).retryDelivery(req.params.id!, req.params.delivery_id!) };
      },
    },
  ];
}

const INGEST: ApiRoute = {
  method: 'POST',
  path: '/event-hooks/ingest',
  operationId: 'ingestEvents',
  summary: 'Ingest plugin event records (the Envoy forwarder)',
  description:
    'A JSON array of wire records (docs/event-wire-format.md: publish and emit, v1), at most `event_hooks.ingest_max_events` of them. Authenticated by `event_hooks.ingest_token` only (not the admin token). 200 once the batch is stored, even when some records were refused (they are counted and listed); 5xx when it could not be stored, so the forwarder retries.',
  tags: ['event-hooks'],
  public: true,
  security: 'ingest',
  body: { schema: { type: 'array', items: { type: 'object' } }, required: true },
  responses: {
    200: json('Stored; counts and the refused records', ref('IngestResult')),
    400: json('The body is not a JSON array', ref('Error')),
    401: json('Missing or wrong bearer token', ref('Error')),
    404: json('Ingest is disabled (no event_hooks.ingest_token, or event hooks disabled)', ref('Error')),
    413: json('The body is larger than event_hooks.ingest_body_limit, or has more than event_hooks.ingest_max_events records', ref('Error')),
    503: json('The batch could not be stored (retry)', ref('IngestResult')),
  },
  async handle(ctx, req) {
    const token = ctx.eventHooks.ingest_token;
    if (!ctx.hooks || token === null) throw notFound();
    if (!tokenMatches(bearerToken(req.req), token)) {
      req.req.resume();
      throw new AdminHttpError(401, { message: 'Unauthorized: send the ingest token (Authorization: Bearer <token>)' }, { 'www-authenticate': 'Bearer' });
    }
    // Split as it arrives, never parsed or concatenated whole: a large batch must not hold the event loop (and the proxy) for long.
    const batch = await readRecordArray(req.req, ctx.eventHooks.ingest_body_limit, ctx.eventHooks.ingest_max_events);
    if (!batch.ok && batch.error === 'too_many') {
      // Closing stops the read: the rest of a large batch is not worth the event loop's time.
      throw new AdminHttpError(413, `The batch has more than ${batch.max} records (event_hooks.ingest_max_events): send at most ${batch.max} per request`, { connection: 'close' });
    }
    if (!batch.ok) throw new AdminHttpError(400, batch.reason);
    const records = batch.records;
    if (ctx.hooks.closed) throw new AdminHttpError(503, { message: 'event hooks service is closed' }, { 'retry-after': '1' });
    const result = await ctx.hooks.ingest(records);
    // ingest() never throws; `stored: false` (store failure, service closing) means retry, so nothing is lost.
    if (!result.stored) return { status: 503, body: result, headers: { 'retry-after': '1' } };
    return { status: 200, body: result };
  },
};

function operationalRoutes(): ApiRoute[] {
  return [
    {
      method: 'GET',
      path: '/metrics',
      operationId: 'getMetrics',
      summary: 'Prometheus metrics',
      description: "The gateway's, the plugins' own and the event-hooks service's metrics (text format 0.0.4).",
      tags: ['operations'],
      responses: { 200: { description: 'Prometheus text', contentType: 'text/plain; version=0.0.4', schema: { type: 'string' } } },
      async handle(ctx) {
        let text = ctx.gateway.metricsText();
        if (ctx.hooks && !ctx.hooks.closed) {
          try {
            text += renderSamples(await ctx.hooks.metrics());
          } catch (err) {
            ctx.logger.warn({ err }, 'event hooks metrics unavailable');
          }
        }
        if (ctx.workers) text = await ctx.workers.metrics(text);
        return { status: 200, text, contentType: 'text/plain; version=0.0.4; charset=utf-8' };
      },
    },
    {
      method: 'GET',
      path: '/status',
      operationId: 'getStatus',
      summary: 'Gateway status',
      tags: ['operations'],
      responses: { 200: json('generation, listeners, routes, services, plugins and their health, event hooks', { type: 'object' }) },
      async handle(ctx) {
        const status = ctx.gateway.status();
        const hooks = ctx.hooks;
        const body = {
          ...status,
          listeners: { ...status.listeners, admin: ctx.admin.info },
          event_hooks: {
            enabled: hooks !== null,
            store: ctx.eventHooks.store,
            ingest: ctx.eventHooks.ingest_token !== null,
            ...(hooks ? { in_flight: hooks.stats().inFlight, circuits: hooks.circuits() } : {}),
          },
        };
        return { status: 200, body: ctx.workers ? await ctx.workers.status(body) : body };
      },
    },
    {
      method: 'GET',
      path: '/config',
      operationId: 'getConfig',
      summary: 'The current declarative configuration',
      description:
        'The document the gateway serves, Admin API changes included (with a store they are kept there; DB-less, save this to keep them). JSON by default; YAML with `?format=yaml` or `Accept: application/yaml`. Paths are absolute; tokens are included.',
      tags: ['operations'],
      query: [{ name: 'format', description: 'json (default) or yaml', schema: { type: 'string', enum: ['json', 'yaml'] } }],
      responses: {
        200: { description: 'The document', schema: { type: 'object' }, alternatives: { 'application/yaml': { type: 'string' } } },
        400: BAD_REQUEST_DOC,
      },
      async handle(ctx, req) {
        const format = req.query.get('format');
        if (format !== null && format !== 'json' && format !== 'yaml') {
          throw schemaViolation([{ path: '/format', message: `must be one of json, yaml (found ${JSON.stringify(format)})` }]);
        }
        const doc = compactDocument(toDocument(ctx.gateway.config));
        const accept = req.req.headers.accept ?? '';
        if (format === 'yaml' || (format === null && /\b(application|text)\/(x-)?yaml\b/.test(accept))) {
          return { status: 200, text: toYaml(doc, { lineWidth: 0 }), contentType: 'application/yaml; charset=utf-8' };
        }
        return { status: 200, body: doc };
      },
    },
    {
      method: 'POST',
      path: '/config',
      operationId: 'replaceConfig',
      summary: "Replace every entity (DB-less only, as Kong's POST /config)",
      description:
        'With `storage.kind: off`, the body\'s entities (`plugins`, `services`, `routes`, `consumers`, `workspaces`) replace the served ones; the node settings stay the file\'s. The body is the document itself, or `{"config": "<YAML or JSON text>"}`. Validated like the file (400 naming the field); a plugin that refuses its configuration keeps the old one serving. With a store, 400: entities change through the entity endpoints.',
      tags: ['operations'],
      body: { schema: { type: 'object' }, required: true },
      responses: {
        201: json('The document now served (compact form)', { type: 'object' }),
        400: BAD_REQUEST_DOC,
        413: TOO_LARGE_DOC,
        415: UNSUPPORTED_DOC,
        503: UNAVAILABLE_DOC,
      },
      async handle(ctx, req) {
        return { status: 201, body: await ctx.entities.replaceEntities(await objectBody(req, { formSchema: FORM_STRINGS })) };
      },
    },
    {
      method: 'GET',
      path: '/openapi.json',
      operationId: 'getOpenApi',
      summary: 'This API, as OpenAPI 3.1',
      tags: ['operations'],
      responses: { 200: json('The OpenAPI document (docs/openapi.json)', { type: 'object' }) },
      async handle() {
        const { openApiDocument } = await import('./openapi.js');
        return { status: 200, body: openApiDocument() };
      },
    },
  ];
}

/**
 * Kong's nested endpoints: `/services/{service}/routes`,
 * `/services/{service}/plugins` and `/routes/{route}/plugins` list the
 * entities attached to the parent and create them attached to it (the
 * path's parent wins over a `service` / `route` in the body).
 */
function nestedRoutes(parent: 'services' | 'routes', kind: 'routes' | 'plugins'): ApiRoute[] {
  const p = ENTITY_DOCS[parent];
  const d = ENTITY_DOCS[kind];
  const ref1 = parent === 'services' ? 'service' : 'route';
  const collection = `/${parent}/{${p.key}}/${kind}`;
  const tags = [d.title];
  const params = { [p.key]: p.keyDoc };
  const attached = (owner: View) => (v: View) => {
    const r = v[ref1] as { id?: string } | null | undefined;
    return r?.id === owner.id;
  };
  return [
    {
      method: 'GET',
      path: collection,
      operationId: `list${d.one}sOf${p.one}`,
      summary: `List the ${d.title} of a ${p.key}`,
      tags,
      params,
      query: [SIZE_QUERY, OFFSET_QUERY],
      responses: { 200: json(`A page of ${d.title}`, pageSchema(ref(d.one))), 400: BAD_REQUEST_DOC, 404: NOT_FOUND_DOC },
      async handle(ctx, req) {
        const owner = ctx.entities.get(parent, req.workspace, req.params[p.key]!);
        const page = ctx.entities.list(kind, req.workspace, req.query, attached(owner));
        return { status: 200, body: { data: page.data, ...nextLink(req, collection.replace(`{${p.key}}`, encodeURIComponent(req.params[p.key]!)), pageSize(req.query), page.offset) } };
      },
    },
    {
      method: 'POST',
      path: collection,
      operationId: `create${d.one}Of${p.one}`,
      summary: `Create a ${d.key} attached to a ${p.key}`,
      description: `As POST /${kind}, with \`${ref1}\` set to the ${p.key} of the path.`,
      tags,
      params,
      body: { schema: ref(`${d.one}Input`), required: true },
      responses: {
        201: json(`The ${d.key}`, ref(d.one)),
        400: BAD_REQUEST_DOC,
        404: NOT_FOUND_DOC,
        409: json('The name is taken', ref('SchemaViolation')),
        413: TOO_LARGE_DOC,
        415: UNSUPPORTED_DOC,
        503: UNAVAILABLE_DOC,
      },
      async handle(ctx, req) {
        const body = await objectBody(req, { formSchema: entityFormSchema(ctx, kind) });
        const owner = ctx.entities.get(parent, req.workspace, req.params[p.key]!);
        body[ref1] = { id: owner.id as string };
        return { status: 201, body: await ctx.entities.create(kind, req.workspace, body) };
      },
    },
  ];
}

/** The `/{workspace}` form of a route. */
function inWorkspace(r: ApiRoute): ApiRoute {
  return {
    ...r,
    path: `/{workspace}${r.path}`,
    operationId: `${r.operationId}InWorkspace`,
    params: { workspace: 'the workspace name', ...r.params },
  };
}

function withWorkspaceCheck(r: ApiRoute): ApiRoute {
  const handle = r.handle;
  return {
    ...r,
    async handle(ctx, req) {
      checkWorkspace(ctx, req);
      return handle(ctx, req);
    },
  };
}

/** Every route of the Admin API, in documentation order. */
export function adminRoutes(): ApiRoute[] {
  const entities = [
    ...(['services', 'routes', 'consumers', 'plugins'] as const).flatMap(entityRoutes),
    ...nestedRoutes('services', 'routes'),
    ...nestedRoutes('services', 'plugins'),
    ...nestedRoutes('routes', 'plugins'),
  ];
  const hooks = eventHookRoutes();
  return [
    ...hooks,
    INGEST,
    ...hooks.map((r) => withWorkspaceCheck(inWorkspace(r))),
    ...entities,
    VALIDATE_PLUGIN_ROUTE,
    ...entities.map(inWorkspace),
    ...operationalRoutes(),
  ];
}

function send(res: ServerResponse, reply: ApiReply, head: boolean): void {
  const headers: Record<string, string | number> = { ...reply.headers };
  let payload: Buffer | null = null;
  if (reply.text !== undefined) {
    payload = Buffer.from(reply.text, 'utf8');
    headers['content-type'] = reply.contentType ?? 'text/plain; charset=utf-8';
  } else if (reply.body !== undefined) {
    payload = Buffer.from(JSON.stringify(reply.body, null, 2) + '\n', 'utf8');
    headers['content-type'] = 'application/json; charset=utf-8';
  }
  if (payload !== null) headers['content-length'] = payload.length;
  res.writeHead(reply.status, headers);
  res.end(head || payload === null ? undefined : payload);
}

/** Registers every Admin API route on `admin`. */
export function registerAdminApi(admin: AdminServer, ctx: AdminContext, routes: readonly ApiRoute[] = adminRoutes()): void {
  for (const r of routes) {
    admin.route(
      r.method,
      r.path,
      async (req, res, url, params) => {
        const workspace = params.workspace ?? DEFAULT_WORKSPACE;
        const api: ApiRequest = {
          req,
          url,
          params,
          query: url.searchParams,
          workspace,
          prefix: params.workspace !== undefined ? `/${encodeURIComponent(params.workspace)}` : '',
        };
        const reply = await r.handle(ctx, api);
        send(res, reply, req.method === 'HEAD');
      },
      { public: r.public ?? false },
    );
  }
}
