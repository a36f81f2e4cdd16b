/**
 * Event-hook transforms (handler `wasm`, Kong's `lambda` on Wasm): an
 * AssemblyScript module exporting `transform(event: string): string`, loaded
 * through @assemblyscript/loader (strings in and out through the module's
 * exported runtime: compile with `--exportRuntime`).
 *
 * The contract (docs/event-hooks.md "Handler wasm"): the argument is the JSON
 * the `webhook` handler would POST; the result is JSON, either the request to
 * send, `{"method"?, "headers"?, "body"?, "url"?}` (url only when the hook
 * sets `allow_url`), or `{"drop": true, "reason"?}`.
 *
 * Sandboxed as plugins are: the only imports a transform may have are the
 * AssemblyScript runtime's (`env.abort`, `env.trace`, `env.seed`), checked at
 * create; the module runs instrumented by the plugins' guard (vm/instrument.ts)
 * with a deadline per call (`timeout_ms`) and a memory cap (`max_memory_mb`).
 * A call that traps or passes its deadline throws TransformError and its
 * instance is dropped (its state may be torn); the next event gets a fresh one.
 * Otherwise one instance per hook serves every event.
 */
import { instantiateSync } from '@assemblyscript/loader';
import { readFile } from 'node:fs/promises';
import { isAbsolute, relative, resolve } from 'node:path';
import { TransformError } from '../errors.js';
import { DeadlineExceeded, guardImports, maxPages, WASM_PAGE, type GuestLimits } from '../vm/deadline.js';
import { FUEL_SLICE, GUARD_MODULE, InstrumentError } from '../vm/instrument.js';
import { instrumentOffThread } from '../vm/instrument-thread.js';
import { webhookJson } from './handlers.js';
import { headerProblem, urlProblem } from './schemas.js';
import type { EventHook, WasmConfig } from './types.js';

/** The function a transform exports. */
export const TRANSFORM_EXPORT = 'transform';
/** The imports the AssemblyScript runtime may need; anything else is refused. */
export const TRANSFORM_IMPORTS: readonly string[] = ['env.abort', 'env.trace', 'env.seed'];
/** Exports the loader needs to pass strings (`--exportRuntime`). */
const RUNTIME_EXPORTS = ['memory', '__new', '__pin', '__unpin'];
/** Longest transform result kept (a body larger than this is refused as invalid output). */
const MAX_OUTPUT_CHARS = 8 * 1024 * 1024;

/** Why a transform module cannot be used (the service reports it under /config/module). */
export class TransformModuleError extends Error {}

/** What a transform decided for one event. */
export type TransformResult =
  | { drop: true; reason: string | null }
  | { drop: false; method: string; url: string | null; headers: Record<string, string>; body: Buffer | null };

/**
 * The module bytes a config names: `{base64}` decoded, or `{path}` read from
 * under `modulesDir` (never outside it). Throws TransformModuleError.
 */
export async function transformBytes(module: WasmConfig['module'], modulesDir: string | null): Promise<Uint8Array> {
  if ('base64' in module) {
    const bytes = Buffer.from(module.base64, 'base64');
    if (bytes.length === 0) throw new TransformModuleError('base64 decodes to no bytes');
    return bytes;
  }
  if (modulesDir === null) throw new TransformModuleError('a module path needs wasm.modules_dir to be set (or give the module as base64)');
  const file = resolve(modulesDir, module.path);
  const rel = relative(modulesDir, file);
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) throw new TransformModuleError(`path ${JSON.stringify(module.path)} is not under wasm.modules_dir`);
  try {
    return await readFile(file);
  } catch (err) {
    throw new TransformModuleError(`cannot read ${JSON.stringify(module.path)} under wasm.modules_dir: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

type BinaryenLike = {
  readBinary(data: Uint8Array, features?: number): BinaryenModule;
  Features: { All: number };
  ExternalFunction: number;
  i32: number;
  getExportInfo(e: number): { kind: number; value: string };
  getFunctionInfo(f: number): { params: number; results: number };
  expandType(t: number): number[];
};
type BinaryenModule = { getExport(n: string): number; getFunction(n: string): number; dispose(): void };

/** `transform`'s signature, as binaryen reads it: null when it is (i32) -> i32 (a string in, a string out). */
async function signatureProblem(bytes: Uint8Array): Promise<string | null> {
  const b = (await import('binaryen')).default as unknown as BinaryenLike;
  const mod = b.readBinary(bytes, b.Features.All);
  try {
    const info = b.getExportInfo(mod.getExport(TRANSFORM_EXPORT));
    const fn = b.getFunctionInfo(mod.getFunction(info.value));
    const params = b.expandType(fn.params);
    const results = b.expandType(fn.results);
    if (params.length !== 1 || params[0] !== b.i32 || results.length !== 1 || results[0] !== b.i32) {
      return `export "${TRANSFORM_EXPORT}" must be transform(event: string): string (found ${params.length} parameter(s), ${results.length} result(s))`;
    }
    return null;
  } finally {
    mod.dispose();
  }
}

/**
 * Compiles and checks a transform module, and returns it instrumented by the
 * guard. Throws TransformModuleError saying why it cannot be used.
 */
export async function compileTransform(bytes: Uint8Array): Promise<WebAssembly.Module> {
  let plain: WebAssembly.Module;
  try {
    plain = await WebAssembly.compile(bytes);
  } catch (err) {
    throw new TransformModuleError(`does not compile: ${(err as Error).message}`);
  }
  const refused = WebAssembly.Module.imports(plain)
    .map((i) => `${i.module}.${i.name}`)
    .filter((n) => !TRANSFORM_IMPORTS.includes(n));
  if (refused.length > 0) {
    throw new TransformModuleError(
      `imports ${refused.join(', ')}: a transform may import only the AssemblyScript runtime's ${TRANSFORM_IMPORTS.join(', ')}`,
    );
  }
  const exports = new Map(WebAssembly.Module.exports(plain).map((e) => [e.name, e.kind]));
  if (exports.get(TRANSFORM_EXPORT) !== 'function') {
    throw new TransformModuleError(`does not export the function "${TRANSFORM_EXPORT}" (export function transform(event: string): string)`);
  }
  const missing = RUNTIME_EXPORTS.filter((n) => !exports.has(n));
  if (missing.length > 0) throw new TransformModuleError(`does not export the runtime (${missing.join(', ')}): compile it with --exportRuntime`);
  const bad = await signatureProblem(bytes);
  if (bad !== null) throw new TransformModuleError(bad);
  try {
    return await WebAssembly.compile(await instrumentOffThread(bytes));
  } catch (err) {
    if (err instanceof InstrumentError) throw new TransformModuleError(`cannot be guarded: ${err.message}`);
    throw new TransformModuleError(`the guarded module does not compile: ${(err as Error).message}`);
  }
}

/** The loader's view of an instance: the transform, and strings marshalled through the module's runtime exports. */
interface Loaded {
  transform(ptr: number): number;
  __newString(s: string): number;
  __getString(ptr: number): string;
  memory: WebAssembly.Memory;
}

/** An abort's message or file name, or a placeholder when it cannot be read. */
function safeString(inst: Loaded, ptr: number): string {
  try {
    return inst.__getString(ptr);
  } catch {
    return `<string at ${ptr}>`;
  }
}

/** The transform's answer as a string; a pointer that is not an AssemblyScript string is invalid output. */
function getString(inst: Loaded, ptr: number): string {
  try {
    return inst.__getString(ptr >>> 0);
  } catch (err) {
    throw new TransformError('invalid_output', `transform returned no string (pointer ${ptr >>> 0}: ${(err as Error).message})`);
  }
}

/**
 * One hook's transform: one instance, reused across events, replaced after a
 * call that trapped or ran past its deadline. Calls are synchronous (a guest
 * call cannot yield), so each one holds the event loop for at most its deadline.
 */
export class TransformRunner {
  private instance: Loaded | null = null;
  /** The instance being set up or called (abort reads its message from it, even during instantiation). */
  private current: Loaded | null = null;
  private readonly limits: GuestLimits;
  private callStart = 0;
  private stopped: DeadlineExceeded | null = null;
  private lastAbort: string | null = null;

  constructor(
    private readonly module: WebAssembly.Module,
    /** Names the hook in errors. */
    private readonly name: string,
    private readonly deadlineMs: number,
    maxMemoryMb: number,
    private readonly allowUrl: boolean,
  ) {
    this.limits = { callDeadlineMs: deadlineMs, startDeadlineMs: deadlineMs, maxMemoryMb };
  }

  /** The guard's `refuel`: a new slice while the call is within its deadline, else DeadlineExceeded through the guest's frames. */
  private refuel(): number {
    if (this.stopped !== null) throw this.stopped;
    const elapsed = performance.now() - this.callStart;
    if (elapsed > this.deadlineMs) {
      this.stopped = new DeadlineExceeded(this.name, TRANSFORM_EXPORT, this.deadlineMs, elapsed);
      throw this.stopped;
    }
    return FUEL_SLICE;
  }

  private instantiate(): Loaded {
    const imports = {
      env: {
        abort: (msg: number, file: number, line: number, col: number) => {
          const str = (p: number) => (p === 0 || this.current === null ? '' : safeString(this.current, p));
          this.lastAbort = `abort: ${str(msg)} at ${str(file)}:${line}:${col}`;
          throw new WebAssembly.RuntimeError(this.lastAbort);
        },
        trace: () => {},
        seed: () => Date.now(),
      },
      [GUARD_MODULE]: guardImports(() => this.refuel(), this.limits),
    };
    const { exports } = instantiateSync<Record<string, unknown>>(this.module, imports as unknown as Parameters<typeof instantiateSync>[1]);
    const loaded = exports as unknown as Loaded;
    this.current = loaded;
    if (loaded.memory.buffer.byteLength > maxPages(this.limits) * WASM_PAGE) {
      throw new TransformError('trap', `the module's initial memory (${loaded.memory.buffer.byteLength / WASM_PAGE} pages) exceeds max_memory_mb`);
    }
    return loaded;
  }

  /** Runs the transform on one event (its webhook JSON). Throws TransformError. */
  run(eventJson: string): TransformResult {
    this.callStart = performance.now();
    this.stopped = null;
    this.lastAbort = null;
    let out: string;
    try {
      this.instance ??= this.instantiate();
      const inst = this.instance;
      out = getString(inst, inst.transform(inst.__newString(eventJson)));
    } catch (err) {
      this.instance = null; // torn state: the next event gets a fresh instance
      if (err instanceof TransformError) throw err;
      if (err instanceof DeadlineExceeded || this.stopped !== null) {
        const d = (err instanceof DeadlineExceeded ? err : this.stopped)!;
        throw new TransformError('deadline', `transform stopped by its deadline: ${d.deadlineMs} ms (ran ${Math.round(d.elapsedMs)} ms)`, { cause: err });
      }
      const why = this.lastAbort ?? (err as Error).message;
      throw new TransformError('trap', `transform trapped: ${why}`, { cause: err });
    }
    return this.parse(out);
  }

  private parse(out: string): TransformResult {
    const bad = (why: string): never => {
      throw new TransformError('invalid_output', `transform returned ${why}`);
    };
    if (out.length > MAX_OUTPUT_CHARS) bad(`${out.length} characters (at most ${MAX_OUTPUT_CHARS})`);
    let v: unknown;
    try {
      v = JSON.parse(out);
    } catch {
      bad(`no JSON: ${JSON.stringify(out.length > 80 ? `${out.slice(0, 77)}...` : out)}`);
    }
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return bad('JSON that is not an object');
    const r = v as Record<string, unknown>;
    if (r.drop !== undefined && typeof r.drop !== 'boolean') bad('"drop" that is not a boolean');
    if (r.drop === true) {
      if (r.reason !== undefined && r.reason !== null && typeof r.reason !== 'string') bad('"reason" that is not a string');
      return { drop: true, reason: typeof r.reason === 'string' ? r.reason : null };
    }
    for (const k of Object.keys(r)) if (!['drop', 'method', 'headers', 'body', 'url'].includes(k)) bad(`an unknown field "${k}"`);
    const method = r.method ?? 'POST';
    if (typeof method !== 'string' || !/^[A-Z]+$/.test(method)) bad('a "method" that is not an upper-case HTTP method');
    const headers = Object.create(null) as Record<string, string>;
    if (r.headers !== undefined && r.headers !== null) {
      if (typeof r.headers !== 'object' || Array.isArray(r.headers)) bad('"headers" that is not an object');
      for (const [k, val] of Object.entries(r.headers as Record<string, unknown>)) {
        if (typeof val !== 'string') bad(`header ${JSON.stringify(k)} that is not a string`);
        const problem = headerProblem(k, val as string);
        if (problem !== null) bad(`header ${JSON.stringify(k)} that ${problem}`);
        headers[k] = val as string;
      }
    }
    if (r.body !== undefined && r.body !== null && typeof r.body !== 'string') bad('a "body" that is not a string');
    let url: string | null = null;
    if (r.url !== undefined && r.url !== null) {
      if (!this.allowUrl) bad('a "url", which this hook does not allow (set config.allow_url)');
      if (typeof r.url !== 'string') bad('a "url" that is not a string');
      const problem = urlProblem(r.url as string);
      if (problem !== null) bad(`a "url" that ${problem}`);
      url = r.url as string;
    }
    return { drop: false, method: method as string, url, headers, body: typeof r.body === 'string' ? Buffer.from(r.body, 'utf8') : null };
  }
}

/** Compiled runners by hook object (a config change makes a new hook object, hence a new runner). */
const runners = new WeakMap<EventHook, Promise<TransformRunner>>();

/** The runner of a `wasm` hook: its module loaded, checked and compiled once per hook object. */
export function transformRunner(hook: EventHook, modulesDir: string | null): Promise<TransformRunner> {
  let p = runners.get(hook);
  if (p === undefined) {
    const c = hook.config as WasmConfig;
    p = transformBytes(c.module, modulesDir)
      .then(compileTransform)
      .then((m) => new TransformRunner(m, `event hook ${hook.id}`, c.timeout_ms, c.max_memory_mb, c.allow_url));
    // A failure is not kept: the module (a file) may be fixed before the next attempt.
    p.catch(() => runners.delete(hook));
    runners.set(hook, p);
  }
  return p;
}

/** Options of loadTransform (the `wasm` hook's config fields of the same meaning). */
export interface LoadTransformOptions {
  /** Deadline of one call, in ms (default 100, as a hook's `timeout_ms`). */
  timeoutMs?: number;
  /** Memory cap, in MiB (default 16, as `max_memory_mb`). */
  maxMemoryMb?: number;
  /** Whether the result may carry a `url` (as `allow_url`; default false). */
  allowUrl?: boolean;
}

/** A transform loaded for a unit test: the same checks, guard and result parsing as a `wasm` hook's. */
export interface LoadedTransform {
  /** Runs the transform on what a hook of `source`/`event` would give it for `data`. Throws TransformError. */
  run(source: string, event: string | null, data: Record<string, unknown>): TransformResult;
  /** Runs the transform on an event's JSON text as given. Throws TransformError. */
  runJson(json: string): TransformResult;
}

/**
 * Loads a transform as a `wasm` hook would (a .wasm file path or its bytes),
 * for a transform author's unit tests: no service, no network. Throws
 * TransformModuleError when a hook would refuse the module at create.
 */
export async function loadTransform(module: string | Uint8Array, options: LoadTransformOptions = {}): Promise<LoadedTransform> {
  let bytes: Uint8Array;
  if (typeof module === 'string') {
    try {
      bytes = await readFile(module);
    } catch (err) {
      throw new TransformModuleError(`cannot read ${module}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  } else bytes = module;
  const runner = new TransformRunner(
    await compileTransform(bytes),
    typeof module === 'string' ? module : 'transform',
    options.timeoutMs ?? 100,
    options.maxMemoryMb ?? 16,
    options.allowUrl ?? false,
  );
  return {
    run: (source, event, data) => runner.run(webhookJson(source, event, JSON.stringify(data))),
    runJson: (json) => runner.run(json),
  };
}
