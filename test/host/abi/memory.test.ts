/**
 * Guest memory (ABI §3): values larger than the guest's memory make its
 * allocator grow it mid-call and must still arrive intact; empty values are
 * (0, 0) without allocating; guest pointers outside memory give
 * INVALID_MEMORY_ACCESS instead of crashing the VM.
 */
import { describe, it, expect } from 'vitest';
import { serializePairs } from '../../../host/abi/memory.js';
import { Status, drain, fnv1a, op, startProbe, statuses, value } from './probe.js';

const MiB = 1024 * 1024;

/** 3 MiB of printable ASCII (header values travel as text). */
const BIG_TEXT = (() => {
  const b = Buffer.alloc(3 * MiB);
  for (let i = 0; i < b.length; i++) b[i] = 0x21 + ((i * 7 + (i >> 12)) % 90);
  return b;
})();

/** 3 MiB covering every byte value (properties travel as raw bytes). */
const BIG_BYTES = (() => {
  const b = Buffer.alloc(3 * MiB + 5);
  for (let i = 0; i < b.length; i++) b[i] = (i * 131 + (i >> 8)) & 0xff;
  return b;
})();

function pages(rec: { f: Readonly<Record<string, string>> }): [number, number] {
  const [before, after] = rec.f.pg!.split(',').map(Number);
  return [before!, after!];
}

/** The probe checksums megabytes in one callback: sizes are tested here, not the call deadline (a loaded machine could reach it). */
const NO_DEADLINE = { limits: { callDeadlineMs: 0 } } as const;

describe('values larger than guest memory', () => {
  it('grows memory inside the allocator and delivers a 3 MiB header, property and body intact', async () => {
    const host = await startProbe([
      op('request_headers', 'get_value', 0, 'x-big'),
      op('request_headers', 'get_property', 'x\0big'),
      op('request_body', 'get_buffer', 0, 0, 0xffffffff),
      op('request_body', 'get_value', 0, 'x-small'),
    ], NO_DEADLINE);
    const id = host.initHttpContext({ 'x.big': BIG_BYTES });
    host.callOnRequestHeaders(id, { ':path': '/', 'x-small': 'still here', 'x-big': BIG_TEXT.toString('latin1') });
    const [header, property] = drain(host);

    expect(header!.s).toBe(Status.OK);
    expect(Number(header!.f.n)).toBe(BIG_TEXT.length);
    expect(Number(header!.f.sum)).toBe(fnv1a(BIG_TEXT));
    expect(header!.f.last).toBe(BIG_TEXT.subarray(-8).toString('hex'));
    const [before, after] = pages(header!);
    // The guest started with far less than 3 MiB, so the allocator had to grow it.
    expect(before * 65536).toBeLessThan(BIG_TEXT.length);
    expect(after).toBeGreaterThan(before);
    expect(Number(header!.f.p) + BIG_TEXT.length).toBeLessThanOrEqual(after * 65536);

    expect(property!.s).toBe(Status.OK);
    expect(Number(property!.f.n)).toBe(BIG_BYTES.length);
    expect(Number(property!.f.sum)).toBe(fnv1a(BIG_BYTES));
    expect(property!.f.last).toBe(BIG_BYTES.subarray(-8).toString('hex'));

    host.callOnRequestBody(id, BIG_BYTES, true);
    const [body, small] = drain(host);
    expect([body!.s, Number(body!.f.n), Number(body!.f.sum)]).toEqual([Status.OK, BIG_BYTES.length, fnv1a(BIG_BYTES)]);
    expect(body!.f.last).toBe(BIG_BYTES.subarray(-8).toString('hex'));
    // The host kept working on a grown memory.
    expect(value(small!)).toBe('still here');
    expect(host.streamFailed(id)).toBe(false);
  });

  it('grows memory for a 3 MiB header map handed over as pairs', async () => {
    const host = await startProbe([op('request_headers', 'get_pairs', 0)]);
    const id = host.initHttpContext();
    const headers: Array<[string, string]> = [
      [':path', '/'],
      ['x-big', BIG_TEXT.toString('latin1')],
      ['x-after', 'tail'],
    ];
    host.callOnRequestHeaders(id, headers);
    const [r] = drain(host);
    const wire = serializePairs(headers.flat());
    expect([r!.s, Number(r!.f.n), Number(r!.f.sum), r!.f.last]).toEqual([Status.OK, wire.length, fnv1a(wire), wire.subarray(-8).toString('hex')]);
    const [before, after] = pages(r!);
    expect(after).toBeGreaterThan(before);
  });
});

describe('empty values', () => {
  it('writes ptr 0 / len 0 for an empty header value, property and body window', async () => {
    const host = await startProbe([
      op('request_headers', 'get_value', 0, 'x-empty'),
      op('request_headers', 'get_property', 'x\0empty'),
      op('request_headers', 'get_buffer', 0, 0, 100),
    ]);
    const id = host.initHttpContext({ 'x.empty': '' });
    host.callOnRequestHeaders(id, { ':path': '/', 'x-empty': '' });
    const r = drain(host);
    expect(r.map((x) => [x.s, x.f.p, x.f.n])).toEqual([
      [Status.OK, '0', '0'],
      [Status.OK, '0', '0'],
      [Status.OK, '0', '0'],
    ]);
  });
});

describe('guest pointers outside memory', () => {
  it('answers INVALID_MEMORY_ACCESS for every bad pointer, and the VM keeps working', async () => {
    const what = [
      ['ret_value', 0, 'x-big'],
      ['ret_value', 0, ':path'],
      ['key', 0],
      ['ret_pairs', 0],
      ['set_pairs', 0],
      ['add_value', 0, 'x-new'],
      ['ret_buffer', 0],
      ['ret_property', 'plugin_name'],
      ['log'],
      ['size', 0],
    ] as const;
    const host = await startProbe([...what.map((w) => op('request_headers', 'oob', ...w)), op('request_headers', 'get_value', 0, ':path')]);
    const id = host.initHttpContext();
    host.callOnRequestHeaders(id, { ':path': '/ok', 'x-big': BIG_TEXT.toString('latin1') });
    const r = drain(host);
    expect(statuses(r)).toEqual([...what.map(() => Status.INVALID_MEMORY_ACCESS), Status.OK]);
    // The return pointers were checked before allocating: no 3 MiB block, no growth.
    const [before, after] = pages(r[0]!);
    expect(after).toBe(before);
    // Nothing was half-done, and the guest carries on.
    expect(host.currentRequestHeaders(id).map(([k]) => k)).toEqual([':path', 'x-big']);
    expect(value(r.at(-1)!)).toBe('/ok');
    expect(host.streamFailed(id)).toBe(false);
    expect(host.runtimeEvents().filter((e) => e.type === 'vm_trapped')).toEqual([]);
  });
});

describe('the name cache (property paths and header names by guest address)', () => {
  it('notices changed bytes at a cached address, in the aligned words and in the tail', async () => {
    const { GuestMemory } = await import('../../../host/abi/memory.js');
    const memory = new WebAssembly.Memory({ initial: 1 });
    let next = 1024;
    const mem = new GuestMemory(memory, (n) => ((next += n + 8), next - n - 8));
    const bytes = new Uint8Array(memory.buffer);
    for (const at of [256, 513]) {
      // 4-aligned (words compared) and not (bytes compared).
      const write = (s: string) => bytes.set(Buffer.from(s, 'latin1'), at);
      write('request\0total_size');
      expect(mem.name(at, 18)).toBe('request\0total_size');
      expect(mem.name(at, 18)).toBe('request\0total_size');
      write('request\0total_sizX'); // the tail
      expect(mem.name(at, 18)).toBe('request\0total_sizX');
      write('rEquest\0total_sizX'); // the first word
      expect(mem.name(at, 18)).toBe('rEquest\0total_sizX');
      expect(mem.name(at, 7)).toBe('rEquest'); // another length at the same address
    }
  });
});
