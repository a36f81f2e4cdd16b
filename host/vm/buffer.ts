/**
 * A body-like buffer with Envoy's set_buffer_bytes rules:
 * start 0 drains `length` bytes and prepends the new data (so (0,0) prepends
 * and (0, size) replaces everything); start >= size appends; anything else is
 * BAD_ARGUMENT.
 */
import { Status } from '../abi/constants.js';
import type { AbiBuffer } from '../abi/host.js';

const EMPTY = Buffer.alloc(0);

export class BodyBuffer implements AbiBuffer {
  private data: Buffer = EMPTY;
  endOfStream = false;
  writable: boolean;

  constructor(writable = true, initial?: Uint8Array) {
    this.writable = writable;
    if (initial) this.data = Buffer.from(initial.buffer, initial.byteOffset, initial.byteLength);
  }

  bytes(): Buffer {
    return this.data;
  }

  get size(): number {
    return this.data.length;
  }

  set(start: number, length: number, value: Uint8Array): Status {
    const size = this.data.length;
    if (start === 0) {
      const rest = this.data.subarray(Math.min(length, size));
      this.data = Buffer.concat([value, rest]);
      return Status.OK;
    }
    if (start >= size) {
      this.data = Buffer.concat([this.data, value]);
      return Status.OK;
    }
    return Status.BAD_ARGUMENT;
  }

  /** Host side: append a received chunk (while a filter buffers). */
  append(chunk: Uint8Array): void {
    this.data = this.data.length === 0 ? Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength) : Buffer.concat([this.data, chunk]);
  }

  /** Host side: replace with a new chunk (the previous one went on). */
  replace(chunk: Uint8Array): void {
    this.data = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  }

  clear(): void {
    this.data = EMPTY;
  }
}
