/**
 * The admin listener: a small router over node:http. Today it serves the
 * operational endpoints (/metrics, /status, registered by the composition
 * root); the Admin API proper adds its routes with `route()`.
 *
 * When `admin.token` is set every request must carry it, as
 * `Authorization: Bearer <token>` or `Hookwire-Admin-Token: <token>`.
 */
import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Listener } from '../config/schema.js';
import { listen, type ListenerInfo } from '../proxy/gateway.js';

export type AdminHandler = (req: IncomingMessage, res: ServerResponse, url: URL) => void | Promise<void>;

export interface AdminServerOptions {
  readonly token: string | null;
  readonly logger: Logger;
}

/** Send a JSON body. */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body, null, 2) + '\n';
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export class AdminServer {
  private readonly routes = new Map<string, Map<string, AdminHandler>>();
  private readonly token: Buffer | null;
  private readonly logger: Logger;
  private server: Server | null = null;
  info: ListenerInfo | null = null;

  constructor(options: AdminServerOptions) {
    this.token = options.token === null ? null : Buffer.from(options.token, 'utf8');
    this.logger = options.logger;
  }

  /** Register `handler` for `method` on the exact `path` ("/metrics"). */
  route(method: string, path: string, handler: AdminHandler): this {
    let byMethod = this.routes.get(path);
    if (!byMethod) this.routes.set(path, (byMethod = new Map()));
    if (byMethod.has(method)) throw new TypeError(`admin route ${method} ${path} is already registered`);
    byMethod.set(method, handler);
    return this;
  }

  async listen(listener: Listener): Promise<ListenerInfo> {
    const server = createServer((req, res) => void this.handle(req, res));
    this.server = server;
    this.info = await listen(server, listener, 'admin');
    this.logger.info({ url: this.info.url }, `admin listening on ${this.info.url}`);
    return this.info;
  }

  /** Dispatch one request (the listener calls it; tests may too). */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://admin');
    try {
      if (!this.authorized(req)) {
        sendJson(res, 401, { message: 'Unauthorized: send the admin token (Authorization: Bearer <token>)' });
        return;
      }
      const byMethod = this.routes.get(url.pathname);
      if (!byMethod) {
        sendJson(res, 404, { message: 'Not found' });
        return;
      }
      const handler = byMethod.get(req.method ?? 'GET') ?? (req.method === 'HEAD' ? byMethod.get('GET') : undefined);
      if (!handler) {
        sendJson(res, 405, { message: 'Method not allowed' }, { allow: [...byMethod.keys()].join(', ') });
        return;
      }
      await handler(req, res, url);
    } catch (err) {
      this.logger.error({ err, path: url.pathname }, 'admin request failed');
      if (!res.headersSent) sendJson(res, 500, { message: 'An unexpected error occurred' });
      else res.destroy();
    }
  }

  private authorized(req: IncomingMessage): boolean {
    if (this.token === null) return true;
    const auth = req.headers.authorization;
    const given = auth?.startsWith('Bearer ') ? auth.slice(7) : req.headers['hookwire-admin-token'];
    if (typeof given !== 'string') return false;
    const bytes = Buffer.from(given, 'utf8');
    return bytes.length === this.token.length && timingSafeEqual(bytes, this.token);
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }
}
