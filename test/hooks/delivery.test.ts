import { describe, it, expect, afterEach } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHmac } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { verifyWebhook, verifyKongSignature } from '../../host/hooks/index.js';
import { ROOT } from '../helpers/paths.js';
import { receiver, sleep, testService, waitUntil, type Receiver, type TestService } from './helpers.js';

const vectors = JSON.parse(readFileSync(join(ROOT, 'test', 'hooks', 'fixtures', 'webhook-signature-vectors.json'), 'utf8'));
const V1_SECRET: string = vectors.standard_webhooks_v1_hmac.secret;
const V1A_SECRET: string = vectors.standard_webhooks_v1a_ed25519.secret_key;
const V1A_PUBLIC: string = vectors.standard_webhooks_v1a_ed25519.public_key;
const OTHER_SECRET = `whsec_${Buffer.alloc(32, 9).toString('base64')}`;

let svc: TestService | undefined;
const receivers: Receiver[] = [];
async function recv(...args: Parameters<typeof receiver>): Promise<Receiver> {
  const r = await receiver(...args);
  receivers.push(r);
  return r;
}
afterEach(async () => {
  await svc?.close();
  svc = undefined;
  await Promise.all(receivers.splice(0).map((r) => r.close()));
});

async function webhookHook(url: string, config: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) {
  return svc!.hooks.createHook({ source: 'crud', event: 'consumers:create', handler: 'webhook', config: { url, ...config }, ...extra });
}

const deliveryOf = async (hookId: string) => (await svc!.hooks.deliveries(hookId)).data;

describe('webhook handler', () => {
  it('POSTs JSON(data ∪ {event, source}), content-type forced, signed over the exact bytes received', async () => {
    const r = await recv();
    svc = await testService();
    const hook = await webhookHook(r.url, { secret: V1_SECRET, headers: { 'Content-Type': 'text/plain', 'x-team': 'blue' } });
    await svc.hooks.emitCrud('consumers', 'create', { id: 'c1', username: 'ann', custom_id: null, tags: ['a'] });
    const [req] = await r.waitFor(1);
    expect(req!.method).toBe('POST');
    expect(req!.url).toBe('/hook');
    expect(req!.headers['content-type']).toBe('application/json');
    expect(req!.headers['x-team']).toBe('blue');
    expect(JSON.parse(req!.body.toString())).toEqual({
      operation: 'create',
      entity: { id: 'c1', username: 'ann', tags: ['a'] },
      schema: 'consumers',
      event: 'consumers:create',
      source: 'crud',
    });
    // The receiver recomputes the signature over the raw bytes it got.
    const v = verifyWebhook(V1_SECRET, req!.headers, req!.body);
    expect(v.id).toMatch(/^msg_[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(Math.abs(v.timestamp - Date.now() / 1000)).toBeLessThan(10);
    const [d] = await waitUntil(async () => {
      const list = await deliveryOf(hook.id);
      return list[0]?.state === 'succeeded' ? list : undefined;
    });
    expect(d!.id).toBe(v.id);
    expect(d!.attempts).toHaveLength(1);
    expect(d!.attempts[0]).toMatchObject({ attempt: 1, status: 200, response: 'ok', error: null, url: r.url, webhook_timestamp: v.timestamp });
  });

  it('non-ASCII data: the signed bytes are the sent bytes', async () => {
    const r = await recv();
    svc = await testService();
    await webhookHook(r.url, { secret: V1_SECRET });
    await svc.hooks.emitCrud('consumers', 'create', { username: 'zoë 🦊 "quoted" \\ </script>', n: 1.5e300 });
    const [req] = await r.waitFor(1);
    expect(() => verifyWebhook(V1_SECRET, req!.headers, req!.body)).not.toThrow();
    // Re-serializing what a JSON parser read would not necessarily verify; the raw bytes always do.
    expect(JSON.parse(req!.body.toString('utf8')).entity.username).toBe('zoë 🦊 "quoted" \\ </script>');
  });

  it('rotation: secret + secrets all sign, each verifies on its own; v1a with a whsk_ key verifies with whpk_', async () => {
    const r = await recv();
    svc = await testService();
    await webhookHook(r.url, { secret: V1_SECRET, secrets: [OTHER_SECRET, V1A_SECRET] });
    await svc.hooks.emitCrud('consumers', 'create', { id: 'c2' });
    const [req] = await r.waitFor(1);
    const entries = req!.headers['webhook-signature']!.split(' ');
    expect(entries.map((e) => e.split(',')[0])).toEqual(['v1', 'v1', 'v1a']);
    for (const key of [V1_SECRET, OTHER_SECRET, V1A_PUBLIC]) expect(verifyWebhook(key, req!.headers, req!.body).id).toBe(req!.headers['webhook-id']);
  });

  it('Kong signature option: signature "kong" sends only X-Kong-Signature; "both" sends both', async () => {
    const r = await recv();
    svc = await testService();
    await webhookHook(r.url, { secret: 'plain-kong-secret', signature: 'kong' });
    await svc.hooks.createHook({
      source: 'crud',
      event: 'consumers:create',
      handler: 'webhook',
      config: { url: `${r.origin}/both`, secret: V1_SECRET, signature: 'both' },
    });
    await svc.hooks.emitCrud('consumers', 'create', { id: 'c3' });
    const reqs = await r.waitFor(2);
    const kong = reqs.find((q) => q.url === '/hook')!;
    const both = reqs.find((q) => q.url === '/both')!;
    expect(kong.headers['webhook-signature']).toBeUndefined();
    expect(kong.headers['webhook-id']).toMatch(/^msg_/);
    expect(kong.headers['x-kong-signature']).toBe(`sha256=${createHmac('sha256', 'plain-kong-secret').update(kong.body).digest('hex')}`);
    expect(verifyKongSignature('plain-kong-secret', kong.headers['x-kong-signature'], kong.body)).toBe(true);
    expect(verifyKongSignature(V1_SECRET, both.headers['x-kong-signature'], both.body)).toBe(true);
    expect(() => verifyWebhook(V1_SECRET, both.headers, both.body)).not.toThrow();
  });

  it("Kong's secrets as Kong sends them: any string, no signature option, X-Kong-Signature verified independently", async () => {
    const r = await recv();
    svc = await testService();
    // A Kong secret is any string; the default (`auto`) signs it as Kong does.
    const kongSecret = 'my kong secret: not base64!';
    const hook = await webhookHook(r.url, { secret: kongSecret });
    expect(hook.config).toMatchObject({ signature: 'auto', kong_signature_algorithm: 'sha256' });
    await webhookHook(`${r.origin}/sha1`, { secret: kongSecret, kong_signature_algorithm: 'sha1' });
    await svc.hooks.emitCrud('consumers', 'create', { id: 'c5' });
    const reqs = await r.waitFor(2);
    const sha256 = reqs.find((q) => q.url === '/hook')!;
    const sha1 = reqs.find((q) => q.url === '/sha1')!;
    // What a receiver written for Kong computes: hex HMAC of the raw body keyed by the secret's bytes.
    expect(sha256.headers['x-kong-signature']).toBe(`sha256=${createHmac('sha256', kongSecret).update(sha256.body).digest('hex')}`);
    expect(sha1.headers['x-kong-signature']).toBe(`sha1=${createHmac('sha1', kongSecret).update(sha1.body).digest('hex')}`);
    for (const q of [sha256, sha1]) {
      expect(q.headers['webhook-signature']).toBeUndefined();
      expect(verifyKongSignature(kongSecret, q.headers['x-kong-signature'], q.body)).toBe(true);
      expect(verifyKongSignature('another secret', q.headers['x-kong-signature'], q.body)).toBe(false);
    }
  });

  it('auto with a Standard Webhooks key and a Kong secret: each signs its own header; the standardwebhooks package verifies', async () => {
    const r = await recv();
    svc = await testService();
    await webhookHook(r.url, { secret: V1_SECRET, secrets: ['kong-rotation-secret'] });
    await svc.hooks.emitCrud('consumers', 'create', { id: 'c6' });
    const [req] = await r.waitFor(1);
    expect(req!.headers['webhook-signature']!.split(' ')).toHaveLength(1);
    const payload = new Webhook(V1_SECRET).verify(req!.body.toString('utf8'), {
      'webhook-id': req!.headers['webhook-id']!,
      'webhook-timestamp': req!.headers['webhook-timestamp']!,
      'webhook-signature': req!.headers['webhook-signature']!,
    });
    expect(payload).toMatchObject({ source: 'crud', event: 'consumers:create' });
    expect(req!.headers['x-kong-signature']).toBe(`sha256=${createHmac('sha256', 'kong-rotation-secret').update(req!.body).digest('hex')}`);
  });

  it('no secret: webhook-id and webhook-timestamp, no signature', async () => {
    const r = await recv();
    svc = await testService();
    await webhookHook(r.url);
    await svc.hooks.emitCrud('consumers', 'create', { id: 'c4' });
    const [req] = await r.waitFor(1);
    expect(req!.headers['webhook-id']).toMatch(/^msg_/);
    expect(req!.headers['webhook-timestamp']).toMatch(/^\d+$/);
    expect(req!.headers['webhook-signature']).toBeUndefined();
  });
});

describe('retries and failure rules', () => {
  it('a receiver that fails then succeeds: same webhook-id, a new timestamp each attempt, every attempt recorded', async () => {
    let offset = 0;
    const r = await recv((_, res, n) => {
      offset += 2000; // the service clock moves 2 s per request: each attempt's timestamp differs
      res.statusCode = n < 3 ? 500 : 204;
      res.end(n < 3 ? `boom ${n}` : '');
    });
    svc = await testService({ clock: { now: () => Date.now() + offset } });
    const hook = await webhookHook(r.url, { secret: V1_SECRET });
    await svc.hooks.emitCrud('consumers', 'create', { id: 'r1' });
    const reqs = await r.waitFor(3);
    const ids = new Set(reqs.map((q) => q.headers['webhook-id']));
    expect(ids.size).toBe(1);
    const stamps = reqs.map((q) => Number(q.headers['webhook-timestamp']));
    expect(new Set(stamps).size).toBe(3);
    for (const q of reqs) expect(() => verifyWebhook(V1_SECRET, q.headers, q.body, { now: Number(q.headers['webhook-timestamp']) })).not.toThrow();
    const d = await waitUntil(async () => (await deliveryOf(hook.id)).find((x) => x.state === 'succeeded'));
    expect(d.attempt_count).toBe(3);
    expect(d.attempts.map((a) => [a.attempt, a.status, a.error, a.response])).toEqual([
      [1, 500, 'endpoint answered 500', 'boom 1'],
      [2, 500, 'endpoint answered 500', 'boom 2'],
      [3, 204, null, ''],
    ]);
    expect(d.attempts.map((a) => a.webhook_timestamp)).toEqual(stamps);
  });

  it('retries stop when the schedule is exhausted: failed, with the last error', async () => {
    const r = await recv((_, res) => {
      res.statusCode = 500;
      res.end();
    });
    svc = await testService({ delivery: { retrySchedule: [20, 20] } });
    const hook = await webhookHook(r.url);
    await svc.hooks.emitCrud('consumers', 'create', { id: 'x' });
    const d = await waitUntil(async () => (await deliveryOf(hook.id)).find((x) => x.state === 'failed'));
    expect(d.attempt_count).toBe(3);
    expect(d.last_error).toMatch(/^retries exhausted after 3 attempts; last: endpoint answered 500/);
    expect(r.received).toHaveLength(3);
  });

  it('3xx is a failure and the redirect is not followed', async () => {
    const target = await recv();
    const r = await recv((_, res) => {
      res.statusCode = 302;
      res.setHeader('location', target.url);
      res.end();
    });
    svc = await testService({ delivery: { retrySchedule: [] } });
    const hook = await webhookHook(r.url);
    await svc.hooks.emitCrud('consumers', 'create', { id: 'x' });
    const d = await waitUntil(async () => (await deliveryOf(hook.id)).find((x) => x.state === 'failed'));
    expect(d.attempts[0]).toMatchObject({ status: 302 });
    expect(d.attempts[0]!.error).toMatch(/302 \(redirects are not followed; location http:\/\/127\.0\.0\.1/);
    await sleep(100);
    expect(target.received).toHaveLength(0);
  });

  it('410 Gone disables the hook (enabled=false, recorded) and later events create no delivery', async () => {
    const r = await recv((_, res) => {
      res.statusCode = 410;
      res.end('gone');
    });
    svc = await testService();
    const hook = await webhookHook(r.url);
    await svc.hooks.emitCrud('consumers', 'create', { id: 'x' });
    await waitUntil(async () => !(await svc!.hooks.getHook(hook.id)).enabled);
    const d = await waitUntil(async () => (await deliveryOf(hook.id)).find((x) => x.state === 'failed'));
    expect(d!.attempts[0]).toMatchObject({ status: 410, error: 'endpoint answered 410 Gone: hook disabled', response: 'gone' });
    expect(r.received).toHaveLength(1);
    const res = await svc.hooks.emitCrud('consumers', 'create', { id: 'y' });
    expect(res.map((x) => x.deliveries)).toEqual([0, 0, 0]);
    expect(svc.log.lines.some((l) => l.msg === 'event hooks: hook disabled')).toBe(true);
    const m = await svc.hooks.metrics();
    expect(m.find((s) => s.name === 'hookwire_event_hooks_hooks_disabled_total')!.value).toBe(1);
    // Re-enabling by PATCH works; a retry of the failed delivery then goes out again.
    await svc.hooks.updateHook(hook.id, { enabled: true });
    r.handler = (_, res2) => void res2.end('back');
    await svc.hooks.retryDelivery(hook.id, d!.id);
    await r.waitFor(2);
    expect(r.received[1]!.headers['webhook-id']).toBe(d!.id);
  });

  it('Retry-After on 429 is honoured, and capped by retryAfterCapMs on 503', async () => {
    const r = await recv((_, res, n) => {
      if (n === 1) {
        res.statusCode = 429;
        res.setHeader('retry-after', '1');
      } else if (n === 2) {
        res.statusCode = 503;
        res.setHeader('retry-after', '3600');
      }
      res.end();
    });
    svc = await testService({ delivery: { retrySchedule: [10, 10, 10], retryAfterCapMs: 1200 } });
    await webhookHook(r.url);
    await svc.hooks.emitCrud('consumers', 'create', { id: 'x' });
    const reqs = await r.waitFor(3, 5000);
    const gap1 = reqs[1]!.at - reqs[0]!.at;
    const gap2 = reqs[2]!.at - reqs[1]!.at;
    expect(gap1).toBeGreaterThanOrEqual(950); // 1 s, not the 10 ms step
    expect(gap2).toBeGreaterThanOrEqual(1150); // capped at 1.2 s, not an hour
    expect(gap2).toBeLessThan(3000);
  });

  it('a timeout is a failure; the response body is stored only up to the cap', async () => {
    const r = await recv(async (_, res, n) => {
      if (n === 1) {
        await sleep(1600); // longer than timeoutMs (undici's header timer has a ~0.5 s resolution)
        res.end('late');
        return;
      }
      res.end('x'.repeat(10_000));
    });
    svc = await testService({ delivery: { timeoutMs: 300, leaseMs: 2000, responseExcerptBytes: 100, retrySchedule: [10] } });
    const hook = await webhookHook(r.url);
    await svc.hooks.emitCrud('consumers', 'create', { id: 'x' });
    const d = await waitUntil(async () => (await deliveryOf(hook.id)).find((x) => x.state === 'succeeded'));
    expect(d.attempts[0]!.error).toMatch(/did not answer within 300 ms/);
    expect(d.attempts[0]!.status).toBeNull();
    expect(d.attempts[1]!.response).toBe('x'.repeat(100));
  });

  it('a refused connection is retried (transient)', async () => {
    const r = await recv();
    const url = r.url;
    await r.close();
    receivers.splice(receivers.indexOf(r), 1);
    // No rescan during the test: the retry must be scheduled by the dispatcher itself, on time.
    svc = await testService({ delivery: { retrySchedule: [10], pollIntervalMs: 60_000 } });
    const hook = await webhookHook(url);
    await svc.hooks.emitCrud('consumers', 'create', { id: 'x' });
    const d = await waitUntil(async () => (await deliveryOf(hook.id)).find((x) => x.state === 'failed'));
    expect(d.attempts.map((a) => a.error)).toEqual([expect.stringMatching(/cannot connect to .*ECONNREFUSED/), expect.stringMatching(/ECONNREFUSED/)]);
    expect(d.attempts[1]!.started_at_ms - d.attempts[0]!.started_at_ms).toBeLessThan(500);
  });
});

describe('webhook-custom', () => {
  async function custom(config: Record<string, unknown>, data: Record<string, unknown> = { name: 'ann & <bob>', n: 3 }) {
    const r = await recv();
    svc = await testService();
    await svc.hooks.ingest([{ v: 1, type: 'publish', source: 'app', event: 'signup', fields: ['name', 'n'], plugin: 'p' }]);
    await svc.hooks.createHook({ source: 'app', event: 'signup', handler: 'webhook-custom', config: { ...config, url: String(config.url).replace('RECV', r.origin) } });
    await svc.hooks.emit('app', 'signup', data);
    const [req] = await r.waitFor(1);
    return req!;
  }

  it('GET with a payload: the payload becomes the query string; url and payload are Handlebars templates', async () => {
    const req = await custom({ url: 'RECV/{{event}}?x=1', method: 'GET', payload: { who: '{{{name}}}', count: '{{n}}', src: '{{source}}' } });
    expect(req.method).toBe('GET');
    expect(req.url).toBe('/signup?x=1&who=ann+%26+%3Cbob%3E&count=3&src=app');
    expect(req.body.length).toBe(0);
  });

  it('{{x}} is HTML-escaped, {{{x}}} is raw; a non-empty body wins over the payload', async () => {
    const req = await custom({
      url: 'RECV/b',
      method: 'POST',
      body: 'escaped={{name}} raw={{{name}}} n={{n}}',
      payload: { ignored: 'yes' },
      headers: { 'content-type': 'text/plain', 'x-who': '{{{name}}}' },
      headers_format: true,
    });
    expect(req.body.toString()).toBe('escaped=ann &amp; &lt;bob&gt; raw=ann & <bob> n=3');
    expect(req.headers['x-who']).toBe('ann & <bob>');
  });

  it('POST + payload + application/json → a JSON body', async () => {
    const req = await custom({ url: 'RECV/j', method: 'POST', headers: { 'Content-Type': 'application/json; charset=utf-8' }, payload: { who: '{{{name}}}', n: '{{n}}' } });
    expect(JSON.parse(req.body.toString())).toEqual({ who: 'ann & <bob>', n: '3' });
  });

  it('PUT + payload + x-www-form-urlencoded → a form body', async () => {
    const req = await custom({ url: 'RECV/f', method: 'PUT', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: { who: '{{{name}}}' } });
    expect(req.method).toBe('PUT');
    expect(req.body.toString()).toBe('who=ann+%26+%3Cbob%3E');
  });

  it('PATCH + payload and no content-type → multipart with Kong fixed boundary', async () => {
    const req = await custom({ url: 'RECV/m', method: 'PATCH', payload: { a: '1' } });
    expect(req.headers['content-type']).toBe('multipart/form-data; boundary=8fd84e9444e3946c');
    expect(req.body.toString()).toBe('--8fd84e9444e3946c\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--8fd84e9444e3946c--\r\n');
  });

  it('payload_format false sends templates literally; the body is signed like any webhook', async () => {
    const req = await custom({ url: 'RECV/l', method: 'POST', headers: { 'content-type': 'application/json' }, payload: { t: '{{name}}' }, payload_format: false, secret: V1_SECRET });
    expect(JSON.parse(req.body.toString())).toEqual({ t: '{{name}}' });
    expect(() => verifyWebhook(V1_SECRET, req.headers, req.body)).not.toThrow();
  });
});

describe('log handler', () => {
  it('writes one structured line with event, source and data (and a delivery record)', async () => {
    svc = await testService();
    const hook = await svc.hooks.createHook({ source: 'crud', event: null, handler: 'log' });
    await svc.hooks.emitCrud('services', 'update', { id: 's1', host: 'a' }, { id: 's1', host: 'b' });
    const lines = await waitUntil(() => {
      // (The hook also hears the crud/event_hooks events of its own creation.)
      const l = svc!.log.lines.filter((x) => x.msg === 'log callback' && String(x.event).startsWith('services'));
      return l.length >= 2 ? l : undefined;
    });
    // event null: both crud/services and crud/services:update fire (Kong fires twice).
    expect(lines.map((l) => l.event).sort()).toEqual(['services', 'services:update']);
    expect(lines[0]).toMatchObject({
      level: 30,
      source: 'crud',
      event_hook: hook.id,
      data: { operation: 'update', entity: { id: 's1', host: 'a' }, old_entity: { id: 's1', host: 'b' }, schema: 'services' },
    });
    const ds = await waitUntil(async () => {
      const list = (await deliveryOf(hook.id)).filter((d) => d.event.startsWith('services'));
      return list.length === 2 && list.every((d) => d.state === 'succeeded') ? list : undefined;
    });
    expect(ds[0]!.attempts[0]).toMatchObject({ status: null, error: null, url: null });
  });
});
