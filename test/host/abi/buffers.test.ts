/**
 * Buffers (ABI §1, §3): request/response bodies arriving in chunks,
 * get_buffer_bytes windows, Envoy's set_buffer_bytes rules, get_buffer_status,
 * the plugin configuration buffer, and buffer types that do not exist.
 */
import { describe, it, expect } from 'vitest';
import { FilterResult } from '../../../host/testing/emulator.js';
import { Status, drain, op, records, startProbe, statuses, value } from './probe.js';

const BODIES = [
  { buf: 0, name: 'request body', phase: 'request_body' },
  { buf: 1, name: 'response body', phase: 'response_body' },
] as const;

describe.each(BODIES)('buffer $buf ($name)', ({ buf, phase }) => {
  async function stream(script: string[]) {
    const host = await startProbe(script);
    const id = host.initHttpContext();
    host.callOnRequestHeaders(id, { ':path': '/', ':method': 'POST' });
    return { host, id };
  }

  function body(host: Awaited<ReturnType<typeof stream>>['host'], id: number, chunk: string, eos: boolean) {
    return buf === 0 ? host.callOnRequestBody(id, chunk, eos) : host.callOnResponseBody(id, chunk, eos);
  }

  function current(host: Awaited<ReturnType<typeof stream>>['host'], id: number) {
    return (buf === 0 ? host.currentRequestBody(id) : host.currentResponseBody(id)).toString('utf8');
  }

  it('shows the buffered body in chunks, with its size; flags are 0 as in Envoy (end of stream is the callback argument)', async () => {
    const { host, id } = await stream([op(phase, 'buffer_status', buf), op(phase, 'get_buffer', buf, 0, 1000), op(phase, 'return', 1)]);
    if (buf === 1) host.callOnResponseHeaders(id, { ':status': '200' });
    host.clearLogs();

    expect(body(host, id, 'hello ', false)).toBe(FilterResult.PAUSE);
    const [args1] = records(host, phase).filter((r) => r.op === 'args');
    expect([args1!.f.a, args1!.f.eos]).toEqual(['6', '0']);
    let [status, bytes] = drain(host, phase);
    expect([status!.s, status!.f.len, status!.f.flags]).toEqual([Status.OK, '6', '0']);
    expect(value(bytes!)).toBe('hello ');

    expect(body(host, id, 'world', true)).toBe(FilterResult.PAUSE);
    const [args2] = records(host, phase).filter((r) => r.op === 'args');
    // The callback's size argument is the whole buffered body, not the chunk.
    expect([args2!.f.a, args2!.f.eos]).toEqual(['11', '1']);
    [status, bytes] = drain(host, phase);
    expect([status!.s, status!.f.len, status!.f.flags]).toEqual([Status.OK, '11', '0']);
    expect(value(bytes!)).toBe('hello world');
  });

  it('reads start/max windows of the body', async () => {
    const { host, id } = await stream([
      op(phase, 'get_buffer', buf, 6, 5),
      op(phase, 'get_buffer', buf, 0, 5),
      op(phase, 'get_buffer', buf, 6, 100),
      op(phase, 'get_buffer', buf, 3, 0),
      op(phase, 'get_buffer', buf, 11, 10),
      op(phase, 'get_buffer', buf, 12, 1),
    ]);
    if (buf === 1) host.callOnResponseHeaders(id, { ':status': '200' });
    host.clearLogs();
    body(host, id, 'hello world', true);
    const r = drain(host, phase);
    // A start past the end reads nothing, OK (Envoy's proxy-wasm-cpp-host never over-reads).
    expect(statuses(r)).toEqual([Status.OK, Status.OK, Status.OK, Status.OK, Status.OK, Status.OK]);
    expect(value(r[0]!)).toBe('world');
    expect(value(r[1]!)).toBe('hello');
    expect(value(r[2]!)).toBe('world'); // max past the end is clamped
    // An empty window (max 0, or start at the end) is written as ptr 0 / len 0.
    expect([r[3]!.f.p, r[3]!.f.n]).toEqual(['0', '0']);
    expect([r[4]!.f.p, r[4]!.f.n]).toEqual(['0', '0']);
    expect([r[5]!.f.p, r[5]!.f.n]).toEqual(['0', '0']);
  });

  it("applies Envoy's set_buffer_bytes rules", async () => {
    const get = op(phase, 'get_buffer', buf, 0, 100);
    const { host, id } = await stream([
      op(phase, 'set_buffer', buf, 0, 0, '>>'), // (0, 0): prepend
      get,
      op(phase, 'set_buffer', buf, 0, 2, '<<'), // start 0 + length n: replace the first n bytes
      get,
      op(phase, 'set_buffer', buf, 13, 0, '!'), // start == size: append
      get,
      op(phase, 'set_buffer', buf, 1000, 7, '?'), // start > size: append (length ignored)
      get,
      op(phase, 'set_buffer', buf, 3, 0, 'x'), // inside the body: BAD_ARGUMENT
      op(phase, 'set_buffer', buf, 1, 1, 'x'),
      get,
      op(phase, 'set_buffer', buf, 0, 15, 'new'), // start 0 + the whole length: replace everything
      get,
    ]);
    if (buf === 1) host.callOnResponseHeaders(id, { ':status': '200' });
    host.clearLogs();
    body(host, id, 'hello world', true);
    const r = drain(host, phase);
    expect(statuses(r)).toEqual([0, 0, 0, 0, 0, 0, 0, 0, Status.BAD_ARGUMENT, Status.BAD_ARGUMENT, 0, 0, 0]);
    expect([r[1], r[3], r[5], r[7], r[10], r[12]].map((x) => value(x!))).toEqual([
      '>>hello world',
      '<<hello world',
      '<<hello world!',
      '<<hello world!?',
      '<<hello world!?',
      'new',
    ]);
    // The stream owner sees the rewritten body.
    expect(current(host, id)).toBe('new');
  });
});

describe('configuration buffer and unknown buffers', () => {
  it('makes the plugin configuration readable (and immutable) in on_configure only', async () => {
    const script = [
      op('configure', 'get_buffer', 7, 0, 9),
      op('configure', 'buffer_status', 7),
      op('configure', 'set_buffer', 7, 0, 0, 'x'),
      op('request_headers', 'get_buffer', 7, 0, 10),
      op('request_headers', 'buffer_status', 7),
    ];
    const config = Buffer.from(script.join('\n'), 'utf8');
    const host = await startProbe(script);
    const [cfg] = records(host, 'configure').filter((r) => r.op === 'config');
    // The probe read the whole configuration with one get_buffer_bytes(7, 0, size).
    expect([cfg!.s, Number(cfg!.f.size), Buffer.from(cfg!.f.hex!, 'hex')]).toEqual([Status.OK, config.length, config]);
    const r = drain(host, 'configure');
    expect(statuses(r)).toEqual([Status.OK, Status.OK, Status.BAD_ARGUMENT]);
    expect(value(r[0]!)).toBe(config.subarray(0, 9).toString());
    expect(Number(r[1]!.f.len)).toBe(config.length);

    const id = host.initHttpContext();
    host.callOnRequestHeaders(id, { ':path': '/' });
    expect(statuses(drain(host))).toEqual([Status.NOT_FOUND, Status.NOT_FOUND]);
  });

  it('answers NOT_FOUND for a buffer the context does not have, BAD_ARGUMENT past the last type', async () => {
    const host = await startProbe([
      op('request_headers', 'get_buffer', 4, 0, 10), // http call response body, outside a call response
      op('request_headers', 'buffer_status', 4),
      op('request_headers', 'get_buffer', 9, 0, 10),
      op('request_headers', 'buffer_status', 42),
      op('request_headers', 'set_buffer', 9, 0, 0, 'x'),
    ]);
    const id = host.initHttpContext();
    host.callOnRequestHeaders(id, { ':path': '/' });
    expect(statuses(drain(host))).toEqual([Status.NOT_FOUND, Status.NOT_FOUND, Status.BAD_ARGUMENT, Status.BAD_ARGUMENT, Status.BAD_ARGUMENT]);
  });
});
