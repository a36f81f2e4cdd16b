/**
 * The entity store on PostgreSQL (`storage.kind: postgres`), shared by every
 * node of a cluster. As in SQLite, the whole entities document is one row
 * with a version, replaced by compare-and-swap; a write also notifies
 * CHANGE_CHANNEL in its transaction (delivered on commit), so every node
 * reloads within a moment. A poll of the version (`pollIntervalMs`) catches
 * what a dropped LISTEN connection missed.
 */
import type pg from 'pg';
import { EntityStoreConflictError, EntityStoreError, redactUrl } from '../errors.js';
import { ChangeWatch, CHANGE_CHANNEL, createPool, DEFAULT_POOL, migrate, type PgPoolSettings } from '../postgres.js';
import type { EntitiesDocument } from './entities.js';
import type { EntityStore, StoredEntities } from './entity-store.js';

/** Forward-only migrations of component `entities`; index + 1 is the version each leads to. */
export const PG_ENTITY_MIGRATIONS: readonly string[] = [
  // Text, not jsonb: the document keeps its key order (an export reads as it was written).
  `CREATE TABLE hookwire_entities (
     id         INTEGER PRIMARY KEY CHECK (id = 1),
     version    BIGINT NOT NULL,
     document   TEXT NOT NULL,
     updated_at BIGINT NOT NULL
   )`,
];

/** The NOTIFY payload of an entities write. */
export const ENTITIES_CHANGED = 'entities';

export interface PgEntityStoreOptions {
  pool?: PgPoolSettings;
  /** How often `watch` polls the version when no notification came (ms). */
  pollIntervalMs?: number;
  now?: () => number;
}

export class PgEntityStore implements EntityStore {
  readonly location: string;
  private readonly pool: pg.Pool;
  private readonly now: () => number;
  private readonly pollIntervalMs: number;
  private watcher: ChangeWatch | null = null;
  private closed = false;

  private constructor(
    private readonly url: string,
    options: PgEntityStoreOptions,
  ) {
    this.location = redactUrl(url);
    this.pool = createPool(url, options.pool ?? DEFAULT_POOL);
    this.now = options.now ?? Date.now;
    this.pollIntervalMs = options.pollIntervalMs ?? 1000;
  }

  /** Connects and creates or migrates the schema (a newer one is refused: HW_ERR_POSTGRES_STORE_VERSION). */
  static async open(url: string, options: PgEntityStoreOptions = {}): Promise<PgEntityStore> {
    const store = new PgEntityStore(url, options);
    try {
      await migrate(store.pool, url, 'entities', PG_ENTITY_MIGRATIONS);
    } catch (err) {
      await store.close();
      throw err;
    }
    return store;
  }

  private fail(what: string, cause: unknown): never {
    throw new EntityStoreError('HW_ERR_ENTITY_STORE', this.location, `${what}: ${(cause as Error).message}`, { cause });
  }

  async load(): Promise<StoredEntities | null> {
    let row: { version: number; document: string; updated_at: number } | undefined;
    try {
      row = (await this.pool.query('SELECT version, document, updated_at FROM hookwire_entities WHERE id = 1')).rows[0];
    } catch (err) {
      this.fail('reading the entities failed', err);
    }
    if (!row) return null;
    let entities: EntitiesDocument;
    try {
      entities = JSON.parse(row.document) as EntitiesDocument;
    } catch (err) {
      this.fail('the stored entities are not JSON', err);
    }
    return { version: row.version, entities, updatedAt: row.updated_at };
  }

  async version(): Promise<number | null> {
    try {
      const r = await this.pool.query<{ version: number }>('SELECT version FROM hookwire_entities WHERE id = 1');
      return r.rows[0]?.version ?? null;
    } catch (err) {
      this.fail('reading the entities version failed', err);
    }
  }

  async save(entities: EntitiesDocument, base: number | null): Promise<number> {
    const document = JSON.stringify(entities);
    const now = this.now();
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      this.fail('cannot connect', err);
    }
    try {
      await client.query('BEGIN');
      // The row lock orders concurrent writers; the loser sees the winner's version and conflicts.
      const cur = await client.query<{ version: number }>('SELECT version FROM hookwire_entities WHERE id = 1 FOR UPDATE');
      const current = cur.rows[0]?.version ?? null;
      if (current !== base) throw new EntityStoreConflictError(this.location, base ?? 0, current ?? 0);
      const next = (current ?? 0) + 1;
      if (current === null) {
        // Two nodes seeding an empty store at once: the second insert conflicts on the key.
        const r = await client.query(
          'INSERT INTO hookwire_entities (id, version, document, updated_at) VALUES (1, $1, $2, $3) ON CONFLICT (id) DO NOTHING',
          [next, document, now],
        );
        if (r.rowCount === 0) throw new EntityStoreConflictError(this.location, 0, 1);
      } else {
        await client.query('UPDATE hookwire_entities SET version = $1, document = $2, updated_at = $3 WHERE id = 1', [next, document, now]);
      }
      await client.query('SELECT pg_notify($1, $2)', [CHANGE_CHANNEL, ENTITIES_CHANGED]);
      await client.query('COMMIT');
      return next;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      if (err instanceof EntityStoreConflictError) throw err;
      this.fail('storing the entities failed', err);
    } finally {
      client.release();
    }
  }

  async watch(changed: () => void): Promise<void> {
    if (this.watcher || this.closed) return;
    const watcher = await ChangeWatch.start(this.url, ENTITIES_CHANGED, () => this.version(), this.pollIntervalMs, changed);
    // Closed while the feed was starting: stop it now rather than leak its connection.
    if (this.closed || this.watcher) await watcher.close();
    else this.watcher = watcher;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.watcher?.close();
    await this.pool.end().catch(() => {});
  }
}
