/**
 * Turns ajv's errors into ConfigIssues a person can act on: a JSON pointer to
 * the exact value, what was expected, and what was found. ajv's own messages
 * ("must be integer") say neither where the allowed keys are nor what the
 * document actually contained.
 */
import type { ErrorObject } from 'ajv';
import type { ConfigIssue } from '../errors.js';

type Schema = Record<string, unknown>;

export function issuesFromAjv(errors: readonly ErrorObject[]): ConfigIssue[] {
  // A value of the wrong type also fails its enum/pattern/...; one message per value is enough.
  const wrongType = new Set(errors.filter((e) => e.keyword === 'type').map((e) => e.instancePath));
  const issues: ConfigIssue[] = [];
  for (const error of errors) {
    if (error.keyword !== 'type' && wrongType.has(error.instancePath)) continue;
    issues.push(issueFromAjv(error));
  }
  return dedupeIssues(issues);
}

function issueFromAjv(error: ErrorObject): ConfigIssue {
  const at = error.instancePath;
  const schema = (error.parentSchema ?? {}) as Schema;
  const found = `(found ${describeValue(error.data)})`;
  switch (error.keyword) {
    case 'additionalProperties': {
      const key = String(error.params.additionalProperty);
      const allowed = Object.keys((schema.properties ?? {}) as Schema).join(', ');
      return { path: `${at}/${escapePointer(key)}`, message: `unknown key ${JSON.stringify(key)} (allowed: ${allowed})` };
    }
    case 'required': {
      const key = String(error.params.missingProperty);
      return { path: `${at}/${escapePointer(key)}`, message: `required key ${JSON.stringify(key)} is missing` };
    }
    case 'type':
    case 'minimum':
    case 'maximum':
    case 'minLength':
    case 'enum':
      return { path: at, message: `must be ${expected(schema)} ${found}` };
    case 'pattern': {
      // The schema's description says in words what the regular expression means.
      const rule = typeof schema.description === 'string' ? schema.description : `a match of ${String(schema.pattern)}`;
      return { path: at, message: `must be ${rule} ${found}` };
    }
    case 'minItems': {
      const n = Number(error.params.limit);
      return { path: at, message: `must be a list of at least ${n} item${n === 1 ? '' : 's'} ${found}` };
    }
    case 'uniqueItems': {
      // ajv's order of i and j depends on the item type: point at the later one.
      const { i, j } = error.params as { i: number; j: number };
      const [first, later] = [Math.min(i, j), Math.max(i, j)];
      const item = Array.isArray(error.data) ? error.data[later] : undefined;
      return { path: `${at}/${later}`, message: `duplicates item ${first} (found ${describeValue(item)} twice)` };
    }
    default:
      return { path: at, message: `${error.message ?? 'is invalid'} ${found}` };
  }
}

/** The expectation phrased from the schema: "an integer between 0 and 65535", "a non-empty string or null". */
function expected(schema: Schema): string {
  if (Array.isArray(schema.enum)) return `one of ${schema.enum.join(', ')}`;
  const types = Array.isArray(schema.type) ? (schema.type as string[]) : [String(schema.type)];
  return types.map((t) => describeType(t, schema)).join(' or ');
}

function describeType(type: string, schema: Schema): string {
  switch (type) {
    case 'integer':
    case 'number': {
      const noun = type === 'integer' ? 'an integer' : 'a number';
      const { minimum: min, maximum: max } = schema;
      if (min !== undefined && max !== undefined) return `${noun} between ${min} and ${max}`;
      if (min !== undefined) return `${noun} >= ${min}`;
      if (max !== undefined) return `${noun} <= ${max}`;
      return noun;
    }
    case 'string':
      return schema.minLength === 1 ? 'a non-empty string' : 'a string';
    case 'boolean':
      return 'true or false';
    case 'object':
      return 'a mapping (object)';
    case 'array':
      return 'a list (array)';
    case 'null':
      return 'null';
    default:
      return type;
  }
}

/** A short rendering of a found value: strings quoted and truncated, containers by kind. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return value.length === 0 ? 'an empty list' : 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') {
    const short = value.length > 60 ? `${value.slice(0, 57)}...` : value;
    return JSON.stringify(short);
  }
  return String(value);
}

/** RFC 6901 escaping, so a key containing "/" still yields an unambiguous pointer. */
export function escapePointer(key: string): string {
  return key.replace(/~/g, '~0').replace(/\//g, '~1');
}

export function dedupeIssues(issues: readonly ConfigIssue[]): ConfigIssue[] {
  const seen = new Set<string>();
  return issues.filter((i) => {
    const key = `${i.path}\0${i.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
