/**
 * The WASI subset proxy-wasm hosts provide (Envoy registers it under both
 * `wasi_snapshot_preview1` and `wasi_unstable`): fd_write to the logs,
 * proc_exit, clocks, random, and empty args. Everything else a module might
 * import from WASI is "unknown" and handled by the unknown-import policy.
 */
import { randomFillSync } from 'node:crypto';
import type { AbiHost } from './host.js';
import { MemoryAccessError } from './memory.js';

export const WASI_MODULES = ['wasi_snapshot_preview1', 'wasi_unstable'] as const;

const ERRNO_SUCCESS = 0;
const ERRNO_BADF = 8;
/** A pointer outside the guest's memory (proxy-wasm-cpp-host answers it so, and does not trap). */
const ERRNO_FAULT = 21;
const ERRNO_INVAL = 28;
const ERRNO_NOSYS = 52;
const FILETYPE_CHARACTER_DEVICE = 2;

type WasiFn = (...args: any[]) => number | void;

/**
 * Longest stdout/stderr line logged, in characters; the rest of a longer line
 * is dropped (and counted in the line). Also the most bytes of one fd_write
 * that are decoded at all.
 */
export const MAX_STDIO_LINE = 16 * 1024;

/** A WASI call's error: a guest range outside its memory is EFAULT; anything else goes on. */
function fault(err: unknown): number {
  if (err instanceof MemoryAccessError) return ERRNO_FAULT;
  throw err;
}

/** Wrap so an out-of-bounds pointer answers EFAULT instead of trapping the guest. */
function faultToErrno(fn: WasiFn): WasiFn {
  return (...args: any[]) => {
    try {
      return fn(...args);
    } catch (err) {
      return fault(err);
    }
  };
}

function capped(line: string): string {
  return line.length <= MAX_STDIO_LINE ? line : `${line.slice(0, MAX_STDIO_LINE)}... (${line.length - MAX_STDIO_LINE} more characters dropped)`;
}

export function createWasi(host: AbiHost): Record<string, WasiFn> {
  const m = () => host.memory;
  // Text written without a trailing newline waits here until the line completes, up to MAX_STDIO_LINE.
  const pending: Record<number, string> = { 1: '', 2: '' };

  function emit(fd: number, text: string): void {
    const all = pending[fd] + text;
    const lines = all.split('\n');
    let rest = lines.pop()!;
    for (const line of lines) host.stdio(fd, capped(line));
    // A line that outgrows the cap is logged now rather than held without bound.
    if (rest.length > MAX_STDIO_LINE) {
      host.stdio(fd, capped(rest));
      rest = '';
    }
    pending[fd] = rest;
  }

  const fns: Record<string, WasiFn> = {
    fd_write(fd: number, iovs: number, iovsLen: number, retWritten: number): number {
      if (fd !== 1 && fd !== 2) return ERRNO_BADF;
      const mem = m();
      iovs >>>= 0;
      iovsLen >>>= 0;
      mem.check(retWritten >>> 0, 4);
      mem.check(iovs, 0);
      let total = 0;
      let text = '';
      for (let i = 0; i < iovsLen; i++) {
        const ptr = mem.u32(iovs + i * 8);
        const len = mem.u32(iovs + i * 8 + 4);
        mem.check(ptr, len);
        // Decode no more than a line's cap per write: the rest is counted as written, not kept.
        const room = MAX_STDIO_LINE + 1 - text.length;
        if (room > 0) text += mem.utf8(ptr, Math.min(len, room));
        total += len;
      }
      emit(fd, text);
      mem.setU32(retWritten, total);
      return ERRNO_SUCCESS;
    },
    proc_exit(code: number): void {
      host.exit(code);
    },
    clock_time_get(id: number, _precision: bigint, ret: number): number {
      // 0 realtime, 1 monotonic, 2/3 cpu-time clocks: approximated by monotonic.
      if (id < 0 || id > 3) return ERRNO_INVAL;
      m().setU64(ret, id === 0 ? host.now() : host.monotonic());
      return ERRNO_SUCCESS;
    },
    random_get(ptr: number, len: number): number {
      randomFillSync(m().view_(ptr, len));
      return ERRNO_SUCCESS;
    },
    environ_sizes_get(retCount: number, retSize: number): number {
      const env = host.environ();
      m().setU32(retCount, env.length);
      m().setU32(retSize, env.reduce((n, e) => n + Buffer.byteLength(e) + 1, 0));
      return ERRNO_SUCCESS;
    },
    environ_get(environ: number, buf: number): number {
      let at = buf;
      host.environ().forEach((entry, i) => {
        const bytes = Buffer.from(entry + '\0', 'utf8');
        m().view_(at, bytes.length).set(bytes);
        m().setU32(environ + i * 4, at);
        at += bytes.length;
      });
      return ERRNO_SUCCESS;
    },
    args_sizes_get(retCount: number, retSize: number): number {
      m().setU32(retCount, 0);
      m().setU32(retSize, 0);
      return ERRNO_SUCCESS;
    },
    args_get(): number {
      return ERRNO_SUCCESS;
    },
    // The rest of Envoy's WASI list: no files, no preopens, no polling, as in Envoy.
    // Toolchains other than AssemblyScript (Rust, TinyGo) import some of these at start-up.
    fd_fdstat_get(fd: number, ret: number): number {
      if (fd < 0 || fd > 2) return ERRNO_BADF;
      m().view_(ret, 24).fill(0);
      m().view_(ret, 1)[0] = FILETYPE_CHARACTER_DEVICE;
      return ERRNO_SUCCESS;
    },
    fd_prestat_get: (): number => ERRNO_BADF,
    fd_prestat_dir_name: (): number => ERRNO_BADF,
    fd_read: (): number => ERRNO_NOSYS,
    fd_seek: (): number => ERRNO_NOSYS,
    fd_close: (): number => ERRNO_NOSYS,
    fd_fdstat_set_flags: (): number => ERRNO_NOSYS,
    path_open: (): number => ERRNO_NOSYS,
    poll_oneoff: (): number => ERRNO_NOSYS,
    sched_yield: (): number => ERRNO_SUCCESS,
  };
  for (const name of Object.keys(fns)) if (name !== 'proc_exit') fns[name] = faultToErrno(fns[name]!);
  return fns;
}
