/**
 * Where the gateway's entities come from, and where Admin API changes go:
 *
 *   storage.kind sqlite (Kong's "with a database", the default)
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
import { validateConfigObject } from '../config/load.js';
import { MEMORY_STORE } from '../config/normalize.js';
import type { HookwireConfig } from '../config/schema.js';
import { ConfigError, EntityStoreError } from '../errors.js';

/** Opens the store a configuration names (creating its folder), or null when DB-less. */
export function openEntityStore(config: HookwireConfig): EntityStore | null {
  if (config.storage.kind === 'off') return null;
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
  static open(file: HookwireConfig, logger: Logger): { storage: EntityStorage; config: HookwireConfig } {
    const store = openEntityStore(file);
    if (store === null) return { storage: new EntityStorage(null, '', null, logger), config: file };
    try {
      const stored = store.load();
      if (stored === null) {
        const version = store.save(entitiesOf(file), null);
        logger.info({ store: file.storage.path, entities: countEntities(entitiesOf(file)) }, 'entity store created from the configuration file');
        return { storage: new EntityStorage(store, file.storage.path, version, logger), config: file };
      }
      const storage = new EntityStorage(store, file.storage.path, stored.version, logger);
      if (hasEntities(file) && !sameEntities(entitiesOf(file), stored.entities)) {
        logger.warn(
          { store: file.storage.path, file: file.source, stored: countEntities(stored.entities), in_file: countEntities(entitiesOf(file)) },
          `the configuration file's entities (${describeCounts(countEntities(entitiesOf(file)))}) differ from the store's ` +
            `(${describeCounts(countEntities(stored.entities))}): serving the store's; "hookwire config import -c FILE" replaces them`,
        );
      }
      return { storage, config: configWithEntities(file, stored.entities, file.storage.path) };
    } catch (err) {
      store.close();
      throw err;
    }
  }

  /** DB-less: the file is the truth and entity writes are refused. */
  get dbLess(): boolean {
    return this.store === null;
  }

  /** The configuration a re-read file gives: its node settings, with the stored entities (DB-less: the file as is). */
  reloaded(file: HookwireConfig): HookwireConfig {
    if (this.store === null) return file;
    const stored = this.store.load();
    if (stored === null) return file;
    this.version = stored.version;
    return configWithEntities(file, stored.entities, this.path);
  }

  /** Store the entities of `next` (an applied Admin API change) before it is acknowledged. */
  persist(next: HookwireConfig): void {
    if (this.store === null) return;
    this.version = this.store.save(entitiesOf(next), this.version);
    this.logger.debug({ store: this.path, version: this.version }, 'entities stored');
  }

  close(): void {
    this.store?.close();
  }
}
