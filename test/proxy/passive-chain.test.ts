/**
 * A plugin whose module exports no stream callback runs no code for a
 * request, so the data plane leaves it out (Plugin.passive): the request goes
 * the no-plugin way. Its failure policy still applies once its VM is unusable.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send, startGateway, type TestGateway } from '../helpers/gateway.js';
import { fixture, plugin } from '../helpers/paths.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';

let upstream: Upstream;
let gw: TestGateway;

beforeAll(async () => {
  upstream = await startUpstream();
  gw = await startGateway({
    services: [{ name: 'echo', url: upstream.url }],
    routes: [
      { name: 'r-closed', service: 'echo', paths: ['/closed'], plugins: [{ name: 'empty-closed', wasm: fixture('empty-filter'), failure_policy: 'fail_closed' }] },
      { name: 'r-open', service: 'echo', paths: ['/open'], plugins: [{ name: 'empty-open', wasm: fixture('empty-filter'), failure_policy: 'fail_open' }] },
      {
        name: 'r-mixed',
        service: 'echo',
        paths: ['/mixed'],
        plugins: [
          { name: 'empty-mixed', wasm: fixture('empty-filter') },
          { name: 'hello', wasm: plugin('hello-world'), configuration: { header: 'x-hello-test', value: 'hi' } },
        ],
      },
    ],
  });
});

afterAll(async () => {
  await gw?.close();
  await upstream?.close();
});

/** Header names as the upstream received them (raw case). */
function rawNames(): string[] {
  const raw = upstream.received.at(-1)!.rawHeaders;
  return raw.filter((_, i) => i % 2 === 0);
}

describe('passive filter chain', () => {
  it('knows which modules run code for a stream', () => {
    const vms = gw.gateway.runtime.vms();
    const empty = vms.filter((v) => v.module.file.endsWith('empty-filter.wasm'));
    const hello = vms.filter((v) => v.module.file.endsWith('hello-world.wasm'));
    expect(empty.length).toBeGreaterThan(0);
    expect(hello.length).toBe(1);
    for (const vm of empty) expect(vm.runsStreams).toBe(false);
    expect(hello[0]!.runsStreams).toBe(true);
  });

  it('sends a request through a chain of passive filters the no-plugin way', async () => {
    const r = await send(`${gw.url}/closed`, { headers: { 'X-Mixed-Case': 'yes' } });
    expect(r.status).toBe(200);
    // The filter chain hands the upstream Envoy's lower-case map; the no-plugin path forwards names as received.
    expect(rawNames()).toContain('X-Mixed-Case');
  });

  it('runs the whole chain when one filter of it runs code', async () => {
    const r = await send(`${gw.url}/mixed`, { headers: { 'X-Mixed-Case': 'yes' } });
    expect(r.status).toBe(200);
    expect(r.headers['x-hello-test']).toBe('hi');
    expect(rawNames()).toContain('x-mixed-case');
    expect(rawNames()).not.toContain('X-Mixed-Case');
  });

  it('still applies the failure policy of a passive filter whose VM is unusable', async () => {
    const vms = gw.gateway.runtime.vms().filter((v) => v.module.file.endsWith('empty-filter.wasm'));
    for (const vm of vms) vm.poisoned = 'poisoned by the test';
    try {
      const closed = await send(`${gw.url}/closed`);
      expect(closed.status).toBe(503);
      expect(closed.json().message).toContain('empty-closed');
      const open = await send(`${gw.url}/open`, { headers: { 'X-Mixed-Case': 'yes' } });
      expect(open.status).toBe(200);
    } finally {
      for (const vm of vms) vm.poisoned = null;
    }
    expect((await send(`${gw.url}/closed`)).status).toBe(200);
  });
});
