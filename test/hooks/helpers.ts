/** Shared helpers of the event-hooks tests: loopback receivers, temp SQLite files, a captured logger. */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { EventHooks, type EventHooksOptions } from '../../host/hooks/index.js';
import type { NewEvent } from '../../host/hooks/store.js';

export interface Received {
  method: string;
  url: string;
  headers: Record<string, string>;
  /** The raw bytes, exactly as they arrived. */
  body: Buffer;
  at: number;
}

export type Handler = (req: Received, res: ServerResponse, n: number) => void | Promise<void>;

export interface Receiver {
  url: string;
  origin: string;
  received: Received[];
  handler: Handler;
  waitFor(n: number, timeoutMs?: number): Promise<Received[]>;
  close(): Promise<void>;
}

/** An HTTP server on 127.0.0.1 (port 0) recording every request; answers 200 "ok" unless `handler` says otherwise. */
export async function receiver(handler?: Handler): Promise<Receiver> {
  const received: Received[] = [];
  const r: Partial<Receiver> = { received, handler: handler ?? ((_, res) => void res.end('ok')) };
  const server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
      const rec: Received = { method: req.method!, url: req.url!, headers, body: Buffer.concat(chunks), at: Date.now() };
      received.push(rec);
      Promise.resolve(r.handler!(rec, res, received.length)).catch(() => res.destroy());
    });
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const port = (server.address() as AddressInfo).port;
  r.origin = `http://127.0.0.1:${port}`;
  r.url = `${r.origin}/hook`;
  r.waitFor = (n, timeoutMs = 10_000) => waitUntil(() => (received.length >= n ? received : undefined), timeoutMs, `${n} requests (got ${received.length})`);
  r.close = () =>
    new Promise<void>((ok) => {
      server.closeAllConnections();
      server.close(() => ok());
    });
  return r as Receiver;
}

/** Polls `fn` until it returns something other than undefined/false. */
export async function waitUntil<T>(fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function tempDir(): { dir: string; db: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'hookwire-hooks-'));
  return { dir, db: join(dir, 'hooks.db'), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface CapturedLogger {
  logger: Logger;
  lines: Record<string, unknown>[];
}

export function capturedLogger(level = 'debug'): CapturedLogger {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: pino({ level }, stream), lines };
}

export interface TestService {
  hooks: EventHooks;
  log: CapturedLogger;
  db: string;
  close(): Promise<void>;
}

/** A service on a temp SQLite file, loopback allowed, short schedules, no jitter; started unless `start: false`. */
export async function testService(options: Partial<EventHooksOptions> = {}, start = true): Promise<TestService> {
  const t = tempDir();
  const log = capturedLogger();
  const hooks = new EventHooks({
    database: t.db,
    logger: log.logger,
    ...options,
    ssrf: { allowCidrs: ['127.0.0.1/32'], ...options.ssrf },
    delivery: { retrySchedule: [50, 50, 50], jitter: 'none', timeoutMs: 3000, leaseMs: 5000, ...options.delivery },
  });
  if (start) await hooks.start();
  return {
    hooks,
    log,
    db: t.db,
    close: async () => {
      await hooks.close({ timeoutMs: 1000 });
      t.cleanup();
    },
  };
}

/** Publish + emit records for a plugin source. */
export function publishRecord(source: string, event: string, unique: string[] = [], fields: string[] = []): Record<string, unknown> {
  return { v: 1, type: 'publish', source, event, fields, unique, description: '', plugin: 'test-plugin' };
}

export function emitRecord(source: string, event: string, data: Record<string, unknown>): Record<string, unknown> {
  return { v: 1, type: 'emit', source, event, data, plugin: 'test-plugin', time_ms: Date.now() };
}

let outboxEventCount = 0;

/**
 * Events for the outbox store tests, one delivery each (hook "h", the given
 * origin), numbered across the test run: data {"n": k}, ids evt_/msg_ + k.
 */
export function outboxEvents(count: number, origin: string): NewEvent[] {
  return Array.from({ length: count }, () => {
    const k = ++outboxEventCount;
    return {
      id: `evt_${String(k).padStart(6, '0')}`,
      source: 's',
      event: 'e',
      json: `{"n":${k}}`,
      plugin: null,
      occurredAtMs: 0,
      deliveries: [{ id: `msg_${String(k).padStart(6, '0')}`, hookId: 'h', origin }],
    };
  });
}

/** The number of the last event outboxEvents made. */
export const lastOutboxEvent = (): number => outboxEventCount;

