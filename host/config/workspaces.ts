/**
 * Which parts of a raw document make up which workspace. The top-level
 * `services`/`routes`/`consumers` are shorthand for the workspace "default",
 * and a `workspaces` entry named "default" adds to that same workspace, so the
 * checks (checks.ts) and the normalizer (normalize.ts) must agree on the
 * grouping: both get it from here.
 */
import { DEFAULTS } from './defaults.js';

export type Raw = Record<string, unknown>;

export function asObject(value: unknown): Raw | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Raw) : undefined;
}

export function asArray(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

/** One place in the document that contributes entities to a workspace. */
export interface WorkspaceSource {
  /** JSON pointer of the object holding services/routes/consumers: "" for the top level, "/workspaces/2". */
  readonly pointer: string;
  readonly doc: Raw;
  /** False for the top level, whose `plugins` are global rather than the default workspace's. */
  readonly ownsPlugins: boolean;
}

export interface WorkspaceGroup {
  readonly name: string;
  readonly sources: WorkspaceSource[];
}

export interface DuplicateWorkspace {
  /** Pointer of the later, refused `workspaces` entry. */
  readonly pointer: string;
  readonly name: string;
  /** Pointer of the `workspaces` entry that first used the name. */
  readonly first: string;
}

/**
 * Groups in output order: "default" first (always present, like Kong's), then
 * the declared workspaces in order. A second entry with an already used name
 * is reported as a duplicate and contributes nothing. Entries whose name is
 * not a string are skipped (the schema reports them).
 */
export function groupWorkspaces(root: Raw): { groups: WorkspaceGroup[]; duplicates: DuplicateWorkspace[] } {
  const defaultGroup: WorkspaceGroup = { name: DEFAULTS.workspace, sources: [{ pointer: '', doc: root, ownsPlugins: false }] };
  const groups = [defaultGroup];
  const declaredAt = new Map<string, string>();
  const duplicates: DuplicateWorkspace[] = [];
  asArray(root.workspaces).forEach((entry, i) => {
    const doc = asObject(entry);
    if (!doc || typeof doc.name !== 'string') return;
    const pointer = `/workspaces/${i}`;
    const first = declaredAt.get(doc.name);
    if (first !== undefined) {
      duplicates.push({ pointer, name: doc.name, first });
      return;
    }
    declaredAt.set(doc.name, pointer);
    const source = { pointer, doc, ownsPlugins: true };
    if (doc.name === DEFAULTS.workspace) defaultGroup.sources.push(source);
    else groups.push({ name: doc.name, sources: [source] });
  });
  return { groups, duplicates };
}
