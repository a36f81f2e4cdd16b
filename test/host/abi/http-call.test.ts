/**
 * proxy_http_call (ABI §1, §2): the token, the request as the transport sees
 * it, the response delivered to proxy_on_http_call_response with maps 6/7 and
 * buffer 4, failures as 0 headers, argument checks, proxy_get_status, and
 * proxy_set_effective_context from the call response back to the stream.
 */
import { describe, it, expect } from 'vitest';
import { serializePairs } from '../../../host/abi/memory.js';
import { FilterResult } from '../../../host/testing/emulator.js';
import { Status, bytes, drain, op, records, startProbe, statuses, value } from './probe.js';

const CALL = [
  'cluster_a',
  2500,
  'ping',
  ':method',
  'POST',
  ':path',
  '/check',
  ':authority',
  'auth.local',
  'x-extra',
  'Zürich',
  '|',
  'x-trailer',
  't1',
] as const;

/** Envoy refuses calls to clusters it does not know: the tests declare theirs. */
const CLUSTERS = { upstreams: ['cluster_a'] };

describe('proxy_http_call', () => {
  it('returns a token and dispatches the request as the guest described it', async () => {
    const host = await startProbe([op('request_headers', 'http_call', ...CALL), op('request_headers', 'return', 1)], CLUSTERS);
    const id = host.initHttpContext();
    expect(host.callOnRequestHeaders(id, { ':path': '/' })).toBe(FilterResult.PAUSE);
    const [r] = drain(host);
    expect(r!.s).toBe(Status.OK);
    const token = Number(r!.f.token);
    expect(token).toBeGreaterThan(0);
    expect(host.httpCalls()).toEqual([
      {
        token,
        upstream: 'cluster_a',
        headers: [
          [':method', 'POST'],
          [':path', '/check'],
          [':authority', 'auth.local'],
          ['x-extra', 'Zürich'],
        ],
        body: Buffer.from('ping'),
        trailers: [['x-trailer', 't1']],
        timeoutMs: 2500,
      },
    ]);
  });

  it('gives each call its own token', async () => {
    const host = await startProbe([op('request_headers', 'http_call', ...CALL), op('request_headers', 'http_call', ...CALL)], CLUSTERS);
    const id = host.initHttpContext();
    host.callOnRequestHeaders(id, { ':path': '/' });
    const tokens = drain(host).map((r) => Number(r.f.token));
    expect(new Set(tokens).size).toBe(2);
    expect(host.httpCalls().map((c) => c.token)).toEqual(tokens);
  });

  it('delivers the response with maps 6/7 and buffer 4, and lets the guest act on the calling stream', async () => {
    const cr = 'call_response';
    const host = await startProbe([
      op('request_headers', 'http_call', ...CALL),
      op('request_headers', 'return', 1),
      op(cr, 'get_value', 6, ':status'),
      op(cr, 'get_value', 6, 'x-r'),
      op(cr, 'get_pairs', 6),
      op(cr, 'get_buffer', 4, 0, 100),
      op(cr, 'buffer_status', 4),
      op(cr, 'get_value', 7, 'x-t'),
      op(cr, 'get_status'),
      op(cr, 'set_effective', 'origin'),
      op(cr, 'get_buffer', 4, 2, 100),
      op(cr, 'add', 0, 'x-from-call', 'yes'),
      op(cr, 'continue', 0),
      op(cr, 'set_effective', 9999),
      op('response_headers', 'get_value', 6, ':status'),
      op('response_headers', 'get_buffer', 4, 0, 100),
    ], CLUSTERS);
    const id = host.initHttpContext();
    host.callOnRequestHeaders(id, { ':path': '/' });
    const [call] = host.httpCalls();
    host.clearLogs();
    host.respondToHttpCall(call!.token, { status: 201, headers: { 'x-r': 'v' }, body: 'pong', trailers: { 'x-t': 'tt' } });

    const [args] = records(host, cr);
    expect(args!.op).toBe('args');
    // proxy_on_http_call_response(root, token, headers, body size, trailers), on the root context.
    expect(args!.f).toMatchObject({ token: String(call!.token), headers: '2', body: '4', trailers: '1', origin: String(id) });
    const r = drain(host, cr);
    expect(statuses(r)).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, Status.BAD_ARGUMENT]);
    expect(value(r[0]!)).toBe('201');
    expect(value(r[1]!)).toBe('v');
    expect(bytes(r[2]!)).toEqual(serializePairs([':status', '201', 'x-r', 'v']));
    expect(value(r[3]!)).toBe('pong');
    expect([r[4]!.f.len, r[4]!.f.flags]).toEqual(['4', '0']);
    expect(value(r[5]!)).toBe('tt');
    // proxy_get_status after a response: code 0, empty message (ptr 0 / len 0).
    expect([r[6]!.f.code, r[6]!.f.p, r[6]!.f.n]).toEqual(['0', '0', '0']);
    expect(r[7]!.f.id).toBe(String(id));
    // With the stream effective, the call's body is still readable ...
    expect(value(r[8]!)).toBe('ng');
    // ... and a header added to map 0 lands on that stream, which the guest resumes.
    expect(host.currentRequestHeaders(id)).toContainEqual(['x-from-call', 'yes']);
    expect(host.streamControl(id).continued.request).toBe(1);
    // A context id that does not exist is refused (BAD_ARGUMENT, in the statuses above).
    expect(r[11]!.f.id).toBe('9999');

    // Once the callback returned, the call's maps and body are gone.
    host.callOnResponseHeaders(id, { ':status': '200' });
    // Outside the call's response: Envoy has no call-response map (BAD_ARGUMENT) and no body (NOT_FOUND).
    expect(statuses(drain(host, 'response_headers'))).toEqual([Status.BAD_ARGUMENT, Status.NOT_FOUND]);
  });

  it.each([
    // Envoy's code for a failed call: BROKEN_CONNECTION (11), whatever the reason.
    { failure: 'timeout' as const, code: '11' },
    { failure: 'connection' as const, code: '11' },
  ])('reports a $failure as a response with 0 headers, no maps and a non-OK status', async ({ failure, code }) => {
    const cr = 'call_response';
    const host = await startProbe([
      op('request_headers', 'http_call', ...CALL),
      op(cr, 'get_value', 6, ':status'),
      op(cr, 'get_buffer', 4, 0, 100),
      op(cr, 'get_status'),
    ], CLUSTERS);
    const id = host.initHttpContext();
    host.callOnRequestHeaders(id, { ':path': '/' });
    const [call] = host.httpCalls();
    host.clearLogs();
    host.failHttpCall(call!.token, failure);
    const [args] = records(host, cr);
    expect(args!.f).toMatchObject({ token: String(call!.token), headers: '0', body: '0', trailers: '0' });
    const r = drain(host, cr);
    // A failed call has no response: no map (Envoy: BAD_ARGUMENT), no body (NOT_FOUND).
    expect(statuses(r)).toEqual([Status.BAD_ARGUMENT, Status.NOT_FOUND, Status.OK]);
    expect([r[2]!.f.code, value(r[2]!)]).toEqual([code, failure]);
    expect(host.httpCalls()).toEqual([]);
  });

  it('can be made from the root context, and the response comes back to the root', async () => {
    const host = await startProbe([
      op('configure', 'http_call', 'cluster_a', 100, '', ':method', 'GET', ':path', '/boot', ':authority', 'a'),
      op('call_response', 'get_value', 6, ':status'),
    ], CLUSTERS);
    const [call] = host.httpCalls();
    expect(call!.headers).toContainEqual([':path', '/boot']);
    host.clearLogs();
    host.respondToHttpCall(call!.token, { status: 200 });
    const [args] = records(host, 'call_response');
    expect(args!.f.origin).toBe(String(host.plugin.id));
    expect(drain(host).map(value)).toEqual(['200']);
  });
});

describe('proxy_http_call argument checks', () => {
  const base = ['cluster_a', 1000, ''] as const;
  const method = [':method', 'GET'] as const;
  const path = [':path', '/'] as const;
  const authority = [':authority', 'a'] as const;

  it.each([
    { missing: ':authority', headers: [...method, ...path] },
    { missing: ':path', headers: [...method, ...authority] },
    { missing: ':method', headers: [...path, ...authority] },
  ])('answers BAD_ARGUMENT when $missing is missing, and dispatches nothing', async ({ headers }) => {
    const host = await startProbe([op('request_headers', 'http_call', ...base, ...headers)]);
    const id = host.initHttpContext();
    host.callOnRequestHeaders(id, { ':path': '/' });
    const [r] = drain(host);
    expect(r!.s).toBe(Status.BAD_ARGUMENT);
    expect(host.httpCalls()).toEqual([]);
  });

  it('answers BAD_ARGUMENT for an upstream that is not a known cluster', async () => {
    const host = await startProbe(
      [
        op('request_headers', 'http_call', 'unknown', 1000, '', ...method, ...path, ...authority),
        op('request_headers', 'http_call', 'known', 1000, '', ...method, ...path, ...authority),
      ],
      { upstreams: ['known'] },
    );
    const id = host.initHttpContext();
    host.callOnRequestHeaders(id, { ':path': '/' });
    expect(statuses(drain(host))).toEqual([Status.BAD_ARGUMENT, Status.OK]);
    expect(host.httpCalls().map((c) => c.upstream)).toEqual(['known']);
  });
});
