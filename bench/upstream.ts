/**
 * The benchmark upstream: node:http answering 200 "ok" to everything.
 *   node dist/bench/upstream.js <port>
 * With --sink it is http-log's collector instead: every POST body is a JSON
 * entry or an array of entries, counted; GET /count answers
 * {"posts": N, "entries": N, "bytes": N}.
 */
import { createServer } from 'node:http';

const port = Number(process.argv[2]);
const sink = process.argv.includes('--sink');
const counts = { posts: 0, entries: 0, bytes: 0 };

createServer((req, res) => {
  if (!sink) {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' });
      res.end('ok');
    });
    return;
  }
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    if (req.method === 'GET' && req.url === '/count') {
      const text = JSON.stringify(counts);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
      return;
    }
    const body = Buffer.concat(chunks);
    counts.posts++;
    counts.bytes += body.length;
    try {
      const parsed = JSON.parse(body.toString('utf8')) as unknown;
      counts.entries += Array.isArray(parsed) ? parsed.length : 1;
    } catch {
      // Not JSON: counted as a post, not as an entry.
    }
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' });
    res.end('ok');
  });
}).listen(port, '127.0.0.1');
