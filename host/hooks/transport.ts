/**
 * Sends one webhook request: resolve and vet the host (ssrf.ts), then connect
 * to the vetted address through an undici Pool pinned to it. The pool key is
 * (origin, address, TLS verification), so a kept-alive connection is always
 * to an address vetted when it was opened, Host and SNI stay the URL's host,
 * and a DNS change simply leads to another pool.
 *
 * Redirects are never followed (undici's Pool does not follow them: a 3xx is
 * returned as is). The response body is read only up to a cap. Timeouts: the
 * DNS lookup and (through undici) the wait for the response headers and for
 * each body chunk are bounded by `timeoutMs`; connecting by `connectTimeoutMs`.
 */
import { Pool, buildConnector } from 'undici';
import { WebhookRequestError } from '../errors.js';
import { parseIp, resolveAndVet, type LookupFn, type SsrfPolicy } from './ssrf.js';

export interface TransportOptions {
  policy: SsrfPolicy;
  lookup: LookupFn;
  /** DNS lookup; response headers; each response body chunk. */
  timeoutMs: number;
  connectTimeoutMs: number;
  /** Bytes of response body kept (the rest is not read). */
  responseExcerptBytes: number;
  /** Connections per (origin, address) pool. */
  connectionsPerOrigin: number;
  /** How long an unused pool lives. */
  idlePoolMs?: number;
}

export interface OutboundRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: Buffer | null;
  sslVerify: boolean;
}

export interface InboundResponse {
  status: number;
  headers: Record<string, string>;
  /** The first bytes of the body, decoded as UTF-8. */
  excerpt: string;
  /** The address connected to. */
  address: string;
}

interface ParsedUrl {
  origin: string;
  hostname: string;
  /** Path and query. */
  path: string;
}

interface PoolEntry {
  pool: Pool;
  active: number;
  lastUsed: number;
}

const TLS_CODE = /^(ERR_TLS|ERR_SSL|CERT_|UNABLE_TO_|DEPTH_ZERO|SELF_SIGNED|HOSTNAME_MISMATCH|ERR_OSSL)/;

export class Transport {
  private readonly pools = new Map<string, PoolEntry>();
  private readonly urls = new Map<string, ParsedUrl>();
  /** Vetted IP-literal hosts (the policy never changes, and a literal needs no DNS). */
  private readonly literals = new Map<string, string[]>();
  private readonly sweeper: NodeJS.Timeout;
  private readonly idlePoolMs: number;
  private closed = false;

  constructor(private readonly options: TransportOptions) {
    this.idlePoolMs = options.idlePoolMs ?? 60_000;
    this.sweeper = setInterval(() => this.sweep(), Math.min(30_000, this.idlePoolMs)).unref();
  }

  /**
   * Sends `req`; resolves with the response (any status) or rejects with a
   * WebhookRequestError (refused, invalid_request, dns, connect, tls, timeout, network).
   */
  async send(req: OutboundRequest): Promise<InboundResponse> {
    const u = this.parse(req.url);
    if (this.closed) throw new WebhookRequestError('network', 'transport is closed');
    let entry: PoolEntry | undefined;
    try {
      const addresses = this.literals.get(u.hostname) ?? (await this.vet(u.hostname));
      const address = addresses[0]!;
      entry = this.pool(u, address, req.sslVerify);
      entry.active++;
      // undici bounds the wait for the headers and for each body chunk (headersTimeout / bodyTimeout = timeoutMs).
      const res = await entry.pool.request({ path: u.path, method: req.method as 'POST', headers: req.headers, body: req.body });
      const length = Number(res.headers['content-length']);
      const excerpt =
        length >= 0 && length <= this.options.responseExcerptBytes ? await res.body.text() : await readExcerpt(res.body, this.options.responseExcerptBytes);
      const headers: Record<string, string> = {};
      for (const k in res.headers) {
        const v = res.headers[k];
        if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
      }
      return { status: res.statusCode, headers, excerpt, address };
    } catch (err) {
      throw this.mapError(err, u);
    } finally {
      if (entry) {
        entry.active--;
        entry.lastUsed = Date.now();
      }
    }
  }

  /** Parses and checks a URL; the result is cached (hooks send to few URLs, many times). */
  private parse(url: string): ParsedUrl {
    let p = this.urls.get(url);
    if (p) return p;
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      throw new WebhookRequestError('invalid_request', `invalid URL ${JSON.stringify(url.slice(0, 200))}`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') {
      throw new WebhookRequestError('invalid_request', `URL scheme must be http or https (found ${u.protocol})`);
    }
    if (u.username || u.password) throw new WebhookRequestError('invalid_request', 'URL must not contain credentials');
    p = { origin: u.origin, hostname: u.hostname, path: `${u.pathname}${u.search}` };
    if (this.urls.size >= 1000) this.urls.delete(this.urls.keys().next().value!);
    this.urls.set(url, p);
    return p;
  }

  private async vet(hostname: string): Promise<string[]> {
    const addresses = await resolveAndVet(hostname, this.options.policy, this.options.lookup, this.options.timeoutMs);
    const bare = hostname.startsWith('[') ? hostname.slice(1, -1) : hostname;
    if (parseIp(bare) && this.literals.size < 10_000) this.literals.set(hostname, addresses);
    return addresses;
  }

  private pool(u: ParsedUrl, address: string, sslVerify: boolean): PoolEntry {
    const key = `${u.origin}|${address}|${sslVerify ? 1 : 0}`;
    let entry = this.pools.get(key);
    if (!entry) {
      const base = buildConnector({ rejectUnauthorized: sslVerify, timeout: this.options.connectTimeoutMs });
      const pool = new Pool(u.origin, {
        connections: this.options.connectionsPerOrigin,
        pipelining: 1,
        keepAliveTimeout: 4_000,
        headersTimeout: this.options.timeoutMs,
        bodyTimeout: this.options.timeoutMs,
        // Pin the vetted address; `host` (the origin's host:port) still gives SNI and the Host header.
        connect: (opts, callback) => base({ ...opts, hostname: address }, callback),
      });
      entry = { pool, active: 0, lastUsed: Date.now() };
      this.pools.set(key, entry);
    }
    return entry;
  }

  private mapError(err: unknown, u: ParsedUrl): WebhookRequestError {
    if (err instanceof WebhookRequestError) return err;
    const e = err as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
    const code = e.code ?? e.cause?.code ?? '';
    if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
      return new WebhookRequestError('timeout', `${u.origin} did not answer within ${this.options.timeoutMs} ms`, { cause: err });
    }
    if (code === 'UND_ERR_CONNECT_TIMEOUT') {
      return new WebhookRequestError('timeout', `connecting to ${u.origin} timed out after ${this.options.connectTimeoutMs} ms`, { cause: err });
    }
    if (TLS_CODE.test(code)) return new WebhookRequestError('tls', `TLS error with ${u.origin}: ${code} ${e.message}`, { cause: err });
    if (code === 'ECONNREFUSED' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH' || code === 'EADDRNOTAVAIL') {
      return new WebhookRequestError('connect', `cannot connect to ${u.origin}: ${code}`, { cause: err });
    }
    return new WebhookRequestError('network', `request to ${u.origin} failed: ${code ? `${code} ` : ''}${e.message}`, { cause: err });
  }

  private sweep(): void {
    const cutoff = Date.now() - this.idlePoolMs;
    for (const [key, entry] of this.pools) {
      if (entry.active === 0 && entry.lastUsed < cutoff) {
        this.pools.delete(key);
        entry.pool.close().catch(() => {});
      }
    }
  }

  /** Pools currently open (for tests and metrics). */
  get poolCount(): number {
    return this.pools.size;
  }

  /** Closes every pool; in-flight requests are aborted after `graceMs`. */
  async close(graceMs = 0): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweeper);
    const pools = [...this.pools.values()].map((e) => e.pool);
    this.pools.clear();
    await Promise.all(
      pools.map(async (p) => {
        const t = setTimeout(() => p.destroy().catch(() => {}), graceMs);
        try {
          await p.close();
        } catch {
          // destroyed meanwhile
        } finally {
          clearTimeout(t);
        }
      }),
    );
  }
}

/** Reads at most `cap` bytes of a body of unknown or larger length, then drops the rest. */
function readExcerpt(body: NodeJS.ReadableStream & { destroy(): unknown }, cap: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (): void => resolve(Buffer.concat(chunks, size).toString('utf8'));
    body.on('data', (chunk: Buffer) => {
      const room = cap - size;
      if (chunk.length < room) {
        chunks.push(chunk);
        size += chunk.length;
        return;
      }
      if (room > 0) chunks.push(chunk.subarray(0, room));
      size = cap;
      body.removeAllListeners('data');
      body.destroy(); // the rest is never read (the connection is closed)
      done();
    });
    body.on('end', done);
    body.on('error', (err) => (size >= cap ? done() : reject(err)));
  });
}
