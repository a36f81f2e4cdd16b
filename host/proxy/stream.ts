/**
 * One request through the gateway: route match, then either
 *   - DirectStream: no plugin on the route, or only plugins whose modules
 *     export no stream callback (nothing of theirs would run for a request);
 *     headers are rewritten in one pass
 *     and the body is piped both ways with no buffering, or
 *   - FilterStream: the route's filter chain, phase by phase, with Envoy's
 *     HTTP filter semantics (request phases in configured order, response
 *     phases in reverse order, PAUSE holds the direction until continue_stream,
 *     bodies buffered only while a filter pauses in a body phase, local replies
 *     encoded through the response chain).
 *
 * Both talk to the upstream through undici's dispatcher handler interface
 * (onConnect/onHeaders/onData/onComplete/onError): it is what undici's own
 * clients call, so no adapter is allocated per request, and it gives raw
 * header bytes and explicit flow control.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { HeaderMap } from '../abi/header-map.js';
import { FilterChain, type ChainOwner, type ChainReply, type Direction } from '../vm/filter-chain.js';
import type { Plugin } from '../vm/plugin.js';
import type { PropertyValue } from '../vm/properties.js';
import type { Generation, RouteEntry } from './generation.js';
import type { GatewayMetrics } from './metrics.js';
import { requestProperty, type LiveRequest } from './properties.js';
import { normalizeHost, upstreamTarget, type RouteMatch } from './router.js';
import { classifyUpstreamError, isHopByHop, teTrailers, type UpstreamTarget } from './upstream.js';

/** What streams need from the gateway. */
export interface StreamCore {
  readonly logger: Logger;
  readonly metrics: GatewayMetrics;
  /** Shutting down: answer with Connection: close so keep-alive connections end. */
  readonly draining: boolean;
  /** Whether the per-request access log line is enabled (info level). */
  readonly accessLog: boolean;
  /** A stream of `gen` has ended (response sent or connection closed). */
  streamDone(gen: Generation): void;
}

const EMPTY = Buffer.alloc(0);
const NOT_FOUND_MESSAGE = 'no Route matched with those values';

/** The JSON body of every error hookwire itself answers. */
export function errorBody(message: string, requestId: string): Buffer {
  return Buffer.from(JSON.stringify({ message, request_id: requestId }), 'utf8');
}

const JSON_TYPE = 'application/json; charset=utf-8';

/** Header names whose length matches a name the request pass has to look at. */
function interesting(len: number): boolean {
  return len === 2 || len === 4 || len === 6 || len === 7 || len === 10 || len === 12 || len === 14 || len === 15 || len === 16 || len === 17;
}

/** Hop-by-hop check for a name in any case (upstream responses). */
function hopByHopAnyCase(name: string): boolean {
  const len = name.length;
  return (len === 2 || len === 7 || len === 10 || len === 14 || len === 16 || len === 17) && isHopByHop(name.toLowerCase());
}

function rawString(v: Buffer | string): string {
  return typeof v === 'string' ? v : v.toString('latin1');
}

/** Connection header tokens naming more headers to drop (rare; "keep-alive" and "close" are not names to drop). */
function connectionNamed(value: string): string[] {
  const out: string[] = [];
  for (const t of value.split(',')) {
    const token = t.trim().toLowerCase();
    if (token !== '' && token !== 'close' && token !== 'keep-alive') out.push(token);
  }
  return out;
}

/** "https" on a TLS listener (a TLSSocket says `encrypted`), else "http". */
function schemeOf(req: IncomingMessage): string {
  return (req.socket as { encrypted?: boolean }).encrypted === true ? 'https' : 'http';
}

/**
 * Serve one request with `gen` (already counted in its inflight). Reads the
 * raw headers once: forwarded headers (hop-by-hop, Host, Expect dropped;
 * X-Forwarded-For/Proto/Host and X-Request-Id set, as Envoy and Kong do before
 * their filters) and the few values routing and framing need.
 */
export function serve(core: StreamCore, gen: Generation, req: IncomingMessage, res: ServerResponse): void {
  const raw = req.rawHeaders;
  let host: string | undefined;
  let requestId: string | undefined;
  let xff: string | undefined;
  let connection: string | undefined;
  let hasBody = false;
  const fwd: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    if (interesting(name.length)) {
      switch (name.toLowerCase()) {
        case 'host':
          host ??= value;
          continue;
        case 'x-request-id':
          requestId ??= value;
          break;
        case 'content-length':
          if (value !== '0') hasBody = true;
          break;
        case 'transfer-encoding':
          hasBody = true;
          continue;
        case 'x-forwarded-for':
          xff = xff === undefined ? value : `${xff}, ${value}`;
          continue;
        case 'connection':
          connection = connection === undefined ? value : `${connection},${value}`;
          continue;
        case 'te':
          if (teTrailers(value)) fwd.push('te', 'trailers');
          continue;
        case 'x-forwarded-proto':
        case 'x-forwarded-host':
        case 'expect':
        case 'trailer':
        case 'upgrade':
        case 'keep-alive':
        case 'proxy-connection':
        case 'http2-settings':
          continue;
      }
    }
    fwd.push(name, value);
  }
  if (connection !== undefined) {
    const named = connectionNamed(connection);
    if (named.length > 0) {
      // A client sending TE lists it in Connection (RFC 9110 §10.1.4); `te: trailers` is still forwarded, as Envoy does.
      for (let i = fwd.length - 2; i >= 0; i -= 2) if (fwd[i] !== 'te' && named.includes(fwd[i]!.toLowerCase())) fwd.splice(i, 2);
    }
  }
  const remote = req.socket.remoteAddress ?? '';
  fwd.push('x-forwarded-for', xff === undefined ? remote : `${xff}, ${remote}`, 'x-forwarded-proto', schemeOf(req));
  if (host !== undefined) fwd.push('x-forwarded-host', host);
  if (requestId === undefined) {
    requestId = randomUUID();
    fwd.push('x-request-id', requestId);
  }

  const match = gen.router.match(req.method!, normalizeHost(host), req.url!);
  if (match === null) {
    new NotFound(core, gen, req, res, requestId, null).send();
    return;
  }
  const entry = match.value;
  if (entry.chain.length === 0 || passiveChain(entry.chain)) new DirectStream(core, gen, req, res, requestId, entry).start(match, fwd, hasBody);
  else new FilterStream(core, gen, req, res, requestId, entry, match, fwd, host ?? '', hasBody).start();
}

/** No filter of the chain would run guest code for a request (Plugin.passive): the request goes the no-plugin way. */
function passiveChain(chain: RouteEntry['chain']): boolean {
  for (let i = 0; i < chain.length; i++) if (!chain[i]!.passive) return false;
  return true;
}

// ---------------------------------------------------------------------------

const kExchange = Symbol('hookwire.exchange');
type ResponseWithExchange = ServerResponse & { [kExchange]?: Exchange };

/** Whether a request's stream has taken charge of `res` (and so of its accounting). */
export function hasExchange(res: ServerResponse): boolean {
  return (res as ResponseWithExchange)[kExchange] !== undefined;
}

/** Shared 'close' listener: no closure per request. */
function onResponseClose(this: ResponseWithExchange): void {
  this[kExchange]?.closed();
}

/**
 * Shared 'error' listener: a write the stream refused (after end, on a
 * destroyed socket) is that request's problem; an unhandled 'error' event
 * would end the process and every other route with it.
 */
function onResponseError(this: ResponseWithExchange, err: Error): void {
  this[kExchange]?.responseError(err);
}

/** What every request has: accounting when the response is over. */
abstract class Exchange {
  readonly core: StreamCore;
  readonly gen: Generation;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly requestId: string;
  readonly entry: RouteEntry | null;
  readonly startMono: bigint = process.hrtime.bigint();
  endMono = 0n;
  /** Status recorded when the connection ends without a complete response. */
  protected abortStatus = 499;
  protected done = false;

  constructor(core: StreamCore, gen: Generation, req: IncomingMessage, res: ServerResponse, requestId: string, entry: RouteEntry | null) {
    this.core = core;
    this.gen = gen;
    this.req = req;
    this.res = res;
    this.requestId = requestId;
    this.entry = entry;
    (res as ResponseWithExchange)[kExchange] = this;
    res.on('close', onResponseClose);
    res.on('error', onResponseError);
  }

  /** The response stream failed (see onResponseError): log it and drop the connection. */
  responseError(err: Error): void {
    this.core.logger.error({ request_id: this.requestId, reason: err.message }, 'response stream error');
    if (!this.res.destroyed) this.res.destroy();
  }

  /** The response was sent, or the connection went away: finish up once. */
  closed(): void {
    if (this.done) return;
    this.done = true;
    this.endMono = process.hrtime.bigint();
    this.finish();
    const res = this.res;
    const status = res.writableFinished || res.headersSent ? res.statusCode : this.abortStatus;
    const seconds = Number(this.endMono - this.startMono) / 1e9;
    const stats = this.entry ? this.entry.stats : this.core.metrics.unmatched;
    stats.observe(status, seconds);
    if (this.core.accessLog) {
      const route = this.entry?.resolved;
      this.core.logger.info(
        {
          request_id: this.requestId,
          method: this.req.method,
          path: this.req.url,
          status,
          duration_ms: Math.round(seconds * 1e6) / 1e3,
          route: route?.route.name ?? null,
          service: route?.service.name ?? null,
          generation: this.gen.number,
          completed: res.writableFinished,
        },
        'request',
      );
    }
    this.core.streamDone(this.gen);
  }

  /** Subclass cleanup (abort upstream, done/log/delete for filters). */
  protected abstract finish(): void;

  /** Answer with hookwire's JSON error body (nothing sent yet). */
  protected sendError(status: number, message: string, close = false): void {
    const res = this.res;
    if (this.core.draining || close) res.shouldKeepAlive = false;
    const body = errorBody(message, this.requestId);
    res.writeHead(status, ['content-type', JSON_TYPE, 'content-length', String(body.length)]);
    res.end(body);
  }

  protected pickTarget(entry: RouteEntry): UpstreamTarget {
    const targets = entry.targets;
    if (targets.length === 1) return targets[0]!;
    const t = targets[entry.next % targets.length]!;
    entry.next = (entry.next + 1) % targets.length;
    return t;
  }

  protected logUpstreamError(service: string, status: number, reason: string): void {
    this.core.logger.warn(
      { request_id: this.requestId, route: this.entry?.resolved.route.name, service, status, reason },
      'upstream request failed',
    );
  }
}

class NotFound extends Exchange {
  send(): void {
    this.sendError(404, NOT_FOUND_MESSAGE);
  }

  protected finish(): void {}
}

// ---------------------------------------------------------------------------

/** A route with no plugin (or only passive ones): straight through, streaming both ways. */
class DirectStream extends Exchange {
  private abort: ((err?: Error) => void) | null = null;
  private resume: (() => void) | null = null;
  private upstreamDone = false;
  private service = '';

  start(match: RouteMatch<RouteEntry>, fwd: string[], hasBody: boolean): void {
    const entry = match.value;
    const route = entry.resolved.route;
    const target = this.pickTarget(entry);
    this.service = entry.resolved.service.name;
    fwd.push('host', target.host);
    target.pool.dispatch(
      {
        path: upstreamTarget(target.basePath, this.req.url!, route.strip_path ? match.prefix : ''),
        method: this.req.method!,
        headers: fwd,
        body: hasBody ? this.req : null,
      },
      this,
    );
  }

  onConnect(abort: (err?: Error) => void): void {
    this.abort = abort;
    // The client left while the request waited for a connection: never start it.
    if (this.done) this.finish();
  }

  onHeaders(status: number, raw: Buffer[], resume: () => void): boolean {
    if (this.done) return this.stopUpstream();
    if (status < 200) return true; // 1xx: not forwarded
    this.resume = resume;
    const flat: string[] = [];
    for (let i = 0; i < raw.length; i += 2) {
      const name = rawString(raw[i]!);
      if (hopByHopAnyCase(name)) continue;
      flat.push(name, rawString(raw[i + 1]!));
    }
    const res = this.res;
    if (this.core.draining) res.shouldKeepAlive = false;
    res.writeHead(status, flat);
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.done) return this.stopUpstream();
    if (this.res.write(chunk)) return true;
    this.res.once('drain', this.resume!);
    return false;
  }

  onComplete(trailers: (Buffer | string)[] | null): void {
    this.upstreamDone = true;
    if (this.done) return;
    if (trailers && trailers.length > 0) this.res.addTrailers(trailerPairs(trailers));
    this.res.end();
  }

  onError(err: Error): void {
    this.upstreamDone = true;
    if (this.done) return;
    const failure = classifyUpstreamError(err);
    this.core.metrics.upstreamError(this.service, failure.kind);
    this.logUpstreamError(this.service, failure.status, failure.reason);
    if (!this.res.headersSent) this.sendError(failure.status, failure.message);
    else this.res.destroy();
  }

  protected finish(): void {
    if (!this.upstreamDone && this.abort !== null) {
      this.upstreamDone = true;
      this.abort();
    }
  }

  /**
   * The client is gone but undici still delivers: reset the upstream request.
   * (Answering false alone would pause the parser and park the pooled socket for good.)
   */
  private stopUpstream(): false {
    this.finish();
    return false;
  }
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const BAD_FIELD_VALUE = /[^\t\x20-\x7e\x80-\xff]/;

/** An HTTP field name (RFC 9110 token). */
function isToken(name: string): boolean {
  return TOKEN.test(name);
}

/** An HTTP field value node can send (no control characters but tab). */
function isFieldValue(value: string): boolean {
  return !BAD_FIELD_VALUE.test(value);
}

function trailerPairs(raw: (Buffer | string)[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = rawString(raw[i]!);
    if (!hopByHopAnyCase(name)) out.push([name, rawString(raw[i + 1]!)]);
  }
  return out;
}

// ---------------------------------------------------------------------------
// The filter chain (its walk is host/vm/filter-chain.ts, shared with the emulator).

/** A route with plugins: every phase of every filter, Envoy's way; this side feeds the chain and carries out what leaves it. */
class FilterStream extends Exchange implements ChainOwner, LiveRequest {
  private readonly match: RouteMatch<RouteEntry>;
  readonly chain: FilterChain;
  readonly requestHeaders: HeaderMap;
  private readonly originalAuthority: string;
  private readonly hasBody: boolean;
  declare readonly entry: RouteEntry;
  private readonly startWallMs = Date.now();
  target: UpstreamTarget | null = null;
  /** The status the upstream answered (before filters), or 0 when none answered. */
  upstreamStatus = 0;

  // Upstream side.
  upstreamRequest: { path: string; method: string; headers: string[] } | null = null;
  private dispatched = false;
  private upstreamBody: Readable | null = null;
  private abort: ((err?: Error) => void) | null = null;
  /** Upstream finished, failed or was abandoned: ignore its callbacks. */
  private upstreamDone = false;
  private upstreamResume: (() => void) | null = null;
  private upstreamStart = 0n;
  private upstreamEnd = 0n;

  // Client side.
  private clientHead = false;
  private clientBackpressure = false;

  constructor(
    core: StreamCore,
    gen: Generation,
    req: IncomingMessage,
    res: ServerResponse,
    requestId: string,
    entry: RouteEntry,
    match: RouteMatch<RouteEntry>,
    fwd: string[],
    authority: string,
    hasBody: boolean,
  ) {
    super(core, gen, req, res, requestId, entry);
    this.match = match;
    this.chain = new FilterChain(this, entry.chain);
    this.hasBody = hasBody;
    this.originalAuthority = authority;
    // Envoy's request map: pseudo-headers first, Host folded into :authority.
    const flat = [':authority', authority, ':path', req.url!, ':method', req.method!, ':scheme', schemeOf(req)];
    for (let i = 0; i < fwd.length; i += 2) flat.push(fwd[i]!.toLowerCase(), fwd[i + 1]!);
    this.requestHeaders = new HeaderMap(flat);
  }

  // ---- LiveRequest (properties) ----

  get startWallNs(): bigint {
    return BigInt(this.startWallMs) * 1_000_000n;
  }

  get responseHeaders(): HeaderMap | null {
    return this.chain.rs.headers;
  }

  get requestBodyBytes(): number {
    return this.chain.rq.bytesIn;
  }

  get responseBodyBytes(): number {
    return this.chain.rs.bytesOut;
  }

  get codeDetails(): string {
    return this.chain.codeDetails;
  }

  backendLatency(): bigint {
    if (this.upstreamStart === 0n) return -1n;
    return (this.upstreamEnd > 0n ? this.upstreamEnd : process.hrtime.bigint()) - this.upstreamStart;
  }

  property(key: string): PropertyValue | undefined {
    return requestProperty(this, key);
  }

  // ---- start ----

  start(): void {
    const rejectedBy = this.chain.open(this.requestHeaders);
    this.target = this.pickTarget(this.match.value);
    const d = this.chain.rq;
    if (this.hasBody) {
      this.req.on('data', (chunk: Buffer) => this.onRequestData(chunk));
      this.req.on('end', () => this.onRequestEnd());
    }
    if (rejectedBy !== null) {
      d.headers = this.requestHeaders;
      d.headersEos = !this.hasBody;
      this.core.logger.warn(
        { request_id: this.requestId, plugin: rejectedBy.name, reason: rejectedBy.failure },
        'plugin unavailable, request refused (failure policy)',
      );
      this.chain.answer(this.failureReply(rejectedBy));
      return;
    }
    this.chain.requestHeaders(this.requestHeaders, !this.hasBody);
  }

  skipped(plugin: Plugin): void {
    // Per request, so debug: the trap itself was logged once, as an error.
    this.core.logger.debug({ request_id: this.requestId, plugin: plugin.name, reason: plugin.failure }, 'plugin skipped (fail_open)');
  }

  failureReply(plugin: Plugin): ChainReply {
    return {
      kind: 'reply',
      status: 503,
      headers: ['content-type', JSON_TYPE],
      body: errorBody(`The request could not be processed: plugin ${plugin.name} failed`, this.requestId),
      details: 'wasm_fail_stream',
      close: false,
    };
  }

  trapped(plugin: Plugin, inPhase: boolean): void {
    this.core.metrics.trap(plugin.name);
    if (!inPhase) return;
    const failOpen = plugin.failurePolicy === 'fail_open';
    this.core.logger.error(
      { request_id: this.requestId, plugin: plugin.name, policy: plugin.failurePolicy, reason: plugin.failure },
      failOpen ? 'filter failed, continuing without it (fail_open)' : 'filter failed, request refused',
    );
  }

  private onRequestData(chunk: Buffer): void {
    const d = this.chain.rq;
    if (d.dead || this.done) return;
    d.bytesIn += chunk.length;
    this.chain.dataFrom(d, 0, chunk, false);
  }

  private onRequestEnd(): void {
    const d = this.chain.rq;
    if (d.dead || this.done) return;
    const rawTrailers = this.req.rawTrailers;
    if (rawTrailers.length > 0) {
      const flat: string[] = [];
      for (let i = 0; i < rawTrailers.length; i += 2) flat.push(rawTrailers[i]!.toLowerCase(), rawTrailers[i + 1]!);
      this.chain.trailersArrived(d, new HeaderMap(flat));
    } else {
      this.chain.dataFrom(d, 0, EMPTY, true);
    }
  }

  /** Over the buffer limit: 413 for a request, 502 for a response. True when that happened. */
  overLimit(d: Direction, size: number): boolean {
    const proxy = this.gen.config.proxy;
    const limit = d.request ? proxy.request_body_buffer_limit : proxy.response_body_buffer_limit;
    if (size <= limit) return false;
    const what = d.request ? 'request' : 'response';
    const setting = d.request ? 'proxy.request_body_buffer_limit' : 'proxy.response_body_buffer_limit';
    const message = `The ${what} body exceeds the buffer limit of ${limit} bytes (${setting}) while a plugin buffers it`;
    this.core.logger.warn({ request_id: this.requestId, route: this.match.value.resolved.route.name, limit }, message);
    this.chain.answer({
      kind: 'reply',
      status: d.request ? 413 : 502,
      headers: ['content-type', JSON_TYPE],
      body: errorBody(message, this.requestId),
      details: `${what}_payload_too_large`,
      close: d.request, // the client may still be uploading: do not read the rest
    });
    return true;
  }

  // ---- ends of the chain ----

  headersAtEnd(d: Direction): void {
    if (d.request) {
      this.prepareUpstream();
      if (d.headersEos) this.dispatch(null);
      return;
    }
    if (d.headersEos) {
      if (this.writeClientHead(this.noResponseBody() ? -1 : 0)) this.res.end();
    }
  }

  dataAtEnd(d: Direction, chunk: Buffer, eos: boolean): void {
    if (d.request) {
      if (!this.dispatched) {
        if (eos) {
          // The whole body in one piece (small, or buffered by a filter): send it with its exact length.
          this.dispatch(chunk);
          return;
        }
        this.upstreamBody = new Readable({ read: () => this.req.resume() });
        this.dispatch(this.upstreamBody);
      }
      const body = this.upstreamBody;
      if (body === null || body.destroyed) return;
      if (chunk.length > 0 && !body.push(chunk)) this.req.pause();
      if (eos) body.push(null);
      return;
    }
    if (!this.clientHead && !this.writeClientHead(eos && !this.noResponseBody() ? chunk.length : -1)) return;
    // Ended already (headers-only response): nothing more may be written.
    if (this.res.writableEnded) return;
    if (eos) {
      // The usual end of a streamed response is an empty last chunk: end() alone, no empty write.
      if (chunk.length > 0) this.res.end(chunk);
      else this.res.end();
    } else if (chunk.length > 0 && !this.res.write(chunk)) this.clientBackpressure = true;
  }

  trailersAtEnd(d: Direction): void {
    if (d.request) {
      // HTTP/1.1 upstream requests carry no trailers: filters saw them, the upstream does not.
      if (!this.dispatched) this.dispatch(EMPTY);
      else this.upstreamBody?.push(null);
      return;
    }
    if (!this.clientHead && !this.writeClientHead(-1)) return;
    const res = this.res;
    if (res.writableEnded) return;
    const trailers: [string, string][] = [];
    for (const [name, value] of d.trailers?.pairs() ?? []) {
      if (isHopByHop(name)) continue;
      // A filter may have stored a name or value HTTP/1.1 cannot carry: dropped, and said so; the response still ends.
      if (!isToken(name) || !isFieldValue(value)) {
        this.core.logger.warn({ request_id: this.requestId, trailer: name }, 'response trailer dropped: invalid name or value');
        continue;
      }
      trailers.push([name, value]);
    }
    if (trailers.length > 0) res.addTrailers(trailers);
    res.end();
  }

  private noResponseBody(): boolean {
    const status = this.chain.rs.headers?.get(':status');
    return this.req.method === 'HEAD' || status === '204' || status === '304';
  }

  // ---- upstream ----

  /** The request as the router would send it, from the headers as they left the chain. */
  private prepareUpstream(): void {
    const map = this.requestHeaders;
    const flat = map.flat;
    const headers: string[] = [];
    let authority = this.originalAuthority;
    let path = '/';
    let method = 'GET';
    for (let i = 0; i < flat.length; i += 2) {
      const name = flat[i]!;
      if (name.charCodeAt(0) === 58 /* : */) {
        if (name === ':authority') authority = flat[i + 1]!;
        else if (name === ':path') path = flat[i + 1]!;
        else if (name === ':method') method = flat[i + 1]!;
        continue;
      }
      if (name === 'host' || name === 'expect') continue;
      if (isHopByHop(name)) {
        if (name === 'te' && teTrailers(flat[i + 1]!)) headers.push('te', 'trailers');
        continue;
      }
      headers.push(name, flat[i + 1]!);
    }
    const target = this.target!;
    // Kong's preserve_host off: the service's host, unless a filter set :authority.
    headers.push('host', authority === this.originalAuthority ? target.host : authority);
    const route = this.match.value.resolved.route;
    this.upstreamRequest = {
      path: upstreamTarget(target.basePath, path, route.strip_path ? this.match.prefix : ''),
      method,
      headers,
    };
  }

  private dispatch(body: Buffer | Readable | null): void {
    this.dispatched = true;
    const request = this.upstreamRequest!;
    let headers = request.headers;
    if (body instanceof Buffer) {
      // undici frames a complete body itself; a filter may have changed its length.
      headers = [];
      for (let i = 0; i < request.headers.length; i += 2) {
        if (request.headers[i] !== 'content-length') headers.push(request.headers[i]!, request.headers[i + 1]!);
      }
      if (body.length === 0 && !this.hasBody) body = null;
    }
    this.upstreamStart = process.hrtime.bigint();
    this.target!.pool.dispatch({ path: request.path, method: request.method, headers, body }, this);
  }

  onConnect(abort: (err?: Error) => void): void {
    this.abort = abort;
    // Abandoned (client gone, local reply) while the request waited for a connection: never start it.
    if (this.upstreamDone || this.done) abort();
  }

  /** A late upstream callback after the stream gave the upstream up: reset it (false alone would park the socket). */
  private stopUpstream(): false {
    this.upstreamDone = true;
    this.abort?.();
    return false;
  }

  onHeaders(status: number, raw: Buffer[], resume: () => void): boolean {
    if (this.upstreamDone || this.done) return this.stopUpstream();
    if (status < 200) return true;
    this.upstreamResume = resume;
    const flat = [':status', String(status)];
    // HEAD semantics follow the method sent upstream (a filter may have changed it), as undici reads the response.
    let eos = this.upstreamRequest?.method === 'HEAD' || status === 204 || status === 304;
    for (let i = 0; i < raw.length; i += 2) {
      const name = rawString(raw[i]!).toLowerCase();
      const value = rawString(raw[i + 1]!);
      if (name === 'content-length' && value === '0') eos = true;
      flat.push(name, value);
    }
    this.upstreamStatus = status;
    this.chain.upstreamResponse(new HeaderMap(flat), eos);
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.upstreamDone || this.done) return this.stopUpstream();
    const d = this.chain.rs;
    if (d.dead) return true;
    d.bytesIn += chunk.length;
    this.clientBackpressure = false;
    this.chain.dataFrom(d, 0, chunk, false);
    if (this.clientBackpressure && !this.done) {
      this.res.once('drain', this.upstreamResume!);
      return false;
    }
    return true;
  }

  onComplete(trailers: (Buffer | string)[] | null): void {
    if (this.upstreamDone || this.done) return;
    this.upstreamDone = true;
    this.upstreamEnd = process.hrtime.bigint();
    const d = this.chain.rs;
    if (d.dead) return;
    if (trailers !== null && trailers.length > 0) {
      const flat: string[] = [];
      for (let i = 0; i < trailers.length; i += 2) flat.push(rawString(trailers[i]!).toLowerCase(), rawString(trailers[i + 1]!));
      this.chain.trailersArrived(d, new HeaderMap(flat));
    } else if (!d.headersEos) {
      this.chain.dataFrom(d, 0, EMPTY, true);
    }
  }

  onError(err: Error): void {
    if (this.upstreamDone || this.done) return;
    this.upstreamDone = true;
    this.upstreamEnd = process.hrtime.bigint();
    const service = this.match.value.resolved.service.name;
    const failure = classifyUpstreamError(err);
    this.core.metrics.upstreamError(service, failure.kind);
    this.logUpstreamError(service, failure.status, failure.reason);
    this.chain.answer({
      kind: 'reply',
      status: failure.status,
      headers: ['content-type', JSON_TYPE],
      body: errorBody(failure.message, this.requestId),
      details: failure.kind === 'timeout' ? 'upstream_response_timeout' : 'upstream_reset_before_response_started',
      close: false,
    });
  }

  /** Stop talking to the upstream (local reply, reset, client gone). */
  private abandonUpstream(): void {
    if (this.upstreamBody !== null && !this.upstreamBody.destroyed) this.upstreamBody.destroy();
    if (this.upstreamDone) return;
    this.upstreamDone = true;
    if (this.upstreamEnd === 0n && this.upstreamStart > 0n) this.upstreamEnd = process.hrtime.bigint();
    this.abort?.();
  }

  // ---- client ----

  /**
   * Write the status line and headers as the response chain left them. With
   * `knownLength` >= 0 the whole body is known, so Content-Length is set to
   * it (a filter may have changed the body). False when the head could not
   * be written (the stream was answered with an error instead).
   */
  private writeClientHead(knownLength: number): boolean {
    const map = this.chain.rs.headers!;
    const flat = map.flat;
    const status = Number(map.get(':status'));
    const headers: string[] = [];
    for (let i = 0; i < flat.length; i += 2) {
      const name = flat[i]!;
      if (name.charCodeAt(0) === 58 || isHopByHop(name)) continue;
      if (knownLength >= 0 && name === 'content-length') continue;
      headers.push(name, flat[i + 1]!);
    }
    if (knownLength >= 0) headers.push('content-length', String(knownLength));
    const res = this.res;
    if (this.core.draining) res.shouldKeepAlive = false;
    try {
      if (!Number.isInteger(status) || status < 100 || status > 999) throw new Error(`invalid :status ${JSON.stringify(map.get(':status'))}`);
      res.writeHead(status, headers);
    } catch (err) {
      // A filter left headers node refuses to send (bad characters, bad :status).
      this.core.logger.error({ request_id: this.requestId, reason: (err as Error).message }, 'response headers rejected');
      this.chain.rs.dead = true;
      this.abandonUpstream();
      this.clientHead = true;
      if (!res.headersSent) this.sendError(502, 'The response headers could not be sent');
      else res.destroy();
      return false;
    }
    this.clientHead = true;
    return true;
  }

  // ---- ChainOwner: what leaves the chain, and work outside the guest ----

  /**
   * Work run outside any guest or undici callback (a microtask): an exception
   * there would be uncaught and end the process, so it resets this stream instead.
   */
  schedule(work: () => void): void {
    queueMicrotask(() => this.guarded(work));
  }

  private guarded(work: () => void): void {
    try {
      work();
    } catch (err) {
      this.core.logger.error({ request_id: this.requestId, reason: (err as Error).message }, 'stream failed');
      if (!this.done) this.chain.reset(`internal error: ${(err as Error).message}`);
    }
  }

  get responseStarted(): boolean {
    return this.clientHead;
  }

  /** A local reply starts: the upstream is no longer needed. */
  replyStarted(reply: ChainReply): void {
    this.abandonUpstream();
    // The rest of the request body is not needed; keep reading it so the connection can be reused.
    if (this.hasBody) this.req.resume();
    if (reply.close) this.res.shouldKeepAlive = false;
  }

  replaceResponse(d: Direction, body: Buffer): void {
    if (this.writeClientHead(this.noResponseBody() ? -1 : body.length)) {
      d.bytesOut += body.length;
      this.res.end(body);
    }
  }

  reset(reason: string): void {
    this.core.logger.warn({ request_id: this.requestId, reason }, 'stream reset');
    this.abortStatus = 444;
    this.abandonUpstream();
    this.res.destroy();
  }

  // ---- end ----

  protected finish(): void {
    this.abandonUpstream();
    // Done, log and delete, in configured order, after the response.
    this.chain.complete();
  }
}
