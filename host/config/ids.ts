/**
 * Stable entity ids. Config entities have no stored ids (the YAML is the
 * database), yet the admin API, logs and metrics want ids that survive a
 * reload. So an id is a name-based UUID (RFC 4122 version 5: SHA-1 of a
 * namespace plus a name): the same workspace, entity type and name always
 * give the same id, on every host, across restarts and reloads.
 */
import { createHash } from 'node:crypto';

/** hookwire's own UUID namespace (random, fixed forever: changing it changes every id). */
const NAMESPACE = Buffer.from('b36b21c49fb14a51b173d7b60520d8c1', 'hex');

export type EntityType = 'workspace' | 'service' | 'route' | 'consumer' | 'plugin';

/**
 * `workspace` is null for entities outside any workspace (workspaces
 * themselves, global plugins). The name is JSON-encoded as a tuple so that no
 * choice of names can make two different triples hash the same input.
 */
export function stableId(workspace: string | null, type: EntityType, name: string): string {
  const hash = createHash('sha1').update(NAMESPACE).update(JSON.stringify([workspace, type, name]), 'utf8').digest();
  hash[6] = (hash[6] & 0x0f) | 0x50; // version 5
  hash[8] = (hash[8] & 0x3f) | 0x80; // RFC 4122 variant
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
