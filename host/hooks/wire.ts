/**
 * The wire format of plugin records (produced by assembly/event-hooks: one
 * UTF-8 JSON object per record; the Node host reads them from the shared
 * queue `event_hooks`, Envoy's forwarder POSTs a JSON array of them):
 *
 *   {"v":1,"type":"publish","source":"http-log","event":"log","fields":[...],"unique":[...],"description":"...","plugin":"team-a-log"}
 *   {"v":1,"type":"emit","source":"http-log","event":"log","data":{...},"plugin":"team-a-log","time_ms":1764000000000}
 *
 * parseRecord never throws: a malformed record yields the reason, which the
 * service counts and logs.
 */
import { inputCopy, InputShapeError } from '../input.js';

export const WIRE_VERSION = 1;
/** Longest source or event name accepted. */
export const MAX_NAME_LENGTH = 256;

export interface PublishRecord {
  type: 'publish';
  source: string;
  event: string;
  fields: string[];
  /** Empty: the digest covers the whole data. */
  unique: string[];
  description: string | null;
  plugin: string | null;
}

export interface EmitRecord {
  type: 'emit';
  source: string;
  event: string;
  data: Record<string, unknown>;
  /** `data` as JSON text (what is stored). */
  json: string;
  plugin: string | null;
  time_ms: number | null;
}

export type WireRecord = PublishRecord | EmitRecord;

export type ParseResult = { ok: true; record: WireRecord } | { ok: false; reason: string };

const PUBLISH_KEYS = new Set(['v', 'type', 'source', 'event', 'fields', 'unique', 'description', 'plugin']);
const EMIT_KEYS = new Set(['v', 'type', 'source', 'event', 'data', 'plugin', 'time_ms']);

const decoder = new TextDecoder('utf-8', { fatal: true });

function fail(reason: string): ParseResult {
  return { ok: false, reason };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function name(rec: Record<string, unknown>, key: 'source' | 'event'): string | string[] {
  const v = rec[key];
  if (typeof v !== 'string' || v.length === 0) return [`"${key}" must be a non-empty string`];
  if (v.length > MAX_NAME_LENGTH) return [`"${key}" is longer than ${MAX_NAME_LENGTH} characters`];
  return v;
}

function stringList(rec: Record<string, unknown>, key: string): string[] | string {
  const v = rec[key];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) return `"${key}" must be a list of strings`;
  return v as string[];
}

/**
 * Validates one record: an object, or its JSON text as a string or UTF-8
 * bytes. `maxDataBytes` bounds an emit's data (as JSON).
 */
export function parseRecord(raw: unknown, maxDataBytes: number): ParseResult {
  let rec: unknown = raw;
  const fromText = raw instanceof Uint8Array || typeof raw === 'string';
  if (fromText) {
    let text: string;
    try {
      text = typeof raw === 'string' ? raw : decoder.decode(raw);
    } catch {
      return fail('record is not valid UTF-8');
    }
    try {
      rec = JSON.parse(text);
    } catch (err) {
      return fail(`record is not JSON: ${(err as Error).message}`);
    }
  }
  if (!isPlainObject(rec)) return fail('record must be a JSON object');
  if (rec.v !== WIRE_VERSION) return fail(`unsupported wire version ${JSON.stringify(rec.v)} (expected ${WIRE_VERSION})`);
  const type = rec.type;
  if (type !== 'publish' && type !== 'emit') return fail(`"type" must be "publish" or "emit" (found ${JSON.stringify(type)})`);
  const allowed = type === 'publish' ? PUBLISH_KEYS : EMIT_KEYS;
  for (const k of Object.keys(rec)) if (!allowed.has(k)) return fail(`unknown key "${k}" in a ${type} record`);
  const source = name(rec, 'source');
  if (Array.isArray(source)) return fail(source[0]!);
  const event = name(rec, 'event');
  if (Array.isArray(event)) return fail(event[0]!);
  const plugin = rec.plugin;
  if (plugin !== undefined && plugin !== null && typeof plugin !== 'string') return fail('"plugin" must be a string');
  const pluginName = typeof plugin === 'string' && plugin.length > 0 ? plugin : null;

  if (type === 'publish') {
    const fields = stringList(rec, 'fields');
    if (typeof fields === 'string') return fail(fields);
    const unique = stringList(rec, 'unique');
    if (typeof unique === 'string') return fail(unique);
    const description = rec.description;
    if (description !== undefined && description !== null && typeof description !== 'string') {
      return fail('"description" must be a string');
    }
    return {
      ok: true,
      record: {
        type,
        source,
        event,
        fields,
        unique,
        description: typeof description === 'string' && description.length > 0 ? description : null,
        plugin: pluginName,
      },
    };
  }

  if (!isPlainObject(rec.data)) return fail('"data" must be a JSON object');
  let data: Record<string, unknown>;
  try {
    // Null-prototype copy: the data reaches templates, digests and handlers, and is nested at most MAX_INPUT_DEPTH.
    data = inputCopy(rec.data) as Record<string, unknown>;
  } catch (err) {
    if (err instanceof InputShapeError) return fail(`"data" at /data${err.path} ${err.message}`);
    throw err;
  }
  const time = rec.time_ms;
  if (time !== undefined && time !== null && (typeof time !== 'number' || !Number.isFinite(time) || time < 0)) {
    return fail('"time_ms" must be a non-negative number');
  }
  let json: string;
  try {
    // What JSON.parse built encodes exactly as its null-prototype copy does (own keys, same order, only JSON
    // values), and faster (no dictionary-mode objects). A caller's object is encoded from the copy (no toJSON).
    json = JSON.stringify(fromText ? rec.data : data);
  } catch (err) {
    return fail(`"data" cannot be encoded as JSON: ${(err as Error).message}`);
  }
  if (json.length > maxDataBytes && Buffer.byteLength(json, 'utf8') > maxDataBytes) {
    return fail(`"data" is larger than ${maxDataBytes} bytes`);
  }
  return { ok: true, record: { type, source, event, data, json, plugin: pluginName, time_ms: typeof time === 'number' ? time : null } };
}
