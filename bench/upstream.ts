/**
 * The benchmark upstream: node:http answering 200 "ok" to everything.
 *   node dist/bench/upstream.js <port>
 */
import { createServer } from 'node:http';

const port = Number(process.argv[2]);
createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' });
    res.end('ok');
  });
}).listen(port, '127.0.0.1');
