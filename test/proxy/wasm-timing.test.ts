/**
 * Opt-in measurement of the time spent in guest calls (RuntimeOptions.measureWasm,
 * HOOKWIRE_MEASURE_WASM=1): per plugin, in /metrics and /status; absent when off.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { send, startGateway, type TestGateway } from '../helpers/gateway.js';
import { plugin } from '../helpers/paths.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';

let upstream: Upstream | undefined;
let gw: TestGateway | undefined;

afterEach(async () => {
  await gw?.close();
  await upstream?.close();
  gw = undefined;
  upstream = undefined;
});

async function start(measureWasm: boolean): Promise<TestGateway> {
  upstream = await startUpstream();
  gw = await startGateway(
    {
      services: [{ name: 'echo', url: upstream.url }],
      routes: [
        { name: 'hello', service: 'echo', paths: ['/hello'], plugins: [{ name: 'hello', wasm: plugin('hello-world'), configuration: { header: 'x-h', value: '1' } }] },
        { name: 'plain', service: 'echo', paths: ['/plain'] },
      ],
    },
    { runtime: { measureWasm } },
  );
  return gw;
}

function sample(text: string, name: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('guest call timing', () => {
  it('counts top-level guest calls and their time per plugin when measuring', async () => {
    const g = await start(true);
    const before = g.gateway.status().plugins[0]!;
    expect(before.wasm_calls).toBeGreaterThan(0); // on_context_create, on_vm_start, on_configure
    for (let i = 0; i < 3; i++) expect((await send(g.url + '/hello')).status).toBe(200);
    await send(g.url + '/plain'); // no plugin: nothing measured
    const after = g.gateway.status().plugins[0]!;
    // Per request at least context_create, the header phases, done, log, delete.
    expect(after.wasm_calls! - before.wasm_calls!).toBeGreaterThanOrEqual(3 * 5);
    expect(after.wasm_call_seconds!).toBeGreaterThan(before.wasm_call_seconds!);
    expect(after.wasm_call_seconds!).toBeLessThan(5);

    const text = g.gateway.metricsText();
    expect(text).toContain('# TYPE hookwire_wasm_call_seconds_total counter');
    expect(text).toContain('# TYPE hookwire_wasm_calls_total counter');
    expect(sample(text, 'hookwire_wasm_calls_total{plugin="hello"}')).toBe(after.wasm_calls);
    expect(sample(text, 'hookwire_wasm_call_seconds_total{plugin="hello"}')).toBeCloseTo(after.wasm_call_seconds!, 9);
  });

  it('measures nothing and shows nothing when off', async () => {
    const g = await start(false);
    expect((await send(g.url + '/hello')).status).toBe(200);
    expect(g.gateway.runtime.wasmTiming).toBeNull();
    const status = g.gateway.status().plugins[0]!;
    expect(status).not.toHaveProperty('wasm_calls');
    expect(status).not.toHaveProperty('wasm_call_seconds');
    expect(g.gateway.metricsText()).not.toContain('hookwire_wasm_call');
  });
});
