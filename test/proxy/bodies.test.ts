import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawRequest, send, startGateway, type TestGateway } from '../helpers/gateway.js';
import { fixture } from '../helpers/paths.js';
import { startUpstream, type Echo, type Upstream } from '../helpers/upstream.js';

let upstream: Upstream;
let gw: TestGateway;
const LIMIT = 64 * 1024;

const filter = (name: string, configuration: Record<string, unknown>) => ({ name, wasm: fixture('proxy-filter'), configuration });

beforeAll(async () => {
  upstream = await startUpstream();
  gw = await startGateway({
    proxy: { request_body_buffer_limit: LIMIT, response_body_buffer_limit: LIMIT },
    services: [{ name: 'echo', url: upstream.url }],
    routes: [
      { name: 'r-breq', service: 'echo', paths: ['/breq'], plugins: [filter('f-breq', { buffer_request: true, log: true, name: 'BQ' })] },
      { name: 'r-bresp', service: 'echo', paths: ['/big', '/chunks'], plugins: [filter('f-bresp', { buffer_response: true })] },
      { name: 'r-stream', service: 'echo', paths: ['/stream'], plugins: [filter('f-stream', { name: 'S' })] },
      { name: 'r-stream-resp', service: 'echo', hosts: ['stream.test'], plugins: [filter('f-stream-resp', { name: 'SR' })] },
      { name: 'r-call-body', service: 'echo', paths: ['/callbody'], plugins: [filter('f-call-body', { call_cluster: 'echo', call_path: '/slow?ms=50' })] },
    ],
  });
});

afterAll(async () => {
  await gw?.close();
  await upstream?.close();
});

describe('bodies', () => {
  it('buffers a request body for a filter that pauses in on_request_body and sends what it made of it', async () => {
    const r = await send(gw.url + '/breq', { method: 'POST', body: 'hello' });
    expect(r.status).toBe(200);
    const echo = r.json<Echo>();
    expect(echo.body).toBe('[hello]');
    expect(echo.headers['content-length']).toBe('7');
  });

  it('buffers a body that arrives in many chunks, within the limit', async () => {
    const body = 'b'.repeat(LIMIT - 10);
    const r = await send(gw.url + '/breq', { method: 'POST', body });
    expect(r.status).toBe(200);
    expect(r.json<Echo>().body).toBe(`[${body}]`);
  });

  it('answers 413 with a JSON reason when the buffered request body exceeds the limit', async () => {
    const before = upstream.received.length;
    const r = await send(gw.url + '/breq', { method: 'POST', body: 'c'.repeat(LIMIT * 3) });
    expect(r.status).toBe(413);
    const body = r.json();
    expect(body.message).toContain('request_body_buffer_limit');
    expect(body.message).toContain(String(LIMIT));
    expect(typeof body.request_id).toBe('string');
    expect(upstream.received.length).toBe(before);
    // The log phase ran and saw the 413.
    expect(gw.lines.some((l) => /^log BQ status=413/.test(l.msg))).toBe(true);
  });

  it('buffers a response body for a filter that pauses in on_response_body, fixing Content-Length', async () => {
    const r = await send(gw.url + '/big?bytes=1000');
    expect(r.status).toBe(200);
    expect(r.text).toBe(`<${'x'.repeat(1000)}>`);
    expect(r.headers['content-length']).toBe('1002');
    const c = await send(gw.url + '/chunks?n=4&ms=5');
    expect(c.text).toBe('<chunk-0\nchunk-1\nchunk-2\nchunk-3\n>');
  });

  it('answers 502 with a JSON reason when the buffered response body exceeds the limit', async () => {
    const r = await send(gw.url + '/big?bytes=' + LIMIT * 4);
    expect(r.status).toBe(502);
    expect(r.json().message).toContain('response_body_buffer_limit');
  });

  it('streams bodies through filters that do not pause, whatever their size', async () => {
    const body = 'd'.repeat(LIMIT * 8);
    const r = await send(gw.url + '/stream', { method: 'POST', body });
    expect(r.status).toBe(200);
    expect(r.json<Echo>().body.length).toBe(body.length);
    const big = await send(gw.url + '/big?bytes=' + LIMIT * 8, { headers: { host: 'stream.test' } });
    expect(big.status).toBe(200);
    expect(big.text.length).toBe(LIMIT * 8);
    expect(big.headers['x-resp-chain']).toBe('SR');
  });

  it('streams a chunked request through a filter', async () => {
    const raw = await rawRequest(
      gw.url,
      'POST /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n',
      '5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n',
    );
    expect(raw).toMatch(/^HTTP\/1.1 200/);
    expect(raw).toContain('"body":"hello world"');
  });

  it('holds the request body while the request is paused in its headers, then delivers it', async () => {
    const r = await send(gw.url + '/callbody', { method: 'POST', body: 'held body' });
    expect(r.status).toBe(200);
    const echo = r.json<Echo>();
    expect(echo.headers['x-call-status']).toBe('200');
    expect(echo.body).toBe('held body');
  });

  it('keeps the framing of HEAD requests and bodiless statuses', async () => {
    const head = await send(gw.url + '/big?bytes=10', { method: 'HEAD', headers: { host: 'stream.test' } });
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe('10');
    expect(head.text).toBe('');
    const noContent = await send(gw.url + '/status/204', { headers: { host: 'stream.test' } });
    expect(noContent.status).toBe(204);
    expect(noContent.text).toBe('');
    const buffered = await send(gw.url + '/big?bytes=10', { method: 'HEAD' });
    expect(buffered.status).toBe(200);
    expect(buffered.headers['content-length']).toBe('10');
  });

  it('passes response trailers through the response phases to the client', async () => {
    const r = await send(gw.url + '/trailers', { headers: { host: 'stream.test' } });
    expect(r.status).toBe(200);
    expect(r.text).toBe('with trailers');
    expect(r.trailers['x-trailer']).toBe('trailer-value');
  });
});
