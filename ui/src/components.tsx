/** Small pieces every page uses: links, times, empty states, errors, form fields. */
import { cloneElement, type ComponentChildren, type JSX } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { ApiError } from './api';
import { BASE, navigate } from './router';

/** A link inside the dashboard (a real <a>, so it works with the keyboard, middle click and copy). */
export function Link(props: { to: string; children: ComponentChildren; class?: string; 'aria-current'?: 'page' | undefined }) {
  const onClick = (e: MouseEvent) => {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(props.to);
  };
  return (
    <a href={`${BASE}${props.to}`} onClick={onClick} class={props.class} aria-current={props['aria-current']}>
      {props.children}
    </a>
  );
}

/** A time in the browser's zone; the UTC value on hover. */
export function Time({ ms }: { ms: number | null | undefined }) {
  if (ms === null || ms === undefined) return <span class="muted">—</span>;
  const d = new Date(ms);
  return (
    <time dateTime={d.toISOString()} title={`${d.toISOString().replace('T', ' ').replace('Z', ' UTC')}`}>
      {d.toLocaleString()}
    </time>
  );
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <p class="empty">{children}</p>;
}

/** An error where it happened. */
export function ErrorBox({ error }: { error: unknown }) {
  if (!error) return null;
  const msg = error instanceof Error ? error.message : String(error);
  return (
    <p class="error" role="alert">
      {msg}
    </p>
  );
}

/** Data loaded from the API, reloaded by `reload()` or every `everyMs`. */
export function useLoad<T>(load: () => Promise<T>, deps: readonly unknown[], everyMs?: number): { data: T | undefined; error: unknown; reload: () => void; loading: boolean } {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  const seq = useRef(0);
  useEffect(() => {
    const mine = ++seq.current;
    setLoading(true);
    load().then(
      (d) => {
        if (mine !== seq.current) return;
        setData(d);
        setError(null);
        setLoading(false);
      },
      (e) => {
        if (mine !== seq.current) return;
        setError(e);
        setLoading(false);
      },
    );
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick]);
  useEffect(() => {
    if (!everyMs) return;
    const t = setInterval(reload, everyMs);
    return () => clearInterval(t);
  }, [everyMs, reload]);
  return { data, error, reload, loading };
}

/** A labelled field with the API's message about it underneath. */
export function Field(props: { label: string; name: string; error?: ApiError | null; hint?: string; children: JSX.Element }) {
  // `config.headers.X-Foo` is shown at the `config.headers` field, with the header's name.
  const message =
    Object.entries(props.error?.fields ?? {})
      .filter(([k]) => k === props.name || k.startsWith(`${props.name}.`))
      .map(([k, v]) => (k === props.name ? v : `${k.slice(props.name.length + 1)}: ${v}`))
      .join('; ') || undefined;
  const id = `f-${props.name.replace(/\W/g, '-')}`;
  return (
    <div class={`field${message ? ' invalid' : ''}`} data-field={props.name}>
      <label for={id}>{props.label}</label>
      {cloneElement(props.children, { id, 'aria-invalid': message ? 'true' : undefined, 'aria-describedby': message ? `${id}-err` : undefined })}
      {props.hint && !message ? <small class="hint">{props.hint}</small> : null}
      {message ? (
        <small class="field-error" id={`${id}-err`} role="alert">
          {message}
        </small>
      ) : null}
    </div>
  );
}

/** The messages of `error` that no field on the form shows. */
export function FormErrors({ error, fields }: { error: ApiError | null | unknown; fields: readonly string[] }) {
  if (!error) return null;
  if (!(error instanceof ApiError)) return <ErrorBox error={error} />;
  const rest = error.unplaced(fields);
  const placed = Object.keys(error.fields).length > rest.length;
  return (
    <div class="error" role="alert">
      <p>{placed && rest.length === 0 ? 'The API refused some fields: see below.' : error.message}</p>
      {placed && rest.length > 0 ? (
        <ul>
          {rest.map((m) => (
            <li key={m}>{m}</li>
          ))}
        </ul>
      ) : null}
    </div>
  );
}

/** A state badge (succeeded, failed, pending, healthy...). */
export function Badge({ kind, children }: { kind: string; children: ComponentChildren }) {
  return <span class={`badge badge-${kind}`}>{children}</span>;
}

export function Spinner({ on }: { on: boolean }) {
  return on ? <span class="muted" aria-live="polite"> loading…</span> : null;
}
