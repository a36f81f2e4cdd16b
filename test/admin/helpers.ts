/**
 * Helpers of the Admin API tests: the whole app (startHookwire) on loopback
 * port 0 with its event-hooks store in a temp dir, a JSON client for the
 * admin listener, and webhook receivers that keep the raw bytes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { startHookwire, type Hookwire, type HookwireOptions } from '../../host/cli/app.js';
import { memoryLogger, testConfig, type LogLine } from '../helpers/gateway.js';

export interface TestApp {
  readonly app: Hookwire;
  /** Proxy base URL. */
  readonly url: string;
  /** Admin base URL. */
  readonly admin: string;
  readonly lines: LogLine[];
  readonly dir: string;
  close(): Promise<void>;
}

/**
 * The app from a config document: proxy and admin on 127.0.0.1 port 0, the
 * event-hooks store a SQLite file in a fresh temp dir, loopback webhooks
 * allowed, short retries without jitter (unless the document says otherwise).
 */
export async function startTestApp(doc: Record<string, unknown> = {}, options: Partial<HookwireOptions> = {}): Promise<TestApp> {
  const dir = mkdtempSync(join(tmpdir(), 'hookwire-admin-'));
  const { logger, lines } = memoryLogger();
  const eh = (doc.event_hooks ?? {}) as Record<string, unknown>;
  const config = testConfig({
    ...doc,
    event_hooks: {
      store: join(dir, 'event-hooks.db'),
      allow_cidrs: ['127.0.0.1/32'],
      close_timeout_ms: 1000,
      ...eh,
      delivery: { retry_schedule_ms: [50, 100, 200], jitter: 'none', timeout_ms: 3000, lease_ms: 5000, poll_interval_ms: 200, ...(eh.delivery as object) },
    },
  });
  const app = await startHookwire(config, { logger, runtime: { reloadBackoffMs: 0 }, ...options });
  return {
    app,
    url: app.gateway.listeners[0]!.url,
    admin: app.adminListener.url,
    lines,
    dir,
    async close() {
      await app.close({ drainTimeoutMs: 500 });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  body: any;
}

const agent = new Agent({ keepAliveTimeout: 1000, connections: 16 });

/** One request; `body` objects are sent as JSON. */
export async function call(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const hasBody = body !== undefined;
  const res = await request(base + path, {
    method: method as 'GET',
    headers: { ...(hasBody && typeof body !== 'string' ? { 'content-type': 'application/json' } : {}), ...headers },
    body: hasBody ? (typeof body === 'string' ? body : JSON.stringify(body)) : undefined,
    dispatcher: agent,
  });
  const text = await res.body.text();
  let parsed: unknown = undefined;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: res.statusCode, headers: res.headers, text, body: parsed };
}

export interface Hit {
  method: string;
  url: string;
  headers: Record<string, string>;
  /** The raw bytes, exactly as they arrived. */
  raw: Buffer;
  json: any;
}

export interface Receiver {
  readonly url: string;
  readonly port: number;
  readonly hits: Hit[];
  /** How to answer (default 200 "ok"). */
  answer: (hit: Hit, res: ServerResponse) => void;
  waitFor(pred: (hits: Hit[]) => boolean, what: string, ms?: number): Promise<void>;
  close(): Promise<void>;
}

/** An HTTP server on 127.0.0.1 port 0 recording every request. */
export async function startReceiver(): Promise<Receiver> {
  const hits: Hit[] = [];
  const r = {
    hits,
    answer: (_hit: Hit, res: ServerResponse) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok');
    },
  } as Receiver;
  const server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
      const raw = Buffer.concat(chunks);
      let json: unknown;
      try {
        json = JSON.parse(raw.toString('utf8'));
      } catch {
        json = undefined;
      }
      const hit: Hit = { method: req.method!, url: req.url!, headers, raw, json };
      hits.push(hit);
      r.answer(hit, res);
    });
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const port = (server.address() as AddressInfo).port;
  Object.assign(r, {
    port,
    url: `http://127.0.0.1:${port}/hook`,
    waitFor: (pred: (h: Hit[]) => boolean, what: string, ms = 10_000) => waitFor(() => (pred(hits) ? null : `${what} (got ${hits.length} requests)`), ms),
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  });
  return r;
}

/** Poll until `what()` returns null (done) or the deadline passes; the error says what was still missing. */
export async function waitFor(what: () => string | null | Promise<string | null>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    const missing = await what();
    if (missing === null) return;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms: ${missing}`);
    await new Promise((res) => setTimeout(res, 20));
  }
}
