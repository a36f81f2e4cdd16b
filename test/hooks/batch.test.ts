// splitRecordArray (host/hooks/batch.ts): an ingest body split into its records' bytes without parsing it whole.
import { describe, expect, it } from 'vitest';
import { splitRecordArray } from '../../host/hooks/batch.js';

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
