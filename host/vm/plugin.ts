/**
 * A plugin: one root context in a VM, with its configuration, failure
 * policy, tick timer and outstanding http calls. Streams (HttpContext) are
 * created from it. Several plugins may share a VM (same vm_id and code).
 */
import { LogLevel, MapType, BufferType, Status } from '../abi/constants.js';
import { HeaderMap } from '../abi/header-map.js';
import type { AbiBuffer, HttpCallArgs } from '../abi/host.js';
import { PluginStartError, WasmTrapError } from '../errors.js';
import { BodyBuffer } from './buffer.js';
import type { ContextBinding } from './context.js';
import type { GuestLimits } from './deadline.js';
import { HttpContext, streamTypeStatus, type HttpContextOptions } from './http-context.js';
import { IdTable } from './id-table.js';
import { GUEST_LIMITS, MAX_TIMER_MS, storeProperty } from './limits.js';
import type { PropertyValue } from './properties.js';
import type { QueueOwner } from './shared-queues.js';
import type { Runtime, WasmTiming } from './runtime.js';
import type { WasmVm } from './vm.js';

export type FailurePolicy = 'fail_closed' | 'fail_open' | 'reload';
export const FAILURE_POLICIES: readonly FailurePolicy[] = ['fail_closed', 'fail_open', 'reload'];

/** An http call the guest made, as the transport sees it. */
export interface HttpCallRequest {
  readonly token: number;
  readonly plugin: string;
  readonly upstream: string;
  /** Including :method, :path, :authority. */
  readonly headers: HeaderMap;
  readonly body: Buffer;
  readonly trailers: HeaderMap;
  readonly timeoutMs: number;
}

export interface HttpCallResponse {
  /** Including :status. */
  readonly headers: HeaderMap;
  readonly body: Uint8Array;
  readonly trailers?: HeaderMap;
}

/** Why an http call produced no response (the guest then sees 0 headers). */
export interface HttpCallFailure {
  readonly failure: 'timeout' | 'connection' | 'cancelled';
  readonly message?: string;
}

export interface HttpCallTransport {
  /** Whether `upstream` names a reachable cluster (strict: cluster names only). */
  hasUpstream(upstream: string, envoyStrict: boolean): boolean;
  dispatch(call: HttpCallRequest, done: (result: HttpCallResponse | HttpCallFailure) => void): void;
}

/** What a new stream gets when the plugin cannot serve it. */
export type StreamRefusal = 'skip' | 'reject';

export class Plugin implements ContextBinding, QueueOwner {
  readonly runtime: Runtime;
  readonly name: string;
  readonly rootId: string;
  readonly vmId: string;
  readonly failurePolicy: FailurePolicy;
  readonly configuration: Buffer;
  readonly vmConfiguration: Buffer;
  vm!: WasmVm;
  /** Root context id in the current VM. */
  id = 0;
  /** Reloads performed after traps (failure policy "reload"). */
  reloads = 0;
  closed = false;
  /** Time in this plugin's guest calls (only when the runtime measures it). */
  readonly timing: WasmTiming | null;
  /** Deadlines of this plugin's calls (null: its VM's). */
  readonly limits: GuestLimits | null;

  private tickPeriodMs = 0;
  private tickTimer: unknown = null;
  /** Calls in flight by token, with the context that made each (an IdTable: see id-table.ts). */
  private readonly pendingCalls = new IdTable<ContextBinding>(16);
  /** Bytes of the headers and bodies of the calls in flight (GUEST_LIMITS.pendingHttpCallBytes). */
  private pendingCallBytes = 0;
  private callResponse: { headers: HeaderMap; trailers: HeaderMap; body: BodyBuffer } | null = null;
  private readonly configBuffers: (BodyBuffer | null)[] = [];
  private readonly custom = new Map<string, Uint8Array>();
  /** Unloading: the root's proxy_on_done returned false and proxy_done has not come yet. */
  private donePending = false;
  /** Told once the root context is deleted (see beginClose). */
  private onClosed: (() => void) | null = null;

  constructor(
    runtime: Runtime,
    spec: {
      name: string;
      rootId: string;
      vmId: string;
      failurePolicy: FailurePolicy;
      configuration: Buffer;
      vmConfiguration: Buffer;
      limits?: GuestLimits | null;
    },
  ) {
    this.runtime = runtime;
    this.name = spec.name;
    this.rootId = spec.rootId;
    this.vmId = spec.vmId;
    this.failurePolicy = spec.failurePolicy;
    this.configuration = spec.configuration;
    this.vmConfiguration = spec.vmConfiguration;
    this.timing = runtime.timingFor(spec.name);
    this.limits = spec.limits ?? null;
  }

  get plugin(): Plugin {
    return this;
  }

  /** Healthy: the VM has not trapped. */
  get healthy(): boolean {
    return !this.closed && this.vm.poisoned === null;
  }

  /**
   * A stream through this plugin would run none of its code (its module
   * exports no stream callback) and it takes streams now (open, VM healthy):
   * the data plane may leave it out of the request. A plugin that refuses
   * streams is not passive, so its failure policy still applies.
   */
  get passive(): boolean {
    return !this.vm.runsStreams && !this.closed && !this.donePending && this.vm.poisoned === null;
  }

  /** Why the plugin cannot run streams now, or null. */
  get failure(): string | null {
    return this.closed ? 'plugin closed' : this.vm.poisoned;
  }

  /**
   * Create the root context in `vm` and run on_vm_start and on_configure.
   * Throws PluginStartError when either returns false or traps.
   */
  start(vm: WasmVm): void {
    this.vm = vm;
    this.id = vm.allocateContextId(this);
    const errors: string[] = [];
    // A plugin that refuses its configuration says why in its error log; keep it for the error.
    const why = (what: string) => (errors.length ? `${what}: ${errors.join('; ')}` : what);
    vm.capturedErrors = errors;
    try {
      vm.call(this, 'proxy_on_context_create', 0, this.id, 0);
      this.configBuffers[BufferType.VM_CONFIGURATION] = new BodyBuffer(false, this.vmConfiguration);
      const started = vm.call(this, 'proxy_on_vm_start', 1, this.id, this.vmConfiguration.length);
      this.configBuffers[BufferType.VM_CONFIGURATION] = null;
      if (started === 0) throw new PluginStartError(this.name, why('proxy_on_vm_start returned false (VM configuration rejected)'));
      this.configBuffers[BufferType.PLUGIN_CONFIGURATION] = new BodyBuffer(false, this.configuration);
      const configured = vm.call(this, 'proxy_on_configure', 1, this.id, this.configuration.length);
      this.configBuffers[BufferType.PLUGIN_CONFIGURATION] = null;
      if (configured === 0) throw new PluginStartError(this.name, why('proxy_on_configure returned false (plugin configuration rejected)'));
    } catch (err) {
      this.configBuffers.length = 0;
      this.stopTicks();
      if (err instanceof PluginStartError) throw err;
      throw new PluginStartError(this.name, (err as Error).message, { cause: err });
    } finally {
      vm.capturedErrors = null;
    }
  }

  /**
   * A context for one HTTP stream, or a refusal decided by the failure policy
   * when the VM has trapped: "skip" (fail_open: the stream passes without this
   * plugin) or "reject" (fail_closed, or a reload that failed: answer 503).
   */
  newHttpContext(options: HttpContextOptions = {}): HttpContext | StreamRefusal {
    if (this.closed || this.donePending) return 'reject';
    if (this.vm.poisoned !== null) {
      if (this.failurePolicy === 'fail_open') return 'skip';
      if (this.failurePolicy === 'fail_closed' || !this.runtime.reloadVm(this.vm)) return 'reject';
    }
    const ctx = new HttpContext(this, this.vm, options);
    try {
      this.vm.call(ctx, 'proxy_on_context_create', 0, ctx.id, this.id);
    } catch {
      ctx.markFailed();
      return this.failurePolicy === 'fail_open' ? 'skip' : 'reject';
    }
    return ctx;
  }

  // ---- timers ----

  setTickPeriod(ms: number): Status {
    this.stopTicks();
    // Clamped to what a Node timer can wait (a longer one would fire every millisecond).
    ms = Math.min(ms, MAX_TIMER_MS);
    this.tickPeriodMs = ms;
    if (ms > 0 && !this.closed) this.tickTimer = this.runtime.timers.setInterval(() => this.tick(), ms);
    return Status.OK;
  }

  get tickPeriod(): number {
    return this.tickPeriodMs;
  }

  /** The VM trapped: no more ticks until a reload restarts the plugin. An unload waiting for proxy_done ends now. */
  suspend(): void {
    this.stopTicks();
    if (this.donePending) this.runtime.defer(() => this.finishClose());
  }

  private stopTicks(): void {
    if (this.tickTimer !== null) this.runtime.timers.clearInterval(this.tickTimer);
    this.tickTimer = null;
  }

  /** Run proxy_on_tick once (the timer calls it; the emulator may too). */
  tick(): void {
    if (!this.healthy) return;
    this.callRoot('proxy_on_tick', this.id);
  }

  /** Call a root callback; a trap is already recorded on the VM, so it is only swallowed here. */
  private callRoot(name: 'proxy_on_tick' | 'proxy_on_queue_ready' | 'proxy_on_http_call_response', a: number, b = 0, c = 0, d = 0, e = 0): void {
    try {
      this.vm.call(this, name, 0, a, b, c, d, e);
    } catch (err) {
      if (!(err instanceof WasmTrapError)) throw err;
    }
  }

  // ---- http calls ----

  httpCall(args: HttpCallArgs, caller: ContextBinding): { status: Status; token: number } {
    // Envoy takes the timeout as a signed 32-bit int and refuses a negative one (2^31 ms and up here).
    if (args.timeoutMs > 0x7fffffff) {
      this.vm.hostLog(LogLevel.WARN, `proxy_http_call to ${args.upstream}: timeout ${args.timeoutMs} ms is negative as Envoy reads it (BAD_ARGUMENT)`);
      return { status: Status.BAD_ARGUMENT, token: 0 };
    }
    const headers = new HeaderMap(args.headers);
    // Envoy refuses calls without these pseudo-headers.
    for (const h of [':method', ':path', ':authority']) {
      if (!headers.get(h)) {
        this.vm.hostLog(LogLevel.WARN, `proxy_http_call to ${args.upstream}: missing ${h} header (BAD_ARGUMENT)`);
        return { status: Status.BAD_ARGUMENT, token: 0 };
      }
    }
    const transport = this.runtime.httpCalls;
    if (!transport || !transport.hasUpstream(args.upstream, this.runtime.envoyStrict)) {
      this.vm.hostLog(LogLevel.WARN, `proxy_http_call: unknown upstream ${JSON.stringify(args.upstream)} (BAD_ARGUMENT)`);
      return { status: Status.BAD_ARGUMENT, token: 0 };
    }
    let bytes = args.body.length;
    for (const s of args.headers) bytes += s.length;
    for (const s of args.trailers) bytes += s.length;
    if (this.pendingCalls.size >= GUEST_LIMITS.pendingHttpCalls || this.pendingCallBytes + bytes > GUEST_LIMITS.pendingHttpCallBytes) {
      this.vm.boundHit('http_calls');
      this.vm.hostLog(LogLevel.WARN, `proxy_http_call: the plugin's calls in flight are at their bound (${this.pendingCalls.size} calls, ${this.pendingCallBytes} bytes): INTERNAL_FAILURE`);
      return { status: Status.INTERNAL_FAILURE, token: 0 };
    }
    const token = this.runtime.nextToken();
    this.pendingCalls.set(token, caller);
    this.pendingCallBytes += bytes;
    const vm = this.vm;
    transport.dispatch(
      {
        token,
        plugin: this.name,
        upstream: args.upstream,
        headers,
        body: args.body,
        trailers: new HeaderMap(args.trailers),
        timeoutMs: args.timeoutMs,
      },
      (result) => {
        this.pendingCallBytes -= bytes;
        this.deliverHttpCallResponse(token, vm, result);
      },
    );
    return { status: Status.OK, token };
  }

  get pendingHttpCalls(): number {
    return this.pendingCalls.size;
  }

  private deliverHttpCallResponse(token: number, vm: WasmVm, result: HttpCallResponse | HttpCallFailure): void {
    if (!this.pendingCalls.delete(token)) return;
    // A reloaded or trapped VM never hears about calls its predecessor made.
    if (vm !== this.vm || !this.healthy) return;
    if ('failure' in result) {
      // Envoy reports a failed call as BROKEN_CONNECTION (its message is "reset"; hookwire's names the reason).
      vm.lastCallStatus = { code: Status.BROKEN_CONNECTION, message: result.message ?? result.failure };
      this.callRoot('proxy_on_http_call_response', this.id, token, 0, 0, 0);
      return;
    }
    const body = new BodyBuffer(false, result.body);
    body.endOfStream = true;
    const trailers = result.trailers ?? new HeaderMap();
    this.callResponse = { headers: result.headers, trailers, body };
    vm.lastCallStatus = { code: 0, message: '' };
    try {
      this.callRoot('proxy_on_http_call_response', this.id, token, result.headers.count, body.size, trailers.count);
    } finally {
      this.callResponse = null;
    }
  }

  // ---- queues ----

  notify(queueId: number): void {
    const vm = this.vm;
    this.runtime.defer(() => {
      if (vm === this.vm && this.healthy) this.callRoot('proxy_on_queue_ready', this.id, queueId);
    });
  }

  // ---- lifecycle ----

  /** proxy_done: the root that returned false from proxy_on_done has finished; it is deleted after this guest call. */
  done(): Status {
    if (!this.donePending) return Status.NOT_FOUND;
    this.donePending = false;
    this.runtime.defer(() => this.finishClose());
    return Status.OK;
  }

  /** Unloading and waiting for proxy_done. */
  get closing(): boolean {
    return this.donePending;
  }

  /**
   * Start unloading, as Envoy does: no new streams, then the root's
   * proxy_on_done. True: the root context is deleted (on_delete ran, or the
   * VM is poisoned). False: the root returned false and stays alive, with
   * its ticks and http call responses, until it calls proxy_done (or the VM
   * traps, or finishClose is called at a deadline); `onClosed` runs then.
   */
  beginClose(onClosed?: () => void): boolean {
    if (this.closed) return true;
    if (this.donePending) {
      if (onClosed) this.onClosed = onClosed;
      return false;
    }
    if (this.vm.poisoned === null) {
      try {
        this.donePending = this.vm.call(this, 'proxy_on_done', 1, this.id) === 0;
      } catch {
        // Trap recorded on the VM; closing goes on.
      }
    }
    if (this.donePending && this.vm.poisoned === null) {
      this.onClosed = onClosed ?? null;
      return false;
    }
    this.donePending = false;
    this.finishClose();
    return true;
  }

  /**
   * Delete the root context (proxy_on_delete when healthy), stop its timers,
   * forget its calls and queues. Ends a pending unload (proxy_done came, the
   * deadline passed, or the VM trapped). Idempotent.
   */
  finishClose(): void {
    if (this.closed) return;
    this.donePending = false;
    this.stopTicks();
    if (this.vm.poisoned === null) {
      try {
        this.vm.call(this, 'proxy_on_delete', 0, this.id);
      } catch {
        // Trap recorded on the VM; closing goes on.
      }
    }
    this.closed = true;
    this.pendingCalls.clear();
    this.runtime.queues.release(this);
    this.vm.releaseContext(this.id);
    const onClosed = this.onClosed;
    this.onClosed = null;
    onClosed?.();
  }

  /** on_done then on_delete on the root context, without waiting for proxy_done; stops timers. Idempotent. */
  close(): void {
    this.beginClose();
    this.finishClose();
  }

  // ---- ContextBinding (root context) ----

  headerMap(type: number, forWrite: boolean): HeaderMap | Status | null {
    if (type === MapType.HTTP_CALL_RESPONSE_HEADERS || type === MapType.HTTP_CALL_RESPONSE_TRAILERS) {
      if (forWrite) return Status.BAD_ARGUMENT;
      if (!this.callResponse) return null;
      return type === MapType.HTTP_CALL_RESPONSE_HEADERS ? this.callResponse.headers : this.callResponse.trailers;
    }
    // A root context has no stream maps (nor gRPC metadata): valid types, none here now.
    return type >= 0 && type <= 7 ? null : Status.BAD_ARGUMENT;
  }

  buffer(type: number): AbiBuffer | Status {
    if (type === BufferType.HTTP_CALL_RESPONSE_BODY) return this.callResponse ? this.callResponse.body : Status.NOT_FOUND;
    const b = this.configBuffers[type];
    if (b) return b;
    return type >= 0 && type <= 8 ? Status.NOT_FOUND : Status.BAD_ARGUMENT;
  }

  /** Values set with proxy_set_property on the root context, by raw key. */
  customProperty(ctx: ContextBinding, key: string): Uint8Array | undefined {
    if (ctx !== this) {
      const v = (ctx as HttpContext).overrideProperty?.(key);
      if (v) return v;
    }
    return this.custom.get(key);
  }

  property(key: string): PropertyValue | undefined {
    switch (key) {
      case 'plugin_name':
        return this.name;
      case 'plugin_root_id':
        return this.rootId;
      case 'plugin_vm_id':
        return this.vmId;
    }
    return this.custom.get(key) ?? this.runtime.staticProperty(key);
  }

  setProperty(key: string, value: Uint8Array): Status {
    if (storeProperty(this.custom, key, value)) return Status.OK;
    this.vm.boundHit('properties');
    return Status.BAD_ARGUMENT;
  }

  // A root context has no stream: Envoy answers these as no-ops (no filter callbacks to act on).
  continueStream(stream: number): Status {
    return streamTypeStatus(stream, false);
  }

  closeStream(stream: number): Status {
    return streamTypeStatus(stream, true);
  }

  sendLocalResponse(): Status {
    return Status.OK;
  }
}
