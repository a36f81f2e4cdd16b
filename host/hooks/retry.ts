/**
 * When to try again. The schedule lists the wait after each failed attempt
 * (attempt 1 is immediate); with "full" jitter the wait is uniform in
 * [0, step] (AWS's full jitter: retries of a burst spread out instead of
 * arriving together). A `Retry-After` on 429 or 503 is honoured, capped, and
 * only ever pushes the retry later.
 */

/** 5 s, 30 s, 2 min, 10 min, 30 min, 1 h, 3 h, 6 h: nine attempts over about 10.7 h. */
export const DEFAULT_RETRY_SCHEDULE_MS: readonly number[] = [
  5_000, 30_000, 120_000, 600_000, 1_800_000, 3_600_000, 10_800_000, 21_600_000,
];

export type Jitter = 'full' | 'none';

/**
 * The wait before attempt `attempt + 1`, after `attempt` attempts (1-based),
 * or null when the schedule is exhausted.
 */
export function retryDelay(attempt: number, schedule: readonly number[], jitter: Jitter, random: () => number = Math.random): number | null {
  const step = schedule[attempt - 1];
  if (step === undefined) return null;
  return jitter === 'full' ? Math.floor(random() * step) : step;
}

/** `Retry-After` (delta seconds or an HTTP date) in ms from `now`, or null when absent or unparsable. */
export function parseRetryAfter(value: string | undefined, now: number): number | null {
  if (value === undefined) return null;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const date = Date.parse(v);
  if (Number.isNaN(date)) return null;
  return Math.max(0, date - now);
}
