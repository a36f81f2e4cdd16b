/**
 * The pairs format against golden bytes (test/fixtures/golden/pairs.ts): the
 * host's serializer and parser, and the bytes that actually cross the ABI in
 * proxy_get_header_map_pairs (host -> guest) and proxy_set_header_map_pairs
 * (guest -> host).
 */
import { describe, it, expect } from 'vitest';
import { parsePairs, serializePairs } from '../../../host/abi/memory.js';
import { EMPTY_MAP, EMPTY_VALUE, GOLDEN_MAPS, TWO_PAIRS, UTF8_VALUE, type GoldenMap } from '../../fixtures/golden/pairs.js';
import { Status, byteString, bytes, drain, op, startProbe } from './probe.js';

/** Golden pairs as the host keeps them: a flat list of byte strings. */
function flat(g: GoldenMap): string[] {
  return g.pairs.flatMap(([k, v]) => [byteString(k), byteString(v)]);
}

function utf8Pairs(flatList: readonly string[]): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i < flatList.length; i += 2) {
    out.push([Buffer.from(flatList[i]!, 'latin1').toString('utf8'), Buffer.from(flatList[i + 1]!, 'latin1').toString('utf8')]);
  }
  return out;
}

const ALL = Object.entries(GOLDEN_MAPS).map(([name, g]) => ({ name, g }));
const NON_EMPTY = ALL.filter(({ g }) => g.pairs.length > 0);

describe('pairs format: host serializer and parser', () => {
  it.each(ALL)('serializePairs writes the golden bytes of $name', ({ g }) => {
    expect(new Uint8Array(serializePairs(flat(g)))).toEqual(g.bytes);
  });

  it.each(ALL)('parsePairs reads the golden bytes of $name', ({ g }) => {
    const parsed = parsePairs(Buffer.from(g.bytes));
    expect(parsed).not.toBeNull();
    expect(utf8Pairs(parsed!)).toEqual(g.pairs);
  });

  it('reads the other empty-map encodings: no bytes, or a single 0x00', () => {
    expect(parsePairs(Buffer.alloc(0))).toEqual([]);
    expect(parsePairs(Buffer.from([0]))).toEqual([]);
  });

  it('rejects bytes that are not a well-formed map', () => {
    // count = 2 but room for only one size entry
    expect(parsePairs(Buffer.from([2, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0]))).toBeNull();
    // sizes claim more data than there is
    const truncated = Buffer.from(TWO_PAIRS.bytes.subarray(0, TWO_PAIRS.bytes.length - 2));
    expect(parsePairs(truncated)).toBeNull();
  });
});

describe('pairs format over the ABI', () => {
  it.each(NON_EMPTY)('hands the guest the golden bytes of $name from proxy_get_header_map_pairs', async ({ g }) => {
    const host = await startProbe([op('request_headers', 'get_pairs', 0)]);
    const id = host.initHttpContext();
    host.callOnRequestHeaders(id, g.pairs.map(([k, v]) => [k, v] as const));
    const [r] = drain(host);
    expect(r!.s).toBe(Status.OK);
    expect(Number(r!.f.n)).toBe(g.bytes.length);
    expect(new Uint8Array(bytes(r!))).toEqual(g.bytes);
  });

  it('hands the guest an empty map as ptr 0 / len 0, without allocating', async () => {
    const host = await startProbe([op('request_trailers', 'get_pairs', 1)]);
    const id = host.initHttpContext();
    host.callOnRequestHeaders(id, { ':path': '/' });
    host.callOnRequestTrailers(id, {});
    const [r] = drain(host);
    expect([r!.s, Number(r!.f.p), Number(r!.f.n)]).toEqual([Status.OK, 0, 0]);
  });

  it.each(ALL)('takes the golden bytes of $name from proxy_set_header_map_pairs', async ({ g }) => {
    const host = await startProbe([op('request_headers', 'set_pairs', 0, g.bytes), op('request_headers', 'get_pairs', 0)]);
    const id = host.initHttpContext();
    host.callOnRequestHeaders(id, { ':path': '/old', 'x-old': '1' });
    const [set, get] = drain(host);
    expect(set!.s).toBe(Status.OK);
    expect(host.currentRequestHeaders(id)).toEqual(g.pairs);
    // ... and gives the same bytes back (an empty map as ptr 0 / len 0).
    if (g === EMPTY_MAP) expect([get!.f.p, get!.f.n]).toEqual(['0', '0']);
    else expect(new Uint8Array(bytes(get!))).toEqual(g.bytes);
  });

  it('takes an empty map sent as zero bytes or a single 0x00', async () => {
    const host = await startProbe([
      op('request_headers', 'set_pairs', 0, new Uint8Array(0)),
      op('response_headers', 'set_pairs', 2, Uint8Array.from([0])),
    ]);
    const id = host.initHttpContext();
    host.callOnRequestHeaders(id, { ':path': '/' });
    host.callOnResponseHeaders(id, { ':status': '200' });
    expect(drain(host).map((r) => r.s)).toEqual([Status.OK, Status.OK]);
    expect(host.currentRequestHeaders(id)).toEqual([]);
    expect(host.currentResponseHeaders(id)).toEqual([]);
  });

  // Stricter than Envoy, whose toPairs() turns malformed bytes into an empty
  // list (so the map would be wiped and OK returned); hookwire refuses them.
  it('answers BAD_ARGUMENT to malformed pairs and leaves the map alone', async () => {
    const host = await startProbe([op('request_headers', 'set_pairs', 0, Uint8Array.from([9, 0, 0, 0, 1, 0, 0, 0]))]);
    const id = host.initHttpContext();
    host.callOnRequestHeaders(id, { ':path': '/keep' });
    expect(drain(host).map((r) => r.s)).toEqual([Status.BAD_ARGUMENT]);
    expect(host.currentRequestHeaders(id)).toEqual([[':path', '/keep']]);
  });

  it('carries the UTF-8 and empty values byte for byte through a local response', async () => {
    const host = await startProbe([
      op('request_headers', 'send_local', 403, 'denied', 'no', ...UTF8_VALUE.pairs[0]!, ...EMPTY_VALUE.pairs[0]!),
    ]);
    const id = host.initHttpContext();
    host.callOnRequestHeaders(id, { ':path': '/' });
    expect(drain(host).map((r) => r.s)).toEqual([Status.OK]);
    expect(host.localResponse(id)?.headers).toEqual([...UTF8_VALUE.pairs, ...EMPTY_VALUE.pairs]);
  });
});
