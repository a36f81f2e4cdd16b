// The /event-hooks endpoints of the Admin API: Kong's paths and status codes, deliveries, retries, ingest.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyWebhook } from '../../host/hooks/signing.js';
import { SqliteStore } from '../../host/hooks/sqlite-store.js';
import type { NewEvent, PublishedSource } from '../../host/hooks/store.js';
import { call, startReceiver, startTestApp, waitFor, type Receiver, type TestApp } from './helpers.js';

const SECRET = 'whsec_' + Buffer.from('event-hooks-api-test-secret-0123').toString('base64');
const INGEST_TOKEN = 'ingest-token-for-tests';

let t: TestApp;
let rx: Receiver;

const api = (method: string, path: string, body?: unknown, headers?: Record<string, string>) => call(t.admin, method, path, body, headers);

beforeAll(async () => {
  rx = await startReceiver();
  t = await startTestApp({ workspaces: [{ name: 'team-a' }], event_hooks: { ingest_token: INGEST_TOKEN } });
});

afterAll(async () => {
  await t?.close();
  await rx?.close();
});

function publish(source: string, event: string) {
  return { v: 1, type: 'publish', source, event, fields: ['ip'], unique: ['ip'], description: 'test event', plugin: 'test-plugin' };
}
function emit(source: string, event: string, data: Record<string, unknown>) {
  return { v: 1, type: 'emit', source, event, data, plugin: 'test-plugin', time_ms: Date.now() };
}

describe('event hooks CRUD', () => {
  /** The hook the first test creates; a test run alone (-t) creates it itself. */
  let sharedId: string | undefined;
  async function hookId(): Promise<string> {
    if (sharedId === undefined) {
      const r = await api('POST', '/event-hooks', { source: 'crud', event: 'consumers', handler: 'webhook', config: { url: rx.url, secret: SECRET } });
      expect(r.status).toBe(201);
      sharedId = r.body.id as string;
    }
    return sharedId;
  }

  it('POST /event-hooks creates a hook: 201 with the entity, defaults filled in', async () => {
    const r = await api('POST', '/event-hooks', { source: 'crud', event: 'consumers', handler: 'webhook', config: { url: rx.url, secret: SECRET } });
    expect(r.status).toBe(201);
    expect(r.headers['content-type']).toMatch(/^application\/json/);
    expect(r.body).toMatchObject({ source: 'crud', event: 'consumers', handler: 'webhook', enabled: true, on_change: null, snooze: null });
    expect(r.body.config).toMatchObject({ url: rx.url, headers: {}, signature: 'auto', kong_signature_algorithm: 'sha256', ssl_verify: true });
    expect(r.body.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(typeof r.body.created_at).toBe('number');
    sharedId = r.body.id;
  });

  it('POST /event-hooks refuses a bad body with 400 naming each field path', async () => {
    const r = await api('POST', '/event-hooks', { source: 'crud', handler: 'webhook', config: { url: 'ftp://x', colour: 'red' }, bogus: 1 });
    expect(r.status).toBe(400);
    expect(r.body.name).toBe('schema violation');
    const paths = (r.body.issues as { path: string }[]).map((i) => i.path);
    expect(paths).toContain('/bogus');
    expect(r.body.message).toContain('bogus');
    const r2 = await api('POST', '/event-hooks', { source: 'crud', handler: 'webhook', config: { url: 'ftp://x' } });
    expect(r2.status).toBe(400);
    expect(r2.body.issues).toEqual([{ path: '/config/url', message: expect.stringMatching(/http/) }]);
    expect(r2.body.fields).toEqual({ config: { url: expect.any(String) } });
    const r3 = await api('POST', '/event-hooks', { handler: 'webhook', config: { url: rx.url } });
    expect(r3.status).toBe(400);
    expect(r3.body.issues[0].path).toBe('/source');
  });

  it('POST /event-hooks: 400 for invalid JSON, 415 for a content type that is neither JSON nor a form', async () => {
    const r = await api('POST', '/event-hooks', '{not json', { 'content-type': 'application/json' });
    expect(r.status).toBe(400);
    expect(r.body.message).toMatch(/Cannot parse JSON/);
    const r2 = await api('POST', '/event-hooks', 'source=crud', { 'content-type': 'text/plain' });
    expect(r2.status).toBe(415);
    expect(r2.body.message).toMatch(/send application\/json, application\/x-www-form-urlencoded or multipart\/form-data$/);
  });

  it('GET /event-hooks/{id}: 200, and 404 {"message":"Not found"} for an unknown id', async () => {
    const id = await hookId();
    const r = await api('GET', `/event-hooks/${id}`);
    expect(r.status).toBe(200);
    expect(r.body.id).toBe(id);
    const missing = await api('GET', '/event-hooks/00000000-0000-4000-8000-000000000000');
    expect(missing.status).toBe(404);
    expect(missing.body).toEqual({ message: 'Not found' });
  });

  it('PATCH /event-hooks/{id}: 200 with the merged entity; 400 with the path; 404 when unknown', async () => {
    const id = await hookId();
    const r = await api('PATCH', `/event-hooks/${id}`, { snooze: 5, config: { headers: { 'x-team': 'a' } } });
    expect(r.status).toBe(200);
    expect(r.body.snooze).toBe(5);
    expect(r.body.config).toMatchObject({ url: rx.url, headers: { 'x-team': 'a' } });
    const bad = await api('PATCH', `/event-hooks/${id}`, { snooze: -1 });
    expect(bad.status).toBe(400);
    expect(bad.body.issues[0].path).toBe('/snooze');
    expect((await api('PATCH', '/event-hooks/00000000-0000-4000-8000-000000000000', { snooze: 1 })).status).toBe(404);
    await api('PATCH', `/event-hooks/${id}`, { snooze: null });
  });

  it('PUT /event-hooks/{id} is not defined (405 with Allow), as in Kong', async () => {
    const id = await hookId();
    const r = await api('PUT', `/event-hooks/${id}`, {});
    expect(r.status).toBe(405);
    expect(r.headers.allow).toBe('GET, PATCH, DELETE');
  });

  it('GET /event-hooks lists with size/offset pagination: {data, next, offset}', async () => {
    const id = await hookId();
    const more: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await api('POST', '/event-hooks', { source: 'wasm', event: 'vm-trapped', handler: 'log' });
      expect(r.status).toBe(201);
      more.push(r.body.id);
    }
    const first = await api('GET', '/event-hooks?size=2');
    expect(first.status).toBe(200);
    expect(first.body.data).toHaveLength(2);
    expect(first.body.next).toMatch(/^\/event-hooks\?size=2&offset=/);
    const second = await api('GET', first.body.next);
    expect(second.body.data).toHaveLength(2);
    expect(second.body.next).toBeNull();
    expect(second.body).not.toHaveProperty('offset');
    const ids = [...first.body.data, ...second.body.data].map((h: { id: string }) => h.id);
    expect(ids).toEqual([id, ...more]);
    expect((await api('GET', '/event-hooks?size=0')).status).toBe(400);
    const bad = await api('GET', '/event-hooks?offset=nonsense');
    expect(bad.status).toBe(400);
    expect(bad.body.issues[0].path).toBe('/offset');
    for (const m of more) expect((await api('DELETE', `/event-hooks/${m}`)).status).toBe(204);
  });

  it('the /{workspace}/event-hooks forms show the same (global) hooks; an unknown workspace is 404', async () => {
    const id = await hookId();
    const r = await api('GET', `/team-a/event-hooks/${id}`);
    expect(r.status).toBe(200);
    expect(r.body.id).toBe(id);
    expect((await api('GET', '/team-a/event-hooks')).body.data.map((h: { id: string }) => h.id)).toEqual([id]);
    expect((await api('GET', '/nowhere/event-hooks')).status).toBe(404);
  });

  it('POST /event-hooks/{id}/test runs the handler now: 200 {data, result}, signed', async () => {
    const id = await hookId();
    const before = rx.hits.length;
    const r = await api('POST', `/event-hooks/${id}/test`, { hello: 'world' });
    expect(r.status).toBe(200);
    expect(r.body.data).toEqual({ hello: 'world' });
    expect(r.body.result).toMatchObject({ status: 200, body: 'ok' });
    expect(rx.hits.length).toBe(before + 1);
    const hit = rx.hits.at(-1)!;
    expect(hit.json).toEqual({ hello: 'world', source: 'crud', event: 'consumers' });
    expect(() => verifyWebhook(SECRET, hit.headers, hit.raw)).not.toThrow();
    const notObject = await api('POST', `/event-hooks/${id}/test`, [1, 2]);
    expect(notObject.status).toBe(400);
    expect((await api('POST', '/event-hooks/00000000-0000-4000-8000-000000000000/test', {})).status).toBe(404);
  });

  it('POST /event-hooks/{id}/test: 400 when the SSRF guard refuses the URL', async () => {
    const h = await api('POST', '/event-hooks', { source: 'crud', handler: 'webhook', config: { url: 'http://10.255.255.1:9/hook' } });
    expect(h.status).toBe(201);
    const r = await api('POST', `/event-hooks/${h.body.id}/test`, {});
    expect(r.status).toBe(400);
    expect(r.body.reason).toBe('refused');
    expect((await api('DELETE', `/event-hooks/${h.body.id}`)).status).toBe(204);
  });

  it('GET /event-hooks/{id}/ping: 200 with an empty body; 400 when the endpoint fails or the handler has no ping', async () => {
    const id = await hookId();
    const r = await api('GET', `/event-hooks/${id}/ping`);
    expect(r.status).toBe(200);
    expect(r.text).toBe('');
    const hit = rx.hits.at(-1)!;
    expect(hit.json).toMatchObject({ source: 'kong:event_hooks', event: 'ping', event_hooks: { id } });
    expect(JSON.stringify(hit.json)).not.toContain(SECRET);

    rx.answer = (_h, res) => {
      res.writeHead(500);
      res.end('no');
    };
    try {
      const failed = await api('GET', `/event-hooks/${id}/ping`);
      expect(failed.status).toBe(400);
      expect(failed.body.message).toMatch(/500/);
    } finally {
      rx.answer = (_h, res) => res.end('ok');
    }
    const log = await api('POST', '/event-hooks', { source: 'crud', handler: 'log' });
    const noPing = await api('GET', `/event-hooks/${log.body.id}/ping`);
    expect(noPing.status).toBe(400);
    expect(noPing.body.message).toMatch(/does not support 'ping'/);
    await api('DELETE', `/event-hooks/${log.body.id}`);
  });

  it('DELETE /event-hooks/{id}: 204, then 404', async () => {
    const h = await api('POST', '/event-hooks', { source: 'crud', handler: 'log' });
    const r = await api('DELETE', `/event-hooks/${h.body.id}`);
    expect(r.status).toBe(204);
    expect(r.text).toBe('');
    expect((await api('DELETE', `/event-hooks/${h.body.id}`)).status).toBe(404);
    expect((await api('GET', `/event-hooks/${h.body.id}`)).status).toBe(404);
  });

  it('the event_hooks hook changes are themselves crud events (crud/event_hooks)', async () => {
    const watcher = await api('POST', '/event-hooks', { source: 'crud', event: 'event_hooks:create', handler: 'webhook', config: { url: rx.url } });
    expect(watcher.status).toBe(201);
    const before = rx.hits.length;
    const created = await api('POST', '/event-hooks', { source: 'crud', handler: 'log' });
    await rx.waitFor((h) => h.length > before && h.some((x) => x.json?.event === 'event_hooks:create' && x.json?.entity?.id === created.body.id), 'the crud event of the new hook');
    await api('DELETE', `/event-hooks/${created.body.id}`);
    await api('DELETE', `/event-hooks/${watcher.body.id}`);
  });
});

describe('sources', () => {
  it('GET /event-hooks/sources lists the built-in sources', async () => {
    const r = await api('GET', '/event-hooks/sources');
    expect(r.status).toBe(200);
    expect(Object.keys(r.body.data)).toEqual(expect.arrayContaining(['crud', 'dao:crud', 'wasm']));
    expect(r.body.data.crud['services:create']).toEqual(expect.objectContaining({ fields: ['operation', 'entity', 'old_entity', 'schema'] }));
  });

  it('GET /event-hooks/sources/{source} and /{source}/{event}; 404 for unknown ones', async () => {
    const r = await api('GET', '/event-hooks/sources/wasm');
    expect(r.status).toBe(200);
    expect(Object.keys(r.body.data)).toContain('vm-trapped');
    const e = await api('GET', '/event-hooks/sources/dao:crud/update');
    expect(e.status).toBe(200);
    expect(e.body.data.fields).toContain('old_entity');
    expect((await api('GET', '/event-hooks/sources/nope')).status).toBe(404);
    expect((await api('GET', '/event-hooks/sources/wasm/nope')).body).toEqual({ message: 'Not found' });
    expect((await api('POST', '/event-hooks/sources')).status).toBe(405);
  });
});

describe('ingest', () => {
  const auth = { authorization: `Bearer ${INGEST_TOKEN}` };

  it('401 without the token or with a wrong one (the admin token is not accepted either)', async () => {
    const body = [publish('ingest-test', 'blocked')];
    const none = await api('POST', '/event-hooks/ingest', body);
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer');
    expect((await api('POST', '/event-hooks/ingest', body, { authorization: 'Bearer wrong' })).status).toBe(401);
    expect((await api('POST', '/event-hooks/ingest', body, { authorization: `Bearer ${INGEST_TOKEN}x` })).status).toBe(401);
    expect((await api('GET', '/event-hooks/sources/ingest-test')).status).toBe(404);
  });

  it('400 when the body is not a JSON array', async () => {
    expect((await api('POST', '/event-hooks/ingest', { v: 1 }, auth)).status).toBe(400);
    expect((await api('POST', '/event-hooks/ingest', '[{', { ...auth, 'content-type': 'application/json' })).status).toBe(400);
  });

  it('GET on the ingest path is 405', async () => {
    const r = await api('GET', '/event-hooks/ingest', undefined, auth);
    expect(r.status).toBe(405);
    expect(r.headers.allow).toBe('POST');
  });

  it('200 with counts once stored, listing refused records; events reach a hook with deliveries recorded', async () => {
    const hook = await api('POST', '/event-hooks', { source: 'ingest-test', event: 'blocked', handler: 'webhook', config: { url: rx.url, secret: SECRET } });
    expect(hook.status).toBe(201);
    const before = rx.hits.length;
    const r = await api(
      'POST',
      '/event-hooks/ingest',
      [
        publish('ingest-test', 'blocked'),
        emit('ingest-test', 'blocked', { ip: '192.0.2.1' }),
        emit('ingest-test', 'unknown-event', { ip: '192.0.2.2' }),
        { v: 2, type: 'emit' },
        emit('crud', 'services', { forged: true }),
      ],
      auth,
    );
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ accepted: 1, published: 1, rejected: 3, deliveries: 1 });
    expect(r.body.errors.map((e: { index: number }) => e.index)).toEqual([2, 3, 4]);
    expect((await api('GET', '/event-hooks/sources/ingest-test/blocked')).body.data).toEqual({ fields: ['ip'], unique: ['ip'], description: 'test event' });

    await rx.waitFor((h) => h.length > before, 'the ingested event delivered');
    const hit = rx.hits.at(-1)!;
    expect(hit.json).toEqual({ ip: '192.0.2.1', source: 'ingest-test', event: 'blocked' });
    verifyWebhook(SECRET, hit.headers, hit.raw);

    let deliveries: any;
    await waitFor(async () => {
      deliveries = await api('GET', `/event-hooks/${hook.body.id}/deliveries`);
      return deliveries.body.data[0]?.state === 'succeeded' ? null : `delivery state ${deliveries.body.data[0]?.state}`;
    });
    expect(deliveries.status).toBe(200);
    expect(deliveries.body.next).toBeNull();
    const d = deliveries.body.data[0];
    expect(d).toMatchObject({ hook_id: hook.body.id, source: 'ingest-test', event: 'blocked', attempt_count: 1, last_status: 200 });
    expect(d.id).toBe(hit.headers['webhook-id']);
    expect(d.attempts).toEqual([expect.objectContaining({ attempt: 1, status: 200, url: rx.url })]);
    const one = await api('GET', `/event-hooks/${hook.body.id}/deliveries/${d.id}`);
    expect(one.status).toBe(200);
    expect(one.body.id).toBe(d.id);
    expect((await api('GET', `/event-hooks/${hook.body.id}/deliveries/msg_nope`)).status).toBe(404);

    // Retry: delivered again with the same webhook-id.
    const n = rx.hits.length;
    const retried = await api('POST', `/event-hooks/${hook.body.id}/deliveries/${d.id}/retry`);
    expect(retried.status).toBe(200);
    expect(retried.body.id).toBe(d.id);
    await rx.waitFor((h) => h.length > n, 'the retried delivery');
    expect(rx.hits.at(-1)!.headers['webhook-id']).toBe(d.id);
    expect((await api('POST', `/event-hooks/${hook.body.id}/deliveries/msg_nope/retry`)).status).toBe(404);
    expect((await api('GET', `/event-hooks/00000000-0000-4000-8000-000000000000/deliveries`)).status).toBe(404);
    expect((await api('GET', `/event-hooks/${hook.body.id}/deliveries?size=5000`)).status).toBe(400);
    expect((await api('GET', `/event-hooks/${hook.body.id}/deliveries/${d.id}/retry`)).status).toBe(405);
    await api('DELETE', `/event-hooks/${hook.body.id}`);
  });

  it('503 with Retry-After when the batch cannot be stored, so the forwarder sends it again; 200 once it can', async () => {
    class FlakyStore extends SqliteStore {
      failing = true;
      override async accept(events: readonly NewEvent[], published: readonly PublishedSource[], nowMs: number): Promise<void> {
        if (this.failing) throw new Error('disk full');
        return super.accept(events, published, nowMs);
      }
    }
    const store = new FlakyStore(':memory:');
    const other = await startTestApp({ event_hooks: { ingest_token: 'tok' } }, { eventHooks: { store } });
    try {
      const batch = [publish('flaky', 'e'), emit('flaky', 'e', { ip: '192.0.2.7' })];
      const failed = await call(other.admin, 'POST', '/event-hooks/ingest', batch, { authorization: 'Bearer tok' });
      expect(failed.status).toBe(503);
      expect(failed.headers['retry-after']).toBe('1');
      expect(failed.body.accepted).toBe(0);
      expect(failed.body.errors).toContainEqual({ index: -1, reason: expect.stringContaining('disk full') });
      store.failing = false;
      const ok = await call(other.admin, 'POST', '/event-hooks/ingest', batch, { authorization: 'Bearer tok' });
      expect(ok.status).toBe(200);
      expect(ok.body).toMatchObject({ accepted: 1, published: 1, rejected: 0 });
    } finally {
      await other.close();
      await store.close();
    }
  });

  it('413 beyond event_hooks.ingest_body_limit', async () => {
    const other = await startTestApp({ event_hooks: { ingest_token: 'tok', ingest_body_limit: 64 } });
    try {
      const big = [emit('x', 'y', { pad: 'p'.repeat(200) })];
      expect((await call(other.admin, 'POST', '/event-hooks/ingest', big, { authorization: 'Bearer tok' })).status).toBe(413);
      expect((await call(other.admin, 'POST', '/event-hooks/ingest', [], { authorization: 'Bearer tok' })).status).toBe(200);
    } finally {
      await other.close();
    }
  });

  it('is 404 when no ingest token is configured', async () => {
    const other = await startTestApp();
    try {
      const r = await call(other.admin, 'POST', '/event-hooks/ingest', [], { authorization: 'Bearer anything' });
      expect(r.status).toBe(404);
      expect(r.body).toEqual({ message: 'Not found' });
    } finally {
      await other.close();
    }
  });

  it('checks only the ingest token when the admin API has a token of its own', async () => {
    const other = await startTestApp({ admin: { token: 'admin-secret' }, event_hooks: { ingest_token: 'ingest-secret' } });
    try {
      expect((await call(other.admin, 'POST', '/event-hooks/ingest', [], { authorization: 'Bearer ingest-secret' })).status).toBe(200);
      expect((await call(other.admin, 'POST', '/event-hooks/ingest', [], { authorization: 'Bearer admin-secret' })).status).toBe(401);
      expect((await call(other.admin, 'GET', '/event-hooks')).status).toBe(401);
      expect((await call(other.admin, 'GET', '/event-hooks', undefined, { authorization: 'Bearer admin-secret' })).status).toBe(200);
    } finally {
      await other.close();
    }
  });
});

describe('event hooks disabled', () => {
  it('answers 404 on /event-hooks and does not open a store', async () => {
    const other = await startTestApp({ event_hooks: { enabled: false, ingest_token: 'x' } });
    try {
      expect(other.app.hooks).toBeNull();
      const r = await call(other.admin, 'GET', '/event-hooks');
      expect(r.status).toBe(404);
      expect(r.body.message).toMatch(/disabled/);
      expect((await call(other.admin, 'POST', '/event-hooks/ingest', [], { authorization: 'Bearer x' })).status).toBe(404);
      // The rest of the Admin API works.
      expect((await call(other.admin, 'GET', '/services')).status).toBe(200);
    } finally {
      await other.close();
    }
  });
});
