// splitRecordArray and RecordArraySplitter (host/hooks/batch.ts): an ingest body split into its records' bytes without parsing it whole.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RecordArraySplitter, splitRecordArray } from '../../host/hooks/batch.js';

const split = (text: string, max = 100) => splitRecordArray(Buffer.from(text), max);
const texts = async (text: string, max = 100) => {
  const r = await split(text, max);
  if (!r.ok) throw new Error(`not split: ${JSON.stringify(r)}`);
  return r.records.map((b) => Buffer.from(b).toString());
};

describe('splitRecordArray', () => {
  it('returns each top-level element, whitespace trimmed, nesting and strings kept whole', async () => {
    const records = [{ a: [1, { b: '],}{["' }] }, 'str\\"ing]', 7, null, [[], {}], { 'k"ey': 'x\\\\' }];
    const body = ` \n[ ${records.map((r) => JSON.stringify(r)).join(' ,\n ')} ] \n`;
    const got = await texts(body);
    expect(got.map((t) => JSON.parse(t))).toEqual(records);
    expect(await texts('[]')).toEqual([]);
    expect(await texts(' [ ] ')).toEqual([]);
  });

  it('refuses what is not a JSON array, naming where', async () => {
    expect(await split('{"v":1}')).toEqual({ ok: false, error: 'syntax', reason: 'The body must be a JSON array of event records' });
    expect(await split('')).toMatchObject({ ok: false, error: 'syntax' });
    expect(await split('[{')).toEqual({ ok: false, error: 'syntax', reason: 'Cannot parse JSON body: the array is not closed' });
    expect(await split('[1,]')).toEqual({ ok: false, error: 'syntax', reason: 'Cannot parse JSON body: missing array element before byte 3' });
    expect(await split('[,1]')).toMatchObject({ ok: false, error: 'syntax' });
    expect(await split('[1] x')).toEqual({ ok: false, error: 'syntax', reason: 'Cannot parse JSON body: unexpected data after the array at byte 4' });
    expect(await split('[}]')).toMatchObject({ ok: false, error: 'syntax' });
    expect(await split('["unterminated]')).toMatchObject({ ok: false, error: 'syntax' });
  });

  it('stops at more than `max` records', async () => {
    expect(await texts('[1,2,3]', 3)).toEqual(['1', '2', '3']);
    expect(await split('[1,2,3,4', 3)).toEqual({ ok: false, error: 'too_many', max: 3 });
  });

  it('splits a body larger than one scan slice (it yields to the event loop between slices)', async () => {
    const record = JSON.stringify({ v: 1, type: 'emit', source: 's', event: 'e', data: { pad: 'x'.repeat(1000) } });
    const n = 3000; // about 3 MB: three slices
    let turns = 0;
    let ticking = true;
    const tick = () => {
      turns++;
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    const got = await texts(`[${Array(n).fill(record).join(',')}]`, n);
    ticking = false;
    expect(got).toHaveLength(n);
    expect(got.every((t) => t === record)).toBe(true);
    expect(turns).toBeGreaterThanOrEqual(2);
  });
});

describe('RecordArraySplitter (the body fed chunk by chunk, as the ingest endpoint reads it)', () => {
  /** Splits `body` fed in chunks cut at `cuts` (byte offsets). */
  const chunked = (body: Buffer, cuts: number[], max = 1000) => {
    const splitter = new RecordArraySplitter(max);
    let at = 0;
    for (const cut of [...cuts.filter((c) => c > 0 && c < body.length)].sort((a, b) => a - b).concat(body.length)) {
      const failed = splitter.push(body.subarray(at, cut));
      at = cut;
      if (failed !== null) return failed;
    }
    return splitter.end();
  };
  const asText = (r: Awaited<ReturnType<typeof splitRecordArray>>) => (r.ok ? { ok: true, records: r.records.map((b) => Buffer.from(b).toString()) } : r);

  it('gives what the whole body gives, wherever the chunks are cut (records, errors and their byte offsets)', async () => {
    const element = fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.string({ unit: fc.constantFrom('"', '\\', ']', '}', ',', '[', '{', 'a', ' ') }));
    const body = fc.tuple(fc.array(element, { maxLength: 8 }), fc.constantFrom('', ' ', '\n  '), fc.constantFrom('', '1,]', ']x', ',', '}')).map(([items, space, junk]) => {
      const text = `${space}[${space}${items.map((v) => JSON.stringify(v)).join(`${space},${space}`)}${space}]${space}`;
      // Some bodies broken on purpose: cut short, or with junk spliced in.
      return junk === '' ? text : text.slice(0, Math.max(1, text.length - 2)) + junk;
    });
    await fc.assert(
      fc.asyncProperty(body, fc.array(fc.nat(400), { maxLength: 12 }), fc.integer({ min: 1, max: 9 }), async (text, cuts, max) => {
        const bytes = Buffer.from(text);
        expect(asText(chunked(bytes, cuts, max))).toEqual(asText(await splitRecordArray(bytes, max)));
      }),
      { seed: 10, numRuns: 400 },
    );
  });

  it('copies only the records that span chunks; the others are views of their chunk', () => {
    const splitter = new RecordArraySplitter(10);
    const first = Buffer.from('[{"a":1},{"b":');
    const second = Buffer.from('2},{"c":3}]');
    expect(splitter.push(first)).toBeNull();
    expect(splitter.push(second)).toBeNull();
    const r = splitter.end();
    if (!r.ok) throw new Error('not split');
    expect(r.records.map((b) => Buffer.from(b).toString())).toEqual(['{"a":1}', '{"b":2}', '{"c":3}']);
    expect(r.records[0]!.buffer).toBe(first.buffer);
    expect(r.records[2]!.buffer).toBe(second.buffer);
  });

  it('refuses an oversized batch as soon as the record past the limit begins, before the rest arrives', () => {
    const splitter = new RecordArraySplitter(2);
    expect(splitter.push(Buffer.from('[1,2,'))).toBeNull();
    expect(splitter.push(Buffer.from('3'))).toEqual({ ok: false, error: 'too_many', max: 2 });
  });
});
