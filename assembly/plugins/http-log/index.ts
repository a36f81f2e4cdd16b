// http-log: Kong's HTTP Log plugin as a proxy-wasm filter (see README.md).
//
// on_log serializes the request (entry.ts) and hands the entry to the root
// context's queue, which batches entries, sends them with proxy_http_call to
// the cluster named by http_endpoint's host (one batch in flight), and retries
// failures with exponential backoff, as kong.tools.queue does. Timing runs on
// root ticks. With event_hooks on, the plugin also publishes source "http-log"
// event "log" and emits it for every request (the seed blog's plugin).
//
// The root context is assembly/sdk's. The per-stream callbacks are this file's
// own (at the end): http-log keeps no state per stream, so it skips the
// stream machinery (a Context object and a map entry per stream). It has nothing to do before
// the log phase, so the header, body and trailer phases are not exported at
// all: hosts call only the callbacks a module exports, and go on (Envoy's
// proxy-wasm-cpp-host, hookwire).
//
// The allocator export is event-hooks/scratch's: values the entry writer
// reads land in a reused block instead of the GC heap.
export { malloc } from "../../event-hooks/scratch";
export {
  proxy_abi_version_0_2_1,
  proxy_on_vm_start,
  proxy_validate_configuration,
  proxy_on_configure,
  proxy_on_tick,
  proxy_on_foreign_function,
  proxy_on_queue_ready,
  proxy_on_http_call_response,
} from "../../sdk";
import {
  decimal,
  BufferTypeValues,
  get_buffer_bytes,
  log,
  LogLevelValues,
  registerRootContext,
  RootContext,
  stream_context,
  ensureRootContext,
  enter,
  leave,
} from "../../sdk";
import { emitAt, JsonObject, JsonWriter, pendingRecords, publish, PublishOptions, setQueueVmId, tick as eventHooksTick } from "../../event-hooks";
import { Slice } from "../../event-hooks/scratch";
import { httpCall, httpCallToken, lastStatusMessage, nowMillis, rootDone, setEffectiveContext, setTickPeriod } from "../../event-hooks/host";
import { HttpLogConfig, parseConfig } from "./config";
import { identity, writeEntry } from "./entry";
import { K_CONSUMER, K_ID, K_IP, K_NAME, K_ROUTE, K_SERVICE, K_USERNAME, key } from "./names";
import { ByteQueue } from "../../event-hooks/queue";

/** Kong: sends right away when less than this is left of the coalescing delay (COALESCE_MIN_TIME). */
const COALESCE_MIN_MS: f64 = 50;
/** Longest tick while waiting, as Kong polls at most every second (COALESCE_POLL_TIME). */
const MAX_TICK_MS: f64 = 1000;
/** Tick used only to retry event-hooks queue resolution. */
const EVENT_HOOKS_RETRY_MS: u32 = 1000;
const CAPACITY_WARNING_THRESHOLD: f64 = 0.8;
/** Response body bytes quoted in a failure message. */
const MAX_BODY_IN_LOG: u32 = 256;

const EVENT_SOURCE = "http-log";
const EVENT_NAME = "log";

// Reused on every request.
const entryWriter = new JsonWriter(4096);
const eventData = new JsonObject(256);

function nowMs(): f64 {
  return <f64>nowMillis();
}

class HttpLogRoot extends RootContext {
  cfg: HttpLogConfig = new HttpLogConfig();
  queue: ByteQueue = new ByteQueue();

  // The batch being sent or waiting to be retried (empty: none).
  batch: ArrayBuffer[] = [];
  body: ArrayBuffer = new ArrayBuffer(0);
  /** Token of the http call in flight (0: none). */
  token: u32 = 0;
  firstAttempt: f64 = 0;
  retries: i32 = 0;
  retryAt: f64 = 0;
  /** When the oldest waiting entry started its coalescing delay. */
  coalesceStart: f64 = 0;

  tickMs: u32 = 0;
  warnedCapacity: bool = false;
  queueFull: bool = false;
  droppedWhileFull: i64 = 0;
  /** Unloading: send everything queued without waiting out the coalescing delay, then proxy_done. */
  flushing: bool = false;

  onConfigure(configuration_size: u32): bool {
    const text = configuration_size == 0 ? new ArrayBuffer(0) : get_buffer_bytes(BufferTypeValues.PluginConfiguration, 0, configuration_size);
    const errors = new Array<string>();
    const warnings = new Array<string>();
    const cfg = parseConfig(text, errors, warnings);
    for (let i = 0; i < warnings.length; i++) log(LogLevelValues.warn, warnings[i]);
    if (cfg === null) {
      for (let i = 0; i < errors.length; i++) log(LogLevelValues.error, errors[i]);
      return false;
    }
    this.cfg = cfg;
    if (cfg.eventHooks) {
      setQueueVmId(cfg.eventHooksVmId);
      publish(EVENT_SOURCE, EVENT_NAME, PublishOptions.of(["consumer", "ip", "service", "route"], ["consumer", "ip", "service"], "Run an event for a request"));
    }
    this.reschedule(nowMs());
    return true;
  }

  onTick(): void {
    if (this.cfg.eventHooks) eventHooksTick();
    const now = nowMs();
    this.pump(now);
    this.reschedule(now);
    this.doneIfFlushed();
  }

  // ---- unloading (Envoy's proxy_on_done / proxy_done protocol) ----

  /**
   * The host unloads this plugin (reload, configuration change, shutdown).
   * Nothing queued may be lost: send it all now (retries as usual) and stay
   * alive until the last batch is answered, then call proxy_done. The host
   * bounds the wait (hookwire: proxy.drain_timeout_ms).
   */
  onDone(): bool {
    this.flushing = true;
    const now = nowMs();
    this.pump(now);
    if (this.idle()) return true;
    log(LogLevelValues.info, "http-log: unloading; sending " + decimal(this.queue.length + this.batch.length) + " queued entries first");
    this.reschedule(now);
    return false;
  }

  idle(): bool {
    return this.token == 0 && this.batch.length == 0 && this.queue.length == 0;
  }

  doneIfFlushed(): void {
    if (!this.flushing || !this.idle()) return;
    this.flushing = false;
    rootDone();
  }

  // ---- the queue (kong.tools.queue semantics) ----

  /** Queue one serialized entry at time `now` (ms). */
  enqueue(entry: ArrayBuffer, now: f64): void {
    const q = this.cfg.queue;
    const len = entry.byteLength;
    if (q.maxBytes > 0 && <i64>len > q.maxBytes) {
      log(LogLevelValues.error, "http-log: string to be queued is longer (" + decimal(len) + " bytes) than the queue's max_bytes (" + decimal(q.maxBytes) + " bytes)");
      return;
    }
    const count = this.queue.length;
    if (<f64>count >= <f64>q.maxEntries * CAPACITY_WARNING_THRESHOLD) {
      if (!this.warnedCapacity) {
        log(LogLevelValues.warn, "http-log: queue at 80% capacity");
        this.warnedCapacity = true;
      }
    } else {
      this.warnedCapacity = false;
    }
    if (count >= q.maxEntries) {
      if (!this.queueFull) {
        this.queueFull = true;
        log(LogLevelValues.error, "http-log: queue full, dropping old entries until processing is successful again");
      }
      this.queue.shift();
      this.droppedWhileFull++;
    }
    if (q.maxBytes > 0) {
      let dropped = 0;
      while (this.queue.length > 0 && this.queue.bytes + <i64>len > q.maxBytes) {
        this.queue.shift();
        dropped++;
      }
      if (dropped > 0) {
        this.queueFull = true;
        this.droppedWhileFull += dropped;
        log(LogLevelValues.error, "http-log: byte capacity exceeded, " + decimal(dropped) + " queue entries were dropped");
      }
    }
    const startsBatch = this.queue.length == 0 && this.batch.length == 0;
    this.queue.push(entry);
    if (startsBatch) this.coalesceStart = now;
    const sent = this.pump(now);
    // The timer only needs attention when a coalescing window opened or a send started.
    if (startsBatch || sent) this.reschedule(now);
  }

  /** Start sending when due; returns whether a call was attempted. */
  pump(now: f64): bool {
    if (this.token != 0) return false;
    if (this.batch.length > 0) {
      if (now < this.retryAt) return false;
      this.attempt(now);
      return true;
    }
    const q = this.cfg.queue;
    const n = this.queue.length;
    if (n == 0) return false;
    if (!this.flushing && q.maxBatchSize > 1 && n < q.maxBatchSize && now - this.coalesceStart < q.maxCoalescingDelay - COALESCE_MIN_MS) return false;
    this.takeBatch(now);
    this.attempt(now);
    return true;
  }

  takeBatch(now: f64): void {
    const size = this.cfg.queue.maxBatchSize;
    const n = min(size, this.queue.length);
    const batch = new Array<ArrayBuffer>(n);
    let bytes = 0;
    for (let i = 0; i < n; i++) {
      batch[i] = this.queue.shift();
      bytes += batch[i].byteLength;
    }
    this.batch = batch;
    if (size == 1) {
      this.body = batch[0]; // Kong: one object, not an array, when max_batch_size is 1
    } else {
      const body = new ArrayBuffer(bytes + n + 1);
      const p = changetype<usize>(body);
      store<u8>(p, 0x5b);
      let o: usize = 1;
      for (let i = 0; i < n; i++) {
        if (i > 0) store<u8>(p + o++, 0x2c);
        memory.copy(p + o, changetype<usize>(batch[i]), batch[i].byteLength);
        o += batch[i].byteLength;
      }
      store<u8>(p + o, 0x5d);
      this.body = body;
    }
    this.firstAttempt = now;
    this.retries = 0;
  }

  attempt(now: f64): void {
    const cfg = this.cfg;
    enterRoot(this);
    const status = httpCall(cfg.clusterBytes, cfg.callHeaders, this.body, cfg.timeout);
    if (status == 0) {
      this.token = httpCallToken;
      return;
    }
    this.failed(now, "could not call cluster '" + cfg.cluster + "' (proxy_http_call status " + decimal(status) + ")");
  }

  onHttpCallResponse(token: u32, headers: u32, body_size: u32, trailers: u32): void {
    if (token != this.token || token == 0) return;
    this.token = 0;
    const now = nowMs();
    const where = this.cfg.cluster + ":" + decimal(this.cfg.port);
    if (headers == 0) {
      const why = lastStatusMessage();
      this.failed(now, "failed request to " + where + ": " + (why.length > 0 ? why : "no response"));
    } else {
      const statusText = stream_context.headers.http_callback.get(":status");
      const status = I32.parseInt(statusText);
      if (status > 0 && status < 300) {
        this.succeeded(now);
      } else {
        const shown = body_size > MAX_BODY_IN_LOG ? MAX_BODY_IN_LOG : body_size;
        const body = shown > 0 ? String.UTF8.decode(get_buffer_bytes(BufferTypeValues.HttpCallResponseBody, 0, shown)) : "";
        this.failed(now, "request to " + where + " returned status code " + statusText + " and body " + body);
      }
    }
    this.pump(now);
    this.reschedule(now);
    this.doneIfFlushed();
  }

  succeeded(now: f64): void {
    this.batch = [];
    this.body = new ArrayBuffer(0);
    this.retries = 0;
    if (this.queueFull) {
      this.queueFull = false;
      log(LogLevelValues.info, "http-log: queue resumed processing (" + decimal(this.droppedWhileFull) + " entries were dropped while it was full)");
      this.droppedWhileFull = 0;
    }
    this.coalesceStart = now;
  }

  failed(now: f64, why: string): void {
    const q = this.cfg.queue;
    if (now - this.firstAttempt > q.maxRetryTime) {
      log(LogLevelValues.error, "http-log: could not send entries, giving up after " + decimal(this.retries) + " retries. " +
        decimal(this.batch.length) + " queue entries were lost (last error: " + why + ")");
      this.batch = [];
      this.body = new ArrayBuffer(0);
      this.coalesceStart = now;
      return;
    }
    log(LogLevelValues.warn, "http-log: handler could not process entries: " + why);
    const exp = this.retries < 60 ? this.retries : 60;
    // 2^exp exactly (exp <= 60), as Math.pow(2, exp) gives, without pow's code.
    const delay = Math.min(q.maxRetryDelay, q.initialRetryDelay * <f64>(<u64>1 << <u64>exp));
    this.retries++;
    this.retryAt = now + delay;
  }

  /** Keep the tick period to what the next deadline needs (0 when nothing waits). */
  reschedule(now: f64): void {
    let want: u32 = 0;
    // While a call is in flight its answer drives the queue; otherwise wake
    // for the retry or the end of the coalescing window (at least every second).
    if (this.token == 0 && (this.batch.length > 0 || this.queue.length > 0)) {
      const due = this.batch.length > 0
        ? this.retryAt - now
        : this.flushing ? 0 : this.coalesceStart + this.cfg.queue.maxCoalescingDelay - COALESCE_MIN_MS - now;
      want = <u32>Math.ceil(Math.max(1, Math.min(MAX_TICK_MS, due)));
    }
    if (want == 0 && this.cfg.eventHooks && pendingRecords() > 0) want = EVENT_HOOKS_RETRY_MS;
    if (want != this.tickMs) {
      enterRoot(this);
      setTickPeriod(want);
      this.tickMs = want;
    }
  }
}

// ---- streams ----

let theRoot: HttpLogRoot | null = null;
/** The stream whose on_log is running (0: none), and whether the effective context was switched to the root meanwhile. */
let logContext: u32 = 0;
let switchedToRoot = false;

/**
 * Make the root the effective context for what follows (an http call, the
 * tick period): a call made as a stream would be cancelled when the stream is
 * deleted. Only on_log runs as a stream, and most entries just join the queue,
 * so the switch happens only when needed.
 */
function enterRoot(root: HttpLogRoot): void {
  if (logContext == 0 || switchedToRoot) return;
  setEffectiveContext(root.context_id);
  switchedToRoot = true;
}

function onStreamLog(root: HttpLogRoot, contextId: u32): void {
  const cfg = root.cfg;
  const now = nowMillis();
  entryWriter.reset();
  writeEntry(entryWriter, cfg.customFields, now);
  const entry = entryWriter.toArrayBuffer();

  if (cfg.eventHooks) emitLogEvent(now);

  logContext = contextId;
  switchedToRoot = false;
  root.enqueue(entry, <f64>now);
  if (switchedToRoot) setEffectiveContext(contextId);
  logContext = 0;
  switchedToRoot = false;
}

// Each export is a collection safe point (sdk/gc): enter() ... leave().

export function proxy_on_context_create(context_id: u32, root_context_id: u32): void {
  if (root_context_id == 0) {
    enter();
    ensureRootContext(context_id);
    leave();
  }
}

export function proxy_on_done(context_id: u32): u32 {
  const root = theRoot;
  if (root === null || context_id != root.context_id) return 1;
  enter();
  const done = root.onDone();
  leave();
  return done ? 1 : 0;
}

export function proxy_on_log(context_id: u32): void {
  const root = theRoot;
  if (root === null || context_id == root.context_id) return;
  enter();
  onStreamLog(root, context_id);
  leave();
}

export function proxy_on_delete(context_id: u32): void {
  const root = theRoot;
  if (root === null || context_id != root.context_id) return;
  enter();
  root.onDelete();
  leave();
}

/** The seed's event: {consumer, ip, service, route}; entities as {id, name}/{id, username}, {} when unknown. */
function emitLogEvent(nowMs: i64): void {
  const id = identity;
  // Written straight into the event's writer: no nested objects to copy.
  const w = eventData.clear().writer;
  entity(w, K_CONSUMER, K_USERNAME, id.consumerId, id.consumerUsername);
  w.keyOf(key(K_IP));
  if (id.clientIp.ok) w.strBytes(id.clientIp.ptr, id.clientIp.len);
  else w.str("");
  entity(w, K_SERVICE, K_NAME, id.serviceId, id.serviceName);
  entity(w, K_ROUTE, K_NAME, id.routeId, id.routeName);
  const r = emitAt(EVENT_SOURCE, EVENT_NAME, eventData, nowMs);
  if (!r.ok) log(LogLevelValues.warn, "http-log: event hook not emitted: " + r.error);
}

/** `"key":{"id":…,"<nameKey>":…}` with the members that are known. */
function entity(w: JsonWriter, k: i32, nameKey: i32, id: Slice, name: Slice): void {
  w.keyOf(key(k));
  w.beginObject();
  if (id.ok) {
    w.keyOf(key(K_ID));
    w.strBytes(id.ptr, id.len);
  }
  if (name.ok) {
    w.keyOf(key(nameKey));
    w.strBytes(name.ptr, name.len);
  }
  w.endObject();
}

registerRootContext((context_id: u32) => {
  const root = new HttpLogRoot(context_id);
  theRoot = root;
  return root;
}, "http-log");
