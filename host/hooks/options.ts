/**
 * Options of the event-hooks service: every default in one place, checked by
 * hand with messages that name the option (a wrong option is a programming
 * error of the composition root: it throws TypeError at construction).
 */
import type { Logger } from 'pino';
import type { CircuitOptions } from './circuit.js';
import { DEFAULT_RETRY_SCHEDULE_MS, type Jitter } from './retry.js';
import type { LookupFn, SsrfPolicyOptions } from './ssrf.js';
import type { EventHookStore } from './store.js';
import type { HookClock } from './types.js';
import { DEFAULT_CRUD_ENTITIES } from './sources.js';

export interface DeliveryOptions {
  /** Wait after each failed attempt, in ms (the first attempt is immediate). */
  retrySchedule: readonly number[];
  /** `full`: each wait is uniform in [0, step]; `none`: exactly the step. */
  jitter: Jitter;
  /** Longest `Retry-After` (429 / 503) honoured, in ms. */
  retryAfterCapMs: number;
  /** One attempt: DNS, connect, headers and body excerpt, in ms. */
  timeoutMs: number;
  connectTimeoutMs: number;
  /** Lease of an attempt: after a crash the delivery is due again this long after its claim. Must exceed timeoutMs. */
  leaseMs: number;
  /** Response body bytes read and stored per attempt. */
  responseExcerptBytes: number;
  /** Attempts in flight, over all endpoints. */
  maxInFlight: number;
  /** Attempts in flight per origin (scheme://host:port). */
  perOriginConcurrency: number;
  /** How often the outbox is re-scanned for due work this process was not told about (other processes, expired leases). */
  pollIntervalMs: number;
}

export interface EventHooksOptions {
  /** SQLite file (created if missing). Give `database` or `store`. */
  database?: string;
  /** `normal` (crash-safe, default) or `full` (power-loss-safe). */
  synchronous?: 'normal' | 'full';
  /** Another store implementation (the service does not close a store it was given). */
  store?: EventHookStore;
  /** Milliseconds clock used for snooze windows, timestamps and due times. */
  clock?: HookClock;
  logger?: Logger;
  /** Random source in [0, 1) for jitter. */
  random?: () => number;
  delivery?: Partial<DeliveryOptions>;
  circuit?: Partial<CircuitOptions>;
  ssrf?: SsrfPolicyOptions & { lookup?: LookupFn };
  /** Attempts and finished deliveries are deleted after this long (ms). */
  retentionMs?: number;
  /** How often the retention sweeper runs (ms). */
  sweepIntervalMs?: number;
  /** Entities of the `crud` source listed by sources() (emitCrud adds others as they come). */
  crudEntities?: readonly string[];
  /** Largest event data accepted, as JSON bytes. */
  maxEventBytes?: number;
  /** Where a `wasm` hook's `module.path` is looked up (the config's wasm.modules_dir); null: only base64 modules. */
  modulesDir?: string | null;
  /** Kong's ping on create/update of a webhook hook, through the outbox (default false). */
  pingOnChange?: boolean;
}

export const DEFAULTS = {
  delivery: {
    retrySchedule: DEFAULT_RETRY_SCHEDULE_MS,
    jitter: 'full',
    retryAfterCapMs: 3_600_000, // 1 h
    timeoutMs: 15_000,
    connectTimeoutMs: 10_000,
    leaseMs: 60_000,
    responseExcerptBytes: 16 * 1024, // 16 KiB
    maxInFlight: 256,
    perOriginConcurrency: 16,
    pollIntervalMs: 5_000,
  } satisfies DeliveryOptions,
  circuit: {
    failureThreshold: 5,
    failureRatio: 0.5,
    minRequests: 20,
    windowMs: 60_000,
    coolDownMs: 30_000,
  } satisfies CircuitOptions,
  retentionMs: 7 * 24 * 3_600_000, // 7 days
  sweepIntervalMs: 60_000,
  crudEntities: DEFAULT_CRUD_ENTITIES,
  maxEventBytes: 256 * 1024, // 256 KiB
  pingOnChange: false,
} as const;

export const MAX_TIMEOUT_MS = 2_147_483_647;

function int(name: string, v: unknown, min: number, max = MAX_TIMEOUT_MS): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new TypeError(`${name} must be an integer between ${min} and ${max}`);
  }
  return v;
}

export interface ResolvedOptions {
  delivery: DeliveryOptions;
  circuit: CircuitOptions;
  retentionMs: number;
  sweepIntervalMs: number;
  crudEntities: readonly string[];
  maxEventBytes: number;
  pingOnChange: boolean;
  modulesDir: string | null;
}

export function resolveOptions(o: EventHooksOptions): ResolvedOptions {
  if (!o.store && typeof o.database !== 'string') throw new TypeError('database (a SQLite file path) or store is required');
  const d = { ...DEFAULTS.delivery, ...o.delivery };
  if (!Array.isArray(d.retrySchedule) || d.retrySchedule.some((s) => !Number.isInteger(s) || s < 0 || s > MAX_TIMEOUT_MS)) {
    throw new TypeError('delivery.retrySchedule must be a list of non-negative integer milliseconds');
  }
  if (d.jitter !== 'full' && d.jitter !== 'none') throw new TypeError('delivery.jitter must be "full" or "none"');
  int('delivery.retryAfterCapMs', d.retryAfterCapMs, 0);
  int('delivery.timeoutMs', d.timeoutMs, 1);
  int('delivery.connectTimeoutMs', d.connectTimeoutMs, 1);
  int('delivery.leaseMs', d.leaseMs, 1);
  if (d.leaseMs <= d.timeoutMs) {
    throw new TypeError('delivery.leaseMs must exceed delivery.timeoutMs (else a slow attempt could be sent twice)');
  }
  int('delivery.responseExcerptBytes', d.responseExcerptBytes, 0, 16 * 1024 * 1024);
  int('delivery.maxInFlight', d.maxInFlight, 1, 100_000);
  int('delivery.perOriginConcurrency', d.perOriginConcurrency, 1, 10_000);
  int('delivery.pollIntervalMs', d.pollIntervalMs, 10);
  const c = { ...DEFAULTS.circuit, ...o.circuit };
  int('circuit.failureThreshold', c.failureThreshold, 1, 1_000_000);
  if (typeof c.failureRatio !== 'number' || !(c.failureRatio > 0 && c.failureRatio <= 1)) {
    throw new TypeError('circuit.failureRatio must be a number in (0, 1]');
  }
  int('circuit.minRequests', c.minRequests, 1, 1_000_000);
  int('circuit.windowMs', c.windowMs, 1);
  int('circuit.coolDownMs', c.coolDownMs, 1);
  const retentionMs = int('retentionMs', o.retentionMs ?? DEFAULTS.retentionMs, 1, Number.MAX_SAFE_INTEGER);
  const sweepIntervalMs = int('sweepIntervalMs', o.sweepIntervalMs ?? DEFAULTS.sweepIntervalMs, 10);
  const maxEventBytes = int('maxEventBytes', o.maxEventBytes ?? DEFAULTS.maxEventBytes, 2, 64 * 1024 * 1024);
  const crudEntities = o.crudEntities ?? DEFAULTS.crudEntities;
  if (!Array.isArray(crudEntities) || crudEntities.some((e) => typeof e !== 'string' || e.length === 0)) {
    throw new TypeError('crudEntities must be a list of entity names');
  }
  return {
    delivery: d,
    circuit: c,
    retentionMs,
    sweepIntervalMs,
    crudEntities,
    maxEventBytes,
    pingOnChange: o.pingOnChange ?? DEFAULTS.pingOnChange,
    modulesDir: o.modulesDir ?? null,
  };
}
