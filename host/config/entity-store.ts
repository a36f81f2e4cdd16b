/**
 * The entity store: the gateway's entities (workspaces, services, routes,
 * consumers, plugins) kept in SQLite (or PostgreSQL: pg-entity-store.ts), so an Admin API write that answered
 * 2xx survives a restart or a crash. The whole entities document is one row
 * with a version: a write replaces it in one transaction, and a write whose
 * base version is no longer current is refused (two processes on one file
 * cannot lose each other's changes).
 *
 * Schema versions are forward-only (`user_version`); a file from a newer
 * hookwire is refused, untouched.
 */
import Database from 'better-sqlite3';
import { EntityStoreConflictError, EntityStoreError } from '../errors.js';
import type { EntitiesDocument } from './entities.js';

/** The entities as stored, with the version a write must name to replace them. */
export interface StoredEntities {
  readonly version: number;
  readonly entities: EntitiesDocument;
  /** Milliseconds since the epoch. */
  readonly updatedAt: number;
}

/**
 * The entity store's interface; SQLite (below) and PostgreSQL
 * (pg-entity-store.ts) implement it, and one test suite runs against both.
 * Asynchronous because PostgreSQL is: "resolved" means "committed".
 */
export interface EntityStore {
  /** Where the entities live, for messages (a file path, or a URL without its password). */
  readonly location: string;
  /** The stored entities, or null when nothing was ever stored (the file's entities seed it). */
  load(): Promise<StoredEntities | null>;
  /** The current version only (cheap: what a poll for other writers' changes reads); null when empty. */
  version(): Promise<number | null>;
  /**
   * Replace the stored entities. `base` is the version they were read at
   * (null: the store must still be empty). Resolves to the new version.
   * Rejects with EntityStoreConflictError when another writer got there first.
   */
  save(entities: EntitiesDocument, base: number | null): Promise<number>;
  /**
   * Calls `changed` whenever another writer may have changed the entities
   * (PostgreSQL: NOTIFY from any node, and a poll as a fallback; SQLite: a
   * poll of the file's data_version, for the other processes of
   * `--workers` and `hookwire config import`). Resolves once watching.
   */
  watch(changed: () => void): Promise<void>;
  close(): Promise<void>;
}

/** Forward-only migrations; index + 1 is the schema version they lead to. */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE entities (
     id         INTEGER PRIMARY KEY CHECK (id = 1),
     version    INTEGER NOT NULL,
     document   TEXT NOT NULL,
     updated_at INTEGER NOT NULL
   );`,
];
export const ENTITY_STORE_SCHEMA_VERSION = MIGRATIONS.length;

/**
 * How often the SQLite store looks for another process's write: reading
 * `PRAGMA data_version` touches only the WAL index in shared memory, so ten
 * times a second costs nothing measurable and a change serves everywhere well
 * within a second.
 */
export const SQLITE_WATCH_INTERVAL_MS = 100;

export class SqliteEntityStore implements EntityStore {
  private readonly db: Database.Database;
  private readonly file: string;
  readonly location: string;
  private readonly now: () => number;
  private readonly watchIntervalMs: number;
  private watcher: NodeJS.Timeout | null = null;

  constructor(file: string, options: { now?: () => number; watchIntervalMs?: number } = {}) {
    this.file = file;
    this.location = file;
    this.now = options.now ?? Date.now;
    this.watchIntervalMs = options.watchIntervalMs ?? SQLITE_WATCH_INTERVAL_MS;
    try {
      this.db = new Database(file);
      this.db.pragma('journal_mode = WAL');
      // Entity writes are rare and each is an acknowledged change: survive a power loss too.
      this.db.pragma('synchronous = FULL');
      this.db.pragma('busy_timeout = 5000');
    } catch (cause) {
      throw new EntityStoreError('HW_ERR_ENTITY_STORE', file, `cannot open the entity store: ${(cause as Error).message}`, { cause });
    }
    try {
      this.migrate();
    } catch (err) {
      this.db.close();
      throw err;
    }
  }

  private migrate(): void {
    let found: number;
    try {
      found = this.db.pragma('user_version', { simple: true }) as number;
    } catch (cause) {
      throw new EntityStoreError('HW_ERR_ENTITY_STORE', this.file, `not an entity store: ${(cause as Error).message}`, { cause });
    }
    if (found > ENTITY_STORE_SCHEMA_VERSION) {
      throw new EntityStoreError(
        'HW_ERR_ENTITY_STORE_VERSION',
        this.file,
        `entity store has schema version ${found}; this hookwire knows up to ${ENTITY_STORE_SCHEMA_VERSION}`,
      );
    }
    if (found === ENTITY_STORE_SCHEMA_VERSION) return;
    // IMMEDIATE, and the version read again inside: two processes opening a new file migrate it once.
    this.db.transaction(() => {
      const at = this.db.pragma('user_version', { simple: true }) as number;
      for (let v = at; v < ENTITY_STORE_SCHEMA_VERSION; v++) this.db.exec(MIGRATIONS[v]!);
      this.db.pragma(`user_version = ${ENTITY_STORE_SCHEMA_VERSION}`);
    }).immediate();
  }

  async load(): Promise<StoredEntities | null> {
    const row = this.db.prepare('SELECT version, document, updated_at FROM entities WHERE id = 1').get() as
      | { version: number; document: string; updated_at: number }
      | undefined;
    if (!row) return null;
    let entities: EntitiesDocument;
    try {
      entities = JSON.parse(row.document) as EntitiesDocument;
    } catch (cause) {
      throw new EntityStoreError('HW_ERR_ENTITY_STORE', this.file, `the stored entities are not JSON: ${(cause as Error).message}`, { cause });
    }
    return { version: row.version, entities, updatedAt: row.updated_at };
  }

  async version(): Promise<number | null> {
    return (this.db.prepare('SELECT version FROM entities WHERE id = 1').get() as { version: number } | undefined)?.version ?? null;
  }

  async save(entities: EntitiesDocument, base: number | null): Promise<number> {
    const document = JSON.stringify(entities);
    const now = this.now();
    try {
      return this.db.transaction(() => {
        const current = (this.db.prepare('SELECT version FROM entities WHERE id = 1').get() as { version: number } | undefined)?.version ?? null;
        if (current !== base) throw new EntityStoreConflictError(this.file, base ?? 0, current ?? 0);
        const next = (current ?? 0) + 1;
        this.db
          .prepare(
            'INSERT INTO entities (id, version, document, updated_at) VALUES (1, ?, ?, ?) ' +
              'ON CONFLICT (id) DO UPDATE SET version = excluded.version, document = excluded.document, updated_at = excluded.updated_at',
          )
          .run(next, document, now);
        return next;
      }).immediate(); // the write lock before the version is read: two processes cannot both pass the check
    } catch (err) {
      if (err instanceof EntityStoreConflictError) throw err;
      throw new EntityStoreError('HW_ERR_ENTITY_STORE', this.file, `storing the entities failed: ${(err as Error).message}`, { cause: err });
    }
  }

  async watch(changed: () => void): Promise<void> {
    if (this.watcher !== null) clearInterval(this.watcher);
    // data_version changes when another connection commits to the file (never for this one's own writes).
    const dataVersion = this.db.prepare('PRAGMA data_version').pluck();
    let seen = dataVersion.get() as number;
    this.watcher = setInterval(() => {
      if (!this.db.open) return;
      try {
        const v = dataVersion.get() as number;
        if (v === seen) return;
        seen = v;
      } catch {
        return; // busy or closing: the next tick looks again
      }
      changed();
    }, this.watchIntervalMs);
    this.watcher.unref();
  }

  async close(): Promise<void> {
    if (this.watcher !== null) clearInterval(this.watcher);
    this.watcher = null;
    if (this.db.open) this.db.close();
  }
}
