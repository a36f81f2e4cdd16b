// The plugins are built with AssemblyScript's minimal runtime, whose collector
// runs only when the module calls it (assembly/sdk/gc.ts: at the end of the
// outermost callback). These runs prove the guest memory stops growing over
// many requests: without those collections every request's garbage stays,
// and the memory grows with the request count.
import { afterEach, describe, expect, it } from 'vitest';
import { HostEmulator } from '../../host/testing/emulator.js';
import { plugin } from '../helpers/paths.js';

const REQUESTS = 20_000;
/** The memory is read after this many requests (warmed up) and again at the end. */
const WARM_UP = 5_000;

/** Run `count` requests through the plugin; `each` after every request (answer calls, clear logs). */
function run(host: HostEmulator, count: number, each: (i: number) => void): void {
  for (let i = 0; i < count; i++) {
    const id = host.initHttpContext({ 'request.id': `req-${i}`, 'source.address': '203.0.113.9:51234' });
    host.callOnRequestHeaders(id, { ':method': 'GET', ':path': `/orders/${i}?expand=items&tag=${i}`, ':authority': 'api.example.com', 'x-trace': String(i) }, true);
    host.callOnResponseHeaders(id, { ':status': '200', 'content-type': 'application/json' }, true);
    host.completeHttpContext(id);
    each(i);
  }
}

function guestMemory(host: HostEmulator): number {
  return host.plugin.vm.memory.size;
}

describe('guest memory stays bounded over many requests (minimal runtime, collection at safe points)', () => {
  let host: HostEmulator | undefined;
  afterEach(() => host?.close());

  it(`http-log: ${REQUESTS} requests, entries batched and sent, with event hooks on`, async () => {
    host = await HostEmulator.start({
      wasm: plugin('http-log'),
      name: 'http-log',
      pluginConfig: { http_endpoint: 'http://collector:80/logs', event_hooks: true, queue: { max_batch_size: 50, max_coalescing_delay: 0 } },
      upstreams: ['collector'],
    });
    const h = host;
    h.runtime.queues.consume('hookwire_event_hooks', 'event_hooks', () => {});
    let sent = 0;
    let warm = 0;
    run(h, REQUESTS, (i) => {
      for (const call of h.httpCalls()) {
        sent += (JSON.parse(call.body.toString('utf8')) as unknown[]).length;
        h.respondToHttpCall(call.token, { status: 200 });
      }
      if (i % 1000 === 0) h.tick();
      if (i === WARM_UP) warm = guestMemory(h);
    });
    h.tick();
    for (const call of h.httpCalls()) {
      sent += (JSON.parse(call.body.toString('utf8')) as unknown[]).length;
      h.respondToHttpCall(call.token, { status: 200 });
    }
    expect(sent).toBeGreaterThan(REQUESTS - 100); // the entries were built and shipped (a few may wait for the next batch)
    expect(h.logs('error')).toEqual([]);
    expect(guestMemory(h)).toBe(warm);
  });

  it(`hello-world: ${REQUESTS} requests, a header added and a log line each`, async () => {
    host = await HostEmulator.start({ wasm: plugin('hello-world'), pluginConfig: { header: 'x-team', value: 'blue' } });
    const h = host;
    let warm = 0;
    run(h, REQUESTS, (i) => {
      if (i % 1000 === 0) {
        expect(h.logs('info')).toHaveLength(i === 0 ? 1 : 1000);
        h.clearLogs();
      }
      if (i === WARM_UP) warm = guestMemory(h);
    });
    expect(guestMemory(h)).toBe(warm);
  });
});
