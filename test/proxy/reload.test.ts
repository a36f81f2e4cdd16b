import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReloadError } from '../../host/proxy/errors.js';
import { send, startGateway, testConfig, until, type TestGateway } from '../helpers/gateway.js';
import { fixture } from '../helpers/paths.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';

let upstream: Upstream;
let gw: TestGateway;
let dir: string;

function doc(gen: string, routes: { name: string; path: string }[], extra: Record<string, unknown> = {}) {
  return {
    services: [{ name: 'echo', url: upstream.url }],
    plugins: [{ name: `tag-${gen}`, wasm: fixture('proxy-filter'), configuration: { response_header: 'x-gen', response_value: gen }, ...extra }],
    routes: routes.map((r) => ({ name: r.name, service: 'echo', paths: [r.path] })),
  };
}

beforeAll(async () => {
  upstream = await startUpstream();
  dir = await mkdtemp(join(tmpdir(), 'hookwire-reload-'));
  gw = await startGateway(doc('1', [{ name: 'v1', path: '/v1' }]));
});

afterAll(async () => {
  await gw?.close();
  await upstream?.close();
  await rm(dir, { recursive: true, force: true });
});

/** Each test starts from a configuration of its own, so any one of them can run alone (`-t`). */
async function serving(gen: string, routes: { name: string; path: string }[]): Promise<number> {
  await gw.gateway.reload(testConfig(doc(gen, routes)));
  return gw.gateway.generation;
}

describe('reload', () => {
  it('swaps to a new generation and unloads the plugins of the old one', async () => {
    const before = await serving('1', [{ name: 'v1', path: '/v1' }]);
    expect((await send(gw.url + '/v1')).headers['x-gen']).toBe('1');

    const result = await gw.gateway.reload(testConfig(doc('2', [{ name: 'v2', path: '/v2' }])));
    expect(result).toMatchObject({ generation: before + 1, previous: before, plugins: 1, routes: 1 });
    expect(gw.gateway.generation).toBe(before + 1);
    const r2 = await send(gw.url + '/v2');
    expect(r2.status).toBe(200);
    expect(r2.headers['x-gen']).toBe('2');
    expect((await send(gw.url + '/v1')).status).toBe(404);
    await until(() => gw.lines.some((l) => l.msg === 'plugin unloaded' && l.plugin === 'tag-1'));
  });

  it('lets a request in flight during the swap finish on its generation', async () => {
    await gw.gateway.reload(testConfig(doc('3', [{ name: 'slow', path: '/slow' }])));
    const pending = send(gw.url + '/slow?ms=300');
    await new Promise((r) => setTimeout(r, 50));
    await gw.gateway.reload(testConfig(doc('4', [{ name: 'slow', path: '/slow' }])));
    const old = await pending;
    expect(old.status).toBe(200);
    expect(old.headers['x-gen']).toBe('3');
    expect((await send(gw.url + '/slow?ms=1')).headers['x-gen']).toBe('4');
    await until(() => gw.lines.some((l) => l.msg === 'plugin unloaded' && l.plugin === 'tag-3'));
  });

  it('keeps the old configuration serving when a plugin refuses its configuration', async () => {
    const before = await serving('ok', [{ name: 'slow', path: '/slow' }]);
    const err = await gw.gateway.reload(testConfig(doc('bad', [{ name: 'bad', path: '/bad' }], { configuration: { refuse: true } }))).catch((e) => e);
    expect(err).toBeInstanceOf(ReloadError);
    expect((err as ReloadError).stage).toBe('plugins');
    expect((err as ReloadError).message).toContain('plugin tag-bad');
    expect(gw.gateway.generation).toBe(before);
    expect((await send(gw.url + '/slow?ms=1')).status).toBe(200);
    expect((await send(gw.url + '/bad')).status).toBe(404);
    expect(gw.lines.some((l) => l.code === 'HW_ERR_RELOAD_FAILED')).toBe(true);
  });

  it('keeps the old configuration serving when a .wasm is missing', async () => {
    const before = await serving('ok', [{ name: 'slow', path: '/slow' }]);
    const missing = testConfig({
      services: [{ name: 'echo', url: upstream.url }],
      routes: [{ name: 'm', service: 'echo', plugins: [{ name: 'missing', wasm: join(dir, 'nope.wasm') }] }],
    });
    const err = await gw.gateway.reload(missing).catch((e) => e);
    expect(err).toBeInstanceOf(ReloadError);
    expect((err as ReloadError).message).toContain('nope.wasm');
    expect(gw.gateway.generation).toBe(before);
    expect((await send(gw.url + '/slow?ms=1')).status).toBe(200);
  });

  it('reloadFromFile: an invalid file is refused with a message naming the file', async () => {
    await serving('ok', [{ name: 'slow', path: '/slow' }]);
    const file = join(dir, 'hookwire.yaml');
    await writeFile(file, 'routes: [ {name: x, service: nowhere} ]\n');
    const err = await gw.gateway.reloadFromFile(file).catch((e) => e);
    expect(err).toBeInstanceOf(ReloadError);
    expect((err as ReloadError).stage).toBe('config');
    expect((err as ReloadError).message).toContain(file);
    expect((await send(gw.url + '/slow?ms=1')).status).toBe(200);

    await writeFile(
      file,
      `services: [{name: echo, url: "${upstream.url}"}]\nroutes: [{name: f, service: echo, paths: [/from-file]}]\n` +
        `proxy: {listen: [{address: 127.0.0.1, port: ${new URL(gw.url).port}}]}\n`,
    );
    const ok = await gw.gateway.reloadFromFile(file);
    expect(ok.routes).toBe(1);
    expect((await send(gw.url + '/from-file')).status).toBe(200);
  });
});
