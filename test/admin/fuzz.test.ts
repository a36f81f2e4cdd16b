// A seeded fuzz run against a real gateway: generated and mutated bodies (`__proto__` / `constructor` /
// `prototype` keys, deep nesting, bodies that are not objects, broken JSON), odd path parameters and query
// values on every operation of the OpenAPI document, and odd request targets over raw sockets. No answer
// may be a 500 (or a 5xx the operation does not document), the process keeps serving, Object.prototype is
// untouched, and a clean write works afterwards.
//
// Short by default (a few seconds in `npm test`); HOOKWIRE_FUZZ_RUNS=5000 runs longer, HOOKWIRE_FUZZ_SEED
// replays another seed (a failure prints the seed and path that reproduce it).
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openApiDocument } from '../../host/admin/openapi.js';
import { call, startReceiver, startTestApp, type Receiver, type TestApp } from './helpers.js';
import { rawRequest } from './raw.js';

const RUNS = Number(process.env.HOOKWIRE_FUZZ_RUNS ?? 300);
const SEED = Number(process.env.HOOKWIRE_FUZZ_SEED ?? 19);
const TOKEN = 'fuzz-admin-token';
const INGEST_TOKEN = 'fuzz-ingest-token';
const AUTH = { authorization: `Bearer ${TOKEN}` };
/** Generous: a bound for "did not hang", scaled with the number of runs (about 1-3 ms a request here). */
const TIMEOUT_MS = Math.max(30_000, RUNS * 30);

let t: TestApp;
let rx: Receiver;
const api = (method: string, path: string, body?: unknown, headers: Record<string, string> = AUTH) => call(t.admin, method, path, body, headers);

interface Operation {
  readonly method: string;
  readonly path: string;
  readonly id: string;
  readonly hasBody: boolean;
  readonly query: readonly string[];
  /** Status codes the operation documents. */
  readonly documented: ReadonlySet<number>;
}

function operations(): Operation[] {
  const doc = openApiDocument() as { paths: Record<string, Record<string, { operationId: string; requestBody?: unknown; parameters?: { name: string; in: string }[]; responses: Record<string, unknown> }>> };
  const out: Operation[] = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      out.push({
        method: method.toUpperCase(),
        path,
        id: op.operationId,
        hasBody: op.requestBody !== undefined,
        query: (op.parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name),
        documented: new Set(Object.keys(op.responses).map(Number)),
      });
    }
  }
  return out;
}

const protoKeys = () => Reflect.ownKeys(Object.prototype).map(String).sort();
const PROTO_BEFORE = protoKeys();

const seeds = { hook: '', webhookHook: '', delivery: 'msg_01JZZZZZZZZZZZZZZZZZZZZZZZ' };

/** Values for each path parameter: real ones, other spellings of them, and names from Object.prototype. */
function paramValues(name: string): fc.Arbitrary<string> {
  const odd = ['constructor', '__proto__', 'toString', 'prototype', '%', '%E0%A4%A', 'a%2Fb', '..'];
  const real: Record<string, string[]> = {
    workspace: ['default', 'team-a', 'nowhere'],
    id: [seeds.hook, seeds.hook.toUpperCase(), seeds.webhookHook, '00000000-0000-4000-8000-000000000000'],
    delivery_id: [seeds.delivery, seeds.delivery.toLowerCase()],
    service: ['svc', 'SVC'],
    route: ['rt'],
    consumer: ['cons'],
    plugin: ['nope'],
    source: ['crud', 'wasm', 'dao:crud'],
    event: ['services', 'consumers:create', 'plugin-loaded'],
  };
  return fc.oneof(fc.constantFrom(...(real[name] ?? ['x']), ...odd), fc.string({ maxLength: 12 }));
}

/** Bodies that pass or nearly pass each operation's schema, as starting points for mutation. */
const VALID_BODIES: Record<string, unknown[]> = {
  services: [{ name: 'fz-svc', url: 'http://127.0.0.1:1' }, { read_timeout_ms: 5 }],
  routes: [{ name: 'fz-rt', paths: ['/fz'], service: 'svc' }, { service: { name: 'svc' }, hosts: ['a.example'] }],
  consumers: [{ username: 'fz-cons', custom_id: 'c1' }, { username: 'fz-2' }],
  plugins: [{ name: 'fz-plugin', wasm: 'missing.wasm', configuration: { a: [1, { b: 2 }] } }],
  'event-hooks': [
    { source: 'crud', event: 'services', handler: 'log' },
    { source: 'crud', handler: 'webhook', config: { url: 'http://127.0.0.1:9/x', headers: { 'x-a': 'b' } } },
    { handler: 'webhook-custom', config: { url: 'http://127.0.0.1:9/{{event}}', method: 'POST', payload: { a: '{{source}}' } } },
    { enabled: false, config: { headers: { 'x-b': 'c' } } },
  ],
  test: [{ any: { nested: [1, 2, { x: null }] } }],
  ingest: [[{ v: 1, type: 'publish', source: 'fz', event: 'e', fields: ['a'] }, { v: 1, type: 'emit', source: 'fz', event: 'e', data: { a: 1 } }]],
};

function bodiesFor(op: Operation): unknown[] {
  if (op.path.endsWith('/ingest')) return VALID_BODIES.ingest!;
  if (op.path.endsWith('/test')) return VALID_BODIES.test!;
  const kind = Object.keys(VALID_BODIES).find((k) => op.path.includes(`/${k}`));
  return VALID_BODIES[kind ?? 'test']!;
}

const DANGEROUS_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', '@entity'];

/** JSON text with `"key": value,` put right after one of the text's `{` (inside a string too: broken JSON is fine). */
function injectKey(text: string, at: number, key: string, value: string): string {
  const opens = [...text.matchAll(/\{/g)].map((m) => m.index!);
  if (opens.length === 0) return text;
  const i = opens[at % opens.length]! + 1;
  const rest = text.slice(i);
  return `${text.slice(0, i)}${JSON.stringify(key)}:${value}${rest.startsWith('}') ? '' : ','}${rest}`;
}

function nested(depth: number, open: string, close: string): string {
  return open.repeat(depth) + close.repeat(depth);
}

function bodyArbitrary(op: Operation): fc.Arbitrary<string | undefined> {
  const valid = fc.constantFrom(...bodiesFor(op).map((b) => JSON.stringify(b)));
  const json = fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v));
  const mutated = fc
    .tuple(fc.oneof(valid, json), fc.nat(), fc.constantFrom(...DANGEROUS_KEYS), fc.oneof(fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v)), fc.constant('{}')))
    .map(([text, at, key, value]) => injectKey(text, at, key, value));
  const deep = fc
    .tuple(fc.integer({ min: 60, max: 6000 }), fc.constantFrom<[string, string]>(['{"a":', '}'], ['[', ']']))
    .map(([depth, [open, close]]) => (open === '[' ? nested(depth, open, close) : open.repeat(depth) + '{}' + close.repeat(depth)));
  const notObjects = fc.constantFrom('null', 'true', '1', '-0', '"x"', '[]', '[null]', '', '{', '{"a":}', '\u0000', '{"__proto__":');
  return fc.oneof(
    { weight: 3, arbitrary: valid },
    { weight: 5, arbitrary: mutated },
    { weight: 2, arbitrary: json },
    { weight: 1, arbitrary: deep },
    { weight: 2, arbitrary: notObjects },
    { weight: 1, arbitrary: fc.constant(undefined) },
  );
}

function requestArbitrary(ops: Operation[]) {
  return fc.constantFrom(...ops).chain((op) => {
    const names = [...op.path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!);
    return fc.record({
      op: fc.constant(op),
      params: fc.tuple(...names.map((n) => paramValues(n))),
      query: fc.array(fc.tuple(fc.constantFrom(...op.query, 'size', 'offset', '__proto__', 'constructor'), fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom('0', '1001', '-1', 'e1:5'))), { maxLength: 2 }),
      body: op.hasBody || op.method !== 'GET' ? bodyArbitrary(op) : fc.constant(undefined),
      contentType: fc.constantFrom('application/json', 'application/json', 'application/merge-patch+json', 'text/plain', undefined),
    });
  });
}

beforeAll(async () => {
  rx = await startReceiver();
  t = await startTestApp(
    {
      admin: { token: TOKEN },
      workspaces: [{ name: 'team-a' }],
      event_hooks: { ingest_token: INGEST_TOKEN },
      services: [{ name: 'svc', url: 'http://127.0.0.1:1' }],
      routes: [{ name: 'rt', service: 'svc', paths: ['/rt'] }],
      consumers: [{ username: 'cons' }],
    },
    // Any host name resolves to an address the SSRF guard refuses: fuzzed URLs send nothing anywhere.
    { eventHooks: { ssrf: { allowCidrs: ['127.0.0.1/32'], lookup: async () => ['192.0.2.1'] } } },
  );
  seeds.hook = (await api('POST', '/event-hooks', { source: 'crud', handler: 'log' })).body.id;
  seeds.webhookHook = (await api('POST', '/event-hooks', { source: 'crud', event: 'services', handler: 'webhook', config: { url: rx.url } })).body.id;
});

afterAll(async () => {
  await t?.close();
  await rx?.close();
});

describe(`fuzz: every OpenAPI operation (seed ${SEED}, ${RUNS} requests; HOOKWIRE_FUZZ_RUNS for more)`, () => {
  const ops = operations();

  it('covers every operation of the OpenAPI document', () => {
    expect(ops.length).toBeGreaterThan(40);
    expect(new Set(ops.map((o) => o.id)).size).toBe(ops.length);
  });

  it('every write endpoint refuses `__proto__` / `constructor` / `prototype` keys with 400, and nothing else changes', async () => {
    const poison = '{"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":1}},"prototype":{"polluted":1}}';
    const writes = ops.filter((o) => o.hasBody);
    expect(writes.length).toBeGreaterThan(20);
    for (const op of writes) {
      const path = op.path.replace('{workspace}', 'default').replace('{id}', seeds.hook).replace(/\{[^}]+\}/g, 'poison-target');
      const ingest = op.path.endsWith('/ingest');
      const r = await call(t.admin, op.method, path, ingest ? `[{"v":1,"type":"emit","source":"fz","event":"e","data":{},${poison.slice(1)}]` : poison, { authorization: `Bearer ${ingest ? INGEST_TOKEN : TOKEN}` });
      const what = `${op.method} ${path} → ${r.status} ${r.text.slice(0, 300)}`;
      if (ingest) {
        // The ingest batch is stored; the record is refused by name (its keys are not wire-format keys).
        expect(r.status, what).toBe(200);
        expect(r.body.rejected, what).toBe(1);
        expect(r.body.errors[0].reason, what).toMatch(/unknown key "__proto__"/);
      } else {
        expect(r.status, what).toBe(400);
        expect(r.text, what).toContain('__proto__');
      }
      expect(protoKeys(), what).toEqual(PROTO_BEFORE);
      expect(({} as { polluted?: unknown }).polluted, what).toBeUndefined();
    }
    await expectServingAndWritable();
  });

  it('no 500, no undocumented 5xx, Object.prototype untouched, a clean write works afterwards', async () => {
    const seen = new Set<string>();
    await fc.assert(
      fc.asyncProperty(requestArbitrary(ops), async ({ op, params, query, body, contentType }) => {
        let i = 0;
        const path = op.path.replace(/\{[^}]+\}/g, () => encodeURIComponent(params[i++]!));
        const qs = new URLSearchParams(query).toString();
        const ingest = op.path.endsWith('/event-hooks/ingest');
        const headers: Record<string, string> = { authorization: `Bearer ${ingest ? INGEST_TOKEN : TOKEN}` };
        if (contentType !== undefined && body !== undefined) headers['content-type'] = contentType;
        const r = await call(t.admin, op.method, qs ? `${path}?${qs}` : path, body, headers);
        seen.add(op.id);
        const logged = r.status >= 500 ? t.lines.find((l) => l.request_id !== undefined && l.request_id === r.body?.request_id) : undefined;
        const what = `${op.method} ${path}?${qs} ${body?.slice(0, 200)} → ${r.status} ${r.text.slice(0, 300)} ${JSON.stringify(logged ?? t.lines.slice(-2)).slice(0, 2500)}`;
        expect(r.status, what).not.toBe(500);
        if (r.status >= 500) expect(op.documented.has(r.status), what).toBe(true);
        expect(protoKeys(), what).toEqual(PROTO_BEFORE);
        expect({}.constructor, what).toBe(Object);
      }),
      { numRuns: RUNS, seed: SEED, endOnFailure: true },
    );
    // Most operations were reached (each run picks one at random).
    expect(seen.size).toBeGreaterThan(Math.min(ops.length, RUNS / 4) * 0.6);
    await expectServingAndWritable();
  }, TIMEOUT_MS);

  it('odd request targets over raw sockets: always an answer below 500', async () => {
    const target = fc.oneof(
      fc.constantFrom('//', '///', '//%', '//[', '//a:b@', '//a:99999/', 'http://[::1', 'http://x:99999/status', '/%', '/event-hooks/%zz', '/?%', '/event-hooks/sources/__proto__/constructor'),
      fc.tuple(fc.constantFrom('/', '//', 'http://', 'http://[', '/event-hooks/', '/default/'), fc.stringMatching(/^[\x21-\x7e]{0,20}$/)).map(([a, b]) => a + b),
    );
    await fc.assert(
      fc.asyncProperty(target, fc.boolean(), async (tg, authed) => {
        const r = await rawRequest(t.admin, tg, authed ? { headers: AUTH } : {});
        expect(r.status, `${tg} → ${r.head}`).toBeGreaterThanOrEqual(200);
        expect(r.status, `${tg} → ${r.head}`).toBeLessThan(500);
      }),
      { numRuns: Math.max(30, Math.floor(RUNS / 5)), seed: SEED, endOnFailure: true },
    );
    await expectServingAndWritable();
  }, TIMEOUT_MS);
});

async function expectServingAndWritable(): Promise<void> {
  expect(protoKeys()).toEqual(PROTO_BEFORE);
  expect({}.constructor).toBe(Object);
  expect((await api('GET', '/status')).status).toBe(200);
  const username = `clean-${Math.random().toString(36).slice(2)}`;
  const w = await api('POST', '/consumers', { username });
  expect(w.status, w.text).toBe(201);
  const h = await api('POST', '/event-hooks', { source: 'crud', event: 'consumers', handler: 'log' });
  expect(h.status, h.text).toBe(201);
  expect((await api('DELETE', `/event-hooks/${h.body.id}`)).status).toBe(204);
}
