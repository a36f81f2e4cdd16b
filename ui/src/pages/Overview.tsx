/**
 * Generation, listeners, plugins, open circuits and pending deliveries from
 * /status; requests/s, p50/p99 per route and delivery attempts/s as plots
 * fed by /metrics every few seconds (rates and quantiles between scrapes).
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { api } from '../api';
import { Badge, Empty, ErrorBox, Link, Time } from '../components';
import { bucketsBy, exactQuantile, parseMetrics, quantile, rates, sumBy, type Buckets, type Sample } from '../metrics';
import { TimePlot, type Series } from '../plot';
import type { Delivery, Status } from '../types';

/** Refresh interval of the overview. */
export const REFRESH_MS = 3000;
/** Points kept per plot (REFRESH_MS apart: three minutes). */
const KEEP = 60;
/** Deliveries read per sample for the delivery latency plot (the newest). */
const RECENT_DELIVERIES = 100;

/** Durations (ms) of the attempts that finished in (fromMs, toMs]. */
function finishedBetween(deliveries: readonly Delivery[], fromMs: number, toMs: number): number[] {
  const out: number[] = [];
  for (const d of deliveries) {
    for (const a of d.attempts) {
      const end = a.started_at_ms + a.duration_ms;
      if (end > fromMs && end <= toMs) out.push(a.duration_ms);
    }
  }
  return out.sort((x, y) => x - y);
}

const routeKey = (l: Readonly<Record<string, string>>) => (l.workspace && l.workspace !== 'default' ? `${l.workspace}/${l.route}` : (l.route ?? '?'));

interface Scrape {
  at: number;
  requests: Map<string, number>;
  buckets: Map<string, Buckets>;
  attempts: Map<string, number>;
  traps: Map<string, number>;
  pending: number | null;
}

function scrape(samples: Sample[], at: number): Scrape {
  const pending = samples.find((s) => s.name === 'hookwire_event_hooks_deliveries_pending');
  return {
    at,
    requests: sumBy(samples, 'hookwire_http_requests_total', routeKey),
    buckets: bucketsBy(samples, 'hookwire_http_request_duration_seconds', routeKey),
    attempts: sumBy(samples, 'hookwire_event_hooks_attempts_total', (l) => l.result ?? '?'),
    traps: sumBy(samples, 'hookwire_filter_traps_total', (l) => l.plugin ?? '?'),
    pending: pending ? pending.value : null,
  };
}

interface History {
  times: number[];
  rps: Map<string, (number | null)[]>;
  p50: Map<string, (number | null)[]>;
  p99: Map<string, (number | null)[]>;
  attempts: Map<string, (number | null)[]>;
  delivery: Map<string, (number | null)[]>;
}

function push(map: Map<string, (number | null)[]>, key: string, value: number | null, length: number): void {
  const list = map.get(key) ?? new Array<number | null>(length - 1).fill(null);
  list.push(value);
  map.set(key, list);
}

function trim(h: History): void {
  if (h.times.length <= KEEP) return;
  h.times.shift();
  for (const m of [h.rps, h.p50, h.p99, h.attempts, h.delivery]) for (const l of m.values()) l.shift();
}

function series(map: Map<string, (number | null)[]>, suffix = ''): Series[] {
  return [...map].map(([label, values]) => ({ label: label + suffix, values: [...values] }));
}

export function Overview() {
  const [status, setStatus] = useState<Status | null>(null);
  const [latest, setLatest] = useState<Scrape | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [history, setHistory] = useState<History>({ times: [], rps: new Map(), p50: new Map(), p99: new Map(), attempts: new Map(), delivery: new Map() });
  const prev = useRef<Scrape | null>(null);

  useEffect(() => {
    let stopped = false;
    const h: History = { times: [], rps: new Map(), p50: new Map(), p99: new Map(), attempts: new Map(), delivery: new Map() };
    const tick = async () => {
      try {
        const [s, text] = await Promise.all([api<Status>('GET', '/status'), api<string>('GET', '/metrics')]);
        const recent = s.event_hooks.enabled ? (await api<{ data: Delivery[] }>('GET', `/event-hooks/deliveries?size=${RECENT_DELIVERIES}`)).data : [];
        if (stopped) return;
        const now = scrape(parseMetrics(text), Date.now());
        setStatus(s);
        setLatest(now);
        setError(null);
        const before = prev.current;
        prev.current = now;
        if (!before) return;
        const seconds = (now.at - before.at) / 1000;
        h.times.push(now.at / 1000);
        const n = h.times.length;
        for (const [k, v] of rates(before.requests, now.requests, seconds)) push(h.rps, k, v, n);
        for (const [k, b] of now.buckets) {
          const p50 = quantile(0.5, before.buckets.get(k), b);
          const p99 = quantile(0.99, before.buckets.get(k), b);
          push(h.p50, k, p50 === null ? null : p50 * 1000, n);
          push(h.p99, k, p99 === null ? null : p99 * 1000, n);
        }
        for (const [k, v] of rates(before.attempts, now.attempts, seconds)) push(h.attempts, k, v, n);
        const durations = finishedBetween(recent, before.at, now.at);
        push(h.delivery, 'p50', exactQuantile(durations, 0.5), n);
        push(h.delivery, 'p99', exactQuantile(durations, 0.99), n);
        for (const m of [h.rps, h.p50, h.p99, h.attempts, h.delivery]) for (const l of m.values()) while (l.length < n) l.push(null);
        trim(h);
        setHistory({ ...h });
      } catch (err) {
        if (!stopped) setError(err);
      }
    };
    void tick();
    const timer = setInterval(() => void tick(), REFRESH_MS);
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  }, []);

  if (!status) return error ? <ErrorBox error={error} /> : <p class="muted">Loading…</p>;
  const open = (status.event_hooks.circuits ?? []).filter((c) => c.state !== 'closed');
  const pending = latest?.pending ?? null;
  return (
    <section aria-labelledby="h-overview">
      <h1 id="h-overview">Overview</h1>
      <ErrorBox error={error} />
      <div class="cards">
        <div class="card">
          <span class="label">Generation</span>
          <strong data-testid="generation">{status.generation}</strong>
          <small>
            since <Time ms={Date.parse(status.started_at)} />
          </small>
        </div>
        <div class="card">
          <span class="label">Routes / services</span>
          <strong>
            {status.routes} / {status.services}
          </strong>
          <small>{status.inflight} in flight{status.draining ? ', draining' : ''}</small>
        </div>
        <div class={`card${open.length ? ' alert' : ''}`}>
          <span class="label">Open circuits</span>
          <strong data-testid="open-circuits">{status.event_hooks.enabled ? open.length : '—'}</strong>
          <small>{open.map((c) => `${c.origin} (${c.state})`).join(', ') || 'every endpoint reachable'}</small>
        </div>
        <div class={`card${pending ? ' warn' : ''}`}>
          <span class="label">Pending deliveries</span>
          <strong data-testid="pending">{pending ?? '—'}</strong>
          <small>
            <Link to="/deliveries?state=pending">see them</Link>
          </small>
        </div>
      </div>

      <h2>Listeners</h2>
      <ul class="plain">
        {status.listeners.proxy.map((l) => (
          <li key={l.url}>
            proxy <code>{l.url}</code>
          </li>
        ))}
        {status.listeners.admin ? (
          <li>
            admin <code>{status.listeners.admin.url}</code>
          </li>
        ) : null}
      </ul>

      <h2>Plugins</h2>
      {status.plugins.length === 0 ? (
        <Empty>
          No plugins loaded: attach one on the <Link to="/gateway?kind=plugins">Gateway</Link> page.
        </Empty>
      ) : (
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Plugin</th>
                <th scope="col">VM</th>
                <th scope="col">Failure policy</th>
                <th scope="col">Health</th>
                <th scope="col">Traps</th>
                <th scope="col">Reloads</th>
              </tr>
            </thead>
            <tbody>
              {status.plugins.map((p) => (
                <tr key={`${p.vm_id}/${p.root_id}/${p.name}`}>
                  <td>{p.name}</td>
                  <td>
                    <code>{p.vm_id}</code>
                  </td>
                  <td>{p.failure_policy}</td>
                  <td>{p.healthy ? <Badge kind="ok">healthy</Badge> : <Badge kind="bad" >{p.failure ?? 'unhealthy'}</Badge>}</td>
                  <td>{latest?.traps.get(p.name) ?? 0}</td>
                  <td>{p.reloads}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}

      <h2>Traffic</h2>
      {history.times.length === 0 ? (
        <p class="muted">The plots start after the second sample ({REFRESH_MS / 1000} s).</p>
      ) : (
        <div class="plots">
          <TimePlot title="Requests per second, by route" unit="req/s" times={history.times} windowSeconds={(KEEP * REFRESH_MS) / 1000} series={series(history.rps)} />
          <TimePlot title="Latency p50 / p99, by route" unit="ms" times={history.times} windowSeconds={(KEEP * REFRESH_MS) / 1000} series={[...series(history.p50, ' p50'), ...series(history.p99, ' p99')]} />
          <TimePlot title="Delivery attempts per second, by outcome" unit="attempts/s" times={history.times} windowSeconds={(KEEP * REFRESH_MS) / 1000} series={series(history.attempts)} />
          <TimePlot title="Delivery latency p50 / p99" unit="ms" times={history.times} windowSeconds={(KEEP * REFRESH_MS) / 1000} series={series(history.delivery)} />
        </div>
      )}
    </section>
  );
}
