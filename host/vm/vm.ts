/**
 * One instance of a proxy-wasm module (a "VM" in Envoy's terms), keyed by
 * vm_id. It owns the guest memory, the contexts created in it, and the
 * effective context that host calls act on. Every call into the guest goes
 * through `call`, which turns a trap into a poisoned VM and a typed error
 * instead of an exception that could take the process down.
 */
import { LogLevel, Status } from '../abi/constants.js';
import { HeaderMap } from '../abi/header-map.js';
import type { AbiBuffer, AbiHost, HttpCallArgs } from '../abi/host.js';
import { envoyImports } from '../abi/envoy.js';
import { createImportObject } from '../abi/imports.js';
import { GuestMemory } from '../abi/memory.js';
import { UnknownImportError, VmPoisonedError, WasmModuleError, WasmTrapError } from '../errors.js';
import type { ContextBinding } from './context.js';
import { DeadlineExceeded, deadlineOf, guardImports, guestActivity, maxPages, WASM_PAGE, type GuestLimits } from './deadline.js';
import { FUEL_SLICE, GUARD_MODULE } from './instrument.js';
import { IdTable } from './id-table.js';
import { parseStdioLine } from './logging.js';
import { envoyUnknownImports, type ProxyWasmModule } from './module.js';
import { ByteString, envoyEncoding, parsePropertyPath, rememberPropertyPath, type PropertyValue } from './properties.js';
import type { GuestBound } from './limits.js';
import type { Runtime } from './runtime.js';

/** Thrown by WASI proc_exit to unwind the guest; treated as a trap. */
export class ProcExit extends Error {
  constructor(readonly exitCode: number) {
    super(`proc_exit(${exitCode})`);
  }
}

type GuestFn = (...args: number[]) => number | undefined;

/** Guest callbacks, looked up once per instance (missing ones stay undefined). */
export interface GuestExports {
  readonly malloc: GuestFn;
  readonly proxy_on_context_create?: GuestFn;
  readonly proxy_on_vm_start?: GuestFn;
  readonly proxy_on_configure?: GuestFn;
  readonly proxy_on_tick?: GuestFn;
  readonly proxy_on_queue_ready?: GuestFn;
  readonly proxy_on_foreign_function?: GuestFn;
  readonly proxy_on_http_call_response?: GuestFn;
  readonly proxy_on_request_headers?: GuestFn;
  readonly proxy_on_request_body?: GuestFn;
  readonly proxy_on_request_trailers?: GuestFn;
  readonly proxy_on_response_headers?: GuestFn;
  readonly proxy_on_response_body?: GuestFn;
  readonly proxy_on_response_trailers?: GuestFn;
  readonly proxy_on_done?: GuestFn;
  readonly proxy_on_log?: GuestFn;
  readonly proxy_on_delete?: GuestFn;
}

/** The callbacks of an HTTP stream's context: a module exporting none of them runs no code for a stream. */
const STREAM_CALLBACKS = [
  'proxy_on_context_create',
  'proxy_on_request_headers',
  'proxy_on_request_body',
  'proxy_on_request_trailers',
  'proxy_on_response_headers',
  'proxy_on_response_body',
  'proxy_on_response_trailers',
  'proxy_on_done',
  'proxy_on_log',
  'proxy_on_delete',
] as const;

export interface VmOptions {
  readonly allowUnknownImports: boolean;
  readonly environment: readonly string[];
  /**
   * The guarded module (see instrument.ts) and the limits it enforces; null
   * runs the module as compiled, with no deadline and no memory cap.
   */
  readonly guard: { readonly module: WebAssembly.Module; readonly limits: GuestLimits } | null;
}

export class WasmVm implements AbiHost {
  readonly runtime: Runtime;
  readonly module: ProxyWasmModule;
  readonly vmId: string;
  readonly abiVersion;
  readonly exports: GuestExports;
  /** The module exports a stream callback (STREAM_CALLBACKS): a stream's context runs guest code. */
  readonly runsStreams: boolean;
  readonly memory: GuestMemory;
  /** Why the VM is unusable (a trap), or null while healthy. */
  poisoned: string | null = null;

  /** Live contexts by id (an IdTable, not a Map: see id-table.ts for what a Map did to the collector). */
  private readonly contexts = new IdTable<ContextBinding>();
  private active: ContextBinding | null = null;
  private effective: ContextBinding | null = null;
  private nextContextId = 1;
  private readonly environment: readonly string[];
  private lastAbort: string | null = null;
  private readonly warned = new Set<string>();
  /** Result of the last http call, for proxy_get_status. */
  lastCallStatus = { code: 0, message: '' };
  /** The VM's limits (its plugins' may set their own deadlines), or null when unguarded. */
  readonly limits: GuestLimits | null;
  /** The top-level guest call under way (for its deadline), and when the guard first saw it run (-1: not yet). */
  private guardCallback = '';
  private guardStart = -1;
  /** Set once a call has been stopped: every later check throws it again, so the guest cannot swallow it. */
  private stopped: DeadlineExceeded | null = null;

  constructor(runtime: Runtime, module: ProxyWasmModule, vmId: string, options: VmOptions) {
    this.runtime = runtime;
    this.module = module;
    this.vmId = vmId;
    this.abiVersion = module.abiVersion;
    this.environment = options.environment;

    // Envoy-strict: link only what Envoy itself would link.
    const unknownImports = runtime.envoyStrict ? envoyUnknownImports(module) : module.unknownImports;
    if (unknownImports.length > 0 && !options.allowUnknownImports) {
      throw new UnknownImportError(module.file, unknownImports);
    }
    const imports = createImportObject(this);
    if (runtime.envoyStrict) {
      const envoy = envoyImports(module.abiVersion);
      for (const [mod, fns] of Object.entries(imports)) for (const n of Object.keys(fns)) if (!envoy.has(`${mod}.${n}`)) delete fns[n];
    }
    for (const name of unknownImports) {
      const dot = name.indexOf('.');
      const mod = name.slice(0, dot);
      const fn = name.slice(dot + 1);
      if (fn.includes(' (')) throw new UnknownImportError(module.file, [name]); // memory/global/table: cannot stub
      (imports[mod] ??= {})[fn] = () => this.unimplemented(name);
      this.hostLog(LogLevel.WARN, `import ${name} is not provided by this host; stubbed to return UNIMPLEMENTED`);
    }
    const guard = options.guard;
    this.limits = guard === null ? null : guard.limits;
    if (guard !== null) {
      (imports as Record<string, Record<string, unknown>>)[GUARD_MODULE] = guardImports(() => this.refuel(), guard.limits);
    }
    let instance: WebAssembly.Instance;
    try {
      instance = new WebAssembly.Instance(guard === null ? module.module : guard.module, imports as WebAssembly.Imports);
    } catch (err) {
      throw new WasmModuleError(module.file, `instantiation failed: ${(err as Error).message}`, { cause: err });
    }
    const ex = instance.exports as Record<string, unknown>;
    this.exports = ex as unknown as GuestExports;
    this.runsStreams = STREAM_CALLBACKS.some((name) => typeof ex[name] === 'function');
    const alloc = ex[module.allocator] as GuestFn;
    const memory = ex.memory as WebAssembly.Memory;
    if (guard !== null && memory.buffer.byteLength > maxPages(guard.limits) * WASM_PAGE) {
      throw new WasmModuleError(
        module.file,
        `the module's initial memory (${memory.buffer.byteLength / WASM_PAGE} pages) exceeds max_memory_mb (${guard.limits.maxMemoryMb} MiB)`,
      );
    }
    this.memory = new GuestMemory(memory, (n) => {
      // The host asking for guest memory outside any guest call is a top-level call of its own.
      if (this.active === null) this.enterGuard(module.allocator);
      return alloc(n) as number;
    });
    // Measuring: an own `call` that times top-level calls. Not measuring: the prototype's, untouched.
    if (runtime.wasmTiming !== null) this.call = this.timedCall;
  }

  /** Run the module's start function (_initialize or _start), if any. */
  initialize(): void {
    const start = this.module.start;
    if (!start) return;
    const fn = (this.module.start && (this.exports as unknown as Record<string, GuestFn>)[start])!;
    this.enterGuard(start);
    try {
      fn();
    } catch (err) {
      throw this.poison(start, err);
    }
  }

  allocateContextId(binding: ContextBinding | null): number {
    const id = this.nextContextId++;
    if (binding) this.contexts.set(id, binding);
    return id;
  }

  releaseContext(id: number): void {
    this.contexts.delete(id);
  }

  /**
   * Call a guest export with `ctx` as the current context. A trap poisons the
   * VM and is rethrown as WasmTrapError; a call on a poisoned VM throws
   * VmPoisonedError. A missing export returns `fallback`.
   */
  call(
    ctx: ContextBinding,
    name: keyof GuestExports,
    fallback: number,
    a = 0,
    b = 0,
    c = 0,
    d = 0,
    e = 0,
  ): number {
    if (this.poisoned !== null) throw new VmPoisonedError(this.vmId, this.poisoned);
    const fn = this.exports[name];
    if (fn === undefined) return fallback;
    const prevActive = this.active;
    const prevEffective = this.effective;
    this.active = ctx;
    this.effective = ctx;
    if (prevActive === null) {
      // An "abort:" line from an earlier call that did not trap explains nothing about this one.
      this.lastAbort = null;
      this.guardCallback = name;
      this.guardStart = -1;
    }
    try {
      const r = fn(a, b, c, d, e);
      return r === undefined ? fallback : r >>> 0;
    } catch (err) {
      throw this.poison(name, err);
    } finally {
      this.active = prevActive;
      this.effective = prevEffective;
    }
  }

  /**
   * `call`, timed: a top-level call (not one made while the guest is already
   * running) of an export the module has adds its wall time, host calls
   * included, to the plugin's timing.
   */
  private timedCall(ctx: ContextBinding, name: keyof GuestExports, fallback: number, a = 0, b = 0, c = 0, d = 0, e = 0): number {
    if (this.active !== null || this.exports[name] === undefined) return WasmVm.prototype.call.call(this, ctx, name, fallback, a, b, c, d, e);
    // performance.now(): a double, no BigInt to allocate twice per call (sub-µs resolution is enough).
    const t0 = performance.now();
    try {
      return WasmVm.prototype.call.call(this, ctx, name, fallback, a, b, c, d, e);
    } finally {
      const timing = ctx.plugin.timing;
      if (timing !== null) {
        timing.ns += (performance.now() - t0) * 1e6;
        timing.calls++;
      }
    }
  }

  private enterGuard(callback: string): void {
    this.guardCallback = callback;
    this.guardStart = -1;
  }

  /**
   * The guard's host import, called from inside the guest each time its fuel
   * runs out (every FUEL_SLICE function entries and loop iterations): a new
   * slice while the call is within its deadline, else DeadlineExceeded, thrown
   * through the guest's frames. The clock starts at the call's first refuel, not
   * at its entry, so the call path itself reads no clock; the deadline is thus
   * late by at most one slice (well under a millisecond of guest work).
   */
  private refuel(): number {
    if (this.stopped !== null) throw this.stopped;
    const now = performance.now();
    const active = this.active;
    if (this.guardStart < 0) {
      this.guardStart = now;
      guestActivity.sink?.(active === null ? this.vmId : active.plugin.name, this.guardCallback);
      return FUEL_SLICE;
    }
    const limits = active === null ? this.limits! : (active.plugin.limits ?? this.limits!);
    const deadline = deadlineOf(limits, this.guardCallback);
    const elapsed = now - this.guardStart;
    if (deadline > 0 && elapsed > deadline) {
      this.stopped = new DeadlineExceeded(active === null ? this.vmId : active.plugin.name, this.guardCallback, deadline, elapsed);
      throw this.stopped;
    }
    return FUEL_SLICE;
  }

  /** Mark the VM unusable after a trap; returns the error to throw. */
  private poison(callback: string, err: unknown): WasmTrapError {
    if (err instanceof WasmTrapError) return err; // nested call already poisoned us
    let reason = err instanceof ProcExit ? err.message : err instanceof Error ? err.message : String(err);
    if (this.lastAbort) reason = `${this.lastAbort} (${reason})`;
    if (!(err instanceof WebAssembly.RuntimeError) && !(err instanceof ProcExit) && !(err instanceof DeadlineExceeded)) {
      reason = `host error during guest call: ${reason}`;
    }
    const first = this.poisoned === null;
    this.poisoned ??= reason;
    this.lastAbort = null;
    if (first) this.runtime.vmPoisoned(this, callback, reason, err instanceof DeadlineExceeded ? err : null);
    return new WasmTrapError(callback, reason, { cause: err });
  }

  // ---- AbiHost: host calls from the guest ----

  /**
   * The effective context. During `_start`/`_initialize` there is none (Envoy
   * allows only logging and WASI there): such calls get NO_CONTEXT, which
   * answers BAD_ARGUMENT instead of failing the VM.
   */
  private ctx(): ContextBinding {
    return this.effective ?? NO_CONTEXT;
  }

  hostLog(level: LogLevel, message: string): void {
    this.runtime.emitLog({ level, message, plugin: null, vmId: this.vmId, contextId: 0, source: 'host' });
  }

  /** While set, error-level guest logs are collected here (to explain a refused configuration). */
  capturedErrors: string[] | null = null;

  private guestLog(level: number, message: string, source: 'proxy_log' | 'stdout' | 'stderr'): void {
    // The SDK's abort_proc_exit logs "abort: ..." at critical; the wasi-shim's
    // wasi_abort (what asc actually links with this asconfig) writes it to stderr.
    if (message.startsWith('abort:') && (level >= LogLevel.CRITICAL || source === 'stderr')) this.lastAbort = message;
    if (level >= LogLevel.ERROR && this.capturedErrors) this.capturedErrors.push(message);
    const ctx = this.effective;
    this.runtime.emitLog({
      level: Math.min(Math.max(level, 0), 5) as LogLevel,
      message,
      plugin: ctx ? ctx.plugin.name : null,
      vmId: this.vmId,
      contextId: ctx ? ctx.id : 0,
      source,
    });
  }

  log(level: number, message: string): void {
    this.guestLog(level, message, 'proxy_log');
  }

  logLevel(): number {
    return this.runtime.logLevel;
  }

  stdio(fd: number, text: string): void {
    const { level, message } = parseStdioLine(fd, text);
    this.guestLog(level, message, fd === 2 ? 'stderr' : 'stdout');
  }

  exit(code: number): never {
    throw new ProcExit(code);
  }

  now(): bigint {
    return this.runtime.clock.now();
  }

  monotonic(): bigint {
    return this.runtime.clock.monotonic();
  }

  environ(): readonly string[] {
    return this.environment;
  }

  setTickPeriod(ms: number): Status {
    const ctx = this.ctx();
    return ctx === NO_CONTEXT ? Status.BAD_ARGUMENT : ctx.plugin.setTickPeriod(ms);
  }

  setEffectiveContext(id: number): Status {
    const target = this.contexts.get(id);
    if (!target) return Status.BAD_ARGUMENT;
    this.effective = target;
    return Status.OK;
  }

  done(): Status {
    const ctx = this.ctx();
    return ctx === NO_CONTEXT ? Status.NOT_FOUND : ctx.plugin.done();
  }

  headerMap(type: number, forWrite: boolean): HeaderMap | Status | null {
    return this.ctx().headerMap(type, forWrite);
  }

  inAccessLog(): boolean {
    return this.ctx().inAccessLog?.() ?? false;
  }

  buffer(type: number): AbiBuffer | Status {
    return this.ctx().buffer(type);
  }

  boundHit(bound: GuestBound): void {
    this.runtime.bounds.hit(this.vmId, bound);
  }

  getProperty(raw: string, retPtr: number, retLen: number): Status {
    const parsed = parsePropertyPath(raw);
    const { key, nul } = parsed;
    const ctx = this.ctx();
    // Envoy splits only on NUL: in strict mode "request.path" is one unknown segment.
    if (ctx === NO_CONTEXT) return Status.NOT_FOUND;
    let value: PropertyValue | undefined;
    if (!nul && this.runtime.envoyStrict && key.includes('.')) value = ctx.plugin.customProperty(ctx, key);
    else value = ctx.property(key);
    if (value === undefined) return Status.NOT_FOUND;
    // Only a path that named something is worth keeping parsed (nothing is kept for junk paths).
    rememberPropertyPath(raw, parsed);
    const mem = this.memory;
    // Written straight into guest memory: strings (most attributes) as UTF-8, and
    // with Envoy's encoding integers as 8 bytes and maps as pairs.
    if (typeof value === 'string') mem.giveUtf8(retPtr, retLen, value);
    else if (value instanceof ByteString) mem.give(retPtr, retLen, value.latin1);
    else if (value instanceof Uint8Array) mem.give(retPtr, retLen, value);
    else if (this.runtime.propertyEncoder !== envoyEncoding) mem.give(retPtr, retLen, this.runtime.propertyEncoder.encode(value));
    else if (typeof value === 'number' || typeof value === 'bigint') mem.giveInt64(retPtr, retLen, value);
    else if (value instanceof HeaderMap && value.count > 0) mem.givePairs(retPtr, retLen, value);
    else mem.give(retPtr, retLen, envoyEncoding.encode(value));
    return Status.OK;
  }

  setProperty(raw: string, value: Buffer): Status {
    const { key } = parsePropertyPath(raw);
    if (key.length === 0) return Status.BAD_ARGUMENT;
    return this.ctx().setProperty(key, value);
  }

  continueStream(stream: number): Status {
    return this.ctx().continueStream(stream);
  }

  closeStream(stream: number): Status {
    return this.ctx().closeStream(stream);
  }

  sendLocalResponse(code: number, details: string, body: Buffer, headers: string[], grpcStatus: number): Status {
    return this.ctx().sendLocalResponse(code, details, body, headers, grpcStatus);
  }

  httpCall(args: HttpCallArgs): { status: Status; token: number } {
    const ctx = this.ctx();
    return ctx === NO_CONTEXT ? { status: Status.BAD_ARGUMENT, token: 0 } : ctx.plugin.httpCall(args, ctx);
  }

  getStatus(): { code: number; message: string } {
    return this.lastCallStatus;
  }

  getSharedData(key: string): { value: Uint8Array; cas: number } | Status {
    return this.runtime.sharedData.get(this.vmId, key) ?? Status.NOT_FOUND;
  }

  setSharedData(key: string, value: Buffer, cas: number): Status {
    return this.runtime.sharedData.set(this.vmId, key, value, cas);
  }

  registerSharedQueue(name: string): { status: Status; id: number } {
    const ctx = this.ctx();
    if (ctx === NO_CONTEXT) return { status: Status.BAD_ARGUMENT, id: 0 };
    const id = this.runtime.queues.register(this.vmId, name, ctx.plugin);
    // 0: this vm_id has as many queues as it may (GUEST_LIMITS.sharedQueues).
    return id === 0 ? { status: Status.INTERNAL_FAILURE, id: 0 } : { status: Status.OK, id };
  }

  resolveSharedQueue(vmId: string, name: string): { status: Status; id: number } {
    const id = this.runtime.queues.resolve(vmId, name);
    return id === undefined ? { status: Status.NOT_FOUND, id: 0 } : { status: Status.OK, id };
  }

  enqueueSharedQueue(id: number, value: Buffer): Status {
    return this.runtime.queues.enqueue(id, value);
  }

  dequeueSharedQueue(id: number): Uint8Array | Status {
    return this.runtime.queues.dequeue(id);
  }

  defineMetric(type: number, name: string): { status: Status; id: number } {
    return this.runtime.metrics.define(type, name, this.vmId);
  }

  incrementMetric(id: number, delta: bigint): Status {
    return this.runtime.metrics.increment(id, delta);
  }

  recordMetric(id: number, value: bigint): Status {
    return this.runtime.metrics.record(id, value);
  }

  getMetric(id: number): bigint | Status {
    return this.runtime.metrics.get(id);
  }

  callForeignFunction(name: string, args: Buffer): Uint8Array | Status {
    const fn = this.runtime.foreignFunctions.get(name);
    if (!fn) return Status.NOT_FOUND;
    const ctx = this.ctx();
    try {
      return fn(args, { vmId: this.vmId, plugin: ctx === NO_CONTEXT ? '' : ctx.plugin.name, contextId: ctx.id });
    } catch (err) {
      // A host-side function's bug is the host's problem, not a reason to kill the guest.
      this.hostLog(LogLevel.ERROR, `foreign function ${name} threw: ${(err as Error).message}`);
      return Status.INTERNAL_FAILURE;
    }
  }

  unimplemented(name: string): Status {
    if (!this.warned.has(name)) {
      this.warned.add(name);
      this.hostLog(LogLevel.WARN, `${name} is not implemented by this host (returned UNIMPLEMENTED)`);
    }
    return Status.UNIMPLEMENTED;
  }
}

/** The "context" of host calls made before any context exists (from _start). */
const NO_CONTEXT: ContextBinding = {
  id: 0,
  get plugin(): never {
    throw new Error('no plugin context during module start');
  },
  headerMap: () => Status.BAD_ARGUMENT,
  buffer: () => Status.BAD_ARGUMENT,
  property: () => undefined,
  setProperty: () => Status.BAD_ARGUMENT,
  continueStream: () => Status.BAD_ARGUMENT,
  closeStream: () => Status.BAD_ARGUMENT,
  sendLocalResponse: () => Status.BAD_ARGUMENT,
};
