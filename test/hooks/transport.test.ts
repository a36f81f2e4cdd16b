/** The transport's raw dispatch handler: status, headers, excerpt cap, errors. */
import { describe, it, expect, afterEach } from 'vitest';
import { SsrfPolicy, systemLookup } from '../../host/hooks/ssrf.js';
import { Transport } from '../../host/hooks/transport.js';
import { receiver, type Receiver } from './helpers.js';

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const o of open.splice(0)) await o.close();
});

function transport(cap = 16): Transport {
  const t = new Transport({
    policy: new SsrfPolicy({ allowCidrs: ['127.0.0.1/32'] }),
    lookup: systemLookup,
    timeoutMs: 2000,
    connectTimeoutMs: 1000,
    responseExcerptBytes: cap,
    connectionsPerOrigin: 2,
  });
  open.push(t);
  return t;
}

async function recv(handler: Parameters<typeof receiver>[0]): Promise<Receiver> {
  const r = await receiver(handler);
  open.push(r);
  return r;
}

const post = (url: string) => ({ method: 'POST', url, headers: { 'content-type': 'application/json' }, body: Buffer.from('{"a":1}'), sslVerify: true });

describe('Transport', () => {
  it('returns status, lower-cased headers (repeats joined) and the whole short body', async () => {
    const r = await recv((_, res) => {
      res.setHeader('X-Multi', ['a', 'b']);
      res.statusCode = 201;
      res.end('short');
    });
    const res = await transport().send(post(r.url));
    expect(res.status).toBe(201);
    expect(res.headers['x-multi']).toBe('a, b');
    expect(res.excerpt).toBe('short');
    expect(r.received[0]!.body.toString()).toBe('{"a":1}');
  });

  it('keeps only the first bytes of a long chunked body, and the next request still works', async () => {
    const r = await recv((_, res, n) => {
      if (n === 1) {
        res.write('0123456789');
        res.write('abcdefghij');
        setTimeout(() => res.end('z'.repeat(100_000)), 20);
      } else res.end('ok');
    });
    const t = transport(16);
    const first = await t.send(post(r.url));
    expect(first.excerpt).toBe('0123456789abcdef');
    expect((await t.send(post(r.url))).excerpt).toBe('ok');
  });

  it('a refused connection rejects with reason "connect"', async () => {
    const r = await recv(() => {});
    const url = r.url;
    await r.close();
    open.splice(open.indexOf(r), 1);
    await expect(transport().send(post(url))).rejects.toMatchObject({ reason: 'connect' });
  });
});
