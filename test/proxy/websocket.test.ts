// WebSocket upgrades through the gateway, against a real echo server: the tunnel, the request phases on the
// upgrade request (a header added, a local reply), the 101 through the response header phase, the log phase
// when the connection closes, and shutdown not waiting forever for an open WebSocket.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, until, type TestGateway } from '../helpers/gateway.js';
import { TestCa } from '../helpers/tls.js';
import { fixture } from '../helpers/paths.js';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { closedPort } from '../helpers/upstream.js';
import { openWebSocket, startWebSocketEcho, type EchoServer } from '../helpers/websocket.js';

let echo: EchoServer;
let gw: TestGateway;

beforeAll(async () => {
  echo = await startWebSocketEcho();
  gw = await startGateway({
    services: [{ name: 'ws', url: echo.url }],
    routes: [
      { name: 'plain', service: 'ws', paths: ['/plain'] },
      {
        name: 'filtered',
        service: 'ws',
        paths: ['/filtered'],
        plugins: [
          {
            name: 'ws-filter',
            wasm: fixture('proxy-filter'),
            configuration: { name: 'ws', request_header: 'x-ws-filter', request_value: 'on', response_header: 'x-ws-resp', deny_header: 'x-deny', log: true },
          },
        ],
      },
    ],
  });
});

afterAll(async () => {
  await gw?.close();
  await echo?.close();
});

describe('WebSocket through the proxy', () => {
  it('opens the tunnel and echoes frames both ways (no filter)', async () => {
    const ws = await openWebSocket(gw.url, '/plain/chat');
    expect(ws.status).toBe(101);
    expect(ws.head).toMatch(/\r\nsec-websocket-accept: /i);
    expect(await ws.roundTrip('hello')).toBe('echo: hello');
    expect(await ws.roundTrip('again')).toBe('echo: again');
    await ws.close();
    const seen = echo.upgrades.at(-1)!;
    expect(seen.upgrade).toBe('websocket');
    expect(seen['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('runs the request phases on the upgrade request and the log phase when the connection closes', async () => {
    const ws = await openWebSocket(gw.url, '/filtered/room');
    expect(ws.status).toBe(101);
    // The filter's response header phase ran on the 101.
    expect(ws.head).toMatch(/\r\nx-ws-resp: 1/i);
    expect(echo.upgrades.at(-1)!['x-ws-filter']).toBe('on');
    expect(await ws.roundTrip('ping')).toBe('echo: ping');
    const logged = () => gw.lines.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('log ws status=101'));
    // Open connection: no log phase yet.
    expect(logged()).toHaveLength(0);
    await ws.close();
    await until(() => logged().length === 1);
    expect(logged()[0]!.msg).toMatch(/route=filtered/);
    const access = gw.lines.find((l) => l.msg === 'request' && l.path === '/filtered/room');
    expect(access).toMatchObject({ status: 101, route: 'filtered', upgrade: 'websocket' });
  });

  it('a filter may answer the upgrade request locally: the upstream never sees it', async () => {
    const before = echo.upgrades.length;
    const ws = await openWebSocket(gw.url, '/filtered/room', { 'x-deny': '1' });
    expect(ws.status).toBe(403);
    expect(ws.head).toMatch(/\r\nx-denied-by: ws/i);
    expect(echo.upgrades.length).toBe(before);
    ws.socket.destroy();
  });

  it('answers 404 when no route matches', async () => {
    const ws = await openWebSocket(gw.url, '/nowhere');
    expect(ws.status).toBe(404);
    ws.socket.destroy();
  });

  it('wss: the same through a TLS listener, the filter sees :scheme https', async () => {
    const ca = new TestCa();
    const cert = ca.issue('ws', { cn: 'ws.test', dnsNames: ['ws.test'] });
    const own = await startGateway({
      proxy: {
        listen: [
          { address: '127.0.0.1', port: 0, tls: { certificates: [cert] } },
          // HTTP/2 listener: WebSocket clients still come over HTTP/1.1 (ALPN fallback).
          { address: '127.0.0.1', port: 0, http2: true, tls: { certificates: [cert] } },
        ],
      },
      services: [{ name: 'ws', url: echo.url }],
      routes: [{ name: 'r', service: 'ws', paths: ['/'], plugins: [{ name: 'p', wasm: fixture('proxy-filter'), configuration: { props: ['request.scheme', 'connection.tls_version'] } }] }],
    });
    try {
      const ws = await openWebSocket(own.url, '/secure', {}, { ca: ca.read(ca.cert), servername: 'ws.test' });
      expect(ws.status).toBe(101);
      expect(ws.head).toMatch(/\r\nx-prop-request-scheme: https\r\n/i);
      expect(ws.head).toMatch(/\r\nx-prop-connection-tls_version: TLSv1\.3(\r\n|$)/i);
      expect(echo.upgrades.at(-1)!['x-forwarded-proto']).toBe('https');
      expect(await ws.roundTrip('secret')).toBe('echo: secret');
      await ws.close();
      const overH2Listener = await openWebSocket(own.gateway.listeners[1]!.url, '/h2-listener', {}, { ca: ca.read(ca.cert), servername: 'ws.test' });
      expect(overH2Listener.status).toBe(101);
      expect(await overH2Listener.roundTrip('h1 on h2')).toBe('echo: h1 on h2');
      await overH2Listener.close();
    } finally {
      await own.close();
      ca.remove();
    }
  });

  it('an upstream that cannot be reached answers 502, one that does not answer 504 (connect + read timeout)', async () => {
    const silent = new Set<Socket>();
    const blackhole = createTcpServer((sock) => silent.add(sock));
    await new Promise<void>((resolve) => blackhole.listen(0, '127.0.0.1', resolve));
    const own = await startGateway({
      services: [
        { name: 'gone', url: `http://127.0.0.1:${await closedPort()}` },
        { name: 'mute', url: `http://127.0.0.1:${(blackhole.address() as AddressInfo).port}`, connect_timeout_ms: 50, read_timeout_ms: 150 },
      ],
      routes: [
        { name: 'gone', service: 'gone', paths: ['/gone'] },
        { name: 'mute', service: 'mute', paths: ['/mute'] },
      ],
    });
    try {
      const gone = await openWebSocket(own.url, '/gone');
      expect(gone.status).toBe(502);
      gone.socket.destroy();
      const mute = await openWebSocket(own.url, '/mute');
      expect(mute.status).toBe(504);
      expect(mute.head).toMatch(/^HTTP\/1\.1 504 Gateway Timeout\r\n/);
      mute.socket.destroy();
    } finally {
      await own.close();
      for (const sock of silent) sock.destroy();
      await new Promise<void>((resolve) => blackhole.close(() => resolve()));
    }
  });

  it('shutdown closes WebSockets still open after the drain timeout', async () => {
    const own = await startGateway({ services: [{ name: 'ws', url: echo.url }], routes: [{ name: 'r', service: 'ws', paths: ['/'] }] });
    const ws = await openWebSocket(own.url, '/x');
    expect(await ws.roundTrip('still here')).toBe('echo: still here');
    const closed = new Promise<void>((resolve) => ws.socket.once('close', () => resolve()));
    await own.gateway.close({ drainTimeoutMs: 50 });
    await closed;
    expect(own.gateway.inflight).toBe(0);
  });
});
