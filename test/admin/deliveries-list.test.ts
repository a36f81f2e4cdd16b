// GET /event-hooks/deliveries: every hook's deliveries in one list, newest first, filtered by state, paginated with the filter kept.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startReceiver, startTestApp, waitFor, type Receiver, type TestApp } from './helpers.js';

let t: TestApp;
let ok: Receiver;
let down: Receiver;

beforeAll(async () => {
  t = await startTestApp({ event_hooks: { delivery: { retry_schedule_ms: [] } } });
  ok = await startReceiver();
  down = await startReceiver();
  down.answer = (_hit, res) => {
    res.writeHead(500, { 'content-type': 'text/plain' });
    res.end('down');
  };
});

afterAll(async () => {
  await t?.close();
  await ok?.close();
  await down?.close();
});

const api = (method: string, path: string, body?: unknown) => call(t.admin, method, path, body);

describe('GET /event-hooks/deliveries', () => {
  it('lists the deliveries of every hook, newest first, and filters by state', async () => {
    const good = await api('POST', '/event-hooks', { source: 'crud', event: 'consumers', handler: 'webhook', config: { url: ok.url } });
    const bad = await api('POST', '/event-hooks', { source: 'crud', event: 'consumers', handler: 'webhook', config: { url: down.url } });
    expect([good.status, bad.status]).toEqual([201, 201]);
    for (const username of ['a', 'b', 'c']) expect((await api('POST', '/consumers', { username })).status).toBe(201);

    let all: any;
    await waitFor(async () => {
      all = (await api('GET', '/event-hooks/deliveries')).body;
      return all.data.length === 6 && all.data.every((d: any) => d.state === 'succeeded' || d.state === 'failed') ? null : JSON.stringify(all.data.map((d: any) => d.state));
    });
    const created = all.data.map((d: any) => d.created_at_ms);
    expect([...created].sort((x: number, y: number) => y - x)).toEqual(created);
    expect(new Set(all.data.map((d: any) => d.hook_id))).toEqual(new Set([good.body.id, bad.body.id]));
    expect(all.next).toBeNull();

    const failed = (await api('GET', '/event-hooks/deliveries?state=failed')).body;
    expect(failed.data).toHaveLength(3);
    expect(failed.data.every((d: any) => d.hook_id === bad.body.id && d.state === 'failed' && d.attempts[0].status === 500)).toBe(true);
    const succeeded = (await api('GET', '/event-hooks/deliveries?state=succeeded')).body;
    expect(succeeded.data.map((d: any) => d.hook_id)).toEqual([good.body.id, good.body.id, good.body.id]);
    expect((await api('GET', '/event-hooks/deliveries?state=pending')).body.data).toEqual([]);
  });

  it('pages with the filter kept in `next`', async () => {
    const first = (await api('GET', '/event-hooks/deliveries?state=failed&size=2')).body;
    expect(first.data).toHaveLength(2);
    expect(first.next).toMatch(/^\/event-hooks\/deliveries\?size=2&offset=[^&]+&state=failed$/);
    const second = (await api('GET', first.next)).body;
    expect(second.data).toHaveLength(1);
    expect(second.data[0].state).toBe('failed');
    expect(second.next).toBeNull();
    const ids = [...first.data, ...second.data].map((d: any) => d.id);
    expect(new Set(ids).size).toBe(3);
  });

  it('refuses an unknown state or offset, naming the parameter', async () => {
    const r = await api('GET', '/event-hooks/deliveries?state=delivered');
    expect(r.status).toBe(400);
    expect(r.body.issues).toEqual([{ path: '/state', message: 'must be one of pending, succeeded, failed, dropped (found "delivered")' }]);
    expect((await api('GET', '/event-hooks/deliveries?offset=nope')).status).toBe(400);
  });
});
