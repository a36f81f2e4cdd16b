// Services, routes, consumers and plugins through the Admin API: live changes of the running gateway, and their crud events.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stableId } from '../../host/config/ids.js';
import { verifyWebhook } from '../../host/hooks/signing.js';
import { send } from '../helpers/gateway.js';
import { fixture } from '../helpers/paths.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';
import { call, startReceiver, startTestApp, waitFor, type Hit, type Receiver, type TestApp } from './helpers.js';

const SECRET = 'whsec_' + Buffer.from('entities-api-test-secret-abcdefg').toString('base64');

let upstream: Upstream;
let rx: Receiver;
let t: TestApp;

const api = (method: string, path: string, body?: unknown) => call(t.admin, method, path, body);

beforeAll(async () => {
  upstream = await startUpstream();
  rx = await startReceiver();
  t = await startTestApp({
    services: [{ name: 'echo', url: upstream.url }],
    routes: [{ name: 'base', service: 'echo', paths: ['/base'] }],
    workspaces: [{ name: 'team-a', services: [{ name: 'echo', url: upstream.url }] }],
  });
  // Every crud change, as a signed webhook.
  const hook = await api('POST', '/event-hooks', { source: 'crud', handler: 'webhook', config: { url: rx.url, secret: SECRET } });
  expect(hook.status).toBe(201);
  const dao = await api('POST', '/event-hooks', { source: 'dao:crud', event: 'delete', handler: 'webhook', config: { url: rx.url, secret: SECRET } });
  expect(dao.status).toBe(201);
});

afterAll(async () => {
  await t?.close();
  await rx?.close();
  await upstream?.close();
});

/** Webhooks received for `event` of source crud whose entity matches `pred`. */
function crudHits(event: string, pred: (entity: any) => boolean = () => true): Hit[] {
  return rx.hits.filter((h) => h.json?.source === 'crud' && h.json?.event === event && pred(h.json.entity));
}

async function waitCrud(event: string, pred: (entity: any) => boolean = () => true): Promise<Hit> {
  await rx.waitFor(() => crudHits(event, pred).length > 0, `crud event ${event}`);
  return crudHits(event, pred)[0]!;
}

describe('routes, live', () => {
  it('a route created with POST /routes serves traffic right away; deleting it gives the 404 JSON answer', async () => {
    expect((await send(t.url + '/live/x')).status).toBe(404);
    const created = await api('POST', '/routes', { name: 'live', service: { name: 'echo' }, paths: ['/live'], methods: ['GET'] });
    expect(created.status).toBe(201);
    expect(created.body).toEqual({
      id: stableId('default', 'route', 'live'),
      name: 'live',
      workspace: 'default',
      service: { id: stableId('default', 'service', 'echo'), name: 'echo' },
      hosts: [],
      paths: ['/live'],
      methods: ['GET'],
      strip_path: false,
    });
    const served = await send(t.url + '/live/x');
    expect(served.status).toBe(200);
    expect(served.json().url).toBe('/live/x');

    const ev = await waitCrud('routes', (e) => e.name === 'live');
    expect(ev.json).toEqual({ source: 'crud', event: 'routes', operation: 'create', schema: 'routes', entity: created.body });
    expect(() => verifyWebhook(SECRET, ev.headers, ev.raw)).not.toThrow();
    await waitCrud('routes:create', (e) => e.name === 'live');

    expect((await api('GET', '/routes/live')).body.id).toBe(created.body.id);
    expect((await api('GET', `/routes/${created.body.id}`)).body.name).toBe('live');

    const del = await api('DELETE', '/routes/live');
    expect(del.status).toBe(204);
    const gone = await send(t.url + '/live/x');
    expect(gone.status).toBe(404);
    expect(gone.json()).toMatchObject({ message: 'no Route matched with those values' });
    expect((await api('GET', '/routes/live')).status).toBe(404);

    const dEv = await waitCrud('routes:delete', (e) => e.name === 'live');
    expect(dEv.json).toMatchObject({ operation: 'delete', schema: 'routes', entity: { id: created.body.id } });
    expect(dEv.json).not.toHaveProperty('old_entity');
    await rx.waitFor((h) => h.some((x) => x.json?.source === 'dao:crud' && x.json?.event === 'delete' && x.json?.entity?.name === 'live'), 'dao:crud delete');
  });

  it('PATCH changes a route live, and its update event carries the old entity', async () => {
    await api('POST', '/routes', { name: 'patchme', service: 'echo', paths: ['/p1'] });
    expect((await send(t.url + '/p1')).status).toBe(200);
    const r = await api('PATCH', '/routes/patchme', { paths: ['/p2'], strip_path: true });
    expect(r.status).toBe(200);
    expect(r.body.paths).toEqual(['/p2']);
    expect((await send(t.url + '/p1')).status).toBe(404);
    const s = await send(t.url + '/p2/rest');
    expect(s.status).toBe(200);
    expect(s.json().url).toBe('/rest');
    const ev = await waitCrud('routes:update', (e) => e.name === 'patchme');
    expect(ev.json.old_entity).toMatchObject({ paths: ['/p1'], strip_path: false });
    expect(ev.json.entity).toMatchObject({ paths: ['/p2'], strip_path: true });
    await api('DELETE', '/routes/patchme');
  });

  it('400 with the field path: bad values, unknown keys, a missing service', async () => {
    const bad = await api('POST', '/routes', { name: 'bad', service: 'echo', paths: ['no-slash'], colour: 'red' });
    expect(bad.status).toBe(400);
    expect(bad.body.name).toBe('schema violation');
    expect(bad.body.issues.map((i: { path: string }) => i.path).sort()).toEqual(['/colour', '/paths/0']);
    expect(bad.body.fields.paths['0']).toMatch(/path prefix/);
    expect(bad.body.message).toMatch(/^schema violation \(/);

    const missing = await api('POST', '/routes', { name: 'orphan', service: 'nope', paths: ['/orphan'] });
    expect(missing.status).toBe(400);
    expect(missing.body.issues).toEqual([{ path: '/service', message: expect.stringContaining('"nope"') }]);

    const required = await api('POST', '/routes', { paths: ['/x'] });
    expect(required.status).toBe(400);
    expect(required.body.issues.map((i: { path: string }) => i.path).sort()).toEqual(['/name', '/service']);

    const byUnknownId = await api('POST', '/routes', { name: 'x', service: { id: '00000000-0000-5000-8000-000000000000' } });
    expect(byUnknownId.status).toBe(400);
    expect(byUnknownId.body.issues[0].path).toBe('/service/id');
    expect((await send(t.url + '/orphan')).status).toBe(404);
  });

  it('409 when the name is taken in the workspace', async () => {
    const r = await api('POST', '/routes', { name: 'base', service: 'echo' });
    expect(r.status).toBe(409);
    expect(r.body).toMatchObject({ name: 'unique constraint violation', message: `UNIQUE violation detected on '{name="base"}'` });
  });

  it('405 with Allow for a known path and a wrong method; 404 for unknown ids', async () => {
    const r = await api('POST', '/routes/base', {});
    expect(r.status).toBe(405);
    expect(r.headers.allow).toBe('GET, PATCH, PUT, DELETE');
    const c = await api('DELETE', '/routes');
    expect(c.status).toBe(405);
    expect(c.headers.allow).toBe('GET, POST');
    expect((await api('GET', '/routes/nope')).body).toEqual({ message: 'Not found' });
    expect((await api('PATCH', '/routes/nope', { paths: ['/x'] })).status).toBe(404);
    expect((await api('DELETE', '/routes/nope')).status).toBe(404);
  });

  it('GET /routes paginates', async () => {
    for (const n of ['pa', 'pb', 'pc']) expect((await api('POST', '/routes', { name: n, service: 'echo', paths: [`/${n}`] })).status).toBe(201);
    const first = await api('GET', '/routes?size=2');
    expect(first.body.data.map((r: { name: string }) => r.name)).toEqual(['base', 'pa']);
    expect(first.body.next).toMatch(/^\/routes\?size=2&offset=/);
    const second = await api('GET', first.body.next);
    expect(second.body.data.map((r: { name: string }) => r.name)).toEqual(['pb', 'pc']);
    expect(second.body.next).toBeNull();
    expect((await api('GET', '/routes?size=abc')).status).toBe(400);
    for (const n of ['pa', 'pb', 'pc']) expect((await api('DELETE', `/routes/${n}`)).status).toBe(204);
  });
});

describe('services', () => {
  it('POST, GET, PATCH (rename: routes follow), PUT upsert, DELETE', async () => {
    const c = await api('POST', '/services', { name: 'svc2', url: `${upstream.url}/v2`, read_timeout_ms: 5000 });
    expect(c.status).toBe(201);
    expect(c.body).toEqual({
      id: stableId('default', 'service', 'svc2'),
      name: 'svc2',
      workspace: 'default',
      urls: [`${upstream.url}/v2`],
      connect_timeout_ms: 5000,
      read_timeout_ms: 5000,
      pool_size: 64,
      http2: false,
      ca_file: null,
    });
    await api('POST', '/routes', { name: 'to-svc2', service: 'svc2', paths: ['/svc2'], strip_path: true });
    expect((await send(t.url + '/svc2/a')).json().url).toBe('/v2/a');

    const renamed = await api('PATCH', '/services/svc2', { name: 'svc3', url: `${upstream.url}/v3` });
    expect(renamed.status).toBe(200);
    expect(renamed.body.id).toBe(stableId('default', 'service', 'svc3'));
    expect((await api('GET', '/routes/to-svc2')).body.service).toEqual({ id: renamed.body.id, name: 'svc3' });
    expect((await send(t.url + '/svc2/a')).json().url).toBe('/v3/a');
    const ev = await waitCrud('services:update', (e) => e.name === 'svc3');
    expect(ev.json.old_entity).toMatchObject({ name: 'svc2', id: c.body.id });

    const fk = await api('DELETE', '/services/svc3');
    expect(fk.status).toBe(400);
    expect(fk.body).toMatchObject({ name: 'foreign key violation', message: "an existing 'routes' entity references this 'services' entity" });

    const put = await api('PUT', '/services/svc3', { urls: [`${upstream.url}/v4`] });
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ name: 'svc3', urls: [`${upstream.url}/v4`], read_timeout_ms: 60000 });
    expect((await send(t.url + '/svc2/a')).json().url).toBe('/v4/a');

    const upserted = await api('PUT', '/services/brand-new', { url: upstream.url });
    expect(upserted.status).toBe(200);
    expect(upserted.body.id).toBe(stableId('default', 'service', 'brand-new'));
    await waitCrud('services:create', (e) => e.name === 'brand-new');
    const wrongId = await api('PUT', '/services/00000000-0000-5000-8000-000000000000', { name: 'x', url: upstream.url });
    expect(wrongId.status).toBe(400);
    expect(wrongId.body.issues[0].path).toBe('/id');
    const putById = await api('PUT', `/services/${stableId('default', 'service', 'by-id')}`, { name: 'by-id', url: upstream.url });
    expect(putById.status).toBe(200);

    expect((await api('DELETE', '/routes/to-svc2')).status).toBe(204);
    for (const n of ['svc3', 'brand-new', 'by-id']) expect((await api('DELETE', `/services/${n}`)).status).toBe(204);
    expect((await api('GET', '/services')).body.data.map((s: { name: string }) => s.name)).toEqual(['echo']);
  });

  it('400 naming the field: url and urls together, a bad URL, a value out of range', async () => {
    const both = await api('POST', '/services', { name: 'x', url: upstream.url, urls: [upstream.url] });
    expect(both.status).toBe(400);
    expect(both.body.issues).toEqual([{ path: '', message: 'must set exactly one of "url" and "urls" (found both)' }]);
    const badUrl = await api('POST', '/services', { name: 'x', url: 'ftp://x' });
    expect(badUrl.body.issues).toEqual([{ path: '/url', message: expect.stringContaining('http') }]);
    const range = await api('PATCH', '/services/echo', { pool_size: 0 });
    expect(range.status).toBe(400);
    expect(range.body.issues).toEqual([{ path: '/pool_size', message: 'must be an integer between 1 and 65535 (found 0)' }]);
    const echo = await api('POST', '/services', { name: 'x', url: upstream.url, id: '00000000-0000-5000-8000-000000000000' });
    expect(echo.body.issues[0].path).toBe('/id');
  });
});

describe('consumers', () => {
  it('POST 201, GET by username or id, PATCH 200, PUT, 409 on a taken custom_id, DELETE 204', async () => {
    const c = await api('POST', '/consumers', { username: 'alice', custom_id: 'crm-1' });
    expect(c.status).toBe(201);
    expect(c.body).toEqual({ id: stableId('default', 'consumer', 'alice'), username: 'alice', custom_id: 'crm-1', workspace: 'default' });
    const ev = await waitCrud('consumers:create', (e) => e.username === 'alice');
    expect(ev.json).toEqual({ source: 'crud', event: 'consumers:create', operation: 'create', schema: 'consumers', entity: c.body });
    expect((await api('GET', `/consumers/${c.body.id}`)).body.username).toBe('alice');
    expect((await api('PATCH', '/consumers/alice', { custom_id: null })).body.custom_id).toBeNull();
    expect((await api('PUT', '/consumers/bob', { custom_id: 'crm-1' })).status).toBe(200);
    const taken = await api('POST', '/consumers', { username: 'carol', custom_id: 'crm-1' });
    expect(taken.status).toBe(409);
    expect(taken.body.fields).toHaveProperty('custom_id');
    expect((await api('DELETE', '/consumers/alice')).status).toBe(204);
    expect((await api('DELETE', '/consumers/bob')).status).toBe(204);
    expect((await api('GET', '/consumers')).body).toEqual({ data: [], next: null });
  });
});

describe('workspaces', () => {
  it('the /{workspace}/... forms work on that workspace; an unknown workspace is 404', async () => {
    const r = await api('POST', '/team-a/routes', { name: 'a-route', service: 'echo', paths: ['/team-a-live'] });
    expect(r.status).toBe(201);
    expect(r.body.workspace).toBe('team-a');
    expect(r.body.id).toBe(stableId('team-a', 'route', 'a-route'));
    expect((await send(t.url + '/team-a-live')).status).toBe(200);
    expect((await api('GET', '/routes/a-route')).status).toBe(404);
    expect((await api('GET', '/team-a/routes')).body.data.map((x: { name: string }) => x.name)).toEqual(['a-route']);
    expect((await api('GET', '/team-a/services')).body.data.map((x: { name: string }) => x.name)).toEqual(['echo']);
    const wrongWs = await api('POST', '/team-a/routes', { name: 'b', service: 'echo', workspace: 'default' });
    expect(wrongWs.status).toBe(400);
    expect(wrongWs.body.issues[0].path).toBe('/workspace');
    expect((await api('GET', '/nowhere/routes')).status).toBe(404);
    expect((await api('POST', '/nowhere/services', { name: 'x', url: upstream.url })).status).toBe(404);
    expect((await api('DELETE', '/team-a/routes/a-route')).status).toBe(204);
    expect((await send(t.url + '/team-a-live')).status).toBe(404);
  });
});

describe('plugins', () => {
  it('attach a plugin to a route: it runs on the next request; PATCH reconfigures it; DELETE detaches it', async () => {
    const created = await api('POST', '/plugins', {
      name: 'tagger',
      wasm: fixture('proxy-filter'),
      route: { name: 'base' },
      configuration: { response_header: 'x-tag', response_value: 'one' },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      id: stableId('default', 'plugin', 'tagger'),
      name: 'tagger',
      scope: 'route',
      workspace: 'default',
      route: { id: stableId('default', 'route', 'base'), name: 'base' },
      service: null,
      root_id: 'tagger',
      vm_id: 'tagger',
      configuration: { response_header: 'x-tag', response_value: 'one' },
      vm_configuration: null,
      failure_policy: 'fail_closed',
      enabled: true,
    });
    expect((await send(t.url + '/base')).headers['x-tag']).toBe('one');
    await waitCrud('plugins:create', (e) => e.name === 'tagger');

    const patched = await api('PATCH', `/plugins/${created.body.id}`, { configuration: { response_header: 'x-tag', response_value: 'two' } });
    expect(patched.status).toBe(200);
    expect((await send(t.url + '/base')).headers['x-tag']).toBe('two');

    // Moving it to the workspace level: it runs for every route of the workspace.
    const moved = await api('PATCH', '/plugins/tagger', { route: null, scope: 'workspace' });
    expect(moved.status).toBe(200);
    expect(moved.body).toMatchObject({ scope: 'workspace', route: null });
    expect((await api('GET', '/plugins')).body.data.map((p: { name: string }) => p.name)).toEqual(['tagger']);

    expect((await api('DELETE', '/plugins/tagger')).status).toBe(204);
    expect((await send(t.url + '/base')).headers['x-tag']).toBeUndefined();
    await waitCrud('plugins:delete', (e) => e.name === 'tagger');
  });

  it('a plugin that refuses its configuration: 400 with the reason, and the previous configuration keeps serving', async () => {
    const before = t.app.gateway.generation;
    const r = await api('POST', '/plugins', { name: 'refuser', wasm: fixture('proxy-filter'), route: 'base', configuration: { refuse: true } });
    expect(r.status).toBe(400);
    expect(r.body).toMatchObject({ name: 'reload refused', stage: 'plugins', code: 'HW_ERR_RELOAD_FAILED' });
    expect(r.body.message).toContain('plugin refuser');
    expect(t.app.gateway.generation).toBe(before);
    expect((await send(t.url + '/base')).status).toBe(200);
    expect((await api('GET', '/plugins/refuser')).status).toBe(404);
    const missing = await api('POST', '/plugins', { name: 'ghost', wasm: '/nonexistent/ghost.wasm' });
    expect(missing.status).toBe(400);
    expect(missing.body.message).toContain('ghost.wasm');
    expect(crudHits('plugins:create', (e) => e.name === 'refuser' || e.name === 'ghost')).toEqual([]);
  });

  it('plugin bodies are checked: unknown keys, bad enums, both route and service', async () => {
    const r = await api('POST', '/plugins', { name: 'p', wasm: 'x.wasm', failure_policy: 'explode', colour: {} });
    expect(r.status).toBe(400);
    expect(r.body.issues.map((i: { path: string }) => i.path).sort()).toEqual(['/colour', '/failure_policy']);
    // `config` is Kong's word for `configuration`: giving both is the mistake.
    const twice = await api("POST", "/plugins", { name: "p", wasm: "x.wasm", config: {}, configuration: {} });
    expect(twice.status).toBe(400);
    expect(twice.body.fields).toEqual({ config: 'give either config (Kong\'s name) or configuration, not both' });
    const both = await api('POST', '/plugins', { name: 'p', wasm: fixture('proxy-filter'), route: 'base', service: 'echo' });
    expect(both.status).toBe(400);
    expect(both.body.issues[0].path).toBe('/route');
    const noRoute = await api('POST', '/plugins', { name: 'p', wasm: fixture('proxy-filter'), route: 'nope' });
    expect(noRoute.body.issues[0]).toEqual({ path: '/route', message: 'no route "nope" in workspace "default"' });
  });
});

describe('GET /config', () => {
  it('returns the current document, Admin API changes included, as JSON or YAML', async () => {
    await api('POST', '/routes', { name: 'saved', service: 'echo', paths: ['/saved'] });
    const j = await api('GET', '/config');
    expect(j.status).toBe(200);
    expect(j.body.routes.map((r: { name: string }) => r.name)).toEqual(['base', 'saved']);
    expect(j.body.workspaces.map((w: { name: string }) => w.name)).toEqual(['team-a']);
    const y = await call(t.admin, 'GET', '/config?format=yaml');
    expect(y.headers['content-type']).toMatch(/^application\/yaml/);
    expect(y.text).toContain('name: saved');
    const a = await call(t.admin, 'GET', '/config', undefined, { accept: 'application/yaml' });
    expect(a.text).toBe(y.text);
    expect((await api('GET', '/config?format=xml')).status).toBe(400);
    expect((await api('GET', '/status')).body.config_source).toMatch(/\+ Admin API changes$/);
    await api('DELETE', '/routes/saved');
  });
});

describe('every crud event was signed and well-formed', () => {
  it('has a valid Standard Webhooks signature and distinct ids', async () => {
    await waitFor(() => (rx.hits.length > 0 ? null : 'no webhook'));
    const ids = new Set<string>();
    for (const hit of rx.hits) {
      verifyWebhook(SECRET, hit.headers, hit.raw);
      ids.add(hit.headers['webhook-id']!);
      expect(['crud', 'dao:crud']).toContain(hit.json.source);
      expect(hit.json).toHaveProperty('schema');
    }
    expect(ids.size).toBe(rx.hits.length);
  });
});

describe('length limits', () => {
  it('a 10,000-character service name and a 500,000-character username are refused with 400 naming the field; the limits themselves pass', async () => {
    const longName = await api('POST', '/services', { name: 's'.repeat(10_000), url: upstream.url });
    expect(longName.status).toBe(400);
    expect(longName.body.fields).toEqual({ name: expect.stringMatching(/must NOT have more than 128 characters/) });
    const longUser = await api('POST', '/consumers', { username: 'u'.repeat(500_000) });
    expect(longUser.status).toBe(400);
    expect(longUser.body.fields).toEqual({ username: expect.stringMatching(/must NOT have more than 256 characters/) });

    const atLimit = await api('POST', '/services', { name: 'n'.repeat(128), url: upstream.url });
    expect(atLimit.status).toBe(201);
    expect((await api('POST', '/consumers', { username: 'u'.repeat(256) })).status).toBe(201);
    expect((await api('DELETE', `/services/${'n'.repeat(128)}`)).status).toBe(204);
  });
});
