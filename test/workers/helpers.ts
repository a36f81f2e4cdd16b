/** What the --workers tests share: requests over new connections and reading which worker served them. */
import { request as httpRequest } from 'node:http';
import type { Server } from '../helpers/cli.js';

/** The proxy and admin URLs once logged (generous: a loaded machine starts three processes). */
export async function urlsOf(server: Server): Promise<{ server: Server; proxy: string; admin: string }> {
  const proxy = (await server.waitFor((l) => typeof l.msg === 'string' && l.msg.startsWith('proxy listening'), 60_000)).url as string;
  const admin = (await server.waitFor((l) => typeof l.msg === 'string' && l.msg.startsWith('admin listening'), 60_000)).url as string;
  return { server, proxy, admin };
}

/** One request over a new connection (no keep-alive: the primary hands each connection to the next worker). */
export function fresh(url: string, body?: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { agent: false, method: body === undefined ? 'GET' : 'POST', headers: body === undefined ? {} : { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * The workers whose access log shows a request for `path` (from log line `from` on). The lines reach
 * the test through the workers' stdout, some after the responses: wait for them before reading this.
 */
export function servedBy(server: Server, path: string, status: number, from = 0): Set<number> {
  return new Set(server.lines.slice(from).filter((l) => l.path === path && l.status === status && typeof l.worker === 'number').map((l) => l.worker as number));
}
