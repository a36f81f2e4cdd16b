import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawRequest, startGateway, send, type TestGateway } from '../helpers/gateway.js';
import { startUpstream, type Upstream, type Echo } from '../helpers/upstream.js';

let upstream: Upstream;
let gw: TestGateway;

beforeAll(async () => {
  upstream = await startUpstream();
  const svc = (name: string, path: string) => ({ name, url: `${upstream.url}${path}` });
  gw = await startGateway({
    services: [svc('exact', '/exact'), svc('wild', '/wild'), svc('long', '/long'), svc('short', '/short'), svc('post', '/post'), svc('any', '/any'), svc('root', '')],
    routes: [
      { name: 'r-exact', service: 'exact', hosts: ['api.example.com'], paths: ['/'] },
      { name: 'r-wild', service: 'wild', hosts: ['*.example.com'], paths: ['/'] },
      { name: 'r-long', service: 'long', paths: ['/api/v1'], strip_path: true },
      { name: 'r-short', service: 'short', paths: ['/api'] },
      { name: 'r-post', service: 'post', paths: ['/submit'], methods: ['POST'] },
      { name: 'r-any', service: 'any', paths: ['/submit'] },
      { name: 'r-root', service: 'root', hosts: ['root.test'] },
    ],
  });
});

afterAll(async () => {
  await gw?.close();
  await upstream?.close();
});

async function via(path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Echo> {
  const r = await send(gw.url + path, { headers, method, body: method === 'POST' ? 'x' : undefined });
  expect(r.status).toBe(200);
  return r.json<Echo>();
}

describe('routing', () => {
  it('matches an exact host before a wildcard, with or without a port', async () => {
    expect((await via('/x', { host: 'api.example.com' })).url).toBe('/exact/x');
    expect((await via('/x', { host: 'API.Example.com:8000' })).url).toBe('/exact/x');
  });

  it('matches wildcard hosts on one or more labels, not the bare domain', async () => {
    expect((await via('/x', { host: 'foo.example.com' })).url).toBe('/wild/x');
    expect((await via('/x', { host: 'a.b.example.com' })).url).toBe('/wild/x');
    const r = await send(gw.url + '/x', { headers: { host: 'example.com' } });
    expect(r.status).toBe(404);
  });

  it('lets the longest path prefix win and strips it when strip_path is on (Kong)', async () => {
    expect((await via('/api/v1/users?x=1')).url).toBe('/long/users?x=1');
    expect((await via('/api/v1')).url).toBe('/long');
    expect((await via('/api/v2/users')).url).toBe('/short/api/v2/users');
  });

  it('matches methods, preferring routes that list them', async () => {
    expect((await via('/submit', {}, 'POST')).url).toBe('/post/submit');
    expect((await via('/submit', {}, 'GET')).url).toBe('/any/submit');
  });

  it('routes with no paths match every path of their host', async () => {
    expect((await via('/deep/path?q', { host: 'root.test' })).url).toBe('/deep/path?q');
  });

  it('answers 404 with Kong\'s JSON body when no route matches', async () => {
    const r = await send(gw.url + '/nothing');
    expect(r.status).toBe(404);
    expect(r.headers['content-type']).toMatch(/^application\/json/);
    const body = r.json();
    expect(body.message).toBe('no Route matched with those values');
    expect(typeof body.request_id).toBe('string');
  });

  it('sends the service host, forwarding headers and a request id upstream, and drops hop-by-hop headers', async () => {
    const raw = await rawRequest(
      gw.url,
      'GET /api/x HTTP/1.1\r\nHost: client.test\r\nConnection: close, X-Secret\r\nX-Secret: hop\r\nTE: trailers\r\n' +
        'X-Kept: yes\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n',
    );
    expect(raw).toMatch(/^HTTP\/1.1 200/);
    const echo = JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)) as Echo;
    expect(echo.headers.host).toBe(`127.0.0.1:${upstream.port}`);
    expect(echo.headers['x-forwarded-host']).toBe('client.test');
    expect(echo.headers['x-forwarded-proto']).toBe('http');
    expect(echo.headers['x-forwarded-for']).toBe('10.0.0.1, 127.0.0.1');
    expect(echo.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(echo.headers['x-kept']).toBe('yes');
    expect(echo.headers['x-secret']).toBeUndefined();
    expect(echo.headers.te).toBe('trailers'); // the one TE forwarded, as Envoy does (gRPC needs it)
  });

  it('keeps a request id the client sent', async () => {
    expect((await via('/api/x', { 'x-request-id': 'abc-123' })).headers['x-request-id']).toBe('abc-123');
  });

  it('streams request and response bodies of routes without plugins', async () => {
    const body = 'y'.repeat(300_000);
    const r = await send(gw.url + '/api/upload', { method: 'POST', body });
    expect(r.status).toBe(200);
    expect(r.json<Echo>().body.length).toBe(300_000);
    const big = await send(gw.url + '/big?bytes=2000000', { headers: { host: 'root.test' } });
    expect(big.status).toBe(200);
    expect(big.text.length).toBe(2_000_000);
    const empty = await send(gw.url + '/status/204', { headers: { host: 'root.test' } });
    expect(empty.status).toBe(204);
    expect(empty.headers['x-upstream']).toBe('yes');
    const trailers = await send(gw.url + '/trailers', { headers: { host: 'root.test' } });
    expect(trailers.text).toBe('with trailers');
    expect(trailers.trailers['x-trailer']).toBe('trailer-value');
  });
});
