/**
 * Metrics plugins define through proxy_define_metric. One registry per
 * runtime (like Envoy's stats store): defining the same name and type again
 * returns the same id, so several VMs and reloads add to one series.
 * Semantics follow Envoy: counters only grow, gauges move both ways,
 * histograms only record.
 */
import { MetricType, Status } from '../abi/constants.js';
import { BoundHits, GUEST_LIMITS } from './limits.js';

/** Histogram bucket upper bounds (inclusive), in the unit the plugin records. */
export const HISTOGRAM_BUCKETS = [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000] as const;

export interface MetricSnapshot {
  readonly id: number;
  readonly name: string;
  readonly type: MetricType;
  /** Counter/gauge value; for histograms, the count of recorded values. */
  readonly value: bigint;
  readonly sum?: bigint;
  readonly buckets?: readonly bigint[];
}

interface Metric {
  id: number;
  name: string;
  type: MetricType;
  value: bigint;
  sum: bigint;
  buckets: bigint[] | null;
}

export class MetricsRegistry {
  private readonly byId = new Map<number, Metric>();
  private readonly byName = new Map<string, Metric>();
  private nextId = 1;

  constructor(private readonly bounds: BoundHits = new BoundHits()) {}

  /** `vmId` names who hit a bound, if one is hit. */
  define(type: number, name: string, vmId = ''): { status: Status; id: number } {
    if (type !== MetricType.COUNTER && type !== MetricType.GAUGE && type !== MetricType.HISTOGRAM) {
      return { status: Status.BAD_ARGUMENT, id: 0 };
    }
    if (name.length === 0) return { status: Status.BAD_ARGUMENT, id: 0 };
    const existing = this.byName.get(name);
    if (existing) {
      return existing.type === type ? { status: Status.OK, id: existing.id } : { status: Status.BAD_ARGUMENT, id: 0 };
    }
    if (name.length > GUEST_LIMITS.metricNameBytes || this.byId.size >= GUEST_LIMITS.metrics) {
      this.bounds.hit(vmId, 'metrics');
      return { status: name.length > GUEST_LIMITS.metricNameBytes ? Status.BAD_ARGUMENT : Status.INTERNAL_FAILURE, id: 0 };
    }
    const m: Metric = {
      id: this.nextId++,
      name,
      type,
      value: 0n,
      sum: 0n,
      buckets: type === MetricType.HISTOGRAM ? HISTOGRAM_BUCKETS.map(() => 0n) : null,
    };
    this.byId.set(m.id, m);
    this.byName.set(name, m);
    return { status: Status.OK, id: m.id };
  }

  increment(id: number, delta: bigint): Status {
    const m = this.byId.get(id);
    if (!m) return Status.NOT_FOUND;
    if (m.type === MetricType.COUNTER) {
      if (delta <= 0n) return Status.BAD_ARGUMENT;
      m.value += delta;
      return Status.OK;
    }
    if (m.type === MetricType.GAUGE) {
      m.value += delta;
      return Status.OK;
    }
    return Status.BAD_ARGUMENT;
  }

  record(id: number, value: bigint): Status {
    const m = this.byId.get(id);
    if (!m) return Status.NOT_FOUND;
    if (m.type === MetricType.COUNTER) m.value += value;
    else if (m.type === MetricType.GAUGE) m.value = BigInt.asIntN(64, value);
    else {
      m.value += 1n;
      m.sum += value;
      const buckets = m.buckets!;
      for (let i = 0; i < HISTOGRAM_BUCKETS.length; i++) if (value <= BigInt(HISTOGRAM_BUCKETS[i]!)) buckets[i]! += 1n;
    }
    return Status.OK;
  }

  get(id: number): bigint | Status {
    const m = this.byId.get(id);
    if (!m) return Status.NOT_FOUND;
    if (m.type === MetricType.HISTOGRAM) return Status.BAD_ARGUMENT;
    return m.value;
  }

  /** Value by name (counter/gauge; histogram count), or undefined. */
  value(name: string): bigint | undefined {
    return this.byName.get(name)?.value;
  }

  snapshot(): MetricSnapshot[] {
    return [...this.byId.values()].map((m) => ({
      id: m.id,
      name: m.name,
      type: m.type,
      value: m.value,
      ...(m.buckets ? { sum: m.sum, buckets: [...m.buckets] } : {}),
    }));
  }
}
