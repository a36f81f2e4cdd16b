/**
 * Services, routes, consumers and plugins of a workspace: lists, and a form
 * per kind to create or edit one (PATCH sends the form's fields). A
 * plugin's configuration is edited as JSON, checked to parse before it is sent.
 */
import { useState } from 'preact/hooks';
import { api, ApiError, enc, listAll } from '../api';
import { Empty, ErrorBox, Field, FormErrors, Link, Spinner, useLoad } from '../components';
import { navigate } from '../router';
import type { Entity, EntityKind } from '../types';

const KINDS: readonly EntityKind[] = ['services', 'routes', 'consumers', 'plugins'];

type FieldKind = 'text' | 'list' | 'bool' | 'int' | 'json' | 'ref' | 'select';

interface FieldSpec {
  readonly name: string;
  readonly label: string;
  readonly kind: FieldKind;
  readonly hint?: string;
  readonly options?: readonly string[];
  /** Empty text is sent as null (else left out). */
  readonly nullable?: boolean;
}

const FIELDS: Record<EntityKind, readonly FieldSpec[]> = {
  services: [
    { name: 'name', label: 'Name', kind: 'text' },
    { name: 'urls', label: 'Upstream URLs', kind: 'list', hint: 'comma-separated http(s) URLs; their path is a prefix' },
    { name: 'connect_timeout_ms', label: 'Connect timeout (ms)', kind: 'int' },
    { name: 'read_timeout_ms', label: 'Read timeout (ms)', kind: 'int' },
  ],
  routes: [
    { name: 'name', label: 'Name', kind: 'text' },
    { name: 'service', label: 'Service', kind: 'ref', hint: 'the service name or id' },
    { name: 'paths', label: 'Paths', kind: 'list', hint: 'comma-separated prefixes, e.g. /api' },
    { name: 'methods', label: 'Methods', kind: 'list', hint: 'comma-separated; empty: any' },
    { name: 'hosts', label: 'Hosts', kind: 'list', hint: 'comma-separated; empty: any' },
    { name: 'strip_path', label: 'Strip the matched path', kind: 'bool' },
  ],
  consumers: [
    { name: 'username', label: 'Username', kind: 'text' },
    { name: 'custom_id', label: 'Custom id', kind: 'text', nullable: true },
  ],
  plugins: [
    { name: 'name', label: 'Name', kind: 'text' },
    { name: 'wasm', label: '.wasm file', kind: 'text', hint: 'path on the hookwire host' },
    { name: 'scope', label: 'Scope', kind: 'select', options: ['workspace', 'global', 'service', 'route'] },
    { name: 'service', label: 'Service', kind: 'ref', nullable: true, hint: 'scope service: its name or id' },
    { name: 'route', label: 'Route', kind: 'ref', nullable: true, hint: 'scope route: its name or id' },
    { name: 'failure_policy', label: 'Failure policy', kind: 'select', options: ['fail_closed', 'fail_open', 'reload'] },
    { name: 'enabled', label: 'Enabled', kind: 'bool' },
    { name: 'configuration', label: 'Configuration (JSON)', kind: 'json', hint: "what the plugin's on_configure receives" },
  ],
};

const KEY: Record<EntityKind, string> = { services: 'name', routes: 'name', consumers: 'username', plugins: 'name' };

const prefix = (ws: string) => (ws === 'default' ? '' : `/${enc(ws)}`);

function text(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (Array.isArray(v)) return v.join(', ');
  if (typeof v === 'object' && v !== null && 'name' in v) return String((v as { name: unknown }).name);
  return String(v);
}

function summary(kind: EntityKind, e: Entity): string {
  switch (kind) {
    case 'services':
      return text(e.urls);
    case 'routes':
      return `${text(e.service)} · ${text(e.paths) || '/'}${text(e.methods) ? ` · ${text(e.methods)}` : ''}`;
    case 'consumers':
      return text(e.custom_id) || '—';
    case 'plugins':
      return `${text(e.scope)}${e.service ? ` ${text(e.service)}` : ''}${e.route ? ` ${text(e.route)}` : ''} · ${text(e.failure_policy)}${e.enabled === false ? ' · disabled' : ''}`;
  }
}

async function workspaces(): Promise<string[]> {
  const doc = await api<{ workspaces?: { name: string }[] }>('GET', '/config');
  return [...new Set(['default', ...(doc.workspaces ?? []).map((w) => w.name)])];
}

export function Gateway({ query }: { query: URLSearchParams }) {
  const ws = query.get('ws') ?? 'default';
  const kind = (KINDS as readonly string[]).includes(query.get('kind') ?? '') ? (query.get('kind') as EntityKind) : 'services';
  const edit = query.get('edit');
  const wsList = useLoad(workspaces, []);
  const list = useLoad(() => listAll<Entity>(`${prefix(ws)}/${kind}?size=1000`), [ws, kind]);
  const [actionError, setActionError] = useState<unknown>(null);
  const go = (next: { ws?: string; kind?: EntityKind; edit?: string | null }) => {
    const q = new URLSearchParams({ ws: next.ws ?? ws, kind: next.kind ?? kind });
    const e = next.edit === undefined ? null : next.edit;
    if (e) q.set('edit', e);
    navigate(`/gateway?${q.toString()}`);
  };

  const remove = async (e: Entity) => {
    if (!confirm(`Delete ${kind.slice(0, -1)} ${text(e[KEY[kind]])}?`)) return;
    try {
      setActionError(null);
      await api('DELETE', `${prefix(ws)}/${kind}/${enc(e.id)}`);
      list.reload();
    } catch (err) {
      setActionError(err);
    }
  };

  return (
    <section aria-labelledby="h-gateway">
      <h1 id="h-gateway">Gateway</h1>
      <div class="filters">
        <label>
          Workspace{' '}
          <select name="workspace" value={ws} onChange={(e) => go({ ws: (e.target as HTMLSelectElement).value })}>
            {(wsList.data ?? [ws]).map((w) => (
              <option key={w} value={w}>
                {w}
              </option>
            ))}
          </select>
        </label>
      </div>
      <nav class="tabs" aria-label="entity kinds">
        {KINDS.map((k) => (
          <Link key={k} to={`/gateway?ws=${enc(ws)}&kind=${k}`} class={k === kind ? 'tab active' : 'tab'} aria-current={k === kind ? 'page' : undefined}>
            {k}
          </Link>
        ))}
      </nav>
      <ErrorBox error={wsList.error} />
      {edit !== null ? (
        <EntityForm
          key={`${ws}/${kind}/${edit}`}
          kind={kind}
          ws={ws}
          entity={edit === 'new' ? null : (list.data?.find((e) => e.id === edit) ?? null)}
          loading={edit !== 'new' && !list.data}
          done={() => {
            list.reload();
            go({ edit: null });
          }}
        />
      ) : (
        <button type="button" class="primary" onClick={() => go({ edit: 'new' })}>
          New {kind.slice(0, -1)}
        </button>
      )}
      <ErrorBox error={list.error ?? actionError} />
      <Spinner on={list.loading && !list.data} />
      {list.data && list.data.length === 0 ? <Empty>No {kind} in workspace {ws} yet: create one with the button above.</Empty> : null}
      {list.data && list.data.length > 0 ? (
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">{KEY[kind]}</th>
                <th scope="col">Details</th>
                <th scope="col">Actions</th>
              </tr>
            </thead>
            <tbody>
              {list.data.map((e) => (
                <tr key={e.id} data-entity={text(e[KEY[kind]])}>
                  <td>{text(e[KEY[kind]])}</td>
                  <td class="wrap">{summary(kind, e)}</td>
                  <td class="actions">
                    <button type="button" onClick={() => go({ edit: e.id })}>
                      Edit
                    </button>
                    <button type="button" class="danger" onClick={() => void remove(e)}>
                      Delete
                    </button>
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

type Values = Record<string, string | boolean>;

function valuesOf(kind: EntityKind, e: Entity | null): Values {
  const out: Values = {};
  for (const f of FIELDS[kind]) {
    const v = e?.[f.name];
    if (f.kind === 'bool') out[f.name] = e ? v === true : f.name === 'enabled';
    else if (f.kind === 'json') out[f.name] = v === null || v === undefined ? '' : JSON.stringify(v, null, 2);
    else if (f.kind === 'select') out[f.name] = v === undefined || v === null ? f.options![0]! : String(v);
    else out[f.name] = text(v);
  }
  return out;
}

/** The body from the form, or the problems found before sending. */
function bodyOf(kind: EntityKind, values: Values, creating: boolean): { body: Record<string, unknown> } | { local: ApiError } {
  const body: Record<string, unknown> = {};
  const local: Record<string, string> = {};
  for (const f of FIELDS[kind]) {
    const v = values[f.name]!;
    if (f.kind === 'bool') body[f.name] = v;
    else if (typeof v !== 'string') continue;
    else if (f.kind === 'list') body[f.name] = v.split(',').map((s) => s.trim()).filter((s) => s !== '');
    else if (f.kind === 'int') {
      if (v.trim() === '') continue;
      if (!/^\d+$/.test(v.trim())) local[f.name] = 'must be a whole number';
      else body[f.name] = Number(v.trim());
    } else if (f.kind === 'json') {
      if (v.trim() === '') body[f.name] = null;
      else {
        try {
          body[f.name] = JSON.parse(v);
        } catch (err) {
          local[f.name] = `is not JSON: ${(err as Error).message}`;
        }
      }
    } else if (v === '') {
      if (f.nullable) body[f.name] = null;
      else if (!creating) body[f.name] = v;
    } else body[f.name] = v;
  }
  if (kind === 'services' && creating && (body.urls as string[] | undefined)?.length === 0) delete body.urls;
  if (Object.keys(local).length) return { local: new ApiError(400, 'Fix the fields marked below', local) };
  return { body };
}

/**
 * A plugin's configuration checked against the config schema of its .wasm's
 * manifest before it is sent (POST /schemas/plugins/validate): throws the
 * API's 400, whose fields name configuration.<key>. A .wasm without a
 * manifest cannot be checked: the plugin itself still is, when it starts.
 */
async function checkPlugin(body: Record<string, unknown>, entity: Entity | null): Promise<string | null> {
  const wasm = typeof body.wasm === 'string' && body.wasm !== '' ? body.wasm : entity?.wasm;
  if (typeof wasm !== 'string') return null;
  try {
    await api('POST', '/schemas/plugins/validate', { wasm, configuration: body.configuration ?? null });
    return null;
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return `Configuration not checked before sending: ${err.message}`;
    throw err;
  }
}

function EntityForm(props: { kind: EntityKind; ws: string; entity: Entity | null; loading: boolean; done: () => void }) {
  const { kind, ws, entity } = props;
  const [values, setValues] = useState<Values>(() => valuesOf(kind, entity));
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [note, setNote] = useState<string | null>(null);
  if (props.loading) return <p class="muted">Loading…</p>;
  const apiError = error instanceof ApiError ? error : null;
  const one = kind.slice(0, -1);

  const submit = async (e: Event) => {
    e.preventDefault();
    const b = bodyOf(kind, values, entity === null);
    if ('local' in b) {
      setError(b.local);
      return;
    }
    setBusy(true);
    try {
      if (kind === 'plugins') setNote(await checkPlugin(b.body, entity));
      if (entity) await api('PATCH', `${prefix(ws)}/${kind}/${enc(entity.id)}`, b.body);
      else await api('POST', `${prefix(ws)}/${kind}`, b.body);
      props.done();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form class="entity-form" onSubmit={(e) => void submit(e)} noValidate aria-label={`${entity ? 'edit' : 'new'} ${one}`}>
      <h2>{entity ? `Edit ${one} ${text(entity[KEY[kind]])}` : `New ${one} in ${ws}`}</h2>
      <FormErrors error={error} fields={FIELDS[kind].map((f) => f.name)} />
      {note ? <p class="muted">{note}</p> : null}
      {FIELDS[kind].map((f) => {
        const v = values[f.name]!;
        const set = (nv: string | boolean) => setValues((prev) => ({ ...prev, [f.name]: nv }));
        if (f.kind === 'bool') {
          return (
            <Field key={f.name} label={f.label} name={f.name} error={apiError}>
              <input type="checkbox" name={f.name} checked={v as boolean} onChange={(e) => set((e.target as HTMLInputElement).checked)} />
            </Field>
          );
        }
        if (f.kind === 'select') {
          return (
            <Field key={f.name} label={f.label} name={f.name} error={apiError} hint={f.hint}>
              <select name={f.name} value={v as string} onChange={(e) => set((e.target as HTMLSelectElement).value)}>
                {f.options!.map((o) => (
                  <option key={o} value={o}>
                    {o}
                  </option>
                ))}
              </select>
            </Field>
          );
        }
        if (f.kind === 'json') {
          return (
            <Field key={f.name} label={f.label} name={f.name} error={apiError} hint={f.hint}>
              <textarea name={f.name} rows={8} class="mono" spellcheck={false} value={v as string} onInput={(e) => set((e.target as HTMLTextAreaElement).value)} />
            </Field>
          );
        }
        return (
          <Field key={f.name} label={f.label} name={f.name} error={apiError} hint={f.hint}>
            <input name={f.name} value={v as string} inputMode={f.kind === 'int' ? 'numeric' : undefined} onInput={(e) => set((e.target as HTMLInputElement).value)} />
          </Field>
        );
      })}
      <div class="form-actions">
        <button type="submit" class="primary" disabled={busy}>
          {entity ? 'Save' : `Create ${one}`}
        </button>
        <button type="button" onClick={() => props.done()}>
          Cancel
        </button>
      </div>
    </form>
  );
}

