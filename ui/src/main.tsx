/**
 * The hookwire dashboard: a single page over the Admin API, served by the
 * admin listener under /ui/. When admin.token is set it asks for the token
 * once and keeps it in sessionStorage (this browser session only).
 */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, getToken, onUnauthorized, setToken } from './api';
import { ErrorBox, Link } from './components';
import { Deliveries } from './pages/Deliveries';
import { Gateway } from './pages/Gateway';
import { HookForm, HookList } from './pages/Hooks';
import { Overview } from './pages/Overview';
import { Sources } from './pages/Sources';
import { useLocation } from './router';
import './style.css';

type Auth = 'checking' | 'needed' | 'ok';

function Login({ onDone, wrong }: { onDone: () => void; wrong: boolean }) {
  const [token, setValue] = useState('');
  const [error, setError] = useState<unknown>(wrong ? new Error('The token was refused: enter it again') : null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setToken(token);
    try {
      await api('GET', '/status');
      onDone();
    } catch (err) {
      setToken(null);
      setError(err instanceof ApiError && err.status === 401 ? new Error('Wrong token: the admin listener refused it') : err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="login">
      <form onSubmit={(e) => void submit(e)} aria-label="sign in">
        <h1>hookwire</h1>
        <p>This admin listener needs its token (<code>admin.token</code>). It is kept for this browser session only.</p>
        <label for="token">Admin token</label>
        <input id="token" name="token" type="password" autoComplete="current-password" required autoFocus value={token} onInput={(e) => setValue((e.target as HTMLInputElement).value)} />
        <ErrorBox error={error} />
        <button type="submit" class="primary" disabled={busy || token === ''}>
          Sign in
        </button>
      </form>
    </main>
  );
}

const NAV: readonly { to: string; label: string; match: (p: string) => boolean }[] = [
  { to: '/', label: 'Overview', match: (p) => p === '/' },
  { to: '/hooks', label: 'Event hooks', match: (p) => p.startsWith('/hooks') },
  { to: '/deliveries', label: 'Deliveries', match: (p) => p.startsWith('/deliveries') },
  { to: '/sources', label: 'Sources', match: (p) => p.startsWith('/sources') },
  { to: '/gateway', label: 'Gateway', match: (p) => p.startsWith('/gateway') },
];

function Page() {
  const { path, query } = useLocation();
  useEffect(() => {
    const label = NAV.find((n) => n.match(path))?.label;
    document.title = label ? `${label} · hookwire` : 'hookwire';
  }, [path]);
  if (path === '/') return <Overview />;
  if (path === '/hooks') return <HookList />;
  if (path === '/hooks/new') return <HookForm id={null} query={query} />;
  const hook = /^\/hooks\/([^/]+)$/.exec(path);
  if (hook) return <HookForm id={decodeURIComponent(hook[1]!)} query={query} />;
  if (path === '/deliveries') return <Deliveries query={query} />;
  if (path === '/sources') return <Sources />;
  if (path === '/gateway') return <Gateway query={query} />;
  return (
    <section>
      <h1>Not found</h1>
      <p>
        No page at <code>{path}</code>: <Link to="/">back to the overview</Link>.
      </p>
    </section>
  );
}

function App() {
  const [auth, setAuth] = useState<Auth>('checking');
  const [wrong, setWrong] = useState(false);
  const { path } = useLocation();

  useEffect(() => {
    api('GET', '/status').then(
      () => setAuth('ok'),
      (err) => setAuth(err instanceof ApiError && err.status === 401 ? 'needed' : 'ok'),
    );
    return onUnauthorized(() => {
      setWrong(getToken() !== null);
      setToken(null);
      setAuth('needed');
    });
  }, []);

  if (auth === 'checking') return <p class="muted">Connecting…</p>;
  if (auth === 'needed') return <Login wrong={wrong} onDone={() => setAuth('ok')} />;
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <span class="brand">hookwire</span>
        <nav aria-label="pages">
          {NAV.map((n) => (
            <Link key={n.to} to={n.to} aria-current={n.match(path) ? 'page' : undefined}>
              {n.label}
            </Link>
          ))}
        </nav>
        {getToken() !== null ? (
          <button
            type="button"
            class="link"
            onClick={() => {
              setToken(null);
              setWrong(false);
              setAuth('needed');
            }}
          >
            Sign out
          </button>
        ) : null}
      </header>
      <main id="main" tabIndex={-1}>
        <Page />
      </main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
