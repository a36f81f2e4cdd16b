/**
 * Raw HTTP/1.1 over node:net, for requests an HTTP client will not send
 * (request targets such as `//`, `http://[::1`): the status line and body
 * exactly as the server wrote them.
 */
import { connect } from 'node:net';

export interface RawAnswer {
  /** 0 when the connection closed without a status line. */
  readonly status: number;
  readonly head: string;
  readonly body: string;
}

/** Sends `GET <target>` (or `method`) and reads until the server closes the connection. */
export function rawRequest(base: string, target: string, options: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<RawAnswer> {
  const u = new URL(base);
  const body = options.body ?? '';
  const headers: Record<string, string> = { host: u.host, connection: 'close', ...options.headers };
  if (body.length > 0) headers['content-length'] = String(Buffer.byteLength(body));
  const lines = [`${options.method ?? 'GET'} ${target} HTTP/1.1`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), '', body];
  return new Promise((resolve, reject) => {
    const socket = connect(Number(u.port), u.hostname);
    const chunks: Buffer[] = [];
    socket.setTimeout(10_000, () => socket.destroy(new Error(`no answer to ${target} within 10 s`)));
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const at = text.indexOf('\r\n\r\n');
      const head = at < 0 ? text : text.slice(0, at);
      const m = /^HTTP\/1\.1 (\d{3})/.exec(head);
      resolve({ status: m ? Number(m[1]) : 0, head, body: at < 0 ? '' : text.slice(at + 4) });
    });
    socket.write(lines.join('\r\n'));
  });
}
