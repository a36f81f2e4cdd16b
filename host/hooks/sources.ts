/**
 * The registry of event sources: what plugins publish (wire records of type
 * "publish", kept in the store so a restarted service still knows them) and
 * the built-in sources:
 *
 * - `crud`: `<entity>` and `<entity>:<operation>` for every Admin API entity;
 * - `dao:crud`: `create`, `update`, `delete`;
 * - `wasm`: the plugin runtime's own events (the proxy-wasm counterpart of
 *   Kong's `balancer` health events).
 *
 * Built-in sources cannot be published or emitted by plugins: a plugin could
 * otherwise forge Admin API change events.
 */
import type { RuntimeEvent } from '../vm/runtime.js';
import type { EventSpec, SourcesView } from './types.js';

export const CRUD_OPERATIONS = ['create', 'update', 'delete'] as const;
export type CrudOperation = (typeof CRUD_OPERATIONS)[number];

/** Kong's entity names for hookwire's Admin API entities. */
export const DEFAULT_CRUD_ENTITIES = ['workspaces', 'services', 'routes', 'consumers', 'plugins', 'event_hooks'] as const;

const CRUD_FIELDS = ['operation', 'entity', 'old_entity', 'schema'];

/** The `wasm` source: one event per runtime event of host/vm. */
export const WASM_EVENTS: Readonly<Record<string, EventSpec>> = {
  'plugin-loaded': {
    fields: ['plugin', 'vm_id', 'root_id', 'sha256', 'file'],
    unique: ['plugin', 'sha256'],
    description: 'A plugin was loaded: its VM started and accepted the configuration',
  },
  'plugin-config-refused': {
    fields: ['plugin', 'vm_id', 'reason'],
    unique: ['plugin', 'reason'],
    description: 'A plugin refused its configuration (on_vm_start/on_configure returned false or trapped)',
  },
  'vm-trapped': {
    fields: ['vm_id', 'callback', 'reason', 'plugins'],
    unique: ['vm_id', 'callback', 'reason'],
    description: "A VM trapped (abort, unreachable, out-of-bounds...); its plugins' failure policy applies",
  },
  'vm-reloaded': {
    fields: ['vm_id', 'plugins', 'ok', 'reason'],
    unique: ['vm_id', 'ok'],
    description: 'A poisoned VM was replaced by a fresh one (failure policy reload); ok false when that failed',
  },
  'plugin-unloaded': {
    fields: ['plugin', 'vm_id'],
    unique: ['plugin'],
    description: 'A plugin was unloaded (configuration reload or shutdown)',
  },
};

/** Maps a host/vm runtime event to an event of the `wasm` source. */
export function wasmEventOf(e: RuntimeEvent): { event: string; data: Record<string, unknown> } {
  switch (e.type) {
    case 'plugin_loaded':
      return { event: 'plugin-loaded', data: { plugin: e.plugin, vm_id: e.vmId, root_id: e.rootId, sha256: e.sha256, file: e.file } };
    case 'plugin_start_failed':
      return { event: 'plugin-config-refused', data: { plugin: e.plugin, vm_id: e.vmId, reason: e.reason } };
    case 'vm_trapped':
      return { event: 'vm-trapped', data: { vm_id: e.vmId, callback: e.callback, reason: e.reason, plugins: e.plugins } };
    case 'vm_reloaded':
      return {
        event: 'vm-reloaded',
        data: { vm_id: e.vmId, plugins: e.plugins, ok: e.ok, ...(e.reason !== undefined ? { reason: e.reason } : {}) },
      };
    case 'plugin_unloaded':
      return { event: 'plugin-unloaded', data: { plugin: e.plugin, vm_id: e.vmId } };
  }
}

export const BUILT_IN_SOURCES = ['crud', 'dao:crud', 'wasm'] as const;

export interface PublishedRow {
  source: string;
  event: string;
  spec: EventSpec;
  plugin: string | null;
}

function copySpec(s: EventSpec): EventSpec {
  return {
    fields: [...s.fields],
    ...(s.unique && s.unique.length > 0 ? { unique: [...s.unique] } : {}),
    ...(s.description ? { description: s.description } : {}),
  };
}

export class SourceRegistry {
  private readonly sources = new Map<string, Map<string, EventSpec>>();

  constructor(crudEntities: readonly string[] = DEFAULT_CRUD_ENTITIES) {
    const crud = new Map<string, EventSpec>();
    this.sources.set('crud', crud);
    for (const e of crudEntities) this.addCrudEntity(e);
    const dao = new Map<string, EventSpec>();
    for (const op of CRUD_OPERATIONS) dao.set(op, { fields: [...CRUD_FIELDS], description: `An Admin API entity was ${op}d` });
    this.sources.set('dao:crud', dao);
    this.sources.set('wasm', new Map(Object.entries(WASM_EVENTS).map(([k, v]) => [k, copySpec(v)])));
  }

  isBuiltIn(source: string): boolean {
    return (BUILT_IN_SOURCES as readonly string[]).includes(source);
  }

  /** Registers `<entity>` and `<entity>:<op>` of `crud` (idempotent). */
  addCrudEntity(entity: string): void {
    const crud = this.sources.get('crud')!;
    if (crud.has(entity)) return;
    crud.set(entity, { fields: [...CRUD_FIELDS], description: `Any change of ${entity}` });
    for (const op of CRUD_OPERATIONS) crud.set(`${entity}:${op}`, { fields: [...CRUD_FIELDS], description: `${entity} ${op}` });
  }

  /** Kong's publish: overwrites the event's definition. */
  publish(source: string, event: string, spec: EventSpec): void {
    let events = this.sources.get(source);
    if (!events) {
      events = new Map();
      this.sources.set(source, events);
    }
    events.set(event, copySpec(spec));
  }

  /** null when `event` of `source` may be emitted, else Kong's message. */
  check(source: string, event: string): string | null {
    const events = this.sources.get(source);
    if (!events) return `source '${source}' is not registered`;
    if (!events.has(event)) return `source '${source}' has no '${event}' event`;
    return null;
  }

  spec(source: string, event: string): EventSpec | undefined {
    return this.sources.get(source)?.get(event);
  }

  /** A copy of every source, `{source: {event: spec}}`. */
  view(): SourcesView {
    // Null-prototype copies: a source or event named `__proto__` is listed like any other.
    const out = Object.create(null) as SourcesView;
    for (const [source, events] of this.sources) out[source] = this.eventsOf(events);
    return out;
  }

  /** A copy of one source's events, or undefined. */
  source(name: string): Record<string, EventSpec> | undefined {
    const events = this.sources.get(name);
    return events ? this.eventsOf(events) : undefined;
  }

  private eventsOf(events: Map<string, EventSpec>): Record<string, EventSpec> {
    const out = Object.create(null) as Record<string, EventSpec>;
    for (const [name, spec] of events) out[name] = copySpec(spec);
    return out;
  }
}
