/** The whole node's /metrics and /status from the workers' own (host/cli/node-report.ts), and the --workers value. */
import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { mergeMetrics, mergeStatus, type WorkerReport } from '../../host/cli/node-report.js';
import { parseWorkers, workerCount } from '../../host/cli/workers.js';
import type { GatewayStatus } from '../../host/proxy/gateway.js';

const worker1 = `# HELP hookwire_http_requests_total Requests answered, by route and final status.
# TYPE hookwire_http_requests_total counter
hookwire_http_requests_total{route="a",service="s",workspace="default",status="200"} 3
# HELP hookwire_http_request_duration_seconds Time from request start to the end of the response.
# TYPE hookwire_http_request_duration_seconds histogram
hookwire_http_request_duration_seconds_bucket{route="a",service="s",workspace="default",le="0.001"} 1
hookwire_http_request_duration_seconds_bucket{route="a",service="s",workspace="default",le="+Inf"} 3
hookwire_http_request_duration_seconds_sum{route="a",service="s",workspace="default"} 0.5
hookwire_http_request_duration_seconds_count{route="a",service="s",workspace="default"} 3
# HELP hookwire_inflight_requests Requests being served now.
# TYPE hookwire_inflight_requests gauge
hookwire_inflight_requests 2
# HELP hookwire_event_hooks_pending Pending deliveries.
# TYPE hookwire_event_hooks_pending gauge
hookwire_event_hooks_pending{kind="x"} 7
`;
const worker2 = `# HELP hookwire_http_requests_total Requests answered, by route and final status.
# TYPE hookwire_http_requests_total counter
hookwire_http_requests_total{route="a",service="s",workspace="default",status="200"} 4
hookwire_http_requests_total{route="b",service="s",workspace="default",status="404"} 1
# HELP hookwire_http_request_duration_seconds Time from request start to the end of the response.
# TYPE hookwire_http_request_duration_seconds histogram
hookwire_http_request_duration_seconds_bucket{route="a",service="s",workspace="default",le="0.001"} 2
hookwire_http_request_duration_seconds_bucket{route="a",service="s",workspace="default",le="+Inf"} 4
hookwire_http_request_duration_seconds_sum{route="a",service="s",workspace="default"} 0.25
hookwire_http_request_duration_seconds_count{route="a",service="s",workspace="default"} 4
# HELP hookwire_inflight_requests Requests being served now.
# TYPE hookwire_inflight_requests gauge
hookwire_inflight_requests 1
# HELP filter_requests proxy-wasm metric "filter.requests"
# TYPE filter_requests counter
filter_requests 9
`;

describe('mergeMetrics', () => {
  const text = mergeMetrics([
    { worker: 1, metrics: worker1 },
    { worker: 2, metrics: worker2 },
  ]);

  it('sums counters and histogram series of the same labels; keeps series only one worker has', () => {
    expect(text).toContain('hookwire_http_requests_total{route="a",service="s",workspace="default",status="200"} 7\n');
    expect(text).toContain('hookwire_http_requests_total{route="b",service="s",workspace="default",status="404"} 1\n');
    expect(text).toContain('hookwire_http_request_duration_seconds_bucket{route="a",service="s",workspace="default",le="0.001"} 3\n');
    expect(text).toContain('hookwire_http_request_duration_seconds_bucket{route="a",service="s",workspace="default",le="+Inf"} 7\n');
    expect(text).toContain('hookwire_http_request_duration_seconds_sum{route="a",service="s",workspace="default"} 0.75\n');
    expect(text).toContain('hookwire_http_request_duration_seconds_count{route="a",service="s",workspace="default"} 7\n');
    expect(text).toContain('filter_requests 9\n');
  });

  it('labels gauges by worker instead of adding them', () => {
    expect(text).toContain('hookwire_inflight_requests{worker="1"} 2\n');
    expect(text).toContain('hookwire_inflight_requests{worker="2"} 1\n');
    expect(text).toContain('hookwire_event_hooks_pending{worker="1",kind="x"} 7\n');
    expect(text).toMatch(/^hookwire_workers 2$/m);
  });

  it('gives each family its HELP and TYPE once, before its samples', () => {
    for (const name of ['hookwire_http_requests_total', 'hookwire_http_request_duration_seconds', 'hookwire_inflight_requests', 'filter_requests']) {
      expect(text.match(new RegExp(`^# TYPE ${name} `, 'gm'))).toHaveLength(1);
      expect(text.match(new RegExp(`^# HELP ${name} `, 'gm'))).toHaveLength(1);
      const type = text.indexOf(`# TYPE ${name} `);
      const first = text.search(new RegExp(`^${name}[{ _]`, 'm'));
      expect(type).toBeLessThan(first);
    }
    expect(text).toContain('# TYPE hookwire_http_request_duration_seconds histogram\n');
  });
});

describe('mergeStatus', () => {
  const status = (inflight: number): GatewayStatus => ({
    generation: 2,
    started_at: '2026-01-01T00:00:00.000Z',
    config_source: 'f.yaml',
    draining: false,
    inflight,
    listeners: { proxy: [] },
    routes: 1,
    services: 1,
    plugins: [{ name: 'p', vm_id: 'p', root_id: 'p', failure_policy: 'fail_closed', healthy: true, failure: null, reloads: 0 }] as unknown as GatewayStatus['plugins'],
  });
  it('sums inflight and lists every worker', () => {
    const reports: WorkerReport[] = [
      { worker: 1, pid: 11, metrics: '', status: status(2) },
      { worker: 2, pid: 12, metrics: '', status: status(3) },
    ];
    const merged = mergeStatus({ ...status(2), routes: 5 }, reports, 3) as { inflight: number; routes: number; workers: { configured: number; running: number; list: { worker: number; pid: number; role: string; inflight: number; plugins_healthy: number }[] } };
    expect(merged.inflight).toBe(5);
    expect(merged.routes).toBe(5);
    expect(merged.workers.configured).toBe(3);
    expect(merged.workers.running).toBe(2);
    expect(merged.workers.list.map((w) => [w.worker, w.pid, w.role, w.inflight, w.plugins_healthy])).toEqual([
      [1, 11, 'control', 2, 1],
      [2, 12, 'data', 3, 1],
    ]);
  });
});

describe('--workers values', () => {
  it('accepts 1..1024 and auto (one per core), names what was wrong otherwise', () => {
    expect(parseWorkers('2')).toBe(2);
    expect(parseWorkers('auto')).toBe('auto');
    expect(workerCount('auto')).toBe(availableParallelism());
    expect(workerCount(3)).toBe(3);
    for (const bad of ['0', '-1', '1.5', '1025', 'two', '']) expect(parseWorkers(bad)).toMatch(/^--workers needs a number of processes from 1 to 1024, or auto/);
  });
});
