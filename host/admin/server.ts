/**
 * The admin listener: a small router over node:http. The composition root
 * registers the operational endpoints and the Admin API (host/admin/api.ts)
 * with `route()`.
 *
 * Paths are templates: `/event-hooks/{id}` matches one segment per
 * parameter (percent-decoded). When several templates match a path, the most
 * specific wins: literal segments beat parameters, compared left to right
 * (`/event-hooks/sources` before `/event-hooks/{id}`, `/event-hooks/{id}`
 * before `/{workspace}/services`). A path that matches a template but not
 * with this method gets 405 with `Allow`; no template at all, 404.
 *
 * When `admin.token` is set every request must carry it, as
 * `Authorization: Bearer <token>` or `Hookwire-Admin-Token: <token>`,
 * except on routes registered as `public` (the ingest endpoint checks its
 * own token).
 *
 * `mount(prefix, handler)` hands a whole subtree (the dashboard's static
 * files under /ui/) to one public handler, for the paths no template matches.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Listener } from '../config/schema.js';
import { listen, type ListenerInfo } from '../proxy/gateway.js';
import { errorReply } from './http.js';
import { bearerToken, tokenMatches } from './auth.js';

export type RouteParams = Readonly<Record<string, string>>;

export type AdminHandler = (req: IncomingMessage, res: ServerResponse, url: URL, params: RouteParams) => void | Promise<void>;

export interface AdminServerOptions {
  readonly token: string | null;
  readonly logger: Logger;
}

export interface RouteOptions {
  /** Served without the admin token (the handler authenticates the request itself). */
  readonly public?: boolean;
}

/** One registered method and path template. */
export interface RegisteredRoute {
  readonly method: string;
  readonly path: string;
  readonly public: boolean;
}

/** Send a JSON body. */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body, null, 2) + '\n';
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

interface Template {
  readonly path: string;
  /** Literal segment, or null for a parameter. */
  readonly segments: readonly (string | null)[];
  readonly names: readonly string[];
  readonly methods: Map<string, { handler: AdminHandler; public: boolean }>;
}

const PARAM = /^\{([A-Za-z_][A-Za-z0-9_]*)\}$/;

function parseTemplate(path: string): { segments: (string | null)[]; names: string[] } {
  if (!path.startsWith('/')) throw new TypeError(`admin route ${path} must start with "/"`);
  const segments: (string | null)[] = [];
  const names: string[] = [];
  for (const seg of path.slice(1).split('/')) {
    const m = PARAM.exec(seg);
    if (m) {
      if (names.includes(m[1]!)) throw new TypeError(`admin route ${path} repeats the parameter ${m[1]}`);
      names.push(m[1]!);
      segments.push(null);
    } else if (seg.includes('{') || seg.includes('}')) {
      throw new TypeError(`admin route ${path}: a parameter must be a whole segment`);
    } else segments.push(seg);
  }
  return { segments, names };
}

/** Literal segments beat parameters, left to right. */
function moreSpecific(a: Template, b: Template): number {
  for (let i = 0; i < a.segments.length; i++) {
    const la = a.segments[i] !== null;
    const lb = b.segments[i] !== null;
    if (la !== lb) return la ? -1 : 1;
  }
  return 0;
}

/**
 * The URL of a request target: origin-form ("/path?query") or absolute-form
 * ("http://host/path", which HTTP/1.1 servers must accept); null for
 * anything else. A target starting "//" is refused rather than read as a
 * path: URL parsers take it for a host ("//a:b@", "//[" do not parse).
 */
export function requestTarget(raw: string): URL | null {
  if (raw.startsWith('/')) {
    if (raw.startsWith('//')) return null;
    // A fixed base glued in front: the target can only ever be the path and query.
    return parseUrl(`http://admin${raw}`);
  }
  if (!/^https?:\/\//i.test(raw)) return null;
  const url = parseUrl(raw);
  return url === null || !url.pathname.startsWith('/') ? null : url;
}

/** new URL() without throwing (URL.parse needs Node 20.18; engines allow 20.10). */
function parseUrl(text: string): URL | null {
  try {
    return new URL(text);
  } catch {
    return null;
  }
}

function clip(text: string): string {
  return text.length > 100 ? `${text.slice(0, 97)}...` : text;
}

export class AdminServer {
  /** Templates by segment count, most specific first. */
  private readonly templates = new Map<number, Template[]>();
  private readonly byPath = new Map<string, Template>();
  /** Public subtrees: a path equal to `prefix` or under `prefix/` goes to the handler. */
  private readonly mounts: { prefix: string; handler: AdminHandler }[] = [];
  private readonly token: string | null;
  private readonly logger: Logger;
  private server: Server | null = null;
  private inflight = 0;
  private idle: (() => void) | null = null;
  info: ListenerInfo | null = null;

  constructor(options: AdminServerOptions) {
    this.token = options.token;
    this.logger = options.logger;
  }

  /** Register `handler` for `method` on the path template `path` ("/metrics", "/event-hooks/{id}"). */
  route(method: string, path: string, handler: AdminHandler, options: RouteOptions = {}): this {
    let t = this.byPath.get(path);
    if (!t) {
      const { segments, names } = parseTemplate(path);
      const shape = segments.map((s) => s ?? '{}').join('/');
      for (const other of this.templates.get(segments.length) ?? []) {
        if (other.segments.map((s) => s ?? '{}').join('/') === shape) {
          throw new TypeError(`admin route ${path} is the same template as ${other.path}`);
        }
      }
      t = { path, segments, names, methods: new Map() };
      this.byPath.set(path, t);
      const list = this.templates.get(segments.length) ?? [];
      list.push(t);
      list.sort(moreSpecific);
      this.templates.set(segments.length, list);
    }
    if (t.methods.has(method)) throw new TypeError(`admin route ${method} ${path} is already registered`);
    t.methods.set(method, { handler, public: options.public ?? false });
    return this;
  }

  /** Serve every path equal to `prefix` or under `prefix/` that no route template matches with `handler`, without the admin token. */
  mount(prefix: string, handler: AdminHandler): this {
    if (!/^\/[^/{}]+$/.test(prefix)) throw new TypeError(`admin mount ${prefix} must be one literal segment ("/ui")`);
    if (this.mounts.some((m) => m.prefix === prefix)) throw new TypeError(`admin mount ${prefix} is already registered`);
    this.mounts.push({ prefix, handler });
    return this;
  }

  /** Every registered method and path, in registration order of the paths. */
  routes(): RegisteredRoute[] {
    return [...this.byPath.values()].flatMap((t) => [...t.methods].map(([method, r]) => ({ method, path: t.path, public: r.public })));
  }

  /** The most specific template matching `pathname`, with its parameters; null when none does. */
  match(pathname: string): { template: Template; params: Record<string, string> } | null {
    const parts = pathname.slice(1).split('/');
    for (const t of this.templates.get(parts.length) ?? []) {
      const params: Record<string, string> = {};
      let ok = true;
      let p = 0;
      for (let i = 0; i < parts.length && ok; i++) {
        const seg = t.segments[i];
        if (seg === null) {
          let value: string;
          try {
            value = decodeURIComponent(parts[i]!);
          } catch {
            value = parts[i]!;
          }
          if (value === '') ok = false;
          else params[t.names[p++]!] = value;
        } else if (seg !== parts[i]) ok = false;
      }
      if (ok) return { template: t, params };
    }
    return null;
  }

  async listen(listener: Listener): Promise<ListenerInfo> {
    const server = createServer((req, res) => {
      // handle() answers every failure itself; this catch is the last guard, so a request can never
      // become an unhandled rejection (which would end the process).
      this.handle(req, res).catch((err: unknown) => {
        this.logger.error({ err }, 'admin request failed outside its handler');
        res.destroy();
      });
    });
    this.server = server;
    this.info = await listen(server, listener, 'admin');
    this.logger.info({ url: this.info.url }, `admin listening on ${this.info.url}`);
    return this.info;
  }

  /** Dispatch one request (the listener calls it; tests may too). Never rejects for a failed handler: it answers 500. */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.inflight++;
    let url: URL | null = null;
    try {
      url = requestTarget(req.url ?? '/');
      if (url === null) {
        sendJson(res, 400, { message: `Bad request target ${JSON.stringify(clip(req.url ?? ''))}: send a path starting with a single "/"` }, { connection: 'close' });
        return;
      }
      const target = url;
      const found = this.match(target.pathname);
      // Templates first: `/ui/services` is workspace "ui"'s API (token required), not a page.
      const mount = found ? undefined : this.mounts.find((m) => target.pathname === m.prefix || target.pathname.startsWith(`${m.prefix}/`));
      if (mount) {
        await mount.handler(req, res, url, {});
        return;
      }
      const method = req.method ?? 'GET';
      const entry = found ? (found.template.methods.get(method) ?? (method === 'HEAD' ? found.template.methods.get('GET') : undefined)) : undefined;
      if (!entry?.public && !this.authorized(req)) {
        sendJson(res, 401, { message: 'Unauthorized: send the admin token (Authorization: Bearer <token>)' });
        return;
      }
      if (!found) {
        sendJson(res, 404, { message: 'Not found' });
        return;
      }
      if (!entry) {
        sendJson(res, 405, { message: 'Method not allowed' }, { allow: [...found.template.methods.keys()].join(', ') });
        return;
      }
      await entry.handler(req, res, url, found.params);
    } catch (err) {
      const reply = errorReply(err);
      let body = reply.body;
      if (reply.status >= 500) {
        // The id ties the answer to the log line (made only here: a request that succeeds costs nothing).
        const requestId = randomUUID();
        body = { ...body, request_id: requestId };
        this.logger.error({ err, request_id: requestId, method: req.method, path: url?.pathname }, 'admin request failed');
      }
      if (!res.headersSent) sendJson(res, reply.status, body, reply.headers);
      else res.destroy();
    } finally {
      if (--this.inflight === 0) this.idle?.();
    }
  }

  private authorized(req: IncomingMessage): boolean {
    if (this.token === null) return true;
    const header = req.headers['hookwire-admin-token'];
    return tokenMatches(bearerToken(req) ?? (typeof header === 'string' ? header : undefined), this.token);
  }

  /** Stop accepting connections; requests being handled get up to `graceMs` (default 0) to finish. */
  async close(options: { graceMs?: number } = {}): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    if (this.inflight > 0 && (options.graceMs ?? 0) > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, options.graceMs);
        this.idle = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.idle = null;
    }
    server.closeAllConnections();
    await closed;
  }
}
