import { describe, it, expect, afterEach } from 'vitest';
import {
  EventHookNotFoundError,
  EventHooksClosedError,
  EventHookValidationError,
  EventRejectedError,
} from '../../host/errors.js';
import { EventHooks, EVENT_HOOKS_QUEUE, HANDLER_CONFIG_SCHEMAS, verifyWebhook } from '../../host/hooks/index.js';
import { SharedQueues } from '../../host/vm/shared-queues.js';
import { capturedLogger, emitRecord, publishRecord, receiver, tempDir, testService, waitUntil, type Receiver, type TestService } from './helpers.js';

let svc: TestService | undefined;
const rs: Receiver[] = [];
afterEach(async () => {
  await svc?.close();
  svc = undefined;
  await Promise.all(rs.splice(0).map((r) => r.close()));
});

async function issuesOf(p: Promise<unknown>): Promise<{ path: string; message: string }[]> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(EventHookValidationError);
  expect((err as EventHookValidationError).code).toBe('HW_ERR_EVENT_HOOK_INVALID');
  return [...(err as EventHookValidationError).issues];
}

describe('hooks: create, get, list, update, delete', () => {
  it('creates Kong-shaped entities with defaults filled in', async () => {
    let now = 1_700_000_000_500;
    svc = await testService({ clock: { now: () => now } }, false);
    const h = await svc.hooks.createHook({ source: 'crud', event: 'consumers', handler: 'webhook', config: { url: 'https://example.com/hook' } });
    expect(h).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      created_at: 1_700_000_000,
      updated_at: 1_700_000_000,
      source: 'crud',
      event: 'consumers',
      handler: 'webhook',
      on_change: null,
      snooze: null,
      enabled: true,
      config: { url: 'https://example.com/hook', headers: {}, secret: null, secrets: [], signature: 'auto', kong_signature_algorithm: 'sha256', ssl_verify: true },
    });
    expect(await svc.hooks.getHook(h.id)).toEqual(h);
    // log may omit config; event null = every event.
    const l = await svc.hooks.createHook({ source: 'wasm', handler: 'log' });
    expect(l).toMatchObject({ event: null, config: {} });
    now += 5000;
    const u = await svc.hooks.updateHook(h.id, { snooze: 30, config: { secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' } });
    expect(u).toMatchObject({ snooze: 30, updated_at: 1_700_000_005, created_at: 1_700_000_000 });
    expect(u.config).toMatchObject({ url: 'https://example.com/hook', secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' }); // merged
    // Changing the handler replaces the config.
    const c = await svc.hooks.updateHook(h.id, { handler: 'log', config: null });
    expect(c.config).toEqual({});
    await svc.hooks.deleteHook(h.id);
    await expect(svc.hooks.getHook(h.id)).rejects.toBeInstanceOf(EventHookNotFoundError);
    await expect(svc.hooks.deleteHook(h.id)).rejects.toMatchObject({ code: 'HW_ERR_EVENT_HOOK_NOT_FOUND', entity: 'event_hook' });
  });

  it('accepts a client id, refuses a duplicate; returned objects are copies', async () => {
    svc = await testService({}, false);
    const id = '4a2c3b1e-0000-4000-8000-000000000001';
    const h = await svc.hooks.createHook({ id, source: 's', handler: 'log' });
    expect(h.id).toBe(id);
    expect(await issuesOf(svc.hooks.createHook({ id, source: 's', handler: 'log' }))).toEqual([{ path: '/id', message: 'an event hook with this id already exists' }]);
    h.source = 'mutated';
    expect((await svc.hooks.getHook(id)).source).toBe('s');
  });

  it('validation names every problem by path', async () => {
    svc = await testService({}, false);
    expect(await issuesOf(svc.hooks.createHook({ handler: 'lambda', snooze: -1, extra: 1 } as never))).toEqual(
      expect.arrayContaining([
        { path: '/extra', message: expect.stringMatching(/^unknown key "extra"/) },
        { path: '/source', message: 'required key "source" is missing' },
        { path: '/handler', message: expect.stringMatching(/^Kong's lambda handler \(Lua functions\) is not supported: .* use handler 'wasm'/) },
        { path: '/snooze', message: expect.stringMatching(/^must be an integer/) },
      ]),
    );
    expect(await issuesOf(svc.hooks.createHook({ source: 's', handler: 'webhook', config: {} }))).toEqual([{ path: '/config/url', message: 'required key "url" is missing' }]);
    // Free strings have length limits (documented in docs/event-hooks.md), refused naming the field.
    const long = await issuesOf(
      svc.hooks.createHook({ source: 's', handler: 'webhook', config: { url: `http://x/${'a'.repeat(2100)}`, secret: 's'.repeat(1025), headers: { 'x-big': 'v'.repeat(8193) } } }),
    );
    expect(long.map((i) => i.path).sort()).toEqual(['/config/headers/x-big', '/config/secret', '/config/url']);
    expect(await issuesOf(svc.hooks.createHook({ source: 's', handler: 'webhook', config: { url: 'ftp://x/', bogus: true } }))).toEqual([
      { path: '/config/bogus', message: expect.stringMatching(/^unknown key "bogus" \(allowed: url, headers, secret, secrets, signature, kong_signature_algorithm, ssl_verify\)/) },
    ]);
    expect(
      await issuesOf(
        svc.hooks.createHook({
          source: 's',
          handler: 'webhook',
          config: { url: 'ftp://x/', headers: { Host: 'evil', 'bad name': 'v', ok: 'a\r\nb' }, secret: 'not base64!', secrets: ['whsk_AAAA'], signature: 'standard' },
        }),
      ),
    ).toEqual([
      { path: '/config/url', message: 'must use http or https (found ftp)' },
      { path: '/config/headers/Host', message: 'is set by hookwire and cannot be configured' },
      { path: '/config/headers/bad name', message: 'must be a valid HTTP header name' },
      { path: '/config/headers/ok', message: 'must not contain CR, LF or NUL' },
      { path: '/config/secret', message: expect.stringMatching(/^must be whsec_<base64>/) },
      { path: '/config/secrets/0', message: 'a whsk_ key must be base64 of 64 bytes (ed25519 seed and public key)' },
    ]);
    expect(await issuesOf(svc.hooks.createHook({ source: 's', handler: 'webhook-custom', config: { url: 'http://x/{{#if}}', method: 'post', body: '{{oops' } }))).toEqual([
      { path: '/config/method', message: expect.stringMatching(/^must be an upper-case HTTP method such as POST/) },
    ]);
    expect(await issuesOf(svc.hooks.createHook({ source: 's', handler: 'webhook-custom', config: { url: 'http://x/{{#if}}', method: 'POST', body: '{{oops' } }))).toEqual([
      { path: '/config/url', message: expect.stringMatching(/^template does not parse: /) },
      { path: '/config/body', message: expect.stringMatching(/^template does not parse: /) },
    ]);
    // A plain Kong secret is fine with signature "kong", and with the default ("auto") as in Kong.
    await svc.hooks.createHook({ source: 's', handler: 'webhook', config: { url: 'http://x/', secret: 'not base64!', signature: 'kong' } });
    await svc.hooks.createHook({ source: 's', handler: 'webhook', config: { url: 'http://x/', secret: 'not base64!' } });
    expect(await issuesOf(svc.hooks.createHook({ source: 's', handler: 'webhook', config: { url: 'http://x/', secret: 'whsec_not base64!' } }))).toEqual([
      { path: '/config/secret', message: 'a whsec_ secret must be base64 after the prefix' },
    ]);
    const h = await svc.hooks.createHook({ source: 's', handler: 'log' });
    expect(await issuesOf(svc.hooks.updateHook(h.id, { id: '4a2c3b1e-0000-4000-8000-000000000009' }))).toEqual([{ path: '/id', message: 'cannot be changed' }]);
  });

  it('exports the handler config schemas (additionalProperties false)', () => {
    for (const s of Object.values(HANDLER_CONFIG_SCHEMAS)) expect(s.additionalProperties).toBe(false);
    expect(HANDLER_CONFIG_SCHEMAS['webhook-custom'].required).toEqual(['url', 'method']);
  });

  it('lists in creation order, paginated by size and an opaque offset', async () => {
    svc = await testService({}, false);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await svc.hooks.createHook({ source: `s${i}`, handler: 'log' })).id);
    const p1 = await svc.hooks.listHooks({ size: 2 });
    expect(p1.data.map((h) => h.id)).toEqual(ids.slice(0, 2));
    expect(p1.offset).toEqual(expect.any(String));
    const p2 = await svc.hooks.listHooks({ size: 2, offset: p1.offset });
    const p3 = await svc.hooks.listHooks({ size: 2, offset: p2.offset });
    expect([...p2.data, ...p3.data].map((h) => h.id)).toEqual(ids.slice(2));
    expect(p3.offset).toBeNull();
    expect((await svc.hooks.listHooks()).data).toHaveLength(5);
    expect(await issuesOf(svc.hooks.listHooks({ size: 0 }))).toEqual([{ path: '/size', message: 'must be an integer between 1 and 1000 (found 0)' }]);
    expect(await issuesOf(svc.hooks.listHooks({ offset: 'garbage' }))).toEqual([{ path: '/offset', message: 'is not an offset this list returned' }]);
  });

  it('hooks and published sources survive a restart on the same file', async () => {
    const t = tempDir();
    const log = capturedLogger();
    const a = new EventHooks({ database: t.db, logger: log.logger });
    const h = await a.createHook({ source: 'http-log', event: 'log', handler: 'log', on_change: true });
    await a.ingest([publishRecord('http-log', 'log', ['ip'], ['ip', 'consumer'])]);
    await a.close();
    const b = new EventHooks({ database: t.db, logger: log.logger });
    expect(await b.getHook(h.id)).toEqual(h);
    expect(b.sourceEvent('http-log', 'log')).toEqual({ fields: ['ip', 'consumer'], unique: ['ip'] });
    // An emit from a plugin that published before the restart is still accepted.
    expect((await b.ingest([emitRecord('http-log', 'log', { ip: '1.2.3.4' })])).accepted).toBe(1);
    await b.close();
    t.cleanup();
  });
});

describe('sources', () => {
  it('lists built-in crud, dao:crud and wasm sources, and what plugins publish', async () => {
    svc = await testService({}, false);
    await svc.hooks.ingest([
      { v: 1, type: 'publish', source: 'http-log', event: 'log', fields: ['consumer', 'ip', 'service', 'route'], unique: ['consumer', 'ip', 'service'], description: 'Run an event for a request', plugin: 'team-a-log' },
    ]);
    const all = svc.hooks.sources();
    expect(Object.keys(all)).toEqual(['crud', 'dao:crud', 'wasm', 'http-log']);
    expect(all.crud!['consumers:create']).toEqual({ fields: ['operation', 'entity', 'old_entity', 'schema'], description: 'consumers create' });
    expect(Object.keys(all['dao:crud']!)).toEqual(['create', 'update', 'delete']);
    expect(Object.keys(all.wasm!)).toEqual(['plugin-loaded', 'plugin-config-refused', 'vm-trapped', 'vm-reloaded', 'plugin-unloaded']);
    expect(svc.hooks.source('http-log')).toEqual({
      log: { fields: ['consumer', 'ip', 'service', 'route'], unique: ['consumer', 'ip', 'service'], description: 'Run an event for a request' },
    });
    expect(svc.hooks.sourceEvent('wasm', 'vm-trapped').fields).toEqual(['vm_id', 'callback', 'reason', 'plugins']);
    expect(() => svc!.hooks.source('nope')).toThrow(EventHookNotFoundError);
    expect(() => svc!.hooks.sourceEvent('http-log', 'nope')).toThrow(/event "http-log\/nope" not found/);
  });
});

describe('events in', () => {
  it('emit for an unpublished source or event is rejected with Kong messages', async () => {
    svc = await testService({}, false);
    await expect(svc.hooks.emit('nope', 'x', {})).rejects.toThrow(new EventRejectedError('nope', 'x', "source 'nope' is not registered"));
    await expect(svc.hooks.emit('wasm', 'nope', {})).rejects.toThrow("source 'wasm' has no 'nope' event");
    await expect(svc.hooks.emit('wasm', 'vm-trapped', 'str' as never)).rejects.toThrow('event data must be a JSON object');
    await expect(svc.hooks.emit('wasm', 'vm-trapped', { n: 1n } as never)).rejects.toThrow(/cannot be encoded as JSON/);
  });

  it('ingest validates each record, counts and lists the rejects, never throws', async () => {
    svc = await testService({ maxEventBytes: 1000 }, false);
    await svc.hooks.createHook({ source: 'http-log', handler: 'log' });
    const r = await svc.hooks.ingest([
      publishRecord('http-log', 'log'),
      emitRecord('http-log', 'log', { ip: '1' }),
      Buffer.from(JSON.stringify(emitRecord('http-log', 'log', { ip: '2' }))),
      JSON.stringify(emitRecord('http-log', 'log', { ip: '3' })),
      emitRecord('http-log', 'other', {}),
      emitRecord('unknown', 'log', {}),
      { v: 2, type: 'emit' },
      { v: 1, type: 'emit', source: 'http-log', event: 'log', data: [] },
      { v: 1, type: 'emit', source: 'http-log', event: 'log', data: {}, surprise: 1 },
      emitRecord('http-log', 'log', { big: 'x'.repeat(2000) }),
      publishRecord('crud', 'consumers'),
      emitRecord('crud', 'consumers', { entity: {} }),
      '{not json',
      Buffer.from([0xff, 0xfe]),
      42,
    ]);
    expect(r).toMatchObject({ stored: true, accepted: 3, published: 1, rejected: 11, deliveries: 3 });
    expect(r.errors.map((e) => [e.index, e.reason])).toEqual([
      [4, "source 'http-log' has no 'other' event"],
      [5, "source 'unknown' is not registered"],
      [6, 'unsupported wire version 2 (expected 1)'],
      [7, '"data" must be a JSON object'],
      [8, 'unknown key "surprise" in a emit record'],
      [9, '"data" is larger than 1000 bytes'],
      [10, "source 'crud' is built in; plugins cannot publish it"],
      [11, "source 'crud' is built in; plugins cannot emit it"],
      [12, expect.stringMatching(/^record is not JSON/)],
      [13, 'record is not valid UTF-8'],
      [14, 'record must be a JSON object'],
    ]);
    expect(svc.log.lines.filter((l) => l.msg === 'event hooks: record rejected')).toHaveLength(10); // rate-limited
    const m = Object.fromEntries((await svc.hooks.metrics()).filter((s) => !s.labels).map((s) => [s.name.replace('hookwire_event_hooks_', ''), s.value]));
    expect(m).toMatchObject({ events_accepted_total: 3, events_rejected_total: 11, records_published_total: 1, deliveries_created_total: 3, deliveries_pending: 3, hooks: 1 });
    expect(await svc.hooks.ingest('nope' as never)).toMatchObject({ rejected: 1, errors: [{ index: -1, reason: 'records must be a list' }] });
  });

  it('a store failure (a real full database): ingest reports stored=false (the ingest endpoint answers 5xx), emit rejects', async () => {
    const t = tempDir();
    const { SqliteStore } = await import('../../host/hooks/index.js');
    const store = new SqliteStore(t.db);
    const log = capturedLogger();
    const hooks = new EventHooks({ store, logger: log.logger });
    await hooks.createHook({ source: 'http-log', handler: 'log' });
    expect((await hooks.ingest([publishRecord('http-log', 'log')])).stored).toBe(true);
    // The file may not grow past the pages it has now: SQLite answers SQLITE_FULL, as on a full disk.
    store.db.pragma(`max_page_count = ${store.db.pragma('page_count', { simple: true }) as number}`);
    const big = { blob: 'x'.repeat(200 * 1024) }; // needs new pages whatever the free space (under maxEventBytes)
    const r = await hooks.ingest([emitRecord('http-log', 'log', big)]);
    expect(r).toMatchObject({ stored: false, accepted: 0, rejected: 1, errors: [{ index: -1, reason: 'store failure: database or disk is full' }] });
    await expect(hooks.emit('http-log', 'log', big)).rejects.toThrow('database or disk is full');
    expect(log.lines.some((l) => l.msg === 'event hooks: storing ingested records failed')).toBe(true);
    // Room again: the same event is accepted, nothing half-written before it.
    store.db.pragma('max_page_count = 1073741823');
    expect(await hooks.ingest([emitRecord('http-log', 'log', big)])).toMatchObject({ stored: true, accepted: 1 });
    expect((await hooks.deliveries((await hooks.listHooks()).data[0]!.id)).data).toHaveLength(1);
    await hooks.close();
    await store.close();
    t.cleanup();
  });

  it('the shared queue consumer ingests records enqueued by plugins, one transaction per turn', async () => {
    svc = await testService({}, false);
    const hook = await svc.hooks.createHook({ source: 'http-log', handler: 'log' });
    const queues = new SharedQueues();
    queues.consume(EVENT_HOOKS_QUEUE.vmId, EVENT_HOOKS_QUEUE.name, svc.hooks.queueConsumer());
    const id = queues.resolve(EVENT_HOOKS_QUEUE.vmId, EVENT_HOOKS_QUEUE.name)!;
    const enc = (o: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(o));
    queues.enqueue(id, enc(publishRecord('http-log', 'log')));
    for (let i = 0; i < 5; i++) queues.enqueue(id, enc(emitRecord('http-log', 'log', { i })));
    const page = await waitUntil(async () => {
      const p = await svc!.hooks.deliveries(hook.id, { size: 10 });
      return p.data.length === 5 ? p : undefined;
    });
    expect(page.data.map((d) => d.data.i)).toEqual([4, 3, 2, 1, 0]);
  });

  it('runtime events become events of the wasm source', async () => {
    svc = await testService({}, false);
    const hook = await svc.hooks.createHook({ source: 'wasm', event: 'vm-trapped', handler: 'log' });
    const sink = svc.hooks.runtimeEventSink();
    sink({ type: 'vm_trapped', vmId: 'vm1', callback: 'proxy_on_request_headers', reason: 'unreachable', plugins: ['a'] });
    sink({ type: 'plugin_loaded', plugin: 'a', vmId: 'vm1', rootId: '', sha256: 'abc', file: 'a.wasm' });
    const [d] = await waitUntil(async () => {
      const p = await svc!.hooks.deliveries(hook.id);
      return p.data.length ? p.data : undefined;
    });
    expect(d).toMatchObject({ source: 'wasm', event: 'vm-trapped', data: { vm_id: 'vm1', callback: 'proxy_on_request_headers', reason: 'unreachable', plugins: ['a'] } });
  });

  it('crud: the service fires crud/event_hooks for its own entity, secrets redacted; others come from emitCrud', async () => {
    svc = await testService({}, false);
    const watcher = await svc.hooks.createHook({ source: 'dao:crud', handler: 'log' });
    const h = await svc.hooks.createHook({ source: 's', handler: 'webhook', config: { url: 'http://127.0.0.1:9/', secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' } });
    await svc.hooks.updateHook(h.id, { snooze: 5 });
    await svc.hooks.deleteHook(h.id);
    const res = await svc.hooks.emitCrud('consumers', 'update', { id: 'c', username: 'new', custom_id: null }, { id: 'c', username: 'old' });
    expect(res.map((r) => r.deliveries)).toEqual([0, 0, 1]);
    const ds = (await svc.hooks.deliveries(watcher.id)).data.reverse();
    expect(ds.map((d) => [d.event, d.data.schema])).toEqual([
      ['create', 'event_hooks'], // the watcher hears its own creation
      ['create', 'event_hooks'],
      ['update', 'event_hooks'],
      ['delete', 'event_hooks'],
      ['update', 'consumers'],
    ]);
    expect((ds[1]!.data.entity as { config: { secret: string } }).config.secret).toBe('<redacted>');
    expect(ds[4]!.data).toEqual({ operation: 'update', entity: { id: 'c', username: 'new' }, old_entity: { id: 'c', username: 'old' }, schema: 'consumers' });
    expect(svc.hooks.sources().crud!['consumers:update']).toBeDefined();
  });
});

describe('test, ping, deliveries, retention, lifecycle', () => {
  it('test() runs the handler now, bypassing snooze and on_change, and returns Kong {data, result}', async () => {
    const r = await receiver((_, res) => {
      res.setHeader('x-reply', 'yes');
      res.statusCode = 202;
      res.end('accepted!');
    });
    rs.push(r);
    svc = await testService();
    const h = await svc.hooks.createHook({ source: 'crud', event: 'consumers', handler: 'webhook', snooze: 3600, on_change: true, config: { url: r.url, secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' } });
    for (let i = 0; i < 2; i++) {
      const out = await svc.hooks.test(h.id, { hello: 'world' });
      expect(out.data).toEqual({ hello: 'world' });
      expect(out.result).toMatchObject({ status: 202, body: 'accepted!', headers: { 'x-reply': 'yes' } });
    }
    expect(r.received).toHaveLength(2);
    expect(JSON.parse(r.received[0]!.body.toString())).toEqual({ hello: 'world', event: 'consumers', source: 'crud' });
    expect(() => verifyWebhook('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', r.received[0]!.headers, r.received[0]!.body)).not.toThrow();
    expect((await svc.hooks.deliveries(h.id)).data).toHaveLength(0); // nothing stored
    const l = await svc.hooks.createHook({ source: 'x', handler: 'log' });
    expect(await svc.hooks.test(l.id, { a: 1 })).toEqual({ data: { a: 1 }, result: true });
    expect(svc.log.lines.some((x) => x.msg === 'log callback' && x.test === true)).toBe(true);
  });

  it('ping() posts Kong ping body (secrets redacted) to webhook hooks only', async () => {
    const r = await receiver((_, res, n) => {
      res.statusCode = n === 1 ? 200 : 500;
      res.end();
    });
    rs.push(r);
    svc = await testService();
    const h = await svc.hooks.createHook({ source: 's', handler: 'webhook', config: { url: r.url, secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' } });
    expect(await svc.hooks.ping(h.id)).toEqual({ status: 200 });
    const body = JSON.parse(r.received[0]!.body.toString());
    expect(body).toMatchObject({ source: 'kong:event_hooks', event: 'ping', event_hooks: { id: h.id, config: { secret: '<redacted>' } } });
    await expect(svc.hooks.ping(h.id)).rejects.toMatchObject({ reason: 'status', status: 500 });
    const l = await svc.hooks.createHook({ source: 's', handler: 'log' });
    expect(await issuesOf(svc.hooks.ping(l.id))).toEqual([{ path: '/handler', message: "handler 'log' does not support 'ping'" }]);
  });

  it('pingOnChange sends Kong ping through the outbox on create and update', async () => {
    const r = await receiver();
    rs.push(r);
    svc = await testService({ pingOnChange: true });
    const h = await svc.hooks.createHook({ source: 's', handler: 'webhook', config: { url: r.url } });
    await svc.hooks.updateHook(h.id, { snooze: 1 });
    const reqs = await r.waitFor(2);
    expect(reqs.map((q) => JSON.parse(q.body.toString()).operation).sort()).toEqual(['create', 'update']);
  });

  it('retryDelivery re-sends a failed delivery with the same webhook-id; unknown ids are not found', async () => {
    const r = await receiver((_, res, n) => {
      res.statusCode = n === 1 ? 500 : 200;
      res.end();
    });
    rs.push(r);
    svc = await testService({ delivery: { retrySchedule: [] } });
    const h = await svc.hooks.createHook({ source: 'crud', event: 'routes', handler: 'webhook', config: { url: r.url } });
    await svc.hooks.emitCrud('routes', 'create', { id: 'r1' });
    const failed = await waitUntil(async () => (await svc!.hooks.deliveries(h.id)).data.find((d) => d.state === 'failed'));
    const again = await svc.hooks.retryDelivery(h.id, failed.id);
    expect(['pending', 'delivering', 'succeeded']).toContain(again.state);
    const ok = await waitUntil(async () => {
      const d = await svc!.hooks.delivery(h.id, failed.id);
      return d.state === 'succeeded' ? d : undefined;
    });
    expect(ok.attempts.map((a) => a.status)).toEqual([500, 200]);
    expect(r.received.map((q) => q.headers['webhook-id'])).toEqual([failed.id, failed.id]);
    await expect(svc.hooks.retryDelivery(h.id, 'msg_nope')).rejects.toMatchObject({ entity: 'delivery' });
    await expect(svc.hooks.deliveries('00000000-0000-4000-8000-000000000000')).rejects.toBeInstanceOf(EventHookNotFoundError);
  });

  it('deliveries are paginated newest first', async () => {
    svc = await testService({}, false);
    const h = await svc.hooks.createHook({ source: 'crud', event: 'routes', handler: 'log' });
    for (let i = 0; i < 5; i++) await svc.hooks.emitCrud('routes', 'create', { i });
    const p1 = await svc.hooks.deliveries(h.id, { size: 3 });
    const p2 = await svc.hooks.deliveries(h.id, { size: 3, offset: p1.offset });
    expect([...p1.data, ...p2.data].map((d) => (d.data.entity as { i: number }).i)).toEqual([4, 3, 2, 1, 0]);
    expect(p2.offset).toBeNull();
    expect(p1.data[0]).toMatchObject({ state: 'pending', attempt_count: 0, attempts: [] });
  });

  it('the retention sweeper deletes old finished deliveries with their attempts, keeps pending ones', async () => {
    let now = Date.now();
    const ok = await receiver();
    const failing = await receiver((_, res) => {
      res.statusCode = 500;
      res.end();
    });
    rs.push(ok, failing);
    svc = await testService({ clock: { now: () => now }, retentionMs: 60_000, delivery: { retrySchedule: [3_600_000] } });
    const a = await svc.hooks.createHook({ source: 'crud', event: 'routes', handler: 'webhook', config: { url: ok.url } });
    const b = await svc.hooks.createHook({ source: 'crud', event: 'routes', handler: 'webhook', config: { url: failing.url } });
    await svc.hooks.emitCrud('routes', 'create', { i: 1 });
    await waitUntil(async () => (await svc!.hooks.deliveries(a.id)).data[0]?.state === 'succeeded');
    await waitUntil(async () => (await svc!.hooks.deliveries(b.id)).data[0]?.attempts.length === 1);
    expect(await svc.hooks.sweep()).toBe(0); // nothing old yet
    now += 61_000;
    expect(await svc.hooks.sweep()).toBeGreaterThan(0);
    expect((await svc.hooks.deliveries(a.id)).data).toHaveLength(0);
    const [pending] = (await svc.hooks.deliveries(b.id)).data;
    // A live delivery keeps its attempts until it finishes (then the retention applies to it as a whole).
    expect(pending).toMatchObject({ state: 'pending', attempt_count: 1, attempts: [{ attempt: 1, status: 500 }] });
  });

  it('closed: calls after close() throw EventHooksClosedError; ingest reports rejects; close is idempotent', async () => {
    svc = await testService({}, false);
    await svc.hooks.close();
    await svc.hooks.close();
    expect(svc.hooks.closed).toBe(true);
    await expect(svc.hooks.createHook({ source: 's', handler: 'log' })).rejects.toBeInstanceOf(EventHooksClosedError);
    await expect(svc.hooks.emit('wasm', 'vm-trapped', {})).rejects.toMatchObject({ code: 'HW_ERR_EVENT_HOOKS_CLOSED' });
    expect(await svc.hooks.ingest([publishRecord('a', 'b')])).toMatchObject({ stored: false, rejected: 1, errors: [{ index: 0, reason: 'event hooks service is closed' }] });
    expect(() => new EventHooks({} as never)).toThrow('database (a SQLite file path) or store is required');
    expect(() => new EventHooks({ database: ':memory:', delivery: { timeoutMs: 5000, leaseMs: 5000 } })).toThrow(/leaseMs must exceed delivery.timeoutMs/);
  });
});
