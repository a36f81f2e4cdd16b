/**
 * The `wasm` handler through the real service: transforms compiled by
 * `npm run build` (assembly/transforms, test/fixtures/transforms), a real
 * receiver on 127.0.0.1, the SQLite outbox.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EventHookValidationError } from '../../host/errors.js';
import { verifyWebhook } from '../../host/hooks/index.js';
import { ROOT } from '../helpers/paths.js';
import { receiver, testService, waitUntil, type Receiver, type TestService } from './helpers.js';

const SECRET = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;
const TRANSFORMS = join(ROOT, 'dist', 'transforms');
const fixture = (name: string) => readFileSync(join(ROOT, 'build', 'fixtures', 'transforms', `${name}.wasm`)).toString('base64');

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

async function issuesOf(p: Promise<unknown>): Promise<unknown> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(EventHookValidationError);
  return (err as EventHookValidationError).issues;
}

const deliveriesOf = async (hookId: string) => (await svc!.hooks.deliveries(hookId)).data;

describe('handler wasm: delivery', () => {
  it('a crud event is transformed (module by path under modules_dir) and delivered with the transform body and headers, signed', async () => {
    const r = await recv();
    svc = await testService({ modulesDir: TRANSFORMS });
    const hook = await svc.hooks.createHook({
      source: 'crud',
      event: 'services',
      handler: 'wasm',
      config: { module: { path: 'slack.wasm' }, url: r.url, secret: SECRET, headers: { 'x-team': 'blue', 'X-Hookwire-Transform': 'configured' } },
    });
    expect(hook.config).toMatchObject({ module: { path: 'slack.wasm' }, url: r.url, allow_url: false, timeout_ms: 100, max_memory_mb: 16 });
    await svc.hooks.emitCrud('services', 'create', { id: 's1', name: 'billing' });
    const [req] = await r.waitFor(1);
    expect(req!.method).toBe('POST');
    expect(req!.url).toBe('/hook');
    expect(JSON.parse(req!.body.toString())).toEqual({ text: 'services billing create' });
    expect(req!.headers['content-type']).toBe('application/json');
    // The configured header stays; the transform's replaces the configured one of the same name (any case).
    expect(req!.headers['x-team']).toBe('blue');
    expect(req!.headers['x-hookwire-transform']).toBe('slack');
    const v = verifyWebhook(SECRET, req!.headers, req!.body);
    const [d] = await waitUntil(async () => {
      const list = await deliveriesOf(hook.id);
      return list[0]?.state === 'succeeded' ? list : undefined;
    });
    expect(d!.id).toBe(v.id);
    expect(d!.attempts[0]).toMatchObject({ status: 200, error: null, url: r.url });
  });

  it('a dropped event is recorded as dropped (deliveries list, state filter) and nothing is sent', async () => {
    const r = await recv();
    svc = await testService({ modulesDir: TRANSFORMS });
    const hook = await svc.hooks.createHook({
      source: 'crud',
      event: 'consumers:create',
      handler: 'wasm',
      config: { module: { path: 'slack.wasm' }, url: r.url },
    });
    await svc.hooks.emitCrud('consumers', 'create', { id: 'c1', username: 'ann' });
    const [d] = await waitUntil(async () => {
      const list = await deliveriesOf(hook.id);
      return list[0]?.state === 'dropped' ? list : undefined;
    });
    expect(d).toMatchObject({ state: 'dropped', attempt_count: 1, last_error: null, last_status: null, next_attempt_at_ms: null });
    expect(d!.attempts).toEqual([expect.objectContaining({ attempt: 1, status: null, error: null, response: 'consumers events are not sent to Slack' })]);
    expect((await svc.hooks.allDeliveries({}, 'dropped')).data.map((x) => x.id)).toEqual([d!.id]);
    expect(r.received).toHaveLength(0);
    expect((await svc.hooks.metrics()).find((m) => m.name === 'hookwire_event_hooks_deliveries_dropped_total')?.value).toBe(1);
  });

  it('a looping transform is stopped by its deadline, retried per the schedule, then failed; another hook delivers meanwhile', async () => {
    const r = await recv();
    const other = await recv();
    svc = await testService();
    const looping = await svc.hooks.createHook({
      source: 'crud',
      event: 'services',
      handler: 'wasm',
      config: { module: { base64: fixture('loop') }, url: r.url, timeout_ms: 30 },
    });
    const webhook = await svc.hooks.createHook({ source: 'crud', event: 'services', handler: 'webhook', config: { url: other.url } });
    await svc.hooks.emitCrud('services', 'create', { id: 's1', name: 'billing' });
    const [sent] = await other.waitFor(1);
    expect(JSON.parse(sent!.body.toString())).toMatchObject({ schema: 'services', operation: 'create' });
    // Retry schedule [50, 50, 50]: 4 attempts, each stopped by the deadline.
    const [d] = await waitUntil(async () => {
      const list = await deliveriesOf(looping.id);
      return list[0]?.state === 'failed' ? list : undefined;
    }, 20_000);
    expect(d!.attempts).toHaveLength(4);
    for (const a of d!.attempts) {
      expect(a.error).toMatch(/^transform stopped by its deadline: 30 ms \(ran \d+ ms\)$/);
      expect(a.status).toBeNull();
    }
    expect(d!.last_error).toMatch(/^retries exhausted after 4 attempts; last: transform stopped by its deadline: 30 ms/);
    expect(r.received).toHaveLength(0);
    expect((await deliveriesOf(webhook.id))[0]?.state).toBe('succeeded');
  });

  it('one instance per hook serves every event (its globals persist)', async () => {
    const r = await recv();
    svc = await testService();
    await svc.hooks.createHook({ source: 'crud', event: 'services:create', handler: 'wasm', config: { module: { base64: fixture('counter') }, url: r.url } });
    for (const id of ['s1', 's2', 's3']) await svc.hooks.emitCrud('services', 'create', { id });
    const got = await r.waitFor(3);
    expect(got.map((x) => x.body.toString()).sort()).toEqual(['1', '2', '3']);
  });

  it('a trapping transform fails the attempt with the abort message, and a later event goes through (fresh instance)', async () => {
    const r = await recv();
    svc = await testService({ delivery: { retrySchedule: [] } });
    const hook = await svc.hooks.createHook({ source: 'crud', event: 'services', handler: 'wasm', config: { module: { base64: fixture('echo') }, url: r.url } });
    await svc.hooks.emitCrud('services', 'create', { id: 's1', name: 'fail' });
    const [failed] = await waitUntil(async () => {
      const list = await deliveriesOf(hook.id);
      return list[0]?.state === 'failed' ? list : undefined;
    });
    expect(failed!.attempts[0]!.error).toMatch(/^transform trapped: abort: asked to fail at test\/fixtures\/transforms\/echo\.ts:\d+:\d+$/);
    await svc.hooks.emitCrud('services', 'create', { id: 's2', name: 'ok' });
    const [req] = await r.waitFor(1);
    expect(JSON.parse(req!.body.toString())).toMatchObject({ schema: 'services', entity: { id: 's2', name: 'ok' } });
  });

  it('test() runs the transform: sends what it returns, or reports the drop', async () => {
    const r = await recv();
    svc = await testService({ modulesDir: TRANSFORMS });
    const hook = await svc.hooks.createHook({ source: 'crud', event: 'routes', handler: 'wasm', config: { module: { path: 'slack.wasm' }, url: r.url } });
    expect(await svc.hooks.test(hook.id, { schema: 'consumers', operation: 'create' })).toEqual({
      data: { schema: 'consumers', operation: 'create' },
      result: { dropped: true, reason: 'consumers events are not sent to Slack' },
    });
    const sent = await svc.hooks.test(hook.id, { schema: 'routes', operation: 'update', entity: { name: 'r1' } });
    expect(sent.result).toMatchObject({ status: 200 });
    const [req] = await r.waitFor(1);
    expect(JSON.parse(req!.body.toString())).toEqual({ text: 'routes r1 update' });
  });
});

describe('handler wasm: create, patch, delete', () => {
  it('refuses modules that do not compile, lack the export, have the wrong signature or import more than the runtime, naming /config/module', async () => {
    svc = await testService({ modulesDir: TRANSFORMS }, false);
    const create = (module: unknown) => svc!.hooks.createHook({ source: 'crud', handler: 'wasm', config: { module, url: 'http://127.0.0.1:9/' } });
    expect(await issuesOf(create({ base64: Buffer.from('not wasm at all').toString('base64') }))).toEqual([
      { path: '/config/module', message: expect.stringMatching(/^does not compile: /) },
    ]);
    expect(await issuesOf(create({ base64: fixture('no-export') }))).toEqual([
      { path: '/config/module', message: 'does not export the function "transform" (export function transform(event: string): string)' },
    ]);
    expect(await issuesOf(create({ base64: fixture('wrong-signature') }))).toEqual([
      { path: '/config/module', message: 'export "transform" must be transform(event: string): string (found 2 parameter(s), 1 result(s))' },
    ]);
    const plugin = readFileSync(join(ROOT, 'dist', 'hello-world.wasm')).toString('base64');
    expect(await issuesOf(create({ base64: plugin }))).toEqual([
      { path: '/config/module', message: expect.stringMatching(/^imports .*: a transform may import only the AssemblyScript runtime's env\.abort, env\.trace, env\.seed$/) },
    ]);
    expect(await issuesOf(create({ path: '../hello-world.wasm' }))).toEqual([
      { path: '/config/module', message: 'path "../hello-world.wasm" is not under wasm.modules_dir' },
    ]);
    expect(await issuesOf(create({ path: 'missing.wasm' }))).toEqual([
      { path: '/config/module', message: 'cannot read "missing.wasm" under wasm.modules_dir: ENOENT' },
    ]);
    expect(await issuesOf(create({ base64: '%%%' }))).toEqual([{ path: '/config/module', message: 'base64 is not valid base64 of the .wasm bytes' }]);
    const both = (await issuesOf(create({ path: 'slack.wasm', base64: 'AGFzbQ==' }))) as { path: string }[];
    expect(both.length).toBeGreaterThan(0);
    for (const i of both) expect(i.path).toMatch(/^\/config\/module/);
    expect((await svc.hooks.listHooks()).data).toEqual([]);
  });

  it('without wasm.modules_dir only base64 modules are accepted', async () => {
    svc = await testService({}, false);
    expect(await issuesOf(svc.hooks.createHook({ source: 'crud', handler: 'wasm', config: { module: { path: 'slack.wasm' }, url: 'http://127.0.0.1:9/' } }))).toEqual([
      { path: '/config/module', message: 'a module path needs wasm.modules_dir to be set (or give the module as base64)' },
    ]);
  });

  it('is listed, patched (the new module checked) and deleted like other hooks', async () => {
    svc = await testService({ modulesDir: TRANSFORMS }, false);
    const hook = await svc.hooks.createHook({ source: 'crud', handler: 'wasm', config: { module: { path: 'slack.wasm' }, url: 'http://127.0.0.1:9/' } });
    expect((await svc.hooks.listHooks()).data.map((h) => h.id)).toEqual([hook.id]);
    const patched = await svc.hooks.updateHook(hook.id, { config: { timeout_ms: 250 } });
    expect(patched.config).toMatchObject({ module: { path: 'slack.wasm' }, timeout_ms: 250 });
    expect(await issuesOf(svc.hooks.updateHook(hook.id, { config: { module: { base64: fixture('no-export') } } }))).toEqual([
      { path: '/config/module', message: expect.stringMatching(/^does not export the function "transform"/) },
    ]);
    expect((await svc.hooks.getHook(hook.id)).config).toMatchObject({ module: { path: 'slack.wasm' }, timeout_ms: 250 });
    const swapped = await svc.hooks.updateHook(hook.id, { config: { module: { base64: fixture('counter') } } });
    expect(swapped.config).toMatchObject({ module: { base64: fixture('counter') } });
    await svc.hooks.deleteHook(hook.id);
    expect((await svc.hooks.listHooks()).data).toEqual([]);
  });

  it("Kong's lambda handler is refused with a pointer to wasm", async () => {
    svc = await testService({}, false);
    expect(await issuesOf(svc.hooks.createHook({ source: 'crud', handler: 'lambda', config: { functions: ['return'] } } as never))).toEqual([
      { path: '/handler', message: expect.stringMatching(/^Kong's lambda handler \(Lua functions\) is not supported: .*use handler 'wasm'/) },
    ]);
  });
});
