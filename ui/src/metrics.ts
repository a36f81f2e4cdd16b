/**
 * Prometheus text (GET /metrics) parsed into samples, and what the overview
 * plots derive from two scrapes: rates of counters and quantiles of the
 * latency histogram over the interval between them.
 */

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1]!] = l[2]!.replace(/\\n/g, '\n').replace(/\\(.)/g, '$1');
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** The sum of `name`'s samples grouped by `key(labels)`. */
export function sumBy(samples: readonly Sample[], name: string, key: (l: Readonly<Record<string, string>>) => string): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of samples) if (s.name === name) out.set(key(s.labels), (out.get(key(s.labels)) ?? 0) + s.value);
  return out;
}

/** Per-second rate of each key between two scrapes `seconds` apart (a counter reset counts from zero). */
export function rates(before: Map<string, number>, after: Map<string, number>, seconds: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const [k, v] of after) {
    const prev = before.get(k) ?? 0;
    out.set(k, (v >= prev ? v - prev : v) / seconds);
  }
  return out;
}

/** Cumulative buckets (le → count) of one histogram series. */
export type Buckets = Map<number, number>;

/** The `_bucket` series of histogram `name`, by `key(labels)`. */
export function bucketsBy(samples: readonly Sample[], name: string, key: (l: Readonly<Record<string, string>>) => string): Map<string, Buckets> {
  const out = new Map<string, Buckets>();
  for (const s of samples) {
    if (s.name !== `${name}_bucket` || s.labels.le === undefined) continue;
    const k = key(s.labels);
    const b = out.get(k) ?? new Map<number, number>();
    const le = s.labels.le === '+Inf' ? Infinity : Number(s.labels.le);
    b.set(le, (b.get(le) ?? 0) + s.value);
    out.set(k, b);
  }
  return out;
}

/**
 * The q-quantile of the observations between two scrapes, interpolated
 * linearly inside the bucket as Prometheus' histogram_quantile does; null
 * when nothing was observed.
 */
export function quantile(q: number, before: Buckets | undefined, after: Buckets): number | null {
  const les = [...after.keys()].sort((a, b) => a - b);
  const counts = les.map((le) => Math.max(0, (after.get(le) ?? 0) - (before?.get(le) ?? 0)));
  const total = counts.at(-1) ?? 0;
  if (total === 0) return null;
  const rank = q * total;
  for (let i = 0; i < les.length; i++) {
    if (counts[i]! >= rank) {
      const upper = les[i]!;
      const lower = i === 0 ? 0 : les[i - 1]!;
      if (upper === Infinity) return lower;
      const below = i === 0 ? 0 : counts[i - 1]!;
      const inBucket = counts[i]! - below;
      return inBucket === 0 ? upper : lower + ((upper - lower) * (rank - below)) / inBucket;
    }
  }
  return les.at(-2) ?? null;
}

/** The q-quantile of `values` sorted ascending (nearest rank), or null when empty. */
export function exactQuantile(values: readonly number[], q: number): number | null {
  if (values.length === 0) return null;
  return values[Math.min(values.length - 1, Math.max(0, Math.ceil(q * values.length) - 1))]!;
}
