/**
 * Row shapes both outbox stores (SQLite, PostgreSQL) read, and their mapping
 * to the attempts the API lists: an attempt row, and a delivery's first
 * successful attempt kept in its own row (`ok_*` columns).
 */
import type { AttemptView } from './types.js';

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
