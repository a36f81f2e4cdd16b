/**
 * Several event-hooks services (nodes) on one PostgreSQL database behave as
 * one: a hook created on one node is matched by events accepted on another,
 * every delivery is sent by exactly one node, and on_change / snooze hold
 * across nodes. Real services, a real receiver, a private PostgreSQL.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { EventHooks } from '../../host/hooks/index.js';
import { PgEventHookStore } from '../../host/hooks/pg-store.js';
import { usePostgres } from '../helpers/postgres.js';
import { capturedLogger, receiver, waitUntil, type Receiver } from './helpers.js';

const pgc = usePostgres();
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function node(url: string): Promise<EventHooks> {
  const store = new PgEventHookStore(url, { pollIntervalMs: 200 });
  const hooks = new EventHooks({
    store,
    logger: capturedLogger('warn').logger,
    ssrf: { allowCidrs: ['127.0.0.1/32'] },
    delivery: { retrySchedule: [50, 50, 50], jitter: 'none', timeoutMs: 5000, leaseMs: 10000, pollIntervalMs: 100 },
  });
  cleanups.push(async () => {
    await hooks.close({ timeoutMs: 1000 });
    await store.close();
  });
  await hooks.start();
  return hooks;
}

async function recv(): Promise<Receiver> {
  const r = await receiver();
  cleanups.push(() => r.close());
  return r;
}

const ids = (r: Receiver) => r.received.map((x) => x.headers['webhook-id']!);

const LONG = { timeout: 120_000 };

describe('event hooks on one PostgreSQL, two nodes', () => {
  it('a hook created on node A is matched by events accepted on node B; deleting it on B stops matching on A', LONG, async () => {
    const url = await pgc.cluster.createDatabase('cl');
    const [a, b] = [await node(url), await node(url)];
    const r = await recv();
    const hook = await a.createHook({ source: 'crud', event: 'services', handler: 'webhook', config: { url: r.url } });
    await waitUntil(() => b.getHook(hook.id).then(() => true, () => false), 10_000, 'the hook on node B');
    const res = await b.emitCrud('services', 'create', { id: 's1', name: 'svc' });
    expect(res[0]!.deliveries).toBe(1);
    await r.waitFor(1);
    await b.deleteHook(hook.id);
    await waitUntil(() => a.getHook(hook.id).then(() => false, () => true), 10_000, 'the hook gone on node A');
    expect((await a.emitCrud('services', 'create', { id: 's2', name: 'svc2' }))[0]!.deliveries).toBe(0);
  });

  it('events accepted on both nodes: each delivery arrives exactly once, sent by one node or the other', LONG, async () => {
    const url = await pgc.cluster.createDatabase('cl');
    const [a, b] = [await node(url), await node(url)];
    const r = await recv();
    const hook = await a.createHook({ source: 'crud', event: 'services', handler: 'webhook', config: { url: r.url } });
    await waitUntil(() => b.getHook(hook.id).then(() => true, () => false), 10_000, 'the hook on node B');
    const N = 300;
    await Promise.all(Array.from({ length: N }, (_, i) => (i % 2 ? a : b).emitCrud('services', 'create', { id: `s${i}`, name: `n${i}` })));
    await r.waitFor(N, 30_000);
    // Nothing more comes (a second send would arrive within the poll interval).
    await new Promise((res) => setTimeout(res, 500));
    expect(r.received).toHaveLength(N);
    expect(new Set(ids(r)).size).toBe(N);
    await waitUntil(async () => (await a.metrics()).find((m) => m.name.includes('pending'))?.value === 0 || undefined, 10_000, 'nothing pending');
  });

  it('on_change and snooze hold across nodes (decided in the database)', LONG, async () => {
    const url = await pgc.cluster.createDatabase('cl');
    const [a, b] = [await node(url), await node(url)];
    const r = await recv();
    const onChange = await a.createHook({ source: 'crud', event: 'consumers', handler: 'webhook', on_change: true, config: { url: `${r.url}?h=change` } });
    const snooze = await a.createHook({ source: 'crud', event: 'routes', handler: 'webhook', snooze: 60, config: { url: `${r.url}?h=snooze` } });
    await waitUntil(() => b.getHook(snooze.id).then(() => true, () => false), 10_000, 'the hooks on node B');
    const same = { id: 'c1', username: 'same' };
    expect((await a.emitCrud('consumers', 'create', same))[0]!.deliveries).toBe(1);
    expect((await b.emitCrud('consumers', 'create', same))[0]!.deliveries).toBe(0); // unchanged, although node B never saw it
    expect((await b.emitCrud('consumers', 'create', { id: 'c1', username: 'other' }))[0]!.deliveries).toBe(1);
    expect((await b.emitCrud('routes', 'create', { id: 'r1' }))[0]!.deliveries).toBe(1);
    expect((await a.emitCrud('routes', 'create', { id: 'r2' }))[0]!.deliveries).toBe(0); // snoozed cluster-wide
    await r.waitFor(3);
    await new Promise((res) => setTimeout(res, 300));
    expect(r.received.map((x) => x.url).sort()).toEqual(['/hook?h=change', '/hook?h=change', '/hook?h=snooze']);
    expect(onChange.on_change).toBe(true);
  });
});
