/**
 * Where the gateway's entities come from, and where Admin API changes go:
 *
 *   storage.kind sqlite (Kong's "with a database", the default) or postgres
 *     the store is the truth: at start the file's node settings are served
 *     with the store's entities; an empty store is seeded from the file's
 *     entities; every Admin API change is stored before it is acknowledged.
 *     A file whose entities differ from the store's is logged (the store
 *     wins; `hookwire config import` replaces the store's entities).
 *   storage.kind off (DB-less)
 *     the file is the truth, as before; entity writes are refused (405).
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { countEntities, describeCounts, entitiesOf, hasEntities, sameEntities, withEntities, type EntitiesDocument } from '../config/entities.js';
import { SqliteEntityStore, type EntityStore } from '../config/entity-store.js';
import { PgEntityStore } from '../config/pg-entity-store.js';
import { validateConfigObject } from '../config/load.js';
import { MEMORY_STORE } from '../config/normalize.js';
import type { HookwireConfig } from '../config/schema.js';
import { ConfigError, EntityStoreConflictError, EntityStoreError } from '../errors.js';

/** Opens the store a configuration names (creating its folder), or null when DB-less. */
export async function openEntityStore(config: HookwireConfig): Promise<EntityStore | null> {
  const s = config.storage;
  if (s.kind === 'off') return null;
  if (s.kind === 'postgres') {
    return PgEntityStore.open(s.url!, {
      pool: { max: s.pool.max, idleTimeoutMs: s.pool.idle_timeout_ms, connectTimeoutMs: s.pool.connect_timeout_ms },
      pollIntervalMs: s.poll_interval_ms,
    });
  }
  const path = config.storage.path;
  if (path !== MEMORY_STORE) {
    try {
      mkdirSync(dirname(path), { recursive: true });
    } catch (cause) {
      throw new EntityStoreError('HW_ERR_ENTITY_STORE', path, `cannot create its folder: ${(cause as Error).message}`, { cause });
    }
  }
  return new SqliteEntityStore(path);
}

/** The file's node settings with `entities`, validated as one document. */
export function configWithEntities(file: HookwireConfig, entities: EntitiesDocument, storePath: string): HookwireConfig {
  try {
    return validateConfigObject(withEntities(file, entities), `${file.source} + entities of ${storePath}`, { baseDir: file.base_dir });
  } catch (err) {
    if (err instanceof ConfigError) {
      const detail = err.issues.map((i) => `${i.path || '/'}: ${i.message}`).join('; ');
      throw new EntityStoreError('HW_ERR_ENTITY_STORE', storePath, `the stored entities do not make a valid configuration with ${file.source} (${detail})`, {
        cause: err,
      });
    }
    throw err;
  }
}

export class EntityStorage {
  private version: number | null;

  private constructor(
    private readonly store: EntityStore | null,
    private readonly path: string,
    version: number | null,
    private readonly logger: Logger,
  ) {
    this.version = version;
  }

  /**
   * Opens the storage of `file` and says what to serve: the file's node
   * settings with the stored entities (seeding an empty store from the file).
   */
  static async open(file: HookwireConfig, logger: Logger): Promise<{ storage: EntityStorage; config: HookwireConfig }> {
    const store = await openEntityStore(file);
    if (store === null) return { storage: new EntityStorage(null, '', null, logger), config: file };
    try {
      let stored = await store.load();
      if (stored === null) {
        try {
          const version = await store.save(entitiesOf(file), null);
          logger.info({ store: store.location, entities: countEntities(entitiesOf(file)) }, 'entity store created from the configuration file');
          return { storage: new EntityStorage(store, store.location, version, logger), config: file };
        } catch (err) {
          // Another node seeded the shared store first: serve what it stored.
          if (!(err instanceof EntityStoreConflictError)) throw err;
          stored = await store.load();
          if (stored === null) throw err;
        }
      }
      const storage = new EntityStorage(store, store.location, stored.version, logger);
      if (hasEntities(file) && !sameEntities(entitiesOf(file), stored.entities)) {
        logger.warn(
          { store: store.location, file: file.source, stored: countEntities(stored.entities), in_file: countEntities(entitiesOf(file)) },
          `the configuration file's entities (${describeCounts(countEntities(entitiesOf(file)))}) differ from the store's ` +
            `(${describeCounts(countEntities(stored.entities))}): serving the store's; "hookwire config import -c FILE" replaces them`,
        );
      }
      return { storage, config: configWithEntities(file, stored.entities, store.location) };
    } catch (err) {
      await store.close();
      throw err;
    }
  }

  /** DB-less: the file is the truth and entity writes are refused. */
  get dbLess(): boolean {
    return this.store === null;
  }

  /** The configuration a re-read file gives: its node settings, with the stored entities (DB-less: the file as is). */
  async reloaded(file: HookwireConfig): Promise<HookwireConfig> {
    if (this.store === null) return file;
    const stored = await this.store.load();
    if (stored === null) return file;
    this.version = stored.version;
    return configWithEntities(file, stored.entities, this.path);
  }

  /** The version of the entities being served (null: DB-less). */
  get servedVersion(): number | null {
    return this.version;
  }

  /**
   * Another node's write: the stored entities with `served`'s node settings
   * when their version differs from the one being served, else null.
   */
  async changedElsewhere(served: HookwireConfig): Promise<{ config: HookwireConfig; version: number } | null> {
    if (this.store === null) return null;
    // The version first: SQLite's watch also fires for writes to other tables of the file.
    const version = await this.store.version();
    if (version === null || version === this.version) return null;
    const stored = await this.store.load();
    if (stored === null || stored.version === this.version) return null;
    return { config: configWithEntities(served, stored.entities, this.path), version: stored.version };
  }

  /** The entities of version `version` are now served. */
  serving(version: number): void {
    this.version = version;
  }

  /** Calls `changed` when another node or process may have written the entities. */
  watch(changed: () => void): Promise<void> {
    return this.store?.watch(changed) ?? Promise.resolve();
  }

  /** Store the entities of `next` (an applied Admin API change) before it is acknowledged. */
  async persist(next: HookwireConfig): Promise<void> {
    if (this.store === null) return;
    this.version = await this.store.save(entitiesOf(next), this.version);
    this.logger.debug({ store: this.path, version: this.version }, 'entities stored');
  }

  async close(): Promise<void> {
    await this.store?.close();
  }
}
