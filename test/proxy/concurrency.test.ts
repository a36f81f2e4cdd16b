import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from 'undici';
import { send, startGateway, until, type TestGateway } from '../helpers/gateway.js';
import { fixture } from '../helpers/paths.js';
import { startUpstream, type Echo, type Upstream } from '../helpers/upstream.js';

let upstream: Upstream;
let gw: TestGateway;
let agent: Agent;

beforeAll(async () => {
  upstream = await startUpstream();
  agent = new Agent({ connections: 400 });
  gw = await startGateway({
    services: [{ name: 'echo', url: upstream.url }],
    routes: [
      { name: 'r-direct', service: 'echo', paths: ['/direct'] },
      { name: 'r-filter', service: 'echo', paths: ['/filter'], plugins: [{ name: 'f-hdr', wasm: fixture('proxy-filter'), configuration: { name: 'H', request_header: 'x-filtered' } }] },
      {
        name: 'r-paused',
        service: 'echo',
        paths: ['/paused'],
        plugins: [
          { name: 'f-call', wasm: fixture('proxy-filter'), configuration: { call_cluster: 'echo', call_path: '/slow?ms=20' } },
          { name: 'f-body', wasm: fixture('proxy-filter'), configuration: { buffer_request: true } },
        ],
      },
    ],
  });
});

afterAll(async () => {
  await gw?.close();
  await agent?.close();
  await upstream?.close();
});

describe('concurrency', () => {
  it('answers 300 concurrent requests, each with its own response', async () => {
    const N = 300;
    const kinds = ['direct', 'filter', 'paused'] as const;
    const results = await Promise.all(
      Array.from({ length: N }, (_, i) => {
        const kind = kinds[i % 3]!;
        const id = `req-${i}`;
        return send(`${gw.url}/${kind}/${i}`, {
          method: kind === 'paused' ? 'POST' : 'GET',
          headers: { 'x-request-id': id },
          body: kind === 'paused' ? `body-${i}` : undefined,
          dispatcher: agent,
        }).then((r) => ({ r, i, kind, id }));
      }),
    );
    for (const { r, i, kind, id } of results) {
      expect(r.status).toBe(200);
      const echo = r.json<Echo>();
      expect(echo.headers['x-request-id']).toBe(id);
      expect(echo.url).toBe(`/${kind}/${i}`);
      if (kind === 'filter') expect(echo.headers['x-filtered']).toBe('1');
      if (kind === 'paused') {
        expect(echo.headers['x-call-status']).toBe('200');
        expect(echo.body).toBe(`[body-${i}]`);
      }
    }
    await until(() => gw.gateway.inflight === 0);
  });
});
