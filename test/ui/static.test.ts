/**
 * The dashboard's static files on a real admin listener: content types,
 * cache headers for hashed assets, index.html for client routes, the admin
 * token not needed for the page (but still for the API), paths that try to
 * leave dist/ui refused.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminServer, sendJson } from '../../host/admin/server.js';
import { registerUi, uiSegments } from '../../host/admin/ui.js';
import { memoryLogger } from '../helpers/gateway.js';

let dir: string;
let root: string;
let admin: AdminServer;
let base: string;

/** A raw request (no URL normalization by a client library). */
function get(path: string, method = 'GET', headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, method, path, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'hookwire-ui-'));
  dir = join(root, 'ui');
  mkdirSync(join(dir, 'assets'), { recursive: true });
  writeFileSync(join(dir, 'index.html'), '<!doctype html><title>hookwire</title>');
  writeFileSync(join(dir, 'assets', 'index-Abc123.js'), 'console.log(1)');
  writeFileSync(join(dir, 'assets', 'index-Abc123.css'), 'body{}');
  writeFileSync(join(dir, '.env'), 'hidden');
  writeFileSync(join(root, 'secret.txt'), 'outside');
  admin = new AdminServer({ token: 's3cret', logger: memoryLogger().logger });
  admin.route('GET', '/status', (_req, res) => sendJson(res, 200, { ok: true }));
  admin.route('GET', '/{workspace}/services', (_req, res, _url, params) => sendJson(res, 200, { workspace: params.workspace }));
  registerUi(admin, dir);
  base = (await admin.listen({ address: '127.0.0.1', port: 0 } as never)).url;
});

afterAll(async () => {
  await admin?.close();
  rmSync(root, { recursive: true, force: true });
});

describe('GET /ui/', () => {
  it('serves index.html without the token, never cached, with a same-origin CSP', async () => {
    const r = await get('/ui/');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(r.headers['cache-control']).toBe('no-cache');
    expect(r.headers['content-security-policy']).toContain("default-src 'self'");
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    expect(r.body).toContain('<title>hookwire</title>');
  });

  it('keeps the API behind the token', async () => {
    expect((await get('/status')).status).toBe(401);
    expect((await get('/status', 'GET', { authorization: 'Bearer s3cret' })).status).toBe(200);
  });

  it("leaves the API's paths to the API: workspace \"ui\" is still addressable, behind the token", async () => {
    expect((await get('/ui/services')).status).toBe(401);
    const r = await get('/ui/services', 'GET', { authorization: 'Bearer s3cret' });
    expect(JSON.parse(r.body)).toEqual({ workspace: 'ui' });
  });

  it('redirects /ui to /ui/', async () => {
    const r = await get('/ui?x=1');
    expect(r.status).toBe(308);
    expect(r.headers.location).toBe('/ui/?x=1');
  });

  it('serves hashed assets with their type, cached for a year', async () => {
    const js = await get('/ui/assets/index-Abc123.js');
    expect(js.status).toBe(200);
    expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(js.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(js.body).toBe('console.log(1)');
    const css = await get('/ui/assets/index-Abc123.css');
    expect(css.headers['content-type']).toBe('text/css; charset=utf-8');
  });

  it('answers HEAD without a body and refuses other methods', async () => {
    const head = await get('/ui/assets/index-Abc123.js', 'HEAD');
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
    const post = await get('/ui/', 'POST');
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET, HEAD');
  });

  it('serves index.html for client routes, 404 for a missing asset', async () => {
    const page = await get('/ui/hooks/123/deliveries');
    expect(page.status).toBe(200);
    expect(page.body).toContain('<title>hookwire</title>');
    expect((await get('/ui/assets/gone-XYZ.js')).status).toBe(404);
    expect((await get('/ui/favicon.ico')).status).toBe(404);
  });

  it.each([
    '/ui/%2e%2e/secret.txt',
    '/ui/..%2fsecret.txt',
    '/ui/assets/..%5c..%5csecret.txt',
    '/ui/.env',
    '/ui/%2e%65nv',
    '/ui/assets/%00.js',
    '/ui/%E0%A4%A',
  ])('refuses %s', async (path) => {
    const r = await get(path);
    // 401: the URL parser resolved the dot segments, so the path left /ui/ before any file was looked at.
    expect([400, 401, 404]).toContain(r.status);
    expect(r.body).not.toContain('outside');
    expect(r.body).not.toContain('hidden');
  });

  it('refuses a parent segment before it reaches the file system', () => {
    expect(uiSegments('/ui/a/%2e%2e/b')).toBeNull();
    expect(uiSegments('/ui/a%2fb')).toBeNull();
    expect(uiSegments('/ui/assets/x.js')).toEqual(['assets', 'x.js']);
    expect(uiSegments('/ui/')).toEqual([]);
  });

  it('says how to build the dashboard when dist/ui is missing', async () => {
    const bare = new AdminServer({ token: null, logger: memoryLogger().logger });
    registerUi(bare, join(root, 'absent'));
    const url = (await bare.listen({ address: '127.0.0.1', port: 0 } as never)).url;
    try {
      const r = await fetch(`${url}/ui/`);
      expect(r.status).toBe(404);
      expect(await r.text()).toContain('npm run build');
    } finally {
      await bare.close();
    }
  });
});
