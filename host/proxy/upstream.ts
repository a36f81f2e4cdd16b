/**
 * Upstream connections: one undici Pool per service origin (and per timeout,
 * size, protocol and CA settings), shared by every generation that uses it
 * and closed when the last one is gone; the targets a service forwards to;
 * error classification; and the proxy_http_call transport over the same pools.
 *
 * A service with `http2` gets an HTTP/2 pool: over TLS undici offers "h2" by
 * ALPN (the upstream may still choose HTTP/1.1), over plaintext it speaks h2c
 * with prior knowledge. The request path is the same either way: undici turns
 * the Host header into `:authority`, and the hop-by-hop headers HTTP/2 forbids
 * (RFC 9113 8.2.2) are already left out of every forwarded request.
 */
import { createHash } from 'node:crypto';
import { Pool } from 'undici';
import { HeaderMap } from '../abi/header-map.js';
import type { ServiceConfig } from '../config/schema.js';
import { MAX_TIMER_MS } from '../vm/limits.js';
import type { HttpCallFailure, HttpCallRequest, HttpCallResponse, HttpCallTransport } from '../vm/plugin.js';
import type { UpstreamErrorKind } from './metrics.js';
import { readCaBundle } from './tls.js';

/** Where a service forwards: one of its URLs. */
export interface UpstreamTarget {
  readonly pool: Pool;
  readonly poolKey: string;
  /** "http://host:port" */
  readonly origin: string;
  /** Host header Kong sends by default (preserve_host off): the URL's host[:port]. */
  readonly host: string;
  /** The URL's path without a lone "/", prepended to the upstream path ("" for none). */
  readonly basePath: string;
  /** "host:port" (upstream.address). */
  readonly address: string;
  /** The service's CA bundle for an https target (null: Node's root CAs), for connections made outside the pool (upgrades). */
  readonly ca: Buffer | null;
}

export interface PoolSettings {
  readonly connectTimeoutMs: number;
  readonly readTimeoutMs: number;
  readonly connections: number;
  /** HTTP/2: "h2" offered by ALPN over TLS, prior-knowledge h2c over plaintext (absent: HTTP/1.1). */
  readonly http2?: boolean;
  /** The CAs a TLS upstream's certificate must chain to (absent: Node's root CAs). */
  readonly ca?: UpstreamCa;
}

/** A service's ca_file as read when its pools are built; `digest` tells a changed file apart on reload. */
export interface UpstreamCa {
  readonly pem: Buffer;
  readonly digest: string;
}

/** Read a service's ca_file (TlsConfigError naming the file when it cannot be used). */
export function readUpstreamCa(file: string): UpstreamCa {
  const pem = readCaBundle(file);
  return { pem, digest: createHash('sha256').update(pem).digest('hex') };
}

/** What the pools' connector gets; undici 7 reads `useH2c` (its H2CClient sets it), which its BuildOptions type does not declare. */
interface ConnectOptions {
  timeout: number;
  ca?: Buffer;
  useH2c?: boolean;
}

function poolOptions(origin: string, settings: PoolSettings): Pool.Options {
  const connect: ConnectOptions = { timeout: settings.connectTimeoutMs };
  if (settings.ca !== undefined) connect.ca = settings.ca.pem;
  // Plaintext has no ALPN: the client must know the upstream speaks HTTP/2 (RFC 9113 3.3), and says so.
  if (settings.http2 === true && origin.startsWith('http:')) connect.useH2c = true;
  return {
    connections: settings.connections,
    connect,
    allowH2: settings.http2 === true,
    headersTimeout: settings.readTimeoutMs,
    bodyTimeout: settings.readTimeoutMs,
  };
}

interface PoolEntry {
  readonly pool: Pool;
  refs: number;
}

/** Reference-counted pools, keyed by origin and settings. */
export class PoolRegistry {
  private readonly pools = new Map<string, PoolEntry>();

  acquire(origin: string, settings: PoolSettings): { pool: Pool; key: string } {
    const protocol = settings.http2 === true ? 'h2' : 'h1';
    const key = `${origin}|${settings.connectTimeoutMs}|${settings.readTimeoutMs}|${settings.connections}|${protocol}|${settings.ca?.digest ?? ''}`;
    let entry = this.pools.get(key);
    if (!entry) {
      const pool = new Pool(origin, poolOptions(origin, settings));
      entry = { pool, refs: 0 };
      this.pools.set(key, entry);
    }
    entry.refs++;
    return { pool: entry.pool, key };
  }

  /** Drop a reference; the last one closes the pool (gracefully: running requests finish). */
  release(key: string): void {
    const entry = this.pools.get(key);
    if (!entry) return;
    if (--entry.refs > 0) return;
    this.pools.delete(key);
    entry.pool.close().catch(() => entry.pool.destroy().catch(() => {}));
  }

  get size(): number {
    return this.pools.size;
  }

  /** Close every pool (shutdown). */
  async closeAll(): Promise<void> {
    const all = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(all.map((e) => e.pool.destroy().catch(() => {})));
  }
}

/**
 * Targets of a service, acquiring their pools from `registry`. The service's
 * ca_file is read first, so a file that cannot be used throws
 * (TlsConfigError) before any pool is acquired.
 */
export function serviceTargets(service: ServiceConfig, registry: PoolRegistry): UpstreamTarget[] {
  const ca = service.ca_file === null ? undefined : readUpstreamCa(service.ca_file);
  const settings: PoolSettings = {
    connectTimeoutMs: service.connect_timeout_ms,
    readTimeoutMs: service.read_timeout_ms,
    connections: service.pool_size,
    http2: service.http2,
    ca,
  };
  return service.urls.map((text) => {
    const url = new URL(text);
    const port = url.port || (url.protocol === 'https:' ? '443' : '80');
    const { pool, key } = registry.acquire(url.origin, settings);
    return {
      pool,
      poolKey: key,
      origin: url.origin,
      host: url.host,
      basePath: url.pathname === '/' ? '' : url.pathname,
      address: `${url.hostname.replace(/^\[|\]$/g, '')}:${port}`,
      ca: url.protocol === 'https:' ? (ca?.pem ?? null) : null,
    };
  });
}

/** How an upstream failure is answered and counted. */
export interface UpstreamFailure {
  readonly status: 502 | 504;
  readonly kind: UpstreamErrorKind;
  readonly message: string;
  readonly reason: string;
}

function errorCode(err: unknown): string | undefined {
  const e = err as { code?: unknown; errors?: unknown[]; cause?: unknown };
  if (typeof e?.code === 'string') return e.code;
  if (Array.isArray(e?.errors) && e.errors.length > 0) return errorCode(e.errors[0]);
  if (e?.cause) return errorCode(e.cause);
  return undefined;
}

/** Classify an undici error. */
export function classifyUpstreamError(err: unknown): UpstreamFailure {
  const code = errorCode(err) ?? (err as Error)?.name ?? 'unknown';
  const reason = `${code}: ${(err as Error)?.message ?? String(err)}`;
  switch (code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
    case 'ETIMEDOUT':
    case 'TimeoutError':
      return { status: 504, kind: 'timeout', message: 'The upstream server is timing out', reason };
    case 'ECONNREFUSED':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return { status: 502, kind: 'refused', message: 'The upstream server could not be reached', reason };
    case 'ECONNRESET':
    case 'EPIPE':
    case 'UND_ERR_SOCKET':
      return { status: 502, kind: 'reset', message: 'The upstream server closed the connection', reason };
    default:
      return { status: 502, kind: 'error', message: 'An invalid response was received from the upstream server', reason };
  }
}

const PSEUDO = 58; // ":"

/**
 * proxy_http_call over undici. `cluster` resolves a cluster name (a service
 * name, in any workspace) to a target in the serving generation; in
 * non-strict mode a literal "host:port" works only when the configuration
 * lists it (wasm.http_call_targets: `allowed`), with a pool of its own and
 * default settings, kept until close() (so the pools are bounded by the list).
 */
export class HttpCallDispatcher implements HttpCallTransport {
  private readonly literal = new Map<string, { pool: Pool; key: string }>();
  private closed = false;

  constructor(
    private readonly cluster: (name: string) => UpstreamTarget | undefined,
    private readonly registry: PoolRegistry,
    private readonly settings: PoolSettings,
    /** Most response body bytes accepted from a call (more: the call fails). */
    private readonly maxBodyBytes: number,
    /** Whether a literal host:port is listed in the serving configuration. */
    private readonly allowed: (hostPort: string) => boolean = () => false,
  ) {}

  hasUpstream(upstream: string, envoyStrict: boolean): boolean {
    if (this.cluster(upstream)) return true;
    return !envoyStrict && isHostPort(upstream) && this.allowed(upstream);
  }

  private poolFor(upstream: string): { pool: Pool; path: string; host: string } | undefined {
    const target = this.cluster(upstream);
    if (target) return { pool: target.pool, path: target.basePath, host: target.host };
    if (this.closed || !isHostPort(upstream) || !this.allowed(upstream)) return undefined;
    let entry = this.literal.get(upstream);
    if (!entry) {
      entry = this.registry.acquire(`http://${upstream}`, this.settings);
      this.literal.set(upstream, entry);
    }
    return { pool: entry.pool, path: '', host: upstream };
  }

  dispatch(call: HttpCallRequest, done: (result: HttpCallResponse | HttpCallFailure) => void): void {
    const dest = this.poolFor(call.upstream);
    if (!dest) {
      queueMicrotask(() => done({ failure: 'connection', message: `unknown upstream ${call.upstream}` }));
      return;
    }
    let method = 'GET';
    let path = '/';
    let authority = dest.host;
    const headers: string[] = [];
    const flat = call.headers.flat;
    for (let i = 0; i < flat.length; i += 2) {
      const name = flat[i]!;
      const value = flat[i + 1]!;
      if (name.charCodeAt(0) === PSEUDO) {
        if (name === ':method') method = value;
        else if (name === ':path') path = value;
        else if (name === ':authority') authority = value;
      } else if (name === 'te') {
        if (teTrailers(value)) headers.push('te', 'trailers');
      } else if (!isHopByHop(name) && name !== 'host' && name !== 'expect') headers.push(name, value);
    }
    headers.push('host', authority);
    // Clamped to what a Node timer can wait: a longer timeout would fire at once.
    const timeoutMs = call.timeoutMs > 0 ? Math.min(call.timeoutMs, MAX_TIMER_MS) : this.settings.readTimeoutMs;
    const signal = AbortSignal.timeout(timeoutMs);
    void this.run(dest.pool, { method, path: dest.path + path, headers, body: call.body.length > 0 ? call.body : null, signal }, done);
  }

  private async run(
    pool: Pool,
    opts: { method: string; path: string; headers: string[]; body: Buffer | null; signal: AbortSignal },
    done: (result: HttpCallResponse | HttpCallFailure) => void,
  ): Promise<void> {
    let result: HttpCallResponse | HttpCallFailure;
    try {
      const res = await pool.request({ ...opts, method: opts.method as 'GET' });
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of res.body) {
        size += (chunk as Buffer).length;
        if (size > this.maxBodyBytes) {
          res.body.destroy();
          throw new Error(`http call response body exceeds ${this.maxBodyBytes} bytes`);
        }
        chunks.push(chunk as Buffer);
      }
      const headers = new HeaderMap([':status', String(res.statusCode)]);
      addHeaderObject(headers, res.headers);
      const trailers = new HeaderMap();
      addHeaderObject(trailers, res.trailers);
      result = { headers, body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks), trailers };
    } catch (err) {
      const failure = opts.signal.aborted ? 'timeout' : classifyUpstreamError(err).kind === 'timeout' ? 'timeout' : 'connection';
      result = { failure, message: (err as Error).message };
    }
    done(result);
  }

  /** Release the literal host:port pools. */
  close(): void {
    this.closed = true;
    for (const { key } of this.literal.values()) this.registry.release(key);
    this.literal.clear();
  }
}

function addHeaderObject(map: HeaderMap, obj: Record<string, string | string[] | undefined> | null | undefined): void {
  if (!obj) return;
  for (const name of Object.keys(obj)) {
    const v = obj[name];
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const item of v) map.add(name.toLowerCase(), item);
    else map.add(name.toLowerCase(), v);
  }
}

/** "host:port" or "[v6]:port", with a port of 1..65535. */
export function isHostPort(s: string): boolean {
  const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?):(\d{1,5})$/.exec(s);
  if (m === null) return false;
  const port = Number(m[3]);
  return port >= 1 && port <= 65535;
}

/**
 * Whether a `te` value lists `trailers`: the one TE an HTTP/2 request may
 * carry (RFC 9113 §8.2.2), which gRPC needs. Envoy forwards it as
 * `te: trailers` and drops any other TE; so does hookwire.
 */
export function teTrailers(value: string): boolean {
  return value.split(',').some((token) => token.trim().toLowerCase() === 'trailers');
}

/**
 * Hop-by-hop headers (RFC 9110 §7.6.1, plus proxy-connection and
 * http2-settings): meaningful for one connection only, never forwarded.
 * `name` is lower-case.
 */
export function isHopByHop(name: string): boolean {
  switch (name.length) {
    case 2:
      return name === 'te';
    case 7:
      return name === 'trailer' || name === 'upgrade';
    case 10:
      return name === 'connection' || name === 'keep-alive';
    case 14:
      return name === 'http2-settings';
    case 16:
      return name === 'proxy-connection';
    case 17:
      return name === 'transfer-encoding';
    default:
      return false;
  }
}
