/**
 * HTTP plumbing of the Admin API: reading JSON bodies (with a size limit),
 * Kong-shaped error bodies, and the mapping of hookwire's typed errors to
 * status codes, so handlers can simply throw.
 *
 *   404 {"message":"Not found"}
 *   400 {"name":"schema violation","message":"schema violation (paths.0: must be ...)",
 *        "fields":{"paths":{"0":"must be ..."}},"issues":[{"path":"/paths/0","message":"must be ..."}]}
 *   409 {"name":"unique constraint violation","message":"UNIQUE violation detected on '{name=\"x\"}'",...}
 */
import type { IncomingMessage } from 'node:http';
import { RecordArraySplitter, type SplitBatch } from '../hooks/batch.js';
import {
  ConfigError,
  EntityStoreConflictError,
  EventHookNotFoundError,
  EventHooksClosedError,
  EventHookValidationError,
  EventRejectedError,
  HookwireError,
  WebhookRequestError,
  TransformError,
  type ConfigIssue,
} from '../errors.js';
import { inputCopy, InputShapeError, MAX_INPUT_DEPTH, PROTO_KEY } from '../input.js';
import { coerceForm, FormBodyError, isFormType, parseForm, type CoercionSchema } from './form.js';
import { GatewayClosedError, ReloadError } from '../proxy/errors.js';

export interface ErrorReply {
  readonly status: number;
  readonly body: Record<string, unknown>;
  readonly headers?: Record<string, string>;
}

/** An answer a handler gives by throwing. */
export class AdminHttpError extends Error {
  readonly status: number;
  readonly body: Record<string, unknown>;
  readonly headers: Record<string, string> | undefined;
  constructor(status: number, body: Record<string, unknown> | string, headers?: Record<string, string>) {
    const b = typeof body === 'string' ? { message: body } : body;
    super(typeof b.message === 'string' ? b.message : `HTTP ${status}`);
    this.status = status;
    this.body = b;
    this.headers = headers;
  }
}

export const NOT_FOUND = { message: 'Not found' } as const;

export function notFound(): AdminHttpError {
  return new AdminHttpError(404, { ...NOT_FOUND });
}

/** RFC 6901 pointer → segments. */
function segments(pointer: string): string[] {
  if (pointer === '' || pointer === '/') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/**
 * Kong's nested `fields` from path-named issues: `/config/url` →
 * `{config: {url: msg}}`. A problem with a whole object (path "" or a
 * node that also has children) goes under `@entity`, as in Kong.
 */
export function nestedFields(issues: readonly ConfigIssue[]): Record<string, unknown> {
  // Null-prototype nodes and own-property reads: field names come from the request
  // (`/__proto__/x` must build a node, never reach Object.prototype; a field named
  // `@entity` meets the entity-level list and joins it).
  type Node = Record<string, unknown>;
  const node = (): Node => Object.create(null) as Node;
  const own = (n: Node, key: string): unknown => (Object.hasOwn(n, key) ? n[key] : undefined);
  const addEntity = (n: Node, message: string): void => {
    const cur = own(n, '@entity');
    if (Array.isArray(cur)) cur.push(message);
    else if (typeof cur === 'string') n['@entity'] = [cur, message];
    else if (cur !== undefined) addEntity(cur as Node, message);
    else n['@entity'] = [message];
  };
  /** The child node at `key`, made (or made from a message or list already there) when needed. */
  const child = (n: Node, key: string): Node => {
    const cur = own(n, key);
    if (cur !== null && typeof cur === 'object' && !Array.isArray(cur)) return cur as Node;
    const made = node();
    if (typeof cur === 'string') made['@entity'] = [cur];
    else if (Array.isArray(cur)) made['@entity'] = cur;
    n[key] = made;
    return made;
  };
  const root = node();
  for (const issue of issues) {
    const path = segments(issue.path);
    let n = root;
    for (let i = 0; i < path.length - 1; i++) n = child(n, path[i]!);
    const key = path.at(-1);
    const existing = key === undefined ? undefined : own(n, key);
    if (key === undefined || key === '@entity') addEntity(n, issue.message);
    else if (existing === undefined) n[key] = issue.message;
    else if (typeof existing === 'string') n[key] = `${existing}; ${issue.message}`;
    else addEntity(existing as Node, issue.message);
  }
  return root;
}

/** `/config/url` → `config.url` (Kong's way of naming a field in messages). */
export function dotted(pointer: string): string {
  const s = segments(pointer);
  return s.length === 0 ? '@entity' : s.join('.');
}

export function schemaViolation(issues: readonly ConfigIssue[], extra: Record<string, unknown> = {}): AdminHttpError {
  const summary = issues.map((i) => `${dotted(i.path)}: ${i.message}`).join('; ');
  return new AdminHttpError(400, {
    name: 'schema violation',
    message: `schema violation (${summary})`,
    fields: nestedFields(issues),
    issues: issues.map((i) => ({ path: i.path, message: i.message })),
    ...extra,
  });
}

/** The status and body for anything a handler threw. */
export function errorReply(err: unknown): ErrorReply {
  if (err instanceof AdminHttpError) return { status: err.status, body: err.body, ...(err.headers ? { headers: err.headers } : {}) };
  if (err instanceof EventHookNotFoundError) return { status: 404, body: { ...NOT_FOUND } };
  if (err instanceof EventHookValidationError) return { status: 400, body: schemaViolation(err.issues).body };
  if (err instanceof ConfigError) return { status: 400, body: schemaViolation(err.issues).body };
  if (err instanceof EventRejectedError) return { status: 400, body: { message: err.message } };
  if (err instanceof EntityStoreConflictError) return { status: 409, body: { message: err.message, code: err.code } };
  if (err instanceof EventHooksClosedError || err instanceof GatewayClosedError) {
    return { status: 503, body: { message: err.message }, headers: { 'retry-after': '1' } };
  }
  if (err instanceof ReloadError) {
    if (err.stage === 'closed') return { status: 503, body: { message: err.message }, headers: { 'retry-after': '1' } };
    // A plugin that refuses its configuration, a .wasm that is missing: the request's fault.
    if (err.stage === 'plugins' || err.stage === 'config') {
      return { status: 400, body: { name: 'reload refused', message: err.message, code: err.code, stage: err.stage } };
    }
    return { status: 500, body: { name: 'reload failed', message: err.message, code: err.code, stage: err.stage } };
  }
  if (err instanceof WebhookRequestError) {
    const status = err.reason === 'refused' || err.reason === 'invalid_request' ? 400 : 502;
    return { status, body: { message: err.message, reason: err.reason, ...(err.status !== null ? { status: err.status } : {}) } };
  }
  // A wasm hook's test: its transform failed on the posted data (the module is the caller's).
  if (err instanceof TransformError) return { status: 400, body: { message: err.message, reason: err.reason, code: err.code } };
  if (err instanceof HookwireError) return { status: 500, body: { message: 'An unexpected error occurred', code: err.code } };
  return { status: 500, body: { message: 'An unexpected error occurred' } };
}

/** The body's chunks as they arrive, at most `limit` bytes in all (413 beyond, the rest drained unread). */
async function* bodyChunks(req: IncomingMessage, limit: number): AsyncGenerator<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    throw new AdminHttpError(413, `Request body is larger than ${limit} bytes`, { connection: 'close' });
  }
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      req.resume();
      throw new AdminHttpError(413, `Request body is larger than ${limit} bytes`, { connection: 'close' });
    }
    yield chunk;
  }
}

/** The raw body, at most `limit` bytes (413 beyond). */
export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of bodyChunks(req, limit)) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/**
 * An ingest body (a JSON array of records) split as its chunks arrive, at
 * most `limit` bytes (413 beyond) and `maxRecords` records: never
 * concatenated, and an oversized batch is answered without reading it all
 * into memory (the rest is drained unread).
 */
export async function readRecordArray(req: IncomingMessage, limit: number, maxRecords: number): Promise<SplitBatch> {
  const splitter = new RecordArraySplitter(maxRecords);
  for await (const chunk of bodyChunks(req, limit)) {
    const failed = splitter.push(chunk);
    if (failed !== null) {
      req.resume();
      return failed;
    }
  }
  return splitter.end();
}

function isJsonType(contentType: string | undefined): boolean {
  if (contentType === undefined) return true;
  const type = contentType.split(';')[0]!.trim().toLowerCase();
  return type === '' || type === 'application/json' || (type.startsWith('application/') && type.endsWith('+json'));
}

/**
 * A parsed body as handlers may use it: null-prototype objects, at most
 * MAX_INPUT_DEPTH deep, no `__proto__` key (400 naming the field).
 */
export function safeBody(value: unknown): unknown {
  try {
    return inputCopy(value, { refuseProtoKey: true });
  } catch (err) {
    if (!(err instanceof InputShapeError)) throw err;
    if (err.reason === 'depth') {
      throw new AdminHttpError(400, { name: 'invalid body', message: `the body is nested deeper than ${MAX_INPUT_DEPTH} levels (at ${err.path})` });
    }
    throw schemaViolation([{ path: err.path, message: `is not allowed: "${PROTO_KEY}" cannot be a key` }]);
  }
}

/** Where a form body's strings get their types: the JSON Schema of the body, or of a body that depends on it. */
export type FormSchema = CoercionSchema | ((fields: Record<string, unknown>) => CoercionSchema | undefined | Promise<CoercionSchema | undefined>);

/**
 * The body parsed by its content type; `undefined` when there is none.
 * JSON as is; Kong's form bodies (urlencoded, multipart) with their keys
 * nested and their values coerced by `formSchema` (form.ts). 415 for any
 * other content type, 400 when the text does not parse, is nested too deep
 * or has a `__proto__` key (see safeBody).
 */
export async function readJson(req: IncomingMessage, limit: number, formSchema?: FormSchema): Promise<unknown> {
  const body = await readBody(req, limit);
  if (body.length === 0) return undefined;
  const contentType = req.headers['content-type'];
  if (formSchema !== undefined && isFormType(contentType)) {
    let fields: Record<string, unknown>;
    try {
      fields = await parseForm(body, contentType!);
    } catch (err) {
      if (err instanceof FormBodyError) throw new AdminHttpError(400, err.message);
      throw err;
    }
    // Checked before coercion: the schema may be chosen by a field's value (a hook's handler).
    const checked = safeBody(fields) as Record<string, unknown>;
    return coerceForm(checked, typeof formSchema === 'function' ? await formSchema(checked) : formSchema);
  }
  if (!isJsonType(contentType)) {
    const accepted = formSchema === undefined ? 'application/json' : 'application/json, application/x-www-form-urlencoded or multipart/form-data';
    throw new AdminHttpError(415, `Unsupported content type ${JSON.stringify(contentType)}: send ${accepted}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new AdminHttpError(400, `Cannot parse JSON body: ${(err as Error).message}`);
  }
  return safeBody(value);
}

function describe(value: unknown): string {
  if (value === undefined) return 'no body';
  if (value === null) return 'null';
  return Array.isArray(value) ? 'an array' : `a ${typeof value}`;
}

/**
 * A body that must be a JSON object: 400 "the body must be a JSON object"
 * for null, an array, a scalar, and for no body at all unless `optional`
 * (then `{}`).
 */
export async function readObject(
  req: IncomingMessage,
  limit: number,
  options: { optional?: boolean; formSchema?: FormSchema } = {},
): Promise<Record<string, unknown>> {
  const value = await readJson(req, limit, options.formSchema);
  if (value === undefined && options.optional) return Object.create(null) as Record<string, unknown>;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new AdminHttpError(400, { name: 'invalid body', message: `the body must be a JSON object (found ${describe(value)})` });
  }
  return value as Record<string, unknown>;
}
