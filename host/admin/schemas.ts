/**
 * JSON Schemas of the Admin API's bodies and answers. The configuration
 * entities (services, routes, consumers, plugins) take their field
 * definitions from the configuration schema (host/config/schema.ts), so the
 * Admin API and the YAML file accept exactly the same values; event hooks
 * take theirs from host/hooks/schemas.ts. The validators are compiled once
 * (ajv, additionalProperties false everywhere); the same objects are the
 * components of the OpenAPI document (host/admin/openapi.ts).
 */
import { Ajv, type ValidateFunction } from 'ajv';
import { issuesFromAjv } from '../config/issues.js';
import { CONFIG_SCHEMA } from '../config/schema.js';
import type { ConfigIssue } from '../errors.js';

const defs = CONFIG_SCHEMA.definitions;

type Schema = Record<string, unknown>;

/** Drops keys (e.g. nested `plugins`, which the Admin API manages through /plugins). */
function without<T extends Record<string, unknown>>(props: T, ...keys: string[]): Schema {
  return Object.fromEntries(Object.entries(props).filter(([k]) => !keys.includes(k)));
}

const UUID = { type: 'string', pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$', description: 'a UUID' };

/** Echoed by clients that send back what they read: checked for consistency, otherwise ignored. */
const ECHOED = {
  id: { ...UUID, description: 'read-only: ids are derived from the workspace, the entity type and the name' },
  workspace: { type: ['string', 'null'], description: 'read-only: the workspace of the path' },
};

/** A reference to another entity: its id or name, as a string or as `{id}` / `{name}` (Kong's form). */
function reference(nullable: boolean): Schema {
  return {
    type: nullable ? ['string', 'object', 'null'] : ['string', 'object'],
    minLength: 1,
    additionalProperties: false,
    minProperties: 1,
    maxProperties: 1,
    properties: { id: { type: 'string', minLength: 1 }, name: { type: 'string', minLength: 1 } },
    description: 'an id or a name, or {"id": ...} / {"name": ...}',
  };
}

export const SERVICE_INPUT = {
  type: 'object',
  additionalProperties: false,
  properties: { ...ECHOED, ...without(defs.service.properties, 'plugins') },
} as const;

export const ROUTE_INPUT = {
  type: 'object',
  additionalProperties: false,
  properties: { ...ECHOED, ...without(defs.route.properties, 'plugins', 'service'), service: reference(false) },
} as const;

export const CONSUMER_INPUT = {
  type: 'object',
  additionalProperties: false,
  properties: { ...ECHOED, ...defs.consumer.properties },
} as const;

export const PLUGIN_SCOPES = ['global', 'workspace', 'service', 'route'] as const;

export const PLUGIN_INPUT = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ...ECHOED,
    ...defs.plugin.properties,
    scope: {
      type: 'string',
      enum: PLUGIN_SCOPES,
      description: 'global: every route of every workspace; workspace: every route of the workspace; service / route: with `service` / `route`',
    },
    service: reference(true),
    route: reference(true),
    config: { description: "Kong's name for `configuration` (give one of the two)" },
    instance_name: { type: 'string', minLength: 1, description: 'Kong 3.x: with `name` naming the plugin type (no `wasm`), the name of this instance' },
  },
} as const;

/** What POST (and PUT, after the key of the path filled the name) requires. */
export const REQUIRED: Record<EntityKind, readonly string[]> = {
  services: ['name'],
  routes: ['name', 'service'],
  consumers: ['username'],
  plugins: ['name', 'wasm'],
};

export type EntityKind = 'services' | 'routes' | 'consumers' | 'plugins';

const INPUTS: Record<EntityKind, Schema> = {
  services: SERVICE_INPUT,
  routes: ROUTE_INPUT,
  consumers: CONSUMER_INPUT,
  plugins: PLUGIN_INPUT,
};

const REF_VIEW = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'name'],
  properties: { id: UUID, name: { type: 'string' } },
};

/** Answers (what GET returns for each entity). */
export const VIEWS: Record<EntityKind, Schema> = {
  services: {
    type: 'object',
    additionalProperties: false,
    required: ['id', 'name', 'workspace', 'urls', 'connect_timeout_ms', 'read_timeout_ms', 'pool_size', 'http2', 'ca_file'],
    properties: {
      id: UUID,
      name: { type: 'string' },
      workspace: { type: 'string' },
      urls: { type: 'array', items: { type: 'string' } },
      connect_timeout_ms: { type: 'integer' },
      read_timeout_ms: { type: 'integer' },
      pool_size: { type: 'integer' },
      http2: { type: 'boolean' },
      ca_file: { type: ['string', 'null'], description: 'absolute path (relative ones are resolved against the configuration file)' },
    },
  },
  routes: {
    type: 'object',
    additionalProperties: false,
    required: ['id', 'name', 'workspace', 'service', 'hosts', 'paths', 'methods', 'strip_path'],
    properties: {
      id: UUID,
      name: { type: 'string' },
      workspace: { type: 'string' },
      service: REF_VIEW,
      hosts: { type: 'array', items: { type: 'string' } },
      paths: { type: 'array', items: { type: 'string' } },
      methods: { type: 'array', items: { type: 'string' } },
      strip_path: { type: 'boolean' },
    },
  },
  consumers: {
    type: 'object',
    additionalProperties: false,
    required: ['id', 'username', 'custom_id', 'workspace'],
    properties: { id: UUID, username: { type: 'string' }, custom_id: { type: ['string', 'null'] }, workspace: { type: 'string' } },
  },
  plugins: {
    type: 'object',
    additionalProperties: false,
    required: ['id', 'name', 'scope', 'workspace', 'service', 'route', 'wasm', 'root_id', 'vm_id', 'configuration', 'vm_configuration'],
    properties: {
      id: UUID,
      name: { type: 'string' },
      scope: { type: 'string', enum: PLUGIN_SCOPES },
      workspace: { type: ['string', 'null'] },
      service: { oneOf: [REF_VIEW, { type: 'null' }] },
      route: { oneOf: [REF_VIEW, { type: 'null' }] },
      wasm: { type: 'string', description: 'absolute path of the .wasm file' },
      root_id: { type: 'string' },
      vm_id: { type: 'string' },
      configuration: { description: 'what on_configure receives: JSON text shown as its value, other text as a string, empty as null' },
      vm_configuration: { description: 'what on_vm_start receives, shown as configuration is' },
      failure_policy: { type: 'string' },
      allow_unknown_imports: { type: 'boolean' },
      enabled: { type: 'boolean' },
      limits: { type: 'object', description: "the plugin's own call_deadline_ms, start_deadline_ms, max_memory_mb (null: the wasm section's)" },
    },
  },
};

const ajv = new Ajv({ allErrors: true, verbose: true, strict: true, allowUnionTypes: true });

const compiled = new Map<string, ValidateFunction>();

function validator(kind: EntityKind, required: boolean): ValidateFunction {
  const key = `${kind}:${required}`;
  let v = compiled.get(key);
  if (!v) {
    v = ajv.compile(required ? { ...INPUTS[kind], required: [...REQUIRED[kind]] } : INPUTS[kind]);
    compiled.set(key, v);
  }
  return v;
}

/** Problems of a body for `kind` (POST/PUT: `required` true; PATCH: false), each with its path. */
export function entityIssues(kind: EntityKind, body: unknown, required: boolean): ConfigIssue[] {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return [{ path: '', message: 'the body must be a JSON object' }];
  const v = validator(kind, required);
  return v(body) ? [] : issuesFromAjv(v.errors ?? []);
}

/** The input schema of `kind` as OpenAPI shows it (POST: with `required`). */
export function inputSchema(kind: EntityKind, required: boolean): Schema {
  return required ? { ...INPUTS[kind], required: [...REQUIRED[kind]] } : INPUTS[kind];
}

/** A paginated list answer. */
export function pageSchema(item: Schema): Schema {
  return {
    type: 'object',
    required: ['data', 'next'],
    properties: {
      data: { type: 'array', items: item },
      next: { type: ['string', 'null'], description: 'the path and query of the next page; null on the last page' },
      offset: { type: 'string', description: 'pass back as `offset` for the next page (absent on the last page)' },
    },
  };
}
