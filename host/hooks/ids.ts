/**
 * Identifiers. Hooks get UUIDs (Kong's entity ids). Events and deliveries get
 * `evt_` / `msg_` + a ULID: 48 bits of milliseconds then 80 random bits, in
 * Crockford base32, so ids sort by creation time, are unique across
 * processes and databases (consumers dedupe on them), and carry no `.`
 * (Standard Webhooks signs `id.timestamp.body`).
 */
import { randomFillSync, randomUUID } from 'node:crypto';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const TWO_40 = 2 ** 40;

// Random bits are drawn in blocks: one syscall per 400 ids instead of one per id.
const pool = Buffer.alloc(5 * 400);
let poolAt = pool.length;

function random40(): number {
  if (poolAt + 5 > pool.length) {
    randomFillSync(pool);
    poolAt = 0;
  }
  const v = pool.readUIntBE(poolAt, 5);
  poolAt += 5;
  return v;
}

function base32(n: number, digits: number): string {
  let out = '';
  for (let i = 0; i < digits; i++) {
    out = CROCKFORD[n % 32]! + out;
    n = Math.floor(n / 32);
  }
  return out;
}

/** The two base32 digits of every 10-bit value: a 40-bit part is four look-ups (two ids per event, on the ingest path). */
const PAIRS = Array.from({ length: 1024 }, (_, i) => CROCKFORD[i >> 5]! + CROCKFORD[i & 31]!);
const TWO_10 = 2 ** 10;
const TWO_20 = 2 ** 20;
const TWO_30 = 2 ** 30;

/** base32(n, 8) for 0 <= n < 2^40. */
function base32x8(n: number): string {
  return PAIRS[Math.floor(n / TWO_30)]! + PAIRS[Math.floor(n / TWO_20) % TWO_10]! + PAIRS[Math.floor(n / TWO_10) % TWO_10]! + PAIRS[n % TWO_10]!;
}

let lastMs = -1;
let timePart = '';
let hi = 0;
let lo = 0;

/**
 * A 26-character monotonic ULID for time `ms`: within one millisecond (or
 * when the clock steps back) the 80-bit random part is incremented, so ids
 * made by this process strictly increase. Besides sorting by time, that
 * makes every index on them append-only (about twice as fast to insert as
 * random keys).
 */
export function ulid(ms: number): string {
  const t = Math.max(0, Math.floor(ms));
  if (t > lastMs) {
    lastMs = t;
    timePart = base32(t, 10);
    // Start low in the range so increments never run out within a millisecond.
    hi = Math.floor(random40() / 2);
    lo = random40();
  } else if (++lo === TWO_40) {
    lo = 0;
    hi++;
  }
  return timePart + base32x8(hi) + base32x8(lo);
}

/** The ULID of time `ms` with random halves `hi` and `lo` (each below 2^40), as ulid() writes it. */
export function encodeUlid(ms: number, hi: number, lo: number): string {
  return base32(ms, 10) + base32x8(hi) + base32x8(lo);
}

export function deliveryId(ms: number): string {
  return `msg_${ulid(ms)}`;
}

export function eventId(ms: number): string {
  return `evt_${ulid(ms)}`;
}

export function hookId(): string {
  return randomUUID();
}

/**
 * The one spelling of a hook id kept in memory, in the store and in SQL:
 * lower case (UUIDs are case-insensitive; callers may send upper case).
 */
export function canonicalHookId(id: string): string {
  return id.toLowerCase();
}

const DELIVERY_ID = /^msg_[0-9a-z]{26}$/i;

/** The one spelling of a delivery id: `msg_` + the ULID in upper case (Crockford base32 is case-insensitive). */
export function canonicalDeliveryId(id: string): string {
  return DELIVERY_ID.test(id) ? `msg_${id.slice(4).toUpperCase()}` : id;
}
