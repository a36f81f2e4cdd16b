/**
 * Event hooks: the list (source, event, handler, the latest delivery's
 * outcome) with enable/disable, test, ping and delete; a form per handler
 * to create or edit one, showing the API's 400 messages at the field named.
 */
import { useState } from 'preact/hooks';
import { api, ApiError, enc, listAll } from '../api';
import { Badge, Empty, ErrorBox, Field, FormErrors, Link, Spinner, Time, useLoad } from '../components';
import { navigate } from '../router';
import type { Delivery, EventHook, HandlerName, Sources } from '../types';

const SIGNATURES = ['standard', 'kong', 'both'];

/** The outcome badge of a delivery state. */
export function StateBadge({ state }: { state: string }) {
  // dropped: a wasm transform decided not to send (finished, not a failure).
  const kind = state === 'succeeded' ? 'ok' : state === 'failed' ? 'bad' : state === 'dropped' ? 'off' : 'wait';
  return <Badge kind={kind}>{state}</Badge>;
}

interface Row {
  hook: EventHook;
  latest: Delivery | null;
}

async function loadHooks(): Promise<Row[]> {
  const hooks = await listAll<EventHook>('/event-hooks?size=1000');
  return Promise.all(
    hooks.map(async (hook) => {
      const page = await api<{ data: Delivery[] }>('GET', `/event-hooks/${enc(hook.id)}/deliveries?size=1`);
      return { hook, latest: page.data[0] ?? null };
    }),
  );
}

function target(h: EventHook): string {
  const url = h.config.url;
  return typeof url === 'string' ? url : h.handler === 'log' ? 'hookwire log' : '—';
}

export function HookList() {
  const { data, error, reload, loading } = useLoad(loadHooks, [], 5000);
  const [notice, setNotice] = useState<{ id: string; ok: boolean; text: string } | null>(null);

  const act = async (h: EventHook, what: 'toggle' | 'test' | 'ping' | 'delete') => {
    try {
      if (what === 'toggle') await api('PATCH', `/event-hooks/${enc(h.id)}`, { enabled: !h.enabled });
      if (what === 'delete') {
        if (!confirm(`Delete the ${h.handler} hook on ${h.source}${h.event ? `/${h.event}` : ''} and its deliveries?`)) return;
        await api('DELETE', `/event-hooks/${enc(h.id)}`);
      }
      if (what === 'test') {
        const r = await api<{ result: unknown }>('POST', `/event-hooks/${enc(h.id)}/test`, { test: true, source: h.source, event: h.event });
        const res = r.result as { status?: number } | true;
        setNotice({ id: h.id, ok: true, text: res === true ? 'test: logged' : `test: the endpoint answered ${res.status}` });
      }
      if (what === 'ping') {
        await api('GET', `/event-hooks/${enc(h.id)}/ping`);
        setNotice({ id: h.id, ok: true, text: 'ping: the endpoint answered 2xx' });
      }
      if (what === 'toggle' || what === 'delete') setNotice(null);
      reload();
    } catch (err) {
      setNotice({ id: h.id, ok: false, text: `${what}: ${(err as Error).message}` });
    }
  };

  return (
    <section aria-labelledby="h-hooks">
      <div class="title-row">
        <h1 id="h-hooks">Event hooks</h1>
        <Link to="/hooks/new" class="button primary">
          New hook
        </Link>
      </div>
      <ErrorBox error={error} />
      <Spinner on={loading && !data} />
      {data && data.length === 0 ? (
        <Empty>
          No hooks yet: <Link to="/hooks/new">create one</Link>.
        </Empty>
      ) : null}
      {data && data.length > 0 ? (
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Source / event</th>
                <th scope="col">Handler</th>
                <th scope="col">Target</th>
                <th scope="col">Latest delivery</th>
                <th scope="col">Actions</th>
              </tr>
            </thead>
            <tbody>
              {data.map(({ hook: h, latest }) => (
                <tr key={h.id} data-hook={h.id} class={h.enabled ? '' : 'disabled'}>
                  <td>
                    <Link to={`/hooks/${enc(h.id)}`}>
                      {h.source}/{h.event ?? '*'}
                    </Link>
                    {h.enabled ? null : <Badge kind="off">disabled</Badge>}
                  </td>
                  <td>{h.handler}</td>
                  <td class="wrap">
                    <code>{target(h)}</code>
                  </td>
                  <td>
                    {latest ? (
                      <>
                        <StateBadge state={latest.state} /> <Time ms={latest.updated_at_ms} />
                      </>
                    ) : (
                      <span class="muted">none yet</span>
                    )}
                  </td>
                  <td class="actions">
                    <Link to={`/deliveries?hook=${enc(h.id)}`}>Deliveries</Link>
                    <button type="button" onClick={() => void act(h, 'toggle')}>
                      {h.enabled ? 'Disable' : 'Enable'}
                    </button>
                    <button type="button" onClick={() => void act(h, 'test')}>
                      Test
                    </button>
                    {h.handler === 'log' ? null : (
                      <button type="button" onClick={() => void act(h, 'ping')}>
                        Ping
                      </button>
                    )}
                    <button type="button" class="danger" onClick={() => void act(h, 'delete')}>
                      Delete
                    </button>
                    {notice?.id === h.id ? (
                      <span class={notice.ok ? 'ok-text' : 'error-text'} role="status">
                        {notice.text}
                      </span>
                    ) : null}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </section>
  );
}

/** The form's state: strings as typed; turned into the API's body by `body()`. */
interface Draft {
  source: string;
  event: string;
  handler: HandlerName;
  enabled: boolean;
  on_change: boolean;
  snooze: string;
  url: string;
  method: string;
  headers: string;
  headers_format: boolean;
  secret: string;
  signature: string;
  ssl_verify: boolean;
  payload: string;
  payload_format: boolean;
  body: string;
  body_format: boolean;
}

function draftOf(h: EventHook | null, query?: URLSearchParams): Draft {
  const c = (h?.config ?? {}) as Record<string, unknown>;
  const str = (v: unknown) => (typeof v === 'string' ? v : '');
  return {
    source: h?.source ?? query?.get('source') ?? 'crud',
    event: h?.event ?? query?.get('event') ?? '',
    handler: h?.handler ?? 'webhook',
    enabled: h?.enabled ?? true,
    on_change: h?.on_change ?? false,
    snooze: h?.snooze != null ? String(h.snooze) : '',
    url: str(c.url),
    method: str(c.method) || 'POST',
    headers: Object.entries((c.headers as Record<string, string> | undefined) ?? {})
      .map(([k, v]) => `${k}: ${v}`)
      .join('\n'),
    headers_format: c.headers_format === true,
    secret: str(c.secret),
    signature: str(c.signature) || 'standard',
    ssl_verify: c.ssl_verify !== false,
    payload: c.payload ? JSON.stringify(c.payload, null, 2) : '',
    payload_format: c.payload_format !== false,
    body: str(c.body),
    body_format: c.body_format !== false,
  };
}

/** The body to send, or the problems found before sending (by field). */
function bodyOf(d: Draft): { body: Record<string, unknown> } | { local: ApiError } {
  const local: Record<string, string> = {};
  const headers: Record<string, string> = {};
  for (const line of d.headers.split('\n')) {
    if (line.trim() === '') continue;
    const i = line.indexOf(':');
    if (i <= 0) local['config.headers'] = `each line is "Name: value" (found ${JSON.stringify(line)})`;
    else headers[line.slice(0, i).trim()] = line.slice(i + 1).trim();
  }
  let payload: unknown = null;
  if (d.handler === 'webhook-custom' && d.payload.trim() !== '') {
    try {
      payload = JSON.parse(d.payload);
    } catch (err) {
      local['config.payload'] = `is not JSON: ${(err as Error).message}`;
    }
  }
  if (d.snooze.trim() !== '' && !/^\d+$/.test(d.snooze.trim())) local.snooze = 'must be a whole number of seconds';
  if (Object.keys(local).length) return { local: new ApiError(400, 'Fix the fields marked below', local) };
  let config: Record<string, unknown> = {};
  if (d.handler !== 'log') {
    config = { url: d.url, headers, signature: d.signature, ssl_verify: d.ssl_verify, secret: d.secret === '' ? null : d.secret };
    if (d.handler === 'webhook-custom') {
      config = { ...config, method: d.method, payload, payload_format: d.payload_format, body: d.body === '' ? null : d.body, body_format: d.body_format, headers_format: d.headers_format };
    }
  }
  return {
    body: {
      source: d.source,
      event: d.event === '' ? null : d.event,
      handler: d.handler,
      enabled: d.enabled,
      on_change: d.on_change,
      snooze: d.snooze.trim() === '' ? null : Number(d.snooze),
      config,
    },
  };
}

const FORM_FIELDS = ['source', 'event', 'handler', 'enabled', 'on_change', 'snooze', 'config.url', 'config.method', 'config.headers', 'config.secret', 'config.secrets', 'config.signature', 'config.ssl_verify', 'config.payload', 'config.body'];

export function HookForm({ id, query }: { id: string | null; query?: URLSearchParams }) {
  const sources = useLoad(() => api<{ data: Sources }>('GET', '/event-hooks/sources').then((r) => r.data), []);
  const existing = useLoad(() => (id ? api<EventHook>('GET', `/event-hooks/${enc(id)}`) : Promise.resolve(null)), [id]);
  if (id && !existing.data) return existing.error ? <ErrorBox error={existing.error} /> : <p class="muted">Loading…</p>;
  return <HookEditor key={id ?? 'new'} hook={existing.data ?? null} sources={sources.data ?? {}} query={query} />;
}

function HookEditor({ hook, sources, query }: { hook: EventHook | null; sources: Sources; query: URLSearchParams | undefined }) {
  const [d, setD] = useState<Draft>(() => draftOf(hook, query));
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const set = <K extends keyof Draft>(k: K, v: Draft[K]) => setD((prev) => ({ ...prev, [k]: v }));
  const apiError = error instanceof ApiError ? error : null;
  const events = Object.keys(sources[d.source] ?? {});

  const submit = async (e: Event) => {
    e.preventDefault();
    const b = bodyOf(d);
    if ('local' in b) {
      setError(b.local);
      return;
    }
    setBusy(true);
    try {
      if (hook) await api('PATCH', `/event-hooks/${enc(hook.id)}`, b.body);
      else await api('POST', '/event-hooks', b.body);
      navigate('/hooks');
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  const text = (k: keyof Draft) => ({ value: d[k] as string, onInput: (e: Event) => set(k, (e.target as HTMLInputElement).value as never) });
  const check = (k: keyof Draft) => ({ checked: d[k] as boolean, onChange: (e: Event) => set(k, (e.target as HTMLInputElement).checked as never) });

  return (
    <section aria-labelledby="h-hook-form">
      <h1 id="h-hook-form">{hook ? 'Edit event hook' : 'New event hook'}</h1>
      {hook ? (
        <p class="muted">
          <code>{hook.id}</code> · created <Time ms={hook.created_at * 1000} /> · <Link to={`/deliveries?hook=${enc(hook.id)}`}>deliveries</Link>
        </p>
      ) : null}
      <form onSubmit={(e) => void submit(e)} noValidate aria-label="event hook">
        <FormErrors error={error} fields={FORM_FIELDS} />
        <fieldset>
          <legend>When</legend>
          <Field label="Source" name="source" error={apiError} hint="crud, dao:crud, wasm or a source a plugin published">
            <input name="source" list="sources" required {...text('source')} />
          </Field>
          <datalist id="sources">
            {Object.keys(sources).map((s) => (
              <option key={s} value={s} />
            ))}
          </datalist>
          <Field label="Event" name="event" error={apiError} hint="empty: every event of the source">
            <input name="event" list="events" {...text('event')} />
          </Field>
          <datalist id="events">
            {events.map((s) => (
              <option key={s} value={s} />
            ))}
          </datalist>
          <Field label="Snooze (seconds)" name="snooze" error={apiError} hint="empty: no snooze">
            <input name="snooze" inputMode="numeric" {...text('snooze')} />
          </Field>
          <label class="check">
            <input type="checkbox" name="on_change" {...check('on_change')} /> Only when the event's data changed (on_change)
          </label>
          <label class="check">
            <input type="checkbox" name="enabled" {...check('enabled')} /> Enabled
          </label>
        </fieldset>
        <fieldset>
          <legend>Then</legend>
          <Field label="Handler" name="handler" error={apiError}>
            <select name="handler" value={d.handler} onChange={(e) => set('handler', (e.target as HTMLSelectElement).value as HandlerName)}>
              <option value="webhook">webhook: POST the event as JSON</option>
              <option value="webhook-custom">webhook-custom: a templated request</option>
              <option value="log">log: write the event to hookwire's log</option>
            </select>
          </Field>
          {d.handler === 'log' ? null : (
            <>
              <Field label="URL" name="config.url" error={apiError} hint={d.handler === 'webhook-custom' ? 'may be a template ({{ event }})' : undefined}>
                <input name="url" type="url" required {...text('url')} />
              </Field>
              {d.handler === 'webhook-custom' ? (
                <Field label="Method" name="config.method" error={apiError}>
                  <input name="method" {...text('method')} />
                </Field>
              ) : null}
              <Field label="Headers" name="config.headers" error={apiError} hint="one per line: Name: value">
                <textarea name="headers" rows={3} {...text('headers')} />
              </Field>
              {d.handler === 'webhook-custom' ? (
                <>
                  <label class="check">
                    <input type="checkbox" name="headers_format" {...check('headers_format')} /> Header values are templates
                  </label>
                  <Field label="Payload (JSON object of templates)" name="config.payload" error={apiError} hint='e.g. {"text": "{{ source }}/{{ event }}"}'>
                    <textarea name="payload" rows={4} class="mono" {...text('payload')} />
                  </Field>
                  <label class="check">
                    <input type="checkbox" name="payload_format" {...check('payload_format')} /> Payload values are templates
                  </label>
                  <Field label="Body" name="config.body" error={apiError} hint="replaces the payload when set">
                    <textarea name="body" rows={4} class="mono" {...text('body')} />
                  </Field>
                  <label class="check">
                    <input type="checkbox" name="body_format" {...check('body_format')} /> The body is a template
                  </label>
                </>
              ) : null}
              <Field label="Secret" name="config.secret" error={apiError} hint="whsec_… (HMAC) or whsk_… (ed25519); empty: unsigned">
                <input name="secret" autoComplete="off" {...text('secret')} />
              </Field>
              <Field label="Signature" name="config.signature" error={apiError}>
                <select name="signature" value={d.signature} onChange={(e) => set('signature', (e.target as HTMLSelectElement).value)}>
                  {SIGNATURES.map((s) => (
                    <option key={s} value={s}>
                      {s}
                    </option>
                  ))}
                </select>
              </Field>
              <label class="check">
                <input type="checkbox" name="ssl_verify" {...check('ssl_verify')} /> Verify TLS certificates
              </label>
            </>
          )}
        </fieldset>
        <div class="form-actions">
          <button type="submit" class="primary" disabled={busy}>
            {hook ? 'Save' : 'Create hook'}
          </button>
          <Link to="/hooks" class="button">
            Cancel
          </Link>
        </div>
      </form>
    </section>
  );
}
