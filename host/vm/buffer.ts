/**
 * A body-like buffer with Envoy's set_buffer_bytes rules:
 * start 0 drains `length` bytes and prepends the new data (so (0,0) prepends
 * and (0, size) replaces everything); start >= size appends; anything else is
 * BAD_ARGUMENT.
 */
import { Status } from '../abi/constants.js';
import type { AbiBuffer } from '../abi/host.js';

const EMPTY = Buffer.alloc(0);

function view(chunk: Uint8Array): Buffer {
  return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}

export class BodyBuffer implements AbiBuffer {
  private data: Buffer = EMPTY;
  /**
   * Chunks appended since the last read. A body arriving in many chunks is
   * joined once, when the guest (or the host) reads it, not on every chunk.
   */
  private pending: Buffer[] | null = null;
  private pendingBytes = 0;
  endOfStream = false;
  writable: boolean;

  constructor(writable = true, initial?: Uint8Array) {
    this.writable = writable;
    if (initial) this.data = view(initial);
  }

  bytes(): Buffer {
    if (this.pending !== null) {
      this.data = Buffer.concat([this.data, ...this.pending], this.data.length + this.pendingBytes);
      this.pending = null;
      this.pendingBytes = 0;
    }
    return this.data;
  }

  get size(): number {
    return this.data.length + this.pendingBytes;
  }

  set(start: number, length: number, value: Uint8Array): Status {
    const data = this.bytes();
    const size = data.length;
    if (start === 0) {
      this.data = Buffer.concat([value, data.subarray(Math.min(length, size))]);
      return Status.OK;
    }
    if (start >= size) {
      this.data = Buffer.concat([data, value]);
      return Status.OK;
    }
    return Status.BAD_ARGUMENT;
  }

  /** Host side: append a received chunk (while a filter buffers). */
  append(chunk: Uint8Array): void {
    const b = view(chunk);
    if (this.data.length === 0 && this.pending === null) {
      this.data = b;
      return;
    }
    (this.pending ??= []).push(b);
    this.pendingBytes += b.length;
  }

  /** Host side: replace with a new chunk (the previous one went on). */
  replace(chunk: Uint8Array): void {
    this.data = view(chunk);
    this.pending = null;
    this.pendingBytes = 0;
  }

  clear(): void {
    this.replace(EMPTY);
  }
}
