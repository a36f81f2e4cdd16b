/**
 * JSON Schemas of the event-hook entity and of each handler's config
 * (additionalProperties: false everywhere), exported for the Admin API, and
 * the validators the service runs on create and update. Rules a schema
 * cannot say (URL shape, header names, secret formats, templates that parse)
 * are checked in code; every problem comes back as a path + reason
 * (EventHookValidationError.issues), all at once.
 */
import { Ajv, type ValidateFunction } from 'ajv';
import { EventHookValidationError, type ConfigIssue } from '../errors.js';
import { issuesFromAjv } from '../config/issues.js';
import { canonicalHookId } from './ids.js';
import { templateError } from './templates.js';
import { HANDLERS, KONG_SIGNATURE_ALGORITHMS, SIGNATURE_MODES, type EventHook, type HandlerName } from './types.js';

/** Longest source / event name (as the wire format). */
const NAME = { type: 'string', minLength: 1, maxLength: 256 } as const;

/**
 * Length limits of a hook's free strings (Kong has none): a URL as the
 * configuration's, a header value as common servers take, a secret generously.
 */
const URL_MAX = 2048; // the configuration's LIMITS.location
const HEADER_VALUE_MAX = 8192;
const SECRET_MAX = 1024;

const SECRET_PROPS = {
  secret: { type: ['string', 'null'], minLength: 1, maxLength: SECRET_MAX, default: null },
  secrets: { type: 'array', items: { type: 'string', minLength: 1, maxLength: SECRET_MAX }, maxItems: 10, default: [] },
  signature: { enum: [...SIGNATURE_MODES], default: 'auto' },
  kong_signature_algorithm: { enum: [...KONG_SIGNATURE_ALGORITHMS], default: 'sha256' },
  ssl_verify: { type: 'boolean', default: true },
} as const;

const HEADERS = { type: 'object', maxProperties: 64, additionalProperties: { type: 'string', maxLength: HEADER_VALUE_MAX }, default: {} } as const;

export const WEBHOOK_CONFIG_SCHEMA = {
  $id: 'hookwire:event-hooks:webhook',
  type: 'object',
  additionalProperties: false,
  required: ['url'],
  properties: {
    url: { type: 'string', minLength: 1, maxLength: URL_MAX },
    headers: HEADERS,
    ...SECRET_PROPS,
  },
} as const;

export const WEBHOOK_CUSTOM_CONFIG_SCHEMA = {
  $id: 'hookwire:event-hooks:webhook-custom',
  type: 'object',
  additionalProperties: false,
  required: ['url', 'method'],
  properties: {
    url: { type: 'string', minLength: 1, maxLength: URL_MAX },
    method: { type: 'string', pattern: '^[A-Z]+$', description: 'an upper-case HTTP method such as POST' },
    payload: { type: ['object', 'null'], additionalProperties: { type: 'string' }, default: null },
    payload_format: { type: 'boolean', default: true },
    body: { type: ['string', 'null'], default: null },
    body_format: { type: 'boolean', default: true },
    headers: HEADERS,
    headers_format: { type: 'boolean', default: false },
    ...SECRET_PROPS,
  },
} as const;

export const LOG_CONFIG_SCHEMA = {
  $id: 'hookwire:event-hooks:log',
  type: 'object',
  additionalProperties: false,
  properties: {},
} as const;

export const WASM_CONFIG_SCHEMA = {
  $id: 'hookwire:event-hooks:wasm',
  type: 'object',
  additionalProperties: false,
  required: ['module', 'url'],
  properties: {
    module: {
      type: 'object',
      description: 'the transform module: {"path": "<file under wasm.modules_dir>"} or {"base64": "<the .wasm bytes>"}',
      oneOf: [
        { type: 'object', additionalProperties: false, required: ['path'], properties: { path: { type: 'string', minLength: 1 } } },
        { type: 'object', additionalProperties: false, required: ['base64'], properties: { base64: { type: 'string', minLength: 1 } } },
      ],
    },
    url: { type: 'string', minLength: 1, maxLength: URL_MAX },
    allow_url: { type: 'boolean', default: false },
    timeout_ms: { type: 'integer', minimum: 1, maximum: 10_000, default: 100 },
    max_memory_mb: { type: 'integer', minimum: 1, maximum: 1024, default: 16 },
    headers: HEADERS,
    ...SECRET_PROPS,
  },
} as const;

/** Each handler's config schema, by handler name. */
export const HANDLER_CONFIG_SCHEMAS = {
  webhook: WEBHOOK_CONFIG_SCHEMA,
  'webhook-custom': WEBHOOK_CUSTOM_CONFIG_SCHEMA,
  log: LOG_CONFIG_SCHEMA,
  wasm: WASM_CONFIG_SCHEMA,
} as const satisfies Record<HandlerName, object>;

const ENTITY_PROPERTIES = {
  id: { type: 'string', pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$', description: 'a UUID' },
  // Echoed back by clients that PATCH what they GET; ignored (the server sets them).
  created_at: { type: 'integer' },
  updated_at: { type: 'integer' },
  source: NAME,
  event: { type: ['string', 'null'], minLength: 1, maxLength: 256 },
  handler: { enum: [...HANDLERS] },
  on_change: { type: ['boolean', 'null'] },
  snooze: { type: ['integer', 'null'], minimum: 0, maximum: 31_536_000 },
  enabled: { type: 'boolean' },
  config: { type: ['object', 'null'] },
} as const;

/** POST body: the entity; `config` is checked against the handler's schema (errors under /config). */
export const EVENT_HOOK_SCHEMA = {
  $id: 'hookwire:event-hooks:entity',
  type: 'object',
  additionalProperties: false,
  required: ['source', 'handler'],
  properties: ENTITY_PROPERTIES,
} as const;

/** PATCH body: any subset (the id cannot change). */
export const EVENT_HOOK_PATCH_SCHEMA = {
  $id: 'hookwire:event-hooks:patch',
  type: 'object',
  additionalProperties: false,
  properties: { ...ENTITY_PROPERTIES, id: ENTITY_PROPERTIES.id },
} as const;

const ajv = new Ajv({ allErrors: true, verbose: true, strict: true, allowUnionTypes: true, useDefaults: true });
const validateEntity = ajv.compile(EVENT_HOOK_SCHEMA);
const validatePatch = ajv.compile(EVENT_HOOK_PATCH_SCHEMA);
const validateConfig: Record<HandlerName, ValidateFunction> = {
  webhook: ajv.compile(WEBHOOK_CONFIG_SCHEMA),
  'webhook-custom': ajv.compile(WEBHOOK_CUSTOM_CONFIG_SCHEMA),
  log: ajv.compile(LOG_CONFIG_SCHEMA),
  wasm: ajv.compile(WASM_CONFIG_SCHEMA),
};

/** Header names hookwire sets itself. */
const RESERVED_HEADERS = new Set([
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'webhook-id',
  'webhook-timestamp',
  'webhook-signature',
  'x-kong-signature',
]);
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** Why (name, value) cannot be a header a hook sends (a transform's output is checked the same way), or null. */
export function headerProblem(name: string, value: string): string | null {
  if (!TOKEN.test(name)) return 'must be a valid HTTP header name';
  if (RESERVED_HEADERS.has(name.toLowerCase())) return 'is set by hookwire and cannot be configured';
  if (/[\r\n\0]/.test(value)) return 'must not contain CR, LF or NUL';
  return null;
}

function prefixed(issues: ConfigIssue[], prefix: string): ConfigIssue[] {
  return issues.map((i) => ({ path: `${prefix}${i.path}`, message: i.message }));
}

/** The checks a schema cannot express, on a config that passed its schema. */
function configIssues(handler: HandlerName, config: Record<string, unknown>): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  if (handler === 'log') return issues;
  const url = config.url as string;
  const templated = handler === 'webhook-custom' && url.includes('{{');
  if (templated) {
    const err = templateError(url);
    if (err) issues.push({ path: '/config/url', message: `template does not parse: ${err}` });
  } else {
    const reason = urlProblem(url);
    if (reason) issues.push({ path: '/config/url', message: reason });
  }
  const headers = config.headers as Record<string, string>;
  for (const [name, value] of Object.entries(headers)) {
    const at = `/config/headers/${name.replace(/~/g, '~0').replace(/\//g, '~1')}`;
    if (!TOKEN.test(name)) issues.push({ path: at, message: 'must be a valid HTTP header name' });
    else if (RESERVED_HEADERS.has(name.toLowerCase())) issues.push({ path: at, message: 'is set by hookwire and cannot be configured' });
    if (/[\r\n\0]/.test(value)) issues.push({ path: at, message: 'must not contain CR, LF or NUL' });
    else if (handler === 'webhook-custom' && config.headers_format === true) {
      const err = templateError(value);
      if (err) issues.push({ path: at, message: `template does not parse: ${err}` });
    }
  }
  const signature = config.signature as string;
  const secrets: [string, string][] = [];
  if (typeof config.secret === 'string') secrets.push(['/config/secret', config.secret]);
  (config.secrets as string[]).forEach((s, i) => secrets.push([`/config/secrets/${i}`, s]));
  for (const [at, s] of secrets) {
    const reason = secretProblem(s, signature);
    if (reason) issues.push({ path: at, message: reason });
  }
  if (signature === 'kong' && secrets.length > 0 && secrets.every(([, s]) => s.startsWith('whsk_'))) {
    issues.push({ path: '/config/signature', message: 'X-Kong-Signature needs an HMAC secret (not a whsk_ ed25519 key)' });
  }
  if (handler === 'wasm') {
    const module = config.module as { base64?: string };
    // Whitespace (a wrapped base64 text) is allowed; the module itself is checked by the service (transform.ts).
    if (typeof module.base64 === 'string' && !BASE64.test(module.base64.replace(/\s+/g, ''))) {
      issues.push({ path: '/config/module', message: 'base64 is not valid base64 of the .wasm bytes' });
    }
  }
  if (handler === 'webhook-custom') {
    if (config.body_format === true && typeof config.body === 'string') {
      const err = templateError(config.body);
      if (err) issues.push({ path: '/config/body', message: `template does not parse: ${err}` });
    }
    if (config.payload_format === true && config.payload) {
      for (const [k, v] of Object.entries(config.payload as Record<string, string>)) {
        const err = templateError(v);
        if (err) issues.push({ path: `/config/payload/${k}`, message: `template does not parse: ${err}` });
      }
    }
  }
  return issues;
}

/** Why `url` cannot be a webhook URL, or null. */
export function urlProblem(url: string): string | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return `must be an absolute http(s) URL (found ${JSON.stringify(url.length > 60 ? url.slice(0, 57) + '...' : url)})`;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return `must use http or https (found ${u.protocol.slice(0, -1)})`;
  if (u.username || u.password) return 'must not contain credentials (put an Authorization header in headers)';
  if (!u.hostname) return 'must name a host';
  return null;
}

function secretProblem(secret: string, signature: string): string | null {
  if (secret.startsWith('whsk_')) {
    const b = secret.slice(5);
    if (!BASE64.test(b) || Buffer.from(b, 'base64').length !== 64) {
      return 'a whsk_ key must be base64 of 64 bytes (ed25519 seed and public key)';
    }
    return null;
  }
  // `standard` and `both` sign v1 with every HMAC secret, so a bare one must be base64;
  // `auto` and `kong` take any string as Kong does.
  const bareIsStandard = signature === 'standard' || signature === 'both';
  const b = secret.startsWith('whsec_') ? secret.slice(6) : secret;
  if (secret.startsWith('whsec_') || bareIsStandard) {
    if (b.length === 0 || !BASE64.test(b) || b.length % 4 !== 0) {
      return bareIsStandard
        ? `must be whsec_<base64>, whsk_<base64> or base64 with signature "${signature}"; with signature "auto" or "kong" any string works (Kong's X-Kong-Signature)`
        : 'a whsec_ secret must be base64 after the prefix';
    }
  }
  return null;
}

function fail(issues: ConfigIssue[]): never {
  throw new EventHookValidationError(issues);
}

/** Kong's `lambda` runs Lua, which hookwire does not: its /handler issue says so and points to `wasm`. */
export const LAMBDA_NOT_SUPPORTED =
  "Kong's lambda handler (Lua functions) is not supported: write the transform in AssemblyScript and use handler 'wasm' (docs/event-hooks.md)";

function lambdaHint(body: Record<string, unknown>, issues: ConfigIssue[]): ConfigIssue[] {
  if (body.handler !== 'lambda') return issues;
  return issues.map((i) => (i.path === '/handler' ? { path: i.path, message: LAMBDA_NOT_SUPPORTED } : i));
}

/** A validated, normalized hook input (defaults applied, server fields dropped). */
export interface ValidHookInput {
  id: string | null;
  source: string;
  event: string | null;
  handler: HandlerName;
  on_change: boolean | null;
  snooze: number | null;
  enabled: boolean;
  config: Record<string, unknown>;
}

function checkConfig(handler: HandlerName, config: unknown): Record<string, unknown> {
  const copy = structuredClone(config ?? {}) as Record<string, unknown>;
  const validate = validateConfig[handler];
  if (!validate(copy)) fail(prefixed(issuesFromAjv(validate.errors ?? []), '/config'));
  const issues = configIssues(handler, copy);
  if (issues.length) fail(issues);
  return copy;
}

/** Validates a createHook input; throws EventHookValidationError listing every problem. */
export function validateHookInput(input: unknown): ValidHookInput {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) fail([{ path: '', message: 'must be a JSON object' }]);
  const body = { ...(input as Record<string, unknown>) };
  if (!validateEntity(body)) fail(lambdaHint(body, issuesFromAjv(validateEntity.errors ?? [])));
  const handler = body.handler as HandlerName;
  return {
    id: typeof body.id === 'string' ? canonicalHookId(body.id) : null,
    source: body.source as string,
    event: (body.event as string | null | undefined) ?? null,
    handler,
    on_change: (body.on_change as boolean | null | undefined) ?? null,
    snooze: (body.snooze as number | null | undefined) ?? null,
    enabled: (body.enabled as boolean | undefined) ?? true,
    config: checkConfig(handler, body.config),
  };
}

/**
 * Applies a PATCH to `current`: top-level fields replace, `config` is merged
 * key by key into the current config when the handler stays the same
 * (Kong merges records on PATCH) and replaces it when the handler changes.
 */
export function applyHookPatch(current: EventHook, patch: unknown): ValidHookInput {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) fail([{ path: '', message: 'must be a JSON object' }]);
  const body = { ...(patch as Record<string, unknown>) };
  if (!validatePatch(body)) fail(lambdaHint(body, issuesFromAjv(validatePatch.errors ?? [])));
  if (typeof body.id === 'string' && canonicalHookId(body.id) !== current.id) {
    fail([{ path: '/id', message: 'cannot be changed' }]);
  }
  const handler = (body.handler as HandlerName | undefined) ?? current.handler;
  let config: unknown;
  if (handler !== current.handler) config = body.config ?? {};
  else if (body.config === undefined) config = current.config;
  else if (body.config === null) config = {};
  else config = { ...(current.config as Record<string, unknown>), ...(body.config as Record<string, unknown>) };
  const pick = <K extends keyof EventHook>(k: K): EventHook[K] => (Object.hasOwn(body, k) ? (body[k] as EventHook[K]) : current[k]);
  return {
    id: current.id,
    source: pick('source'),
    event: pick('event') ?? null,
    handler,
    on_change: pick('on_change') ?? null,
    snooze: pick('snooze') ?? null,
    enabled: pick('enabled'),
    config: checkConfig(handler, config),
  };
}
