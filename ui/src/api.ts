/**
 * The Admin API client of the dashboard: same origin, the admin token (kept
 * in sessionStorage only, so it lasts for the browser session) sent as a
 * bearer token, errors as ApiError with the fields the API's 400 names.
 */

const TOKEN_KEY = 'hookwire.admin-token';

export function getToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(token: string | null): void {
  if (token === null) sessionStorage.removeItem(TOKEN_KEY);
  else sessionStorage.setItem(TOKEN_KEY, token);
}

/** An answer other than 2xx; `fields` maps a dotted field name (config.url) to the API's message about it. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly fields: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }

  /** Messages that name no field of `known` (shown at the top of a form). */
  unplaced(known: readonly string[]): string[] {
    const out = Object.entries(this.fields)
      .filter(([k]) => !known.some((f) => k === f || k.startsWith(`${f}.`)))
      .map(([k, v]) => (k === '@entity' ? v : `${k}: ${v}`));
    return out;
  }
}

/** Listeners told when the API answered 401 (the token is wrong or gone). */
const unauthorized = new Set<() => void>();
export function onUnauthorized(fn: () => void): () => void {
  unauthorized.add(fn);
  return () => unauthorized.delete(fn);
}

/** `/config/url` → `config.url`; "" → `@entity` (the API's naming, host/admin/http.ts). */
function dotted(pointer: string): string {
  if (pointer === '' || pointer === '/') return '@entity';
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .join('.');
}

function errorOf(status: number, body: unknown, text: string): ApiError {
  if (body !== null && typeof body === 'object') {
    const b = body as { message?: unknown; issues?: unknown };
    const fields: Record<string, string> = {};
    if (Array.isArray(b.issues)) {
      for (const i of b.issues as { path?: unknown; message?: unknown }[]) {
        if (typeof i.path !== 'string' || typeof i.message !== 'string') continue;
        const key = dotted(i.path);
        fields[key] = fields[key] ? `${fields[key]}; ${i.message}` : i.message;
      }
    }
    if (typeof b.message === 'string') return new ApiError(status, b.message, fields);
  }
  return new ApiError(status, text.trim() || `HTTP ${status}`);
}

/** One Admin API call; JSON in and out (text for non-JSON answers). */
export async function api<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  const token = getToken();
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(path, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  } catch (err) {
    throw new ApiError(0, `The admin listener did not answer (${(err as Error).message})`);
  }
  const text = await res.text();
  const isJson = (res.headers.get('content-type') ?? '').includes('json');
  let parsed: unknown = text;
  if (isJson && text !== '') {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = text;
    }
  }
  if (res.status === 401) unauthorized.forEach((fn) => fn());
  if (!res.ok) throw errorOf(res.status, parsed, text);
  return parsed as T;
}

export interface Page<T> {
  data: T[];
  next: string | null;
}

/** Every item of a paginated list, following `next` (at most `maxPages` pages). */
export async function listAll<T>(path: string, maxPages = 20): Promise<T[]> {
  const out: T[] = [];
  let next: string | null = path;
  for (let i = 0; next !== null && i < maxPages; i++) {
    const page: Page<T> = await api<Page<T>>('GET', next);
    out.push(...page.data);
    next = page.next;
  }
  return out;
}

export const enc = encodeURIComponent;
