/**
 * Row shapes both outbox stores (SQLite, PostgreSQL) read, and their mapping
 * to the attempts the API lists: an attempt row, and a delivery's first
 * successful attempt kept in its own row (`ok_*` columns).
 */
import type { AttemptView, DeliveryView } from './types.js';

export interface AttemptRow {
  delivery_seq: number;
  attempt: number;
  started_at: number;
  duration_ms: number;
  status: number | null;
  error: string | null;
  response: string | null;
  webhook_timestamp: number | null;
  url: string | null;
}

/** The `ok_*` columns of a delivery row. */
export interface InlineSuccessColumns {
  ok_attempt: number | null;
  ok_started_at: number | null;
  ok_duration_ms: number | null;
  ok_status: number | null;
  ok_response: string | null;
  ok_webhook_timestamp: number | null;
  ok_url: string | null;
}

export function attemptOf(r: AttemptRow): AttemptView {
  return {
    attempt: r.attempt,
    started_at_ms: r.started_at,
    duration_ms: r.duration_ms,
    status: r.status,
    error: r.error,
    response: r.response,
    webhook_timestamp: r.webhook_timestamp,
    url: r.url,
  };
}

/** The first successful attempt kept in the delivery row, as listed; null when there is none. */
export function inlineAttemptOf(r: InlineSuccessColumns): AttemptView | null {
  if (r.ok_attempt === null) return null;
  return {
    attempt: r.ok_attempt,
    started_at_ms: r.ok_started_at!,
    duration_ms: r.ok_duration_ms!,
    status: r.ok_status,
    error: null,
    response: r.ok_response,
    webhook_timestamp: r.ok_webhook_timestamp,
    url: r.ok_url,
  };
}

/** The columns of a delivery row both stores read (PostgreSQL adds its lease owner). */
export interface DeliveryRow extends InlineSuccessColumns {
  seq: number;
  id: string;
  hook_id: string;
  origin: string;
  state: string;
  attempts: number;
  cycle_start: number;
  next_attempt_at: number | null;
  last_status: number | null;
  last_error: string | null;
  created_at: number;
  updated_at: number;
  event_id: string;
  source: string;
  event: string;
  data: string;
}

/**
 * A delivery as listed. `leased`: an attempt is in flight, so it shows as
 * `delivering`, on its next attempt, with no due time.
 */
export function deliveryViewOf(r: DeliveryRow, leased: boolean, attempts: AttemptView[]): DeliveryView {
  return {
    id: r.id,
    hook_id: r.hook_id,
    event_id: r.event_id,
    source: r.source,
    event: r.event,
    data: JSON.parse(r.data) as Record<string, unknown>,
    state: leased ? 'delivering' : (r.state as DeliveryView['state']),
    attempt_count: leased ? r.attempts + 1 : r.attempts,
    next_attempt_at_ms: r.state === 'pending' && !leased ? r.next_attempt_at : null,
    created_at_ms: r.created_at,
    updated_at_ms: r.updated_at,
    last_status: r.last_status,
    last_error: r.last_error,
    attempts,
  };
}
