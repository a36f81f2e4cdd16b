/**
 * The host emulator for plugin authors: run a compiled proxy-wasm module in
 * the real hookwire host (host/abi + host/vm), drive an HTTP stream phase by
 * phase, and inspect everything the plugin did, with no proxy and no sockets.
 * Modelled on proxy-wasm-go-sdk's proxytest. A stream is the data plane's
 * own filter chain (host/vm/filter-chain.ts: phase results, pauses,
 * buffering, local replies, failure policy, resets, the end of the stream)
 * with the plugin as its only filter, fed from the call* methods instead of
 * sockets; its request.* / response.* attributes are the data plane's too
 * (host/vm/stream-properties.ts), and the defaults are Envoy's: undeclared
 * clusters are refused, a local reply stops iteration and runs the response
 * phases. test/proxy/emulator-parity.test.ts holds both hosts to the same
 * records.
 *
 * ```ts
 * const host = await HostEmulator.start({ wasm: 'dist/my-filter.wasm', pluginConfig: { header: 'x-a' } });
 * const id = host.initHttpContext();
 * host.callOnRequestHeaders(id, { ':method': 'GET', ':path': '/' }, true);
 * host.callOnResponseHeaders(id, { ':status': '200' }, true);
 * expect(host.currentResponseHeaders(id)).toContainEqual(['x-a', '1']);
 * host.completeHttpContext(id);
 * expect(host.logs('info')).toContain('done');
 * ```
 */
import { readFile } from 'node:fs/promises';
import { LOG_LEVEL_NAMES, LogLevel, type LogLevelName } from '../abi/constants.js';
import { HeaderMap } from '../abi/header-map.js';
import { ContextNotFoundError } from '../errors.js';
import { FilterResult, type HttpContext } from '../vm/http-context.js';
import { DEFAULT_LIMITS, type GuestLimits } from '../vm/deadline.js';
import { FilterChain, type ChainOwner, type ChainReply, type Direction } from '../vm/filter-chain.js';
import type { PluginLogRecord } from '../vm/logging.js';
import { compileModule } from '../vm/module.js';
import type { FailurePolicy, HttpCallFailure, HttpCallRequest, HttpCallResponse, Plugin } from '../vm/plugin.js';
import type { PropertyValue } from '../vm/properties.js';
import { Runtime, type Clock, type ForeignFunction, type RuntimeEvent } from '../vm/runtime.js';
import { streamProperty, type StreamFacts } from '../vm/stream-properties.js';

export { FilterResult } from '../vm/http-context.js';

/** Headers as the emulator accepts them: an object or ordered pairs (UTF-8 strings). */
export type HeadersInput = Record<string, string> | ReadonlyArray<readonly [string, string]>;
export type Pairs = Array<[string, string]>;

export interface EmulatorOptions {
  /** Path of the .wasm file, or its bytes. */
  wasm: string | Uint8Array;
  name?: string;
  rootId?: string;
  vmId?: string;
  /** Plugin configuration; objects are JSON-encoded. */
  pluginConfig?: string | Uint8Array | object;
  /** VM configuration (on_vm_start); objects are JSON-encoded. */
  vmConfig?: string | Uint8Array | object;
  /** Host-level properties by dotted path ("node.id", "xds.cluster_name"...). */
  properties?: Record<string, PropertyValue>;
  failurePolicy?: FailurePolicy;
  allowUnknownImports?: boolean;
  envoyStrict?: boolean;
  /** Lowest level captured (default trace: everything). */
  logLevel?: LogLevelName;
  /**
   * Upstream (cluster) names http calls may target. As in Envoy, a call to a
   * cluster that is not declared here is refused with BAD_ARGUMENT (default: none).
   */
  upstreams?: readonly string[];
  environment?: Record<string, string>;
  foreignFunctions?: Record<string, ForeignFunction>;
  clock?: Clock;
  /**
   * Deadlines and memory cap, as in the gateway (default: the gateway's
   * defaults, so a plugin that would be stopped there is stopped here too).
   * Null runs the module unguarded.
   */
  limits?: Partial<GuestLimits> | null;
}

export interface PendingHttpCall {
  readonly token: number;
  readonly upstream: string;
  readonly headers: Pairs;
  readonly body: Buffer;
  readonly trailers: Pairs;
  readonly timeoutMs: number;
}

export interface SentLocalResponse {
  readonly status: number;
  readonly details: string;
  readonly headers: Pairs;
  readonly body: Buffer;
  readonly grpcStatus: number;
}

/**
 * One emulated stream: the data plane's filter chain (host/vm/filter-chain.ts,
 * the same walk the gateway's FilterStream drives) with this plugin as its
 * only filter, fed from the call* methods instead of sockets. What leaves the
 * chain is only recorded: whether the response head "went out" (a later
 * local reply then resets the stream, as in the gateway), and why the stream
 * was reset.
 */
class EmulatedStream implements ChainOwner, StreamFacts {
  readonly chain: CountingChain;
  ctx!: HttpContext;
  responseStarted = false;
  /** Why the stream was reset (close_stream, a local reply after the response started), or null. */
  resetReason: string | null = null;
  /** The plugin's failure policy let the stream pass without it (fail_open after a trap). */
  skippedPlugin = false;
  private readonly overrides: Record<string, PropertyValue>;
  private readonly deferred: Array<() => void>;

  constructor(plugin: Plugin, overrides: Record<string, PropertyValue>, deferred: Array<() => void>) {
    this.overrides = overrides;
    this.deferred = deferred;
    this.chain = new CountingChain(this, [plugin]);
  }

  // ---- StreamFacts (request.* / response.*) ----

  get requestHeaders(): HeaderMap | null {
    return this.chain.rq.headers;
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

  // ---- ChainOwner ----

  property(key: string): PropertyValue | undefined {
    // Own keys only: "constructor" or "__proto__" are not properties of the request.
    return Object.hasOwn(this.overrides, key) ? this.overrides[key] : streamProperty(this, key);
  }

  /** Run after the current emulator call returns (HostEmulator.flush), never inside the guest. */
  schedule(work: () => void): void {
    this.deferred.push(work);
  }

  headersAtEnd(d: Direction): void {
    if (!d.request && d.headersEos) this.responseStarted = true;
  }

  dataAtEnd(d: Direction): void {
    if (!d.request) this.responseStarted = true;
  }

  trailersAtEnd(d: Direction): void {
    if (!d.request) this.responseStarted = true;
  }

  /** The gateway's body buffer limits are its configuration; the emulator has none. */
  overLimit(): boolean {
    return false;
  }

  skipped(): void {
    this.skippedPlugin = true;
  }

  /** Traps are recorded by the runtime (runtimeEvents()). */
  trapped(): void {}

  /** 503, wasm_fail_stream, with no body (the gateway's JSON body names a request id); localResponse(id) shows it. */
  failureReply(): ChainReply {
    this.ctx.localResponse = { status: 503, details: 'wasm_fail_stream', body: EMPTY, headers: new HeaderMap(), grpcStatus: -1 };
    return { kind: 'reply', status: 503, headers: [], body: EMPTY, details: 'wasm_fail_stream', close: false };
  }

  replyStarted(): void {}

  /** The reply replaced the response's headers: its body is what the client gets. */
  replaceResponse(d: Direction, body: Buffer): void {
    this.ctx.responseBody.replace(body);
    d.bytesOut += body.length;
  }

  reset(reason: string): void {
    this.resetReason = reason;
  }
}

/** The chain, counting the plugin's continue_stream and close_stream calls for streamControl(). */
class CountingChain extends FilterChain {
  readonly continued = { request: 0, response: 0 };
  readonly closed = { request: false, response: false };

  override continueStream(ctx: HttpContext, stream: 0 | 1): void {
    if (stream === 0) this.continued.request++;
    else this.continued.response++;
    super.continueStream(ctx, stream);
  }

  override closeStream(ctx: HttpContext, stream: 0 | 1): void {
    this.closed[stream === 0 ? 'request' : 'response'] = true;
    super.closeStream(ctx, stream);
  }
}

const EMPTY = Buffer.alloc(0);

const utf8ToBytes = (s: string) => Buffer.from(s, 'utf8').toString('latin1');
const bytesToUtf8 = (s: string) => Buffer.from(s, 'latin1').toString('utf8');

function toHeaderMap(input: HeadersInput): HeaderMap {
  const pairs = Array.isArray(input) ? input : Object.entries(input);
  const flat: string[] = [];
  for (const [k, v] of pairs as Iterable<readonly [string, string]>) flat.push(utf8ToBytes(k.toLowerCase()), utf8ToBytes(String(v)));
  return new HeaderMap(flat);
}

function toPairs(map: HeaderMap | null): Pairs {
  if (!map) return [];
  return map.toPairs().map(([k, v]) => [bytesToUtf8(k), bytesToUtf8(v)]);
}

function toBytes(v: string | Uint8Array | object | undefined): string | Uint8Array | undefined {
  if (v === undefined || typeof v === 'string' || v instanceof Uint8Array) return v;
  return JSON.stringify(v);
}

export class HostEmulator {
  readonly runtime: Runtime;
  plugin!: Plugin;
  private readonly records: PluginLogRecord[] = [];
  private readonly events: RuntimeEvent[] = [];
  private readonly streams = new Map<number, EmulatedStream>();
  private readonly pending = new Map<number, { call: HttpCallRequest; done: (r: HttpCallResponse | HttpCallFailure) => void }>();
  private readonly deferred: Array<() => void> = [];
  /** Tick callbacks by timer handle: one per plugin that set a tick period. */
  private readonly tickFns = new Map<number, () => void>();
  private nextTimer = 1;

  private constructor(options: EmulatorOptions) {
    const upstreams = new Set(options.upstreams ?? []);
    this.runtime = new Runtime({
      envoyStrict: options.envoyStrict ?? false,
      logLevel: options.logLevel ?? 'trace',
      onLog: (r) => this.records.push(r),
      onEvent: (e) => this.events.push(e),
      properties: options.properties ?? {},
      foreignFunctions: options.foreignFunctions ?? {},
      ...(options.clock ? { clock: options.clock } : {}),
      limits: options.limits === null ? null : { ...DEFAULT_LIMITS, ...options.limits },
      defer: (fn) => this.deferred.push(fn),
      // Reloads happen on the next stream, with no wall-clock backoff in tests.
      reloadBackoffMs: 0,
      timers: {
        setInterval: (fn) => {
          const handle = this.nextTimer++;
          this.tickFns.set(handle, fn);
          return handle;
        },
        clearInterval: (handle) => void this.tickFns.delete(handle as number),
      },
      httpCalls: {
        hasUpstream: (name) => upstreams.has(name),
        dispatch: (call, done) => void this.pending.set(call.token, { call, done }),
      },
    });
  }

  /** Load the module and start the plugin (on_vm_start, on_configure). Throws the runtime's typed errors. */
  static async start(options: EmulatorOptions): Promise<HostEmulator> {
    const host = new HostEmulator(options);
    const label = typeof options.wasm === 'string' ? options.wasm : '<bytes>';
    const bytes = typeof options.wasm === 'string' ? await readFile(options.wasm) : options.wasm;
    const module = await compileModule(bytes, label);
    const name = options.name ?? 'plugin';
    host.plugin = await host.runtime.loadPlugin({
      name,
      module,
      rootId: options.rootId ?? name,
      vmId: options.vmId ?? name,
      configuration: toBytes(options.pluginConfig) ?? '',
      vmConfiguration: toBytes(options.vmConfig) ?? '',
      failurePolicy: options.failurePolicy ?? 'fail_closed',
      allowUnknownImports: options.allowUnknownImports ?? false,
      environment: options.environment ?? {},
    });
    host.flush();
    return host;
  }

  /** Run notifications the plugin's calls posted (on_queue_ready). */
  private flush(): void {
    for (let i = 0; i < 100 && this.deferred.length > 0; i++) this.deferred.shift()!();
  }

  private drive<T>(fn: () => T): T {
    try {
      return fn();
    } finally {
      this.flush();
    }
  }

  // ---- logs and events ----

  /** Messages logged at exactly `level` (all levels when omitted). */
  logs(level?: LogLevelName): string[] {
    const want = level === undefined ? -1 : LOG_LEVEL_NAMES.indexOf(level);
    return this.records.filter((r) => want < 0 || r.level === want).map((r) => r.message);
  }

  logRecords(): readonly PluginLogRecord[] {
    return this.records;
  }

  clearLogs(): void {
    this.records.length = 0;
  }

  /** Lifecycle events (loaded, trapped, reloaded...). */
  runtimeEvents(): readonly RuntimeEvent[] {
    return this.events;
  }

  // ---- HTTP streams ----

  /**
   * Create an HTTP context (proxy_on_context_create). Returns its id, or
   * throws when the failure policy refuses the stream (VM trapped, fail_closed).
   * request.* and response.* are derived from the stream as the gateway
   * derives them (one implementation: host/vm/stream-properties.ts);
   * `properties` add this stream's other attributes (source.*, connection.*...)
   * and override any derived one.
   */
  initHttpContext(properties: Record<string, PropertyValue> = {}): number {
    return this.drive(() => {
      const s = new EmulatedStream(this.plugin, properties, this.deferred);
      s.chain.open(null);
      const ctx = s.chain.ctxs[0];
      if (ctx === null || ctx === undefined) {
        const refusal = s.skippedPlugin ? 'skip' : 'reject';
        throw new Error(`stream refused by failure policy ${this.plugin.failurePolicy} (${refusal}): ${this.plugin.failure}`);
      }
      s.ctx = ctx;
      this.streams.set(ctx.id, s);
      return ctx.id;
    });
  }

  private stream(id: number): EmulatedStream {
    const s = this.streams.get(id);
    if (!s) throw new ContextNotFoundError(id);
    return s;
  }

  /**
   * Whether the phase can be delivered: false when the plugin's context has
   * failed (trapped) or ended, whose later phases answer FAILED without
   * reaching the guest. Throws for a phase the data plane would never run
   * (a local reply or a reset already ended that direction).
   */
  private deliverable(s: EmulatedStream, phase: string, response: boolean): boolean {
    if (s.ctx.failed || s.ctx.deleted) return false;
    const d = response ? s.chain.rs : s.chain.rq;
    if (d.dead) {
      const why = s.resetReason !== null ? `was reset (${s.resetReason})` : 'was already answered with a local reply';
      throw new Error(`${phase}: stream ${s.ctx.id} ${why}; the data plane runs no more ${response ? 'response' : 'request'} phases`);
    }
    return true;
  }

  callOnRequestHeaders(id: number, headers: HeadersInput, endOfStream = false): FilterResult {
    const s = this.stream(id);
    const map = toHeaderMap(headers);
    if (!this.deliverable(s, 'callOnRequestHeaders', false)) {
      s.ctx.requestHeaders = map;
      return FilterResult.FAILED;
    }
    s.chain.deliverTo(s.chain.rq, 0, false);
    return this.drive(() => s.chain.requestHeaders(map, endOfStream));
  }

  /**
   * Run on_request_body with `chunk`. As in the data plane, the chunk is added
   * to the buffered body when the previous body call paused (the filter
   * buffers), and replaces it otherwise; `replace` always replaces.
   */
  callOnRequestBody(id: number, chunk: string | Uint8Array, endOfStream = false, replace = false): FilterResult {
    return this.body(id, 'callOnRequestBody', false, chunk, endOfStream, replace);
  }

  callOnRequestTrailers(id: number, trailers: HeadersInput): FilterResult {
    return this.trailers(id, 'callOnRequestTrailers', false, trailers);
  }

  /** The upstream's response headers (response.code_details becomes via_upstream). */
  callOnResponseHeaders(id: number, headers: HeadersInput, endOfStream = false): FilterResult {
    const s = this.stream(id);
    const map = toHeaderMap(headers);
    if (!this.deliverable(s, 'callOnResponseHeaders', true)) {
      s.ctx.responseHeaders = map;
      return FilterResult.FAILED;
    }
    if (s.chain.rq.dead) throw new Error(`callOnResponseHeaders: stream ${id} was answered with a local reply; its response phases already ran on the reply`);
    s.chain.deliverTo(s.chain.rs, 0, false);
    return this.drive(() => s.chain.upstreamResponse(map, endOfStream));
  }

  callOnResponseBody(id: number, chunk: string | Uint8Array, endOfStream = false, replace = false): FilterResult {
    return this.body(id, 'callOnResponseBody', true, chunk, endOfStream, replace);
  }

  callOnResponseTrailers(id: number, trailers: HeadersInput): FilterResult {
    return this.trailers(id, 'callOnResponseTrailers', true, trailers);
  }

  private body(id: number, phase: string, response: boolean, chunk: string | Uint8Array, eos: boolean, replace: boolean): FilterResult {
    const s = this.stream(id);
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const d = response ? s.chain.rs : s.chain.rq;
    const deliverable = this.deliverable(s, phase, response);
    d.bytesIn += bytes.length;
    if (!deliverable) return FilterResult.FAILED;
    s.chain.deliverTo(d, 0, replace);
    return this.drive(() => s.chain.dataFrom(d, 0, bytes, eos));
  }

  private trailers(id: number, phase: string, response: boolean, trailers: HeadersInput): FilterResult {
    const s = this.stream(id);
    const map = toHeaderMap(trailers);
    if (!this.deliverable(s, phase, response)) {
      if (response) s.ctx.responseTrailers = map;
      else s.ctx.requestTrailers = map;
      return FilterResult.FAILED;
    }
    const d = response ? s.chain.rs : s.chain.rq;
    s.chain.deliverTo(d, 0, false);
    return this.drive(() => s.chain.trailersArrived(d, map));
  }

  /** End the stream: proxy_on_done, proxy_on_log, proxy_on_delete. */
  completeHttpContext(id: number): void {
    const s = this.stream(id);
    this.drive(() => s.chain.complete());
  }

  currentRequestHeaders(id: number): Pairs {
    return toPairs(this.stream(id).ctx.requestHeaders);
  }

  currentResponseHeaders(id: number): Pairs {
    return toPairs(this.stream(id).ctx.responseHeaders);
  }

  currentRequestTrailers(id: number): Pairs {
    return toPairs(this.stream(id).ctx.requestTrailers);
  }

  currentResponseTrailers(id: number): Pairs {
    return toPairs(this.stream(id).ctx.responseTrailers);
  }

  currentRequestBody(id: number): Buffer {
    return this.stream(id).ctx.requestBody.bytes();
  }

  currentResponseBody(id: number): Buffer {
    return this.stream(id).ctx.responseBody.bytes();
  }

  /** The local response the plugin sent (or the 503 a fail-closed trap produced), or null. */
  localResponse(id: number): SentLocalResponse | null {
    const r = this.stream(id).ctx.localResponse;
    if (!r) return null;
    return { status: r.status, details: r.details, headers: toPairs(r.headers), body: r.body, grpcStatus: r.grpcStatus };
  }

  /** How often the plugin called continue_stream per direction, and whether it closed them. */
  streamControl(id: number): { continued: { request: number; response: number }; closed: { request: boolean; response: boolean } } {
    const s = this.stream(id);
    return { continued: { ...s.chain.continued }, closed: { ...s.chain.closed } };
  }

  /** Whether the VM trapped while serving this stream. */
  streamFailed(id: number): boolean {
    return this.stream(id).ctx.failed;
  }

  // ---- http calls ----

  /** Calls the plugin made that have not been answered yet. */
  httpCalls(): PendingHttpCall[] {
    return [...this.pending.values()].map(({ call }) => ({
      token: call.token,
      upstream: call.upstream,
      headers: toPairs(call.headers),
      body: call.body,
      trailers: toPairs(call.trailers),
      timeoutMs: call.timeoutMs,
    }));
  }

  private take(token: number) {
    const p = this.pending.get(token);
    if (!p) throw new Error(`no pending http call with token ${token}`);
    this.pending.delete(token);
    return p;
  }

  /** Answer a call: proxy_on_http_call_response with maps 6/7 and buffer 4. */
  respondToHttpCall(
    token: number,
    response: { status?: number; headers?: HeadersInput; body?: string | Uint8Array; trailers?: HeadersInput } = {},
  ): void {
    const p = this.take(token);
    const headers = toHeaderMap(response.headers ?? {});
    if (headers.get(':status') === undefined) headers.flat.unshift(':status', String(response.status ?? 200));
    const body = response.body === undefined ? Buffer.alloc(0) : typeof response.body === 'string' ? Buffer.from(response.body) : response.body;
    this.drive(() => p.done({ headers, body, trailers: toHeaderMap(response.trailers ?? {}) }));
  }

  /** Fail a call (timeout or connection failure): the plugin sees 0 headers. */
  failHttpCall(token: number, failure: 'timeout' | 'connection' = 'timeout'): void {
    const p = this.take(token);
    this.drive(() => p.done({ failure }));
  }

  // ---- timers, shared state, metrics ----

  /** The tick period the plugin set (0: none). */
  tickPeriod(): number {
    return this.plugin.tickPeriod;
  }

  /** Fire proxy_on_tick once on every plugin of this runtime that has a tick period. */
  tick(): void {
    this.drive(() => {
      for (const fn of [...this.tickFns.values()]) fn();
    });
  }

  sharedData(key: string): { value: Buffer; cas: number } | undefined {
    const e = this.runtime.sharedData.get(this.plugin.vmId, key);
    return e && { value: Buffer.from(e.value), cas: e.cas };
  }

  setSharedData(key: string, value: string | Uint8Array): void {
    this.runtime.sharedData.set(this.plugin.vmId, key, typeof value === 'string' ? Buffer.from(value) : value, 0);
  }

  /** Items waiting in a queue registered by this VM (or by `vmId`). */
  queueItems(name: string, vmId = this.plugin.vmId): Buffer[] {
    return this.runtime.queues.peek(vmId, name).map((b) => Buffer.from(b));
  }

  /** Enqueue from the host side (fires on_queue_ready on the registering root context). */
  enqueue(name: string, item: string | Uint8Array, vmId = this.plugin.vmId): void {
    const id = this.runtime.queues.resolve(vmId, name);
    if (id === undefined) throw new Error(`queue ${JSON.stringify(name)} is not registered in VM ${JSON.stringify(vmId)}`);
    this.drive(() => this.runtime.queues.enqueue(id, typeof item === 'string' ? Buffer.from(item) : item));
  }

  /** A metric's value by name (counter, gauge; histogram: count). */
  metric(name: string): bigint | undefined {
    return this.runtime.metrics.value(name);
  }

  /**
   * Unload the plugin as the gateway does on a reload or shutdown: root
   * proxy_on_done; a root that answers false keeps its ticks and http call
   * responses (drive them with tick() / respondToHttpCall()) until it calls
   * proxy_done, then proxy_on_delete. `plugin.closing` is true meanwhile.
   * Resolves once the root is deleted (at the latest after `drainMs`).
   */
  unload(drainMs = 10_000): Promise<void> {
    return this.drive(() => this.runtime.unloadPlugin(this.plugin, drainMs));
  }

  /** Close the plugin (root on_done and on_delete). */
  close(): void {
    this.runtime.close();
  }
}

export { LogLevel };
