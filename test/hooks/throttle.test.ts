import { describe, it, expect, afterEach } from 'vitest';
import { createHash } from 'node:crypto';
import { digest, normalizeTable } from '../../host/hooks/digest.js';
import { Throttle } from '../../host/hooks/throttle.js';
import { emitRecord, publishRecord, testService, type TestService } from './helpers.js';

const md5 = (s: string): string => createHash('md5').update(s).digest('hex');

describe('digest (Kong normalize_table + md5)', () => {
  it('flattens sorted keys into k:v:k2:v2, recursing into tables', () => {
    expect(normalizeTable({ b: 'x', a: 'y' })).toBe('a:y:b:x');
    expect(normalizeTable({ z: { b: '1', a: '2' }, a: 'q' })).toBe('a:q:z:a:2:b:1');
    expect(digest({ b: 'x', a: 'y' })).toBe(md5('a:y:b:x'));
  });

  it('includes numbers and booleans (Kong 3.10 fix): different values, different digests', () => {
    expect(normalizeTable({ n: 1, ok: true, s: 'x' })).toBe('n:1:ok:true:s:x');
    expect(digest({ n: 1 })).not.toBe(digest({ n: 2 }));
    expect(digest({ ok: true })).not.toBe(digest({ ok: false }));
    expect(digest({ limit: 10, rate: 11.5 })).not.toBe(digest({ limit: 10, rate: 12.5 }));
  });

  it('skips nulls (cjson.null) and numbers arrays as Lua tables (1-based)', () => {
    expect(normalizeTable({ a: null, b: 'x' })).toBe('b:x');
    expect(normalizeTable({ l: ['p', 'q'] })).toBe('l:1:p:2:q');
  });

  it('covers only the unique fields when there are some, the whole data otherwise (empty list = none)', () => {
    const a = { consumer: 'c1', ip: '1.2.3.4', service: 's', rate: 10 };
    const b = { ...a, rate: 99 };
    expect(digest(a, ['consumer', 'ip', 'service'])).toBe(digest(b, ['consumer', 'ip', 'service']));
    expect(digest(a)).not.toBe(digest(b));
    expect(digest(a, [])).toBe(digest(a));
    expect(digest(a, ['consumer'])).toBe(md5('consumer:c1'));
  });

  it('a unique field named `__proto__` or `constructor` counts like any other (issue 19)', () => {
    const withProto = (v: string) => JSON.parse(`{"__proto__":"${v}","constructor":"k"}`) as Record<string, unknown>;
    expect(digest(withProto('a'), ['__proto__'])).toBe(md5('__proto__:a'));
    expect(digest(withProto('a'), ['__proto__'])).not.toBe(digest(withProto('b'), ['__proto__']));
    expect(digest(withProto('a'), ['constructor'])).toBe(md5('constructor:k'));
    // A field the data does not have is nothing, not Object.prototype's.
    expect(digest({ a: 'x' }, ['constructor'])).toBe(md5(''));
  });
});

describe('Kong on_change / snooze table (Throttle)', () => {
  const A = digest({ v: 'a' });
  const B = digest({ v: 'b' });
  const run = (on_change: boolean | null, snooze: number | null, steps: [number, string][]): string[] => {
    const t = new Throttle();
    const hook = { id: 'h1', on_change, snooze };
    return steps.map(([at, d]) => t.admit(hook, 'src', 'ev', d, at * 1000));
  };

  it('on_change null/false, snooze null: every event fires', () => {
    expect(run(null, null, [[0, A], [1, A], [2, A]])).toEqual(['fire', 'fire', 'fire']);
    expect(run(false, null, [[0, A], [1, A]])).toEqual(['fire', 'fire']);
  });

  it('on_change true, snooze null: fires when the digest differs from the last one', () => {
    expect(run(true, null, [[0, A], [1, A], [2, B], [3, B], [4, A], [500, A]])).toEqual([
      'fire',
      'unchanged',
      'fire',
      'unchanged',
      'fire',
      'unchanged', // never expires
    ]);
  });

  it('snooze N alone: drops (not delays) repeats for N s from the first fired event, whatever the digest', () => {
    expect(run(null, 60, [[0, A], [10, B], [59, A], [60, B]])).toEqual(['fire', 'snoozed', 'snoozed', 'fire']);
  });

  it('on_change + snooze: keyed per digest, each distinct digest fires once per window', () => {
    expect(run(true, 60, [[0, A], [10, B], [20, A], [30, B], [61, A], [65, B], [71, B]])).toEqual([
      'fire',
      'fire',
      'snoozed',
      'snoozed',
      'fire',
      'snoozed',
      'fire',
    ]);
  });

  it('state is per hook, per source and per event', () => {
    const t = new Throttle();
    const h1 = { id: 'h1', on_change: null, snooze: 60 };
    const h2 = { id: 'h2', on_change: null, snooze: 60 };
    expect(t.admit(h1, 's', 'e', A, 0)).toBe('fire');
    expect(t.admit(h2, 's', 'e', A, 0)).toBe('fire');
    expect(t.admit(h1, 's', 'e2', A, 0)).toBe('fire');
    expect(t.admit(h1, 's2', 'e', A, 0)).toBe('fire');
    expect(t.admit(h1, 's', 'e', A, 1)).toBe('snoozed');
    t.forget('h1');
    expect(t.admit(h1, 's', 'e', A, 2)).toBe('fire');
  });
});

describe('throttling in the service (injectable clock)', () => {
  let svc: TestService | undefined;
  afterEach(async () => {
    await svc?.close();
    svc = undefined;
  });

  it('the snooze timeline: t0 fires, t50 dropped, t70 fires, t100 dropped, t131 fires (snooze 60)', async () => {
    let now = 1_764_000_000_000;
    svc = await testService({ clock: { now: () => now } }, false);
    await svc.hooks.createHook({ source: 'rate-limiting-advanced', event: 'rate-limit-exceeded', handler: 'log', snooze: 60 });
    await svc.hooks.ingest([publishRecord('rate-limiting-advanced', 'rate-limit-exceeded', ['consumer', 'ip', 'service'])]);
    const t0 = now;
    const fired: number[] = [];
    for (const t of [0, 50, 70, 100, 131]) {
      now = t0 + t * 1000;
      const r = await svc.hooks.ingest([emitRecord('rate-limiting-advanced', 'rate-limit-exceeded', { consumer: 'c', ip: '1.1.1.1', service: 's', rate: t })]);
      expect(r.accepted).toBe(1);
      if (r.deliveries === 1) fired.push(t);
    }
    expect(fired).toEqual([0, 70, 131]);
    const page = await svc.hooks.deliveries((await svc.hooks.listHooks()).data[0]!.id);
    expect(page.data.map((d) => d.data.rate)).toEqual([131, 70, 0]);
  });

  it('on_change over numbers and booleans: a changed count or flag fires, a repeat does not', async () => {
    svc = await testService({}, false);
    await svc.hooks.createHook({ source: 'counter', event: 'tick', handler: 'log', on_change: true });
    await svc.hooks.ingest([publishRecord('counter', 'tick')]);
    const fire = async (data: Record<string, unknown>): Promise<number> => (await svc!.hooks.emit('counter', 'tick', data)).deliveries;
    expect(await fire({ n: 1, up: true })).toBe(1);
    expect(await fire({ n: 1, up: true })).toBe(0);
    expect(await fire({ n: 2, up: true })).toBe(1);
    expect(await fire({ n: 2, up: false })).toBe(1);
    expect(await fire({ n: 2, up: false })).toBe(0);
    const samples = await svc.hooks.metrics();
    expect(samples.find((s) => s.name === 'hookwire_event_hooks_events_throttled_total' && s.labels?.reason === 'on_change')?.value).toBe(2);
  });

  it('on_change with unique fields: only those fields count', async () => {
    svc = await testService({}, false);
    await svc.hooks.createHook({ source: 'rla', event: 'exceeded', handler: 'log', on_change: true });
    await svc.hooks.ingest([publishRecord('rla', 'exceeded', ['consumer'])]);
    expect((await svc.hooks.emit('rla', 'exceeded', { consumer: 'a', rate: 1 })).deliveries).toBe(1);
    expect((await svc.hooks.emit('rla', 'exceeded', { consumer: 'a', rate: 2 })).deliveries).toBe(0);
    expect((await svc.hooks.emit('rla', 'exceeded', { consumer: 'b', rate: 2 })).deliveries).toBe(1);
  });

  it('on_change + snooze in the service keys per digest', async () => {
    let now = 1_000_000;
    svc = await testService({ clock: { now: () => now } }, false);
    await svc.hooks.createHook({ source: 'p', event: 'e', handler: 'log', on_change: true, snooze: 60 });
    await svc.hooks.ingest([publishRecord('p', 'e')]);
    const at = async (s: number, v: string): Promise<number> => {
      now = 1_000_000 + s * 1000;
      return (await svc!.hooks.emit('p', 'e', { v })).deliveries;
    };
    expect([await at(0, 'a'), await at(1, 'b'), await at(2, 'a'), await at(61, 'a'), await at(62, 'b')]).toEqual([1, 1, 0, 1, 1]);
  });
});
