// Handler `wasm` through the Admin API alone: a transform uploaded as base64, crud events of
// entities created through the Admin API transformed (or dropped) and delivered to a local receiver.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { verifyWebhook } from '../../host/hooks/signing.js';
import { ROOT } from '../helpers/paths.js';
import { call, startReceiver, startTestApp, waitFor, type Receiver, type TestApp } from './helpers.js';

const SECRET = 'whsec_' + Buffer.from('wasm-hooks-api-test-secret-01234').toString('base64');
const SLACK = readFileSync(join(ROOT, 'dist', 'transforms', 'slack.wasm')).toString('base64');

let t: TestApp;
let rx: Receiver;
const api = (method: string, path: string, body?: unknown) => call(t.admin, method, path, body);

beforeAll(async () => {
  rx = await startReceiver();
  t = await startTestApp();
});

afterAll(async () => {
  await t?.close();
  await rx?.close();
});

describe('handler wasm through the Admin API', () => {
  let id: string;

  it('POST /event-hooks installs a base64 transform: 201; the module is checked', async () => {
    const r = await api('POST', '/event-hooks', {
      source: 'crud',
      event: 'services:create',
      handler: 'wasm',
      config: { module: { base64: SLACK }, url: rx.url, secret: SECRET },
    });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ handler: 'wasm', config: { url: rx.url, timeout_ms: 100, max_memory_mb: 16, allow_url: false } });
    id = r.body.id;
    expect((await api('GET', '/event-hooks')).body.data.map((h: { id: string }) => h.id)).toContain(id);
  });

  it('a service created through the Admin API reaches the receiver as the transform made it, signed', async () => {
    expect((await api('POST', '/services', { name: 'billing', url: 'http://127.0.0.1:9' })).status).toBe(201);
    await rx.waitFor((h) => h.some((x) => x.json?.text === 'services billing create'), 'the Slack message');
    const hit = rx.hits.find((x) => x.json?.text === 'services billing create')!;
    expect(hit.headers['x-hookwire-transform']).toBe('slack');
    expect(hit.json).toEqual({ text: 'services billing create' });
    expect(verifyWebhook(SECRET, hit.headers, hit.raw).id).toMatch(/^msg_/);
  });

  it('a dropped event is listed as dropped in the deliveries (and by GET /event-hooks/deliveries?state=dropped)', async () => {
    const drop = await api('POST', '/event-hooks', { source: 'crud', event: 'consumers:create', handler: 'wasm', config: { module: { base64: SLACK }, url: rx.url } });
    expect(drop.status).toBe(201);
    expect((await api('POST', '/consumers', { username: 'ann' })).status).toBe(201);
    let list: any;
    await waitFor(async () => {
      list = await api('GET', `/event-hooks/${drop.body.id}/deliveries`);
      return list.body.data[0]?.state === 'dropped' ? null : `a dropped delivery (got ${JSON.stringify(list.body.data.map((d: { state: string }) => d.state))})`;
    });
    expect(list.body.data[0].attempts[0]).toMatchObject({ status: null, error: null, response: 'consumers events are not sent to Slack' });
    const all = await api('GET', '/event-hooks/deliveries?state=dropped');
    expect(all.status).toBe(200);
    expect(all.body.data.map((d: { id: string }) => d.id)).toContain(list.body.data[0].id);
  });

  it('PATCH and DELETE work as for other hooks; a bad module is refused with 400 naming config.module', async () => {
    const p = await api('PATCH', `/event-hooks/${id}`, { config: { timeout_ms: 200 } });
    expect(p.status).toBe(200);
    expect(p.body.config.timeout_ms).toBe(200);
    const bad = await api('PATCH', `/event-hooks/${id}`, { config: { module: { base64: Buffer.from('not wasm').toString('base64') } } });
    expect(bad.status).toBe(400);
    expect(bad.body.name).toBe('schema violation');
    expect(bad.body.issues).toEqual([{ path: '/config/module', message: expect.stringMatching(/^does not compile: /) }]);
    expect(bad.body.fields).toEqual({ config: { module: expect.stringMatching(/^does not compile/) } });
    expect((await api('DELETE', `/event-hooks/${id}`)).status).toBe(204);
    expect((await api('GET', `/event-hooks/${id}`)).status).toBe(404);
  });

  it('POST with a module that lacks the export: 400 naming config.module and why', async () => {
    const noExport = readFileSync(join(ROOT, 'build', 'fixtures', 'transforms', 'no-export.wasm')).toString('base64');
    const r = await api('POST', '/event-hooks', { source: 'crud', handler: 'wasm', config: { module: { base64: noExport }, url: rx.url } });
    expect(r.status).toBe(400);
    expect(r.body.issues).toEqual([{ path: '/config/module', message: 'does not export the function "transform" (export function transform(event: string): string)' }]);
  });

  it("handler lambda: 400 saying Kong's lambda is not supported, pointing to wasm", async () => {
    const r = await api('POST', '/event-hooks', { source: 'crud', handler: 'lambda', config: { functions: ['return function() end'] } });
    expect(r.status).toBe(400);
    expect(r.body.issues).toEqual([{ path: '/handler', message: expect.stringMatching(/^Kong's lambda handler \(Lua functions\) is not supported: .*handler 'wasm'/) }]);
  });
});
