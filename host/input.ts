/**
 * Values built from untrusted input (Admin API bodies, ingest records, the
 * configuration file, stored rows): copies in which every object has a null
 * prototype, so no key, not even `__proto__`, `constructor` or `prototype`,
 * can reach Object.prototype or be found on it by a lookup. The copy also
 * bounds nesting, so code walking the value recursively (schema validation,
 * digests, JSON.stringify) cannot run out of stack.
 *
 * JSON.parse itself is safe to call first: it builds `__proto__` as an own
 * property and does not recurse on the native stack.
 */

/** Deepest nesting of objects and arrays accepted in a JSON body (the body itself is level 1). */
export const MAX_INPUT_DEPTH = 64;

/** The one key that changes an ordinary object's prototype when assigned. */
export const PROTO_KEY = '__proto__';

/** A value refused while copying: `path` is the JSON pointer of the offending place. */
export class InputShapeError extends Error {
  constructor(
    readonly reason: 'depth' | 'key',
    readonly path: string,
    message: string,
  ) {
    super(message);
    this.name = 'InputShapeError';
  }
}

export interface InputCopyOptions {
  /** Default MAX_INPUT_DEPTH. */
  readonly maxDepth?: number;
  /** Refuse `__proto__` keys (InputShapeError naming the field) instead of keeping them as plain data. */
  readonly refuseProtoKey?: boolean;
}

function pointerSegment(key: string): string {
  return key.replace(/~/g, '~0').replace(/\//g, '~1');
}

/**
 * A copy of a JSON-like value with null-prototype objects. Throws
 * InputShapeError when it is nested deeper than `maxDepth` or (with
 * `refuseProtoKey`) has a `__proto__` key. Recursion is bounded by maxDepth.
 */
export function inputCopy(value: unknown, options: InputCopyOptions = {}): unknown {
  const maxDepth = options.maxDepth ?? MAX_INPUT_DEPTH;
  const refuse = options.refuseProtoKey ?? false;
  // The keys down to the current value; the pointer is only built for an error (this runs per ingested record).
  const trail: string[] = [];
  const pointer = (): string => trail.map((k) => `/${pointerSegment(k)}`).join('');
  const copy = (v: unknown, depth: number): unknown => {
    if (v === null || typeof v !== 'object') return v;
    if (depth > maxDepth) throw new InputShapeError('depth', pointer(), `is nested deeper than ${maxDepth} levels`);
    if (Array.isArray(v)) {
      const out = new Array<unknown>(v.length);
      for (let i = 0; i < v.length; i++) {
        const item: unknown = v[i];
        if (item !== null && typeof item === 'object') {
          trail.push(String(i));
          out[i] = copy(item, depth + 1);
          trail.pop();
        } else out[i] = item;
      }
      return out;
    }
    const out = Object.create(null) as Record<string, unknown>;
    for (const key in v) {
      // JSON.parse and YAML build plain objects: every enumerable key is an own one, but check anyway.
      if (!Object.hasOwn(v, key)) continue;
      const item = (v as Record<string, unknown>)[key];
      if (refuse && key === PROTO_KEY) {
        trail.push(key);
        throw new InputShapeError('key', pointer(), `"${PROTO_KEY}" is not allowed as a key`);
      }
      if (item !== null && typeof item === 'object') {
        trail.push(key);
        out[key] = copy(item, depth + 1);
        trail.pop();
      } else out[key] = item;
    }
    return out;
  };
  return copy(value, 1);
}

/** `obj[key]` when `key` is the object's own property (never something found on a prototype). */
export function ownValue<T>(obj: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(obj, key) ? obj[key] : undefined;
}
