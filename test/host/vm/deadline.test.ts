/**
 * The guard (host/vm/instrument.ts): a guest call that runs past its deadline
 * is stopped inside the call and handled like a trap; a guest that allocates
 * without bound fails its memory.grow at the cap and traps. Driven through the
 * emulator with lifecycle-probe's "spin" (loop forever) and "hog|KiB" (allocate
 * forever) ops. Deadlines are short so the suite stays quick; the assertions
 * on time are only "stopped, not hung" bounds.
 */
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { FilterResult, HostEmulator } from '../../../host/testing/emulator.js';
import { DEFAULT_LIMITS } from '../../../host/vm/deadline.js';
import { instrumentModule } from '../../../host/vm/instrument.js';
import type { RuntimeEvent } from '../../../host/vm/runtime.js';
import { PluginStartError } from '../../../host/errors.js';
import { fixture, plugin as pluginWasm } from '../../helpers/paths.js';
import { reports, startProbe } from './helpers.js';

type Trapped = Extract<RuntimeEvent, { type: 'vm_trapped' }>;

const LIMITS = { callDeadlineMs: 50, startDeadlineMs: 200 };
/** Generous "did not hang" bound for one stopped call. */
const STOPPED_WITHIN_MS = 5_000;

function trapped(host: HostEmulator): Trapped[] {
  return host.runtimeEvents().filter((e): e is Trapped => e.type === 'vm_trapped');
}

/** Run `fn`, return how long it took in ms. */
function timed(fn: () => void): number {
  const t0 = performance.now();
  fn();
  return performance.now() - t0;
}

describe('deadline', () => {
  it('stops a looping on_request_headers and fails the stream closed', async () => {
    const host = await startProbe({}, { limits: LIMITS });
    const id = host.initHttpContext();
    let result!: FilterResult;
    const ms = timed(() => (result = host.callOnRequestHeaders(id, { ':path': '/', 'x-ops': 'spin' }, true)));
    expect(ms).toBeGreaterThanOrEqual(LIMITS.callDeadlineMs);
    expect(ms).toBeLessThan(STOPPED_WITHIN_MS);
    expect(result).toBe(FilterResult.FAILED);
    expect(host.localResponse(id)).toMatchObject({ status: 503 });
    const [event] = trapped(host);
    expect(event).toMatchObject({
      callback: 'proxy_on_request_headers',
      plugins: ['plugin'],
      reason: expect.stringMatching(/^deadline exceeded: 50 ms in proxy_on_request_headers \(plugin plugin, stopped after \d+ ms\)$/),
      deadlineExceeded: { plugin: 'plugin', deadlineMs: 50 },
    });
    expect(host.plugin.healthy).toBe(false);
  });

  it.each([
    ['tick', 'proxy_on_tick', { configure: 'tick|1000', tick: 'spin' }, (h: HostEmulator) => h.tick()],
    [
      'http_call_response',
      'proxy_on_http_call_response',
      { http_call_response: 'spin' },
      (h: HostEmulator) => {
        const id = h.initHttpContext();
        expect(h.callOnRequestHeaders(id, { ':path': '/', 'x-ops': 'call|backend;pause' })).toBe(FilterResult.PAUSE);
        h.respondToHttpCall(h.httpCalls()[0]!.token, { status: 200 });
      },
    ],
    [
      'log',
      'proxy_on_log',
      { log: 'spin' },
      (h: HostEmulator) => {
        const id = h.initHttpContext();
        h.callOnRequestHeaders(id, { ':path': '/' }, true);
        h.callOnResponseHeaders(id, { ':status': '200' }, true);
        h.completeHttpContext(id);
      },
    ],
  ] as const)('stops a looping on_%s', async (_phase, callback, config, trigger) => {
    const host = await startProbe(config, { limits: LIMITS, failurePolicy: 'reload' });
    const ms = timed(() => trigger(host));
    expect(ms).toBeLessThan(STOPPED_WITHIN_MS);
    expect(trapped(host)).toEqual([
      expect.objectContaining({ callback, reason: expect.stringContaining(`deadline exceeded: 50 ms in ${callback}`) }),
    ]);
    // The policy applies as after any trap: reload gives a working VM for the next stream.
    const id = host.initHttpContext();
    expect(host.callOnRequestHeaders(id, { ':path': '/', 'x-ops': 'count' }, true)).toBe(FilterResult.CONTINUE);
    expect(host.plugin.reloads).toBe(1);
  });

  it('gives on_configure the longer start deadline, and fails the start past it', async () => {
    const t0 = performance.now();
    const err = await startProbe({ configure: 'spin' }, { limits: LIMITS }).catch((e: unknown) => e);
    const ms = performance.now() - t0;
    expect(err).toBeInstanceOf(PluginStartError);
    expect((err as Error).message).toMatch(/deadline exceeded: 200 ms in proxy_on_configure/);
    expect(ms).toBeGreaterThanOrEqual(LIMITS.startDeadlineMs);
    expect(ms).toBeLessThan(STOPPED_WITHIN_MS + LIMITS.startDeadlineMs);
  });

  it('lets calls within the deadline run as before, with the default limits and with a deadline of 0', async () => {
    const host = await startProbe({ request_headers: 'count' });
    const id = host.initHttpContext();
    expect(host.callOnRequestHeaders(id, { ':path': '/' }, true)).toBe(FilterResult.CONTINUE);
    expect(reports(host, 'count')).toHaveLength(1);
    expect(host.runtime.limits).toEqual(DEFAULT_LIMITS);
    // A deadline of 0 is "none" (a looping call would then run forever, so only the normal path is run here).
    const off = await startProbe({ request_headers: 'count' }, { limits: { callDeadlineMs: 0 } });
    const id2 = off.initHttpContext();
    expect(off.callOnRequestHeaders(id2, { ':path': '/' }, true)).toBe(FilterResult.CONTINUE);
    expect(trapped(off)).toEqual([]);
  });
});

describe('memory cap', () => {
  it('fails memory.grow at max_memory_mb: the allocating guest traps, the memory stays under the cap', async () => {
    const host = await startProbe({}, { limits: { maxMemoryMb: 8 } });
    const id = host.initHttpContext();
    const result = host.callOnRequestHeaders(id, { ':path': '/', 'x-ops': 'hog|64' }, true);
    expect(result).toBe(FilterResult.FAILED);
    const [event] = trapped(host);
    expect(event).toMatchObject({ callback: 'proxy_on_request_headers' });
    expect(event!.reason).not.toContain('deadline');
    expect(host.plugin.vm.memory.size).toBeLessThanOrEqual(8 * 1024 * 1024);
  });

  it('refuses a cap below the module\'s initial memory at load', async () => {
    // 0.01 MiB is less than one page: no module fits.
    await expect(startProbe({}, { limits: { maxMemoryMb: 0.01 } })).rejects.toThrow(/initial memory .* exceeds max_memory_mb/);
  });
});

describe('instrumentation', () => {
  it('rewrites every plugin the project ships and leaves the input bytes untouched', async () => {
    for (const file of [pluginWasm('http-log'), pluginWasm('event-forwarder'), fixture('lifecycle-probe')]) {
      const bytes = await readFile(file);
      const copy = Buffer.from(bytes);
      const out = await instrumentModule(bytes);
      expect(WebAssembly.validate(out)).toBe(true);
      expect(bytes.equals(copy)).toBe(true);
      const imports = WebAssembly.Module.imports(new WebAssembly.Module(out)).filter((i) => i.module === 'hookwire:guard');
      expect(imports.map((i) => `${i.name}:${i.kind}`).sort()).toEqual(['max_pages:global', 'refuel:function']);
    }
  });

  it('runs unguarded when limits are null (the module as compiled)', async () => {
    const host = await HostEmulator.start({ wasm: fixture('lifecycle-probe'), limits: null });
    expect(host.plugin.vm.limits).toBeNull();
  });
});
