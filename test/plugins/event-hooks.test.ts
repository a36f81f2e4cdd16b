// The event-hooks AssemblyScript library (assembly/event-hooks), driven by the
// eh-emitter fixture: publish/emit records reaching hookwire's native consumer
// of the "event_hooks" queue, Kong's refusals, JSON escaping, and holding
// records while the queue cannot be resolved.
import { afterEach, describe, expect, it } from 'vitest';
import { HostEmulator } from '../../host/testing/emulator.js';
import { fixture } from '../helpers/paths.js';
import { HTTP_LOG_EVENT } from '../helpers/records.js';

const VM = 'hookwire_event_hooks';
const T0 = 1_700_000_000_123n; // ms

type WireRecord = Record<string, unknown>;

function fakeClock(ms = T0) {
  const clock = { ms, now: () => clock.ms * 1_000_000n, monotonic: () => clock.ms * 1_000_000n };
  return clock;
}

const LOG_EVENT = HTTP_LOG_EVENT;

async function start(config: object, name = 'team-a-log') {
  const clock = fakeClock();
  const host = await HostEmulator.start({ wasm: fixture('eh-emitter'), name, pluginConfig: config, clock });
  return { host, clock };
}

/** Attach a native consumer, as hookwire's event-hooks service does; returns what it receives. */
function consume(host: HostEmulator, vmId = VM): { records: WireRecord[]; raw: Buffer[] } {
  const out = { records: [] as WireRecord[], raw: [] as Buffer[] };
  host.runtime.queues.consume(vmId, 'event_hooks', (item) => {
    const buf = Buffer.from(item);
    out.raw.push(buf);
    out.records.push(JSON.parse(buf.toString('utf8')) as WireRecord);
  });
  return out;
}

function send(host: HostEmulator, body: string | Uint8Array, headers: Record<string, string> = {}): void {
  const id = host.initHttpContext();
  host.callOnRequestHeaders(id, { ':method': 'POST', ':path': '/', ...headers }, false);
  host.callOnRequestBody(id, body, true);
  host.completeHttpContext(id);
}

function emitJson(host: HostEmulator, source: string, event: string, data: object): void {
  send(host, JSON.stringify({ source, event, data }));
}

describe('event-hooks library', () => {
  let host: HostEmulator | undefined;
  afterEach(() => host?.close());

  it('sends a publish record, then emit records, to the native consumer', async () => {
    ({ host } = await start({ publish: [LOG_EVENT] }));
    const got = consume(host);
    // Published in on_configure, before any consumer existed: held, not lost.
    expect(got.records).toEqual([]);

    emitJson(host, 'http-log', 'log', { ip: '10.0.0.7', consumer: {}, service: { id: 's1', name: 'orders' } });
    expect(host.logs('info')).toContain('emit ok');
    expect(got.records).toEqual([
      { v: 1, type: 'publish', ...LOG_EVENT, plugin: 'team-a-log' },
      {
        v: 1,
        type: 'emit',
        source: 'http-log',
        event: 'log',
        data: { ip: '10.0.0.7', consumer: {}, service: { id: 's1', name: 'orders' } },
        plugin: 'team-a-log',
        time_ms: Number(T0),
      },
    ]);
    // Key order on the wire is fixed.
    expect(Object.keys(got.records[0]!)).toEqual(['v', 'type', 'source', 'event', 'fields', 'unique', 'description', 'plugin']);
    expect(Object.keys(got.records[1]!)).toEqual(['v', 'type', 'source', 'event', 'data', 'plugin', 'time_ms']);
  });

  it('delivers held publish records on a tick, without any emit', async () => {
    ({ host } = await start({ publish: [LOG_EVENT, { source: 'billing', event: 'invoice', fields: ['id'] }] }));
    expect(host.logs('info')).toContain(
      "event-hooks: queue 'event_hooks' of VM 'hookwire_event_hooks' is not available yet; holding records until it is",
    );
    const got = consume(host);
    host.tick();
    expect(got.records.map((r) => [r.type, r.source, r.event])).toEqual([
      ['publish', 'http-log', 'log'],
      ['publish', 'billing', 'invoice'],
    ]);
    expect(got.records[1]).toMatchObject({ fields: ['id'], unique: [], description: '' });
    host.tick();
    expect(got.records).toHaveLength(2); // sent once
  });

  it("rejects emits of unpublished sources and events with Kong's messages, enqueueing nothing", async () => {
    ({ host } = await start({ publish: [LOG_EVENT] }));
    const got = consume(host);
    host.tick();
    expect(got.records).toHaveLength(1);

    emitJson(host, 'rate-limiting', 'log', { a: 1 });
    emitJson(host, 'http-log', 'flush', { a: 1 });
    expect(host.logs('warn')).toEqual([
      "emit failed: source 'rate-limiting' is not registered",
      "emit failed: source 'http-log' has no 'flush' event",
    ]);
    expect(got.records).toHaveLength(1);
    expect(host.queueItems('event_hooks', VM)).toEqual([]);
  });

  it('overwrites a published event on a second publish, as Kong does', async () => {
    ({ host } = await start({
      publish: [LOG_EVENT, { source: 'http-log', event: 'log', fields: ['ip'], unique: ['ip'], description: 'v2' }],
    }));
    const got = consume(host);
    host.tick();
    expect(got.records).toEqual([
      { v: 1, type: 'publish', source: 'http-log', event: 'log', fields: ['ip'], unique: ['ip'], description: 'v2', plugin: 'team-a-log' },
    ]);
    send(host, '', { 'x-mode': 'list' });
    const line = host.logs('info').find((l) => l.startsWith('list '))!;
    expect(JSON.parse(line.slice(5))).toEqual({ 'http-log': { log: { fields: ['ip'], unique: ['ip'], description: 'v2' } } });
  });

  it('escapes strings built in AssemblyScript: control characters, quotes, backslashes, non-ASCII, surrogates', async () => {
    ({ host } = await start({ publish: [{ source: 'esc"ape\\', event: 'ev\n' }] }));
    const got = consume(host);
    send(host, '', { 'x-mode': 'strings', 'x-source': 'esc"ape\\', 'x-event': 'ev\n' });
    expect(host.logs('info')).toContain('emit ok');
    const [publish, emitted] = got.records;
    expect(publish).toMatchObject({ source: 'esc"ape\\', event: 'ev\n' });
    expect(emitted).toMatchObject({ source: 'esc"ape\\', event: 'ev\n' });
    let controls = '';
    for (let c = 0; c < 0x20; c++) controls += String.fromCharCode(c);
    expect(emitted!.data).toEqual({
      controls,
      quotes: 'say "hi" \\ back\\slash /',
      unicode: 'café € 😀 \u2028',
      lone: '\uFFFDx\uFFFD',
      'k"ey\n': 'v',
      int: -9007199254740993,
      float: 0.5,
      yes: true,
      nothing: null,
      list: ['a', 'b\tc'],
    });
    // The exact bytes: short escapes where JSON has them, \u00XX otherwise, UTF-8 for the rest.
    const text = got.raw[1]!.toString('utf8');
    expect(text).toContain('"controls":"\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e');
    expect(text).toContain('"unicode":"café € 😀 \u2028"');
    expect(text).toContain('"k\\"ey\\n":"v"');
    expect(text).toContain('"int":-9007199254740993');
  });

  it('re-encodes parsed JSON values, escapes included, and survives invalid UTF-8 bytes', async () => {
    ({ host } = await start({ publish: [{ source: 's', event: 'e' }] }));
    const got = consume(host);
    const data = {
      s: 'a\u0000b\u001f"\\/\u00e9\ud83d\ude00',
      escaped: 'tab\tnewline\nquote"',
      n: [0, -1, 1.5, 1e21, 123456789012345678],
      nested: { deep: [{ x: null, y: false }] },
      '': 'empty key',
    };
    send(host, JSON.stringify({ source: 's', event: 'e', data }));
    expect(got.records[1]!.data).toEqual(data);

    send(host, Buffer.from([0x61, 0xff, 0x62, 0xc3, 0x28, 0xe2, 0x82, 0xac, 0x0a, 0x22]), { 'x-mode': 'bytes', 'x-source': 's', 'x-event': 'e' });
    expect(got.records[2]!.data).toEqual({ raw: 'a\uFFFDb\uFFFD(€\n"' });
  });

  it('reports a body that is not JSON without trapping', async () => {
    ({ host } = await start({ publish: [{ source: 's', event: 'e' }] }));
    send(host, '{"source": "s", "event": ');
    send(host, '{"a":1} x');
    expect(host.logs('warn')).toEqual(['bad body: expected a value at end of input', 'bad body: unexpected data after the value at byte 8']);
    expect(host.runtimeEvents().filter((e) => e.type === 'vm_trapped')).toEqual([]);
  });

  it('holds a bounded number of emits while the queue is unavailable, dropping the oldest with a warning', async () => {
    ({ host } = await start({ publish: [{ source: 's', event: 'e' }], max_pending: 3 }));
    for (let i = 1; i <= 5; i++) emitJson(host, 's', 'e', { i });
    expect(host.logs('warn')).toEqual([
      "event-hooks: queue 'event_hooks' of VM 'hookwire_event_hooks' unavailable; dropped the oldest held emit record(s), 1 so far (limit 3 held)",
    ]);
    const got = consume(host);
    host.tick();
    expect(got.records.map((r) => (r.type === 'publish' ? 'publish' : (r.data as { i: number }).i))).toEqual(['publish', 3, 4, 5]);
    expect(host.logs('warn')).toContain("event-hooks: 2 emit record(s) were dropped while queue 'event_hooks' was unavailable");
  });

  it('uses the configured vm_id for the queue', async () => {
    ({ host } = await start({ publish: [{ source: 's', event: 'e' }], vm_id: 'team_b_hooks' }));
    const other = consume(host);
    const mine = consume(host, 'team_b_hooks');
    emitJson(host, 's', 'e', { ok: true });
    expect(other.records).toEqual([]);
    expect(mine.records.map((r) => r.type)).toEqual(['publish', 'emit']);
  });

  it('sends to a queue registered by a guest (the forwarder) as well', async () => {
    ({ host } = await start({ publish: [{ source: 's', event: 'e' }] }));
    // Stand-in for the Envoy singleton: a queue owner that is not a native consumer.
    host.runtime.queues.register(VM, 'event_hooks', { notify: () => {} });
    emitJson(host, 's', 'e', { n: 1 });
    const items = host.queueItems('event_hooks', VM).map((b) => JSON.parse(b.toString()) as WireRecord);
    expect(items.map((r) => r.type)).toEqual(['publish', 'emit']);
  });
});
