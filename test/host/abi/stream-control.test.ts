/**
 * Stream control (ABI §1, 0.2.x): proxy_send_local_response,
 * proxy_continue_stream, proxy_close_stream, bad stream types, and proxy_done
 * with nothing pending.
 */
import { describe, it, expect } from 'vitest';
import { FilterResult } from '../../../host/testing/emulator.js';
import { Status, drain, op, startProbe, statuses } from './probe.js';

describe('proxy_send_local_response', () => {
  it('records status, details, headers (lower-cased) and body, with the SDK grpc status -1', async () => {
    const host = await startProbe([
      op('request_headers', 'send_local', 403, 'access_denied', 'nope ☕', 'x-why', 'policy', 'X-Upper', 'v', 'x-why', 'again'),
      op('request_headers', 'return', 1),
    ]);
    const id = host.initHttpContext();
    expect(host.callOnRequestHeaders(id, { ':path': '/secret' })).toBe(FilterResult.PAUSE);
    expect(statuses(drain(host))).toEqual([Status.OK]);
    expect(host.localResponse(id)).toEqual({
      status: 403,
      details: 'access_denied',
      headers: [
        ['x-why', 'policy'],
        ['x-upper', 'v'],
        ['x-why', 'again'],
      ],
      body: Buffer.from('nope ☕', 'utf8'),
      grpcStatus: -1,
    });
  });

  it('sends an empty body and no headers', async () => {
    const host = await startProbe([op('response_headers', 'send_local', 502, '', '')]);
    const id = host.initHttpContext();
    host.callOnRequestHeaders(id, { ':path': '/' });
    host.callOnResponseHeaders(id, { ':status': '200' });
    expect(statuses(drain(host))).toEqual([Status.OK]);
    expect(host.localResponse(id)).toEqual({ status: 502, details: '', headers: [], body: Buffer.alloc(0), grpcStatus: -1 });
  });
});

describe('proxy_continue_stream and proxy_close_stream', () => {
  it('resumes and closes the request and response directions', async () => {
    const host = await startProbe([
      op('request_headers', 'return', 1),
      op('request_body', 'continue', 0),
      op('request_body', 'continue', 0),
      op('response_headers', 'continue', 1),
      op('response_body', 'close', 1),
      op('response_body', 'close', 0),
    ]);
    const id = host.initHttpContext();
    expect(host.callOnRequestHeaders(id, { ':path': '/' })).toBe(FilterResult.PAUSE);
    expect(host.streamControl(id)).toEqual({ continued: { request: 0, response: 0 }, closed: { request: false, response: false } });
    host.callOnRequestBody(id, 'x', true);
    host.callOnResponseHeaders(id, { ':status': '200' });
    host.callOnResponseBody(id, 'y', true);
    expect(statuses(drain(host))).toEqual([Status.OK, Status.OK, Status.OK, Status.OK, Status.OK]);
    expect(host.streamControl(id)).toEqual({ continued: { request: 2, response: 1 }, closed: { request: true, response: true } });
  });

  it('answers BAD_ARGUMENT for a stream type beyond the ABI', async () => {
    const host = await startProbe([
      op('request_headers', 'continue', 4),
      op('request_headers', 'close', 4),
      op('request_headers', 'continue', 0xffffffff),
      op('request_headers', 'close', 77),
    ]);
    const id = host.initHttpContext();
    host.callOnRequestHeaders(id, { ':path': '/' });
    expect(statuses(drain(host))).toEqual([Status.BAD_ARGUMENT, Status.BAD_ARGUMENT, Status.BAD_ARGUMENT, Status.BAD_ARGUMENT]);
    expect(host.streamControl(id)).toEqual({ continued: { request: 0, response: 0 }, closed: { request: false, response: false } });
  });

  it('answers the network streams and a root context as Envoy does: no-op OK, continuing upstream UNIMPLEMENTED', async () => {
    const host = await startProbe([
      op('request_headers', 'continue', 2),
      op('request_headers', 'continue', 3),
      op('request_headers', 'close', 2),
      op('request_headers', 'close', 3),
      op('tick', 'continue', 0),
      op('tick', 'close', 1),
      op('tick', 'continue', 3),
      op('tick', 'continue', 4),
      op('tick', 'send_local', 403, 'x', 'y'),
    ]);
    const id = host.initHttpContext();
    host.callOnRequestHeaders(id, { ':path': '/' });
    expect(statuses(drain(host))).toEqual([Status.OK, Status.UNIMPLEMENTED, Status.OK, Status.OK]);
    expect(host.streamControl(id)).toEqual({ continued: { request: 0, response: 0 }, closed: { request: false, response: false } });
    host.plugin.tick();
    expect(statuses(drain(host, 'tick'))).toEqual([Status.OK, Status.OK, Status.UNIMPLEMENTED, Status.BAD_ARGUMENT, Status.OK]);
  });
});

describe('proxy_done', () => {
  it('answers NOT_FOUND when nothing is pending, from a root or a stream context', async () => {
    const host = await startProbe([op('configure', 'done'), op('request_headers', 'done'), op('tick', 'done')]);
    expect(statuses(drain(host, 'configure'))).toEqual([Status.NOT_FOUND]);
    const id = host.initHttpContext();
    host.callOnRequestHeaders(id, { ':path': '/' });
    expect(statuses(drain(host))).toEqual([Status.NOT_FOUND]);
  });
});
