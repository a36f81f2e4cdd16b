import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send, startApp } from '../helpers/gateway.js';
import { fixture } from '../helpers/paths.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';
import type { Hookwire } from '../../host/cli/app.js';

let upstream: Upstream;
let app: Hookwire;
let url: string;
let admin: string;

beforeAll(async () => {
  upstream = await startUpstream();
  ({ app, url, admin } = await startApp({
    services: [{ name: 'echo', url: upstream.url }],
    routes: [
      { name: 'counted', service: 'echo', paths: ['/counted'], plugins: [{ name: 'counter', wasm: fixture('proxy-filter'), configuration: { counter: 'filter.requests' } }] },
      { name: 'plain', service: 'echo', paths: ['/plain'] },
    ],
  }));
});

afterAll(async () => {
  await app?.close({ drainTimeoutMs: 500 });
  await upstream?.close();
});

describe('admin listener', () => {
  it('serves the gateway and plugin metrics in Prometheus text format', async () => {
    await send(url + '/counted');
    await send(url + '/counted');
    await send(url + '/plain');
    await send(url + '/none');
    const r = await send(admin + '/metrics');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(r.text).toContain('hookwire_http_requests_total{route="counted",service="echo",workspace="default",status="200"} 2');
    expect(r.text).toContain('hookwire_http_requests_total{route="plain",service="echo",workspace="default",status="200"} 1');
    expect(r.text).toContain('hookwire_http_requests_total{route="",service="",workspace="",status="404"} 1');
    expect(r.text).toMatch(/hookwire_http_request_duration_seconds_count\{route="counted",service="echo",workspace="default"\} 2/);
    expect(r.text).toContain('# TYPE filter_requests counter');
    expect(r.text).toContain('filter_requests 2');
    expect(r.text).toContain('hookwire_config_generation 1');
    expect(r.text).toContain('hookwire_plugins_loaded 1');
    // Every sample line is "name{labels} value" or "name value".
    for (const line of r.text.trim().split('\n')) {
      if (!line.startsWith('#')) expect(line).toMatch(/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? [0-9.e+-]+$/);
    }
  });

  it('serves /status as JSON', async () => {
    const r = await send(admin + '/status');
    expect(r.status).toBe(200);
    const s = r.json();
    expect(s.generation).toBe(1);
    expect(s.listeners.proxy[0].url).toBe(url);
    expect(s.listeners.admin.url).toBe(admin);
    expect(s.plugins).toEqual([expect.objectContaining({ name: 'counter', healthy: true, failure_policy: 'fail_closed' })]);
    expect(s.routes).toBe(2);
  });

  it('answers unknown admin paths with 404 and wrong methods with 405', async () => {
    expect((await send(admin + '/nope')).status).toBe(404);
    const r = await send(admin + '/metrics', { method: 'POST', body: '' });
    expect(r.status).toBe(405);
    expect(r.headers.allow).toBe('GET');
  });
});

describe('admin token', () => {
  it('requires the token when one is configured', async () => {
    const { app: secured, admin: adminUrl } = await startApp({ admin: { token: 's3cret' } });
    try {
      expect((await send(adminUrl + '/status')).status).toBe(401);
      expect((await send(adminUrl + '/status', { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
      expect((await send(adminUrl + '/status', { headers: { authorization: 'Bearer s3cret' } })).status).toBe(200);
      expect((await send(adminUrl + '/status', { headers: { 'hookwire-admin-token': 's3cret' } })).status).toBe(200);
      // The scheme is case-insensitive (RFC 9110), as on the ingest endpoint; the token is not.
      for (const scheme of ['bearer', 'BEARER', 'bEaReR']) {
        expect((await send(adminUrl + '/status', { headers: { authorization: `${scheme} s3cret` } })).status, scheme).toBe(200);
      }
      expect((await send(adminUrl + '/status', { headers: { authorization: 'Bearer S3CRET' } })).status).toBe(401);
      expect((await send(adminUrl + '/status', { headers: { authorization: 'Basic s3cret' } })).status).toBe(401);
    } finally {
      await secured.close({ drainTimeoutMs: 0 });
    }
  });
});
