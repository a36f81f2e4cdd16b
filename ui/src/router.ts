/** Client-side routes under /ui/ (the server answers index.html for each, host/admin/ui.ts). */
import { useEffect, useState } from 'preact/hooks';

export const BASE = '/ui';

const listeners = new Set<() => void>();

export function navigate(to: string): void {
  history.pushState(null, '', `${BASE}${to}`);
  listeners.forEach((fn) => fn());
}

/** The current path below /ui ("/hooks/new") and its query. */
export function useLocation(): { path: string; query: URLSearchParams } {
  const read = () => ({ path: location.pathname.slice(BASE.length) || '/', query: new URLSearchParams(location.search) });
  const [loc, setLoc] = useState(read);
  useEffect(() => {
    const update = () => setLoc(read());
    listeners.add(update);
    addEventListener('popstate', update);
    return () => {
      listeners.delete(update);
      removeEventListener('popstate', update);
    };
  }, []);
  return loc;
}
