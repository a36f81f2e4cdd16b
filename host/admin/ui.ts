/**
 * The dashboard's static files on the admin listener: `GET /ui/...` serves
 * what `npm run build:ui` wrote to dist/ui (a single-page app over the Admin
 * API). Public: the files hold no data; every API call the page makes
 * carries the admin token, so without it only the login form is usable.
 *
 *   /ui            → 308 to /ui/
 *   /ui/assets/*   → the file, cached for a year (the names carry a content hash)
 *   /ui/<route>    → index.html (client-side routes), never cached
 *
 * A path naming a parent (`..`), a hidden file or a separator inside a
 * segment is refused with 400; a missing file under /ui/assets/ is 404.
 */
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname, extname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AdminServer } from './server.js';

export const UI_PREFIX = '/ui';

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

/** Same origin only; styles may be set inline (uPlot and the page set element styles). */
const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
};

const IMMUTABLE = 'public, max-age=31536000, immutable';
const NO_CACHE = 'no-cache';

/** dist/ui of the package this module belongs to (from dist/host/admin or host/admin). */
export function defaultUiDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(dir, 'package.json'))) return join(dir, 'dist', 'ui');
    dir = dirname(dir);
  }
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'ui');
}

function reply(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), ...SECURITY_HEADERS, ...headers });
  res.end(body);
}

/**
 * The path segments below /ui/, percent-decoded, or null when one of them
 * could escape the folder or name a hidden file.
 */
export function uiSegments(pathname: string): string[] | null {
  const rest = pathname.slice(UI_PREFIX.length + 1);
  const out: string[] = [];
  for (const raw of rest.split('/')) {
    if (raw === '') continue;
    let seg: string;
    try {
      seg = decodeURIComponent(raw);
    } catch {
      return null;
    }
    if (seg.startsWith('.') || /[\\/\0:]/.test(seg)) return null;
    out.push(seg);
  }
  return out;
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/** Handle one request under /ui (the AdminServer mount calls it). */
export async function serveUi(dir: string, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
  const method = req.method ?? 'GET';
  if (method !== 'GET' && method !== 'HEAD') {
    reply(res, 405, 'Method not allowed: the dashboard is read with GET\n', { allow: 'GET, HEAD' });
    return;
  }
  if (url.pathname === UI_PREFIX) {
    reply(res, 308, '', { location: `${UI_PREFIX}/${url.search}` });
    return;
  }
  const segments = uiSegments(url.pathname);
  if (segments === null) {
    reply(res, 400, 'Bad path: the dashboard serves its own files only\n');
    return;
  }
  const index = join(dir, 'index.html');
  let file = index;
  let immutable = false;
  if (segments.length > 0) {
    const candidate = join(dir, ...segments);
    // Belt and braces: uiSegments already refused anything that could leave `dir`.
    if (!candidate.startsWith(dir + sep)) {
      reply(res, 400, 'Bad path: the dashboard serves its own files only\n');
      return;
    }
    if (await isFile(candidate)) {
      file = candidate;
      immutable = segments[0] === 'assets';
    } else if (segments[0] === 'assets' || extname(segments.at(-1)!) !== '') {
      // A missing asset is a 404, not the page: a stale tab must not parse HTML as a script.
      reply(res, 404, 'Not found\n');
      return;
    }
  }
  let body: Buffer;
  try {
    body = await readFile(file);
  } catch {
    reply(res, 404, 'The dashboard is not built: run `npm run build` (it writes dist/ui)\n');
    return;
  }
  res.writeHead(200, {
    'content-type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream',
    'content-length': body.length,
    'cache-control': immutable ? IMMUTABLE : NO_CACHE,
    ...SECURITY_HEADERS,
  });
  res.end(method === 'HEAD' ? undefined : body);
}

/** Serve the dashboard from `dir` (default: the package's dist/ui) under /ui/ on `admin`. */
export function registerUi(admin: AdminServer, dir: string = defaultUiDir()): void {
  admin.mount(UI_PREFIX, (req, res, url) => serveUi(dir, req, res, url));
}
