// Issue 19, row by row, replayed against a real gateway (startHookwire on loopback): odd request targets,
// `__proto__` keys, upper-case ids, deep and non-object bodies, registry lookups by name, and the catch-all.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_INPUT_DEPTH } from '../../host/input.js';
import { call, startReceiver, startTestApp, waitFor, type Receiver, type TestApp } from './helpers.js';
import { rawRequest } from './raw.js';

const TOKEN = 'admin-token-for-hardening';
const INGEST_TOKEN = 'ingest-token-for-hardening';
const AUTH = { authorization: `Bearer ${TOKEN}` };

let t: TestApp;
let rx: Receiver;

const api = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => call(t.admin, method, path, body, { ...AUTH, ...headers });

/** Everything Object.prototype has, so a test can see that nothing was added. */
const protoKeys = () => Reflect.ownKeys(Object.prototype).map(String).sort();
const PROTO_BEFORE = protoKeys();

function expectPrototypeUntouched(): void {
  expect(protoKeys()).toEqual(PROTO_BEFORE);
  expect({}.constructor).toBe(Object);
  expect(Object.getPrototypeOf({})).toBe(Object.prototype);
}

/** A clean write still works: a fresh consumer is created (201) and is there. */
async function expectCleanWrite(): Promise<void> {
  const username = `clean-${Math.random().toString(36).slice(2)}`;
  const r = await api('POST', '/consumers', { username });
  expect(r.status, r.text).toBe(201);
  expect((await api('GET', `/consumers/${username}`)).status).toBe(200);
}

function nested(depth: number): string {
  return '{"a":'.repeat(depth - 1) + '{}' + '}'.repeat(depth - 1);
}

let logHook: string;

beforeAll(async () => {
  rx = await startReceiver();
  t = await startTestApp({ admin: { token: TOKEN }, event_hooks: { ingest_token: INGEST_TOKEN } });
  const r = await api('POST', '/event-hooks', { source: 'crud', event: 'services', handler: 'log' });
  expect(r.status).toBe(201);
  logHook = r.body.id;
});

afterAll(async () => {
  await t?.close();
  await rx?.close();
});

describe('row 1: request targets that are not a path', () => {
  const targets = ['//', '///', '//%', '//[', '//a:b@', '//a:99999/', 'http://[::1', 'http://x:99999/status', '*'];
  for (const target of targets) {
    it(`${JSON.stringify(target)}: 400 without the token, the process untouched`, async () => {
      const r = await rawRequest(t.admin, target);
      expect(r.status, r.head).toBe(400);
      expect(JSON.parse(r.body).message).toMatch(/request target/);
      expect((await api('GET', '/status')).status).toBe(200);
    });
  }

  it('the proxy listener answers the same targets below 500 and keeps serving', async () => {
    for (const target of [...targets, '/%', '/?%']) {
      const r = await rawRequest(t.url, target);
      expect(r.status, `${target} → ${r.head}`).toBeGreaterThanOrEqual(400);
      expect(r.status, `${target} → ${r.head}`).toBeLessThan(500);
    }
    expect((await rawRequest(t.url, '/nothing-here')).status).toBe(404);
  });

  it('an absolute-form target that parses is served as its path (and still needs the token)', async () => {
    expect((await rawRequest(t.admin, 'http://admin.example/status')).status).toBe(401);
    expect((await rawRequest(t.admin, 'http://admin.example/status', { headers: AUTH })).status).toBe(200);
  });
});

describe('every failed handler answers 500 with a request id and logs it', () => {
  it('a handler that throws or rejects: 500 with request_id, the same id in the log, serving continues', async () => {
    t.app.admin.route('GET', '/test-only/throws', () => {
      throw new TypeError('boom (thrown)');
    });
    t.app.admin.route('GET', '/test-only/rejects', async () => {
      await Promise.resolve();
      throw new RangeError('boom (rejected)');
    });
    for (const path of ['/test-only/throws', '/test-only/rejects']) {
      const r = await api('GET', path);
      expect(r.status).toBe(500);
      expect(r.body.message).toBe('An unexpected error occurred');
      expect(r.body.request_id).toMatch(/^[0-9a-f-]{36}$/);
      const line = t.lines.find((l) => l.request_id === r.body.request_id);
      expect(line?.msg).toBe('admin request failed');
      expect(line?.path).toBe(path);
    }
    expect((await api('GET', '/status')).status).toBe(200);
  });
});

describe('row 2: `__proto__` keys never reach Object.prototype', () => {
  const places: [string, string, string, string][] = [
    ['POST', '/services', '{"__proto__":{}}', '/__proto__'],
    ['POST', '/services', '{"name":"s1","url":"http://127.0.0.1:1","__proto__":{"@entity":["x"]}}', '/__proto__'],
    ['POST', '/routes', '{"name":"r1","paths":["/r1"],"service":{"__proto__":{"name":"x"}}}', '/service/__proto__'],
    ['PUT', '/consumers/c1', '{"username":"c1","__proto__":{"custom_id":"x"}}', '/__proto__'],
    ['POST', '/plugins', '{"name":"p1","wasm":"x.wasm","configuration":{"__proto__":{"a":1}}}', '/configuration/__proto__'],
    ['POST', '/event-hooks', '{"source":"crud","handler":"log","__proto__":{}}', '/__proto__'],
    ['POST', '/event-hooks', '{"source":"crud","handler":"webhook","config":{"__proto__":{"url":"http://127.0.0.1:1"}}}', '/config/__proto__'],
    ['POST', '/event-hooks', '{"source":"crud","handler":"webhook","config":{"url":"http://127.0.0.1:1","headers":{"__proto__":"v"}}}', '/config/headers/__proto__'],
  ];
  for (const [method, path, body, pointer] of places) {
    it(`${method} ${path} ${body}: 400 naming ${pointer}; nothing else changes`, async () => {
      const r = await api(method, path, body);
      expect(r.status, r.text).toBe(400);
      expect(r.body.issues).toEqual([{ path: pointer, message: 'is not allowed: "__proto__" cannot be a key' }]);
      expect(r.body.message).toContain(pointer.slice(1).replace(/\//g, '.'));
      expectPrototypeUntouched();
      await expectCleanWrite();
    });
  }

  it('PATCH of a hook and its config with `__proto__`: 400, the hook unchanged', async () => {
    const before = (await api('GET', `/event-hooks/${logHook}`)).body;
    for (const body of ['{"__proto__":{"enabled":false}}', '{"config":{"__proto__":{}}}', '{"enabled":false,"config":{"a":{"__proto__":{}}}}']) {
      const r = await api('PATCH', `/event-hooks/${logHook}`, body);
      expect(r.status, body).toBe(400);
      expect(r.body.name).toBe('schema violation');
    }
    expect((await api('GET', `/event-hooks/${logHook}`)).body).toEqual(before);
    expectPrototypeUntouched();
  });

  it('POST /event-hooks/{id}/test with `__proto__` in the data: 400', async () => {
    const r = await api('POST', `/event-hooks/${logHook}/test`, '{"user":{"__proto__":{"admin":true}}}');
    expect(r.status).toBe(400);
    expect(r.body.issues[0].path).toBe('/user/__proto__');
    expectPrototypeUntouched();
  });

  it('a body field named `@entity` joins the entity-level messages (found by the fuzz test: it answered 500)', async () => {
    const cases: [string, string][] = [
      ['/services/e1', '{"@entity":{}}'],
      ['/services/e1', '{"@entity":"x","url":1}'],
      ['/services/e1', '{"name":"e1","url":"http://127.0.0.1:1","@entity":{"a":{}}}'],
      ['/plugins/e1', '{"@entity":{},"X":1}'],
    ];
    for (const [path, body] of cases) {
      const r = await api('PUT', path, body);
      expect(r.status, body).toBe(400);
      expect(r.body.fields['@entity'], r.text).toBeDefined();
    }
  });

  it('errors of one request never show up in another (no shared `fields` node)', async () => {
    await api('POST', '/services', '{"__proto__":{}}');
    const r = await api('POST', '/services', { name: 'needs-url' });
    expect(r.status).toBe(400);
    expect(JSON.stringify(r.body.fields)).not.toContain('__proto__');
  });

  it('`constructor` and `prototype` are plain names: refused where the schema has no such field, kept as data elsewhere', async () => {
    const r = await api('POST', '/services', { name: 'svc-constructor', url: 'http://127.0.0.1:1', constructor: 1 });
    expect(r.status).toBe(400);
    expect(r.body.issues.map((i: { path: string }) => i.path)).toContain('/constructor');
    const test = await api('POST', `/event-hooks/${logHook}/test`, { constructor: { prototype: 1 }, toString: 'x' });
    expect(test.status).toBe(200);
    expect(test.body.data).toEqual({ constructor: { prototype: 1 }, toString: 'x' });
    expectPrototypeUntouched();
  });
});

describe('rows 3 and 4: a hook id in upper case is the same hook', () => {
  it('PATCH /event-hooks/<ID>: one update, in memory and in the store; events go once, to the new URL', async () => {
    const created = await api('POST', '/event-hooks', { source: 'crud', event: 'consumers:create', handler: 'webhook', config: { url: `${rx.url}?v=1` } });
    expect(created.status).toBe(201);
    const id: string = created.body.id;
    const r = await api('PATCH', `/event-hooks/${id.toUpperCase()}`, { config: { url: `${rx.url}?v=2` } });
    expect(r.status).toBe(200);
    expect(r.body.id).toBe(id);
    // Memory (GET one) and the store (the list is read from it) agree.
    expect((await api('GET', `/event-hooks/${id}`)).body.config.url).toBe(`${rx.url}?v=2`);
    const listed = (await api('GET', '/event-hooks?size=1000')).body.data.filter((h: { id: string }) => h.id.toLowerCase() === id);
    expect(listed).toHaveLength(1);
    expect(listed[0].config.url).toBe(`${rx.url}?v=2`);
    const before = rx.hits.length;
    expect((await api('POST', '/consumers', { username: 'after-upper-patch' })).status).toBe(201);
    await rx.waitFor((h) => h.length > before, 'the consumer create delivery');
    await new Promise((res) => setTimeout(res, 300));
    const mine = rx.hits.slice(before).filter((h) => h.json?.entity?.username === 'after-upper-patch');
    expect(mine.map((h) => h.url)).toEqual(['/hook?v=2']);
    // Deliveries are found under any spelling of the ids.
    await waitFor(async () => ((await api('GET', `/event-hooks/${id}/deliveries`)).body.data.length > 0 ? null : 'a delivery'));
    const delivery = (await api('GET', `/event-hooks/${id}/deliveries`)).body.data[0];
    const one = await api('GET', `/event-hooks/${id.toUpperCase()}/deliveries/${delivery.id.toLowerCase()}`);
    expect(one.status).toBe(200);
    expect(one.body.id).toBe(delivery.id);
  });

  it('DELETE /event-hooks/<ID>: deleted (then 404), one crud delete event', async () => {
    const created = await api('POST', '/event-hooks', { source: 'crud', event: 'consumers', handler: 'log' });
    const id: string = created.body.id;
    const watcher = await api('POST', '/event-hooks', { source: 'crud', event: 'event_hooks:delete', handler: 'webhook', config: { url: `${rx.url}?deletes` } });
    expect(watcher.status).toBe(201);
    expect((await api('DELETE', `/event-hooks/${id.toUpperCase()}`)).status).toBe(204);
    expect((await api('GET', `/event-hooks/${id}`)).status).toBe(404);
    expect((await api('GET', '/event-hooks?size=1000')).body.data.map((h: { id: string }) => h.id)).not.toContain(id);
    expect((await api('DELETE', `/event-hooks/${id.toUpperCase()}`)).status).toBe(404);
    expect((await api('DELETE', `/event-hooks/${id}`)).status).toBe(404);
    await rx.waitFor((h) => h.some((x) => x.url === '/hook?deletes'), 'the delete event');
    await new Promise((res) => setTimeout(res, 300));
    expect(rx.hits.filter((x) => x.url === '/hook?deletes' && x.json?.entity?.id === id)).toHaveLength(1);
    await api('DELETE', `/event-hooks/${watcher.body.id}`);
  });

  it('entities: GET, PATCH and DELETE by an upper-case id reach the same entity', async () => {
    const s = await api('POST', '/services', { name: 'upper-id', url: 'http://127.0.0.1:1' });
    const ID = (s.body.id as string).toUpperCase();
    expect((await api('GET', `/services/${ID}`)).body.id).toBe(s.body.id);
    expect((await api('PATCH', `/services/${ID}`, { read_timeout_ms: 1234 })).body.read_timeout_ms).toBe(1234);
    expect((await api('DELETE', `/services/${ID}`)).status).toBe(204);
    expect((await api('GET', `/services/${s.body.id}`)).status).toBe(404);
  });
});

describe(`row 5: bodies nested deeper than ${MAX_INPUT_DEPTH} levels`, () => {
  it('POST /event-hooks/{id}/test nested 5,000 levels: 400 naming the limit', async () => {
    const r = await api('POST', `/event-hooks/${logHook}/test`, nested(5000));
    expect(r.status).toBe(400);
    expect(r.body.message).toMatch(new RegExp(`nested deeper than ${MAX_INPUT_DEPTH} levels`));
  });

  it(`exactly ${MAX_INPUT_DEPTH} levels is accepted, one more is not; arrays count too`, async () => {
    expect((await api('POST', `/event-hooks/${logHook}/test`, nested(MAX_INPUT_DEPTH))).status).toBe(200);
    expect((await api('POST', `/event-hooks/${logHook}/test`, nested(MAX_INPUT_DEPTH + 1))).status).toBe(400);
    const arrays = `{"a":${'['.repeat(MAX_INPUT_DEPTH)}${']'.repeat(MAX_INPUT_DEPTH)}}`;
    expect((await api('POST', `/event-hooks/${logHook}/test`, arrays)).status).toBe(400);
    expect((await api('POST', '/services', nested(10000))).status).toBe(400);
  });
});

describe('row 6: a body that is not a JSON object', () => {
  const bodies = ['null', 'true', '1', '"x"', '[]', '[{}]'];
  it('PUT /consumers/<name>: 400 "the body must be a JSON object" (also with no body)', async () => {
    for (const body of [...bodies, '']) {
      const r = await api('PUT', '/consumers/not-an-object', body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.message).toMatch(/^the body must be a JSON object \(found /);
    }
    expect((await api('GET', '/consumers/not-an-object')).status).toBe(404);
  });

  it('every other endpoint that takes an object, too', async () => {
    const endpoints: [string, string][] = [
      ['POST', '/services'],
      ['PATCH', '/services/x'],
      ['POST', '/routes'],
      ['POST', '/consumers'],
      ['POST', '/plugins'],
      ['POST', '/event-hooks'],
      ['PATCH', `/event-hooks/${logHook}`],
      ['POST', `/event-hooks/${logHook}/test`],
    ];
    for (const [method, path] of endpoints) {
      for (const body of bodies) {
        const r = await api(method, path, body);
        expect(r.status, `${method} ${path} ${body}`).toBe(400);
        expect(r.body.message).toMatch(/^the body must be a JSON object/);
      }
    }
    // Test data may be left out (Kong's test: {}).
    expect((await api('POST', `/event-hooks/${logHook}/test`)).body.data).toEqual({});
  });
});

describe('row 7: sources are looked up by their own names only', () => {
  it('GET /event-hooks/sources/crud/<Object.prototype name>: 404', async () => {
    for (const name of ['constructor', 'toString', 'hasOwnProperty', '__proto__', 'valueOf']) {
      expect((await api('GET', `/event-hooks/sources/crud/${name}`)).status, name).toBe(404);
      expect((await api('GET', `/event-hooks/sources/${name}`)).status, name).toBe(404);
    }
  });

  it('a published source and event named `__proto__`: listed and found, and listing and lookup agree', async () => {
    const records = '[{"v":1,"type":"publish","source":"__proto__","event":"__proto__","fields":["a"]},{"v":1,"type":"publish","source":"constructor","event":"x","fields":[]}]';
    const r = await call(t.admin, 'POST', '/event-hooks/ingest', records, { authorization: `Bearer ${INGEST_TOKEN}` });
    expect(r.status, r.text).toBe(200);
    expect(r.body.published).toBe(2);
    const list = await api('GET', '/event-hooks/sources');
    expect(Object.keys(list.body.data)).toEqual(expect.arrayContaining(['__proto__', 'constructor']));
    expect(Object.keys(list.body.data.__proto__)).toEqual(['__proto__']);
    const one = await api('GET', '/event-hooks/sources/__proto__');
    expect(one.status).toBe(200);
    expect(Object.keys(one.body.data)).toEqual(['__proto__']);
    expect((await api('GET', '/event-hooks/sources/__proto__/__proto__')).body.data).toEqual({ fields: ['a'] });
    expect((await api('GET', '/event-hooks/sources/constructor/x')).status).toBe(200);
    expect((await api('GET', '/event-hooks/sources/constructor/constructor')).status).toBe(404);
    expectPrototypeUntouched();
  });

  it('ingested emit data keeps `__proto__` as data and reaches no prototype', async () => {
    const records = '[{"v":1,"type":"publish","source":"proto-data","event":"e","fields":["a"]},{"v":1,"type":"emit","source":"proto-data","event":"e","data":{"__proto__":{"polluted":true},"a":1}}]';
    const r = await call(t.admin, 'POST', '/event-hooks/ingest', records, { authorization: `Bearer ${INGEST_TOKEN}` });
    expect(r.status).toBe(200);
    expect(r.body.accepted).toBe(1);
    const deep = `[{"v":1,"type":"emit","source":"proto-data","event":"e","data":${nested(MAX_INPUT_DEPTH + 1)}}]`;
    const d = await call(t.admin, 'POST', '/event-hooks/ingest', deep, { authorization: `Bearer ${INGEST_TOKEN}` });
    expect(d.body.rejected).toBe(1);
    expect(d.body.errors[0].reason).toMatch(/nested deeper than/);
    expectPrototypeUntouched();
  });
});

describe('row 8: header and payload names from Object.prototype', () => {
  it('`__proto__` in config.headers or a webhook-custom payload: refused with 400 naming the field', async () => {
    const payload = await api('POST', '/event-hooks', `{"source":"crud","handler":"webhook-custom","config":{"url":"${rx.url}","method":"POST","payload":{"__proto__":"v"}}}`);
    expect(payload.status).toBe(400);
    expect(payload.body.issues).toEqual([{ path: '/config/payload/__proto__', message: 'is not allowed: "__proto__" cannot be a key' }]);
  });

  it('other such names are sent, never dropped: a `constructor` header and payload key', async () => {
    const hook = await api('POST', '/event-hooks', {
      source: 'crud',
      event: 'services',
      handler: 'webhook-custom',
      config: { url: `${rx.url}?custom`, method: 'POST', headers: { 'content-type': 'application/json', constructor: 'c' }, payload: { constructor: 'p', toString: 't' } },
    });
    expect(hook.status, hook.text).toBe(201);
    const r = await api('POST', `/event-hooks/${hook.body.id}/test`, { any: 1 });
    expect(r.status, r.text).toBe(200);
    const hit = rx.hits.filter((h) => h.url === '/hook?custom').at(-1)!;
    expect(hit.headers.constructor).toBe('c');
    expect(hit.json).toEqual({ constructor: 'p', toString: 't' });
    const plain = await api('POST', '/event-hooks', { source: 'crud', event: 'services', handler: 'webhook', config: { url: `${rx.url}?plain`, headers: { constructor: 'c' } } });
    expect((await api('POST', `/event-hooks/${plain.body.id}/test`, {})).status).toBe(200);
    expect(rx.hits.filter((h) => h.url === '/hook?plain').at(-1)!.headers.constructor).toBe('c');
  });

  it('template data has no prototype: `{{constructor}}` is the event field or nothing', async () => {
    const hook = await api('POST', '/event-hooks', {
      source: 'crud',
      event: 'services',
      handler: 'webhook-custom',
      config: { url: `${rx.url}?tpl`, method: 'POST', headers: { 'content-type': 'application/json' }, payload: { c: '{{constructor}}', s: '{{toString}}', e: '{{event}}' } },
    });
    expect(hook.status, hook.text).toBe(201);
    expect((await api('POST', `/event-hooks/${hook.body.id}/test`, {})).status).toBe(200);
    expect(rx.hits.filter((h) => h.url === '/hook?tpl').at(-1)!.json).toEqual({ c: '', s: '', e: 'services' });
    expect((await api('POST', `/event-hooks/${hook.body.id}/test`, { constructor: 'mine' })).status).toBe(200);
    expect(rx.hits.filter((h) => h.url === '/hook?tpl').at(-1)!.json).toEqual({ c: 'mine', s: '', e: 'services' });
  });
});
