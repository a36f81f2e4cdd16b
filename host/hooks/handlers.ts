/**
 * What each handler sends (Kong's semantics, EE event_hooks.lua):
 *
 * - `webhook`: POST `url` with body `JSON(data ∪ {event, source})`; the
 *   configured headers, with `content-type: application/json` forced on top.
 * - `webhook-custom`: `url`, `headers` (when `headers_format`), `payload`
 *   values (when `payload_format`) and `body` (when `body_format`) are
 *   Handlebars templates over `data ∪ {event, source}`. GET with a payload:
 *   the payload becomes the query string. POST/PUT/PATCH with a payload and
 *   an empty body: the body is built from the payload by content type
 *   (`application/json` → JSON, `…x-www-form-urlencoded` → form,
 *   `multipart/form-data` or none → multipart with Kong's fixed boundary;
 *   another type → empty body, as Kong). A non-empty `body` always wins;
 *   other methods send only `body`.
 * - `log`: one structured log line (no request).
 * - `wasm`: the hook's transform (transform.ts) gets the `webhook` body and
 *   returns the request (sent to `url` unless it may choose its own, the
 *   configured headers under its own) or drops the event.
 *
 * Requests are built once per attempt from the stored event and the hook's
 * current config; signing happens last, over the exact body bytes.
 */
import { WebhookRequestError } from '../errors.js';
import { isStandardWebhooksKey, kongSignature, standardSignature } from './signing.js';
import { render } from './templates.js';
import type { TransformResult } from './transform.js';
import type { EventHook, HttpHandlerConfig, KongSignatureAlgorithm, WasmConfig, WebhookConfig, WebhookCustomConfig } from './types.js';

/** The origin key of the log handler (no endpoint). */
export const LOG_ORIGIN = 'log:';
/** The origin key of a delivery whose URL cannot be rendered or parsed (it fails on its first attempt). */
export const INVALID_ORIGIN = 'invalid:';

/** Kong's multipart boundary (lua-multipart in EE's utils). */
export const MULTIPART_BOUNDARY = '8fd84e9444e3946c';

export interface BuiltRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: Buffer | null;
  sslVerify: boolean;
}

interface Prepared {
  /** The `webhook` handler's headers (configured ones, content-type forced), shared: never mutated. */
  webhookHeaders: Readonly<Record<string, string>> | null;
  /** The same as a flat name/value list (what signRequest starts from), shared: never mutated. */
  webhookHeaderList: readonly string[] | null;
  /** Every secret that signs `webhook-signature` (rotation: all of them). */
  standardSecrets: string[];
  /** The secret of `X-Kong-Signature` (the first HMAC one), or null. */
  kongSecret: string | null;
  kongAlgorithm: KongSignatureAlgorithm;
  /** Static origin (webhook, or webhook-custom with a literal URL), or null when templated. */
  origin: string | null;
}

const prepared = new WeakMap<EventHook, Prepared>();
const EMPTY = Buffer.alloc(0);

function prepare(hook: EventHook): Prepared {
  let p = prepared.get(hook);
  if (p) return p;
  const c = hook.config as Partial<HttpHandlerConfig> & { url?: string };
  const all = [...(c.secret ? [c.secret] : []), ...(c.secrets ?? [])].filter((s, i, a) => a.indexOf(s) === i);
  const mode = c.signature ?? 'auto';
  let origin: string | null = null;
  if (hook.handler === 'log') origin = LOG_ORIGIN;
  else if (hook.handler !== 'webhook-custom' || !c.url!.includes('{{')) origin = originOfUrl(c.url!);
  let webhookHeaders: Record<string, string> | null = null;
  let webhookHeaderList: string[] | null = null;
  if (hook.handler === 'webhook') {
    // Null prototype: a configured header named `__proto__` is a header like any other (never dropped).
    webhookHeaders = Object.create(null) as Record<string, string>;
    for (const [k, v] of Object.entries((hook.config as WebhookConfig).headers)) if (k.toLowerCase() !== 'content-type') webhookHeaders[k] = v;
    webhookHeaders['content-type'] = 'application/json';
    Object.freeze(webhookHeaders);
    webhookHeaderList = headerList(webhookHeaders);
  }
  p = {
    webhookHeaders,
    webhookHeaderList,
    standardSecrets: mode === 'kong' ? [] : mode === 'auto' ? all.filter(isStandardWebhooksKey) : all,
    kongSecret:
      mode === 'standard' ? null : (all.find((s) => (mode === 'auto' ? !isStandardWebhooksKey(s) : !s.startsWith('whsk_'))) ?? null),
    kongAlgorithm: c.kong_signature_algorithm ?? 'sha256',
    origin,
  };
  prepared.set(hook, p);
  return p;
}

function originOfUrl(url: string): string {
  try {
    const u = new URL(url);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.origin : INVALID_ORIGIN;
  } catch {
    return INVALID_ORIGIN;
  }
}

function templateData(data: Record<string, unknown>, source: string, event: string | null): Record<string, unknown> {
  // Null prototype: `{{constructor}}` finds the event's own field or nothing, never Object's.
  const out = Object.assign(Object.create(null) as Record<string, unknown>, data);
  if (event !== null) out.event = event;
  out.source = source;
  return out;
}

/** The scheduling partition of a delivery: the endpoint origin it will go to. */
export function originOf(hook: EventHook, source: string, event: string | null, data: Record<string, unknown>): string {
  const p = prepare(hook);
  if (p.origin !== null) return p.origin;
  try {
    return originOfUrl(render((hook.config as WebhookCustomConfig).url, templateData(data, source, event)));
  } catch {
    return INVALID_ORIGIN;
  }
}

function renderOrFail(what: string, text: string, data: Record<string, unknown>): string {
  try {
    return render(text, data);
  } catch (err) {
    throw new WebhookRequestError('invalid_request', `${what}: template failed: ${(err as Error).message}`, { cause: err });
  }
}

function findHeader(headers: Record<string, string>, name: string): string | undefined {
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === name) return v;
  return undefined;
}

function multipart(payload: Record<string, string>, boundary: string): string {
  let out = '';
  for (const [k, v] of Object.entries(payload)) {
    out += `--${boundary}\r\nContent-Disposition: form-data; name="${k.replace(/"/g, '%22')}"\r\n\r\n${v}\r\n`;
  }
  return `${out}--${boundary}--\r\n`;
}

/**
 * The `webhook` body, JSON(data ∪ {event, source}), built from the stored
 * JSON text without parsing it when it cannot contain those keys (data keys
 * first, then event and source, exactly as JSON.stringify of the merged
 * object would write them).
 */
function webhookBody(json: string, source: string, event: string | null, data: () => Record<string, unknown>): string {
  if (!json.includes('"event"') && !json.includes('"source"')) {
    const tail = bodyTail(source, event);
    return json === '{}' ? `{${tail}` : `${json.slice(0, -1)},${tail}`;
  }
  return JSON.stringify(templateData(data(), source, event));
}

/** The last (source, event) and its body tail: deliveries mostly come in runs of one event type. */
let tailSource = '';
let tailEvent: string | null = null;
let tailText = '';

/** `"event":…,"source":…}`: what webhookBody appends to the data's JSON. */
function bodyTail(source: string, event: string | null): string {
  if (source !== tailSource || event !== tailEvent || tailText === '') {
    tailText = `${event === null ? '' : `"event":${JSON.stringify(event)},`}"source":${JSON.stringify(source)}}`;
    tailSource = source;
    tailEvent = event;
  }
  return tailText;
}

/** What a `wasm` hook's transform receives for one event: the body `webhook` would POST. */
export function webhookJson(source: string, event: string | null, json: string): string {
  return webhookBody(json, source, event, () => JSON.parse(json) as Record<string, unknown>);
}

/**
 * The request of a `wasm` hook from its transform's result: the hook's `url`
 * (or the result's, when the hook allows it), the configured headers with the
 * result's on top (a name in any letter case replaces the configured one).
 */
export function transformedRequest(hook: EventHook, result: Extract<TransformResult, { drop: false }>): BuiltRequest {
  const c = hook.config as WasmConfig;
  const headers = Object.create(null) as Record<string, string>;
  const overridden = new Set(Object.keys(result.headers).map((k) => k.toLowerCase()));
  for (const [k, v] of Object.entries(c.headers)) if (!overridden.has(k.toLowerCase())) headers[k] = v;
  Object.assign(headers, result.headers);
  return { method: result.method, url: result.url ?? c.url, headers, body: result.body, sslVerify: c.ssl_verify };
}

/**
 * Builds the HTTP request of a webhook or webhook-custom hook for one event,
 * given as its JSON text (and the parsed data when the caller has it).
 * Throws WebhookRequestError("invalid_request") when a template fails or a
 * rendered header is unusable. `event` null (a test of a hook with no event)
 * leaves `event` out of the data.
 */
export function buildRequest(
  hook: EventHook,
  source: string,
  event: string | null,
  json: string,
  parsed?: Record<string, unknown>,
): BuiltRequest {
  let cache = parsed;
  const data = (): Record<string, unknown> => (cache ??= JSON.parse(json) as Record<string, unknown>);
  if (hook.handler === 'webhook') {
    const c = hook.config as WebhookConfig;
    // Built once per hook (config changes make a new hook object); signRequest copies before adding.
    const headers = prepare(hook).webhookHeaders as Record<string, string>;
    return { method: 'POST', url: c.url, headers, body: Buffer.from(webhookBody(json, source, event, data), 'utf8'), sslVerify: c.ssl_verify };
  }
  const td = templateData(data(), source, event);
  if (hook.handler !== 'webhook-custom') throw new TypeError(`handler ${hook.handler} sends no request`);
  const c = hook.config as WebhookCustomConfig;
  let url = renderOrFail('url', c.url, td);
  // Null-prototype maps: every configured name is sent, `__proto__` included.
  const headers = Object.create(null) as Record<string, string>;
  for (const [k, v] of Object.entries(c.headers)) {
    const value = c.headers_format ? renderOrFail(`header ${k}`, v, td) : v;
    if (/[\r\n\0]/.test(value)) throw new WebhookRequestError('invalid_request', `header ${k}: rendered value contains CR, LF or NUL`);
    headers[k] = value;
  }
  let payload: Record<string, string> | null = null;
  if (c.payload) {
    payload = Object.create(null) as Record<string, string>;
    for (const [k, v] of Object.entries(c.payload)) payload[k] = c.payload_format ? renderOrFail(`payload ${k}`, v, td) : v;
  }
  const body = c.body === null ? '' : c.body_format ? renderOrFail('body', c.body, td) : c.body;
  let out: string | null = body.length > 0 ? body : null;
  if (payload && body.length === 0) {
    if (c.method === 'GET') {
      const qs = new URLSearchParams(payload).toString();
      if (qs) url += (url.includes('?') ? '&' : '?') + qs;
    } else if (c.method === 'POST' || c.method === 'PUT' || c.method === 'PATCH') {
      const ct = findHeader(headers, 'content-type');
      const type = ct?.toLowerCase();
      if (type === undefined) {
        headers['Content-Type'] = `multipart/form-data; boundary=${MULTIPART_BOUNDARY}`;
        out = multipart(payload, MULTIPART_BOUNDARY);
      } else if (type.includes('application/json')) out = JSON.stringify(payload);
      else if (type.includes('x-www-form-urlencoded')) out = new URLSearchParams(payload).toString();
      else if (type.includes('multipart/form-data')) {
        const m = /boundary="?([^";]+)"?/i.exec(ct!);
        const boundary = m ? m[1]! : MULTIPART_BOUNDARY;
        if (!m) {
          for (const k of Object.keys(headers)) if (k.toLowerCase() === 'content-type') headers[k] = `${ct}; boundary=${boundary}`;
        }
        out = multipart(payload, boundary);
      } else out = null; // Kong sends no body for another content type.
    }
  }
  return { method: c.method, url, headers, body: out === null ? null : Buffer.from(out, 'utf8'), sslVerify: c.ssl_verify };
}

/** A header record as a flat name/value list (undici's own form of headers). */
function headerList(headers: Readonly<Record<string, string>>): string[] {
  const list: string[] = [];
  for (const k of Object.keys(headers)) list.push(k, headers[k]!);
  return list;
}

/**
 * The headers of a built request with the delivery headers added:
 * `webhook-id` and `webhook-timestamp` always; `webhook-signature`
 * (Standard Webhooks) and/or `x-kong-signature` as the hook's `signature`
 * mode and secrets say. A flat name/value list: no per-request dictionary
 * object, and undici takes it as it is. The names added are reserved (no
 * hook can configure them: schemas.ts), so nothing is replaced.
 */
export function signRequest(req: BuiltRequest, hook: EventHook, id: string, timestampSec: number): string[] {
  const p = prepare(hook);
  // The `webhook` handler's headers are the prepared ones: copy the list made once per hook.
  const headers = req.headers === p.webhookHeaders && p.webhookHeaderList !== null ? p.webhookHeaderList.slice() : headerList(req.headers);
  headers.push('webhook-id', id, 'webhook-timestamp', String(timestampSec));
  const body = req.body ?? EMPTY;
  if (p.standardSecrets.length > 0) headers.push('webhook-signature', standardSignature(p.standardSecrets, id, timestampSec, body));
  if (p.kongSecret !== null && body.length > 0) headers.push('x-kong-signature', kongSignature(p.kongSecret, body, p.kongAlgorithm));
  return headers;
}

/** The hook entity without secrets (what a ping carries). */
export function redactedHook(hook: EventHook): EventHook {
  const config = { ...(hook.config as Record<string, unknown>) };
  if ('secret' in config && config.secret !== null) config.secret = '<redacted>';
  if (Array.isArray(config.secrets)) config.secrets = config.secrets.map(() => '<redacted>');
  return { ...hook, config: config as EventHook['config'] };
}
