import { describe, it, expect, afterEach } from 'vitest';
import { createServer } from 'node:https';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { EventHooks } from '../../host/hooks/index.js';
import { DEFAULT_RETRY_SCHEDULE_MS, parseRetryAfter, retryDelay } from '../../host/hooks/retry.js';
import { ROOT } from '../helpers/paths.js';
import { capturedLogger, receiver, sleep, testService, waitUntil, type Receiver, type TestService } from './helpers.js';

let svc: TestService | undefined;
const rs: Receiver[] = [];
afterEach(async () => {
  await svc?.close();
  svc = undefined;
  await Promise.all(rs.splice(0).map((r) => r.close()));
});

describe('retry schedule', () => {
  it('the default schedule: 5 s, 30 s, 2 min, 10 min, 30 min, 1 h, 3 h, 6 h, then exhausted', () => {
    expect(DEFAULT_RETRY_SCHEDULE_MS).toEqual([5_000, 30_000, 120_000, 600_000, 1_800_000, 3_600_000, 10_800_000, 21_600_000]);
    expect(DEFAULT_RETRY_SCHEDULE_MS.map((_, i) => retryDelay(i + 1, DEFAULT_RETRY_SCHEDULE_MS, 'none'))).toEqual([...DEFAULT_RETRY_SCHEDULE_MS]);
    expect(retryDelay(9, DEFAULT_RETRY_SCHEDULE_MS, 'none')).toBeNull();
  });

  it('full jitter: uniform in [0, step], never above it', () => {
    expect(retryDelay(1, [1000], 'full', () => 0)).toBe(0);
    expect(retryDelay(1, [1000], 'full', () => 0.999999)).toBe(999);
    for (let i = 0; i < 1000; i++) {
      const d = retryDelay(2, [10, 5000], 'full')!;
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThanOrEqual(5000);
    }
  });

  it('Retry-After: delta seconds or an HTTP date; anything else is ignored', () => {
    const now = Date.parse('Sat, 28 Nov 2026 10:00:00 GMT');
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter(' 0 ', now)).toBe(0);
    expect(parseRetryAfter('Sat, 28 Nov 2026 10:01:30 GMT', now)).toBe(90_000);
    expect(parseRetryAfter('Sat, 28 Nov 2026 09:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeNull();
    expect(parseRetryAfter(undefined, now)).toBeNull();
  });
});

describe('TLS', () => {
  it('certificates are verified by default; ssl_verify false accepts a self-signed one', async () => {
    const fixtures = join(ROOT, 'test', 'hooks', 'fixtures');
    const got: string[] = [];
    const server = createServer({ key: readFileSync(join(fixtures, 'tls-key.pem')), cert: readFileSync(join(fixtures, 'tls-cert.pem')) }, (req, res) => {
      got.push(req.url!);
      req.resume();
      req.on('end', () => res.end('ok'));
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      svc = await testService({ delivery: { retrySchedule: [] } });
      const strict = await svc.hooks.createHook({ source: 'crud', event: 'routes', handler: 'webhook', config: { url: `${url}/strict` } });
      const lax = await svc.hooks.createHook({ source: 'crud', event: 'routes', handler: 'webhook', config: { url: `${url}/lax`, ssl_verify: false } });
      await svc.hooks.emitCrud('routes', 'create', { id: 'r' });
      const failed = await waitUntil(async () => (await svc!.hooks.deliveries(strict.id)).data.find((d) => d.state === 'failed'));
      expect(failed.attempts[0]!.error).toMatch(/^TLS error with https:\/\/127\.0\.0\.1:\d+: (DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE)/);
      await waitUntil(async () => (await svc!.hooks.deliveries(lax.id)).data.find((d) => d.state === 'succeeded'));
      expect(got).toEqual(['/lax']);
    } finally {
      server.closeAllConnections();
      await new Promise((ok) => server.close(ok));
    }
  });
});

describe('close()', () => {
  it('drains: an attempt in flight finishes and its outcome is recorded before close resolves', async () => {
    const r = await receiver(async (_, res) => {
      await sleep(300);
      res.end('done');
    });
    rs.push(r);
    svc = await testService();
    const h = await svc.hooks.createHook({ source: 'crud', event: 'routes', handler: 'webhook', config: { url: r.url } });
    await svc.hooks.emitCrud('routes', 'create', { id: 'r' });
    await r.waitFor(1);
    const t0 = Date.now();
    const db = svc.db;
    await svc.hooks.close({ timeoutMs: 5000 });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(200);
    // Re-open the file: the delivery is recorded as succeeded, nothing is left to send.
    const again = new EventHooks({ database: db, logger: capturedLogger().logger });
    const [d] = (await again.deliveries(h.id)).data;
    expect(d).toMatchObject({ state: 'succeeded', attempt_count: 1, attempts: [{ status: 200, response: 'done' }] });
    await again.close();
  });

  it('a drain that times out aborts the attempt; the delivery stays pending and goes out after a restart (same id)', async () => {
    let hold = true;
    const r = await receiver(async (_, res) => {
      while (hold) await sleep(20);
      res.end('ok');
    });
    rs.push(r);
    svc = await testService({ delivery: { retrySchedule: [10] } });
    const h = await svc.hooks.createHook({ source: 'crud', event: 'routes', handler: 'webhook', config: { url: r.url } });
    await svc.hooks.emitCrud('routes', 'create', { id: 'r' });
    await r.waitFor(1);
    const db = svc.db;
    await svc.hooks.close({ timeoutMs: 100 });
    hold = false;
    const log = capturedLogger();
    const again = new EventHooks({ database: db, logger: log.logger, ssrf: { allowCidrs: ['127.0.0.1/32'] }, delivery: { jitter: 'none', retrySchedule: [10] } });
    await again.start();
    await r.waitFor(2);
    expect(r.received[1]!.headers['webhook-id']).toBe(r.received[0]!.headers['webhook-id']);
    const d = await waitUntil(async () => (await again.deliveries(h.id)).data.find((x) => x.state === 'succeeded'));
    expect(d.attempts.map((a) => a.status)).toEqual([null, 200]);
    await again.close();
  });
});
