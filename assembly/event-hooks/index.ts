// Kong's event hooks library (kong.enterprise_edition.event_hooks), for
// AssemblyScript proxy-wasm plugins:
//
//   import { publish, emit, PublishOptions, JsonObject } from "../../event-hooks";
//   // in onConfigure / onStart:
//   publish("http-log", "log", PublishOptions.of(["consumer", "ip"], ["ip"], "Run an event for a request"));
//   // anywhere, e.g. onLog:
//   const r = emit("http-log", "log", new JsonObject().str("ip", ip));
//   if (!r.ok) log(LogLevelValues.warn, r.error);   // "source 'x' is not registered"
//
// Transport: only standard proxy-wasm calls, so the same .wasm works under
// Envoy and hookwire. Every record is one UTF-8 JSON object (docs/event-wire-format.md)
// enqueued on the shared queue "event_hooks" of VM `hookwire_event_hooks`
// (resolved with proxy_resolve_shared_queue). hookwire's host consumes that
// queue natively; under Envoy the event-forwarder singleton registers it and
// ships the records to hookwire's ingest endpoint.
//
// Until the queue resolves, records are held: every publish record, and up to
// `maxPendingEmits` emit records (the oldest are dropped first, with a warning).
// Resolution is retried on every emit and every tick() (call it from onTick).
// Publish records are sent again whenever the queue was lost and found again,
// so a restarted consumer always learns the sources before their events.
//
// State is per VM (the SDK has one root context per VM), like Kong's per-worker
// event registry.
import { decimal, decimalU } from "../sdk/decimal";
import { log, LogLevelValues } from "../sdk/host";
import { JSON } from "assemblyscript-json/assembly";
import { JsonWriter, JsonObject } from "./json";
import { enqueue, getProperty, nowMillis, propertyPath, resolveQueue, queueId } from "./host";

export { JsonKey, JsonWriter, JsonObject, JsonArray, parseJson, parseJsonString, isJsonObject, jsonError, jsonText, jsonQuote } from "./json";

/** Wire format version carried in every record ("v"). */
export const WIRE_VERSION: i32 = 1;
/** Name of the shared queue records are enqueued on. */
export const QUEUE_NAME = "event_hooks";
/** vm_id of the queue's owner: hookwire's host, or the event-forwarder singleton under Envoy. */
export const DEFAULT_VM_ID = "hookwire_event_hooks";
/** Emit records held while the queue cannot be resolved, by default. */
export const DEFAULT_MAX_PENDING_EMITS: i32 = 1000;

/** Options of publish(), as Kong's `{fields, unique, description}`. */
export class PublishOptions {
  /** Names of the data fields (informational; shown by /event-hooks/sources). */
  fields: string[] = [];
  /** Fields whose values identify "the same" event (digest for on_change/snooze); empty: the whole data. */
  unique: string[] = [];
  description: string = "";

  static of(fields: string[], unique: string[], description: string): PublishOptions {
    const o = new PublishOptions();
    o.fields = fields;
    o.unique = unique;
    o.description = description;
    return o;
  }
}

/** What emit() returns: ok, or Kong's error message. Treat it as read-only (the ok result is shared). */
export class EmitResult {
  constructor(public ok: bool, public error: string) {}
}

const EMITTED = new EmitResult(true, "");

class Published {
  source: string;
  event: string;
  options: PublishOptions;
  /** The publish record (JSON bytes). */
  record: ArrayBuffer = new ArrayBuffer(0);
  /** `{"v":1,"type":"emit","source":...,"event":...,"data":` */
  emitPrefix: ArrayBuffer = new ArrayBuffer(0);
  /** Delivered to the current queue owner. */
  sent: bool = false;

  constructor(source: string, event: string, options: PublishOptions) {
    this.source = source;
    this.event = event;
    this.options = options;
  }
}

// ---- module state (one per VM) ----

let vmId: string = DEFAULT_VM_ID;
let vmIdBytes: ArrayBuffer = String.UTF8.encode(DEFAULT_VM_ID);
const queueNameBytes: ArrayBuffer = String.UTF8.encode(QUEUE_NAME);
let resolvedQueue: u32 = 0;
let resolved: bool = false;
let announcedWaiting: bool = false;

const sources = new Map<string, Map<string, Published>>();
const publishOrder = new Array<Published>();

// Emit records not yet enqueued (a FIFO: head index into the array).
let pending = new Array<ArrayBuffer>();
let pendingHead: i32 = 0;
let maxPending: i32 = DEFAULT_MAX_PENDING_EMITS;
let droppedTotal: u64 = 0;
let droppedReported: u64 = 0;

let pluginName: string | null = null;
let pluginSuffix: ArrayBuffer = new ArrayBuffer(0); // `,"plugin":"...","time_ms":`

const recordWriter = new JsonWriter(1024);

// ---- configuration ----

/**
 * Use the queue of VM `id` (plugin config `event_hooks_vm_id`). Changing it
 * forgets the resolved queue; publish records are sent again to the new one.
 */
export function setQueueVmId(id: string): void {
  if (id == vmId) return;
  vmId = id;
  vmIdBytes = String.UTF8.encode(id);
  queueLost();
}

export function queueVmId(): string {
  return vmId;
}

/** Bound the emit records held while the queue is unavailable (at least 1). */
export function setMaxPendingEmits(n: i32): void {
  maxPending = n < 1 ? 1 : n;
  trimPending();
}

// ---- Kong's API ----

/**
 * Register `event` of `source` (Kong: event_hooks.publish). Synchronous and
 * local: emit() accepts the event from now on. Publishing again overwrites
 * the definition. A publish record is sent to the event hooks service (now,
 * or once the queue resolves). Returns false when source or event is empty.
 */
export function publish(source: string, event: string, options: PublishOptions): bool {
  if (source.length == 0 || event.length == 0) return false;
  ensurePluginName();
  let events: Map<string, Published>;
  if (sources.has(source)) events = sources.get(source);
  else {
    events = new Map<string, Published>();
    sources.set(source, events);
  }
  let entry: Published;
  if (events.has(event)) {
    entry = events.get(event);
    entry.options = options;
  } else {
    entry = new Published(source, event, options);
    events.set(event, entry);
    publishOrder.push(entry);
  }
  entry.record = publishRecord(entry);
  entry.emitPrefix = emitPrefix(entry);
  entry.sent = false;
  flush();
  return true;
}

/**
 * Send `event` of `source` with `data` (Kong: event_hooks.emit). Non-blocking:
 * the record is enqueued (or held until the queue resolves). When the event
 * was not published, nothing is sent and the result carries Kong's message.
 * `data` may be reused by the caller after the call.
 */
export function emit(source: string, event: string, data: JsonObject): EmitResult {
  return emitAt(source, event, data, nowMillis());
}

// The last (source, event) emitted: a plugin emits the same constants again
// and again, and comparing a string with itself is one pointer check, so the
// two map lookups (each hashing a string) are skipped.
let lastSource: string = "";
let lastEvent: string = "";
let lastEntry: Published | null = null;

/** emit() with the time (ms since the epoch) the caller already read. */
export function emitAt(source: string, event: string, data: JsonObject, nowMs: i64): EmitResult {
  let entry = lastEntry;
  if (entry === null || source != lastSource || event != lastEvent) {
    if (!sources.has(source)) return new EmitResult(false, "source '" + source + "' is not registered");
    const events = sources.get(source);
    if (!events.has(event)) return new EmitResult(false, "source '" + source + "' has no '" + event + "' event");
    entry = events.get(event);
    lastSource = source;
    lastEvent = event;
    lastEntry = entry;
  }

  const w = recordWriter;
  w.reset();
  w.rawBuffer(entry.emitPrefix);
  w.rawBytes(data.writer.ptr, data.writer.len); // "{..." without its closing brace
  w.rawByte(0x7d);
  w.rawBuffer(pluginSuffix);
  w.rawInt(nowMs);
  w.rawByte(0x7d);

  // Fast path: nothing held back and the queue is there.
  if (pendingHead == pending.length && allPublishesSent() && (resolved || tryResolve())) {
    if (enqueue(resolvedQueue, w.ptr, w.len) == 0) return EMITTED;
    queueLost();
  }
  pending.push(w.toArrayBuffer());
  trimPending();
  flush();
  return EMITTED;
}

/** emit() with data from a parsed JSON object (assemblyscript-json), re-encoded. */
export function emitJson(source: string, event: string, data: JSON.Obj): EmitResult {
  const o = new JsonObject();
  const keys = data.keys;
  for (let i = 0; i < keys.length; i++) o.json(keys[i], data.valueOf().get(keys[i]));
  return emit(source, event, o);
}

/** Whether `event` of `source` has been published in this VM. */
export function isPublished(source: string, event: string): bool {
  return sources.has(source) && sources.get(source).has(event);
}

/** The published events as `{source: {event: {fields, unique, description}}}` (Kong: event_hooks.list). */
export function list(): JsonObject {
  const out = new JsonObject();
  const names = sources.keys();
  for (let i = 0; i < names.length; i++) {
    const events = sources.get(names[i]);
    const evNames = events.keys();
    const ev = new JsonObject();
    for (let j = 0; j < evNames.length; j++) {
      const o = events.get(evNames[j]).options;
      ev.obj(evNames[j], new JsonObject().strs("fields", o.fields).strs("unique", o.unique).str("description", o.description));
    }
    out.obj(names[i], ev);
  }
  return out;
}

/** Retry resolving the queue and send held records. Call it from the root context's onTick. */
export function tick(): void {
  flush();
}

/** Records waiting for the queue (unsent publish records and held emits). */
export function pendingRecords(): i32 {
  let n = pending.length - pendingHead;
  for (let i = 0; i < publishOrder.length; i++) if (!publishOrder[i].sent) n++;
  return n;
}

/** Emit records dropped because too many were held while the queue was unavailable. */
export function droppedEmits(): u64 {
  return droppedTotal;
}

/** Whether the queue is currently resolved. */
export function queueResolved(): bool {
  return resolved;
}

// ---- internals ----

function ensurePluginName(): void {
  if (pluginName !== null) return;
  const v = getProperty(propertyPath("plugin_name"));
  const name = v === null ? "" : String.UTF8.decode(v);
  pluginName = name;
  const w = new JsonWriter(64);
  w.rawAscii(",\"plugin\":");
  w.str(name);
  w.rawAscii(",\"time_ms\":");
  pluginSuffix = w.toArrayBuffer();
}

/** A record's first members, common to both types: {"v":1,"type":…,"source":…,"event":… */
function recordHead(w: JsonWriter, type: string, p: Published): void {
  w.beginObject();
  w.key("v");
  w.int(WIRE_VERSION);
  w.key("type");
  w.str(type);
  w.key("source");
  w.str(p.source);
  w.key("event");
  w.str(p.event);
}

function publishRecord(p: Published): ArrayBuffer {
  const w = new JsonWriter(256);
  recordHead(w, "publish", p);
  w.key("fields");
  w.beginArray();
  for (let i = 0; i < p.options.fields.length; i++) w.str(p.options.fields[i]);
  w.endArray();
  w.key("unique");
  w.beginArray();
  for (let i = 0; i < p.options.unique.length; i++) w.str(p.options.unique[i]);
  w.endArray();
  w.key("description");
  w.str(p.options.description);
  w.key("plugin");
  w.str(pluginName !== null ? <string>pluginName : "");
  w.endObject();
  return w.toArrayBuffer();
}

function emitPrefix(p: Published): ArrayBuffer {
  const w = new JsonWriter(128);
  recordHead(w, "emit", p);
  w.key("data"); // the data object's bytes follow
  return w.toArrayBuffer();
}

function allPublishesSent(): bool {
  for (let i = 0; i < publishOrder.length; i++) if (!publishOrder[i].sent) return false;
  return true;
}

function tryResolve(): bool {
  if (resolveQueue(vmIdBytes, queueNameBytes) != 0) {
    if (!announcedWaiting) {
      announcedWaiting = true;
      log(LogLevelValues.info, "event-hooks: queue '" + QUEUE_NAME + "' of VM '" + vmId + "' is not available yet; holding records until it is");
    }
    return false;
  }
  resolvedQueue = queueId;
  resolved = true;
  announcedWaiting = false;
  return true;
}

/** The queue went away (or changed): everything published must be sent again. */
function queueLost(): void {
  resolved = false;
  resolvedQueue = 0;
  for (let i = 0; i < publishOrder.length; i++) publishOrder[i].sent = false;
}

/** Send held records in order: publish records first, then emits. */
function flush(): void {
  if (!resolved && !tryResolve()) return;
  for (let i = 0; i < publishOrder.length; i++) {
    const p = publishOrder[i];
    if (p.sent) continue;
    if (enqueue(resolvedQueue, changetype<usize>(p.record), p.record.byteLength) != 0) {
      queueLost();
      return;
    }
    p.sent = true;
  }
  while (pendingHead < pending.length) {
    const r = pending[pendingHead];
    if (enqueue(resolvedQueue, changetype<usize>(r), r.byteLength) != 0) {
      queueLost();
      return;
    }
    pendingHead++;
  }
  pending = new Array<ArrayBuffer>();
  pendingHead = 0;
  reportDrops();
}

function trimPending(): void {
  let dropped = 0;
  while (pending.length - pendingHead > maxPending) {
    pendingHead++;
    dropped++;
  }
  if (dropped == 0) return;
  // Compact now and then so the array does not grow without bound.
  if (pendingHead > 1024 && pendingHead * 2 > pending.length) {
    pending = pending.slice(pendingHead);
    pendingHead = 0;
  }
  const before = droppedTotal;
  droppedTotal += <u64>dropped;
  // Warn on the first drop of an outage and then every 1000 drops.
  if (droppedReported == before || droppedTotal / 1000 != before / 1000) {
    log(LogLevelValues.warn, "event-hooks: queue '" + QUEUE_NAME + "' of VM '" + vmId + "' unavailable; dropped the oldest held emit record(s), " +
      decimalU(droppedTotal - droppedReported) + " so far (limit " + decimal(maxPending) + " held)");
  }
}

function reportDrops(): void {
  if (droppedTotal == droppedReported) return;
  log(LogLevelValues.warn, "event-hooks: " + decimalU(droppedTotal - droppedReported) + " emit record(s) were dropped while queue '" + QUEUE_NAME + "' was unavailable");
  droppedReported = droppedTotal;
}
