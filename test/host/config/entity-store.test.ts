/**
 * The entity store's contract, one suite for both backends: SQLite (a temp
 * file) and PostgreSQL (a private cluster, a fresh database per test).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import type { EntitiesDocument } from '../../../host/config/entities.js';
import { ENTITY_STORE_SCHEMA_VERSION, SqliteEntityStore, type EntityStore } from '../../../host/config/entity-store.js';
import { PG_ENTITY_MIGRATIONS, PgEntityStore } from '../../../host/config/pg-entity-store.js';
import { EntityStoreConflictError } from '../../../host/errors.js';
import { usePostgres } from '../../helpers/postgres.js';

const pgc = usePostgres();
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Backend {
  name: string;
  /** A fresh, empty location; `open` opens a store on it (several may share one). */
  fresh(): Promise<string>;
  open(where: string): Promise<EntityStore>;
  /** Marks the location as written by a newer hookwire. */
  makeNewer(where: string): Promise<void>;
  shared: boolean;
}

const sqlite: Backend = {
  name: 'sqlite',
  shared: false,
  async fresh() {
    const dir = mkdtempSync(join(tmpdir(), 'hookwire-es-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    return join(dir, 'entities.db');
  },
  async open(file) {
    const s = new SqliteEntityStore(file);
    cleanups.push(() => s.close());
    return s;
  },
  async makeNewer(file) {
    const db = new Database(file);
    db.pragma(`user_version = ${ENTITY_STORE_SCHEMA_VERSION + 1}`);
    db.close();
  },
};

const postgres: Backend = {
  name: 'postgres',
  shared: true,
  fresh: () => pgc.cluster.createDatabase('es'),
  async open(url) {
    const s = await PgEntityStore.open(url, { pollIntervalMs: 100 });
    cleanups.push(() => s.close());
    return s;
  },
  async makeNewer(url) {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    await c.query(`UPDATE hookwire_schema SET version = $1 WHERE component = 'entities'`, [PG_ENTITY_MIGRATIONS.length + 1]);
    await c.end();
  },
};

const doc = (n: number): EntitiesDocument => ({
  plugins: [],
  workspaces: [{ name: 'default', services: [{ name: `svc-${n}`, url: 'http://127.0.0.1:9' }], routes: [], consumers: [], plugins: [] }],
});

describe.each([sqlite, postgres])('entity store: $name', (b) => {
  it('starts empty, stores a document with a version, and reads it back as written', async () => {
    const s = await b.open(await b.fresh());
    expect(await s.load()).toBeNull();
    expect(await s.version()).toBeNull();
    const v1 = await s.save(doc(1), null);
    expect(v1).toBe(1);
    const got = await s.load();
    expect(got).toMatchObject({ version: 1, entities: doc(1) });
    expect(JSON.stringify(got!.entities)).toBe(JSON.stringify(doc(1)));
    expect(await s.save(doc(2), 1)).toBe(2);
    expect(await s.version()).toBe(2);
    expect((await s.load())!.entities).toEqual(doc(2));
  });

  it('a write based on a version that is no longer current is refused, and changes nothing', async () => {
    const where = await b.fresh();
    const a = await b.open(where);
    await a.save(doc(1), null);
    await a.save(doc(2), 1);
    await expect(a.save(doc(3), 1)).rejects.toBeInstanceOf(EntityStoreConflictError);
    await expect(a.save(doc(3), null)).rejects.toMatchObject({ code: 'HW_ERR_ENTITY_STORE_CONFLICT' });
    expect(await a.load()).toMatchObject({ version: 2, entities: doc(2) });
  });

  it('two writers on one store: of two writes from the same version exactly one wins', async () => {
    const where = await b.fresh();
    const a = await b.open(where);
    const c = await b.open(where);
    await a.save(doc(1), null);
    const results = await Promise.allSettled([a.save(doc(2), 1), c.save(doc(3), 1)]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const lost = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(lost.reason).toBeInstanceOf(EntityStoreConflictError);
    const winner = results[0]!.status === 'fulfilled' ? doc(2) : doc(3);
    expect(await c.load()).toMatchObject({ version: 2, entities: winner });
  });

  it('a store written by a newer hookwire is refused with a typed error, untouched', async () => {
    const where = await b.fresh();
    const s = await b.open(where);
    await s.save(doc(1), null);
    await s.close();
    await b.makeNewer(where);
    const err = await b.open(where).then(
      () => null,
      (e: unknown) => e as { code: string; message: string },
    );
    expect(err?.code).toMatch(/^HW_ERR_(ENTITY|POSTGRES)_STORE_VERSION$/);
    expect(err?.message).toMatch(/schema version \d+; this hookwire knows up to \d+/);
  });

  it('watch: a write through another store instance (another node or worker) is announced, its own writes are not', async () => {
    const where = await b.fresh();
    const a = await b.open(where);
    const other = await b.open(where);
    await a.save(doc(1), null);
    let calls = 0;
    await a.watch(() => calls++);
    const before = calls;
    await other.save(doc(2), 1);
    const t0 = Date.now();
    // Bounded wait; the latency itself is measured end to end (test/cli/cluster.test.ts, test/workers).
    while (calls === before && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 10));
    expect(calls).toBeGreaterThan(before);
    if (!b.shared) {
      // SQLite's data_version moves for other connections' commits only: a store's own write is not announced to it.
      const seen = calls;
      await a.save(doc(3), 2);
      await new Promise((r) => setTimeout(r, 300));
      expect(calls).toBe(seen);
    }
  });
});

describe('postgres entity store specifics', () => {
  it('every migration runs: a fresh database ends at the latest version, recorded per component', async () => {
    const url = await pgc.cluster.createDatabase('mig');
    await (await postgres.open(url)).close();
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    const r = await c.query(`SELECT version FROM hookwire_schema WHERE component = 'entities'`);
    const t = await c.query(`SELECT to_regclass('hookwire_entities') AS t`);
    await c.end();
    expect(r.rows[0].version).toBe(PG_ENTITY_MIGRATIONS.length);
    expect(t.rows[0].t).toBe('hookwire_entities');
  });

  it('an unreachable server is a typed error naming the URL without its password', async () => {
    const free = pgc.cluster.port + 1;
    const err = await PgEntityStore.open(`postgres://u:secret@127.0.0.1:${free}/x`, { pool: { max: 1, idleTimeoutMs: 0, connectTimeoutMs: 2000 } }).then(
      () => null,
      (e: unknown) => e as { code: string; message: string },
    );
    expect(err?.code).toBe('HW_ERR_POSTGRES_STORE');
    expect(err?.message).toContain(`127.0.0.1:${free}`);
    expect(err?.message).not.toContain('secret');
  });

  it('a LISTEN connection killed by the server: the poll still sees other writers, and the feed comes back', async () => {
    const url = await pgc.cluster.createDatabase('feed');
    const a = await postgres.open(url);
    const other = await postgres.open(url);
    await a.save(doc(1), null);
    let calls = 0;
    await a.watch(() => calls++);
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    const killed = await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'hookwire-listen'`);
    expect(killed.rowCount).toBeGreaterThan(0);
    const waitCall = async (before: number) => {
      const t0 = Date.now();
      while (calls === before && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 10));
      expect(calls).toBeGreaterThan(before);
    };
    let before = calls;
    await other.save(doc(2), 1);
    await waitCall(before);
    // Reconnected: a LISTEN connection is back.
    const t0 = Date.now();
    let listening = 0;
    while (listening === 0 && Date.now() - t0 < 10_000) {
      listening = (await admin.query(`SELECT 1 FROM pg_stat_activity WHERE application_name = 'hookwire-listen'`)).rowCount ?? 0;
      if (listening === 0) await new Promise((r) => setTimeout(r, 50));
    }
    await admin.end();
    expect(listening).toBeGreaterThan(0);
    before = calls;
    await other.save(doc(3), 2);
    await waitCall(before);
  });

  it('nodes starting at once on an empty database migrate it once', async () => {
    const url = await pgc.cluster.createDatabase('race');
    const stores = await Promise.all([postgres.open(url), postgres.open(url), postgres.open(url)]);
    expect(stores).toHaveLength(3);
    expect(await stores[0]!.version()).toBeNull();
  });
});
