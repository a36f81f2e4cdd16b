/**
 * What the ABI layer needs from the host. host/vm implements it; the import
 * functions in imports.ts only translate between guest memory and these calls.
 * Every method acts on the *effective* context (the one the guest is running
 * in, or the one it selected with proxy_set_effective_context).
 */
import type { AbiVersion, Status } from './constants.js';
import type { HeaderMap } from './header-map.js';
import type { GuestMemory } from './memory.js';

/** A body-like buffer (request/response body, http call response, configuration...). */
export interface AbiBuffer {
  /** Current bytes; callers must not keep the view past the host call. */
  bytes(): Uint8Array;
  /** Envoy's set_buffer_bytes rules; returns a status. */
  set(start: number, length: number, data: Uint8Array): Status;
  readonly endOfStream: boolean;
  readonly writable: boolean;
}

export interface HttpCallArgs {
  upstream: string;
  headers: string[];
  body: Buffer;
  trailers: string[];
  timeoutMs: number;
}

export interface AbiHost {
  readonly memory: GuestMemory;
  readonly abiVersion: AbiVersion;

  log(level: number, message: string): void;
  logLevel(): number;
  /** WASI stdout (fd 1) and stderr (fd 2) text. */
  stdio(fd: number, text: string): void;
  /** WASI proc_exit: ends the VM like a trap. Must throw. */
  exit(code: number): never;
  /** Wall clock, ns since the epoch. */
  now(): bigint;
  /** Monotonic clock, ns. */
  monotonic(): bigint;
  environ(): readonly string[];

  setTickPeriod(ms: number): Status;
  setEffectiveContext(id: number): Status;
  done(): Status;

  /** The map, or a status when this context has no such map now. */
  headerMap(type: number, forWrite: boolean): HeaderMap | Status;
  buffer(type: number): AbiBuffer | Status;
  /**
   * proxy_get_property: give the guest the value (through `memory`, at the
   * return pointers) and answer OK, or answer a status (NOT_FOUND...) and
   * leave the return slots alone. `path` is the guest's raw path bytes as a
   * byte string (latin1). Values are written straight into guest memory
   * (strings as UTF-8, integers as 8 bytes, maps as pairs), with no
   * intermediate buffer when the encoding allows.
   */
  getProperty(path: string, retPtr: number, retLen: number): Status;
  setProperty(path: string, value: Buffer): Status;

  continueStream(stream: number): Status;
  closeStream(stream: number): Status;
  sendLocalResponse(code: number, details: string, body: Buffer, headers: string[], grpcStatus: number): Status;
  /** Returns a status and, on OK, the token. */
  httpCall(args: HttpCallArgs): { status: Status; token: number };
  /** proxy_get_status: code and message of the last http/gRPC result. */
  getStatus(): { code: number; message: string };

  getSharedData(key: string): { value: Uint8Array; cas: number } | Status;
  setSharedData(key: string, value: Buffer, cas: number): Status;
  registerSharedQueue(name: string): { status: Status; id: number };
  resolveSharedQueue(vmId: string, name: string): { status: Status; id: number };
  enqueueSharedQueue(id: number, value: Buffer): Status;
  dequeueSharedQueue(id: number): Uint8Array | Status;

  defineMetric(type: number, name: string): { status: Status; id: number };
  incrementMetric(id: number, delta: bigint): Status;
  recordMetric(id: number, value: bigint): Status;
  getMetric(id: number): bigint | Status;

  callForeignFunction(name: string, args: Buffer): Uint8Array | Status;
  /** A guest call was refused by one of the host's bounds (counted per VM). */
  boundHit(bound: 'header_map' | 'buffer'): void;
  /** gRPC is not implemented by this host; these return UNIMPLEMENTED (logged once). */
  unimplemented(name: string): Status;
}
