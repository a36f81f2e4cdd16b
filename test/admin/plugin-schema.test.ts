// POST /schemas/plugins/validate: a plugin's configuration checked against the manifest the build wrote next to its .wasm.
import { basename, dirname } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixture, plugin } from '../helpers/paths.js';
import { call, startTestApp, type TestApp } from './helpers.js';

let t: TestApp;

beforeAll(async () => {
  // Relative wasm paths resolve against wasm.modules_dir, as plugin entries do.
  t = await startTestApp({ wasm: { modules_dir: dirname(plugin('http-log')) } });
});

afterAll(async () => {
  await t?.close();
});

describe('POST /schemas/plugins/validate', () => {
  it('accepts a configuration that conforms, naming the manifest checked', async () => {
    const r = await call(t.admin, 'POST', '/schemas/plugins/validate', { name: 'log', wasm: plugin('http-log'), configuration: { http_endpoint: 'http://collector/in' } });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ message: 'schema validation successful', manifest: plugin('http-log').replace(/\.wasm$/, '.manifest.json') });
  });

  it('names each field that does not conform, under configuration', async () => {
    const r = await call(t.admin, 'POST', '/schemas/plugins/validate', { wasm: basename(plugin('http-log')), configuration: { http_endpoint: 5, method: 'GET', bogus: true } });
    expect(r.status).toBe(400);
    const paths = (r.body.issues as { path: string }[]).map((i) => i.path).sort();
    expect(paths).toEqual(['/configuration/bogus', '/configuration/http_endpoint', '/configuration/method']);
    expect(r.body.message).toContain('configuration.http_endpoint');
    expect(JSON.stringify(r.body.fields)).toContain('bogus');
  });

  it('parses a configuration given as JSON text, as the plugin receives it', async () => {
    const ok = await call(t.admin, 'POST', '/schemas/plugins/validate', { wasm: plugin('http-log'), configuration: '{"http_endpoint":"http://c/x"}' });
    expect(ok.status).toBe(200);
    const bad = await call(t.admin, 'POST', '/schemas/plugins/validate', { wasm: plugin('http-log'), configuration: '{"method":"GET"}' });
    expect(bad.status).toBe(400);
  });

  it('answers 404 when the .wasm has no manifest, 400 without wasm', async () => {
    const none = await call(t.admin, 'POST', '/schemas/plugins/validate', { wasm: fixture('proxy-filter'), configuration: {} });
    expect(none.status).toBe(404);
    expect(none.body.message).toContain('proxy-filter.manifest.json');
    const missing = await call(t.admin, 'POST', '/schemas/plugins/validate', { configuration: {} });
    expect(missing.status).toBe(400);
    expect(missing.body.issues).toEqual([{ path: '/wasm', message: 'is required: the path of the .wasm file' }]);
  });
});
