/**
 * Helpers for the VM lifecycle tests: start the lifecycle fixtures, run "ops"
 * strings in them (see test/fixtures/assembly/_lifecycle-ops.ts) and read the
 * `R {json}` lines they log back.
 */
import { HeaderMap } from '../../../host/abi/header-map.js';
import { HostEmulator, type EmulatorOptions } from '../../../host/testing/emulator.js';
import { HttpContext } from '../../../host/vm/http-context.js';
import type { PluginLogRecord } from '../../../host/vm/logging.js';
import type { Plugin } from '../../../host/vm/plugin.js';
import { Runtime, type RuntimeEvent, type RuntimeOptions } from '../../../host/vm/runtime.js';
import { fixture } from '../../helpers/paths.js';

/** One report line from a fixture: op, status and string fields. */
export interface OpResult {
  op: string;
  status: number;
  [field: string]: string | number;
}

/** Every report in `records` (optionally only `op`), in order. */
export function results(records: readonly PluginLogRecord[], op?: string): OpResult[] {
  const out: OpResult[] = [];
  for (const r of records) {
    if (!r.message.startsWith('R {')) continue;
    const parsed = JSON.parse(r.message.slice(2)) as OpResult;
    if (op === undefined || parsed.op === op) out.push(parsed);
  }
  return out;
}

/** Reports of an emulator, optionally only `op`. */
export function reports(host: HostEmulator, op?: string): OpResult[] {
  return results(host.logRecords(), op);
}

/** The only report of `op` in `list` (fails loudly when there are none or several). */
export function only(list: OpResult[], op: string): OpResult {
  const hits = list.filter((r) => r.op === op);
  if (hits.length !== 1) throw new Error(`expected one ${op} report, got ${hits.length}: ${JSON.stringify(list)}`);
  return hits[0]!;
}

/** Start lifecycle-probe (the SDK fixture) with a phase → ops configuration. */
export function startProbe(config: Record<string, string> = {}, options: Partial<EmulatorOptions> = {}): Promise<HostEmulator> {
  return HostEmulator.start({ wasm: fixture('lifecycle-probe'), pluginConfig: config, ...options });
}

/**
 * Run `ops` in a fresh stream's on_request_headers (via the x-ops header) and
 * return the reports it produced, including deferred ones the emulator flushed.
 */
export function streamOps(host: HostEmulator, ops: string): OpResult[] {
  const before = host.logRecords().length;
  const id = host.initHttpContext();
  host.callOnRequestHeaders(id, { ':method': 'GET', ':path': '/', 'x-ops': ops }, true);
  host.completeHttpContext(id);
  return results(host.logRecords().slice(before)).filter((r) => r.op !== 'phase');
}

/** A Runtime whose logs and events are captured, with on_queue_ready posted to a list the test flushes. */
export function captureRuntime(options: RuntimeOptions = {}) {
  const logs: PluginLogRecord[] = [];
  const events: RuntimeEvent[] = [];
  const deferred: Array<() => void> = [];
  const runtime = new Runtime({
    logLevel: 'trace',
    onLog: (r) => logs.push(r),
    onEvent: (e) => events.push(e),
    defer: (fn) => deferred.push(fn),
    reloadBackoffMs: 0,
    ...options,
  });
  const flush = () => {
    while (deferred.length > 0) deferred.shift()!();
  };
  return { runtime, logs, events, deferred, flush };
}

/**
 * Drive one stream of `plugin` by hand (what the data plane does): create the
 * context, run on_request_headers with `ops` in x-ops, complete it. Returns the
 * context, or the failure policy's refusal.
 */
export function runStream(plugin: Plugin, ops = ''): HttpContext | 'skip' | 'reject' {
  const ctx = plugin.newHttpContext();
  if (typeof ctx === 'string') return ctx;
  ctx.requestHeaders = new HeaderMap([':method', 'GET', ':path', '/', ...(ops ? ['x-ops', ops] : [])]);
  ctx.onRequestHeaders(true);
  ctx.complete();
  return ctx;
}

/** Reports logged by `plugin` (by plugin name) since index `from`. */
export function pluginReports(logs: readonly PluginLogRecord[], plugin: string, from = 0): OpResult[] {
  return results(logs.slice(from).filter((r) => r.plugin === plugin)).filter((r) => r.op !== 'phase');
}
