/**
 * A real upstream for data-plane tests: node:http on 127.0.0.1, port 0.
 *   GET/POST /...           200, JSON echo {method, url, headers (lower-case, joined), body}
 *   /status/NNN             that status, echo body (none for 204 and 304)
 *   /slow?ms=N              answers after N ms (bounded to 10 s)
 *   /hang                   never answers (until the server closes)
 *   /big?bytes=N            N bytes of "x" (bounded to 16 MiB)
 *   /trailers               a chunked body followed by the trailer x-trailer
 *   /chunks?n=N&ms=M        N chunks "chunk-i\n", M ms apart
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Echo {
  method: string;
  url: string;
  headers: Record<string, string>;
  /** Raw header pairs as received (names as sent). */
  rawHeaders: string[];
  body: string;
}

export interface Upstream {
  readonly url: string;
  readonly port: number;
  /** Requests received, in order. */
  readonly received: Echo[];
  close(): Promise<void>;
}

export async function startUpstream(): Promise<Upstream> {
  const received: Echo[] = [];
  const hanging = new Set<ServerResponse>();
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) headers[k] = Array.isArray(v) ? v.join(', ') : String(v);
      const echo: Echo = { method: req.method!, url: req.url!, headers, rawHeaders: req.rawHeaders, body: Buffer.concat(chunks).toString('utf8') };
      received.push(echo);
      const url = new URL(req.url!, 'http://upstream');
      const num = (name: string, fallback: number, max: number) => Math.min(Number(url.searchParams.get(name) ?? fallback), max);
      if (url.pathname === '/hang') {
        hanging.add(res);
        return;
      }
      if (url.pathname === '/big') {
        const body = Buffer.alloc(num('bytes', 1024, 16 << 20), 'x');
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
        res.end(body);
        return;
      }
      if (url.pathname === '/trailers') {
        res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-trailer' });
        res.write('with trailers');
        res.addTrailers({ 'x-trailer': 'trailer-value' });
        res.end();
        return;
      }
      if (url.pathname === '/chunks') {
        const n = num('n', 3, 100);
        const ms = num('ms', 10, 1000);
        res.writeHead(200, { 'content-type': 'text/plain' });
        let i = 0;
        const timer = setInterval(() => {
          if (res.destroyed) return clearInterval(timer);
          res.write(`chunk-${i}\n`);
          if (++i === n) {
            clearInterval(timer);
            res.end();
          }
        }, ms);
        return;
      }
      const statusMatch = /^\/status\/(\d{3})$/.exec(url.pathname);
      const status = statusMatch ? Number(statusMatch[1]) : 200;
      const send = () => {
        if (status === 204 || status === 304) {
          res.writeHead(status, { 'x-upstream': 'yes' });
          res.end();
          return;
        }
        const text = JSON.stringify(echo);
        res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'x-upstream': 'yes' });
        res.end(text);
      };
      if (url.pathname === '/slow') setTimeout(send, num('ms', 100, 10_000));
      else send();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    received,
    async close() {
      for (const res of hanging) res.destroy();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

/** A port with nothing listening on it (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
