import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send, startGateway, until, type TestGateway } from '../helpers/gateway.js';
import { fixture, plugin } from '../helpers/paths.js';
import { closedPort, startUpstream, type Echo, type Upstream } from '../helpers/upstream.js';

let upstream: Upstream;
let gw: TestGateway;

const filter = (name: string, configuration: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  name,
  wasm: fixture('proxy-filter'),
  configuration,
  ...extra,
});

beforeAll(async () => {
  upstream = await startUpstream();
  const dead = await closedPort();
  gw = await startGateway({
    // A literal host:port reaches proxy_http_call only when listed.
    wasm: { http_call_targets: [`127.0.0.1:${upstream.port}`] },
    services: [
      { name: 'echo', url: upstream.url },
      { name: 'authsvc', url: upstream.url },
      { name: 'nowhere', url: `http://127.0.0.1:${dead}`, connect_timeout_ms: 500 },
    ],
    routes: [
      {
        name: 'r-headers',
        service: 'echo',
        paths: ['/headers'],
        plugins: [
          filter('f-a', { name: 'A', request_header: 'x-from-a', response_header: 'x-resp-a' }),
          filter('f-b', { name: 'B', request_header: 'x-from-b', response_header: 'x-resp-b', set_path: '/rewritten?by=b' }),
        ],
      },
      { name: 'r-hello', service: 'echo', paths: ['/hello'], plugins: [{ name: 'hello', wasm: plugin('hello-world'), configuration: { header: 'x-hello-test', value: 'hi' } }] },
      {
        name: 'r-deny',
        service: 'echo',
        paths: ['/deny'],
        plugins: [
          filter('f-deny', { name: 'D', deny_header: 'x-deny', log: true }),
          filter('f-after', { name: 'L', response_header: 'x-after-local', log: true }),
        ],
      },
      { name: 'r-call', service: 'echo', paths: ['/call'], plugins: [filter('f-call', { call_cluster: 'authsvc', call_path: '/status/201' })] },
      { name: 'r-call-fail', service: 'echo', paths: ['/callfail'], plugins: [filter('f-call-fail', { call_cluster: 'nowhere', call_path: '/' })] },
      {
        name: 'r-call-literal',
        service: 'echo',
        paths: ['/callliteral'],
        plugins: [filter('f-call-literal', { call_cluster: `127.0.0.1:${upstream.port}`, call_path: '/literal' })],
      },
      { name: 'r-status', service: 'echo', paths: ['/status'], plugins: [filter('f-status', { set_status: '299' })] },
      { name: 'r-close', service: 'echo', paths: ['/close'], plugins: [filter('f-close', { close_header: 'x-close', log: true })] },
      {
        name: 'r-props',
        service: 'echo',
        paths: ['/props'],
        plugins: [
          filter('f-props', {
            props: [
              'request.path',
              'request.url_path',
              'request.query',
              'request.method',
              'request.host',
              'request.id',
              'request.protocol',
              'request.headers.x-custom',
              'request.useragent',
              'source.address',
              'upstream.address',
              'response.code_details',
              'xds.route_name',
              'xds.cluster_name',
              'hookwire.route_name',
              'hookwire.service_name',
              'hookwire.workspace_name',
              'hookwire.route_id',
              'plugin_name',
            ],
            int_props: ['response.code', 'source.port', 'destination.port', 'request.time', 'request.size', 'connection.id'],
          }),
        ],
      },
    ],
  });
});

afterAll(async () => {
  await gw?.close();
  await upstream?.close();
});

describe('filter chain', () => {
  it('applies header changes in both directions: request phases in order, response phases in reverse', async () => {
    const r = await send(gw.url + '/headers/x');
    expect(r.status).toBe(200);
    const echo = r.json<Echo>();
    expect(echo.headers['x-from-a']).toBe('1');
    expect(echo.headers['x-from-b']).toBe('1');
    expect(echo.headers['x-chain']).toBe('A,B');
    expect(echo.url).toBe('/rewritten?by=b');
    expect(r.headers['x-resp-a']).toBe('1');
    expect(r.headers['x-resp-b']).toBe('1');
    expect(r.headers['x-resp-chain']).toBe('B,A');
    expect(r.headers['x-upstream']).toBe('yes');
  });

  it('runs the hello-world plugin', async () => {
    const r = await send(gw.url + '/hello');
    expect(r.status).toBe(200);
    expect(r.headers['x-hello-test']).toBe('hi');
    expect(gw.lines.some((l) => l.plugin === 'hello' && /hello-world: GET \/hello -> 200/.test(l.msg))).toBe(true);
  });

  it('short-circuits with send_local_response, still running the response phases and on_log', async () => {
    const before = upstream.received.length;
    const r = await send(gw.url + '/deny', { headers: { 'x-deny': '1' } });
    expect(r.status).toBe(403);
    expect(r.text).toBe('denied by D');
    expect(r.headers['x-denied-by']).toBe('D');
    expect(r.headers['content-type']).toBe('text/plain');
    expect(r.headers['x-after-local']).toBe('1');
    expect(upstream.received.length).toBe(before);
    const logs = gw.lines.filter((l) => /^log [DL] status=403 /.test(l.msg)).map((l) => l.msg);
    expect(logs.length).toBe(2);
    expect(logs[0]).toMatch(/route=r-deny$/);
    // Without the header the request goes through.
    expect((await send(gw.url + '/deny')).status).toBe(200);
  });

  it('holds a request paused in request headers until the filter continues it after an http call', async () => {
    const r = await send(gw.url + '/call');
    expect(r.status).toBe(200);
    const echo = r.json<Echo>();
    expect(echo.headers['x-call-status']).toBe('201');
    expect(JSON.parse(echo.headers['x-call-body']!).url).toBe('/status/201');
  });

  it('gives the filter a failed call when the cluster cannot be reached', async () => {
    const r = await send(gw.url + '/callfail');
    expect(r.status).toBe(200);
    expect(r.json<Echo>().headers['x-call-status']).toBe('failed');
  });

  it('accepts a literal host:port upstream listed in wasm.http_call_targets (non-strict mode)', async () => {
    const r = await send(gw.url + '/callliteral');
    expect(r.json<Echo>().headers['x-call-status']).toBe('200');
  });

  it('lets a filter change the response status', async () => {
    expect((await send(gw.url + '/status')).status).toBe(299);
  });

  it('resets the stream on close_stream, and still runs on_log', async () => {
    await expect(send(gw.url + '/close', { headers: { 'x-close': '1', 'x-request-id': 'closed-1' } })).rejects.toThrow();
    // on_log ran for the reset stream (no response: no :status).
    await until(() => gw.lines.some((l) => l.plugin === 'f-close' && / id=closed-1 route=r-close$/.test(l.msg)));
    expect((await send(gw.url + '/close', { headers: { 'x-request-id': 'open-1' } })).status).toBe(200);
    await until(() => gw.lines.some((l) => l.plugin === 'f-close' && /status=200 id=open-1 route=r-close$/.test(l.msg)));
  });

  it('answers properties of the live request', async () => {
    const r = await send(gw.url + '/props/a?b=c', { headers: { 'x-custom': 'custom-value', 'user-agent': 'ua/1', 'x-request-id': 'rid-1' } });
    expect(r.status).toBe(200);
    const p = (name: string) => r.headers[`x-prop-${name.replaceAll('.', '-')}`];
    expect(p('request.path')).toBe('/props/a?b=c');
    expect(p('request.url_path')).toBe('/props/a');
    expect(p('request.query')).toBe('b=c');
    expect(p('request.method')).toBe('GET');
    expect(p('request.host')).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(p('request.id')).toBe('rid-1');
    expect(p('request.protocol')).toBe('HTTP/1.1');
    expect(p('request.headers.x-custom')).toBe('custom-value');
    expect(p('request.useragent')).toBe('ua/1');
    expect(p('source.address')).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(p('upstream.address')).toBe(`127.0.0.1:${upstream.port}`);
    expect(p('response.code_details')).toBe('via_upstream');
    expect(p('xds.route_name')).toBe('r-props');
    expect(p('xds.cluster_name')).toBe('echo');
    expect(p('hookwire.route_name')).toBe('r-props');
    expect(p('hookwire.service_name')).toBe('echo');
    expect(p('hookwire.workspace_name')).toBe('default');
    expect(p('hookwire.route_id')).toMatch(/^[0-9a-f-]{36}$/);
    expect(p('plugin_name')).toBe('f-props');
    expect(p('response.code')).toBe('200');
    expect(Number(p('source.port'))).toBeGreaterThan(0);
    expect(p('destination.port')).toBe(String(new URL(gw.url).port));
    const ns = BigInt(p('request.time') as string);
    expect(Number(ns / 1_000_000n)).toBeGreaterThan(Date.now() - 60_000);
    expect(p('request.size')).toBe('0');
    expect(Number(p('connection.id'))).toBeGreaterThan(0);
  });
});
