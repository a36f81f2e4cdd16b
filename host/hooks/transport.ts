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
  /** A record, or a flat name/value list (what signRequest makes: undici takes it without walking an object). */
  headers: Readonly<Record<string, string>> | readonly string[];
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
  /** The pool this URL last used (most hooks send to one address): skips building the pool key. */
  last: PoolEntry | null;
}

interface PoolEntry {
  pool: Pool;
  address: string;
  sslVerify: boolean;
  active: number;
  lastUsed: number;
  /** Swept or closed: no longer in `pools`. */
  retired: boolean;
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
   * Not an async function: an address already vetted (an IP literal) goes
   * straight to its pool, one promise per request.
   */
  send(req: OutboundRequest): Promise<InboundResponse> {
    let u: ParsedUrl;
    try {
      u = this.parse(req.url);
    } catch (err) {
      return Promise.reject(err);
    }
    if (this.closed) return Promise.reject(new WebhookRequestError('network', 'transport is closed'));
    const known = this.literals.get(u.hostname);
    if (known !== undefined) return this.dispatch(u, known[0]!, req);
    return this.vet(u.hostname).then(
      (addresses) => this.dispatch(u, addresses[0]!, req),
      (err: unknown) => Promise.reject(this.mapError(err, u)),
    );
  }

  /** Sends `req` to the vetted `address` through its pool. */
  private dispatch(u: ParsedUrl, address: string, req: OutboundRequest): Promise<InboundResponse> {
    let entry: PoolEntry;
    try {
      entry = this.pool(u, address, req.sslVerify);
    } catch (err) {
      return Promise.reject(this.mapError(err, u));
    }
    entry.active++;
    // undici bounds the wait for the headers and for each body chunk (headersTimeout / bodyTimeout = timeoutMs).
    // A raw dispatch handler: no response stream, no async resource, one promise per request.
    return new Promise<InboundResponse>((resolve, reject) => {
      const handler = new ResponseHandler(this, entry, u, address, resolve, reject);
      try {
        entry.pool.dispatch({ path: u.path, method: req.method as 'POST', headers: req.headers as string[], body: req.body }, handler);
      } catch (err) {
        handler.onError(err as Error);
      }
    });
  }

  /** A request through `entry` ended (answered or failed). */
  released(entry: PoolEntry): void {
    entry.active--;
    entry.lastUsed = Date.now();
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
    p = { origin: u.origin, hostname: u.hostname, path: `${u.pathname}${u.search}`, last: null };
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
    const last = u.last;
    if (last !== null && !last.retired && last.address === address && last.sslVerify === sslVerify) return last;
    u.last = this.poolFor(u, address, sslVerify);
    return u.last;
  }

  private poolFor(u: ParsedUrl, address: string, sslVerify: boolean): PoolEntry {
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
      entry = { pool, address, sslVerify, active: 0, lastUsed: Date.now(), retired: false };
      this.pools.set(key, entry);
    }
    return entry;
  }

  /** A failure as the WebhookRequestError the caller gets. */
  mapError(err: unknown, u: ParsedUrl): WebhookRequestError {
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
        entry.retired = true;
        entry.pool.close().catch(() => {});
      }
    }
  }

  /** Bytes of a response body kept. */
  get excerptBytes(): number {
    return this.options.responseExcerptBytes;
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
    const pools = [...this.pools.values()].map((e) => {
      e.retired = true;
      return e.pool;
    });
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

/** Raw header pairs (name, value as Buffers) as a record; repeated names joined with ", ". */
function headerRecord(raw: Buffer[] | string[] | null): Record<string, string> {
  // Null prototype: names come from the endpoint (`constructor`, `__proto__` are plain names here).
  const headers = Object.create(null) as Record<string, string>;
  if (!raw) return headers;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const k = raw[i]!.toString('latin1').toLowerCase();
    const v = raw[i + 1]!.toString('latin1');
    const cur = headers[k];
    headers[k] = cur === undefined ? v : `${cur}, ${v}`;
  }
  return headers;
}

/**
 * undici's (legacy, unwrapped) dispatch handler for one webhook request: keeps
 * the status, the headers and the first `cap` bytes of the body; once the cap
 * is reached the rest is not read (the request is aborted and its connection
 * closed) and the excerpt is the answer.
 */
class ResponseHandler {
  private abort: ((err?: Error) => void) | null = null;
  private status = 0;
  private rawHeaders: Buffer[] | string[] | null = null;
  private chunks: Buffer[] = [];
  private size = 0;
  private settled = false;
  private readonly cap: number;

  constructor(
    private readonly transport: Transport,
    private readonly entry: PoolEntry,
    private readonly url: ParsedUrl,
    private readonly address: string,
    private readonly resolve: (res: InboundResponse) => void,
    private readonly reject: (err: unknown) => void,
  ) {
    this.cap = transport.excerptBytes;
  }

  onConnect(abort: (err?: Error) => void): void {
    this.abort = abort;
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[] | string[], _resume: () => void): boolean {
    if (statusCode < 200) return true; // informational: the final answer follows
    this.status = statusCode;
    this.rawHeaders = rawHeaders;
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.settled) return false;
    const room = this.cap - this.size;
    if (chunk.length < room) {
      this.chunks.push(chunk);
      this.size += chunk.length;
      return true;
    }
    if (room > 0) this.chunks.push(chunk.subarray(0, room));
    this.size = this.cap;
    // The rest is never read: settle with the excerpt, then drop the connection.
    this.finish();
    this.abort?.();
    return false;
  }

  onComplete(): void {
    this.finish();
  }

  onError(err: Error): void {
    if (this.settled) return;
    this.settled = true;
    this.transport.released(this.entry);
    this.reject(this.transport.mapError(err, this.url));
  }

  private finish(): void {
    if (this.settled) return;
    this.settled = true;
    this.transport.released(this.entry);
    const c = this.chunks;
    const excerpt = c.length === 0 ? '' : c.length === 1 ? c[0]!.toString('utf8') : Buffer.concat(c, this.size).toString('utf8');
    this.resolve(new Response(this.status, this.rawHeaders, excerpt, this.address));
  }
}

/** An answer whose header record is built only when read (a 2xx delivery never reads it). */
class Response implements InboundResponse {
  private record: Record<string, string> | null = null;

  constructor(
    readonly status: number,
    private readonly rawHeaders: Buffer[] | string[] | null,
    readonly excerpt: string,
    readonly address: string,
  ) {}

  get headers(): Record<string, string> {
    return (this.record ??= headerRecord(this.rawHeaders));
  }
}
