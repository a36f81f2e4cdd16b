// Where entities live, through the real `hookwire` command: with a store (the
// default) every acknowledged Admin API write survives kill -9; DB-less, the
// file is the truth and writes are refused as Kong refuses them.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startServer, type Server } from '../helpers/cli.js';
import { send } from '../helpers/gateway.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';

let dir: string;
let upstream: Upstream;
const running: Server[] = [];

beforeAll(async () => {
  upstream = await startUpstream();
});
afterAll(async () => {
  await upstream?.close();
});
afterEach(async () => {
  for (const s of running.splice(0)) if (s.child.exitCode === null) s.child.kill('SIGKILL');
  await rm(dir, { recursive: true, force: true });
});

/** A fresh folder with hookwire.yaml (its store beside it, in .hookwire/). */
async function setup(extra = ''): Promise<string> {
  dir = await mkdtemp(join(tmpdir(), 'hookwire-storage-'));
  const file = join(dir, 'hookwire.yaml');
  await writeFile(
    file,
    `proxy: {listen: [{address: 127.0.0.1, port: 0}], drain_timeout_ms: 1000}
admin: {listen: {address: 127.0.0.1, port: 0}}
event_hooks: {store: ":memory:"}
${extra}services: [{name: echo, url: "${upstream.url}"}]
routes: [{name: seeded, service: echo, paths: [/seeded]}]
`,
  );
  return file;
}

async function start(file: string) {
  const s = await startServer(file, dir);
  running.push(s.server);
  return s;
}

const json = (body: unknown) => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

describe('with a store (storage.kind sqlite, the default)', () => {
  it('kill -9 right after each 201/200/204: created, updated and deleted entities are as acknowledged after a restart, and serve', async () => {
    const file = await setup();
    const a = await start(file);
    expect((await send(`${a.admin}/routes`, json({ name: 'live', service: { name: 'echo' }, paths: ['/live'] }))).status).toBe(201);
    expect((await send(`${a.admin}/consumers`, json({ username: 'ann' }))).status).toBe(201);
    expect((await send(`${a.admin}/consumers`, json({ username: 'bob' }))).status).toBe(201);
    expect((await send(`${a.admin}/routes/seeded`, { ...json({ paths: ['/patched'] }), method: 'PATCH' })).status).toBe(200);
    expect((await send(`${a.admin}/consumers/bob`, { method: 'DELETE' })).status).toBe(204);
    a.server.child.kill('SIGKILL');
    await a.server.exited;

    const b = await start(file);
    expect((await send(`${b.proxy}/live/x`)).status).toBe(200);
    expect((await send(`${b.proxy}/patched`)).status).toBe(200);
    expect((await send(`${b.proxy}/seeded`)).status).toBe(404);
    expect((await send(`${b.admin}/consumers`)).json().data.map((c: { username: string }) => c.username)).toEqual(['ann']);
  });

  it("serves the store's entities over the file's, and says so when they differ", async () => {
    const file = await setup();
    const a = await start(file);
    expect((await send(`${a.admin}/routes`, json({ name: 'live', service: { name: 'echo' }, paths: ['/live'] }))).status).toBe(201);
    a.server.child.kill('SIGTERM');
    expect(await a.server.exited).toBe(0);

    const b = await start(file); // the file still has only "seeded"
    const warning = await b.server.waitFor((l) => typeof l.msg === 'string' && l.msg.startsWith("the configuration file's entities"));
    expect(warning.msg).toContain('hookwire config import');
    expect((await send(`${b.proxy}/live`)).status).toBe(200);
  });

  it('SIGHUP: node settings from the file, entities from the store', async () => {
    const file = await setup('log_level: info\n');
    const a = await start(file);
    expect((await send(`${a.admin}/routes`, json({ name: 'live', service: { name: 'echo' }, paths: ['/live'] }))).status).toBe(201);
    await writeFile(file, (await import('node:fs')).readFileSync(file, 'utf8').replace('log_level: info', 'log_level: debug'));
    expect((await a.server.reload()).msg).toBe('configuration reloaded');
    expect((await send(`${a.proxy}/live`)).status).toBe(200);
    expect((await send(`${a.proxy}/seeded`)).status).toBe(200);
  });

  it('config export prints the stored entities; config import replaces them and the running gateway serves them (its store watch)', async () => {
    const file = await setup();
    const a = await start(file);
    expect((await send(`${a.admin}/routes`, json({ name: 'live', service: { name: 'echo' }, paths: ['/live'] }))).status).toBe(201);

    const exported = await runCli(['config', 'export', '-c', file, '--json'], dir);
    expect(exported.code).toBe(0);
    const doc = JSON.parse(exported.stdout);
    expect(doc.routes.map((r: { name: string }) => r.name)).toEqual(['seeded', 'live']);
    expect(doc).not.toHaveProperty('proxy');

    const other = join(dir, 'import.yaml');
    await writeFile(
      other,
      `proxy: {listen: [{address: 127.0.0.1, port: 0}]}\nstorage: {path: .hookwire/entities.db}\n` +
        `services: [{name: echo, url: "${upstream.url}"}]\nroutes: [{name: imported, service: echo, paths: [/imported]}]\n`,
    );
    const imported = await runCli(['config', 'import', '-c', other], dir);
    expect(imported.stderr).toBe('');
    expect(imported.code).toBe(0);
    expect(imported.stdout).toMatch(/^imported 1 services, 1 routes, 0 consumers, 0 plugins into .*entities\.db \(replacing 1 services, 2 routes/);
    expect(imported.stdout).toContain('running gateways (every worker) serve them within a moment');

    // No SIGHUP: the SQLite store's watch sees another process's commit (PRAGMA data_version).
    await a.server.waitFor((l) => l.msg === 'entities changed in the store (another node or worker): reloaded');
    expect((await send(`${a.proxy}/imported`)).status).toBe(200);
    expect((await send(`${a.proxy}/live`)).status).toBe(404);
  });

  it('a store written by a newer hookwire is refused at start, untouched, naming the file', async () => {
    const file = await setup();
    const a = await start(file);
    a.server.child.kill('SIGTERM');
    await a.server.exited;
    const db = new Database(join(dir, '.hookwire', 'entities.db'));
    db.pragma('user_version = 99');
    db.close();
    const r = await runCli(['start', '-c', file], dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/entities\.db: entity store has schema version 99; this hookwire knows up to 1/);
    const after = new Database(join(dir, '.hookwire', 'entities.db'), { readonly: true });
    expect(after.pragma('user_version', { simple: true })).toBe(99);
    after.close();
  });
});

describe('DB-less (storage.kind off)', () => {
  it("refuses entity writes with Kong's 405, serves reads, and POST /config replaces the entities", async () => {
    const file = await setup('storage: {kind: off}\n');
    const a = await start(file);
    const refused = await send(`${a.admin}/services`, json({ name: 'more', url: upstream.url }));
    expect(refused.status).toBe(405);
    expect(refused.json()).toMatchObject({ code: 12, name: 'operation unsupported', message: expect.stringMatching(/^cannot create 'services' entities when not using a database/) });
    expect((await send(`${a.admin}/routes/seeded`, { method: 'DELETE' })).status).toBe(405);
    expect((await send(`${a.admin}/routes/seeded`)).status).toBe(200);

    const replaced = await send(`${a.admin}/config`, json({ config: `services: [{name: echo, url: "${upstream.url}"}]\nroutes: [{name: posted, service: echo, paths: [/posted]}]\n` }));
    expect(replaced.status).toBe(201);
    expect(replaced.json().routes.map((r: { name: string }) => r.name)).toEqual(['posted']);
    expect((await send(`${a.proxy}/posted`)).status).toBe(200);
    expect((await send(`${a.proxy}/seeded`)).status).toBe(404);
    const settings = await send(`${a.admin}/config`, json({ proxy: { listen: [] } }));
    expect(settings.status).toBe(400);
    expect(settings.json().fields).toEqual({ proxy: expect.stringMatching(/^only entities/) });
  });

  it('with a store, POST /config is refused as Kong refuses it', async () => {
    const file = await setup();
    const a = await start(file);
    const r = await send(`${a.admin}/config`, json({ routes: [] }));
    expect(r.status).toBe(400);
    expect(r.json().message).toMatch(/only available when hookwire runs DB-less/);
  });
});

describe('a store that fails under a write', () => {
  it('answers 500 with the code, and the previous configuration serves again (nothing acknowledged is lost, nothing unacknowledged kept)', async () => {
    const { startHookwire } = await import('../../host/cli/app.js');
    const { testConfig, memoryLogger } = await import('../helpers/gateway.js');
    dir = await mkdtemp(join(tmpdir(), 'hookwire-storage-'));
    const app = await startHookwire(
      testConfig({ storage: { path: join(dir, 'entities.db') }, services: [{ name: 'echo', url: upstream.url }], routes: [{ name: 'seeded', service: 'echo', paths: ['/seeded'] }] }),
      { logger: memoryLogger().logger },
    );
    try {
      const admin = app.adminListener.url;
      const proxy = app.gateway.listeners[0]!.url;
      const before = app.gateway.generation;
      app.storage.close(); // the store's connection is gone: the next write cannot be stored
      const r = await send(`${admin}/routes`, json({ name: 'lost', service: { name: 'echo' }, paths: ['/lost'] }));
      expect(r.status).toBe(500);
      expect(r.json()).toMatchObject({ code: 'HW_ERR_ENTITY_STORE' });
      expect((await send(`${proxy}/lost`)).status).toBe(404);
      expect((await send(`${proxy}/seeded`)).status).toBe(200);
      expect(app.gateway.generation).toBeGreaterThan(before); // served, then put back
      expect((await send(`${admin}/routes/lost`)).status).toBe(404);
    } finally {
      await app.close({ drainTimeoutMs: 0 });
    }
  });
});
