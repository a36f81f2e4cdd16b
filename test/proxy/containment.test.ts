/**
 * Fault containment through the real gateway: a plugin that loops is stopped
 * at its deadline (in a stream callback, on_configure, on_tick,
 * on_http_call_response and on_log) and one that allocates without bound is
 * stopped at its memory cap, while the rest of the gateway keeps serving.
 * The first test runs `hookwire start` as a process, so SIGTERM is the real
 * signal path. Time bounds are generous "did not hang" bounds: the figures
 * measured are logged, not asserted tightly.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { wasmEventOf } from '../../host/hooks/sources.js';
import type { RuntimeEvent } from '../../host/vm/runtime.js';
import { PluginStartError } from '../../host/errors.js';
import { send, startGateway, type TestGateway } from '../helpers/gateway.js';
import { fixture, ROOT } from '../helpers/paths.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';

type Trapped = Extract<RuntimeEvent, { type: 'vm_trapped' }>;

const DEADLINE_MS = 100;
/** "Answered, not hung": far above the deadline + 100 ms the issue asks for, so a loaded machine does not fail the test. */
const ANSWERED_WITHIN_MS = DEADLINE_MS + 2_000;

let upstream: Upstream;
let dir: string;

beforeAll(async () => {
  upstream = await startUpstream();
  dir = await mkdtemp(join(tmpdir(), 'hookwire-containment-'));
});

afterAll(async () => {
  await upstream?.close();
  await rm(dir, { recursive: true, force: true });
});

async function timedSend(url: string, options: Parameters<typeof send>[1] = {}): Promise<{ status: number; ms: number; text: string }> {
  const t0 = performance.now();
  const r = await send(url, options);
  return { status: r.status, ms: performance.now() - t0, text: r.text };
}

const probe = (name: string, config: Record<string, string>, extra: Record<string, unknown> = {}) => ({
  name,
  wasm: fixture('lifecycle-probe'),
  configuration: config,
  ...extra,
});

describe('a looping plugin in the hookwire process', () => {
  it('is stopped at its deadline; the other route, the Admin API and SIGTERM keep working', async () => {
    const file = join(dir, 'loop.yaml');
    await writeFile(
      file,
      `proxy:
  listen: [{address: 127.0.0.1, port: 0}]
admin:
  listen: {address: 127.0.0.1, port: 0}
event_hooks: {store: ":memory:"}
wasm: {call_deadline_ms: ${DEADLINE_MS}}
services:
  - {name: echo, url: "${upstream.url}"}
routes:
  - {name: healthy, service: echo, paths: [/ok]}
  - name: looping
    service: echo
    paths: [/loop]
    plugins: [{name: looper, wasm: "${fixture('lifecycle-probe')}", configuration: {request_headers: spin}}]
`,
    );
    const child = spawn(process.execPath, [join(ROOT, 'bin', 'hookwire.js'), 'start', '-c', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: Record<string, unknown>[] = [];
    let buffered = '';
    child.stdout.on('data', (d: Buffer) => {
      buffered += d.toString();
      const parts = buffered.split('\n');
      buffered = parts.pop()!;
      for (const p of parts) lines.push(JSON.parse(p) as Record<string, unknown>);
    });
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
    try {
      const waitFor = async (pred: (l: Record<string, unknown>) => boolean) => {
        for (let i = 0; i < 500; i++) {
          const hit = lines.find(pred);
          if (hit) return hit;
          await new Promise((r) => setTimeout(r, 20));
        }
        throw new Error(`log line not seen: ${JSON.stringify(lines)}`);
      };
      const proxy = (await waitFor((l) => String(l.msg).startsWith('proxy listening'))).url as string;
      const admin = (await waitFor((l) => String(l.msg).startsWith('admin listening'))).url as string;

      // The looping request, then at once the healthy route and the Admin API: the
      // latter wait only until the guard stops the loop.
      const loop = timedSend(proxy + '/loop');
      await new Promise((r) => setTimeout(r, 10));
      const [looped, ok, status] = await Promise.all([loop, timedSend(proxy + '/ok'), timedSend(admin + '/status')]);
      console.info(`containment: /loop answered in ${looped.ms.toFixed(0)} ms, /ok in ${ok.ms.toFixed(0)} ms, admin in ${status.ms.toFixed(0)} ms`);
      expect(looped.status).toBe(503);
      expect(ok.status).toBe(200);
      expect(status.status).toBe(200);
      for (const r of [looped, ok, status]) expect(r.ms).toBeLessThan(ANSWERED_WITHIN_MS);

      const trapped = await waitFor((l) => l.msg === 'VM trapped');
      expect(trapped).toMatchObject({ callback: 'proxy_on_request_headers', reason: expect.stringContaining(`deadline exceeded: ${DEADLINE_MS} ms in proxy_on_request_headers`) });
      expect((await send(proxy + '/ok')).status).toBe(200);
      const metrics = await send(admin + '/metrics');
      expect(metrics.text).toMatch(/hookwire_wasm_deadline_exceeded_total\{plugin="looper"\} 1/);
      expect(metrics.text).toMatch(/hookwire_filter_traps_total\{plugin="looper"\} 1/);

      const t0 = performance.now();
      child.kill('SIGTERM');
      expect(await exited).toEqual({ code: 0, signal: null });
      expect(performance.now() - t0).toBeLessThan(ANSWERED_WITHIN_MS + 5_000);
    } finally {
      child.kill('SIGKILL');
    }
  }, 30_000);
});

describe('looping plugins in each root callback, and the memory bomb, through the gateway', () => {
  let gw: TestGateway;
  const events: RuntimeEvent[] = [];
  const trapsOf = (plugin: string) => events.filter((e): e is Trapped => e.type === 'vm_trapped' && e.plugins.includes(plugin));

  beforeAll(async () => {
    gw = await startGateway(
      {
        wasm: { call_deadline_ms: DEADLINE_MS },
        services: [{ name: 'echo', url: upstream.url }],
        routes: [
          { name: 'healthy', service: 'echo', paths: ['/ok'] },
          { name: 'tick', service: 'echo', paths: ['/tick'], plugins: [probe('tick-looper', { configure: 'tick|20', tick: 'spin' })] },
          {
            name: 'call',
            service: 'echo',
            paths: ['/call'],
            plugins: [probe('call-looper', { request_headers: 'call|echo', http_call_response: 'spin' })],
          },
          { name: 'log', service: 'echo', paths: ['/log'], plugins: [probe('log-looper', { log: 'spin' })] },
          {
            name: 'hog',
            service: 'echo',
            paths: ['/hog'],
            plugins: [probe('hog', { request_headers: 'hog|256' }, { limits: { max_memory_mb: 16 } })],
          },
        ],
      },
      { onRuntimeEvent: (e) => events.push(e) },
    );
  });

  afterAll(async () => {
    await gw?.close();
  });

  async function until(pred: () => boolean): Promise<void> {
    for (let i = 0; i < 250 && !pred(); i++) await new Promise((r) => setTimeout(r, 20));
    expect(pred()).toBe(true);
  }

  it('on_tick: the tick is stopped, the plugin fails closed, the rest serves', async () => {
    await until(() => trapsOf('tick-looper').length > 0);
    expect(trapsOf('tick-looper')[0]).toMatchObject({
      callback: 'proxy_on_tick',
      reason: expect.stringContaining(`deadline exceeded: ${DEADLINE_MS} ms in proxy_on_tick`),
      deadlineExceeded: { plugin: 'tick-looper', deadlineMs: DEADLINE_MS },
    });
    // The event-hooks `wasm` source publishes it as vm-trapped with that reason.
    expect(wasmEventOf(trapsOf('tick-looper')[0]!)).toMatchObject({ event: 'vm-trapped', data: { reason: expect.stringContaining('deadline exceeded') } });
    expect((await send(gw.url + '/tick')).status).toBe(503);
    expect((await send(gw.url + '/ok')).status).toBe(200);
  });

  it('on_http_call_response: the callback is stopped, the rest serves', async () => {
    const r = await timedSend(gw.url + '/call');
    expect(r.ms).toBeLessThan(ANSWERED_WITHIN_MS);
    await until(() => trapsOf('call-looper').length > 0);
    expect(trapsOf('call-looper')[0]).toMatchObject({ callback: 'proxy_on_http_call_response', reason: expect.stringContaining('deadline exceeded') });
    expect((await send(gw.url + '/ok')).status).toBe(200);
    expect((await send(gw.url + '/call')).status).toBe(503);
  });

  it('on_log: the response is already sent; the trap is counted like any filter trap', async () => {
    expect((await send(gw.url + '/log')).status).toBe(200);
    await until(() => trapsOf('log-looper').length > 0);
    expect(trapsOf('log-looper')[0]).toMatchObject({ callback: 'proxy_on_log', reason: expect.stringContaining('deadline exceeded') });
    const metrics = gw.gateway.metricsText();
    expect(metrics).toMatch(/hookwire_filter_traps_total\{plugin="log-looper"\} 1/);
    expect(metrics).toMatch(/hookwire_wasm_deadline_exceeded_total\{plugin="log-looper"\} 1/);
    expect((await send(gw.url + '/log')).status).toBe(503);
  });

  it('a guest allocating without bound fails memory.grow at its cap and traps; memory stays bounded', async () => {
    const rssBefore = process.memoryUsage().rss;
    const r = await timedSend(gw.url + '/hog');
    expect(r.status).toBe(503);
    expect(trapsOf('hog')[0]).toMatchObject({ callback: 'proxy_on_request_headers' });
    expect(trapsOf('hog')[0]!.reason).not.toContain('deadline');
    const vm = gw.gateway.runtime.vms().find((v) => v.vmId === 'hog')!;
    expect(vm.memory.size).toBeLessThanOrEqual(16 * 1024 * 1024);
    // Without the cap the guest would have grown toward 4 GiB.
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(256 * 1024 * 1024);
    expect(gw.gateway.metricsText()).toMatch(/hookwire_filter_traps_total\{plugin="hog"\} 1/);
    expect((await send(gw.url + '/ok')).status).toBe(200);
  });
});

describe('a looping on_configure', () => {
  it('fails the start at the start deadline, naming the plugin and callback', async () => {
    const t0 = performance.now();
    const err = await startGateway({
      wasm: { start_deadline_ms: 300 },
      services: [{ name: 'echo', url: upstream.url }],
      routes: [{ name: 'r', service: 'echo', paths: ['/'], plugins: [probe('configure-looper', { configure: 'spin' })] }],
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PluginStartError);
    expect((err as Error).message).toMatch(/configure-looper.*deadline exceeded: 300 ms in proxy_on_configure/s);
    expect(performance.now() - t0).toBeLessThan(300 + ANSWERED_WITHIN_MS);
  });

  it('a plugin may set its own, longer, deadline', async () => {
    const err = await startGateway({
      wasm: { start_deadline_ms: 300 },
      services: [{ name: 'echo', url: upstream.url }],
      routes: [{ name: 'r', service: 'echo', paths: ['/'], plugins: [probe('own', { configure: 'spin' }, { limits: { start_deadline_ms: 400 } })] }],
    }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/deadline exceeded: 400 ms in proxy_on_configure/);
  });
});
