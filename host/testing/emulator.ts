/**
 * The host emulator for plugin authors: run a compiled proxy-wasm module in
 * the real hookwire host (host/abi + host/vm), drive an HTTP stream phase by
 * phase, and inspect everything the plugin did, with no proxy and no sockets.
 * Modelled on proxy-wasm-go-sdk's proxytest.
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
import { FilterResult, HttpContext, type LocalResponse } from '../vm/http-context.js';
import { DEFAULT_LIMITS, type GuestLimits } from '../vm/deadline.js';
import type { PluginLogRecord } from '../vm/logging.js';
import { compileModule } from '../vm/module.js';
import type { FailurePolicy, HttpCallFailure, HttpCallRequest, HttpCallResponse, Plugin } from '../vm/plugin.js';
import type { PropertyValue } from '../vm/properties.js';
import { Runtime, type Clock, type ForeignFunction, type RuntimeEvent } from '../vm/runtime.js';

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
  /** Upstream (cluster) names http calls may target; default: any. */
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

interface StreamRecord {
  ctx: HttpContext;
  continued: { request: number; response: number };
  closed: { request: boolean; response: boolean };
}

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
  private readonly streams = new Map<number, StreamRecord>();
  private readonly pending = new Map<number, { call: HttpCallRequest; done: (r: HttpCallResponse | HttpCallFailure) => void }>();
  private readonly deferred: Array<() => void> = [];
  /** Tick callbacks by timer handle: one per plugin that set a tick period. */
  private readonly tickFns = new Map<number, () => void>();
  private nextTimer = 1;

  private constructor(options: EmulatorOptions) {
    const upstreams = options.upstreams ? new Set(options.upstreams) : null;
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
        hasUpstream: (name) => (upstreams ? upstreams.has(name) : true),
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
   * `properties` are this stream's attributes (request.*, source.*...).
   */
  initHttpContext(properties: Record<string, PropertyValue> = {}): number {
    return this.drive(() => {
      const record: Partial<StreamRecord> = { continued: { request: 0, response: 0 }, closed: { request: false, response: false } };
      const result = this.plugin.newHttpContext({
        // Own keys only: "constructor" or "__proto__" are not properties of the request.
        properties: (key) => (Object.hasOwn(properties, key) ? properties[key] : undefined),
        delegate: {
          continueStream: (_c, s) => void (s === 0 ? record.continued!.request++ : record.continued!.response++),
          closeStream: (_c, s) => void (record.closed![s === 0 ? 'request' : 'response'] = true),
        },
      });
      if (typeof result === 'string') {
        throw new Error(`stream refused by failure policy ${this.plugin.failurePolicy} (${result}): ${this.plugin.failure}`);
      }
      record.ctx = result;
      this.streams.set(result.id, record as StreamRecord);
      return result.id;
    });
  }

  private stream(id: number): StreamRecord {
    const s = this.streams.get(id);
    if (!s) throw new ContextNotFoundError(id);
    return s;
  }

  /** Apply the failure policy to a trapped phase, as the data plane does. */
  private outcome(s: StreamRecord, r: FilterResult): FilterResult {
    if (r === FilterResult.FAILED && this.plugin.failurePolicy !== 'fail_open' && !s.ctx.localResponse) {
      s.ctx.localResponse = {
        status: 503,
        details: 'wasm_fail_closed',
        body: Buffer.alloc(0),
        headers: new HeaderMap(),
        grpcStatus: -1,
      } satisfies LocalResponse;
    }
    return r;
  }

  callOnRequestHeaders(id: number, headers: HeadersInput, endOfStream = false): FilterResult {
    const s = this.stream(id);
    s.ctx.requestHeaders = toHeaderMap(headers);
    return this.drive(() => this.outcome(s, s.ctx.onRequestHeaders(endOfStream)));
  }

  /** Append `chunk` to the buffered request body (or replace it when `replace`), then run on_request_body. */
  callOnRequestBody(id: number, chunk: string | Uint8Array, endOfStream = false, replace = false): FilterResult {
    const s = this.stream(id);
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    if (replace) s.ctx.requestBody.replace(bytes);
    else s.ctx.requestBody.append(bytes);
    return this.drive(() => this.outcome(s, s.ctx.onRequestBody(endOfStream)));
  }

  callOnRequestTrailers(id: number, trailers: HeadersInput): FilterResult {
    const s = this.stream(id);
    s.ctx.requestTrailers = toHeaderMap(trailers);
    return this.drive(() => this.outcome(s, s.ctx.onRequestTrailers()));
  }

  callOnResponseHeaders(id: number, headers: HeadersInput, endOfStream = false): FilterResult {
    const s = this.stream(id);
    s.ctx.responseHeaders = toHeaderMap(headers);
    return this.drive(() => this.outcome(s, s.ctx.onResponseHeaders(endOfStream)));
  }

  callOnResponseBody(id: number, chunk: string | Uint8Array, endOfStream = false, replace = false): FilterResult {
    const s = this.stream(id);
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    if (replace) s.ctx.responseBody.replace(bytes);
    else s.ctx.responseBody.append(bytes);
    return this.drive(() => this.outcome(s, s.ctx.onResponseBody(endOfStream)));
  }

  callOnResponseTrailers(id: number, trailers: HeadersInput): FilterResult {
    const s = this.stream(id);
    s.ctx.responseTrailers = toHeaderMap(trailers);
    return this.drive(() => this.outcome(s, s.ctx.onResponseTrailers()));
  }

  /** End the stream: proxy_on_done, proxy_on_log, proxy_on_delete. */
  completeHttpContext(id: number): void {
    const s = this.stream(id);
    this.drive(() => s.ctx.complete());
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
    return { continued: { ...s.continued }, closed: { ...s.closed } };
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
