// The overview's arithmetic on /metrics: Prometheus text parsing, counter rates and histogram quantiles between two scrapes.
import { describe, expect, it } from 'vitest';
import { bucketsBy, exactQuantile, parseMetrics, quantile, rates, sumBy } from '../../ui/src/metrics.js';

const before = `# HELP hookwire_http_requests_total Requests answered, by route and final status.
# TYPE hookwire_http_requests_total counter
hookwire_http_requests_total{route="shop",service="s",workspace="default",status="200"} 10
hookwire_http_requests_total{route="shop",service="s",workspace="default",status="500"} 2
hookwire_http_requests_total{route="a\\"b",service="s",workspace="team",status="200"} 1
hookwire_http_request_duration_seconds_bucket{route="shop",service="s",workspace="default",le="0.01"} 5
hookwire_http_request_duration_seconds_bucket{route="shop",service="s",workspace="default",le="0.1"} 10
hookwire_http_request_duration_seconds_bucket{route="shop",service="s",workspace="default",le="1"} 12
hookwire_http_request_duration_seconds_bucket{route="shop",service="s",workspace="default",le="+Inf"} 12
hookwire_inflight_requests 0
`;

// 100 more requests: 50 under 10 ms, 40 in (10 ms, 100 ms], 10 in (100 ms, 1 s].
const after = before
  .replace('status="200"} 10', 'status="200"} 108')
  .replace('status="500"} 2', 'status="500"} 4')
  .replace('le="0.01"} 5', 'le="0.01"} 55')
  .replace('le="0.1"} 10', 'le="0.1"} 100')
  .replace('le="1"} 12', 'le="1"} 112')
  .replace('le="+Inf"} 12', 'le="+Inf"} 112');

const route = (l: Readonly<Record<string, string>>) => `${l.workspace}/${l.route}`;

describe('overview metrics', () => {
  it('parses samples with labels, escaped quotes included, and skips comments', () => {
    const s = parseMetrics(before);
    expect(s).toHaveLength(8);
    expect(s[2]).toEqual({ name: 'hookwire_http_requests_total', labels: { route: 'a"b', service: 's', workspace: 'team', status: '200' }, value: 1 });
    expect(s.at(-1)).toEqual({ name: 'hookwire_inflight_requests', labels: {}, value: 0 });
  });

  it('computes per-route request rates over the interval (statuses summed)', () => {
    const r = rates(sumBy(parseMetrics(before), 'hookwire_http_requests_total', route), sumBy(parseMetrics(after), 'hookwire_http_requests_total', route), 10);
    expect(r.get('default/shop')).toBe(10);
    expect(r.get('team/a"b')).toBe(0);
  });

  it('counts a counter reset from zero', () => {
    expect(rates(new Map([['x', 50]]), new Map([['x', 5]]), 5).get('x')).toBe(1);
  });

  it('interpolates p50 and p99 inside the buckets of the interval only', () => {
    const b0 = bucketsBy(parseMetrics(before), 'hookwire_http_request_duration_seconds', route).get('default/shop');
    const b1 = bucketsBy(parseMetrics(after), 'hookwire_http_request_duration_seconds', route).get('default/shop')!;
    // rank 50 of 100: the last of the 50 in the first bucket → its upper bound.
    expect(quantile(0.5, b0, b1)).toBeCloseTo(0.01, 10);
    // rank 99: 9th of the 10 in (0.1, 1] → 0.1 + 0.9 * 0.9.
    expect(quantile(0.99, b0, b1)).toBeCloseTo(0.91, 10);
    // Nothing observed in between: no value, not zero.
    expect(quantile(0.5, b1, b1)).toBeNull();
  });

  it('takes the nearest-rank quantile of measured durations', () => {
    const values = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(exactQuantile(values, 0.5)).toBe(50);
    expect(exactQuantile(values, 0.99)).toBe(99);
    expect(exactQuantile([7], 0.99)).toBe(7);
    expect(exactQuantile([], 0.5)).toBeNull();
  });
});
