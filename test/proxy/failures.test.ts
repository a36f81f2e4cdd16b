import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Gateway } from '../../host/proxy/gateway.js';
import { PluginStartError } from '../../host/errors.js';
import { memoryLogger, send, startGateway, testConfig, type TestGateway } from '../helpers/gateway.js';
import { fixture } from '../helpers/paths.js';
import { closedPort, startUpstream, type Upstream } from '../helpers/upstream.js';

let upstream: Upstream;
let gw: TestGateway;

const filter = (name: string, configuration: Record<string, unknown>, failure_policy?: string) => ({
  name,
  wasm: fixture('proxy-filter'),
  configuration,
  ...(failure_policy ? { failure_policy } : {}),
});

beforeAll(async () => {
  upstream = await startUpstream();
  const dead = await closedPort();
  gw = await startGateway({
    services: [
      { name: 'echo', url: upstream.url },
      { name: 'refused', url: `http://127.0.0.1:${dead}` },
      { name: 'slow', url: upstream.url, read_timeout_ms: 200 },
    ],
    routes: [
      {
        name: 'r-open',
        service: 'echo',
        paths: ['/open'],
        plugins: [filter('f-open', { trap: 'request_headers' }, 'fail_open'), filter('f-open-next', { request_header: 'x-next-ran' })],
      },
      { name: 'r-closed', service: 'echo', paths: ['/closed'], plugins: [filter('f-closed', { trap: 'request_headers', trap_header: 'x-trap', log: true, name: 'C' }, 'fail_closed')] },
      { name: 'r-reload', service: 'echo', paths: ['/reload'], plugins: [filter('f-reload', { trap: 'request_headers', trap_header: 'x-trap', request_header: 'x-alive' }, 'reload')] },
      { name: 'r-resp-trap', service: 'echo', paths: ['/resptrap'], plugins: [filter('f-resp-trap', { trap: 'response_headers' })] },
      { name: 'r-refused', service: 'refused', paths: ['/refused'], plugins: [filter('f-refused-log', { log: true, name: 'R' })] },
      { name: 'r-refused-direct', service: 'refused', paths: ['/direct-refused'] },
      { name: 'r-slow', service: 'slow', paths: ['/slow'] },
      { name: 'r-slow-filter', service: 'slow', paths: ['/fslow'], plugins: [filter('f-slow-log', { log: true, name: 'T', response_header: 'x-seen', set_path: '/slow?ms=3000' })] },
    ],
  });
});

afterAll(async () => {
  await gw?.close();
  await upstream?.close();
});

describe('filter failures', () => {
  it('fail_open: a trapping filter is skipped and the rest of the chain runs', async () => {
    for (let i = 0; i < 2; i++) {
      const r = await send(gw.url + '/open');
      expect(r.status).toBe(200);
      expect(r.json().headers['x-next-ran']).toBe('1');
    }
    expect(gw.gateway.metricsText()).toMatch(/hookwire_filter_traps_total\{plugin="f-open"\} 1/);
  });

  it('fail_closed: a trap answers 503 JSON, and the plugin keeps refusing', async () => {
    expect((await send(gw.url + '/closed')).status).toBe(200);
    const r = await send(gw.url + '/closed', { headers: { 'x-trap': '1' } });
    expect(r.status).toBe(503);
    expect(r.json().message).toContain('f-closed');
    expect(typeof r.json().request_id).toBe('string');
    const again = await send(gw.url + '/closed');
    expect(again.status).toBe(503);
    expect(gw.lines.some((l) => l.msg === 'plugin unavailable, request refused (failure policy)')).toBe(true);
  });

  it('reload: a trap answers 503, then a fresh VM serves the next request', async () => {
    const r = await send(gw.url + '/reload', { headers: { 'x-trap': '1' } });
    expect(r.status).toBe(503);
    const next = await send(gw.url + '/reload');
    expect(next.status).toBe(200);
    expect(next.json().headers['x-alive']).toBe('1');
    expect(gw.gateway.metricsText()).toMatch(/hookwire_vm_restarts_total\{vm_id="f-reload",result="ok"\} 1/);
  });

  it('a trap in a response phase replaces the response with 503', async () => {
    const r = await send(gw.url + '/resptrap');
    expect(r.status).toBe(503);
  });
});

describe('upstream failures', () => {
  it('answers 502 JSON when the upstream refuses the connection, logs it, and still runs on_log', async () => {
    for (const path of ['/refused', '/direct-refused']) {
      const r = await send(gw.url + path, { headers: { 'x-request-id': `rid${path}` } });
      expect(r.status).toBe(502);
      expect(r.json()).toEqual({ message: 'The upstream server could not be reached', request_id: `rid${path}` });
      expect(gw.lines.some((l) => l.msg === 'upstream request failed' && l.request_id === `rid${path}`)).toBe(true);
    }
    expect(gw.lines.some((l) => /^log R status=502 id=rid\/refused/.test(l.msg))).toBe(true);
    expect(gw.gateway.metricsText()).toMatch(/hookwire_upstream_errors_total\{service="refused",kind="refused"\} 2/);
  });

  it('answers 502 JSON to a request with a body too', async () => {
    for (const path of ['/refused', '/direct-refused']) {
      const r = await send(gw.url + path, { method: 'POST', body: 'z'.repeat(100_000) });
      expect(r.status).toBe(502);
      expect(r.json().message).toBe('The upstream server could not be reached');
    }
  });

  it('answers 504 JSON when the upstream is slower than read_timeout_ms', async () => {
    const r = await send(gw.url + '/slow?ms=3000');
    expect(r.status).toBe(504);
    expect(r.json().message).toBe('The upstream server is timing out');
    const f = await send(gw.url + '/fslow');
    expect(f.status).toBe(504);
    expect(f.headers['x-seen']).toBe('1'); // the local reply went through the response phases
    expect(gw.lines.some((l) => /^log T status=504/.test(l.msg))).toBe(true);
  });
});

describe('plugin start failures', () => {
  it('refuses to start when a plugin rejects its configuration', async () => {
    const { logger } = memoryLogger();
    const config = testConfig({
      services: [{ name: 's', url: upstream.url }],
      routes: [{ name: 'r', service: 's', plugins: [filter('refuser', { refuse: true })] }],
    });
    await expect(Gateway.start(config, { logger })).rejects.toBeInstanceOf(PluginStartError);
  });
});
