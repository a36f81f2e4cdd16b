/**
 * The event-hooks stores under one contract: every suite that takes a
 * `StoreBackend` runs against SQLite (a temp file) and PostgreSQL (a private
 * cluster, one fresh database per location).
 */
import { afterEach } from 'vitest';
import { PgEventHookStore } from '../../host/hooks/pg-store.js';
import { SqliteStore } from '../../host/hooks/sqlite-store.js';
import type { EventHookStore } from '../../host/hooks/store.js';
import type { PgCluster } from '../helpers/postgres.js';
import { tempDir } from './helpers.js';

export interface StoreBackend {
  name: 'sqlite' | 'postgres';
  /** A new, empty location (a file, a database). */
  fresh(): Promise<string>;
  /** A store on `where` (initialized), closed after the test. Several may share one location (processes, nodes). */
  open(where: string): Promise<EventHookStore>;
}

/** The backends, with their cleanups registered on afterEach. `pg` is the file's cluster (usePostgres). */
export function storeBackends(pg: { readonly cluster: PgCluster }): StoreBackend[] {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  return [
    {
      name: 'sqlite',
      async fresh() {
        const t = tempDir();
        cleanups.push(t.cleanup);
        return t.db;
      },
      async open(file) {
        const s = new SqliteStore(file);
        await s.init();
        cleanups.push(() => s.close());
        return s;
      },
    },
    {
      name: 'postgres',
      fresh: () => pg.cluster.createDatabase('hooks'),
      async open(url) {
        const s = new PgEventHookStore(url, { pool: { max: 4, idleTimeoutMs: 1000, connectTimeoutMs: 5000 }, pollIntervalMs: 100 });
        cleanups.push(() => s.close());
        await s.init();
        return s;
      },
    },
  ];
}
