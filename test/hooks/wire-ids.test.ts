/**
 * The ingest path's encodings: a record's data stored as JSON text (the
 * same text whether the record came as bytes or as an object), and the
 * delivery / event ids (Crockford base32 ULIDs, monotonic).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { deliveryId, encodeUlid, eventId, ulid } from '../../host/hooks/ids.js';
import { parseRecord } from '../../host/hooks/wire.js';
import { inputCopy } from '../../host/input.js';

const MAX = 262_144;

function storedJson(raw: unknown): string {
  const r = parseRecord(raw, MAX);
  if (!r.ok || r.record.type !== 'emit') throw new Error(`not an emit: ${JSON.stringify(r)}`);
  return r.record.json;
}

describe('parseRecord: the stored data text', () => {
  it('is the same for a record given as bytes, as text and as an object, and encodes the null-prototype copy', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 4 })), (data) => {
        const record = { v: 1, type: 'emit', source: 's', event: 'e', data };
        const text = JSON.stringify(record);
        const parsed = JSON.parse(text) as typeof record;
        const expected = JSON.stringify(inputCopy(parsed.data));
        expect(storedJson(Buffer.from(text, 'utf8'))).toBe(expected);
        expect(storedJson(text)).toBe(expected);
        expect(storedJson(parsed)).toBe(expected);
      }),
      { numRuns: 300 },
    );
  });

  it('keeps `__proto__` and integer-like keys, in JSON order', () => {
    const text = '{"v":1,"type":"emit","source":"s","event":"e","data":{"b":1,"__proto__":{"x":2},"10":3,"2":4,"constructor":"c"}}';
    const expected = '{"2":4,"10":3,"b":1,"__proto__":{"x":2},"constructor":"c"}';
    expect(storedJson(Buffer.from(text))).toBe(expected);
    expect(storedJson(JSON.parse(text))).toBe(expected);
  });
});

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

function decode(s: string): number {
  let n = 0;
  for (const ch of s) n = n * 32 + CROCKFORD.indexOf(ch);
  return n;
}

describe('ids', () => {
  it('a ULID is 26 Crockford base32 digits: the time in ms, then 80 bits that count up within a millisecond', () => {
    const ms = 1_764_000_000_123;
    const a = ulid(ms);
    const b = ulid(ms);
    for (const id of [a, b]) expect(id).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(decode(a.slice(0, 10))).toBe(ms);
    expect(decode(b.slice(0, 10))).toBe(ms);
    // The random part is two 40-bit halves; the second id is the first plus one.
    const [hiA, loA, hiB, loB] = [a.slice(10, 18), a.slice(18), b.slice(10, 18), b.slice(18)].map(decode);
    expect(hiA! * 2 ** 40 + loA! + 1).toBe(hiB! * 2 ** 40 + loB!);
    expect(b > a).toBe(true);
  });

  it('each 40-bit half is written as 8 base32 digits, most significant first', () => {
    const digits = (n: number, k: number): string => {
      let out = '';
      for (let i = 0; i < k; i++) out = CROCKFORD[Math.floor(n / 32 ** i) % 32]! + out;
      return out;
    };
    const half = fc.integer({ min: 0, max: 2 ** 40 - 1 });
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 48 - 1 }), half, half, (ms, hi, lo) => {
        expect(encodeUlid(ms, hi, lo)).toBe(digits(ms, 10) + digits(hi, 8) + digits(lo, 8));
      }),
      { numRuns: 2000 },
    );
    expect(encodeUlid(0, 2 ** 40 - 1, 1)).toBe('0000000000ZZZZZZZZ00000001');
  });

  it('ids strictly increase, also when the clock steps back, and carry their prefix', () => {
    let prev = '';
    for (const ms of [5_000, 5_000, 5_001, 4_000, 4_000, 6_000]) {
      const id = ulid(ms);
      expect(id > prev).toBe(true);
      prev = id;
    }
    expect(deliveryId(Date.now())).toMatch(/^msg_[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(eventId(Date.now())).toMatch(/^evt_[0-9A-HJKMNP-TV-Z]{26}$/);
  });
});
