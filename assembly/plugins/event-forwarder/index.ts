// event-forwarder: the Envoy side of hookwire's event hooks. Run it as a
// singleton Wasm service (bootstrap_extensions, envoy.bootstrap.wasm,
// singleton: true) with vm_id "hookwire_event_hooks". It registers the shared
// queue "event_hooks" that plugins using assembly/event-hooks enqueue records
// on, and ships the records to hookwire's ingest endpoint as JSON arrays with
// proxy_http_call. (hookwire's own host consumes the queue natively and does
// not need this.)
//
// Configuration (JSON; every key optional):
//   {"cluster": "hookwire_ingest", "authority": "hookwire", "path": "/event-hooks/ingest",
//    "token": "...", "max_batch_size": 100, "flush_interval_ms": 1000,
//    "max_buffered": 10000, "timeout_ms": 5000, "max_retry_delay_ms": 60000}
//
// Delivery: one request in flight; a batch is sent when max_batch_size records
// are buffered, or at the next tick (every flush_interval_ms). A failed call or
// a non-2xx answer is retried, same records in the same order, after
// flush_interval_ms·2^(n-1) (capped by max_retry_delay_ms): nothing is lost
// or reordered unless the buffer overflows, when the oldest records are dropped
// and counted in an error log. Publish records are kept apart (the latest per
// plugin/source/event), put at the head of the next batch, and sent again
// after any failure, so ingest always knows a source before its events.
export {
  malloc,
  proxy_abi_version_0_2_1,
  proxy_on_vm_start,
  proxy_validate_configuration,
  proxy_on_configure,
  proxy_on_tick,
  proxy_on_queue_ready,
  proxy_on_http_call_response,
  proxy_on_context_create,
  proxy_on_request_headers,
  proxy_on_response_headers,
  proxy_on_log,
  proxy_on_done,
  proxy_on_delete,
} from "../../sdk";
import {
  decimal,
  BufferTypeValues,
  Context,
  get_buffer_bytes,
  log,
  LogLevelValues,
  registerRootContext,
  RootContext,
  stream_context,
} from "../../sdk";
import { JSON } from "assemblyscript-json/assembly";
import { DEFAULT_VM_ID, isJsonObject, jsonError, parseJson, QUEUE_NAME } from "../../event-hooks";
import { ConfigChecker } from "../../event-hooks/config";
import {
  dequeue,
  dequeueStatus,
  getProperty,
  httpCall,
  httpCallToken,
  lastStatusMessage,
  nowMillis,
  propertyPath,
  queueId,
  registerQueue,
  rootDone,
  serializePairs,
  setTickPeriod,
} from "../../event-hooks/host";
import { ByteQueue } from "../../event-hooks/queue";

const FIELDS = ["cluster", "authority", "path", "token", "max_batch_size", "flush_interval_ms", "max_buffered", "timeout_ms", "max_retry_delay_ms"];
const MAX_BODY_IN_LOG: u32 = 256;
const EMIT_PREFIX = String.UTF8.encode("{\"v\":1,\"type\":\"emit\",");
const PUBLISH_PREFIX = String.UTF8.encode("{\"v\":1,\"type\":\"publish\",");

class ForwarderConfig {
  cluster: string = "hookwire_ingest";
  authority: string = "hookwire";
  path: string = "/event-hooks/ingest";
  token: string = "";
  maxBatchSize: i32 = 100;
  flushIntervalMs: i32 = 1000;
  maxBuffered: i32 = 10000;
  timeoutMs: i32 = 5000;
  maxRetryDelayMs: f64 = 60000;
  headers: ArrayBuffer = new ArrayBuffer(0);
  clusterBytes: ArrayBuffer = new ArrayBuffer(0);
}

/** The latest publish record of one (plugin, source, event). */
class Publish {
  constructor(public key: string, public record: ArrayBuffer) {}
  sent: bool = false;
}

function parseConfig(text: ArrayBuffer, errors: string[]): ForwarderConfig | null {
  const parsed = text.byteLength == 0 ? JSON.Value.Object() : parseJson(text);
  if (parsed === null) {
    errors.push("event-forwarder: the configuration is not valid JSON: " + jsonError);
    return null;
  }
  if (!parsed.isObj) {
    errors.push("event-forwarder: the configuration must be a JSON object");
    return null;
  }
  const obj = <JSON.Obj>parsed;
  const c = new ConfigChecker("event-forwarder");
  const unknown = c.unknownKeys(obj, FIELDS);
  for (let i = 0; i < unknown.length; i++) c.fail(unknown[i], "is not a known field", null);
  const cfg = new ForwarderConfig();
  cfg.cluster = c.str(obj, "cluster", "cluster", cfg.cluster);
  if (cfg.cluster.length == 0) c.fail("cluster", "must not be empty", obj.get("cluster"));
  cfg.authority = c.str(obj, "authority", "authority", cfg.authority);
  if (cfg.authority.length == 0) c.fail("authority", "must not be empty", obj.get("authority"));
  cfg.path = c.str(obj, "path", "path", cfg.path);
  if (!cfg.path.startsWith("/")) c.fail("path", "must start with /", obj.get("path"));
  cfg.token = c.str(obj, "token", "token", "");
  cfg.maxBatchSize = <i32>c.integer(obj, "max_batch_size", "max_batch_size", 1, 100000, 100);
  cfg.flushIntervalMs = <i32>c.integer(obj, "flush_interval_ms", "flush_interval_ms", 1, 3600000, 1000);
  cfg.maxBuffered = <i32>c.integer(obj, "max_buffered", "max_buffered", 1, 10000000, 10000);
  cfg.timeoutMs = <i32>c.integer(obj, "timeout_ms", "timeout_ms", 1, 2147483647, 5000);
  cfg.maxRetryDelayMs = <f64>c.integer(obj, "max_retry_delay_ms", "max_retry_delay_ms", 1, 86400000, 60000);
  for (let i = 0; i < c.errors.length; i++) errors.push(c.errors[i]);
  if (c.errors.length > 0) return null;
  const flat = [":method", "POST", ":path", cfg.path, ":authority", cfg.authority, "content-type", "application/json"];
  if (cfg.token.length > 0) {
    flat.push("authorization");
    flat.push("Bearer " + cfg.token);
  }
  cfg.headers = serializePairs(flat);
  cfg.clusterBytes = String.UTF8.encode(cfg.cluster);
  return cfg;
}

function startsWith(b: ArrayBuffer, prefix: ArrayBuffer): bool {
  return b.byteLength >= prefix.byteLength && memory.compare(changetype<usize>(b), changetype<usize>(prefix), prefix.byteLength) == 0;
}

class ForwarderRoot extends RootContext {
  cfg: ForwarderConfig = new ForwarderConfig();
  configured: bool = false;
  queue: u32 = 0;
  /** Emit (and other non-publish) records waiting, oldest first. */
  buffer: ByteQueue = new ByteQueue();
  publishes: Publish[] = [];

  /** Records of the batch in flight or waiting for its retry. */
  inflight: ArrayBuffer[] = [];
  /** Publish records (exact buffers) included in the last attempt. */
  inflightPublishes: ArrayBuffer[] = [];
  hasBatch: bool = false;
  token: u32 = 0;
  failures: i32 = 0;
  retryAt: f64 = 0;
  dropped: i64 = 0;
  /** Unloading: send everything held (partial batches too), then proxy_done. */
  flushing: bool = false;

  createContext(context_id: u32): Context {
    return new Context(context_id, this);
  }

  onConfigure(configuration_size: u32): bool {
    const text = configuration_size == 0 ? new ArrayBuffer(0) : get_buffer_bytes(BufferTypeValues.PluginConfiguration, 0, configuration_size);
    const errors = new Array<string>();
    const cfg = parseConfig(text, errors);
    if (cfg === null) {
      for (let i = 0; i < errors.length; i++) log(LogLevelValues.error, errors[i]);
      return false;
    }
    this.cfg = cfg;
    if (cfg.token.length == 0) log(LogLevelValues.warn, "event-forwarder: no token configured; batches are sent without an authorization header");
    const vm = getProperty(propertyPath("plugin_vm_id"));
    if (vm !== null && String.UTF8.decode(vm) != DEFAULT_VM_ID) {
      log(LogLevelValues.warn, "event-forwarder: this VM's vm_id is '" + String.UTF8.decode(vm) + "', not '" + DEFAULT_VM_ID +
        "'; plugins must set event_hooks_vm_id to it");
    }
    if (registerQueue(String.UTF8.encode(QUEUE_NAME)) != 0) {
      log(LogLevelValues.error, "event-forwarder: could not register the shared queue '" + QUEUE_NAME + "'");
      return false;
    }
    this.queue = queueId;
    this.configured = true;
    setTickPeriod(<u32>cfg.flushIntervalMs);
    // A re-registration keeps what was already queued.
    this.drain();
    this.maybeSend(<f64>nowMillis(), false);
    return true;
  }

  onQueueReady(token: u32): void {
    if (!this.configured || token != this.queue) return;
    this.drain();
    this.maybeSend(<f64>nowMillis(), false);
  }

  onTick(): void {
    if (!this.configured) return;
    this.drain();
    this.maybeSend(<f64>nowMillis(), true);
    this.doneIfFlushed();
  }

  /**
   * The host unloads this plugin (reload, shutdown). Records it holds would
   * be lost with the VM: send them all (retries as usual) and stay alive
   * until the last batch is answered, then call proxy_done. The host bounds
   * the wait.
   */
  onDone(): bool {
    if (!this.configured) return true;
    this.flushing = true;
    this.drain();
    this.maybeSend(<f64>nowMillis(), true);
    if (this.idle()) return true;
    log(LogLevelValues.info, "event-forwarder: unloading; sending " + decimal(this.buffer.length + this.inflight.length) + " held record(s) first");
    return false;
  }

  idle(): bool {
    return this.token == 0 && !this.hasBatch && this.buffer.length == 0 && this.unsentPublishes() == 0;
  }

  doneIfFlushed(): void {
    if (!this.flushing || !this.idle()) return;
    this.flushing = false;
    rootDone();
  }

  /** Move everything queued into the buffer (bounded; the oldest records go first). */
  drain(): void {
    let dropped = 0;
    let invalid = 0;
    while (true) {
      const item = dequeue(this.queue);
      if (item === null) {
        if (dequeueStatus != 7 && dequeueStatus != 0) log(LogLevelValues.error, "event-forwarder: dequeue failed with status " + decimal(dequeueStatus));
        break;
      }
      if (!isJsonObject(changetype<usize>(item), item.byteLength)) {
        invalid++;
        log(LogLevelValues.error, "event-forwarder: dropped a record that is not a JSON object (" + jsonError + ")");
        continue;
      }
      if (this.isPublish(item)) {
        this.keepPublish(item);
        continue;
      }
      this.buffer.push(item);
      if (this.buffer.length > this.cfg.maxBuffered) {
        this.buffer.shift();
        dropped++;
      }
    }
    if (dropped > 0) {
      this.dropped += dropped;
      log(LogLevelValues.error, "event-forwarder: buffer full (max_buffered " + decimal(this.cfg.maxBuffered) + "): dropped the " + decimal(dropped) +
        " oldest record(s), " + decimal(this.dropped) + " lost in total");
    }
  }

  isPublish(item: ArrayBuffer): bool {
    if (startsWith(item, EMIT_PREFIX)) return false;
    if (startsWith(item, PUBLISH_PREFIX)) return true;
    // Not the library's canonical layout: look at "type".
    const v = parseJson(item);
    if (v === null || !v.isObj) return false;
    const t = (<JSON.Obj>v).getString("type");
    return t !== null && t.valueOf() == "publish";
  }

  keepPublish(item: ArrayBuffer): void {
    const v = parseJson(item);
    let key = "";
    if (v !== null && v.isObj) {
      const o = <JSON.Obj>v;
      const plugin = o.getString("plugin");
      const source = o.getString("source");
      const event = o.getString("event");
      key = (plugin !== null ? plugin.valueOf() : "") + "\0" + (source !== null ? source.valueOf() : "") + "\0" + (event !== null ? event.valueOf() : "");
    }
    for (let i = 0; i < this.publishes.length; i++) {
      if (this.publishes[i].key == key) {
        this.publishes[i].record = item;
        this.publishes[i].sent = false;
        return;
      }
    }
    this.publishes.push(new Publish(key, item));
  }

  unsentPublishes(): i32 {
    let n = 0;
    for (let i = 0; i < this.publishes.length; i++) if (!this.publishes[i].sent) n++;
    return n;
  }

  /** Send when due: a full batch right away; anything (or a retry) on a tick. */
  maybeSend(now: f64, onTick: bool): void {
    if (this.token != 0) return;
    if (this.hasBatch) {
      if (now >= this.retryAt) this.attempt();
      return;
    }
    const waiting = this.buffer.length + this.unsentPublishes();
    if (waiting == 0) return;
    if (!onTick && waiting < this.cfg.maxBatchSize) return;
    // A new batch: emits after the publishes.
    const room = this.cfg.maxBatchSize - this.unsentPublishes();
    const n = room > 0 ? min(room, this.buffer.length) : 0;
    const batch = new Array<ArrayBuffer>(n);
    for (let i = 0; i < n; i++) batch[i] = this.buffer.shift();
    this.inflight = batch;
    this.hasBatch = true;
    this.attempt();
  }

  attempt(): void {
    // Body: [unsent publishes..., batch records...]
    const pubs = new Array<ArrayBuffer>();
    for (let i = 0; i < this.publishes.length; i++) if (!this.publishes[i].sent) pubs.push(this.publishes[i].record);
    this.inflightPublishes = pubs;
    let size = 2;
    for (let i = 0; i < pubs.length; i++) size += pubs[i].byteLength + 1;
    for (let i = 0; i < this.inflight.length; i++) size += this.inflight[i].byteLength + 1;
    const body = new ArrayBuffer(size);
    const p = changetype<usize>(body);
    let o: usize = 0;
    store<u8>(p + o++, 0x5b);
    let first = true;
    for (let i = 0; i < pubs.length + this.inflight.length; i++) {
      const r = i < pubs.length ? pubs[i] : this.inflight[i - pubs.length];
      if (!first) store<u8>(p + o++, 0x2c);
      first = false;
      memory.copy(p + o, changetype<usize>(r), r.byteLength);
      o += r.byteLength;
    }
    store<u8>(p + o++, 0x5d);
    const bodyExact = o == <usize>size ? body : body.slice(0, <i32>o);
    const status = httpCall(this.cfg.clusterBytes, this.cfg.headers, bodyExact, <u32>this.cfg.timeoutMs);
    if (status == 0) {
      this.token = httpCallToken;
      return;
    }
    this.failed(<f64>nowMillis(), "proxy_http_call to cluster '" + this.cfg.cluster + "' refused with status " + decimal(status));
  }

  onHttpCallResponse(token: u32, headers: u32, body_size: u32, trailers: u32): void {
    if (token == 0 || token != this.token) return;
    this.token = 0;
    const now = <f64>nowMillis();
    if (headers == 0) {
      const why = lastStatusMessage();
      this.failed(now, "no response from cluster '" + this.cfg.cluster + "'" + (why.length > 0 ? ": " + why : ""));
    } else {
      const statusText = stream_context.headers.http_callback.get(":status");
      const status = I32.parseInt(statusText);
      if (status >= 200 && status < 300) {
        this.succeeded();
      } else {
        const shown = body_size > MAX_BODY_IN_LOG ? MAX_BODY_IN_LOG : body_size;
        const body = shown > 0 ? String.UTF8.decode(get_buffer_bytes(BufferTypeValues.HttpCallResponseBody, 0, shown)) : "";
        this.failed(now, "cluster '" + this.cfg.cluster + "' answered " + statusText + (body.length > 0 ? ": " + body : ""));
      }
    }
    this.drain();
    this.maybeSend(now, this.flushing);
    this.doneIfFlushed();
  }

  succeeded(): void {
    // Publishes replaced while in flight stay unsent (their buffer differs).
    for (let i = 0; i < this.publishes.length; i++) {
      const p = this.publishes[i];
      if (!p.sent && this.inflightPublishes.includes(p.record)) p.sent = true;
    }
    if (this.failures > 0) log(LogLevelValues.info, "event-forwarder: delivery resumed after " + decimal(this.failures) + " failed attempt(s)");
    this.failures = 0;
    this.inflight = [];
    this.inflightPublishes = [];
    this.hasBatch = false;
  }

  failed(now: f64, why: string): void {
    // Ingest may have lost what it knew: publish again, ahead of the retried records.
    for (let i = 0; i < this.publishes.length; i++) this.publishes[i].sent = false;
    this.failures++;
    const exp = this.failures - 1 < 30 ? this.failures - 1 : 30;
    const delay = Math.min(this.cfg.maxRetryDelayMs, <f64>this.cfg.flushIntervalMs * Math.pow(2, <f64>exp));
    this.retryAt = now + delay;
    log(LogLevelValues.warn, "event-forwarder: delivery failed (" + why + "); retrying " + decimal(this.inflight.length + this.inflightPublishes.length) +
      " record(s) in " + decimal(<i64>delay) + " ms");
  }
}

registerRootContext((context_id: u32) => new ForwarderRoot(context_id), "event-forwarder");
