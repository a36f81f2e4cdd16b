/**
 * The gateway's own metrics, kept as plain counters (a request pays a Map
 * update and a short bucket scan, no allocation), and the Prometheus text
 * exposition (format 0.0.4) of them plus the plugins' metrics.
 */
import { MetricType } from '../abi/constants.js';
import { HISTOGRAM_BUCKETS, type MetricSnapshot } from '../vm/metrics.js';
import type { BoundHits } from '../vm/limits.js';
import type { WasmTiming } from '../vm/runtime.js';

/** Request latency buckets, in seconds. */
export const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

export interface RouteLabels {
  readonly route: string;
  readonly service: string;
  readonly workspace: string;
}

/** Counters of one route (stable across reloads: keyed by its labels). */
export class RouteStats {
  readonly labels: string;
  /** Requests by final status. */
  readonly statuses = new Map<number, number>();
  /** Non-cumulative bucket counts; the last slot is +Inf. */
  readonly buckets = new Float64Array(LATENCY_BUCKETS.length + 1);
  sum = 0;
  count = 0;

  constructor(labels: RouteLabels) {
    this.labels = `route="${esc(labels.route)}",service="${esc(labels.service)}",workspace="${esc(labels.workspace)}"`;
  }

  observe(status: number, seconds: number): void {
    this.statuses.set(status, (this.statuses.get(status) ?? 0) + 1);
    let i = 0;
    while (i < LATENCY_BUCKETS.length && seconds > LATENCY_BUCKETS[i]!) i++;
    this.buckets[i]!++;
    this.sum += seconds;
    this.count++;
  }
}

export type UpstreamErrorKind = 'refused' | 'timeout' | 'reset' | 'error';

export interface GaugeValues {
  readonly inflight: number;
  readonly generation: number;
  readonly plugins: number;
}

function esc(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** A Prometheus metric name from a proxy-wasm one ("my.plugin/hits" -> "my_plugin_hits"). */
export function promName(name: string): string {
  let out = name.replace(/[^a-zA-Z0-9_:]/g, '_');
  if (!/^[a-zA-Z_:]/.test(out)) out = `_${out}`;
  // Our own families use the hookwire_ prefix; a plugin may not shadow them.
  if (out.startsWith('hookwire_')) out = `plugin_${out}`;
  return out;
}

export class GatewayMetrics {
  private readonly routes = new Map<string, RouteStats>();
  private readonly upstreamErrors = new Map<string, number>();
  private readonly traps = new Map<string, number>();
  private readonly vmRestarts = new Map<string, number>();
  private readonly deadlines = new Map<string, number>();
  /** Requests no route matched. */
  readonly unmatched = this.route({ route: '', service: '', workspace: '' });

  /** Stats of a route, created once and shared by every generation that has the route. */
  route(labels: RouteLabels): RouteStats {
    const stats = new RouteStats(labels);
    const existing = this.routes.get(stats.labels);
    if (existing) return existing;
    this.routes.set(stats.labels, stats);
    return stats;
  }

  upstreamError(service: string, kind: UpstreamErrorKind): void {
    bump(this.upstreamErrors, `service="${esc(service)}",kind="${kind}"`);
  }

  trap(plugin: string): void {
    bump(this.traps, `plugin="${esc(plugin)}"`);
  }

  /** A guest call of `plugin` was stopped at its deadline (it is also a trap). */
  deadlineExceeded(plugin: string): void {
    bump(this.deadlines, `plugin="${esc(plugin)}"`);
  }

  vmRestart(vmId: string, ok: boolean): void {
    bump(this.vmRestarts, `vm_id="${esc(vmId)}",result="${ok ? 'ok' : 'failed'}"`);
  }

  /**
   * Prometheus text: the gateway's families, the guest call timing (only when
   * the runtime measures it), then the plugins' metrics.
   */
  render(
    gauges: GaugeValues,
    plugins: readonly MetricSnapshot[],
    wasm: ReadonlyMap<string, WasmTiming> | null = null,
    bounds: BoundHits | null = null,
  ): string {
    const out: string[] = [];
    out.push('# HELP hookwire_http_requests_total Requests answered, by route and final status.');
    out.push('# TYPE hookwire_http_requests_total counter');
    for (const r of this.routes.values()) {
      for (const [status, n] of r.statuses) out.push(`hookwire_http_requests_total{${r.labels},status="${status}"} ${n}`);
    }
    out.push('# HELP hookwire_http_request_duration_seconds Time from request start to the end of the response.');
    out.push('# TYPE hookwire_http_request_duration_seconds histogram');
    for (const r of this.routes.values()) {
      if (r.count === 0) continue;
      let cumulative = 0;
      for (let i = 0; i < LATENCY_BUCKETS.length; i++) {
        cumulative += r.buckets[i]!;
        out.push(`hookwire_http_request_duration_seconds_bucket{${r.labels},le="${LATENCY_BUCKETS[i]}"} ${cumulative}`);
      }
      out.push(`hookwire_http_request_duration_seconds_bucket{${r.labels},le="+Inf"} ${r.count}`);
      out.push(`hookwire_http_request_duration_seconds_sum{${r.labels}} ${r.sum}`);
      out.push(`hookwire_http_request_duration_seconds_count{${r.labels}} ${r.count}`);
    }
    family(out, 'hookwire_upstream_errors_total', 'counter', 'Upstream failures (refused, timeout, reset, error), by service.', this.upstreamErrors);
    family(out, 'hookwire_filter_traps_total', 'counter', 'Filter callbacks that trapped, by plugin.', this.traps);
    family(out, 'hookwire_wasm_deadline_exceeded_total', 'counter', 'Guest calls stopped at their deadline (wasm.call_deadline_ms...), by plugin.', this.deadlines);
    family(out, 'hookwire_vm_restarts_total', 'counter', 'VM reloads after a trap (failure_policy reload), by result.', this.vmRestarts);
    gauge(out, 'hookwire_inflight_requests', 'Requests being served now.', gauges.inflight);
    gauge(out, 'hookwire_config_generation', 'Configuration generation serving new requests.', gauges.generation);
    gauge(out, 'hookwire_plugins_loaded', 'Plugin instances loaded in the serving generation.', gauges.plugins);
    if (wasm !== null) {
      const seconds = new Map<string, number>();
      const calls = new Map<string, number>();
      for (const [plugin, t] of wasm) {
        seconds.set(`plugin="${esc(plugin)}"`, t.ns / 1e9);
        calls.set(`plugin="${esc(plugin)}"`, t.calls);
      }
      family(out, 'hookwire_wasm_call_seconds_total', 'counter', 'Wall time in top-level guest calls (host calls they make included), by plugin (HOOKWIRE_MEASURE_WASM=1).', seconds);
      family(out, 'hookwire_wasm_calls_total', 'counter', 'Top-level guest calls, by plugin (HOOKWIRE_MEASURE_WASM=1).', calls);
    }
    if (bounds !== null) {
      const hits = new Map<string, number>();
      for (const [vmId, bound, n] of bounds.entries()) hits.set(`vm_id="${esc(vmId)}",bound="${bound}"`, n);
      family(out, 'hookwire_wasm_bound_hits_total', 'counter', 'Guest host calls refused by a guest bound (docs/data-plane.md), by vm_id and bound.', hits);
    }
    renderPluginMetrics(out, plugins);
    out.push('');
    return out.join('\n');
  }
}

function bump(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

function family(out: string[], name: string, type: string, help: string, values: Map<string, number>): void {
  out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
  for (const [labels, n] of values) out.push(`${name}{${labels}} ${n}`);
}

function gauge(out: string[], name: string, help: string, value: number): void {
  out.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`, `${name} ${value}`);
}

function renderPluginMetrics(out: string[], metrics: readonly MetricSnapshot[]): void {
  const seen = new Set<string>();
  for (const m of metrics) {
    const name = promName(m.name);
    if (seen.has(name)) continue; // two proxy-wasm names that sanitize alike: keep the first
    seen.add(name);
    const help = `proxy-wasm metric ${JSON.stringify(m.name)}`.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
    if (m.type === MetricType.HISTOGRAM) {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} histogram`);
      const buckets = m.buckets ?? [];
      // The registry's buckets are already cumulative (a value counts in every bucket >= it).
      for (let i = 0; i < HISTOGRAM_BUCKETS.length; i++) out.push(`${name}_bucket{le="${HISTOGRAM_BUCKETS[i]}"} ${buckets[i] ?? 0n}`);
      out.push(`${name}_bucket{le="+Inf"} ${m.value}`, `${name}_sum ${m.sum ?? 0n}`, `${name}_count ${m.value}`);
    } else {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${m.type === MetricType.COUNTER ? 'counter' : 'gauge'}`, `${name} ${m.value}`);
    }
  }
}
