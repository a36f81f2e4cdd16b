/**
 * Upgraded connections (WebSocket, or any HTTP/1.1 `Upgrade`) through the
 * gateway, as Envoy's upgrade_configs and Kong proxy them: the route is
 * matched and the request phases of its filter chain run on the upgrade
 * request (a filter may answer it locally, e.g. 401); the request goes to
 * the upstream over a fresh connection; the upstream's 101 runs the response
 * header phase and is passed on; from then on bytes are piped both ways
 * untouched. The log phase (on_done, on_log, on_delete) runs when the
 * connection closes, so a logging filter sees status 101 and the whole
 * duration. An upstream that refuses the upgrade is answered as it answered.
 *
 * A separate path from stream.ts: an upgrade arrives on the server's
 * 'upgrade' event with the raw socket, never as a ServerResponse, so the
 * HTTP/1.1 hot path carries no upgrade checks.
 */
import { randomUUID } from 'node:crypto';
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import { connect as connectTcp, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { connect as connectTls } from 'node:tls';
import { HeaderMap } from '../abi/header-map.js';
import { FilterResult, type HttpContext, type LocalResponse, type StreamDelegate } from '../vm/http-context.js';
import type { PropertySource } from '../vm/properties.js';
import type { Generation, RouteEntry } from './generation.js';
import { requestProperty, type LiveRequest } from './properties.js';
import { normalizeHost, upstreamTarget, type RouteMatch } from './router.js';
import { errorBody, type StreamCore } from './stream.js';
import type { UpstreamTarget } from './upstream.js';

/** Request headers not forwarded as they came (re-added or replaced by the proxy). */
const DROPPED = new Set(['host', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding']);

/** The longest upstream response head read before the upgrade is given up (bytes). */
const MAX_RESPONSE_HEAD = 64 * 1024;


function head(status: number, flat: readonly string[]): string {
  let text = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\n`;
  for (let i = 0; i < flat.length; i += 2) if (flat[i]!.charCodeAt(0) !== 58 /* : */) text += `${flat[i]}: ${flat[i + 1]}\r\n`;
  return text + '\r\n';
}

export class UpgradeStream implements LiveRequest, StreamDelegate {
  readonly requestId: string;
  readonly requestHeaders: HeaderMap;
  responseHeaders: HeaderMap | null = null;
  readonly startWallNs = BigInt(Date.now()) * 1_000_000n;
  readonly startMono = process.hrtime.bigint();
  endMono = 0n;
  /** Bytes after the upgrade, client to upstream and back. */
  requestBodyBytes = 0;
  responseBodyBytes = 0;
  codeDetails = '';
  target: UpstreamTarget | null = null;
  upstreamRequest: { path: string } | null = null;
  upstreamStatus = 0;
  private upstreamStart = 0n;
  private upstreamHeadAt = 0n;
  private readonly ctxs: (HttpContext | null)[];
  private upstream: Socket | null = null;
  private status = 0;
  private done = false;
  private readonly properties: PropertySource = (key) => requestProperty(this, key);

  private constructor(
    private readonly core: StreamCore,
    private readonly gen: Generation,
    readonly req: IncomingMessage,
    private readonly socket: Duplex,
    private readonly early: Buffer,
    readonly entry: RouteEntry,
    private readonly match: RouteMatch<RouteEntry>,
    private readonly originalAuthority: string,
  ) {
    const raw = req.rawHeaders;
    let requestId: string | undefined;
    let xff: string | undefined;
    const flat = [':authority', originalAuthority, ':path', req.url!, ':method', req.method!, ':scheme', (req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http'];
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!.toLowerCase();
      const value = raw[i + 1]!;
      if (name === 'x-request-id') requestId ??= value;
      if (name === 'x-forwarded-for') xff = xff === undefined ? value : `${xff}, ${value}`;
      if (!DROPPED.has(name)) flat.push(name, value);
    }
    const remote = req.socket.remoteAddress ?? '';
    flat.push('x-forwarded-for', xff === undefined ? remote : `${xff}, ${remote}`, 'x-forwarded-proto', flat[7]!, 'x-forwarded-host', originalAuthority);
    if (requestId === undefined) flat.push('x-request-id', (requestId = randomUUID()));
    this.requestId = requestId;
    this.requestHeaders = new HeaderMap(flat);
    this.ctxs = new Array<HttpContext | null>(entry.chain.length).fill(null);
  }

  /**
   * Take charge of an upgrade request (already counted in the gateway's and
   * `gen`'s inflight): answered 404 when no route matches. Returns the
   * stream, or null when it was answered at once.
   */
  static start(core: StreamCore, gen: Generation, req: IncomingMessage, socket: Duplex, early: Buffer): UpgradeStream | null {
    const host = req.headers.host;
    const match = gen.router.match(req.method!, normalizeHost(host), req.url!);
    if (match === null) {
      const body = errorBody('no Route matched with those values', randomUUID());
      socket.end(head(404, ['content-type', 'application/json; charset=utf-8', 'content-length', String(body.length), 'connection', 'close']) + body.toString('latin1'), 'latin1');
      core.metrics.unmatched.observe(404, 0);
      core.streamDone(gen);
      return null;
    }
    const stream = new UpgradeStream(core, gen, req, socket, early, match.value, match, host ?? '');
    stream.run();
    return stream;
  }

  backendLatency(): bigint {
    if (this.upstreamStart === 0n) return -1n;
    return (this.upstreamHeadAt > 0n ? this.upstreamHeadAt : process.hrtime.bigint()) - this.upstreamStart;
  }

  /** Close both sides (shutdown after the drain timeout); the log phase runs now, before the plugins unload. */
  destroy(): void {
    this.socket.destroy();
    this.upstream?.destroy();
    this.finish(this.status || 499);
  }

  private run(): void {
    this.socket.on('error', () => this.finish(this.status || 499));
    this.socket.on('close', () => this.finish(this.status || 499));
    for (let i = 0; i < this.ctxs.length; i++) {
      const plugin = this.entry.chain[i]!;
      const ctx = plugin.newHttpContext({ delegate: this, properties: this.properties });
      if (ctx === 'skip') continue;
      if (ctx === 'reject') {
        this.fail(plugin.name);
        return;
      }
      ctx.requestHeaders = this.requestHeaders;
      this.ctxs[i] = ctx;
    }
    this.requestFrom(0);
  }

  /** Request header phase from filter k on; a filter that pauses resumes it with continueStream. */
  private requestFrom(k: number): void {
    for (; k < this.ctxs.length; k++) {
      const ctx = this.ctxs[k];
      if (ctx == null || ctx.failed) continue;
      const r = ctx.onRequestHeaders(false);
      if (this.done || this.status !== 0) return; // answered locally, or the client left
      if (r === FilterResult.FAILED) {
        const plugin = this.entry.chain[k]!;
        this.core.metrics.trap(plugin.name);
        if (plugin.failurePolicy !== 'fail_open') {
          this.fail(plugin.name);
          return;
        }
      } else if (r === FilterResult.PAUSE) {
        this.pausedAt = k;
        return;
      }
    }
    this.connectUpstream();
  }

  private pausedAt = -1;

  continueStream(_ctx: HttpContext, stream: 0 | 1): void {
    if (stream !== 0 || this.pausedAt < 0 || this.done) return;
    const k = this.pausedAt;
    this.pausedAt = -1;
    queueMicrotask(() => this.requestFrom(k + 1));
  }

  /** A filter reset the stream: both sides close; the log phase follows on 'close' (never inside the guest call). */
  closeStream(): void {
    this.socket.destroy();
    this.upstream?.destroy();
  }

  sendLocalResponse(_ctx: HttpContext, response: LocalResponse): void {
    if (this.status !== 0 || this.done) return;
    this.codeDetails = response.details;
    const flat = [...response.headers.flat];
    flat.push('content-length', String(response.body.length), 'connection', 'close');
    this.reply(response.status, flat, response.body);
  }

  private fail(plugin: string): void {
    this.codeDetails = 'wasm_fail_stream';
    const body = errorBody(`The request could not be processed: plugin ${plugin} failed`, this.requestId);
    this.reply(503, ['content-type', 'application/json; charset=utf-8', 'content-length', String(body.length), 'connection', 'close'], body);
  }

  private reply(status: number, flat: string[], body: Buffer): void {
    this.status = status;
    this.responseHeaders = new HeaderMap([':status', String(status), ...flat]);
    this.socket.end(Buffer.concat([Buffer.from(head(status, flat), 'latin1'), body]));
  }

  private connectUpstream(): void {
    const entry = this.entry;
    const target = entry.targets[entry.next % entry.targets.length]!;
    entry.next = (entry.next + 1) % entry.targets.length;
    this.target = target;
    const flat = this.requestHeaders.flat;
    let authority = this.originalAuthority;
    let path = this.req.url!;
    let method = this.req.method!;
    let text = '';
    for (let i = 0; i < flat.length; i += 2) {
      const name = flat[i]!;
      if (name === ':authority') authority = flat[i + 1]!;
      else if (name === ':path') path = flat[i + 1]!;
      else if (name === ':method') method = flat[i + 1]!;
      else if (name.charCodeAt(0) !== 58) text += `${name}: ${flat[i + 1]}\r\n`;
    }
    // Kong's preserve_host off: the service's host, unless a filter set :authority.
    text += `host: ${authority === this.originalAuthority ? target.host : authority}\r\n\r\n`;
    const route = this.match.value.resolved.route;
    const upstreamPath = upstreamTarget(target.basePath, path, route.strip_path ? this.match.prefix : '');
    this.upstreamRequest = { path: upstreamPath };
    const origin = new URL(target.origin);
    const port = Number(origin.port || (origin.protocol === 'https:' ? 443 : 80));
    const hostname = origin.hostname.replace(/^\[|\]$/g, '');
    this.upstreamStart = process.hrtime.bigint();
    const upstream = origin.protocol === 'https:' ? connectTls({ host: hostname, port, servername: hostname, ...(target.ca !== null ? { ca: target.ca } : {}) }) : connectTcp(port, hostname);
    this.upstream = upstream;
    upstream.write(`${method} ${upstreamPath} HTTP/1.1\r\n${text}`, 'latin1');
    if (this.early.length > 0) upstream.write(this.early);
    let pending: Buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      const end = pending.indexOf('\r\n\r\n');
      if (end < 0) {
        if (pending.length > MAX_RESPONSE_HEAD) this.upstreamFailed('response head too large');
        return;
      }
      upstream.off('data', onData);
      this.upstreamHead(upstream, pending.subarray(0, end).toString('latin1'), pending.subarray(end + 4));
    };
    upstream.on('data', onData);
    // Until the upstream answers: its connect and read timeouts (the tunnel itself has none, as in Envoy).
    const service = this.entry.resolved.service;
    upstream.setTimeout(service.connect_timeout_ms + service.read_timeout_ms, () => this.upstreamFailed('timeout: no response from the upstream', 504));
    upstream.on('error', (err) => this.upstreamFailed(`${(err as NodeJS.ErrnoException).code ?? 'error'}: ${err.message}`));
    upstream.on('close', () => {
      if (this.status === 0) this.upstreamFailed('upstream closed before answering');
      else this.socket.end();
    });
  }

  private upstreamFailed(reason: string, status: 502 | 504 = 502): void {
    this.upstream?.destroy();
    if (this.status !== 0 || this.done) return;
    this.core.logger.warn({ request_id: this.requestId, service: this.entry.resolved.service.name, status, reason }, 'upgrade: upstream failed');
    this.codeDetails = status === 504 ? 'upstream_response_timeout' : 'upstream_reset_before_response_started';
    const message = status === 504 ? 'The upstream server is timing out' : 'An invalid response was received from the upstream server';
    const body = errorBody(message, this.requestId);
    this.reply(status, ['content-type', 'application/json; charset=utf-8', 'content-length', String(body.length), 'connection', 'close'], body);
  }

  /** The upstream's response head: a 101 runs the response header phase and opens the tunnel; anything else is passed on. */
  private upstreamHead(upstream: Socket, text: string, rest: Buffer): void {
    this.upstreamHeadAt = process.hrtime.bigint();
    upstream.setTimeout(0);
    const lines = text.split('\r\n');
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0]!)?.[1] ?? 0);
    if (status === 0) {
      this.upstreamFailed('not an HTTP/1.1 response');
      return;
    }
    const flat = [':status', String(status)];
    for (let i = 1; i < lines.length; i++) {
      const colon = lines[i]!.indexOf(':');
      if (colon > 0) flat.push(lines[i]!.slice(0, colon).trim().toLowerCase(), lines[i]!.slice(colon + 1).trim());
    }
    this.upstreamStatus = status;
    this.status = status;
    const map = new HeaderMap(flat);
    this.responseHeaders = map;
    // Envoy runs the encoder chain on the 101 (reverse order); a pause cannot hold a switched protocol, so it is not waited for.
    for (let k = this.ctxs.length - 1; k >= 0; k--) {
      const ctx = this.ctxs[k];
      if (ctx == null || ctx.failed) continue;
      ctx.responseHeaders = map;
      const r = ctx.onResponseHeaders(status !== 101);
      if (r === FilterResult.FAILED) this.core.metrics.trap(this.entry.chain[k]!.name);
      if (this.done) return;
    }
    const socket = this.socket;
    socket.write(head(status, map.flat), 'latin1');
    if (rest.length > 0) {
      this.responseBodyBytes += rest.length;
      socket.write(rest);
    }
    if (status === 101) this.codeDetails = 'via_upstream';
    // Both ways untouched from here (for a refused upgrade: the rest of that response, then close).
    upstream.on('data', (chunk: Buffer) => {
      this.responseBodyBytes += chunk.length;
      if (!socket.write(chunk)) upstream.pause();
    });
    socket.on('drain', () => upstream.resume());
    socket.on('data', (chunk: Buffer) => {
      this.requestBodyBytes += chunk.length;
      if (!upstream.write(chunk)) socket.pause();
    });
    upstream.on('drain', () => socket.resume());
    upstream.on('end', () => socket.end());
    socket.on('end', () => upstream.end());
  }

  /** The connection is over: the log phase, accounting, the access log line. Once. */
  private finish(status: number): void {
    if (this.done) return;
    this.done = true;
    this.endMono = process.hrtime.bigint();
    this.upstream?.destroy();
    if (this.status === 0) this.status = status;
    for (const ctx of this.ctxs) if (ctx !== null) ctx.complete();
    const seconds = Number(this.endMono - this.startMono) / 1e9;
    this.entry.stats.observe(this.status, seconds);
    if (this.core.accessLog) {
      const route = this.entry.resolved;
      this.core.logger.info(
        {
          request_id: this.requestId,
          method: this.req.method,
          path: this.req.url,
          status: this.status,
          duration_ms: Math.round(seconds * 1e6) / 1e3,
          route: route.route.name,
          service: route.service.name,
          generation: this.gen.number,
          upgrade: this.req.headers.upgrade ?? '',
        },
        'request',
      );
    }
    this.core.streamDone(this.gen);
  }
}
