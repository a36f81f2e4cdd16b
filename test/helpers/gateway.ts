/**
 * Start a Gateway (or the whole app with its admin listener) on 127.0.0.1
 * port 0 from a config document, with logs captured in memory, and send it
 * requests with undici.
 */
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { Agent, request } from 'undici';
import { validateConfigObject } from '../../host/config/load.js';
import type { HookwireConfig } from '../../host/config/schema.js';
import { startHookwire, type Hookwire } from '../../host/cli/app.js';
import { Gateway, type GatewayOptions } from '../../host/proxy/gateway.js';
import { ROOT } from './paths.js';

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

/** A pino logger writing parsed lines into `lines`. */
export function memoryLogger(level = 'debug'): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line) as LogLine);
      cb();
    },
  });
  return { logger: pino({ level }, stream), lines };
}

/** A config document with the proxy on port 0 (and the admin listener on port 0), the event-hooks store in memory. */
export function testConfig(doc: Record<string, unknown>): HookwireConfig {
  const proxy = (doc.proxy ?? {}) as Record<string, unknown>;
  return validateConfigObject(
    {
      ...doc,
      proxy: { listen: [{ address: '127.0.0.1', port: 0 }], ...proxy },
      admin: { listen: { address: '127.0.0.1', port: 0 }, ...((doc.admin ?? {}) as object) },
      // Tests keep the event-hooks store and the entity store in memory unless they name a file.
      event_hooks: { store: ':memory:', ...((doc.event_hooks ?? {}) as object) },
      storage: { path: ':memory:', ...((doc.storage ?? {}) as object) },
    },
    'test-config',
    { baseDir: ROOT },
  );
}

export interface TestGateway {
  readonly gateway: Gateway;
  readonly url: string;
  readonly lines: LogLine[];
  close(): Promise<void>;
}

export async function startGateway(doc: Record<string, unknown>, options: Omit<GatewayOptions, 'logger'> = {}): Promise<TestGateway> {
  const { logger, lines } = memoryLogger();
  const gateway = await Gateway.start(testConfig(doc), { ...options, logger, runtime: { reloadBackoffMs: 0, ...options.runtime } });
  return { gateway, url: gateway.listeners[0]!.url, lines, close: () => gateway.close({ drainTimeoutMs: 1000 }) };
}

export async function startApp(doc: Record<string, unknown>): Promise<{ app: Hookwire; url: string; admin: string; lines: LogLine[] }> {
  const { logger, lines } = memoryLogger();
  const app = await startHookwire(testConfig(doc), { logger, runtime: { reloadBackoffMs: 0 } });
  return { app, url: app.gateway.listeners[0]!.url, admin: app.adminListener.url, lines };
}

export interface Reply {
  status: number;
  trailers: Record<string, string | string[] | undefined>;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json<T = any>(): T;
}

/** One request; the body is read whole. A fresh agent per test file keeps connections from leaking between gateways. */
export async function send(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string | Buffer; dispatcher?: Agent } = {},
): Promise<Reply> {
  const res = await request(url, {
    method: (options.method ?? 'GET') as 'GET',
    headers: options.headers,
    body: options.body,
    dispatcher: options.dispatcher,
  });
  const text = await res.body.text();
  return {
    status: res.statusCode,
    trailers: res.trailers,
    headers: res.headers,
    text,
    json: () => JSON.parse(text),
  };
}

/** Poll `fn` until it returns true (at most `ms`). */
export async function until(fn: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Send a request as raw bytes over a fresh connection (headers exactly as given); resolves with the raw response. */
export async function rawRequest(url: string, head: string, body = ''): Promise<string> {
  const { connect } = await import('node:net');
  const u = new URL(url);
  return new Promise<string>((resolve, reject) => {
    const socket = connect(Number(u.port), u.hostname, () => socket.write(head + body)); // the server closes (send Connection: close)
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => resolve(Buffer.concat(chunks).toString('latin1')));
    socket.on('error', reject);
    socket.setTimeout(5000, () => socket.destroy(new Error('raw request timed out')));
  });
}
