// The built-in `wasm` source: the runtime's lifecycle events (a trap, a plugin loaded) reach event hooks.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send } from '../helpers/gateway.js';
import { fixture } from '../helpers/paths.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';
import { call, startReceiver, startTestApp, type Receiver, type TestApp } from './helpers.js';

let upstream: Upstream;
let rx: Receiver;
let t: TestApp;

beforeAll(async () => {
  upstream = await startUpstream();
  rx = await startReceiver();
  t = await startTestApp({
    services: [{ name: 'echo', url: upstream.url }],
    routes: [
      {
        name: 'trappy',
        service: 'echo',
        paths: ['/trap'],
        plugins: [{ name: 'trapper', wasm: fixture('proxy-filter'), failure_policy: 'fail_open', configuration: { trap: 'request_headers', trap_header: 'x-trap' } }],
      },
    ],
  });
});

afterAll(async () => {
  await t?.close();
  await rx?.close();
  await upstream?.close();
});

const wasmHits = (event: string) => rx.hits.filter((h) => h.json?.source === 'wasm' && h.json?.event === event);

describe('wasm source', () => {
  it('a plugin trap becomes a wasm/vm-trapped event delivered to a hook', async () => {
    const hook = await call(t.admin, 'POST', '/event-hooks', { source: 'wasm', event: 'vm-trapped', handler: 'webhook', config: { url: rx.url } });
    expect(hook.status).toBe(201);
    expect((await send(t.url + '/trap')).status).toBe(200);
    expect(wasmHits('vm-trapped')).toEqual([]);

    const r = await send(t.url + '/trap', { headers: { 'x-trap': '1' } });
    expect(r.status).toBe(200); // fail_open: the request goes on without the plugin
    await rx.waitFor(() => wasmHits('vm-trapped').length > 0, 'the vm-trapped webhook');
    const ev = wasmHits('vm-trapped')[0]!.json;
    expect(ev).toMatchObject({ source: 'wasm', event: 'vm-trapped', vm_id: 'trapper', callback: 'proxy_on_request_headers', plugins: ['trapper'] });
    expect(String(ev.reason)).toMatch(/unreachable/);
  });

  it('plugins loaded by an Admin API change are wasm/plugin-loaded events; unloading reports no trap', async () => {
    const hook = await call(t.admin, 'POST', '/event-hooks', { source: 'wasm', handler: 'webhook', config: { url: rx.url } });
    expect(hook.status).toBe(201);
    const trapsBefore = wasmHits('vm-trapped').length;
    // proxy-filter re-exports the SDK's callbacks (hello-world has its own root on_done and does not trap).
    const p = await call(t.admin, 'POST', '/plugins', {
      name: 'newcomer',
      wasm: fixture('proxy-filter'),
      route: 'trappy',
      configuration: { response_header: 'x-newcomer', response_value: 'here' },
    });
    expect(p.status).toBe(201);
    expect((await send(t.url + '/trap')).headers['x-newcomer']).toBe('here');
    await rx.waitFor(() => wasmHits('plugin-loaded').some((h) => h.json.plugin === 'newcomer'), 'plugin-loaded of newcomer');
    const loaded = wasmHits('plugin-loaded').find((h) => h.json.plugin === 'newcomer')!.json;
    expect(loaded).toMatchObject({ vm_id: 'newcomer', root_id: 'newcomer', file: fixture('proxy-filter') });
    expect(loaded.sha256).toMatch(/^[0-9a-f]{64}$/);

    // Unloading an AssemblyScript SDK plugin traps in the SDK (a known quirk the gateway logs as a warning):
    // that is not a failure of a serving plugin, so no vm-trapped event.
    expect((await call(t.admin, 'DELETE', '/plugins/newcomer')).status).toBe(204);
    await rx.waitFor(() => wasmHits('plugin-unloaded').some((h) => h.json.plugin === 'newcomer'), 'plugin-unloaded of newcomer');
    await new Promise((r) => setTimeout(r, 200));
    expect(t.lines.some((l) => l.msg === 'VM trapped' && l.vm_id === 'newcomer' && l.level === 40)).toBe(true);
    expect(wasmHits('vm-trapped').length).toBe(trapsBefore);
  });

  it('lists the wasm source and its events', async () => {
    const r = await call(t.admin, 'GET', '/event-hooks/sources/wasm');
    expect(Object.keys(r.body.data).sort()).toEqual(['plugin-config-refused', 'plugin-loaded', 'plugin-unloaded', 'vm-reloaded', 'vm-trapped']);
  });
});
