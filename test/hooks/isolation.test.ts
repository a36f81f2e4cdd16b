import { describe, it, expect, afterEach } from 'vitest';
import { Circuit } from '../../host/hooks/circuit.js';
import { SqliteStore } from '../../host/hooks/index.js';
import { receiver, sleep, tempDir, testService, waitUntil, type Receiver, type TestService } from './helpers.js';

let svc: TestService | undefined;
const rs: Receiver[] = [];
afterEach(async () => {
  await svc?.close();
  svc = undefined;
  await Promise.all(rs.splice(0).map((r) => r.close()));
});

describe('Circuit (unit)', () => {
  const opts = { failureThreshold: 3, failureRatio: 0.5, minRequests: 10, windowMs: 1000, coolDownMs: 100 };

  it('opens after N consecutive failures, half-opens after the cool-down with one probe, closes on success', () => {
    const c = new Circuit(opts);
    expect(c.record(false, 0)).toBe(false);
    expect(c.record(false, 1)).toBe(false);
    expect(c.record(true, 2)).toBe(false); // a success resets the run
    c.record(false, 3);
    c.record(false, 4);
    expect(c.record(false, 5)).toBe(true);
    expect(c.state).toBe('open');
    expect(c.canStart(50)).toBe(false);
    expect(c.canStart(105)).toBe(true);
    c.start(105);
    expect(c.state).toBe('half-open');
    expect(c.canStart(106)).toBe(false); // one probe at a time
    c.record(true, 110);
    expect(c.state).toBe('closed');
  });

  it('a failed probe opens it again for another cool-down', () => {
    const c = new Circuit(opts);
    for (let i = 0; i < 3; i++) c.record(false, i);
    c.start(200);
    expect(c.record(false, 201)).toBe(true);
    expect(c.state).toBe('open');
    expect(c.reopenAt).toBe(301);
  });

  it('opens on the failure ratio once enough outcomes are in the window', () => {
    const c = new Circuit({ ...opts, failureThreshold: 100 });
    for (let i = 0; i < 9; i++) c.record(i % 2 === 0, i); // 4 failures, 5 successes
    expect(c.state).toBe('closed');
    expect(c.record(false, 9)).toBe(true); // 5/10 = 0.5
  });
});

describe('isolation in the dispatcher', () => {
  it('the circuit opens on a failing endpoint, postpones (not fails) its deliveries, then half-opens and drains', async () => {
    let healthy = false;
    let concurrent = 0;
    let maxConcurrentAfterOpen = 0;
    let opened = false;
    const r = await receiver(async (_, res) => {
      concurrent++;
      if (opened) maxConcurrentAfterOpen = Math.max(maxConcurrentAfterOpen, concurrent);
      await sleep(20);
      concurrent--;
      res.statusCode = healthy ? 200 : 503;
      res.end();
    });
    rs.push(r);
    svc = await testService({
      delivery: { perOriginConcurrency: 1, retrySchedule: [60_000] },
      circuit: { failureThreshold: 3, coolDownMs: 400 },
    });
    const hook = await svc.hooks.createHook({ source: 'crud', event: 'consumers:create', handler: 'webhook', config: { url: r.url } });
    for (let i = 0; i < 6; i++) await svc.hooks.emitCrud('consumers', 'create', { id: `c${i}` });
    await r.waitFor(3);
    await waitUntil(() => svc!.hooks.circuits().find((c) => c.origin === r.origin && c.state === 'open'));
    opened = true;
    await sleep(200);
    expect(r.received).toHaveLength(3); // nothing while open
    const list = (await svc.hooks.deliveries(hook.id)).data;
    expect(list.filter((d) => d.state === 'pending')).toHaveLength(6); // 3 waiting to retry, 3 never tried: none failed
    healthy = true;
    // After the cool-down one probe goes out; its success closes the circuit and the rest drain.
    await waitUntil(() => svc!.hooks.circuits().find((c) => c.origin === r.origin && c.state === 'closed'), 5000);
    await waitUntil(async () => {
      const ds = (await svc!.hooks.deliveries(hook.id)).data;
      return ds.filter((d) => d.state === 'succeeded').length >= 3 ? ds : undefined;
    }, 5000);
    expect(maxConcurrentAfterOpen).toBe(1);
    const m = await svc.hooks.metrics();
    expect(m.find((s) => s.name === 'hookwire_event_hooks_circuits_opened_total')!.value).toBe(1);
  });

  it('a slow endpoint does not delay a fast one, and gets at most perOriginConcurrency requests at once', async () => {
    let slowConcurrent = 0;
    let slowMax = 0;
    const slow = await receiver(async (_, res) => {
      slowConcurrent++;
      slowMax = Math.max(slowMax, slowConcurrent);
      await sleep(1500);
      slowConcurrent--;
      res.end();
    });
    const fast = await receiver();
    rs.push(slow, fast);
    svc = await testService({ delivery: { perOriginConcurrency: 2, maxInFlight: 16 } });
    await svc.hooks.ingest([{ v: 1, type: 'publish', source: 'app', event: 'e', fields: [], plugin: 'p' }]);
    await svc.hooks.createHook({ source: 'app', event: 'e', handler: 'webhook', config: { url: slow.url } });
    await svc.hooks.createHook({ source: 'app', event: 'e', handler: 'webhook', config: { url: fast.url } });
    const t0 = Date.now();
    for (let i = 0; i < 10; i++) await svc.hooks.emit('app', 'e', { i });
    await fast.waitFor(10, 3000);
    const fastDone = Date.now() - t0;
    expect(fastDone).toBeLessThan(1000);
    expect(slow.received.length).toBeLessThanOrEqual(2);
    expect(slowMax).toBeLessThanOrEqual(2);
  });
});

describe('dispatcher and a slow (asynchronous) store', () => {
  it('work noticed while a store round trip is pending is not lost (no rescan needed)', async () => {
    const r = await receiver();
    rs.push(r);
    const t = tempDir();
    const store = new SqliteStore(t.db);
    // Every cycle answers 3 ms late, as a networked store would: accepts land in between.
    const cycle = store.cycle.bind(store);
    store.cycle = async (...args) => {
      const res = await cycle(...args);
      await sleep(3);
      return res;
    };
    svc = await testService({ store, delivery: { pollIntervalMs: 60_000, perOriginConcurrency: 4 } });
    await svc.hooks.ingest([{ v: 1, type: 'publish', source: 'app', event: 'e', fields: [], plugin: 'p' }]);
    await svc.hooks.createHook({ source: 'app', event: 'e', handler: 'webhook', config: { url: r.url } });
    for (let i = 0; i < 40; i++) {
      await svc.hooks.emit('app', 'e', { i });
      await sleep(i % 3);
    }
    await r.waitFor(40, 3000);
    await sleep(300); // a duplicate would arrive after the 40th
    const seen = r.received.map((q) => (JSON.parse(q.body.toString('utf8')) as { i: number }).i).sort((a, b) => a - b);
    expect(seen).toEqual(Array.from({ length: 40 }, (_, i) => i)); // every event once, none twice
    await svc.close();
    svc = undefined;
    await store.close();
    t.cleanup();
  });
});
