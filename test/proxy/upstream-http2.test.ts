// HTTP/2 upstreams (a service's `http2`): h2 negotiated by ALPN over TLS, verified with the service's ca_file,
// and prior-knowledge h2c over plaintext; the filter chain unchanged (a filter's request header arrives, upstream.*
// properties and the access log line are right), connection-specific headers never reach the upstream, HTTP/1.1
// and HTTP/2 clients both served. Upstreams are real node:http2 servers on 127.0.0.1.
import { readFileSync, writeFileSync } from 'node:fs';
import { connect, createSecureServer, createServer, type Http2ServerRequest, type Http2ServerResponse, type IncomingHttpHeaders } from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, type ConfigIssue } from '../../host/errors.js';
import { ReloadError, TlsConfigError } from '../../host/proxy/errors.js';
import { Gateway } from '../../host/proxy/gateway.js';
import { memoryLogger, rawRequest, send, testConfig, type LogLine } from '../helpers/gateway.js';
import { fixture } from '../helpers/paths.js';
import { TestCa, type CertFiles } from '../helpers/tls.js';
import { openWebSocket, startWebSocketEcho } from '../helpers/websocket.js';

interface Seen {
  readonly version: string;
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

interface H2Upstream {
  readonly url: string;
  readonly seen: Seen[];
  close(): Promise<void>;
}

/** node:http2 answering 201 with `x-upstream` and "<httpVersion> <method> <body>"; TLS (h2 and HTTP/1.1 by ALPN) with `cert`, h2c without. */
async function startH2Upstream(cert: CertFiles | null): Promise<H2Upstream> {
  const seen: Seen[] = [];
  const handler = (req: Http2ServerRequest, res: Http2ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      seen.push({ version: req.httpVersion, method: req.method, path: req.url, headers: { ...req.headers }, body });
      res.writeHead(201, { 'content-type': 'text/plain', 'x-upstream': 'h2-upstream' });
      res.end(`${req.httpVersion} ${req.method} ${body}`);
    });
  };
  const server = cert
    ? createSecureServer({ cert: readFileSync(cert.cert), key: readFileSync(cert.key), allowHTTP1: true }, handler)
    : createServer(handler);
  const sockets = new Set<Socket>();
  server.on(cert ? 'secureConnection' : 'connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `${cert ? 'https' : 'http'}://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

function h2Request(url: string, headers: Record<string, string>, body?: string): Promise<{ headers: IncomingHttpHeaders; body: string }> {
  const session = connect(url);
  return new Promise<{ headers: IncomingHttpHeaders; body: string }>((resolve, reject) => {
    session.on('error', reject);
    const stream = session.request(headers, { endStream: body === undefined });
    let head: IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    stream.on('response', (h) => (head = h));
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve({ headers: head, body: Buffer.concat(chunks).toString('utf8') }));
    stream.on('error', reject);
    stream.setTimeout(5000, () => stream.close());
    if (body !== undefined) stream.end(body);
  }).finally(() => session.close());
}

/** The connection-specific headers RFC 9113 8.2.2 forbids in HTTP/2 (and the Host header, which becomes :authority). */
// `TE: trailers` is the exception, forwarded (see the te test); the hop-by-hop test sends it besides a named hop.
const CONNECTION_SPECIFIC = ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'host'];

let ca: TestCa;
let tlsUp: H2Upstream;
let h2cUp: H2Upstream;
let gateway: Gateway;
let lines: LogLine[];
let h1Url: string;
let h2cListenerUrl: string;

const filter = {
  name: 'up-filter',
  wasm: fixture('proxy-filter'),
  configuration: {
    name: 'up',
    request_header: 'x-up-filter',
    request_value: 'added',
    response_header: 'x-up-resp',
    props: ['upstream.address', 'hookwire.upstream_uri', 'hookwire.upstream_status', 'request.protocol'],
  },
};

beforeAll(async () => {
  ca = new TestCa();
  tlsUp = await startH2Upstream(ca.issue('upstream', { cn: '127.0.0.1', ips: ['127.0.0.1'] }));
  h2cUp = await startH2Upstream(null);
  const log = memoryLogger();
  lines = log.lines;
  gateway = await Gateway.start(
    testConfig({
      proxy: { listen: [{ address: '127.0.0.1', port: 0 }, { address: '127.0.0.1', port: 0, http2: true }] },
      services: [
        { name: 'h2-tls', url: `${tlsUp.url}/base`, http2: true, ca_file: ca.cert },
        { name: 'h1-tls', url: tlsUp.url, ca_file: ca.cert },
        { name: 'h2c', url: h2cUp.url, http2: true },
        { name: 'untrusted', url: tlsUp.url, http2: true },
      ],
      routes: [
        { name: 'tls', service: 'h2-tls', paths: ['/tls'], strip_path: true, plugins: [filter] },
        { name: 'h1', service: 'h1-tls', paths: ['/h1'] },
        { name: 'h2c', service: 'h2c', paths: ['/h2c'], plugins: [{ ...filter, name: 'up-filter-h2c' }] },
        { name: 'untrusted', service: 'untrusted', paths: ['/untrusted'] },
      ],
    }),
    { logger: log.logger },
  );
  h1Url = gateway.listeners[0]!.url;
  h2cListenerUrl = gateway.listeners[1]!.url;
});

afterAll(async () => {
  await gateway?.close({ drainTimeoutMs: 1000 });
  await tlsUp?.close();
  await h2cUp?.close();
  ca?.remove();
});

describe('HTTP/2 upstreams', () => {
  it('an HTTP/1.1 client, through a filter that adds a header, reaches a TLS upstream over HTTP/2 (ALPN, verified by ca_file)', async () => {
    const before = tlsUp.seen.length;
    const r = await send(`${h1Url}/tls/items?x=1`, { method: 'POST', headers: { 'x-client': 'c1', 'content-type': 'text/plain' }, body: 'h1 body' });
    expect(r.status).toBe(201);
    expect(r.text).toBe('2.0 POST h1 body');
    expect(r.headers['x-upstream']).toBe('h2-upstream');
    expect(r.headers['x-up-resp']).toBe('1');
    const port = new URL(tlsUp.url).port;
    expect(r.headers['x-prop-upstream-address']).toBe(`127.0.0.1:${port}`);
    expect(r.headers['x-prop-hookwire-upstream_uri']).toBe('/base/items?x=1');
    expect(r.headers['x-prop-hookwire-upstream_status']).toBe('201');
    expect(r.headers['x-prop-request-protocol']).toBe('HTTP/1.1');

    expect(tlsUp.seen).toHaveLength(before + 1);
    const seen = tlsUp.seen[before]!;
    expect(seen.version).toBe('2.0');
    expect(seen.path).toBe('/base/items?x=1');
    expect(seen.body).toBe('h1 body');
    // :authority from the service's URL (Kong's preserve_host off), the filter's header, the client's.
    expect(seen.headers).toMatchObject({ ':authority': `127.0.0.1:${port}`, ':scheme': 'https', ':method': 'POST', 'x-up-filter': 'added', 'x-client': 'c1' });

    const line = lines.find((l) => l.msg === 'request' && l.path === '/tls/items?x=1');
    expect(line).toMatchObject({ status: 201, route: 'tls', service: 'h2-tls', completed: true });
  });

  it('connection-specific headers of an HTTP/1.1 request never reach the HTTP/2 upstream', async () => {
    const before = tlsUp.seen.length;
    const host = new URL(h1Url).host;
    const raw = await rawRequest(
      h1Url,
      `GET /tls/hop HTTP/1.1\r\nHost: ${host}\r\nConnection: close, x-named-hop\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\nx-named-hop: 1\r\nx-kept: yes\r\n\r\n`,
    );
    expect(raw.startsWith('HTTP/1.1 201')).toBe(true);
    const seen = tlsUp.seen[before]!;
    expect(seen.version).toBe('2.0');
    for (const name of [...CONNECTION_SPECIFIC, 'x-named-hop']) expect(seen.headers[name], name).toBeUndefined();
    expect(seen.headers['x-kept']).toBe('yes');
  });

  it('te: trailers (what gRPC sends) reaches the HTTP/2 upstream as Envoy forwards it; any other TE is dropped', async () => {
    const host = new URL(h1Url).host;
    for (const [te, expected] of [
      ['trailers', 'trailers'],
      ['deflate;q=0.5, Trailers', 'trailers'],
      ['gzip', undefined],
    ] as const) {
      const before = tlsUp.seen.length;
      const raw = await rawRequest(h1Url, `GET /tls/te HTTP/1.1\r\nHost: ${host}\r\nConnection: close, TE\r\nTE: ${te}\r\n\r\n`);
      expect(raw.startsWith('HTTP/1.1 201'), te).toBe(true);
      expect(tlsUp.seen[before]!.headers.te, te).toBe(expected);
    }
  });

  it('an HTTP/2 client (h2c listener) reaches the same upstream over HTTP/2 too', async () => {
    const before = tlsUp.seen.length;
    const r = await h2Request(h2cListenerUrl, { ':method': 'PUT', ':path': '/tls/from-h2', 'x-client': 'c2' }, 'h2 body');
    expect(r.headers[':status']).toBe(201);
    expect(r.headers['x-upstream']).toBe('h2-upstream');
    expect(r.headers['x-prop-request-protocol']).toBe('HTTP/2');
    expect(r.body).toBe('2.0 PUT h2 body');
    const seen = tlsUp.seen[before]!;
    expect(seen).toMatchObject({ version: '2.0', method: 'PUT', path: '/base/from-h2', body: 'h2 body' });
    expect(seen.headers).toMatchObject({ 'x-up-filter': 'added', 'x-client': 'c2' });
  });

  it('h2c (prior knowledge) to a plaintext upstream', async () => {
    const r = await send(`${h1Url}/h2c/plain`, { headers: { 'x-client': 'c3' } });
    expect(r.status).toBe(201);
    expect(r.text).toBe('2.0 GET ');
    expect(r.headers['x-prop-upstream-address']).toBe(`127.0.0.1:${new URL(h2cUp.url).port}`);
    const seen = h2cUp.seen.at(-1)!;
    expect(seen).toMatchObject({ version: '2.0', path: '/h2c/plain' });
    expect(seen.headers).toMatchObject({ ':scheme': 'http', 'x-up-filter': 'added', 'x-client': 'c3' });
  });

  it('without http2 the same TLS upstream is reached over HTTP/1.1 (ca_file verifies it too)', async () => {
    const r = await send(`${h1Url}/h1/one`);
    expect(r.status).toBe(201);
    expect(r.text).toBe('1.1 GET ');
    expect(tlsUp.seen.at(-1)!.version).toBe('1.1');
  });

  it('verification stays on: an upstream certificate from an unknown CA is a 502, the upstream never sees the request', async () => {
    const before = tlsUp.seen.length;
    const r = await send(`${h1Url}/untrusted/x`);
    expect(r.status).toBe(502);
    expect(tlsUp.seen).toHaveLength(before);
    const failure = lines.find((l) => l.msg === 'upstream request failed' && l.service === 'untrusted');
    expect(String(failure?.reason)).toMatch(/UNABLE_TO_VERIFY_LEAF_SIGNATURE|certificate/i);
  });
});

describe('ca_file on upgrades', () => {
  it('a WebSocket upgrade to a wss:// upstream is verified with the service ca_file (and refused without it)', async () => {
    const echo = await startWebSocketEcho(ca.issue('wss-upstream', { cn: '127.0.0.1', ips: ['127.0.0.1'] }));
    const own = await Gateway.start(
      testConfig({
        services: [
          { name: 'wss', url: echo.url, http2: true, ca_file: ca.cert },
          { name: 'wss-untrusted', url: echo.url },
        ],
        routes: [
          { name: 'wss', service: 'wss', paths: ['/wss'] },
          { name: 'wss-untrusted', service: 'wss-untrusted', paths: ['/untrusted'] },
        ],
      }),
      { logger: memoryLogger().logger },
    );
    try {
      const ws = await openWebSocket(own.listeners[0]!.url, '/wss/chat');
      expect(ws.status).toBe(101);
      expect(await ws.roundTrip('over wss')).toBe('echo: over wss');
      await ws.close();
      const refused = await openWebSocket(own.listeners[0]!.url, '/untrusted/chat');
      expect(refused.status).toBe(502);
      refused.socket.destroy();
      expect(echo.upgrades).toHaveLength(1);
    } finally {
      await own.close({ drainTimeoutMs: 1000 });
      await echo.close();
    }
  });
});

describe('ca_file errors', () => {
  function issuesOf(doc: Record<string, unknown>): readonly ConfigIssue[] {
    try {
      testConfig(doc);
    } catch (err) {
      if (err instanceof ConfigError) return err.issues;
      throw err;
    }
    return [];
  }

  it('a ca_file on a service with no https:// URL is refused, naming the field', () => {
    expect(issuesOf({ services: [{ name: 's', url: 'http://127.0.0.1:9', ca_file: 'ca.pem' }], routes: [{ name: 'r', service: 's' }] })).toEqual([
      { path: '/services/0/ca_file', message: 'verifies https:// upstreams only (this service has no https:// URL); remove it or use https://' },
    ]);
    // One https URL among several is enough.
    expect(issuesOf({ services: [{ name: 's', urls: ['http://127.0.0.1:9', 'https://127.0.0.1:10'], ca_file: 'ca.pem' }] })).toEqual([]);
  });

  it('a ca_file that cannot be read, or is not PEM, stops the start naming the file', async () => {
    const missing = join(ca.dir, 'missing.pem');
    const config = (file: string) => testConfig({ services: [{ name: 's', url: tlsUp.url, ca_file: file }], routes: [{ name: 'r', service: 's' }] });
    const err = await Gateway.start(config(missing), { logger: memoryLogger().logger, listen: false }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TlsConfigError);
    expect((err as TlsConfigError).code).toBe('HW_ERR_TLS_CONFIG');
    expect((err as TlsConfigError).message).toBe(`${missing}: cannot read the CA certificate file (ENOENT)`);

    const notPem = join(ca.dir, 'not-pem.txt');
    writeFileSync(notPem, 'hello');
    await expect(Gateway.start(config(notPem), { logger: memoryLogger().logger, listen: false })).rejects.toThrow(`${notPem}: is not a PEM CA certificate`);
  });

  it('a reload with an unusable ca_file is refused at the tls stage; the serving generation keeps serving', async () => {
    const bad = testConfig({
      proxy: { listen: [{ address: '127.0.0.1', port: 0 }, { address: '127.0.0.1', port: 0, http2: true }] },
      services: [
        // A pool no serving generation has (its own pool_size), taken before the bad ca_file is met.
        { name: 'h2c', url: h2cUp.url, http2: true, pool_size: 3 },
        { name: 'h2-tls', url: tlsUp.url, http2: true, ca_file: join(ca.dir, 'gone.pem') },
      ],
      routes: [{ name: 'tls', service: 'h2-tls', paths: ['/tls'] }],
    });
    const registry = (gateway as unknown as { registry: { size: number } }).registry;
    const pools = registry.size;
    const err = await gateway.reload(bad).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ReloadError);
    expect((err as ReloadError).stage).toBe('tls');
    expect((err as ReloadError).message).toContain('gone.pem: cannot read the CA certificate file (ENOENT)');
    // The h2c service's new pool was given back (closed).
    expect(registry.size).toBe(pools);
    expect((await send(`${h1Url}/tls/still`)).text).toBe('2.0 GET ');
  });
});
