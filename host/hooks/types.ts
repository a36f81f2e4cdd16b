/**
 * Public types of the event-hooks service: the hook entity (Kong's
 * `event_hooks`), handler configurations, sources, deliveries and attempts,
 * and the results the service API returns.
 *
 * Units: hook `created_at` / `updated_at` are integer seconds (as Kong's);
 * every delivery and attempt time is integer milliseconds since the epoch,
 * named with an `_ms` suffix.
 */

/**
 * The handlers hookwire implements. Kong's `lambda` (operator-supplied Lua) is
 * not one of them: `wasm` runs an operator-supplied transform, sandboxed.
 */
export const HANDLERS = ['webhook', 'webhook-custom', 'log', 'wasm'] as const;
export type HandlerName = (typeof HANDLERS)[number];

/**
 * Which signature headers a webhook carries. `auto` (the default) decides per
 * secret: a Standard Webhooks key (`whsec_…`, `whsk_…`) signs
 * `webhook-signature`, any other string signs `X-Kong-Signature` as Kong does,
 * so a hook moved over from Kong keeps its receiver unchanged.
 */
export const SIGNATURE_MODES = ['auto', 'standard', 'kong', 'both'] as const;
export type SignatureMode = (typeof SIGNATURE_MODES)[number];

/** The HMAC of `X-Kong-Signature`: `sha256` as Kong ≥ 3.14 signs, `sha1` as Kong ≤ 3.13 did. */
export const KONG_SIGNATURE_ALGORITHMS = ['sha256', 'sha1'] as const;
export type KongSignatureAlgorithm = (typeof KONG_SIGNATURE_ALGORITHMS)[number];

/** Fields shared by the two HTTP handlers. */
export interface HttpHandlerConfig {
  /** Request headers; for `webhook`, `content-type: application/json` is always forced on top. */
  headers: Record<string, string>;
  /**
   * Kong's single secret. `whsec_<base64>` signs Standard Webhooks v1
   * (HMAC-SHA256), `whsk_<base64(seed32‖pub32)>` signs v1a (ed25519); any
   * other string signs `X-Kong-Signature` (or, with `signature: standard`,
   * must be bare base64 for v1).
   */
  secret: string | null;
  /** More secrets (rotation): every secret in `secret` and `secrets` signs; the header lists one signature each. */
  secrets: string[];
  /** `auto` (by each secret's form), `standard` (webhook-* headers), `kong` (X-Kong-Signature), or `both`. */
  signature: SignatureMode;
  /** The HMAC behind `X-Kong-Signature` (`sha256=<hex>` or `sha1=<hex>`). */
  kong_signature_algorithm: KongSignatureAlgorithm;
  /** Verify the endpoint's TLS certificate (Kong ≥ 3.14's default). */
  ssl_verify: boolean;
}

export interface WebhookConfig extends HttpHandlerConfig {
  url: string;
}

export interface WebhookCustomConfig extends HttpHandlerConfig {
  /** A Handlebars template (always rendered). */
  url: string;
  /** Upper-case HTTP method. */
  method: string;
  payload: Record<string, string> | null;
  payload_format: boolean;
  body: string | null;
  body_format: boolean;
  headers_format: boolean;
}

export type LogConfig = Record<string, never>;

/**
 * The `wasm` handler (a transform: host/hooks/transform.ts): the module's
 * `transform` turns each event into the request to send, or drops it.
 */
export interface WasmConfig extends HttpHandlerConfig {
  /** The transform: a path under `wasm.modules_dir`, or the module's bytes in base64. */
  module: { path: string } | { base64: string };
  /** Where the request goes (and the delivery's scheduling origin). */
  url: string;
  /** May the transform choose another URL (its result's `url`)? */
  allow_url: boolean;
  /** Deadline of one transform call, in ms. */
  timeout_ms: number;
  /** Largest memory of the transform's instance, in MiB. */
  max_memory_mb: number;
}

export type HandlerConfig = WebhookConfig | WebhookCustomConfig | LogConfig | WasmConfig;

/** An event hook, as stored and returned (Kong's entity plus `enabled`). */
export interface EventHook {
  /** UUID (v4 when generated). */
  id: string;
  /** Seconds since the epoch. */
  created_at: number;
  updated_at: number;
  source: string;
  /** null: every event of the source. */
  event: string | null;
  handler: HandlerName;
  on_change: boolean | null;
  /** Seconds; null: no snooze. */
  snooze: number | null;
  /** False after the endpoint answered 410 Gone (or when an operator disables the hook). */
  enabled: boolean;
  config: HandlerConfig;
}

/** What createHook accepts: the entity without server-set fields; `config` may be partial (defaults fill it). */
export interface EventHookInput {
  id?: string;
  source: string;
  event?: string | null;
  handler: HandlerName;
  on_change?: boolean | null;
  snooze?: number | null;
  enabled?: boolean;
  config?: Record<string, unknown>;
}

/** What updateHook accepts (PATCH): any subset; `config` is merged into the current one unless the handler changes. */
export type EventHookPatch = Partial<Omit<EventHookInput, 'id'>>;

/** One published event: `fields` informational, `unique` the digest fields. */
export interface EventSpec {
  fields: string[];
  unique?: string[];
  description?: string;
}

/** `{<source>: {<event>: EventSpec}}`, the shape of Kong's GET /event-hooks/sources. */
export type SourcesView = Record<string, Record<string, EventSpec>>;

export interface PageRequest {
  /** 1..1000, default 100 (Kong's). */
  size?: number;
  /** The opaque `offset` of the previous page. */
  offset?: string | null;
}

export interface Page<T> {
  data: T[];
  /** Pass back as `offset` for the next page; null on the last page. */
  offset: string | null;
}

/** `dropped`: a `wasm` hook's transform decided not to send the event (a finished state, like succeeded). */
export type DeliveryState = 'pending' | 'delivering' | 'succeeded' | 'failed' | 'dropped';

export interface AttemptView {
  /** 1-based attempt number within the delivery. */
  attempt: number;
  started_at_ms: number;
  duration_ms: number;
  /** HTTP status, or null when no response (refused, network error, timeout, log handler). */
  status: number | null;
  error: string | null;
  /** The first bytes of the response body (capped), as UTF-8. */
  response: string | null;
  /** The `webhook-timestamp` sent (seconds). */
  webhook_timestamp: number | null;
  /** The URL requested (after templating), or null for the log handler. */
  url: string | null;
}

export interface DeliveryView {
  /** Also the `webhook-id` header: `msg_` + a ULID. Stable across retries. */
  id: string;
  hook_id: string;
  event_id: string;
  source: string;
  event: string;
  data: Record<string, unknown>;
  state: DeliveryState;
  /** Attempts made so far (including one in flight). */
  attempt_count: number;
  /** When the next attempt is due (pending), else null. */
  next_attempt_at_ms: number | null;
  created_at_ms: number;
  updated_at_ms: number;
  last_status: number | null;
  last_error: string | null;
  /** Recorded attempts, oldest first (those within the retention period). */
  attempts: AttemptView[];
}

/** Kong's POST /event-hooks/{id}/test answer. */
export interface TestResult {
  data: Record<string, unknown>;
  /** webhook / webhook-custom / wasm: the endpoint's answer; log: true; wasm whose transform dropped the data: dropped. */
  result: { status: number; headers: Record<string, string>; body: string } | true | { dropped: true; reason: string | null };
}

export interface EmitResult {
  /** The event's id (`evt_` + ULID); each delivery of it has its own `msg_` id. */
  event_id: string;
  /** Deliveries created (after event matching, on_change and snooze). */
  deliveries: number;
}

export interface IngestIssue {
  /** Index of the record in the batch. */
  index: number;
  reason: string;
}

export interface IngestResult {
  /**
   * False when the batch could not be written (store failure): the ingest
   * endpoint should answer 5xx so the forwarder retries it. Refused records
   * alone leave it true (retrying them would not help).
   */
  stored: boolean;
  /** Emit records accepted (on disk). */
  accepted: number;
  /** Publish records applied. */
  published: number;
  /** Records refused (malformed, unpublished source/event, too large, store failure). */
  rejected: number;
  /** Deliveries created by the accepted emits. */
  deliveries: number;
  /** Why each refused record was refused (at most 100 listed). */
  errors: IngestIssue[];
}

export type CircuitState = 'closed' | 'open' | 'half-open';

export interface CircuitSnapshot {
  origin: string;
  state: CircuitState;
  /** Requests in flight to this origin. */
  active: number;
  consecutive_failures: number;
  /** When an open circuit lets a probe through (ms), else null. */
  reopen_at_ms: number | null;
}

export interface MetricSample {
  name: string;
  help: string;
  type: 'counter' | 'gauge';
  value: number;
  labels?: Record<string, string>;
}

/** Milliseconds since the epoch; injectable for tests. */
export interface HookClock {
  now(): number;
}
