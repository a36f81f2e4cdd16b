/**
 * Recursive Object.freeze. Configs are shared by the data plane, the admin API
 * and every plugin instance; freezing them turns an accidental mutation into an
 * immediate TypeError (ESM is strict mode) instead of a cross-request surprise.
 */
export function deepFreeze<T>(value: T): T {
  // isFrozen doubles as the "already visited" mark, so shared sub-objects
  // (the flattened route table points into the workspaces) are walked once.
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
