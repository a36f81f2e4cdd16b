// The plugin-author path end to end: a filter written against the SDK,
// compiled by the build, run in the emulator, each of its effects asserted.
import { afterEach, describe, expect, it } from 'vitest';
import { FilterResult, HostEmulator } from '../../host/testing/emulator.js';
import { PluginStartError } from '../../host/errors.js';
import { plugin } from '../helpers/paths.js';

describe('hello-world plugin in the emulator', () => {
  let host: HostEmulator | undefined;
  afterEach(() => host?.close());

  it('adds the configured response header', async () => {
    host = await HostEmulator.start({ wasm: plugin('hello-world'), pluginConfig: { header: 'x-team', value: 'blue' } });
    const id = host.initHttpContext();
    expect(host.callOnRequestHeaders(id, { ':method': 'GET', ':path': '/a' }, true)).toBe(FilterResult.CONTINUE);
    expect(host.callOnResponseHeaders(id, { ':status': '200', 'content-type': 'text/plain' }, false)).toBe(FilterResult.CONTINUE);
    expect(host.currentResponseHeaders(id)).toEqual([
      [':status', '200'],
      ['content-type', 'text/plain'],
      ['x-team', 'blue'],
    ]);
  });

  it('logs one line per request in on_log', async () => {
    host = await HostEmulator.start({ wasm: plugin('hello-world') });
    const id = host.initHttpContext();
    host.callOnRequestHeaders(id, { ':method': 'POST', ':path': '/orders' }, true);
    host.callOnResponseHeaders(id, { ':status': '201' }, true);
    expect(host.logs('info')).not.toContain('hello-world: POST /orders -> 201');
    host.completeHttpContext(id);
    expect(host.logs('info')).toContain('hello-world: POST /orders -> 201');
  });

  it('pings its upstream with proxy_http_call on every tick and logs the answer', async () => {
    host = await HostEmulator.start({
      wasm: plugin('hello-world'),
      pluginConfig: { ping_upstream: 'pinger', ping_path: '/health', tick_ms: 5000 },
      upstreams: ['pinger'],
    });
    expect(host.tickPeriod()).toBe(5000);
    expect(host.httpCalls()).toEqual([]);

    host.tick();
    const [call] = host.httpCalls();
    expect(call).toMatchObject({
      upstream: 'pinger',
      headers: [
        [':method', 'GET'],
        [':path', '/health'],
        [':authority', 'pinger'],
      ],
      timeoutMs: 1000,
    });
    host.respondToHttpCall(call!.token, { status: 200, body: 'pong' });
    expect(host.logs('info')).toContain('hello-world: ping 200 pong');

    host.tick();
    const [second] = host.httpCalls();
    host.failHttpCall(second!.token, 'timeout');
    expect(host.logs('warn')).toContain('hello-world: ping failed (no response)');
  });

  it('on unload waits for the ping in flight, then calls proxy_done (the template of the unload protocol)', async () => {
    host = await HostEmulator.start({
      wasm: plugin('hello-world'),
      pluginConfig: { ping_upstream: 'pinger', tick_ms: 5000 },
      upstreams: ['pinger'],
    });
    host.tick();
    const [call] = host.httpCalls();
    const unloaded = host.unload();
    expect(host.plugin.closing).toBe(true);
    host.tick(); // no new ping while unloading
    expect(host.httpCalls()).toHaveLength(1);
    host.respondToHttpCall(call!.token, { status: 200, body: 'pong' });
    await unloaded;
    expect(host.plugin.closed).toBe(true);
    expect(host.logs('info')).toContain('hello-world: ping 200 pong');
    expect(host.logs('error')).toEqual([]);
  });

  it('on unload with nothing in flight is deleted at once, without a trap', async () => {
    host = await HostEmulator.start({ wasm: plugin('hello-world') });
    await host.unload();
    expect(host.plugin.closed).toBe(true);
    expect(host.plugin.vm.poisoned).toBeNull();
  });

  it('refuses a configuration that is not a JSON object, naming the problem', async () => {
    const started = HostEmulator.start({ wasm: plugin('hello-world'), pluginConfig: '[1,2]' });
    await expect(started).rejects.toBeInstanceOf(PluginStartError);
    await expect(started).rejects.toThrow(/proxy_on_configure returned false .*: hello-world: the configuration must be a JSON object/);
  });

  it('refuses text that is not JSON by logging why and returning false, never by trapping', async () => {
    const started = HostEmulator.start({ wasm: plugin('hello-world'), pluginConfig: 'not json' });
    await expect(started).rejects.toBeInstanceOf(PluginStartError);
    await expect(started).rejects.toThrow(/proxy_on_configure returned false \(plugin configuration rejected\): hello-world: the configuration is not valid JSON: /);
    await expect(started).rejects.not.toThrow(/abort|trap/);
  });
});
