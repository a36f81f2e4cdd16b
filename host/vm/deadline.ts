/**
 * Deadlines and memory caps of guest calls: the limits a VM runs under, and
 * the error that stops a call past its deadline (thrown from the guard's
 * `refuel` import, so it unwinds the guest like a trap).
 */

export interface GuestLimits {
  /** Deadline of stream, tick, timer, queue and http-call callbacks (and the allocator), in ms. 0: none. */
  readonly callDeadlineMs: number;
  /** Deadline of _start/_initialize, proxy_on_vm_start and proxy_on_configure, in ms. 0: none. */
  readonly startDeadlineMs: number;
  /** Largest guest memory, in MiB. 0: no cap beyond the engine's (4 GiB). */
  readonly maxMemoryMb: number;
}

export const DEFAULT_LIMITS: GuestLimits = Object.freeze({ callDeadlineMs: 100, startDeadlineMs: 2000, maxMemoryMb: 256 });

/** wasm32 pages are 64 KiB; the engine's ceiling is 65536 pages (4 GiB). */
export const WASM_PAGE = 65536;
const MAX_WASM32_PAGES = 65536;

export function maxPages(limits: GuestLimits): number {
  return limits.maxMemoryMb > 0 ? Math.min(MAX_WASM32_PAGES, Math.floor((limits.maxMemoryMb * 1024 * 1024) / WASM_PAGE)) : MAX_WASM32_PAGES;
}

/** Callbacks that run once per plugin start and may do more work (parse a configuration). */
const START_CALLBACKS = new Set(['_start', '_initialize', 'proxy_on_vm_start', 'proxy_on_configure']);

/**
 * The imports an instrumented module (instrument.ts) needs, under
 * GUARD_MODULE: `refuel` (the caller's deadline check) and the memory cap as
 * an immutable global. Shared by proxy-wasm VMs and event-hook transforms.
 */
export function guardImports(refuel: () => number, limits: GuestLimits): Record<string, unknown> {
  return {
    refuel,
    max_pages: new (WebAssembly.Global as unknown as new (d: { value: 'i32'; mutable: boolean }, v: number) => object)(
      { value: 'i32', mutable: false },
      maxPages(limits),
    ),
  };
}

export function deadlineOf(limits: GuestLimits, callback: string): number {
  return START_CALLBACKS.has(callback) ? limits.startDeadlineMs : limits.callDeadlineMs;
}

/** A guest call ran past its deadline; thrown inside the guest's call stack to stop it. */
export class DeadlineExceeded extends Error {
  constructor(
    readonly plugin: string,
    readonly callback: string,
    readonly deadlineMs: number,
    readonly elapsedMs: number,
  ) {
    super(`deadline exceeded: ${deadlineMs} ms in ${callback} (plugin ${plugin}, stopped after ${Math.round(elapsedMs)} ms)`);
    this.name = 'DeadlineExceeded';
  }
}

/**
 * Where the guard reports a guest call that has run long enough to need more
 * fuel (once per call, not per request): the watchdog keeps it to name what
 * was running if the loop stalls. Null when no watchdog runs.
 */
export const guestActivity: { sink: ((plugin: string, callback: string) => void) | null } = { sink: null };
