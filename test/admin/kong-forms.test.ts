// Kong's how-to sequences, replayed verbatim with curl: form bodies (-d,
// urlencoded) and multipart (-F), dotted keys, arrays, nested endpoints,
// Kong's plugin words (name as the plugin type, config, instance_name), values
// typed by the same schema as JSON bodies, the same 400s naming the field.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send, until } from '../helpers/gateway.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';
import { startReceiver, startTestApp, type Receiver, type TestApp } from './helpers.js';

const run = promisify(execFile);

let t: TestApp;
let upstream: Upstream;
let collector: Upstream;
let rx: Receiver;

/** `curl -s <args>` against the admin listener ($ADMIN in the args); the status and the JSON body. */
async function curl(...args: string[]): Promise<{ status: number; body: any }> {
  const { stdout } = await run('curl', ['-s', '-w', '\n%{http_code}', ...args.map((a) => a.replaceAll('$ADMIN', t.admin))]);
  const nl = stdout.lastIndexOf('\n');
  const text = stdout.slice(0, nl);
  return { status: Number(stdout.slice(nl + 1)), body: text ? JSON.parse(text) : null };
}

beforeAll(async () => {
  upstream = await startUpstream();
  collector = await startUpstream();
  rx = await startReceiver();
  t = await startTestApp({});
});

afterAll(async () => {
  await t?.close();
  await rx?.close();
  await upstream?.close();
  await collector?.close();
});

describe("Kong's getting-started sequence with -d (urlencoded)", () => {
  it('a service, a route under it (paths[]), served through the proxy', async () => {
    const service = await curl('-X', 'POST', '$ADMIN/services', '--data', 'name=example_service', '--data', `url=${upstream.url}`, '--data', 'connect_timeout_ms=5000');
    expect(service.status).toBe(201);
    expect(service.body).toMatchObject({ name: 'example_service', connect_timeout_ms: 5000 }); // "5000" typed as the schema says
    const route = await curl('-X', 'POST', '$ADMIN/services/example_service/routes', '--data', 'paths[]=/mock', '--data', 'name=example_route');
    expect(route.status).toBe(201);
    expect(route.body).toMatchObject({ name: 'example_route', paths: ['/mock'], service: { name: 'example_service' } });
    expect((await send(`${t.url}/mock/anything`)).status).toBe(200);
    const listed = await curl('$ADMIN/services/example_service/routes');
    expect(listed.body.data.map((r: { name: string }) => r.name)).toEqual(['example_route']);
  });

  it('arrays three ways (paths[1]/paths[2], paths[]/paths[], repeated paths), booleans, "" as null', async () => {
    await curl('-X', 'POST', '$ADMIN/services', '-d', 'name=arrays', '-d', `url=${upstream.url}`);
    const indexed = await curl('-X', 'POST', '$ADMIN/routes', '-d', 'name=a1', '-d', 'service.name=arrays', '-d', 'paths[1]=/a1', '-d', 'paths[2]=/b1', '-d', 'strip_path=true');
    const appended = await curl('-X', 'POST', '$ADMIN/routes', '-d', 'name=a2', '-d', 'service=arrays', '-d', 'paths[]=/a2', '-d', 'paths[]=/b2');
    const repeated = await curl('-X', 'POST', '$ADMIN/routes', '-d', 'name=a3', '-d', 'service=arrays', '-d', 'paths=/a3', '-d', 'paths=/b3', '-d', 'methods=GET');
    expect(indexed.body).toMatchObject({ paths: ['/a1', '/b1'], strip_path: true });
    expect(appended.body).toMatchObject({ paths: ['/a2', '/b2'] });
    expect(repeated.body).toMatchObject({ paths: ['/a3', '/b3'], methods: ['GET'] });
    const consumer = await curl('-X', 'POST', '$ADMIN/consumers', '-d', 'username=alice', '-d', 'custom_id=');
    expect(consumer.status).toBe(201);
    expect(consumer.body).toMatchObject({ username: 'alice', custom_id: null });
  });

  it('the same 400s as JSON, naming the field', async () => {
    const bad = await curl('-X', 'POST', '$ADMIN/services', '-d', 'name=bad', '-d', `url=${upstream.url}`, '-d', 'connect_timeout_ms=soon', '-d', 'colour=red');
    expect(bad.status).toBe(400);
    expect(bad.body.fields).toMatchObject({ connect_timeout_ms: expect.stringMatching(/must be an integer/), colour: expect.stringMatching(/^unknown key/) });
    const badBool = await curl('-X', 'POST', '$ADMIN/routes', '-d', 'name=b', '-d', 'service=example_service', '-d', 'strip_path=TRUE');
    expect(badBool.status).toBe(400);
    expect(badBool.body.fields).toEqual({ strip_path: expect.stringMatching(/^must be true or false/) });
    const proto = await curl('-X', 'POST', '$ADMIN/consumers', '-d', 'username=p', '-d', '__proto__.x=1');
    expect(proto.status).toBe(400);
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });
});

describe("Kong's plugin words", () => {
  it('name as the plugin type with config.* (-d), on a service: http-log ships its entries', async () => {
    await curl('-X', 'POST', '$ADMIN/services', '-d', 'name=collector', '-d', `url=${collector.url}`);
    const plugin = await curl(
      '-X', 'POST', '$ADMIN/services/example_service/plugins',
      '--data', 'name=http-log',
      '--data', 'config.http_endpoint=http://collector/logs',
      '--data', 'config.queue.max_coalescing_delay=0.1',
    );
    expect(plugin.status).toBe(201);
    // config.* typed by http-log's own schema (its manifest), as Kong types config by the plugin's schema.
    expect(plugin.body).toMatchObject({ name: 'http-log', service: { name: 'example_service' }, configuration: { http_endpoint: 'http://collector/logs', queue: { max_coalescing_delay: 0.1 } } });
    expect((await send(`${t.url}/mock/logged`, { headers: { 'x-request-id': 'form-logged' } })).status).toBe(200);
    await until(() => collector.received.some((e) => e.url === '/logs' && e.body.includes('form-logged')), 10_000);
  });

  it('-F (multipart) on a route, with instance_name', async () => {
    const plugin = await curl(
      '-X', 'POST', '$ADMIN/routes/example_route/plugins',
      '-F', 'name=hello-world',
      '-F', 'instance_name=hello-form',
      '-F', 'config.header=x-form',
      '-F', 'config.value=multipart',
    );
    expect(plugin.status).toBe(201);
    expect(plugin.body).toMatchObject({ name: 'hello-form', route: { name: 'example_route' }, configuration: { header: 'x-form', value: 'multipart' } });
    const r = await send(`${t.url}/mock/x`);
    expect(r.headers['x-form']).toBe('multipart');
    expect((await curl('$ADMIN/routes/example_route/plugins')).body.data.map((p: { name: string }) => p.name)).toEqual(['hello-form']);
  });

  it('a plugin type nobody ships is a 400 naming wasm', async () => {
    const r = await curl('-X', 'POST', '$ADMIN/plugins', '-d', 'name=rate-limiting', '-d', 'config.minute=5');
    expect(r.status).toBe(400);
    expect(r.body.fields.wasm).toMatch(/no module rate-limiting\.wasm/);
  });
});

describe("Kong's event-hooks sequence with -d", () => {
  it('webhook, webhook-custom and log hooks from form fields; a consumer created with -d fires them', async () => {
    const webhook = await curl('-X', 'POST', '$ADMIN/event-hooks', '-d', 'source=crud', '-d', 'event=consumers', '-d', 'handler=webhook', '-d', `config.url=${rx.url}`, '-d', 'config.headers.x-team=blue', '-d', 'config.ssl_verify=false');
    expect(webhook.status).toBe(201);
    expect(webhook.body).toMatchObject({ source: 'crud', event: 'consumers', handler: 'webhook', config: { url: rx.url, headers: { 'x-team': 'blue' }, ssl_verify: false } });
    const custom = await curl(
      '-X', 'POST', '$ADMIN/event-hooks',
      '-d', 'source=crud', '-d', 'event=consumers', '-d', 'handler=webhook-custom',
      '-d', 'config.method=POST', '-d', `config.url=${rx.url}/custom`,
      '-d', 'config.payload.text={{ operation }} {{ entity.username }}',
    );
    expect(custom.status).toBe(201);
    const log = await curl('-X', 'POST', '$ADMIN/event-hooks', '-d', 'source=dao:crud', '-d', 'event=create', '-d', 'handler=log', '-d', 'snooze=', '-d', 'on_change=');
    expect(log.status).toBe(201);
    expect(log.body).toMatchObject({ handler: 'log', snooze: null, on_change: null });

    expect((await curl('-X', 'POST', '$ADMIN/consumers', '-d', 'username=bob')).status).toBe(201);
    await until(() => rx.hits.some((h) => h.url === '/hook' && h.json?.entity?.username === 'bob') && rx.hits.some((h) => h.url === '/hook/custom'), 10_000);
    const hit = rx.hits.find((h) => h.url === '/hook' && h.json.entity.username === 'bob')!;
    expect(hit.headers['x-team']).toBe('blue');
    const customHit = rx.hits.find((h) => h.url === '/hook/custom')!;
    // Kong's webhook-custom payload without a content type: multipart, the template rendered.
    expect(customHit.raw.toString()).toMatch(/name="text"\r\n\r\ncreate bob\r\n/);

    // PATCH with -d: the hook's own handler types the config.
    const patched = await curl('-X', 'PATCH', `$ADMIN/event-hooks/${webhook.body.id}`, '-d', 'config.ssl_verify=true', '-d', 'enabled=false');
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ enabled: false, config: { ssl_verify: true, url: rx.url } });
  });
});
