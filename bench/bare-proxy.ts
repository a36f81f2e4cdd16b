/**
 * The baseline: a bare reverse proxy, node:http server -> undici Pool
 * (50 connections) -> upstream, the shape of performance-anchors §2.
 *   node dist/bench/bare-proxy.js <port> <upstream-url> [https|h2 <cert.pem> <key.pem>]
 * `https`: the same on node:https; `h2`: a node:http2 TLS server (ALPN h2,
 * HTTP/1.1 too) through its compatibility API. The upstream stays HTTP/1.1.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createSecureServer, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2';
import { createServer as createHttpsServer } from 'node:https';
import { readFileSync } from 'node:fs';
import { Pool } from 'undici';

const [port, upstream, mode, certFile, keyFile] = process.argv.slice(2);
if (!port || !upstream) throw new Error('usage: bare-proxy.js <port> <upstream-url> [https|h2 <cert.pem> <key.pem>]');
const pool = new Pool(upstream, { connections: 50 });

/** Headers HTTP/2 has no place for: pseudo-headers (they are the request line) and connection-specific ones (RFC 9113 8.2.2). */
const H2_DROPPED = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te']);

function h2Headers(headers: Record<string, string | string[] | undefined>): Record<string, string | string[] | undefined> {
  const out: Record<string, string | string[] | undefined> = {};
  for (const name of Object.keys(headers)) if (name.charCodeAt(0) !== 58 && !H2_DROPPED.has(name)) out[name] = headers[name];
  return out;
}

function handler(req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse): void {
  const h2 = req.httpVersionMajor === 2;
  const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
  pool
    .request({ path: req.url!, method: req.method as 'GET', headers: h2 ? h2Headers(req.headers) : req.headers, body: hasBody ? req : null })
    .then(({ statusCode, headers, body }) => {
      (res as ServerResponse).writeHead(statusCode, (h2 ? h2Headers(headers) : headers) as Record<string, string>);
      body.pipe(res as ServerResponse);
    })
    .catch(() => {
      res.statusCode = 502;
      res.end();
    });
}

if (mode === undefined) {
  createServer(handler).listen(Number(port), '127.0.0.1');
} else {
  if (!certFile || !keyFile) throw new Error(`${mode} needs <cert.pem> <key.pem>`);
  const tls = { cert: readFileSync(certFile), key: readFileSync(keyFile) };
  if (mode === 'https') createHttpsServer(tls, handler).listen(Number(port), '127.0.0.1');
  else if (mode === 'h2') createSecureServer({ ...tls, allowHTTP1: true }, handler).listen(Number(port), '127.0.0.1');
  else throw new Error(`unknown mode ${mode} (https or h2)`);
}
