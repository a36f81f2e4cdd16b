/**
 * An ingest batch (a JSON array of wire records) split into its records'
 * bytes without parsing it whole: JSON.parse of a 32 MiB body holds the
 * event loop for a quarter of a second and more, and every proxied request
 * with it. The scan only tracks strings and nesting to find the top-level
 * commas; each record is parsed on its own later (hooks/wire parseRecord
 * takes bytes), so a malformed record is refused alone. The scan yields to
 * the event loop every SCAN_SLICE_BYTES and stops as soon as the batch has
 * more records than allowed, so an oversized batch costs little.
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

/**
 * The top-level elements of the JSON array in `body`, as views of it
 * (whitespace around them trimmed). Elements are not validated beyond their
 * brackets and strings: parse each one. At most `maxRecords` elements.
 */
export async function splitRecordArray(body: Uint8Array, maxRecords: number): Promise<SplitBatch> {
  const n = body.length;
  let i = 0;
  while (i < n && isSpace(body[i]!)) i++;
  if (body[i] !== OPEN_ARRAY) return { ok: false, error: 'syntax', reason: 'The body must be a JSON array of event records' };
  i++;
  const records: Uint8Array[] = [];
  let depth = 0;
  let inString = false;
  let start = -1; // first byte of the current element, -1 between elements
  let nextYield = i + SCAN_SLICE_BYTES;
  for (; i < n; i++) {
    if (i >= nextYield) {
      await yieldToLoop();
      nextYield = i + SCAN_SLICE_BYTES;
    }
    const b = body[i]!;
    if (inString) {
      if (b === BACKSLASH) i++;
      else if (b === QUOTE) inString = false;
      continue;
    }
    if (b === QUOTE) {
      inString = true;
      if (start < 0) start = i;
    } else if (b === OPEN_OBJECT || b === OPEN_ARRAY) {
      depth++;
      if (start < 0) start = i;
    } else if (b === CLOSE_OBJECT || (b === CLOSE_ARRAY && depth > 0)) {
      if (--depth < 0) return { ok: false, error: 'syntax', reason: `Cannot parse JSON body: unexpected '}' at byte ${i}` };
    } else if (depth === 0 && (b === COMMA || b === CLOSE_ARRAY)) {
      if (start < 0) {
        // `[]` is an empty batch; `[,` `[1,,2]` `[1,]` are not JSON.
        if (b === CLOSE_ARRAY && records.length === 0) break;
        return { ok: false, error: 'syntax', reason: `Cannot parse JSON body: missing array element before byte ${i}` };
      }
      let end = i;
      while (isSpace(body[end - 1]!)) end--;
      records.push(body.subarray(start, end));
      start = -1;
      if (b === CLOSE_ARRAY) break;
    } else if (start < 0 && !isSpace(b)) {
      start = i;
    }
    // One record more than allowed has begun: no need to read further.
    if (start === i && records.length === maxRecords) return { ok: false, error: 'too_many', max: maxRecords };
  }
  if (i >= n) return { ok: false, error: 'syntax', reason: 'Cannot parse JSON body: the array is not closed' };
  for (i++; i < n; i++) {
    if (!isSpace(body[i]!)) return { ok: false, error: 'syntax', reason: `Cannot parse JSON body: unexpected data after the array at byte ${i}` };
  }
  return { ok: true, records };
}
