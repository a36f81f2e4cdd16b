/**
 * Example event-hook transform (handler `wasm`): a `crud` event becomes a
 * Slack incoming-webhook message (`{"text": "services example create"}`);
 * events about `consumers` are dropped.
 *
 * The contract (docs/event-hooks.md "Handler wasm"): export
 * `transform(event: string): string`. `event` is the JSON the `webhook`
 * handler would POST (the event's data plus `event` and `source`). Return
 * either the request to send, as JSON
 *   {"method": "POST", "headers": {"…": "…"}, "body": "…"}
 * (every field optional; `url` only when the hook sets `allow_url`), or
 *   {"drop": true, "reason": "…"}
 * to record the delivery as `dropped` and send nothing.
 *
 * Built by `npm run build` to dist/transforms/slack.wasm with
 * assembly/transforms/asconfig.json (incremental runtime, --exportRuntime).
 */
import { JSON } from "assemblyscript-json/assembly";

/** Events about this entity type are not sent. */
const DROPPED_ENTITY = "consumers";

function field(obj: JSON.Obj, key: string): string {
  const v = obj.getString(key);
  return v === null ? "" : v.valueOf();
}

export function transform(event: string): string {
  const parsed = JSON.parse(event);
  if (!parsed.isObj) return drop("event is not a JSON object");
  const obj = changetype<JSON.Obj>(parsed);
  // A crud event: {"operation": "create", "schema": "services", "entity": {row}, "event": …, "source": "crud"}.
  const schema = field(obj, "schema");
  if (schema == DROPPED_ENTITY) return drop(schema + " events are not sent to Slack");

  const operation = field(obj, "operation");
  let name = "";
  const row = obj.getObj("entity");
  if (row !== null) {
    name = field(row, "name");
    if (name.length == 0) name = field(row, "id");
  }
  const text = schema + " " + (name.length > 0 ? name + " " : "") + operation;

  const message = new JSON.Obj();
  message.set("text", text);
  const out = new JSON.Obj();
  out.set("method", "POST");
  const headers = new JSON.Obj();
  headers.set("content-type", "application/json");
  headers.set("x-hookwire-transform", "slack");
  out.set("headers", headers);
  out.set("body", message.stringify());
  return out.stringify();
}

function drop(reason: string): string {
  const out = new JSON.Obj();
  out.set("drop", true);
  out.set("reason", reason);
  return out.stringify();
}
