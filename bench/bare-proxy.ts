/**
 * The baseline: a bare reverse proxy, node:http server -> undici Pool
 * (50 connections) -> upstream, the shape of performance-anchors §2.
 *   node dist/bench/bare-proxy.js <port> <upstream-url>
 */
import { createServer } from 'node:http';
import { Pool } from 'undici';

const [port, upstream] = process.argv.slice(2);
if (!port || !upstream) throw new Error('usage: bare-proxy.js <port> <upstream-url>');
const pool = new Pool(upstream, { connections: 50 });

createServer((req, res) => {
  const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
  pool
    .request({ path: req.url!, method: req.method as 'GET', headers: req.headers, body: hasBody ? req : null })
    .then(({ statusCode, headers, body }) => {
      res.writeHead(statusCode, headers as Record<string, string>);
      body.pipe(res);
    })
    .catch(() => {
      res.statusCode = 502;
      res.end();
    });
}).listen(Number(port), '127.0.0.1');
