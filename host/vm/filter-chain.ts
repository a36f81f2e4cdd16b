/**
 * One HTTP stream through a chain of filters, with Envoy's HTTP filter
 * semantics and no sockets: request phases in configured order, response
 * phases in reverse order, PAUSE holds the direction until continue_stream,
 * bodies buffered only while a filter pauses in a body phase, the failure
 * policy applied to a trap, local replies encoded through the response chain,
 * on_done/on_log/on_delete in configured order at the end.
 *
 * One implementation for both stream owners: the gateway's data plane
 * (host/proxy/stream.ts FilterStream feeds it from the client and the
 * upstream and carries out what leaves either end) and the emulator
 * (host/testing/emulator.ts feeds it from its call* methods). What differs
 * between them is behind ChainOwner: where data goes at the ends of the
 * chain, when deferred work runs, the stream's other attributes.
 */
import { HeaderMap } from '../abi/header-map.js';
import { FilterResult, type HttpContext, type LocalResponse, type StreamDelegate } from './http-context.js';
import { CLOSE_STREAM_DETAILS, localReplyDetails, localReplyHeaders } from './local-reply.js';
import type { Plugin } from './plugin.js';
import type { PropertyValue } from './properties.js';

const EMPTY = Buffer.alloc(0);

// Per-step state of a direction, as bit flags (steps count in the direction's order).
const BLOCK = 3; // mask
const NONE = 0;
const ON_HEADERS = 1; // paused in the headers phase: waits for continue_stream
const ON_BODY = 2; // paused in a body phase: buffering; called again as data arrives
const ON_TRAILERS = 3; // paused in the trailers phase
const HELD = 4; // the step's body buffer holds data not passed on yet
const HELD_EOS = 8; // ... and that data ends the stream
const HELD_TRAILERS = 16; // trailers wait here (the step is paused in headers)

/** One direction (request or response) of a filter stream. */
export class Direction {
  readonly request: boolean;
  readonly steps: number[];
  headers: HeaderMap | null = null;
  trailers: HeaderMap | null = null;
  headersEos = false;
  /** Cut (local reply, reset): nothing more flows in this direction. */
  dead = false;
  /** Body bytes that entered the direction. */
  bytesIn = 0;
  /** Body bytes that left the chain (sent upstream / to the client). */
  bytesOut = 0;

  constructor(request: boolean, n: number) {
    this.request = request;
    this.steps = new Array<number>(n).fill(0);
  }
}

/** A reply the stream answers with instead of the upstream's response. */
export interface ChainReply {
  readonly kind: 'reply';
  readonly status: number;
  /** Flat [name, value, ...], lower-case names. */
  readonly headers: readonly string[];
  readonly body: Buffer;
  /** Response code details, as Envoy records them. */
  readonly details: string;
  /** Close the client connection after it (the client may still be uploading). */
  readonly close: boolean;
}

export type Pending = ChainReply | { kind: 'reset'; reason: string };

/** What the owner of a stream does at the chain's edges (sockets in the gateway, records in the emulator). */
export interface ChainOwner {
  /** The stream's attributes (request.*, response.*, source.*...), or undefined (NOT_FOUND). */
  property(key: string): PropertyValue | undefined;
  /** Run `work` outside any guest callback (continue_stream, a reply sent outside a phase). */
  schedule(work: () => void): void;
  /** The direction's headers left the last filter. */
  headersAtEnd(d: Direction): void;
  /** Body data left the last filter (already counted in d.bytesOut). */
  dataAtEnd(d: Direction, chunk: Buffer, eos: boolean): void;
  /** The direction's trailers left the last filter. */
  trailersAtEnd(d: Direction): void;
  /** A filter holds `size` body bytes: true when that is over the owner's limit (it has answered with a reply). */
  overLimit(d: Direction, size: number): boolean;
  /** A plugin's failure policy lets the stream pass without it (its VM trapped earlier, fail_open). */
  skipped(plugin: Plugin): void;
  /** A filter's VM trapped: in a phase (`inPhase`, the failure policy applies) or in on_done/on_log/on_delete. */
  trapped(plugin: Plugin, inPhase: boolean): void;
  /** The reply a trap answers with when the failure policy refuses the stream. */
  failureReply(plugin: Plugin): ChainReply;
  /** A local reply starts: the request direction is over (stop the upstream, stop reading the client). */
  replyStarted(reply: ChainReply): void;
  /** Whether the response head already left for the client (a local reply then resets the stream). */
  readonly responseStarted: boolean;
  /** Send the reply whose headers replaced the response's (d.headers) before they left, with `body`. */
  replaceResponse(d: Direction, body: Buffer): void;
  /** Reset the stream (both directions are already dead). */
  reset(reason: string): void;
}

/**
 * The filter chain of one stream. The owner feeds it (requestHeaders, data,
 * trailers, upstreamResponse) and is called back at the ends; every decision
 * between (phase results, pauses and resumes, buffering, local replies,
 * failure policy, response code details) is taken here.
 *
 * The walks (headersFrom, dataFrom, trailersFrom) return the result of the
 * last filter callback they ran: PAUSE when that callback's local reply or
 * reset stopped iteration (FAILED stays FAILED), CONTINUE when none ran.
 * The gateway ignores it; the emulator, whose chain has one filter, returns
 * it from its call* methods.
 */
export class FilterChain implements StreamDelegate {
  readonly owner: ChainOwner;
  readonly plugins: readonly Plugin[];
  readonly n: number;
  readonly ctxs: (HttpContext | null)[];
  readonly rq: Direction;
  readonly rs: Direction;
  /** Envoy's response code details ("via_upstream", a local reply's...), "" before any. */
  codeDetails = '';
  /** The stream is over (owner's end): no more walks. */
  ended = false;
  private pending: Pending | null = null;
  /** A local reply is going through the response chain. */
  private replying = false;

  constructor(owner: ChainOwner, plugins: readonly Plugin[]) {
    this.owner = owner;
    this.plugins = plugins;
    this.n = plugins.length;
    this.ctxs = new Array<HttpContext | null>(this.n).fill(null);
    this.rq = new Direction(true, this.n);
    this.rs = new Direction(false, this.n);
  }

  /**
   * Create every filter's context (proxy_on_context_create). A plugin whose
   * failure policy skips it gets none; returns the first plugin whose policy
   * refuses the stream (answer failureReply(it)), or null.
   */
  open(requestHeaders: HeaderMap | null): Plugin | null {
    let rejectedBy: Plugin | null = null;
    for (let i = 0; i < this.n; i++) {
      const plugin = this.plugins[i]!;
      const ctx = plugin.newHttpContext({ delegate: this });
      if (ctx === 'skip') {
        this.owner.skipped(plugin);
        continue;
      }
      if (ctx === 'reject') {
        rejectedBy ??= plugin;
        continue;
      }
      ctx.requestHeaders = requestHeaders;
      this.ctxs[i] = ctx;
    }
    return rejectedBy;
  }

  // ---- what the owner feeds in ----

  /** The request headers arrive (the first phase). */
  requestHeaders(headers: HeaderMap, eos: boolean): FilterResult {
    const d = this.rq;
    d.headers = headers;
    d.headersEos = eos;
    for (const ctx of this.ctxs) if (ctx !== null) ctx.requestHeaders = headers;
    return this.headersFrom(d, 0);
  }

  /** The upstream's response headers arrive. */
  upstreamResponse(headers: HeaderMap, eos: boolean): FilterResult {
    this.codeDetails = 'via_upstream';
    return this.startResponse(headers, eos);
  }

  /** Trailers arrive in `d` (after its body, if any). */
  trailersArrived(d: Direction, trailers: HeaderMap): FilterResult {
    d.trailers = trailers;
    for (const ctx of this.ctxs) {
      if (ctx === null) continue;
      if (d.request) ctx.requestTrailers = trailers;
      else ctx.responseTrailers = trailers;
    }
    return this.trailersFrom(d, 0);
  }

  /**
   * For a driver that delivers each phase itself (the emulator, where the
   * test plays the data plane): step k gets its next phase whatever it
   * paused in, as if it had continued; a body phase that paused keeps
   * buffering (the next chunk is added to what it holds) unless `replaceBody`.
   */
  deliverTo(d: Direction, k: number, replaceBody: boolean): void {
    const blocked = d.steps[k]! & BLOCK;
    if (replaceBody || blocked === ON_HEADERS || blocked === ON_TRAILERS) d.steps[k] = NONE;
  }

  /** Answer with `reply` (or reset) now, unless something already decided how the stream ends. */
  answer(p: Pending): void {
    this.pending ??= p;
    this.processPending();
  }

  // ---- the chain ----

  private ctxAt(d: Direction, k: number): HttpContext | null {
    const ctx = this.ctxs[d.request ? k : this.n - 1 - k]!;
    return ctx === null || ctx.failed ? null : ctx;
  }

  /**
   * After a guest callback at step k: apply the failure policy to a trap,
   * carry out a local reply or reset the callback asked for. True when the
   * caller must stop walking the chain.
   */
  private interrupted(d: Direction, k: number, r: FilterResult): boolean {
    if (r === FilterResult.FAILED) {
      const plugin = this.plugins[d.request ? k : this.n - 1 - k]!;
      this.owner.trapped(plugin, true);
      // A failure while a reply is already on its way only drops that filter.
      if (plugin.failurePolicy !== 'fail_open' && !this.replying) this.pending ??= this.owner.failureReply(plugin);
    }
    if (this.pending !== null) {
      this.processPending();
      return true;
    }
    return d.dead || this.ended;
  }

  headersFrom(d: Direction, k: number): FilterResult {
    let r: FilterResult = FilterResult.CONTINUE;
    for (; k < this.n; k++) {
      const ctx = this.ctxAt(d, k);
      if (ctx === null) continue;
      r = d.request ? ctx.onRequestHeaders(d.headersEos) : ctx.onResponseHeaders(d.headersEos);
      if (this.interrupted(d, k, r)) return r === FilterResult.FAILED ? r : FilterResult.PAUSE;
      if (r === FilterResult.PAUSE) {
        d.steps[k] = (d.steps[k]! & ~BLOCK) | ON_HEADERS;
        return r;
      }
    }
    this.owner.headersAtEnd(d);
    return r;
  }

  dataFrom(d: Direction, k: number, chunk: Buffer, eos: boolean): FilterResult {
    let r: FilterResult = FilterResult.CONTINUE;
    for (; k < this.n; k++) {
      const ctx = this.ctxAt(d, k);
      if (ctx === null) continue;
      const buffer = d.request ? ctx.requestBody : ctx.responseBody;
      const state = d.steps[k]!;
      const blocked = state & BLOCK;
      if (blocked === ON_HEADERS || blocked === ON_TRAILERS) {
        // Held until this filter continues; it sees it all then.
        if (chunk.length > 0) buffer.append(chunk);
        d.steps[k] = blocked | HELD | (eos ? HELD_EOS : 0) | (state & HELD_TRAILERS);
        this.owner.overLimit(d, buffer.size);
        return FilterResult.PAUSE;
      }
      if (blocked === ON_BODY) {
        if (chunk.length > 0) buffer.append(chunk);
        if (this.owner.overLimit(d, buffer.size)) return FilterResult.PAUSE;
      } else {
        buffer.replace(chunk);
      }
      r = d.request ? ctx.onRequestBody(eos) : ctx.onResponseBody(eos);
      if (this.interrupted(d, k, r)) return r === FilterResult.FAILED ? r : FilterResult.PAUSE;
      if (r === FilterResult.PAUSE) {
        d.steps[k] = ON_BODY | HELD | (eos ? HELD_EOS : 0);
        if (blocked !== ON_BODY) this.owner.overLimit(d, buffer.size);
        return r;
      }
      d.steps[k] = NONE;
      chunk = buffer.bytes();
    }
    d.bytesOut += chunk.length;
    this.owner.dataAtEnd(d, chunk, eos);
    return r;
  }

  trailersFrom(d: Direction, k: number): FilterResult {
    let r: FilterResult = FilterResult.CONTINUE;
    for (; k < this.n; k++) {
      const ctx = this.ctxAt(d, k);
      if (ctx === null) continue;
      const state = d.steps[k]!;
      if ((state & BLOCK) === ON_HEADERS) {
        d.steps[k] = state | HELD_TRAILERS;
        return FilterResult.PAUSE;
      }
      r = d.request ? ctx.onRequestTrailers() : ctx.onResponseTrailers();
      if (this.interrupted(d, k, r)) return r === FilterResult.FAILED ? r : FilterResult.PAUSE;
      if (r === FilterResult.PAUSE) {
        d.steps[k] = (state & HELD) | ON_TRAILERS;
        return r;
      }
      d.steps[k] = NONE;
      if (state & HELD) {
        // Data this filter was buffering goes on before the trailers.
        this.dataFrom(d, k + 1, d.request ? ctx.requestBody.bytes() : ctx.responseBody.bytes(), false);
        if (d.dead || this.ended) return r;
      }
    }
    this.owner.trailersAtEnd(d);
    return r;
  }

  /** continue_stream from the filter at step k (run from schedule(), never inside the guest). */
  private resume(d: Direction, k: number): void {
    if (d.dead || this.ended) return;
    const state = d.steps[k]!;
    const blocked = state & BLOCK;
    if (blocked === NONE) return; // continue without a pause: nothing to do
    const ctx = this.ctxs[d.request ? k : this.n - 1 - k]!;
    const buffered = (): Buffer => (ctx === null ? EMPTY : d.request ? ctx.requestBody.bytes() : ctx.responseBody.bytes());
    d.steps[k] = NONE;
    if (blocked === ON_HEADERS) {
      this.headersFrom(d, k + 1);
      if (d.dead || this.ended) return;
      // Data that arrived meanwhile now reaches this filter, then the trailers.
      if (state & HELD) this.dataFrom(d, k, buffered(), (state & HELD_EOS) !== 0);
      if (d.dead || this.ended) return;
      if (state & HELD_TRAILERS) this.trailersFrom(d, k);
    } else if (blocked === ON_BODY) {
      this.dataFrom(d, k + 1, buffered(), (state & HELD_EOS) !== 0);
    } else {
      if (state & HELD) {
        this.dataFrom(d, k + 1, buffered(), false);
        if (d.dead || this.ended) return;
      }
      this.trailersFrom(d, k + 1);
    }
  }

  private startResponse(headers: HeaderMap, eos: boolean): FilterResult {
    const d = this.rs;
    d.headers = headers;
    d.headersEos = eos;
    for (const ctx of this.ctxs) if (ctx !== null) ctx.responseHeaders = headers;
    return this.headersFrom(d, 0);
  }

  // ---- StreamDelegate (called from inside the guest: record, act later) ----

  streamProperty(key: string): PropertyValue | undefined {
    return this.owner.property(key);
  }

  continueStream(ctx: HttpContext, stream: 0 | 1): void {
    const slot = this.ctxs.indexOf(ctx);
    if (slot < 0) return;
    const d = stream === 0 ? this.rq : this.rs;
    const k = d.request ? slot : this.n - 1 - slot;
    this.owner.schedule(() => this.resume(d, k));
  }

  closeStream(ctx: HttpContext, stream: 0 | 1): void {
    // Envoy records why the stream ended unless something already did.
    if (this.codeDetails === '') this.codeDetails = CLOSE_STREAM_DETAILS;
    this.pending = { kind: 'reset', reason: `close_stream(${stream}) by plugin ${ctx.plugin.name}` };
    this.owner.schedule(() => this.processPending());
  }

  sendLocalResponse(ctx: HttpContext, response: LocalResponse): void {
    if (this.pending?.kind === 'reset') return;
    this.pending = {
      kind: 'reply',
      status: response.status,
      headers: response.headers.flat,
      body: response.body,
      details: localReplyDetails(response.details, ctx.plugin.name),
      close: false,
    };
    this.owner.schedule(() => this.processPending());
  }

  private processPending(): void {
    const p = this.pending;
    if (p === null) return;
    this.pending = null;
    if (this.ended) return;
    if (p.kind === 'reset') {
      this.reset(p.reason);
      return;
    }
    this.reply(p);
  }

  /**
   * A local reply, Envoy's way: before any response exists it is encoded
   * through the response filter chain; once response headers exist but are
   * not sent it replaces them directly; after that the stream is reset.
   */
  private reply(p: ChainReply): void {
    this.rq.dead = true;
    this.owner.replyStarted(p);
    this.codeDetails = p.details;
    const flat = localReplyHeaders(p.status, p.headers, p.body);
    if (this.rs.headers === null) {
      this.replying = true;
      this.startResponse(new HeaderMap(flat), p.body.length === 0);
      if (p.body.length > 0 && !this.rs.dead && !this.ended) this.dataFrom(this.rs, 0, p.body, true);
      return;
    }
    if (!this.owner.responseStarted) {
      this.rs.dead = true;
      this.rs.headers.setAll(flat); // on_log sees the reply's :status
      this.owner.replaceResponse(this.rs, p.body);
      return;
    }
    this.reset(`local reply ${p.status} after the response started`);
  }

  reset(reason: string): void {
    this.rq.dead = true;
    this.rs.dead = true;
    this.owner.reset(reason);
  }

  // ---- end ----

  /** The stream is over: on_done, on_log and on_delete of every filter, in configured order. */
  complete(): void {
    this.ended = true;
    this.rq.dead = true;
    this.rs.dead = true;
    for (const ctx of this.ctxs) {
      if (ctx === null) continue;
      // A trap in on_done/on_log/on_delete counts like one in any other phase
      // (a VM already poisoned by another stream is not this stream's trap).
      const healthy = !ctx.failed && ctx.vm.poisoned === null;
      ctx.complete();
      if (healthy && ctx.vm.poisoned !== null) this.owner.trapped(ctx.plugin, false);
    }
  }
}
