/**
 * Header maps (ABI §1): get/set pairs, get/add/replace/remove value, size, for
 * request headers/trailers and response headers/trailers, as Envoy answers
 * them. Every call is a raw host call made by the abi-probe guest.
 */
import { describe, it, expect } from 'vitest';
import { serializePairs } from '../../../host/abi/memory.js';
import type { HostEmulator } from '../../../host/testing/emulator.js';
import { SENTINEL, Status, byteString, bytes, drain, op, startProbe, statuses, value } from './probe.js';

type Pairs = Array<[string, string]>;

interface MapCase {
  readonly map: number;
  readonly name: string;
  readonly phase: string;
  /** Run the phase with `pairs` as the map's content. */
  readonly drive: (host: HostEmulator, id: number, pairs: Pairs) => void;
  readonly current: (host: HostEmulator, id: number) => Pairs;
}

const MAPS: readonly MapCase[] = [
  {
    map: 0,
    name: 'request headers',
    phase: 'request_headers',
    drive: (h, id, p) => void h.callOnRequestHeaders(id, p),
    current: (h, id) => h.currentRequestHeaders(id),
  },
  {
    map: 1,
    name: 'request trailers',
    phase: 'request_trailers',
    drive: (h, id, p) => {
      h.callOnRequestHeaders(id, { ':path': '/' });
      h.callOnRequestTrailers(id, p);
    },
    current: (h, id) => h.currentRequestTrailers(id),
  },
  {
    map: 2,
    name: 'response headers',
    phase: 'response_headers',
    drive: (h, id, p) => {
      h.callOnRequestHeaders(id, { ':path': '/' }, true);
      h.callOnResponseHeaders(id, p);
    },
    current: (h, id) => h.currentResponseHeaders(id),
  },
  {
    map: 3,
    name: 'response trailers',
    phase: 'response_trailers',
    drive: (h, id, p) => {
      h.callOnRequestHeaders(id, { ':path': '/' }, true);
      h.callOnResponseHeaders(id, { ':status': '200' });
      h.callOnResponseTrailers(id, p);
    },
    current: (h, id) => h.currentResponseTrailers(id),
  },
];

const INITIAL: Pairs = [
  ['x-dup', '1'],
  ['x-keep', 'keep'],
  ['x-dup', '2'],
];

/** Pairs-format bytes of UTF-8 pairs, for comparing with what the guest received. */
function wire(pairs: Pairs): Buffer {
  return serializePairs(pairs.flatMap(([k, v]) => [byteString(k), byteString(v)]));
}

describe.each(MAPS)('header map $map ($name)', ({ map, phase, drive, current }) => {
  it('reads pairs and values, and edits with add/replace/remove as Envoy does', async () => {
    const host = await startProbe([
      op(phase, 'get_pairs', map),
      op(phase, 'get_value', map, 'x-dup'),
      op(phase, 'get_value', map, 'X-KEEP'),
      op(phase, 'get_value', map, 'x-missing'),
      op(phase, 'size', map),
      op(phase, 'add', map, 'X-Added', 'v1'),
      op(phase, 'replace', map, 'x-dup', 'R'),
      op(phase, 'replace', map, 'X-New', 'n'),
      op(phase, 'remove', map, 'x-keep'),
      op(phase, 'remove', map, 'x-absent'),
      op(phase, 'add', map, 'x-utf8', 'Zürich'),
      op(phase, 'size', map),
      op(phase, 'get_pairs', map),
    ]);
    const id = host.initHttpContext();
    drive(host, id, INITIAL);
    const r = drain(host, phase);
    expect(r.map((x) => x.op)).toEqual([
      'get_pairs', 'get_value', 'get_value', 'get_value', 'size', 'add', 'replace', 'replace', 'remove', 'remove', 'add', 'size', 'get_pairs',
    ]);

    // get_pairs: the whole map, in order, in the pairs format.
    expect(r[0]!.s).toBe(Status.OK);
    expect(bytes(r[0]!)).toEqual(wire(INITIAL));
    // get_value: the first value of a repeated header; the key is matched lower-cased.
    expect([r[1]!.s, value(r[1]!)]).toEqual([Status.OK, '1']);
    expect([r[2]!.s, value(r[2]!)]).toEqual([Status.OK, 'keep']);
    // A missing key: NOT_FOUND, and the return slots are left alone.
    expect(r[3]!.s).toBe(Status.NOT_FOUND);
    expect([Number(r[3]!.f.p), Number(r[3]!.f.n)]).toEqual([SENTINEL, SENTINEL]);
    // size is Envoy's byteSize(): the sum of name and value lengths, not the pair count.
    expect([r[4]!.s, Number(r[4]!.f.v)]).toEqual([Status.OK, 5 + 1 + 6 + 4 + 5 + 1]);
    // add, replace (also when missing) and remove (also of an absent key) all succeed.
    expect(statuses(r.slice(5, 11))).toEqual([0, 0, 0, 0, 0, 0]);

    const expected: Pairs = [
      ['x-dup', 'R'], // replace: the first occurrence, in place; the duplicate is gone
      ['x-added', 'v1'], // add: appended, name lower-cased
      ['x-new', 'n'], // replace of a missing key adds it, lower-cased
      ['x-utf8', 'Zürich'],
    ];
    // The byte size counts UTF-8 bytes ("Zürich" is 7).
    expect(Number(r[11]!.f.v)).toBe(5 + 1 + 7 + 2 + 5 + 1 + 6 + 7);
    expect(bytes(r[12]!)).toEqual(wire(expected));
    expect(current(host, id)).toEqual(expected);
  });

  it('replaces the whole map with set_header_map_pairs, lower-casing names', async () => {
    const sent = serializePairs(['X-Upper', 'V', 'a', byteString('é'), 'a', '2']);
    const host = await startProbe([op(phase, 'set_pairs', map, sent), op(phase, 'get_value', map, 'x-upper'), op(phase, 'get_pairs', map)]);
    const id = host.initHttpContext();
    drive(host, id, INITIAL);
    const r = drain(host, phase);
    expect(statuses(r)).toEqual([Status.OK, Status.OK, Status.OK]);
    expect(value(r[1]!)).toBe('V');
    const expected: Pairs = [
      ['x-upper', 'V'],
      ['a', 'é'],
      ['a', '2'],
    ];
    expect(bytes(r[2]!)).toEqual(wire(expected));
    expect(current(host, id)).toEqual(expected);
  });

  it('refuses writes during on_log (BAD_ARGUMENT) but still answers reads', async () => {
    const host = await startProbe([
      op('log', 'add', map, 'x-late', '1'),
      op('log', 'replace', map, 'x-dup', 'late'),
      op('log', 'remove', map, 'x-keep'),
      op('log', 'set_pairs', map, serializePairs(['x-late', '1'])),
      op('log', 'get_value', map, 'x-keep'),
      op('log', 'get_pairs', map),
    ]);
    const id = host.initHttpContext();
    drive(host, id, INITIAL);
    host.callOnResponseHeaders(id, map === 2 ? INITIAL : { ':status': '200' });
    const before = current(host, id);
    host.completeHttpContext(id);
    const r = drain(host, 'log');
    expect(statuses(r.slice(0, 4))).toEqual([Status.BAD_ARGUMENT, Status.BAD_ARGUMENT, Status.BAD_ARGUMENT, Status.BAD_ARGUMENT]);
    expect(current(host, id)).toEqual(before);
    // Envoy's access-log phase has no request trailers (reads give NOT_FOUND there);
    // the other maps stay readable.
    if (map !== 1) {
      expect(statuses(r.slice(4))).toEqual([Status.OK, Status.OK]);
      expect(value(r[4]!)).toBe('keep');
      expect(bytes(r[5]!)).toEqual(wire(before));
    }
  });
});

describe('header maps: availability and bad arguments', () => {
  it('answers for maps the stream does not have yet as Envoy does: BAD_ARGUMENT, pairs empty, NOT_FOUND in on_log', async () => {
    const host = await startProbe([
      op('request_headers', 'get_value', 0, ':path'),
      op('request_headers', 'get_value', 1, 'x-t'),
      op('request_headers', 'get_value', 2, ':status'),
      op('request_headers', 'get_value', 3, 'x-t'),
      op('request_headers', 'get_pairs', 2),
      op('request_headers', 'size', 2),
      op('request_headers', 'add', 2, 'x', 'y'),
      op('request_headers', 'get_value', 6, ':status'),
      op('response_headers', 'get_value', 3, 'x-t'),
      op('log', 'get_value', 1, 'x-t'),
      op('log', 'get_pairs', 1),
    ]);
    const id = host.initHttpContext();
    host.callOnRequestHeaders(id, { ':path': '/a' });
    const r = drain(host);
    expect(statuses(r)).toEqual([Status.OK, Status.BAD_ARGUMENT, Status.BAD_ARGUMENT, Status.BAD_ARGUMENT, Status.OK, Status.BAD_ARGUMENT, Status.BAD_ARGUMENT, Status.BAD_ARGUMENT]);
    // get_header_map_pairs lists an absent map as an empty one: (0, 0), nothing allocated.
    expect([r[4]!.f.p, r[4]!.f.n]).toEqual(['0', '0']);
    // A refused read leaves the return slots alone.
    expect(r[1]!.f.p).toBe(String(SENTINEL));
    host.callOnResponseHeaders(id, { ':status': '200' });
    expect(statuses(drain(host))).toEqual([Status.BAD_ARGUMENT]);
    host.completeHttpContext(id);
    // Envoy's access-log phase: an absent map reads as a missing header.
    expect(statuses(drain(host, 'log'))).toEqual([Status.NOT_FOUND, Status.OK]);
  });

  it('answers BAD_ARGUMENT for a map type beyond the ABI (8, 99)', async () => {
    const host = await startProbe([
      op('request_headers', 'get_value', 8, 'a'),
      op('request_headers', 'get_pairs', 99),
      op('request_headers', 'add', 8, 'a', 'b'),
      op('request_headers', 'size', 99),
    ]);
    const id = host.initHttpContext();
    host.callOnRequestHeaders(id, { ':path': '/' });
    expect(statuses(drain(host))).toEqual([Status.BAD_ARGUMENT, Status.BAD_ARGUMENT, Status.BAD_ARGUMENT, Status.BAD_ARGUMENT]);
  });

  it('refuses writes to the http-call response maps (6, 7)', async () => {
    const host = await startProbe([
      op('request_headers', 'http_call', 'c', 1000, '', ':method', 'GET', ':path', '/', ':authority', 'a'),
      op('call_response', 'add', 6, 'x', 'y'),
      op('call_response', 'remove', 7, 'x'),
      op('call_response', 'get_value', 6, ':status'),
    ], { upstreams: ['c'] });
    const id = host.initHttpContext();
    host.callOnRequestHeaders(id, { ':path': '/' });
    const [call] = host.httpCalls();
    host.respondToHttpCall(call!.token, { status: 204 });
    const r = drain(host, 'call_response');
    expect(statuses(r)).toEqual([Status.BAD_ARGUMENT, Status.BAD_ARGUMENT, Status.OK]);
    expect(value(r[2]!)).toBe('204');
  });
});
