/**
 * The import object a proxy-wasm module is linked against: every `env.proxy_*`
 * function of ABI 0.2.1 (and the 0.2.0 / 0.1.0 differences), plus the WASI
 * subset under both `wasi_snapshot_preview1` and `wasi_unstable`.
 *
 * Each function decodes guest memory, calls the AbiHost, and encodes results
 * back; statuses follow Envoy. A guest range outside its memory yields
 * INVALID_MEMORY_ACCESS instead of a host exception.
 */
import { AbiVersion, Status } from './constants.js';
import type { HeaderMap } from './header-map.js';
import type { AbiHost } from './host.js';
import { MemoryAccessError } from './memory.js';
import { createWasi, WASI_MODULES } from './wasi.js';

type HostFn = (...args: any[]) => number | bigint | void;

/**
 * Wrap so an out-of-bounds guest pointer becomes a status, not a trap. The
 * wrapper takes exactly the function's own parameters (no rest array, and no
 * surplus arguments for the engine to adapt on every host call).
 */
/** A host call's error: a guest range outside its memory is a status; anything else goes on (a host bug traps). */
function memoryFault(err: unknown): Status {
  if (err instanceof MemoryAccessError) return Status.INVALID_MEMORY_ACCESS;
  throw err;
}

/**
 * Calls a filter makes on every request catch the fault themselves (one frame
 * less than a wrapper on the hottest path); `guarded` skips them.
 */
const SELF_GUARDED = new Set(['proxy_get_property', 'proxy_get_header_map_pairs', 'proxy_get_current_time_nanoseconds']);

function guarded(fn: HostFn): HostFn {
  const onError = memoryFault;
  switch (fn.length) {
    case 0:
      return () => {
        try {
          return fn();
        } catch (err) {
          return onError(err);
        }
      };
    case 1:
      return (a: any) => {
        try {
          return fn(a);
        } catch (err) {
          return onError(err);
        }
      };
    case 2:
      return (a: any, b: any) => {
        try {
          return fn(a, b);
        } catch (err) {
          return onError(err);
        }
      };
    case 3:
      return (a: any, b: any, c: any) => {
        try {
          return fn(a, b, c);
        } catch (err) {
          return onError(err);
        }
      };
    case 4:
      return (a: any, b: any, c: any, d: any) => {
        try {
          return fn(a, b, c, d);
        } catch (err) {
          return onError(err);
        }
      };
    default:
      // The ABI's longest call has 12 parameters.
      return (a?: any, b?: any, c?: any, d?: any, e?: any, f?: any, g?: any, h?: any, i?: any, j?: any, k?: any, l?: any) => {
        try {
          return fn(a, b, c, d, e, f, g, h, i, j, k, l);
        } catch (err) {
          return onError(err);
        }
      };
  }
}

function isStatus(v: unknown): v is Status {
  return typeof v === 'number';
}

/** Bounds on what guest edits may make a header map or buffer hold (listed with the others in host/vm/limits.ts). */
export const HEADER_MAP_MAX_BYTES = 1024 * 1024;
export const HEADER_MAP_MAX_ENTRIES = 1024;
export const BUFFER_MAX_BYTES = 16 * 1024 * 1024;

/** Whether adding `name: value` keeps `map` within its bounds. */
function fits(map: HeaderMap, name: string, value: string): boolean {
  if (name.length + value.length > HEADER_MAP_MAX_BYTES) return false;
  if (map.flat.length >= HEADER_MAP_MAX_ENTRIES * 2) return false;
  return map.byteSize + name.length + value.length <= HEADER_MAP_MAX_BYTES;
}

/**
 * A header edit a stream could not carry: `:status` must stay a three-digit
 * code (100..999), or the response could not be sent and every reader of
 * `response.code` (another plugin, another VM) would see garbage.
 */
function badPseudoValue(name: string, value: string): boolean {
  return name === ':status' && !/^[1-9][0-9]{2}$/.test(value);
}

/** env.* functions for the given ABI version, keyed by import name. */
export function createEnvImports(host: AbiHost): Record<string, HostFn> {
  const m = () => host.memory;
  const v = host.abiVersion;

  const env: Record<string, HostFn> = {
    proxy_log(level: number, ptr: number, len: number) {
      // Envoy (proxy-wasm-cpp-host): a level above critical is BAD_ARGUMENT, nothing is logged.
      if (level >>> 0 > 5) return Status.BAD_ARGUMENT;
      host.log(level, m().utf8(ptr, len));
      return Status.OK;
    },
    proxy_get_current_time_nanoseconds(ret: number) {
      try {
        m().setU64(ret, host.now());
        return Status.OK;
      } catch (err) {
        return memoryFault(err);
      }
    },
    proxy_set_tick_period_milliseconds(ms: number) {
      return host.setTickPeriod(ms >>> 0);
    },
    proxy_set_effective_context(id: number) {
      return host.setEffectiveContext(id >>> 0);
    },
    proxy_done() {
      return host.done();
    },

    proxy_get_buffer_bytes(type: number, start: number, max: number, retPtr: number, retLen: number) {
      const buf = host.buffer(type);
      if (isStatus(buf)) return buf;
      const bytes = buf.bytes();
      start >>>= 0;
      max >>>= 0;
      if (start > bytes.byteLength) return Status.BAD_ARGUMENT;
      const end = Math.min(bytes.byteLength, start + max);
      m().give(retPtr, retLen, bytes.subarray(start, end));
      return Status.OK;
    },
    proxy_get_buffer_status(type: number, retLen: number, retFlags: number) {
      const buf = host.buffer(type);
      if (isStatus(buf)) return buf;
      m().setU32(retLen, buf.bytes().byteLength);
      m().setU32(retFlags, buf.endOfStream ? 1 : 0);
      return Status.OK;
    },
    proxy_set_buffer_bytes(type: number, start: number, length: number, ptr: number, len: number) {
      const buf = host.buffer(type);
      if (isStatus(buf)) return buf;
      if (!buf.writable) return Status.BAD_ARGUMENT;
      if ((len >>> 0) > BUFFER_MAX_BYTES || buf.bytes().byteLength + (len >>> 0) > BUFFER_MAX_BYTES) {
        m().check(ptr >>> 0, len >>> 0);
        host.boundHit('buffer');
        return Status.BAD_ARGUMENT;
      }
      return buf.set(start >>> 0, length >>> 0, m().copy(ptr, len));
    },

    proxy_get_header_map_size(type: number, ret: number) {
      const map = host.headerMap(type, false);
      if (isStatus(map)) return map;
      m().setU32(ret, map.byteSize);
      return Status.OK;
    },
    proxy_get_header_map_pairs(type: number, retPtr: number, retLen: number) {
      try {
        const map = host.headerMap(type, false);
        if (isStatus(map)) return map;
        m().givePairs(retPtr, retLen, map);
        return Status.OK;
      } catch (err) {
        return memoryFault(err);
      }
    },
    proxy_set_header_map_pairs(type: number, ptr: number, len: number) {
      const map = host.headerMap(type, true);
      if (isStatus(map)) return map;
      const flat = m().readPairs(ptr, len);
      if (flat === null) return Status.BAD_ARGUMENT;
      let bytes = 0;
      for (let i = 0; i < flat.length; i += 2) {
        flat[i] = flat[i]!.toLowerCase();
        if (badPseudoValue(flat[i]!, flat[i + 1]!)) return Status.BAD_ARGUMENT;
        bytes += flat[i]!.length + flat[i + 1]!.length;
      }
      if (bytes > HEADER_MAP_MAX_BYTES || flat.length > HEADER_MAP_MAX_ENTRIES * 2) {
        host.boundHit('header_map');
        return Status.BAD_ARGUMENT;
      }
      map.setAll(flat);
      return Status.OK;
    },
    proxy_get_header_map_value(type: number, kPtr: number, kLen: number, retPtr: number, retLen: number) {
      const map = host.headerMap(type, false);
      if (isStatus(map)) return map;
      const value = map.get(m().name(kPtr, kLen).toLowerCase());
      if (value === undefined) {
        // 0.1.0 answered a missing header with an empty value.
        if (v === AbiVersion.V0_1_0) {
          m().give(retPtr, retLen, '');
          return Status.OK;
        }
        return Status.NOT_FOUND;
      }
      m().give(retPtr, retLen, value);
      return Status.OK;
    },
    proxy_add_header_map_value(type: number, kPtr: number, kLen: number, vPtr: number, vLen: number) {
      const map = host.headerMap(type, true);
      if (isStatus(map)) return map;
      const name = m().latin1(kPtr, kLen).toLowerCase();
      const value = m().latin1(vPtr, vLen);
      if (badPseudoValue(name, value)) return Status.BAD_ARGUMENT;
      if (!fits(map, name, value)) {
        host.boundHit('header_map');
        return Status.BAD_ARGUMENT;
      }
      map.add(name, value);
      return Status.OK;
    },
    proxy_replace_header_map_value(type: number, kPtr: number, kLen: number, vPtr: number, vLen: number) {
      const map = host.headerMap(type, true);
      if (isStatus(map)) return map;
      const name = m().latin1(kPtr, kLen).toLowerCase();
      const value = m().latin1(vPtr, vLen);
      if (badPseudoValue(name, value)) return Status.BAD_ARGUMENT;
      // A replacement may shrink the map: only a value that grows it is checked.
      const old = map.get(name);
      if ((old === undefined || value.length > old.length) && !fits(map, name, value)) {
        host.boundHit('header_map');
        return Status.BAD_ARGUMENT;
      }
      map.replace(name, value);
      return Status.OK;
    },
    proxy_remove_header_map_value(type: number, kPtr: number, kLen: number) {
      const map = host.headerMap(type, true);
      if (isStatus(map)) return map;
      map.remove(m().latin1(kPtr, kLen).toLowerCase());
      return Status.OK;
    },

    proxy_get_property(pPtr: number, pLen: number, retPtr: number, retLen: number) {
      try {
        return host.getProperty(m().name(pPtr, pLen), retPtr, retLen);
      } catch (err) {
        return memoryFault(err);
      }
    },
    proxy_set_property(pPtr: number, pLen: number, vPtr: number, vLen: number) {
      return host.setProperty(m().latin1(pPtr, pLen), m().copy(vPtr, vLen));
    },

    proxy_send_local_response(
      code: number,
      dPtr: number,
      dLen: number,
      bPtr: number,
      bLen: number,
      hPtr: number,
      hLen: number,
      grpc: number,
    ) {
      const headers = m().readPairs(hPtr, hLen);
      if (headers === null) return Status.BAD_ARGUMENT;
      return host.sendLocalResponse(code >>> 0, m().utf8(dPtr, dLen), m().copy(bPtr, bLen), headers, grpc | 0);
    },
    proxy_http_call(
      uPtr: number,
      uLen: number,
      hPtr: number,
      hLen: number,
      bPtr: number,
      bLen: number,
      tPtr: number,
      tLen: number,
      timeoutMs: number,
      retToken: number,
    ) {
      m().check(retToken >>> 0, 4);
      const headers = m().readPairs(hPtr, hLen);
      const trailers = m().readPairs(tPtr, tLen);
      if (headers === null || trailers === null) return Status.BAD_ARGUMENT;
      const res = host.httpCall({
        upstream: m().utf8(uPtr, uLen),
        headers,
        body: m().copy(bPtr, bLen),
        trailers,
        timeoutMs: timeoutMs >>> 0,
      });
      if (res.status === Status.OK) m().setU32(retToken, res.token);
      return res.status;
    },
    proxy_get_status(retCode: number, retPtr: number, retLen: number) {
      const s = host.getStatus();
      m().setU32(retCode, s.code);
      m().give(retPtr, retLen, Buffer.from(s.message, 'utf8'));
      return Status.OK;
    },

    proxy_get_shared_data(kPtr: number, kLen: number, retPtr: number, retLen: number, retCas: number) {
      const r = host.getSharedData(m().utf8(kPtr, kLen));
      if (isStatus(r)) return r;
      m().check(retCas >>> 0, 4);
      m().give(retPtr, retLen, r.value);
      m().setU32(retCas, r.cas);
      return Status.OK;
    },
    proxy_set_shared_data(kPtr: number, kLen: number, vPtr: number, vLen: number, cas: number) {
      return host.setSharedData(m().utf8(kPtr, kLen), m().copy(vPtr, vLen), cas >>> 0);
    },
    proxy_register_shared_queue(nPtr: number, nLen: number, retId: number) {
      m().check(retId >>> 0, 4);
      const r = host.registerSharedQueue(m().utf8(nPtr, nLen));
      if (r.status === Status.OK) m().setU32(retId, r.id);
      return r.status;
    },
    proxy_resolve_shared_queue(vPtr: number, vLen: number, nPtr: number, nLen: number, retId: number) {
      m().check(retId >>> 0, 4);
      const r = host.resolveSharedQueue(m().utf8(vPtr, vLen), m().utf8(nPtr, nLen));
      if (r.status === Status.OK) m().setU32(retId, r.id);
      return r.status;
    },
    proxy_enqueue_shared_queue(id: number, vPtr: number, vLen: number) {
      return host.enqueueSharedQueue(id >>> 0, m().copy(vPtr, vLen));
    },
    proxy_dequeue_shared_queue(id: number, retPtr: number, retLen: number) {
      m().check(retPtr >>> 0, 4);
      m().check(retLen >>> 0, 4);
      const r = host.dequeueSharedQueue(id >>> 0);
      if (isStatus(r)) return r;
      m().give(retPtr, retLen, r);
      return Status.OK;
    },

    proxy_define_metric(type: number, nPtr: number, nLen: number, retId: number) {
      m().check(retId >>> 0, 4);
      const r = host.defineMetric(type, m().utf8(nPtr, nLen));
      if (r.status === Status.OK) m().setU32(retId, r.id);
      return r.status;
    },
    proxy_increment_metric(id: number, delta: bigint) {
      return host.incrementMetric(id >>> 0, BigInt(delta));
    },
    proxy_record_metric(id: number, value: bigint) {
      return host.recordMetric(id >>> 0, BigInt.asUintN(64, BigInt(value)));
    },
    proxy_get_metric(id: number, ret: number) {
      m().check(ret >>> 0, 8);
      const r = host.getMetric(id >>> 0);
      if (isStatus(r)) return r;
      m().setU64(ret, r);
      return Status.OK;
    },

    proxy_call_foreign_function(nPtr: number, nLen: number, aPtr: number, aLen: number, retPtr: number, retLen: number) {
      m().check(retPtr >>> 0, 4);
      m().check(retLen >>> 0, 4);
      const r = host.callForeignFunction(m().utf8(nPtr, nLen), m().copy(aPtr, aLen));
      if (isStatus(r)) return r;
      m().give(retPtr, retLen, r);
      return Status.OK;
    },

    proxy_grpc_call: () => host.unimplemented('proxy_grpc_call'),
    proxy_grpc_stream: () => host.unimplemented('proxy_grpc_stream'),
    proxy_grpc_send: () => host.unimplemented('proxy_grpc_send'),
    proxy_grpc_cancel: () => host.unimplemented('proxy_grpc_cancel'),
    proxy_grpc_close: () => host.unimplemented('proxy_grpc_close'),
  };

  if (v === AbiVersion.V0_1_0) {
    // 0.1.0: configuration by call, per-direction continue, route cache.
    env.proxy_get_configuration = (retPtr: number, retLen: number) => {
      // The plugin configuration during on_configure, the VM's during on_vm_start.
      let buf = host.buffer(7);
      if (isStatus(buf)) buf = host.buffer(6);
      if (isStatus(buf)) return buf;
      m().give(retPtr, retLen, buf.bytes());
      return Status.OK;
    };
    env.proxy_continue_request = () => host.continueStream(0);
    env.proxy_continue_response = () => host.continueStream(1);
    // Route matching in hookwire happens before the filter chain runs.
    env.proxy_clear_route_cache = () => Status.OK;
  } else {
    env.proxy_continue_stream = (stream: number) => host.continueStream(stream);
    env.proxy_close_stream = (stream: number) => host.closeStream(stream);
    if (v === AbiVersion.V0_2_1) {
      env.proxy_get_log_level = (ret: number) => {
        m().setU32(ret, host.logLevel());
        return Status.OK;
      };
    }
  }

  for (const name of Object.keys(env)) if (!SELF_GUARDED.has(name)) env[name] = guarded(env[name]!);
  return env;
}

/** The full import object for one VM: env plus WASI under both module names. */
export function createImportObject(host: AbiHost): Record<string, Record<string, HostFn>> {
  const wasi = createWasi(host);
  const object: Record<string, Record<string, HostFn>> = { env: createEnvImports(host) };
  for (const mod of WASI_MODULES) object[mod] = wasi;
  return object;
}

const providedCache = new Map<AbiVersion, ReadonlySet<string>>();

/** Names ("module.name") of every function this host links for an ABI version. */
export function providedImports(abiVersion: AbiVersion): ReadonlySet<string> {
  let names = providedCache.get(abiVersion);
  if (!names) {
    // Building the object touches only abiVersion; the functions are never called here.
    const object = createImportObject({ abiVersion } as AbiHost);
    const set = new Set<string>();
    for (const [mod, fns] of Object.entries(object)) for (const n of Object.keys(fns)) set.add(`${mod}.${n}`);
    providedCache.set(abiVersion, (names = set));
  }
  return names;
}
