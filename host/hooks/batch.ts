/**
 * An ingest batch (a JSON array of wire records) split into its records'
 * bytes without parsing it whole: JSON.parse of a 32 MiB body holds the
 * event loop for a quarter of a second and more, and every proxied request
 * with it. The scan only tracks strings and nesting to find the top-level
 * commas; each record is parsed on its own later (hooks/wire parseRecord
 * takes bytes), so a malformed record is refused alone. The scan stops as
 * soon as the batch has more records than allowed, so an oversized batch
 * costs little; the ingest endpoint feeds it the body's chunks as they
 * arrive (RecordArraySplitter).
 */

/** Bytes scanned between two yields to the event loop (about a millisecond of work). */
const SCAN_SLICE_BYTES = 1 << 20;

export type SplitBatch =
  | { readonly ok: true; readonly records: Uint8Array[] }
  | { readonly ok: false; readonly error: 'syntax'; readonly reason: string }
  | { readonly ok: false; readonly error: 'too_many'; readonly max: number };

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;

function isSpace(b: number): boolean {
  return b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
}

const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

type Failed = Exclude<SplitBatch, { ok: true }>;

/**
 * The streaming form: the body's chunks are fed as they arrive, so a large
 * batch is never concatenated (a 31 MB copy held the loop for about 30 ms)
 * and an oversized one is refused as soon as its record count passes the
 * limit. A record within one chunk is a view of it; one that spans chunks is
 * copied once, when it is complete.
 */
export class RecordArraySplitter {
  readonly records: Uint8Array[] = [];
  private state: 'before' | 'elements' | 'after' = 'before';
  private depth = 0;
  private inString = false;
  private escaped = false;
  /** The current element's bytes from earlier chunks (empty: it began in this chunk, or none is open). */
  private parts: Uint8Array[] = [];
  /** Absolute offset of the next chunk's first byte (for error messages). */
  private offset = 0;
  private failed: Failed | null = null;

  constructor(private readonly maxRecords: number) {}

  /** Feeds the next chunk; returns why the batch is refused (stop feeding then), or null. */
  push(chunk: Uint8Array): Failed | null {
    if (this.failed !== null) return this.failed;
    const n = chunk.length;
    // First byte of the current element in this chunk; 0 when it continues from an earlier chunk, -1 between elements.
    let start = this.parts.length > 0 ? 0 : -1;
    for (let i = 0; i < n; i++) {
      const b = chunk[i]!;
      if (this.state !== 'elements') {
        if (isSpace(b)) continue;
        if (this.state === 'before' && b === OPEN_ARRAY) {
          this.state = 'elements';
          continue;
        }
        return this.fail(
          this.state === 'before' ? 'The body must be a JSON array of event records' : `Cannot parse JSON body: unexpected data after the array at byte ${this.offset + i}`,
        );
      }
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (b === BACKSLASH) this.escaped = true;
        else if (b === QUOTE) this.inString = false;
        continue;
      }
      if (b === QUOTE) {
        this.inString = true;
        if (start < 0) start = i;
      } else if (b === OPEN_OBJECT || b === OPEN_ARRAY) {
        this.depth++;
        if (start < 0) start = i;
      } else if (b === CLOSE_OBJECT || (b === CLOSE_ARRAY && this.depth > 0)) {
        if (--this.depth < 0) return this.fail(`Cannot parse JSON body: unexpected '}' at byte ${this.offset + i}`);
      } else if (this.depth === 0 && (b === COMMA || b === CLOSE_ARRAY)) {
        if (start < 0) {
          // `[]` is an empty batch; `[,` `[1,,2]` `[1,]` are not JSON.
          if (b === CLOSE_ARRAY && this.records.length === 0) {
            this.state = 'after';
            continue;
          }
          return this.fail(`Cannot parse JSON body: missing array element before byte ${this.offset + i}`);
        }
        this.records.push(this.element(chunk, start, i));
        start = -1;
        if (b === CLOSE_ARRAY) this.state = 'after';
        continue;
      } else if (start < 0 && !isSpace(b)) {
        start = i;
      }
      // One record more than allowed has begun: no need to read further.
      if (start === i && this.records.length === this.maxRecords) return (this.failed = { ok: false, error: 'too_many', max: this.maxRecords });
    }
    if (start >= 0) this.parts.push(chunk.subarray(start));
    this.offset += n;
    return null;
  }

  /** The batch, once the body has ended. */
  end(): SplitBatch {
    if (this.failed !== null) return this.failed;
    if (this.state === 'before') return this.fail('The body must be a JSON array of event records');
    if (this.state === 'elements') return this.fail('Cannot parse JSON body: the array is not closed');
    return { ok: true, records: this.records };
  }

  /** The element ending before chunk[end], whitespace before its end trimmed. */
  private element(chunk: Uint8Array, start: number, end: number): Uint8Array {
    let bytes: Uint8Array;
    if (this.parts.length === 0) {
      bytes = chunk.subarray(start, end);
    } else {
      bytes = Buffer.concat([...this.parts, chunk.subarray(0, end)]);
      this.parts = [];
    }
    let length = bytes.length;
    while (length > 0 && isSpace(bytes[length - 1]!)) length--;
    return length === bytes.length ? bytes : bytes.subarray(0, length);
  }

  private fail(reason: string): Failed {
    return (this.failed = { ok: false, error: 'syntax', reason });
  }
}

/**
 * The top-level elements of the JSON array in `body`, as views of it
 * (whitespace around them trimmed). Elements are not validated beyond their
 * brackets and strings: parse each one. At most `maxRecords` elements.
 * The scan yields to the event loop every SCAN_SLICE_BYTES.
 */
export async function splitRecordArray(body: Uint8Array, maxRecords: number): Promise<SplitBatch> {
  const splitter = new RecordArraySplitter(maxRecords);
  for (let at = 0; at < body.length; at += SCAN_SLICE_BYTES) {
    if (at > 0) await yieldToLoop();
    const failed = splitter.push(body.subarray(at, Math.min(body.length, at + SCAN_SLICE_BYTES)));
    if (failed !== null) return failed;
  }
  return splitter.end();
}
