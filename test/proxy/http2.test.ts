// HTTP/2 to clients: ALPN h2 on a TLS listener (HTTP/1.1 still served there), prior-knowledge h2c on a plaintext
// one, through a filter that adds headers; pseudo-headers as Envoy shows them, request.protocol HTTP/2; the
// upstream stays HTTP/1.1.
import { connect, type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';
import { request as httpsRequest } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Gateway } from '../../host/proxy/gateway.js';
import { memoryLogger, testConfig } from '../helpers/gateway.js';
import { fixture } from '../helpers/paths.js';
import { TestCa, type CertFiles } from '../helpers/tls.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';

let upstream: Upstream;
let ca: TestCa;
let cert: CertFiles;
let gateway: Gateway;

const filtered = {
  name: 'h2-filter',
  wasm: fixture('proxy-filter'),
  configuration: { name: 'h2', request_header: 'x-h2-filter', request_value: 'seen', response_header: 'x-h2-resp', props: ['request.protocol', 'request.scheme', 'request.host', 'request.path', 'connection.tls_version', 'connection.requested_server_name'] },
};

beforeAll(async () => {
  upstream = await startUpstream();
  ca = new TestCa();
  cert = ca.issue('h2', { cn: 'h2.test', dnsNames: ['h2.test'] });
  gateway = await Gateway.start(
    testConfig({
      proxy: {
        listen: [
          { address: '127.0.0.1', port: 0, http2: true, tls: { certificates: [cert] } },
          { address: '127.0.0.1', port: 0, http2: true },
        ],
      },
      services: [{ name: 'echo', url: upstream.url }],
      routes: [
        { name: 'all', service: 'echo', paths: ['/'], plugins: [filtered] },
        { name: 'direct', service: 'echo', paths: ['/direct'] },
      ],
    }),
    { logger: memoryLogger().logger },
  );
});

afterAll(async () => {
  await gateway?.close({ drainTimeoutMs: 1000 });
  await upstream?.close();
  ca?.remove();
});

function h2Request(session: ClientHttp2Session, headers: Record<string, string>, body?: string): Promise<{ headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers, { endStream: body === undefined });
    let head: IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    stream.on('response', (h) => (head = h));
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve({ headers: head, body: Buffer.concat(chunks).toString('utf8') }));
    stream.on('error', reject);
    stream.setTimeout(5000, () => stream.close());
    if (body !== undefined) stream.end(body);
  });
}

describe('HTTP/2 to clients', () => {
  it('ALPN h2 on a TLS listener: through a filter that adds headers, pseudo-headers and request.protocol as Envoy has them', async () => {
    const session = connect(gateway.listeners[0]!.url, { ca: ca.read(ca.cert), servername: 'h2.test' });
    try {
      const r = await h2Request(session, { ':method': 'GET', ':path': '/h2/get?x=1', ':authority': 'api.h2.test', 'x-client': 'one' });
      expect(r.headers[':status']).toBe(200);
      expect(r.headers['x-h2-resp']).toBe('1');
      expect(r.headers['x-prop-request-protocol']).toBe('HTTP/2');
      expect(r.headers['x-prop-request-scheme']).toBe('https');
      expect(r.headers['x-prop-request-host']).toBe('api.h2.test');
      expect(r.headers['x-prop-request-path']).toBe('/h2/get?x=1');
      // The TLS attributes through node:http2's socket proxy.
      expect(r.headers['x-prop-connection-tls_version']).toBe('TLSv1.3');
      expect(r.headers['x-prop-connection-requested_server_name']).toBe('h2.test');
      const echo = JSON.parse(r.body);
      // HTTP/1.1 upstream: no pseudo-headers, the service's Host, the filter's header.
      expect(echo.url).toBe('/h2/get?x=1');
      expect(echo.headers).toMatchObject({ 'x-h2-filter': 'seen', 'x-client': 'one', host: new URL(upstream.url).host, 'x-forwarded-proto': 'https', 'x-forwarded-host': 'api.h2.test' });
      expect(echo.rawHeaders.filter((n: string) => n.startsWith(':'))).toEqual([]);

      // A body without content-length (HTTP/2 frames it) still reaches the upstream.
      const post = await h2Request(session, { ':method': 'POST', ':path': '/h2/post' }, 'hello over h2');
      expect(post.headers[':status']).toBe(200);
      expect(JSON.parse(post.body)).toMatchObject({ method: 'POST', body: 'hello over h2' });
    } finally {
      session.close();
    }
  });

  it('still serves HTTP/1.1 clients on the same TLS listener', async () => {
    const u = new URL(gateway.listeners[0]!.url);
    const reply = await new Promise<{ status: number; protocol: string }>((resolve, reject) => {
      const req = httpsRequest({ host: u.hostname, port: Number(u.port), path: '/h1', ca: ca.read(ca.cert), servername: 'h2.test', agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode!, protocol: String(res.headers['x-prop-request-protocol']) }));
      });
      req.on('error', reject);
      req.end();
    });
    expect(reply).toEqual({ status: 200, protocol: 'HTTP/1.1' });
  });

  it('h2c (prior knowledge) on a plaintext listener with http2: true', async () => {
    const session = connect(gateway.listeners[1]!.url);
    try {
      const r = await h2Request(session, { ':method': 'GET', ':path': '/h2c' });
      expect(r.headers[':status']).toBe(200);
      expect(r.headers['x-prop-request-protocol']).toBe('HTTP/2');
      expect(r.headers['x-prop-request-scheme']).toBe('http');
      expect(JSON.parse(r.body).headers['x-h2-filter']).toBe('seen');
      // A route without filters (the direct path) too, with a streamed body.
      const direct = await h2Request(session, { ':method': 'PUT', ':path': '/direct/x' }, 'direct body');
      expect(direct.headers[':status']).toBe(200);
      expect(JSON.parse(direct.body)).toMatchObject({ method: 'PUT', url: '/direct/x', body: 'direct body' });
    } finally {
      session.close();
    }
  });

  it('shutdown does not wait for an idle HTTP/2 session the client keeps open', async () => {
    const own = await Gateway.start(
      testConfig({ proxy: { listen: [{ address: '127.0.0.1', port: 0, http2: true }] }, services: [{ name: 'echo', url: upstream.url }], routes: [{ name: 'r', service: 'echo', paths: ['/'] }] }),
      { logger: memoryLogger().logger },
    );
    const session = connect(own.listeners[0]!.url);
    session.on('error', () => undefined);
    expect((await h2Request(session, { ':method': 'GET', ':path': '/idle' })).headers[':status']).toBe(200);
    const goaway = new Promise<void>((resolve) => session.once('goaway', () => resolve()));
    await own.close({ drainTimeoutMs: 1000 });
    await goaway;
    session.destroy();
  });
});
