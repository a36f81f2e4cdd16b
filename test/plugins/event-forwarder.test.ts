// The event-forwarder singleton (assembly/plugins/event-forwarder): the Envoy
// side of event hooks. It owns the "event_hooks" queue of VM
// hookwire_event_hooks and ships records to hookwire's ingest endpoint.
import { afterEach, describe, expect, it } from 'vitest';
import { HeaderMap } from '../../host/abi/header-map.js';
import { PluginStartError } from '../../host/errors.js';
import { HostEmulator, type PendingHttpCall } from '../../host/testing/emulator.js';
import { plugin } from '../helpers/paths.js';
import { httpLogPublishRecord } from '../helpers/records.js';

const VM = 'hookwire_event_hooks';
const T0 = 1_700_000_000_000n;

type Json = Record<string, any>;

function fakeClock(ms = T0) {
  const clock = { ms, now: () => clock.ms * 1_000_000n, monotonic: () => clock.ms * 1_000_000n, advance: (d: number) => void (clock.ms += BigInt(d)) };
  return clock;
}

async function start(config: Json = {}, vmId = VM) {
  const clock = fakeClock();
  const host = await HostEmulator.start({
    wasm: plugin('event-forwarder'),
    name: 'event-forwarder',
    vmId,
    pluginConfig: { token: 's3cret', ...config },
    upstreams: ['hookwire_ingest'],
    clock,
  });
  return { host, clock };
}

function publishRecord(source: string, event = 'log', plugin = 'http-log'): string {
  return JSON.stringify({ v: 1, type: 'publish', source, event, fields: ['ip'], unique: [], description: '', plugin });
}

function emitRecord(n: number, source = 'http-log'): string {
  return JSON.stringify({ v: 1, type: 'emit', source, event: 'log', data: { n }, plugin: 'http-log', time_ms: 1 });
}

function batch(call: PendingHttpCall): Json[] {
  return JSON.parse(call.body.toString('utf8')) as Json[];
}

/** A compact view of a batch: "publish:<source>" or the emit's data.n. */
function view(call: PendingHttpCall): Array<string | number> {
  return batch(call).map((r) => (r.type === 'publish' ? `publish:${r.source}` : (r.data as { n: number }).n));
}

function onlyCall(host: HostEmulator): PendingHttpCall {
  const calls = host.httpCalls();
  expect(calls).toHaveLength(1);
  return calls[0]!;
}

describe('event-forwarder', () => {
  let host: HostEmulator | undefined;
  afterEach(() => host?.close());

  it('registers the queue and posts a full batch at once, as a JSON array with the bearer token', async () => {
    ({ host } = await start({ max_batch_size: 3 }));
    expect(host.runtime.queues.resolve(VM, 'event_hooks')).toBeDefined();
    expect(host.tickPeriod()).toBe(1000);
    host.enqueue('event_hooks', publishRecord('http-log'));
    host.enqueue('event_hooks', emitRecord(1));
    expect(host.httpCalls()).toEqual([]);
    host.enqueue('event_hooks', emitRecord(2));
    const call = onlyCall(host);
    expect(call.upstream).toBe('hookwire_ingest');
    expect(call.headers).toEqual([
      [':method', 'POST'],
      [':path', '/event-hooks/ingest'],
      [':authority', 'hookwire'],
      ['content-type', 'application/json'],
      ['authorization', 'Bearer s3cret'],
    ]);
    expect(call.timeoutMs).toBe(5000);
    expect(batch(call)).toEqual([JSON.parse(publishRecord('http-log')), JSON.parse(emitRecord(1)), JSON.parse(emitRecord(2))]);
  });

  it('flushes a partial batch on the next tick, and keeps one request in flight', async () => {
    ({ host } = await start({ cluster: 'hookwire_ingest', authority: 'hw.internal', path: '/ingest', max_batch_size: 10, flush_interval_ms: 250, timeout_ms: 800 }));
    expect(host.tickPeriod()).toBe(250);
    host.enqueue('event_hooks', emitRecord(1));
    expect(host.httpCalls()).toEqual([]);
    host.tick();
    const first = onlyCall(host);
    expect(view(first)).toEqual([1]);
    expect(first.headers.slice(1, 3)).toEqual([[':path', '/ingest'], [':authority', 'hw.internal']]);
    expect(first.timeoutMs).toBe(800);
    host.enqueue('event_hooks', emitRecord(2));
    host.tick();
    expect(host.httpCalls()).toHaveLength(1); // still the first one
    host.respondToHttpCall(first.token, { status: 202 });
    host.tick();
    expect(view(onlyCall(host))).toEqual([2]);
  });

  it('on unload sends the records it holds (partial batch, then the rest), then calls proxy_done', async () => {
    ({ host } = await start({ max_batch_size: 2, flush_interval_ms: 60_000 }));
    host.enqueue('event_hooks', publishRecord('http-log'));
    host.enqueue('event_hooks', emitRecord(1));
    const first = onlyCall(host); // full batch: the publish and 1
    for (let n = 2; n <= 4; n++) host.enqueue('event_hooks', emitRecord(n));
    const unloaded = host.unload();
    expect(host.plugin.closing).toBe(true);
    host.respondToHttpCall(first.token, { status: 200 });
    const second = onlyCall(host);
    expect(view(second)).toEqual([2, 3]);
    host.respondToHttpCall(second.token, { status: 200 });
    const third = onlyCall(host); // a partial batch: no waiting for the next tick
    expect(view(third)).toEqual([4]);
    expect(host.plugin.closing).toBe(true);
    host.respondToHttpCall(third.token, { status: 200 });
    await unloaded;
    expect(host.plugin.closed).toBe(true);
    expect(host.logs('info')).toContain('event-forwarder: unloading; sending 4 held record(s) first');
  });

  it('retries failures with exponential backoff, without losing or reordering records', async () => {
    let clock;
    ({ host, clock } = await start({ max_batch_size: 3, flush_interval_ms: 1000 }));
    for (let n = 1; n <= 3; n++) host.enqueue('event_hooks', emitRecord(n));
    const first = onlyCall(host);
    expect(view(first)).toEqual([1, 2, 3]);
    host.respondToHttpCall(first.token, { status: 503, body: 'ingest down' });
    expect(host.logs('warn')).toEqual(["event-forwarder: delivery failed (cluster 'hookwire_ingest' answered 503: ingest down); retrying 3 record(s) in 1000 ms"]);

    // Records arriving meanwhile wait behind the failed batch.
    for (let n = 4; n <= 7; n++) host.enqueue('event_hooks', emitRecord(n));
    expect(host.httpCalls()).toEqual([]);
    clock.advance(999);
    host.tick();
    expect(host.httpCalls()).toEqual([]);
    clock.advance(1);
    host.tick();
    const second = onlyCall(host);
    expect(view(second)).toEqual([1, 2, 3]);
    host.failHttpCall(second.token, 'connection');
    expect(host.logs('warn')[1]).toMatch(/^event-forwarder: delivery failed \(no response from cluster 'hookwire_ingest'.*\); retrying 3 record\(s\) in 2000 ms$/);

    clock.advance(1000);
    host.tick();
    expect(host.httpCalls()).toEqual([]);
    clock.advance(1000);
    host.tick();
    const third = onlyCall(host);
    expect(view(third)).toEqual([1, 2, 3]);
    host.respondToHttpCall(third.token, { status: 200 });
    expect(host.logs('info')).toContain('event-forwarder: delivery resumed after 2 failed attempt(s)');

    const delivered = [...view(third)];
    for (let call = host.httpCalls()[0] ?? (host.tick(), host.httpCalls()[0]); call; host.tick(), call = host.httpCalls()[0]) {
      delivered.push(...view(call));
      host.respondToHttpCall(call.token, { status: 200 });
    }
    expect(delivered).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });

  it('puts publish records first, and sends them again after any failure', async () => {
    let clock;
    ({ host, clock } = await start({ max_batch_size: 2 }));
    host.enqueue('event_hooks', emitRecord(1));
    host.enqueue('event_hooks', publishRecord('http-log'));
    let call = onlyCall(host);
    expect(view(call)).toEqual(['publish:http-log', 1]);
    host.respondToHttpCall(call.token, { status: 200 });

    host.enqueue('event_hooks', emitRecord(2));
    host.tick();
    call = onlyCall(host);
    expect(view(call)).toEqual([2]); // already delivered: not repeated
    host.respondToHttpCall(call.token, { status: 500 });
    clock.advance(1000);
    host.tick();
    call = onlyCall(host);
    expect(view(call)).toEqual(['publish:http-log', 2]); // ingest may have restarted
    host.respondToHttpCall(call.token, { status: 200 });

    // A re-published event replaces the old record (one per plugin/source/event).
    host.enqueue('event_hooks', publishRecord('http-log'));
    host.enqueue('event_hooks', publishRecord('billing', 'invoice'));
    host.enqueue('event_hooks', publishRecord('http-log'));
    host.tick();
    expect(view(onlyCall(host))).toEqual(['publish:http-log', 'publish:billing']);
  });

  it('bounds the buffer by max_buffered, dropping the oldest with an error that counts them', async () => {
    ({ host } = await start({ max_batch_size: 2, max_buffered: 3 }));
    host.enqueue('event_hooks', emitRecord(1));
    host.enqueue('event_hooks', emitRecord(2));
    const first = onlyCall(host); // in flight: not in the buffer
    for (let n = 3; n <= 7; n++) host.enqueue('event_hooks', emitRecord(n));
    expect(host.logs('error')).toEqual([
      'event-forwarder: buffer full (max_buffered 3): dropped the 1 oldest record(s), 1 lost in total',
      'event-forwarder: buffer full (max_buffered 3): dropped the 1 oldest record(s), 2 lost in total',
    ]);
    host.respondToHttpCall(first.token, { status: 200 });
    const second = onlyCall(host);
    expect(view(second)).toEqual([5, 6]);
    host.respondToHttpCall(second.token, { status: 200 });
    host.tick();
    expect(view(onlyCall(host))).toEqual([7]);
  });

  it('drops records that are not JSON objects, with an error, instead of poisoning a batch', async () => {
    ({ host } = await start({ max_batch_size: 2 }));
    host.enqueue('event_hooks', '{"v":1,"type":"emit",');
    host.enqueue('event_hooks', '[1,2]');
    host.enqueue('event_hooks', emitRecord(1));
    host.enqueue('event_hooks', ' { "type" : "publish", "source": "spaced", "event": "e", "plugin": "p", "v": 1 } ');
    expect(host.logs('error')).toEqual([
      'event-forwarder: dropped a record that is not a JSON object (expected a member name at end of input)',
      'event-forwarder: dropped a record that is not a JSON object (not a JSON object)',
    ]);
    expect(view(onlyCall(host))).toEqual(['publish:spaced', 1]);
  });

  it('sends no authorization header without a token, and warns about it', async () => {
    ({ host } = await start({ token: null, max_batch_size: 1 }));
    expect(host.logs('warn')).toContain('event-forwarder: no token configured; batches are sent without an authorization header');
    host.enqueue('event_hooks', emitRecord(1));
    expect(onlyCall(host).headers.map(([k]) => k)).toEqual([':method', ':path', ':authority', 'content-type']);
  });

  it('warns when its vm_id is not the default plugins use', async () => {
    ({ host } = await start({}, 'edge_hooks'));
    expect(host.logs('warn')).toContain(
      "event-forwarder: this VM's vm_id is 'edge_hooks', not 'hookwire_event_hooks'; plugins must set event_hooks_vm_id to it",
    );
  });

  it.each([
    [{ max_batch_size: 0 }, 'event-forwarder: config.max_batch_size must be an integer between 1 and 100000 (found 0)'],
    [{ flush_interval_ms: 'soon' }, 'event-forwarder: config.flush_interval_ms must be an integer between 1 and 3600000 (found "soon")'],
    [{ max_buffered: -1 }, 'event-forwarder: config.max_buffered must be an integer between 1 and 10000000 (found -1)'],
    [{ path: 'ingest' }, 'event-forwarder: config.path must start with / (found "ingest")'],
    [{ cluster: '' }, 'event-forwarder: config.cluster must not be empty (found "")'],
    [{ batch: 5 }, 'event-forwarder: config.batch is not a known field'],
  ])('refuses %j, naming the field', async (config, message) => {
    await expect(start(config)).rejects.toBeInstanceOf(PluginStartError);
    await expect(start(config)).rejects.toThrow(message);
  });
});

describe('event hooks end to end under the Envoy layout', () => {
  it('http-log records reach the forwarder and its ingest call', async () => {
    const clock = fakeClock();
    // The filter plugin, as the emulator's main plugin...
    const host = await HostEmulator.start({
      wasm: plugin('http-log'),
      name: 'http-log',
      pluginConfig: { http_endpoint: 'http://team-a-collector/logs', event_hooks: true },
      upstreams: ['team-a-collector', 'hookwire_ingest'],
      clock,
    });
    try {
      // ...and the singleton in the same runtime, in its own VM.
      const forwarder = await host.runtime.loadPlugin({
        name: 'event-forwarder',
        wasm: plugin('event-forwarder'),
        vmId: VM,
        configuration: JSON.stringify({ token: 't', max_batch_size: 2 }),
      });
      const id = host.initHttpContext({
        'source.address': '198.51.100.4:5000',
        'hookwire.service_id': 'svc-1',
        'hookwire.service_name': 'orders',
        'request.headers': HeaderMap.fromPairs([['accept', '*/*']]),
      });
      host.callOnRequestHeaders(id, { ':method': 'GET', ':path': '/' }, true);
      host.completeHttpContext(id);

      const ingest = host.httpCalls().find((c) => c.upstream === 'hookwire_ingest')!;
      expect(ingest.headers).toContainEqual(['authorization', 'Bearer t']);
      expect(batch(ingest)).toEqual([
        httpLogPublishRecord('http-log'),
        {
          v: 1,
          type: 'emit',
          source: 'http-log',
          event: 'log',
          data: { consumer: {}, ip: '198.51.100.4', service: { id: 'svc-1', name: 'orders' }, route: {} },
          plugin: 'http-log',
          time_ms: Number(T0),
        },
      ]);
      // The log entry itself still goes to the team's collector.
      const log = host.httpCalls().find((c) => c.upstream === 'team-a-collector')!;
      expect(JSON.parse(log.body.toString()).client_ip).toBe('198.51.100.4');
      expect(forwarder.vmId).toBe(VM);
    } finally {
      host.close();
    }
  });
});
