/**
 * A configuration document splits in two: the node's own settings
 * (listeners, limits, wasm, event_hooks, storage, log level), which always
 * come from the file, and the entities (workspaces with their services,
 * routes, consumers and plugins, and the global plugins), which come from the
 * store when there is one (Kong's "with a database") or from the file
 * (DB-less).
 */
import { isDeepStrictEqual } from 'node:util';
import { toDocument, type DocObject } from './document.js';
import type { HookwireConfig } from './schema.js';

/** The keys of a document that hold entities (any form: compact or explicit). */
export const ENTITY_KEYS = ['plugins', 'services', 'routes', 'consumers', 'workspaces'] as const;

/** The entities of a configuration, in the explicit form (every workspace listed). */
export interface EntitiesDocument {
  plugins: DocObject[];
  workspaces: DocObject[];
}

export function entitiesOf(config: HookwireConfig): EntitiesDocument {
  const doc = toDocument(config);
  return { plugins: doc.plugins as DocObject[], workspaces: doc.workspaces as DocObject[] };
}

/** The document of `config`'s node settings with `entities` in place of its own. */
export function withEntities(config: HookwireConfig, entities: EntitiesDocument): DocObject {
  const doc = toDocument(config);
  for (const key of ENTITY_KEYS) delete doc[key];
  return { ...doc, plugins: entities.plugins, workspaces: entities.workspaces };
}

/** Whether `config` declares any entity (a workspace other than the always-present default counts). */
export function hasEntities(config: HookwireConfig): boolean {
  return config.plugins.length > 0 || config.workspaces.some((w) => w.plugins.length + w.services.length + w.routes.length + w.consumers.length > 0);
}

export function sameEntities(a: EntitiesDocument, b: EntitiesDocument): boolean {
  return isDeepStrictEqual(a, b);
}

export interface EntityCounts {
  services: number;
  routes: number;
  consumers: number;
  plugins: number;
}

/** How many of each entity a document holds (for messages). */
export function countEntities(e: EntitiesDocument): EntityCounts {
  const counts: EntityCounts = { services: 0, routes: 0, consumers: 0, plugins: e.plugins.length };
  const list = (v: unknown) => (Array.isArray(v) ? (v as DocObject[]) : []);
  for (const w of e.workspaces) {
    counts.services += list(w.services).length;
    counts.routes += list(w.routes).length;
    counts.consumers += list(w.consumers).length;
    counts.plugins += list(w.plugins).length;
    for (const owner of [...list(w.services), ...list(w.routes)]) counts.plugins += list(owner.plugins).length;
  }
  return counts;
}

export function describeCounts(c: EntityCounts): string {
  return `${c.services} services, ${c.routes} routes, ${c.consumers} consumers, ${c.plugins} plugins`;
}
