/**
 * `/metrics` and `/status` of a node running `hookwire start --workers N`:
 * the worker that serves the Admin API merges its own report with every
 * other worker's (gathered by the primary over IPC, see workers.ts).
 *
 * Metrics: counters, histograms and untyped samples of the same name and
 * labels are summed across workers (a request counted by any worker is a
 * request of the node); gauges keep one series per worker, labelled
 * `worker="N"` (a generation number or a plugin count does not add up
 * across processes; `sum()` gives the node's total where one makes sense).
 */
import type { GatewayStatus } from '../proxy/gateway.js';

/** What one worker reports about itself. */
export interface WorkerReport {
  /** 1 is the control worker (Admin API, event-hooks service); 2..N serve proxy traffic only. */
  readonly worker: number;
  readonly pid: number;
  /** Prometheus text of the worker's gateway and plugins (and, on worker 1, the event-hooks service). */
  readonly metrics: string;
  readonly status: GatewayStatus;
}

interface Family {
  readonly help: string | null;
  type: string;
  /** Series key (the sample line up to its value) → value. */
  readonly samples: Map<string, number>;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)$/;

/** The family a sample belongs to: histogram samples carry _bucket, _sum and _count suffixes. */
function familyOf(families: Map<string, Family>, name: string): string {
  if (families.has(name)) return name;
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (name.endsWith(suffix) && families.has(name.slice(0, -suffix.length))) return name.slice(0, -suffix.length);
  }
  return name;
}

/** Merges the workers' Prometheus texts into the node's (see the module comment). */
export function mergeMetrics(reports: readonly { worker: number; metrics: string }[]): string {
  const families = new Map<string, Family>();
  const family = (name: string): Family => {
    let f = families.get(name);
    if (!f) families.set(name, (f = { help: null, type: 'untyped', samples: new Map() }));
    return f;
  };
  for (const r of reports) {
    for (const line of r.metrics.split('\n')) {
      if (line === '') continue;
      if (line.startsWith('# HELP ')) {
        const [name] = line.slice(7).split(' ', 1);
        const f = families.get(name!);
        if (!f) families.set(name!, { help: line, type: 'untyped', samples: new Map() });
        else if (f.help === null) (f as { help: string | null }).help = line;
        continue;
      }
      if (line.startsWith('# TYPE ')) {
        const [name, type] = line.slice(7).split(' ');
        family(name!).type = type ?? 'untyped';
        continue;
      }
      if (line.startsWith('#')) continue;
      const m = SAMPLE.exec(line);
      if (!m) continue;
      const [, name, labels = '', raw] = m;
      const value = Number(raw);
      const f = family(familyOf(families, name!));
      if (f.type === 'gauge') {
        const inner = labels === '' ? '' : `,${labels.slice(1, -1)}`;
        f.samples.set(`${name}{worker="${r.worker}"${inner}}`, value);
      } else {
        const key = `${name}${labels}`;
        f.samples.set(key, (f.samples.get(key) ?? 0) + value);
      }
    }
  }
  const out: string[] = [];
  for (const [name, f] of families) {
    if (f.help !== null) out.push(f.help);
    if (f.type !== 'untyped') out.push(`# TYPE ${name} ${f.type}`);
    for (const [key, value] of f.samples) out.push(`${key} ${value}`);
  }
  out.push('# HELP hookwire_workers Worker processes that answered for this scrape (hookwire start --workers).');
  out.push('# TYPE hookwire_workers gauge');
  out.push(`hookwire_workers ${reports.length}`);
  out.push('');
  return out.join('\n');
}

/**
 * The node's /status: the serving worker's own (routes, plugins, listeners),
 * `inflight` summed over the workers, and one line per worker.
 */
export function mergeStatus(own: Record<string, unknown>, reports: readonly WorkerReport[], expected: number): Record<string, unknown> {
  return {
    ...own,
    inflight: reports.reduce((n, r) => n + r.status.inflight, 0),
    workers: {
      configured: expected,
      running: reports.length,
      list: reports.map((r) => ({
        worker: r.worker,
        pid: r.pid,
        role: r.worker === 1 ? 'control' : 'data',
        generation: r.status.generation,
        inflight: r.status.inflight,
        draining: r.status.draining,
        started_at: r.status.started_at,
        plugins_healthy: r.status.plugins.filter((p) => p.healthy).length,
        plugins: r.status.plugins.length,
      })),
    },
  };
}
