// Kong's form-key rules and value typing (host/admin/form.ts), on their own.
import { describe, expect, it } from 'vitest';
import { coerceForm, FormBodyError, MAX_FORM_ARGS, parseForm } from '../../host/admin/form.js';

const urlencoded = (text: string) => parseForm(Buffer.from(text), 'application/x-www-form-urlencoded');
const plain = (v: unknown) => JSON.parse(JSON.stringify(v));

describe('form keys', () => {
  it('nest on dots (not inside brackets), index lists 1-based, append with [], key maps with [name]', async () => {
    expect(plain(await urlencoded('a.b.c=1&a.b.d=2'))).toEqual({ a: { b: { c: '1', d: '2' } } });
    expect(plain(await urlencoded('paths[2]=/b&paths[1]=/a'))).toEqual({ paths: ['/a', '/b'] });
    expect(plain(await urlencoded('paths[]=/a&paths[]=/b'))).toEqual({ paths: ['/a', '/b'] });
    expect(plain(await urlencoded('paths=/a&paths=/b&paths=/c'))).toEqual({ paths: ['/a', '/b', '/c'] });
    expect(plain(await urlencoded('headers[x.y]=1&headers.z=2'))).toEqual({ headers: { 'x.y': '1', z: '2' } });
    expect(plain(await urlencoded('a[1].cat=tommy&a[2].dog=jake'))).toEqual({ a: [{ cat: 'tommy' }, { dog: 'jake' }] });
    // Percent-encoded brackets are brackets.
    expect(plain(await urlencoded('key%5B1%5D=v'))).toEqual({ key: ['v'] });
  });

  it(`refuses more than ${MAX_FORM_ARGS} arguments and list/name mixes, with the reason`, async () => {
    const many = Array.from({ length: MAX_FORM_ARGS + 1 }, (_, i) => `k${i}=v`).join('&');
    await expect(urlencoded(many)).rejects.toThrow(new FormBodyError('Too many arguments'));
    await expect(urlencoded('a[]=1&a[]=2&a.b=x')).rejects.toThrow(new FormBodyError('Cannot mix list items and names in form key "a.b"'));
  });

  it('multipart fields and file parts (as text)', async () => {
    const form = new FormData();
    form.append('name', 'svc');
    form.append('config.url', 'http://x/');
    form.append('script', new Blob(['file body']), 'a.txt');
    const req = new Request('http://x/', { method: 'POST', body: form });
    const body = Buffer.from(await req.arrayBuffer());
    expect(plain(await parseForm(body, req.headers.get('content-type')!))).toEqual({ name: 'svc', config: { url: 'http://x/' }, script: 'file body' });
  });
});

describe('form values typed by the schema', () => {
  const schema = {
    type: 'object',
    properties: {
      n: { type: 'integer' },
      f: { type: ['number', 'null'] },
      b: { type: 'boolean' },
      list: { type: 'array', items: { type: 'integer' } },
      s: { type: 'string' },
      maybe: { type: ['string', 'null'] },
      map: { type: 'object', additionalProperties: { type: 'boolean' } },
    },
  };
  it("as Kong's infer_value: numbers, exact true/false, a scalar into a list, '' as null; others left for the schema to refuse", () => {
    expect(coerceForm({ n: '5', f: '2.5', b: 'false', list: '7', s: '12', maybe: '', map: { x: 'true' } }, schema)).toEqual({
      n: 5,
      f: 2.5,
      b: false,
      list: [7],
      s: '12',
      maybe: null,
      map: { x: true },
    });
    expect(coerceForm({ n: 'five', b: 'TRUE', s: '', unknown: '1' }, schema)).toEqual({ n: 'five', b: 'TRUE', s: '', unknown: '1' });
  });
});
