// The http-log plugin (assembly/plugins/http-log) in the emulator: Kong's log
// entry built from stream properties, its queue (batching, coalescing,
// retries, bounds), the http call it makes, config refusals, and the
// event hook it publishes and emits.
import { afterEach, describe, expect, it } from 'vitest';
import { HeaderMap } from '../../host/abi/header-map.js';
import { PluginStartError } from '../../host/errors.js';
import { HostEmulator, type PendingHttpCall } from '../../host/testing/emulator.js';
import type { PropertyValue } from '../../host/vm/properties.js';
import { plugin } from '../helpers/paths.js';
import { httpLogPublishRecord } from '../helpers/records.js';

const T0 = 1_700_000_000_000n; // ms: the fake clock's start
const STARTED = 1_699_999_999_975n; // ms: request.time of the standard request

type Json = Record<string, any>;
type Props = Record<string, PropertyValue | undefined>;

function fakeClock(ms = T0) {
  const clock = { ms, now: () => clock.ms * 1_000_000n, monotonic: () => clock.ms * 1_000_000n, advance: (d: number) => void (clock.ms += BigInt(d)) };
  return clock;
}

/** A proxied request as hookwire's data plane describes it (Envoy encodings). */
const REQUEST: Props = {
  'request.id': '7c1e9a3f-req',
  'request.path': '/orders/42?expand=items&flag&tag=a&tag=b&q=caf%C3%A9+au+lait',
  'request.url_path': '/orders/42',
  'request.query': 'expand=items&flag&tag=a&tag=b&q=caf%C3%A9+au+lait',
  'request.method': 'GET',
  'request.scheme': 'https',
  'request.host': 'api.example.com',
  'request.headers': HeaderMap.fromPairs([
    [':authority', 'api.example.com'],
    [':path', '/orders/42?expand=items&flag&tag=a&tag=b&q=caf%C3%A9+au+lait'],
    [':method', 'GET'],
    ['user-agent', 'curl/8.5.0'],
    ['authorization', 'Bearer secret-token'],
    ['accept', 'application/json'],
    ['x-trace', 't1'],
    ['x-trace', 't2'],
  ]),
  'request.total_size': 231,
  'request.time': STARTED * 1_000_000n,
  'request.duration': 25_400_000n,
  'response.code': 200,
  'response.headers': HeaderMap.fromPairs([
    [':status', '200'],
    ['content-type', 'application/json'],
    ['content-length', '17'],
  ]),
  'response.total_size': 412,
  'response.backend_latency': 18_700_000n,
  'source.address': '203.0.113.9:51234',
  'destination.port': 8443,
  'upstream.address': '10.0.3.7:8080',
  'hookwire.route_id': 'route-uuid-1',
  'hookwire.route_name': 'orders-route',
  'hookwire.service_id': 'service-uuid-1',
  'hookwire.service_name': 'orders',
  'hookwire.workspace_id': 'ws-uuid-1',
  'hookwire.workspace_name': 'team-a',
  'hookwire.consumer_id': 'consumer-uuid-1',
  'hookwire.consumer_username': 'alice',
  'hookwire.upstream_uri': '/v2/orders/42?expand=items&flag&tag=a&tag=b&q=caf%C3%A9+au+lait',
  'hookwire.upstream_status': '200',
};

const EXPECTED_ENTRY: Json = {
  request: {
    id: '7c1e9a3f-req',
    uri: '/orders/42?expand=items&flag&tag=a&tag=b&q=caf%C3%A9+au+lait',
    url: 'https://api.example.com:8443/orders/42?expand=items&flag&tag=a&tag=b&q=caf%C3%A9+au+lait',
    querystring: { expand: 'items', flag: true, tag: ['a', 'b'], q: 'café au lait' },
    method: 'GET',
    headers: {
      host: 'api.example.com',
      'user-agent': 'curl/8.5.0',
      authorization: 'REDACTED',
      accept: 'application/json',
      'x-trace': ['t1', 't2'],
    },
    size: 231,
  },
  upstream_uri: '/v2/orders/42?expand=items&flag&tag=a&tag=b&q=caf%C3%A9+au+lait',
  upstream_status: '200',
  response: { status: 200, headers: { 'content-type': 'application/json', 'content-length': '17' }, size: 412 },
  latencies: { kong: 7, proxy: 18, request: 25, receive: 0 },
  tries: [{ ip: '10.0.3.7', port: 8080, balancer_latency: 0 }],
  client_ip: '203.0.113.9',
  started_at: Number(STARTED),
  source: 'upstream',
  route: { id: 'route-uuid-1', name: 'orders-route' },
  service: { id: 'service-uuid-1', name: 'orders' },
  consumer: { id: 'consumer-uuid-1', username: 'alice' },
  workspace: 'ws-uuid-1',
  workspace_name: 'team-a',
};

const ENDPOINT = 'http://team-a-collector:80/logs';

async function start(config: Json, options: { upstreams?: string[] } = {}) {
  const clock = fakeClock();
  const host = await HostEmulator.start({
    wasm: plugin('http-log'),
    name: 'http-log',
    pluginConfig: { http_endpoint: ENDPOINT, ...config },
    clock,
    upstreams: options.upstreams ?? ['team-a-collector'],
  });
  return { host, clock };
}

/** The pseudo-headers a host derives from the same facts as the properties (request.path is :path...). */
function withPseudo(map: HeaderMap, pseudo: Record<string, string | undefined>): HeaderMap {
  const flat: string[] = [];
  for (const [k, v] of Object.entries(pseudo)) if (v !== undefined) flat.push(k, v);
  for (let i = 0; i < map.flat.length; i += 2) if (!(map.flat[i]! in pseudo)) flat.push(map.flat[i]!, map.flat[i + 1]!);
  return new HeaderMap(flat);
}

/**
 * Run one request through the filter; `props` override (undefined: remove)
 * the standard properties. As in a real host, the header maps agree with the
 * properties: :path, :method and :authority are request.path, request.method
 * and request.host, :status is response.code.
 */
function request(host: HostEmulator, props: Props = {}, headers: Record<string, string> = {}): void {
  const merged: Record<string, PropertyValue> = {};
  for (const [k, v] of Object.entries({ ...REQUEST, ...props })) if (v !== undefined) merged[k] = v;
  const str = (k: string) => (merged[k] === undefined ? undefined : String(merged[k]));
  const requestPseudo = { ':authority': str('request.host'), ':path': str('request.path'), ':method': str('request.method') ?? 'GET' };
  const responsePseudo = { ':status': str('response.code') ?? '200' };
  if (merged['request.headers'] instanceof HeaderMap && merged['request.headers'].get(':path') !== undefined) {
    merged['request.headers'] = withPseudo(merged['request.headers'], requestPseudo);
  }
  if (merged['response.headers'] instanceof HeaderMap && merged['response.headers'].get(':status') !== undefined) {
    merged['response.headers'] = withPseudo(merged['response.headers'], responsePseudo);
  }
  const id = host.initHttpContext(merged);
  const streamRequest: Record<string, string> = {};
  for (const [k, v] of Object.entries(requestPseudo)) if (v !== undefined) streamRequest[k] = v;
  host.callOnRequestHeaders(id, { ...streamRequest, ...headers }, true);
  host.callOnResponseHeaders(id, { ...responsePseudo }, true);
  host.completeHttpContext(id);
}

/** Requests differing by request.id, to tell entries apart. */
function requests(host: HostEmulator, ids: string[]): void {
  for (const id of ids) request(host, { 'request.id': id });
}

function body(call: PendingHttpCall): any {
  return JSON.parse(call.body.toString('utf8'));
}

function onlyCall(host: HostEmulator): PendingHttpCall {
  const calls = host.httpCalls();
  expect(calls).toHaveLength(1);
  return calls[0]!;
}

function ids(payload: Json | Json[]): string[] {
  return (Array.isArray(payload) ? payload : [payload]).map((e) => e.request.id as string);
}

describe('http-log: the log entry', () => {
  let host: HostEmulator | undefined;
  afterEach(() => host?.close());

  it("builds Kong's entry from the stream's properties, every field, in Kong's key order", async () => {
    ({ host } = await start({}));
    request(host);
    const entry = body(onlyCall(host));
    expect(entry).toEqual(EXPECTED_ENTRY);
    expect(Object.keys(entry)).toEqual([
      'request', 'upstream_uri', 'upstream_status', 'response', 'latencies', 'tries', 'client_ip',
      'started_at', 'source', 'route', 'service', 'consumer', 'workspace', 'workspace_name',
    ]);
    expect(Object.keys(entry.request)).toEqual(['id', 'uri', 'url', 'querystring', 'method', 'headers', 'size']);
    expect(Object.keys(entry.response)).toEqual(['status', 'headers', 'size']);
    expect(Object.keys(entry.latencies)).toEqual(['kong', 'proxy', 'request', 'receive']);
  });

  it("writes Kong's request.tls (version, cipher, client_verify) last in request, on TLS connections only", async () => {
    ({ host } = await start({}));
    const tls = { 'connection.tls_version': 'TLSv1.3', 'hookwire.tls_cipher': 'TLS_AES_256_GCM_SHA384', 'hookwire.tls_client_verify': 'SUCCESS' };
    // One at a time: each entry is sent before the next (a call in flight holds the queue).
    const entry = (props: Props): Json => {
      request(host!, props);
      const call = onlyCall(host!);
      host!.respondToHttpCall(call.token, { status: 200 });
      return body(call);
    };
    const withTls = entry(tls);
    const plaintext = entry({ ...tls, 'request.scheme': 'http' });
    const envoy = entry({ 'connection.tls_version': 'TLSv1.2' }); // Envoy: no cipher or client_verify attribute
    expect(withTls!.request.tls).toEqual({ version: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', client_verify: 'SUCCESS' });
    expect(Object.keys(withTls!.request)).toEqual(['id', 'uri', 'url', 'querystring', 'method', 'headers', 'size', 'tls']);
    expect(plaintext!.request).not.toHaveProperty('tls');
    expect(envoy!.request.tls).toEqual({ version: 'TLSv1.2', cipher: null, client_verify: null });
  });

  it("takes the entities from hookwire.entities (one map) when the host offers it, ids and names from the map only", async () => {
    ({ host } = await start({}));
    const single: Props = {};
    for (const k of Object.keys(REQUEST)) if (k.startsWith('hookwire.') && !k.startsWith('hookwire.upstream')) single[k] = undefined;
    const utf8 = (s: string) => Buffer.from(s, 'utf8').toString('latin1');
    request(host, {
      ...single,
      'xds.route_name': 'not-this-one',
      'hookwire.entities': new HeaderMap([
        'route_id', 'route-uuid-1', 'route_name', 'orders-route', 'service_id', 'service-uuid-1', 'service_name', 'orders',
        'workspace_id', 'ws-uuid-1', 'workspace_name', utf8('équipe-a'), 'consumer_username', 'alice',
      ]),
    });
    const entry = body(onlyCall(host));
    expect(entry).toMatchObject({
      route: { id: 'route-uuid-1', name: 'orders-route' },
      service: { id: 'service-uuid-1', name: 'orders' },
      consumer: { username: 'alice' },
      workspace: 'ws-uuid-1',
      workspace_name: 'équipe-a',
    });
    expect(entry.consumer).not.toHaveProperty('id');
  });

  it('escapes header bytes wherever they fall in a value (the writer copies clean runs eight bytes at a time)', async () => {
    ({ host } = await start({}));
    const specials: [string, string][] = [
      ['"', '"'],
      ['\\', '\\'],
      ['\x01', '\u0001'],
      ['\x7f', '\x7f'],
      [Buffer.from('é').toString('latin1'), 'é'],
      ['\xff', '\ufffd'],
    ];
    const headers: [string, string][] = [];
    const expected: Record<string, string> = {};
    for (const [s, [raw, text]] of specials.entries()) {
      for (let pos = 0; pos < 19; pos++) {
        const base = 'abcdefghijklmnopqrst';
        headers.push([`x-${s}-${pos}`, base.slice(0, pos) + raw + base.slice(pos)]);
        expected[`x-${s}-${pos}`] = base.slice(0, pos) + text + base.slice(pos);
      }
    }
    request(host, { 'request.headers': new HeaderMap(headers.flat()) });
    expect(body(onlyCall(host)).request.headers).toEqual(expected);
  });

  it('redacts authorization and proxy-authorization (however often sent), and nothing else', async () => {
    ({ host } = await start({}));
    request(host, {
      'request.headers': HeaderMap.fromPairs([
        ['authorization', 'Basic YWxpY2U6cHc='],
        ['authorization', 'Bearer second'],
        ['proxy-authorization', 'Basic cHJveHk='],
        ['cookie', 'session=abc'],
        ['x-api-key', 'k-123'],
      ]),
      'response.headers': HeaderMap.fromPairs([['www-authenticate', 'Bearer'], ['set-cookie', 'a=1']]),
    });
    const entry = body(onlyCall(host));
    expect(entry.request.headers).toEqual({
      authorization: 'REDACTED',
      'proxy-authorization': 'REDACTED',
      cookie: 'session=abc',
      'x-api-key': 'k-123',
    });
    expect(entry.response.headers).toEqual({ 'www-authenticate': 'Bearer', 'set-cookie': 'a=1' });
    expect(onlyCall(host).body.toString()).not.toContain('secret');
  });

  it('marks a response the proxy produced itself: upstream_status "", source kong, no tries, proxy latency -1', async () => {
    ({ host } = await start({}));
    request(host, {
      'response.code': 404,
      'upstream.address': undefined,
      'hookwire.upstream_status': undefined,
      'hookwire.upstream_uri': undefined,
      'response.backend_latency': undefined,
      'hookwire.route_id': undefined,
      'hookwire.route_name': undefined,
      'hookwire.service_id': undefined,
      'hookwire.service_name': undefined,
      'hookwire.consumer_id': undefined,
      'hookwire.consumer_username': undefined,
    });
    const entry = body(onlyCall(host));
    expect(entry).toMatchObject({
      upstream_status: '',
      upstream_uri: EXPECTED_ENTRY.request.uri,
      source: 'kong',
      latencies: { kong: 25, proxy: -1, request: 25, receive: 0 },
      response: { status: 404 },
    });
    for (const key of ['tries', 'route', 'service', 'consumer']) expect(entry).not.toHaveProperty(key);
  });

  it("falls back to Envoy's own attributes when hookwire's are missing", async () => {
    ({ host } = await start({}));
    const props: Props = {
      'request.path': undefined,
      'request.url_path': '/status',
      'request.query': 'verbose',
      'request.headers': undefined,
      'response.headers': undefined,
      'request.host': 'edge.example.com:9000',
      'destination.port': undefined,
      'request.scheme': 'http',
      'source.address': '[2001:db8::7]:40000',
      'upstream.address': '[2001:db8::1]:8080',
      'xds.route_name': 'envoy-route',
      'xds.cluster_name': 'envoy-cluster',
    };
    for (const k of Object.keys(REQUEST)) if (k.startsWith('hookwire.')) props[k] = undefined;
    request(host, props, { 'x-from-map': 'yes', authorization: 'Bearer x' });
    const entry = body(onlyCall(host));
    expect(entry.request).toMatchObject({
      uri: '/status?verbose',
      url: 'http://edge.example.com:9000/status?verbose',
      querystring: { verbose: true },
      // request.headers property missing: read from the stream's header map (pseudo-headers left out)
      headers: { 'x-from-map': 'yes', authorization: 'REDACTED' },
    });
    expect(entry.response.headers).toEqual({});
    expect(entry).toMatchObject({
      upstream_uri: '/status?verbose',
      upstream_status: '200', // response.code, since an upstream host answered
      source: 'upstream',
      tries: [{ ip: '2001:db8::1', port: 8080, balancer_latency: 0 }],
      client_ip: '2001:db8::7',
      route: { name: 'envoy-route' },
      service: { name: 'envoy-cluster' },
    });
    for (const key of ['consumer', 'workspace', 'workspace_name']) expect(entry).not.toHaveProperty(key);
  });

  it("decodes the querystring as Kong does: flags true, repeats as arrays, '+' and %XX decoded", async () => {
    ({ host } = await start({}));
    const query = 'a=1&a=2&a&b=&=skipped&c=x%2By+z&d=%zz&&e=%E2%82%AC';
    request(host, { 'request.path': `/orders?${query}`, 'request.query': query });
    request(host, { 'request.query': '', 'request.path': '/plain' });
    const [first] = host.httpCalls();
    expect(body(first!).request.querystring).toEqual({ a: ['1', '2', true], b: '', c: 'x+y z', d: '%zz', e: '€' });
    host.respondToHttpCall(first!.token, { status: 200 });
    expect(body(onlyCall(host)).request.querystring).toEqual({});
  });

  it('applies custom_fields with dotted-key nesting: add, merge, replace, delete, properties', async () => {
    ({ host } = await start({
      custom_fields: {
        team: 'payments',
        'meta.env': 'prod',
        'meta.build.sha': 'abc123',
        'request.headers.x-added': 'yes',
        'request.headers.user-agent': null,
        'response.status': 299,
        'latencies.receive': null,
        client_ip: { property: 'x.client\\.ip' },
        'consumer.tier': { property: 'hookwire.consumer_tier' },
        'meta.port': { property: 'destination.port', type: 'int' },
        'meta.missing': { property: 'no.such.property' },
        'route.tags': ['a', 'b'],
        'meta.literal': { value: { property: 'not a property field' } },
        'a\\.b': true,
      },
    }));
    request(host, { 'x.client.ip': '198.51.100.1', 'hookwire.consumer_tier': 'gold' });
    const entry = body(onlyCall(host));
    expect(entry.request.headers).toEqual({
      host: 'api.example.com',
      authorization: 'REDACTED',
      accept: 'application/json',
      'x-trace': ['t1', 't2'],
      'x-added': 'yes',
    });
    expect(entry.response.status).toBe(299);
    expect(entry.latencies).toEqual({ kong: 7, proxy: 18, request: 25 });
    expect(entry.client_ip).toBe('198.51.100.1');
    expect(entry.consumer).toEqual({ id: 'consumer-uuid-1', username: 'alice', tier: 'gold' });
    expect(entry.route).toEqual({ id: 'route-uuid-1', name: 'orders-route', tags: ['a', 'b'] });
    expect(entry.team).toBe('payments');
    expect(entry['a.b']).toBe(true);
    expect(entry.meta).toEqual({ env: 'prod', build: { sha: 'abc123' }, port: 8443, literal: { property: 'not a property field' } });
    // Keys the entry did not have go last, in configuration order.
    expect(Object.keys(entry).slice(-3)).toEqual(['team', 'meta', 'a.b']);
  });
});

describe('http-log: sending', () => {
  let host: HostEmulator | undefined;
  afterEach(() => host?.close());

  it('sends each entry as one JSON object with the configured method, content type, headers and timeout', async () => {
    ({ host } = await start({
      http_endpoint: 'https://collector-b:8443/ingest/kong?source=gw',
      method: 'PUT',
      content_type: 'application/json; charset=utf-8',
      timeout: 2500,
      keepalive: 30000,
      headers: { 'X-Api-Key': 'k-1', 'X-Tenant': 'team-a' },
    }, { upstreams: ['collector-b'] }));
    expect(host.tickPeriod()).toBe(0); // idle: no timer
    request(host);
    const call = onlyCall(host);
    expect(call.upstream).toBe('collector-b');
    expect(call.headers).toEqual([
      [':method', 'PUT'],
      [':path', '/ingest/kong?source=gw'],
      [':authority', 'collector-b'],
      ['content-type', 'application/json; charset=utf-8'],
      ['x-api-key', 'k-1'],
      ['x-tenant', 'team-a'],
    ]);
    expect(call.timeoutMs).toBe(2500);
    expect(Array.isArray(body(call))).toBe(false);
  });

  it('turns http_endpoint userinfo into Basic authorization and defaults the path to /', async () => {
    ({ host } = await start({ http_endpoint: 'http://bob:s3cr%C3%A9t@team-a-collector' }));
    request(host);
    expect(onlyCall(host).headers).toEqual([
      [':method', 'POST'],
      [':path', '/'],
      [':authority', 'team-a-collector'],
      ['content-type', 'application/json'],
      ['authorization', `Basic ${Buffer.from('bob:s3cr%C3%A9t').toString('base64')}`],
    ]);
  });

  it('takes an upper-case scheme: HTTPS:// defaults the port to 443', async () => {
    ({ host } = await start({ http_endpoint: 'HTTPS://team-a-collector/logs' }));
    request(host);
    const call = onlyCall(host);
    expect(call.upstream).toBe('team-a-collector');
    host.respondToHttpCall(call.token, { status: 500 });
    expect(host.logs('warn')).toEqual([
      'http-log: handler could not process entries: request to team-a-collector:443 returned status code 500 and body ',
    ]);
  });

  it('keeps one batch in flight and sends the rest in order', async () => {
    ({ host } = await start({}));
    requests(host, ['r1', 'r2', 'r3']);
    let call = onlyCall(host);
    expect(ids(body(call))).toEqual(['r1']);
    host.respondToHttpCall(call.token, { status: 201 });
    call = onlyCall(host);
    expect(ids(body(call))).toEqual(['r2']);
    host.respondToHttpCall(call.token, { status: 204 });
    expect(ids(body(onlyCall(host)))).toEqual(['r3']);
  });

  it('delivers every entry once and in order through many batches, retries and buffer compactions', async () => {
    let clock;
    ({ host, clock } = await start({ queue: { max_batch_size: 7, max_coalescing_delay: 0.01, initial_retry_delay: 0.01, max_retry_delay: 0.01 } }));
    const received: string[] = [];
    let n = 0;
    let failures = 0;
    // 600 entries of ~1 KB fill the 16 KB queue buffer many times over, while
    // batches wait for answers, fail and are retried with new entries behind them.
    for (let step = 0; step < 300; step++) {
      const burst = 1 + (step % 4);
      for (let i = 0; i < burst && n < 600; i++) request(host, { 'request.id': `e${n++}` });
      for (const call of host.httpCalls()) {
        if (step % 5 === 3) {
          failures++;
          host.respondToHttpCall(call.token, { status: 500 });
        } else {
          received.push(...ids(body(call)));
          host.respondToHttpCall(call.token, { status: 200 });
        }
      }
      clock.advance(20);
      host.tick();
    }
    for (let guard = 0; guard < 200 && received.length < n; guard++) {
      for (const call of host.httpCalls()) {
        received.push(...ids(body(call)));
        host.respondToHttpCall(call.token, { status: 200 });
      }
      clock.advance(20);
      host.tick();
    }
    expect(n).toBe(600);
    expect(failures).toBeGreaterThan(10);
    expect(received).toEqual(Array.from({ length: 600 }, (_, i) => `e${i}`));
  });

  it('drops the oldest queued entries, never the batch in flight, when max_entries is exceeded', async () => {
    ({ host } = await start({ queue: { max_batch_size: 3, max_coalescing_delay: 30, max_entries: 5 } }));
    requests(host, ['a1', 'a2', 'a3']); // a batch, in flight
    const inFlight = onlyCall(host);
    requests(host, Array.from({ length: 12 }, (_, i) => `q${i}`)); // 12 queued, 5 kept
    host.respondToHttpCall(inFlight.token, { status: 200 });
    expect(ids(body(inFlight))).toEqual(['a1', 'a2', 'a3']);
    const next = onlyCall(host);
    expect(ids(body(next))).toEqual(['q7', 'q8', 'q9']);
    host.respondToHttpCall(next.token, { status: 200 });
    expect(host.logs('error')).toContain('http-log: queue full, dropping old entries until processing is successful again');
  });

  it('batches by size: a JSON array as soon as max_batch_size entries are queued', async () => {
    ({ host } = await start({ queue: { max_batch_size: 3, max_coalescing_delay: 30 } }));
    requests(host, ['r1', 'r2']);
    expect(host.httpCalls()).toEqual([]);
    requests(host, ['r3', 'r4']);
    const call = onlyCall(host);
    expect(ids(body(call))).toEqual(['r1', 'r2', 'r3']);
    expect(call.body.toString()).toMatch(/^\[\{"request":.*\}\]$/s);
    host.respondToHttpCall(call.token, { status: 200 });
    // r4 now waits for its own coalescing window.
    expect(host.httpCalls()).toEqual([]);
  });

  it('batches by delay: after max_coalescing_delay, driven by ticks', async () => {
    let clock;
    ({ host, clock } = await start({ queue: { max_batch_size: 10, max_coalescing_delay: 2 } }));
    requests(host, ['r1']);
    expect(host.tickPeriod()).toBe(1000); // at most a second between checks
    clock.advance(500);
    requests(host, ['r2']);
    host.tick();
    expect(host.httpCalls()).toEqual([]);
    clock.advance(1000);
    host.tick();
    expect(host.httpCalls()).toEqual([]);
    expect(host.tickPeriod()).toBe(450); // 2 s - 50 ms (Kong sends when < 50 ms are left) - 1.5 s
    clock.advance(450);
    host.tick();
    const call = onlyCall(host);
    expect(ids(body(call))).toEqual(['r1', 'r2']);
    expect(host.tickPeriod()).toBe(0); // in flight: the answer drives the queue
    host.respondToHttpCall(call.token, { status: 200 });
    expect(host.tickPeriod()).toBe(0);
  });

  it('on unload sends what waits out its coalescing delay, retries a failure, then calls proxy_done', async () => {
    let clock;
    ({ host, clock } = await start({ queue: { max_batch_size: 3, max_coalescing_delay: 30, initial_retry_delay: 0.5 } }));
    requests(host, ['r1', 'r2', 'r3', 'r4', 'r5']);
    host.respondToHttpCall(onlyCall(host).token, { status: 200 }); // r1-r3; r4, r5 wait for 30 s
    expect(host.httpCalls()).toEqual([]);
    let deleted = false;
    const unloaded = host.unload().then(() => (deleted = true));
    expect(host.logs('info')).toContain('http-log: unloading; sending 2 queued entries first');
    expect(host.plugin.closing).toBe(true);
    const first = onlyCall(host);
    expect(ids(body(first))).toEqual(['r4', 'r5']);
    host.respondToHttpCall(first.token, { status: 503 });
    expect(host.plugin.closing).toBe(true); // still alive: its ticks drive the retry
    clock.advance(500);
    host.tick();
    const retry = onlyCall(host);
    expect(ids(body(retry))).toEqual(['r4', 'r5']);
    host.respondToHttpCall(retry.token, { status: 200 });
    await unloaded;
    expect(deleted).toBe(true);
    expect(host.plugin.closed).toBe(true);
  });

  it('on unload with nothing queued answers true at once', async () => {
    ({ host } = await start({ queue: { max_batch_size: 3, max_coalescing_delay: 30 } }));
    await host.unload();
    expect(host.plugin.closed).toBe(true);
    expect(host.httpCalls()).toEqual([]);
  });

  it('sends a batch of one as an array when max_batch_size > 1', async () => {
    ({ host } = await start({ queue: { max_batch_size: 5, max_coalescing_delay: 0 } }));
    requests(host, ['solo']); // a delay under 50 ms: sent at once
    const payload = body(onlyCall(host));
    expect(Array.isArray(payload)).toBe(true);
    expect(ids(payload)).toEqual(['solo']);
  });

  it('retries a failed batch with exponential backoff, then succeeds', async () => {
    let clock;
    ({ host, clock } = await start({ queue: { initial_retry_delay: 0.5, max_retry_delay: 1.5 } }));
    requests(host, ['r1', 'r2']);
    const first = onlyCall(host);
    host.respondToHttpCall(first.token, { status: 503, body: 'overloaded' });
    expect(host.logs('warn')).toEqual([
      'http-log: handler could not process entries: request to team-a-collector:80 returned status code 503 and body overloaded',
    ]);
    expect(host.httpCalls()).toEqual([]);
    expect(host.tickPeriod()).toBe(500);

    host.tick(); // too early
    expect(host.httpCalls()).toEqual([]);
    clock.advance(500);
    host.tick();
    const second = onlyCall(host);
    expect(second.body.equals(first.body)).toBe(true); // the same batch, not r2
    host.failHttpCall(second.token, 'timeout');
    expect(host.logs('warn')[1]).toMatch(/^http-log: handler could not process entries: failed request to team-a-collector:80: /);
    expect(host.tickPeriod()).toBe(1000); // 0.5 s * 2

    clock.advance(1000);
    host.tick();
    const third = onlyCall(host);
    host.respondToHttpCall(third.token, { status: 302 }); // 3xx is a failure (Kong 3.3+)
    expect(host.tickPeriod()).toBe(1000); // min(1.5 s cap, 2 s): ticks are at most 1 s apart
    clock.advance(1000);
    host.tick();
    expect(host.httpCalls()).toEqual([]);
    clock.advance(500);
    host.tick();
    const fourth = onlyCall(host);
    expect(ids(body(fourth))).toEqual(['r1']);
    host.respondToHttpCall(fourth.token, { status: 200 });
    expect(ids(body(onlyCall(host)))).toEqual(['r2']);
    expect(host.logs('error')).toEqual([]);
  });

  it('gives up after max_retry_time and says how many entries were lost', async () => {
    let clock;
    ({ host, clock } = await start({ queue: { max_batch_size: 2, max_coalescing_delay: 1, max_retry_time: 1, initial_retry_delay: 0.4 } }));
    requests(host, ['r1', 'r2']);
    for (let i = 0; i < 3; i++) {
      host.respondToHttpCall(onlyCall(host).token, { status: 500 });
      clock.advance(1000);
      host.tick();
    }
    expect(host.logs('error')).toEqual([
      'http-log: could not send entries, giving up after 2 retries. 2 queue entries were lost (last error: request to team-a-collector:80 returned status code 500 and body )',
    ]);
    expect(host.httpCalls()).toEqual([]);
    // The queue keeps working.
    requests(host, ['r3', 'r4']);
    expect(ids(body(onlyCall(host)))).toEqual(['r3', 'r4']);
  });

  it('treats a refused proxy_http_call (unknown cluster) as a failed attempt', async () => {
    ({ host } = await start({ http_endpoint: 'http://nowhere:80/' }, { upstreams: ['team-a-collector'] }));
    requests(host, ['r1']);
    expect(host.httpCalls()).toEqual([]);
    expect(host.logs('warn')).toContain("http-log: handler could not process entries: could not call cluster 'nowhere' (proxy_http_call status 2)");
    expect(host.tickPeriod()).toBe(10); // initial_retry_delay 0.01 s
  });

  it('bounds the queue by max_entries, dropping the oldest with an error', async () => {
    ({ host } = await start({ queue: { max_entries: 3 } }));
    requests(host, ['r1', 'r2', 'r3', 'r4', 'r5', 'r6']); // r1 in flight, r2..r6 compete for 3 places
    expect(host.logs('warn')).toEqual(['http-log: queue at 80% capacity']);
    expect(host.logs('error')).toEqual(['http-log: queue full, dropping old entries until processing is successful again']);
    host.respondToHttpCall(onlyCall(host).token, { status: 200 });
    expect(host.logs('info')).toContain('http-log: queue resumed processing (2 entries were dropped while it was full)');
    const sent: string[] = [];
    for (let call = host.httpCalls()[0]; call; call = host.httpCalls()[0]) {
      sent.push(...ids(body(call)));
      host.respondToHttpCall(call.token, { status: 200 });
    }
    expect(sent).toEqual(['r4', 'r5', 'r6']);
  });

  it('bounds the queue by max_bytes: refuses an entry bigger than the bound, drops the oldest to fit', async () => {
    ({ host } = await start({ queue: { max_bytes: 2500 } }));
    requests(host, ['r1']); // in flight, not counted
    const size = host.httpCalls()[0]!.body.length;
    expect(size).toBeGreaterThan(1000);
    expect(size).toBeLessThan(1200);
    requests(host, ['r2', 'r3']); // two fit in 2500 bytes, three do not
    expect(host.logs('error')).toEqual([]);
    requests(host, ['r4']);
    expect(host.logs('error')).toEqual(['http-log: byte capacity exceeded, 1 queue entries were dropped']);
    request(host, { 'request.id': 'huge', 'hookwire.route_name': 'x'.repeat(3000) });
    expect(host.logs('error')[1]).toMatch(/^http-log: string to be queued is longer \(\d+ bytes\) than the queue's max_bytes \(2500 bytes\)$/);
    const sent: string[] = [];
    for (let call = host.httpCalls()[0]; call; call = host.httpCalls()[0]) {
      sent.push(...ids(body(call)));
      host.respondToHttpCall(call.token, { status: 200 });
    }
    expect(sent).toEqual(['r1', 'r3', 'r4']);
  });
});

describe('http-log: configuration', () => {
  it('accepts Kong-shaped configs with nulls as defaults', async () => {
    const host = (await start({
      method: null,
      headers: null,
      custom_fields: null,
      queue: { max_batch_size: 1, max_bytes: null, concurrency_limit: 1 },
    })).host;
    request(host);
    expect(onlyCall(host).headers[0]).toEqual([':method', 'POST']);
    host.close();
  });

  it("maps Kong's deprecated queue_size/flush_timeout and warns", async () => {
    const { host } = await start({ queue_size: 2, flush_timeout: 5, retry_count: 10 });
    expect(host.logs('warn')).toEqual([
      'http-log: config.retry_count is deprecated and ignored; use config.queue.max_retry_time',
      'http-log: config.queue_size is deprecated; use config.queue.max_batch_size',
      'http-log: config.flush_timeout is deprecated; use config.queue.max_coalescing_delay',
    ]);
    requests(host, ['r1', 'r2']);
    expect(ids(body(onlyCall(host)))).toEqual(['r1', 'r2']);
    host.close();
  });

  const refusals: Array<[string, Json, string]> = [
    ['a missing endpoint', { http_endpoint: undefined }, 'http-log: config.http_endpoint is required'],
    ['an endpoint without scheme', { http_endpoint: 'collector/logs' }, 'http-log: config.http_endpoint must be a URL with a scheme (http or https) (found "collector/logs")'],
    ['a non-http endpoint', { http_endpoint: 'ftp://collector/' }, 'http-log: config.http_endpoint must use the http or https scheme (found "ftp://collector/")'],
    // Scheme and header names are lower-cased as ASCII (asciiLower): a non-ASCII letter never becomes a-z.
    ['a scheme with a non-ASCII letter', { http_endpoint: 'http\u212A://collector/' }, 'http-log: config.http_endpoint must use the http or https scheme (found "http\u212A://collector/")'],
    ['an endpoint with a bad port', { http_endpoint: 'http://collector:99999/' }, 'http-log: config.http_endpoint has an invalid port (found "http://collector:99999/")'],
    ['method GET', { method: 'GET' }, 'http-log: config.method must be one of: POST, PUT, PATCH (found "GET")'],
    ['another content type', { content_type: 'text/plain' }, 'http-log: config.content_type must be one of: application/json, application/json; charset=utf-8 (found "text/plain")'],
    ['a string timeout', { timeout: '1000' }, 'http-log: config.timeout must be a number (found "1000")'],
    ['a zero timeout', { timeout: 0 }, 'http-log: config.timeout must be a number between 1 and 2147483647 (found 0)'],
    ['a negative keepalive', { keepalive: -1 }, 'http-log: config.keepalive must be a number >= 0 (found -1)'],
    ['max_batch_size 0', { queue: { max_batch_size: 0 } }, 'http-log: config.queue.max_batch_size must be an integer between 1 and 1000000 (found 0)'],
    ['a fractional max_batch_size', { queue: { max_batch_size: 2.5 } }, 'http-log: config.queue.max_batch_size must be an integer between 1 and 1000000 (found 2.5)'],
    ['a long coalescing delay', { queue: { max_coalescing_delay: 3601 } }, 'http-log: config.queue.max_coalescing_delay must be a number between 0 and 3600 (found 3601)'],
    ['max_entries 0', { queue: { max_entries: 0 } }, 'http-log: config.queue.max_entries must be an integer between 1 and 1000000 (found 0)'],
    ['max_bytes 0', { queue: { max_bytes: 0 } }, 'http-log: config.queue.max_bytes must be an integer between 1 and 9007199254740991 (found 0)'],
    ['a tiny initial_retry_delay', { queue: { initial_retry_delay: 0 } }, 'http-log: config.queue.initial_retry_delay must be a number between 0.001 and 1000000 (found 0)'],
    ['concurrency_limit -1', { queue: { concurrency_limit: -1 } }, 'http-log: config.queue.concurrency_limit must be 1 (one batch in flight per queue; -1 is not supported) (found -1)'],
    ['an unknown queue field', { queue: { size: 1 } }, 'http-log: config.queue.size is not a known field'],
    ['a queue that is not an object', { queue: 5 }, 'http-log: config.queue must be an object (found 5)'],
    ['an unknown field', { flush: true }, 'http-log: config.flush is not a known field'],
    ['custom_fields_by_lua', { custom_fields_by_lua: { a: 'return 1' } }, 'http-log: config.custom_fields_by_lua is not supported: Lua does not run in a proxy-wasm filter; use config.custom_fields'],
    ['ssl_verify', { ssl_verify: true }, 'http-log: config.ssl_verify is not supported: TLS to the log server is configured on its cluster'],
    ['a Host header', { headers: { Host: 'x' } }, "http-log: config.headers cannot contain 'Host' header (found \"Host\")"],
    ['a Content-Length header', { headers: { 'content-length': '1' } }, "http-log: config.headers cannot contain 'Content-Length' header (found \"content-length\")"],
    ['a Content-Type header', { headers: { 'CONTENT-TYPE': 'text/plain' } }, "http-log: config.headers cannot contain 'Content-Type' header (found \"CONTENT-TYPE\")"],
    ['a header with several values', { headers: { 'x-a': ['1', '2'] } }, 'http-log: config.headers.x-a must be a string (found ["1","2"])'],
    ['an invalid header name', { headers: { 'x a': '1' } }, 'http-log: config.headers has an invalid header name (found "x a")'],
    ['a non-ASCII header name', { headers: { 'X-\u212Aey': '1' } }, 'http-log: config.headers has an invalid header name (found "X-\u212Aey")'],
    ['userinfo and an Authorization header', { http_endpoint: 'http://u:p@team-a-collector/', headers: { Authorization: 'Bearer x' } },
      "http-log: config.headers specifying both an 'Authorization' header and user info in 'http_endpoint' is not allowed"],
    ['conflicting custom fields', { custom_fields: { a: 1, 'a.b': 2 } }, 'http-log: config.custom_fields["a.b"] conflicts with config.custom_fields["a"]'],
    ['an empty custom field segment', { custom_fields: { 'a..b': 1 } }, 'http-log: config.custom_fields["a..b"] is not a valid key (empty segment)'],
    ['a bad property type', { custom_fields: { a: { property: 'x', type: 'float' } } }, 'http-log: config.custom_fields["a"].type must be one of: string, int, bool'],
    ['event_hooks not a boolean', { event_hooks: 'yes' }, 'http-log: config.event_hooks must be a boolean (found "yes")'],
  ];

  it.each(refusals)('refuses %s, naming the field', async (_what, config, message) => {
    const clock = fakeClock();
    const cfg: Json = { http_endpoint: ENDPOINT, ...config };
    for (const k of Object.keys(cfg)) if (cfg[k] === undefined) delete cfg[k];
    const records: string[] = [];
    const started = HostEmulator.start({ wasm: plugin('http-log'), name: 'http-log', pluginConfig: cfg, clock });
    await expect(started).rejects.toBeInstanceOf(PluginStartError);
    await started.catch((err: Error) => records.push(err.message));
    expect(records[0]).toContain(`proxy_on_configure returned false (plugin configuration rejected): ${message}`);
  });

  it('reports every problem, and JSON that does not parse', async () => {
    await expect(
      HostEmulator.start({ wasm: plugin('http-log'), name: 'http-log', pluginConfig: { method: 'GET', queue: { max_entries: -5 } } }),
    ).rejects.toThrow(
      'http-log: config.http_endpoint is required; http-log: config.method must be one of: POST, PUT, PATCH (found "GET"); ' +
        'http-log: config.queue.max_entries must be an integer between 1 and 1000000 (found -5)',
    );
    await expect(HostEmulator.start({ wasm: plugin('http-log'), name: 'http-log', pluginConfig: '{"http_endpoint": "http://a/",' })).rejects.toThrow(
      'http-log: the configuration is not valid JSON: expected a member name at end of input',
    );
  });
});

describe('http-log: event hooks', () => {
  let host: HostEmulator | undefined;
  afterEach(() => host?.close());

  function consume(h: HostEmulator, vmId = 'hookwire_event_hooks'): Json[] {
    const records: Json[] = [];
    h.runtime.queues.consume(vmId, 'event_hooks', (item) => records.push(JSON.parse(Buffer.from(item).toString('utf8'))));
    return records;
  }

  it('publishes http-log/log on configure and emits it for every request, as the seed plugin does', async () => {
    ({ host } = await start({ event_hooks: true }));
    expect(host.tickPeriod()).toBe(1000); // retrying the event hooks queue
    const records = consume(host);
    host.tick();
    expect(records).toEqual([
      httpLogPublishRecord('http-log'),
    ]);
    expect(host.tickPeriod()).toBe(0);

    request(host);
    request(host, {
      'hookwire.consumer_id': undefined,
      'hookwire.consumer_username': undefined,
      'hookwire.route_id': undefined,
      'hookwire.route_name': undefined,
      'source.address': '192.0.2.55:1234',
    });
    expect(records.slice(1)).toEqual([
      {
        v: 1,
        type: 'emit',
        source: 'http-log',
        event: 'log',
        data: {
          consumer: { id: 'consumer-uuid-1', username: 'alice' },
          ip: '203.0.113.9',
          service: { id: 'service-uuid-1', name: 'orders' },
          route: { id: 'route-uuid-1', name: 'orders-route' },
        },
        plugin: 'http-log',
        time_ms: Number(T0),
      },
      {
        v: 1,
        type: 'emit',
        source: 'http-log',
        event: 'log',
        data: { consumer: {}, ip: '192.0.2.55', service: { id: 'service-uuid-1', name: 'orders' }, route: {} },
        plugin: 'http-log',
        time_ms: Number(T0),
      },
    ]);
    // The http-log behaviour is unchanged.
    expect(body(onlyCall(host))).toEqual(EXPECTED_ENTRY);
  });

  it('uses event_hooks_vm_id, and emits nothing when event_hooks is off', async () => {
    ({ host } = await start({ event_hooks: true, event_hooks_vm_id: 'edge_hooks' }));
    const records = consume(host, 'edge_hooks');
    request(host);
    expect(records.map((r) => r.type)).toEqual(['publish', 'emit']);
    host.close();

    ({ host } = await start({}));
    const none = consume(host);
    request(host);
    host.tick();
    expect(none).toEqual([]);
  });
});
