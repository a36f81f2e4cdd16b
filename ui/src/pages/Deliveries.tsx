/**
 * Deliveries of one hook or of every hook, newest first, filterable by
 * state; each with its attempts as a timeline; retry one, or every failed
 * one shown; a histogram of the attempts' durations.
 */
import { Fragment } from 'preact';
import { useState } from 'preact/hooks';
import { api, enc, listAll } from '../api';
import { Empty, ErrorBox, Link, Spinner, Time, useLoad } from '../components';
import { navigate } from '../router';
import type { Delivery, DeliveryState, EventHook } from '../types';
import { StateBadge } from './Hooks';

const STATES: readonly DeliveryState[] = ['pending', 'delivering', 'succeeded', 'failed', 'dropped'];
/** Deliveries read (the newest). */
const LIMIT = 200;
/** Upper bounds (ms) of the latency histogram's bars; the last bar is everything slower. */
const LATENCY_BOUNDS = [10, 50, 100, 250, 500, 1000, 5000];

interface Loaded {
  hooks: Map<string, EventHook>;
  deliveries: Delivery[];
}

/** The newest deliveries: one hook's (filtered here), or every hook's in one list filtered by the API. */
async function load(hookId: string | null, state: string): Promise<Loaded> {
  const hooks = await listAll<EventHook>('/event-hooks?size=1000');
  // The API filters by stored state: one in flight (delivering) is stored as pending; the page narrows it further.
  const stored = state === 'delivering' ? 'pending' : state;
  const q = `size=${LIMIT}${stored ? `&state=${enc(stored)}` : ''}`;
  const page = hookId
    ? await api<{ data: Delivery[] }>('GET', `/event-hooks/${enc(hookId)}/deliveries?size=${LIMIT}`)
    : await api<{ data: Delivery[] }>('GET', `/event-hooks/deliveries?${q}`);
  return { hooks: new Map(hooks.map((h) => [h.id, h])), deliveries: page.data };
}

/** What a hook calls, for rows that mix hooks. */
function hookLabel(h: EventHook | undefined): string {
  if (!h) return '';
  return typeof h.config.url === 'string' ? `→ ${h.config.url}` : `→ ${h.handler}`;
}

function Histogram({ deliveries }: { deliveries: readonly Delivery[] }) {
  const counts = new Array<number>(LATENCY_BOUNDS.length + 1).fill(0);
  let total = 0;
  for (const d of deliveries) {
    for (const a of d.attempts) {
      const i = LATENCY_BOUNDS.findIndex((b) => a.duration_ms <= b);
      counts[i === -1 ? LATENCY_BOUNDS.length : i]!++;
      total++;
    }
  }
  if (total === 0) return null;
  const max = Math.max(...counts);
  const label = (i: number) => (i < LATENCY_BOUNDS.length ? `≤ ${LATENCY_BOUNDS[i]! >= 1000 ? `${LATENCY_BOUNDS[i]! / 1000} s` : `${LATENCY_BOUNDS[i]} ms`}` : '> 5 s');
  return (
    <figure class="histogram">
      <figcaption>Attempt latency ({total} attempts shown)</figcaption>
      <ol>
        {counts.map((n, i) => (
          <li key={i}>
            <span class="bar-label">{label(i)}</span>
            <span class="bar" style={{ width: `${max ? (n / max) * 100 : 0}%` }} />
            <span class="bar-count">{n}</span>
          </li>
        ))}
      </ol>
    </figure>
  );
}

function Attempts({ d }: { d: Delivery }) {
  if (d.attempts.length === 0) return <p class="muted">No attempt yet{d.next_attempt_at_ms ? <> (next at <Time ms={d.next_attempt_at_ms} />)</> : null}.</p>;
  return (
    <ol class="timeline" aria-label={`attempts of ${d.id}`}>
      {d.attempts.map((a) => {
        const ok = a.status !== null && a.status >= 200 && a.status < 300;
        return (
          <li key={a.attempt} class={ok ? 'ok' : 'bad'} data-attempt={a.attempt}>
            <div>
              <strong>#{a.attempt}</strong> <Time ms={a.started_at_ms} /> · <span data-testid="attempt-status">{a.status ?? 'no answer'}</span> · {a.duration_ms} ms
              {a.url ? (
                <>
                  {' '}
                  · <code>{a.url}</code>
                </>
              ) : null}
            </div>
            {a.error ? <div class="error-text">{a.error}</div> : null}
            {a.response ? <pre class="excerpt">{a.response}</pre> : null}
          </li>
        );
      })}
      {d.next_attempt_at_ms && d.state !== 'succeeded' && d.state !== 'failed' ? (
        <li class="wait">
          next attempt <Time ms={d.next_attempt_at_ms} />
        </li>
      ) : null}
    </ol>
  );
}

export function Deliveries({ query }: { query: URLSearchParams }) {
  const hookId = query.get('hook');
  const state = query.get('state') ?? '';
  const { data, error, reload, loading } = useLoad(() => load(hookId, state), [hookId, state], 3000);
  const [open, setOpen] = useState<string | null>(null);
  const [actionError, setActionError] = useState<{ id: string; error: unknown } | null>(null);
  const [busy, setBusy] = useState(false);

  const setFilter = (next: { hook?: string | null; state?: string }) => {
    const q = new URLSearchParams();
    const h = next.hook !== undefined ? next.hook : hookId;
    const s = next.state !== undefined ? next.state : state;
    if (h) q.set('hook', h);
    if (s) q.set('state', s);
    const qs = q.toString();
    navigate(`/deliveries${qs ? `?${qs}` : ''}`);
  };

  const shown = (data?.deliveries ?? []).filter((d) => state === '' || d.state === state);
  const failed = shown.filter((d) => d.state === 'failed');

  const retry = async (list: readonly Delivery[], key: string) => {
    setBusy(true);
    setActionError(null);
    try {
      for (const d of list) await api('POST', `/event-hooks/${enc(d.hook_id)}/deliveries/${enc(d.id)}/retry`);
    } catch (err) {
      setActionError({ id: key, error: err });
    } finally {
      setBusy(false);
      reload();
    }
  };

  const hook = hookId ? data?.hooks.get(hookId) : undefined;
  return (
    <section aria-labelledby="h-deliveries">
      <h1 id="h-deliveries">Deliveries{hook ? ` of ${hook.source}/${hook.event ?? '*'} → ${String(hook.config.url ?? hook.handler)}` : ''}</h1>
      <div class="filters" role="group" aria-label="filters">
        <label>
          Hook{' '}
          <select value={hookId ?? ''} onChange={(e) => setFilter({ hook: (e.target as HTMLSelectElement).value || null })} name="hook">
            <option value="">every hook</option>
            {hookId && !data?.hooks.has(hookId) ? <option value={hookId}>{hookId}</option> : null}
            {[...(data?.hooks.values() ?? [])].map((h) => (
              <option key={h.id} value={h.id}>
                {h.source}/{h.event ?? '*'} ({h.handler}) {h.id.slice(0, 8)}
              </option>
            ))}
          </select>
        </label>
        <label>
          State{' '}
          <select value={state} onChange={(e) => setFilter({ state: (e.target as HTMLSelectElement).value })} name="state">
            <option value="">any</option>
            {STATES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
        <button type="button" disabled={busy || failed.length === 0} onClick={() => void retry(failed, 'all')}>
          Retry all failed ({failed.length})
        </button>
        <Spinner on={loading && !data} />
      </div>
      {actionError?.id === 'all' ? <ErrorBox error={actionError.error} /> : null}
      <ErrorBox error={error} />
      {data && data.hooks.size === 0 ? (
        <Empty>
          No hooks yet, so no deliveries: <Link to="/hooks/new">create a hook</Link>.
        </Empty>
      ) : null}
      {data && data.hooks.size > 0 && shown.length === 0 ? <Empty>No {state || ''} deliveries{hookId ? ' for this hook' : ''} yet.</Empty> : null}
      {shown.length > 0 ? (
        <>
          <div class="table-wrap">
            <table class="deliveries">
              <thead>
                <tr>
                  <th scope="col">Created</th>
                  <th scope="col">Event</th>
                  <th scope="col">State</th>
                  <th scope="col">Attempts</th>
                  <th scope="col">Last answer</th>
                  <th scope="col">Actions</th>
                </tr>
              </thead>
              <tbody>
                {shown.map((d) => (
                  <Fragment key={d.id}>
                    <tr data-delivery={d.id} data-state={d.state}>
                      <td>
                        <Time ms={d.created_at_ms} />
                      </td>
                      <td class="wrap">
                        {d.source}/{d.event}
                        {hookId ? null : <small class="muted block">{hookLabel(data?.hooks.get(d.hook_id))}</small>}
                      </td>
                      <td>
                        <StateBadge state={d.state} />
                      </td>
                      <td>{d.attempt_count}</td>
                      <td class="wrap">{d.last_status ?? d.last_error ?? '—'}</td>
                      <td class="actions">
                        <button type="button" aria-expanded={open === d.id} onClick={() => setOpen(open === d.id ? null : d.id)}>
                          {open === d.id ? 'Hide attempts' : 'Attempts'}
                        </button>
                        {d.state === 'delivering' ? null : (
                          <button type="button" disabled={busy} onClick={() => void retry([d], d.id)}>
                            Retry
                          </button>
                        )}
                        {actionError?.id === d.id ? <ErrorBox error={actionError.error} /> : null}
                      </td>
                    </tr>
                    {open === d.id ? (
                      <tr class="detail">
                        <td colSpan={6}>
                          <p class="muted">
                            <code>{d.id}</code> · event <code>{d.event_id}</code>
                          </p>
                          <Attempts d={d} />
                          <details>
                            <summary>Event data</summary>
                            <pre class="excerpt">{JSON.stringify(d.data, null, 2)}</pre>
                          </details>
                        </td>
                      </tr>
                    ) : null}
                  </Fragment>
                ))}
              </tbody>
            </table>
          </div>
          <Histogram deliveries={shown} />
        </>
      ) : null}
    </section>
  );
}
