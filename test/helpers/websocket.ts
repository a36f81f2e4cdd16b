/**
 * A minimal WebSocket (RFC 6455) echo server and client for proxy tests,
 * with node:http's 'upgrade' event and hand-made frames (no ws package):
 * single unfragmented text frames under 126 bytes, which is all the tests send.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { connect as connectTls, type ConnectionOptions } from 'node:tls';
import type { Duplex } from 'node:stream';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export function acceptKey(key: string): string {
  return createHash('sha1').update(key + GUID).digest('base64');
}

/** One text frame; client frames are masked (RFC 6455 5.3). */
export function textFrame(text: string, masked: boolean): Buffer {
  const payload = Buffer.from(text, 'utf8');
  if (payload.length >= 126) throw new Error('test frames stay under 126 bytes');
  if (!masked) return Buffer.concat([Buffer.from([0x81, payload.length]), payload]);
  const mask = Buffer.from([0x12, 0x34, 0x56, 0x78]);
  const body = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, body]);
}

/** The text of the first complete frame in `buf`, and the bytes it took; null when incomplete. */
export function readFrame(buf: Buffer): { opcode: number; text: string; size: number } | null {
  if (buf.length < 2) return null;
  const masked = (buf[1]! & 0x80) !== 0;
  const len = buf[1]! & 0x7f;
  const start = 2 + (masked ? 4 : 0);
  if (len >= 126 || buf.length < start + len) return null;
  let payload = buf.subarray(start, start + len);
  if (masked) {
    const mask = buf.subarray(2, 6);
    payload = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
  }
  return { opcode: buf[0]! & 0x0f, text: payload.toString('utf8'), size: start + len };
}

export interface EchoServer {
  readonly url: string;
  /** Headers of every upgrade request received. */
  readonly upgrades: IncomingHttpHeaders[];
  close(): Promise<void>;
}

/** Answers upgrades with 101 and echoes each text frame as "echo: <text>"; a close frame closes. Over TLS (wss) with `tls`. */
export async function startWebSocketEcho(tls?: { cert: string; key: string }): Promise<EchoServer> {
  const upgrades: IncomingHttpHeaders[] = [];
  const sockets = new Set<Duplex>();
  const refuse = (_req: unknown, res: ServerResponse) => {
    res.writeHead(426, { 'content-type': 'text/plain' });
    res.end('upgrade required');
  };
  const server: Server = tls ? createHttpsServer({ cert: readFileSync(tls.cert), key: readFileSync(tls.key) }, refuse) : createServer(refuse);
  server.on('upgrade', (req, socket: Duplex) => {
    upgrades.push(req.headers);
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.write(
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Accept: ${acceptKey(String(req.headers['sec-websocket-key']))}\r\nx-echo-server: yes\r\n\r\n`,
    );
    let pending = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      for (let f = readFrame(pending); f !== null; f = readFrame(pending)) {
        pending = pending.subarray(f.size);
        if (f.opcode === 0x8) {
          socket.end(Buffer.from([0x88, 0]));
          return;
        }
        socket.write(textFrame(`echo: ${f.text}`, false));
      }
    });
    socket.on('error', () => socket.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    upgrades,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface WsClient {
  readonly socket: Socket;
  /** The response head (status line and headers) as received. */
  readonly head: string;
  readonly status: number;
  /** Send a text frame and wait for the next frame's text. */
  roundTrip(text: string): Promise<string>;
  /** Send a close frame and wait for the connection to end. */
  close(): Promise<void>;
}

/** Open a WebSocket through `url` (http, or https with `tls` options: wss); resolves with any response head (101 or not). */
export function openWebSocket(url: string, path: string, headers: Record<string, string> = {}, tls?: ConnectionOptions): Promise<WsClient> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = u.protocol === 'https:' ? connectTls({ host: u.hostname, port: Number(u.port), ...tls }) : connect(Number(u.port), u.hostname);
    const key = Buffer.from('hookwire-ws-test').toString('base64');
    const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
    socket.write(`GET ${path} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`);
    let buf = Buffer.alloc(0);
    let waiter: ((text: string) => void) | null = null;
    let opened = false;
    socket.setTimeout(5000, () => socket.destroy(new Error('websocket test timed out')));
    socket.on('error', reject);
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (!opened) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        opened = true;
        const head = buf.subarray(0, end).toString('latin1');
        buf = buf.subarray(end + 4);
        const status = Number(head.slice(9, 12));
        resolve({
          socket,
          head,
          status,
          roundTrip(text) {
            return new Promise((res) => {
              waiter = res;
              socket.write(textFrame(text, true));
            });
          },
          close() {
            return new Promise((res) => {
              socket.once('close', () => res());
              socket.write(Buffer.from([0x88, 0x80, 0, 0, 0, 0]));
            });
          },
        });
      }
      const f = readFrame(buf);
      if (f !== null && waiter !== null) {
        buf = buf.subarray(f.size);
        const w = waiter;
        waiter = null;
        w(f.text);
      }
    });
  });
}
