import { describe, expect, it } from 'vitest';
import { FilterResult, HostEmulator } from '../../../host/testing/emulator.js';
import { HttpContext } from '../../../host/vm/http-context.js';
import type { FailurePolicy } from '../../../host/vm/plugin.js';
import { Runtime, type RuntimeEvent } from '../../../host/vm/runtime.js';
import { fixture } from '../../helpers/paths.js';
import { captureRuntime, only, pluginReports, reports, runStream, startProbe } from './helpers.js';

type Trapped = Extract<RuntimeEvent, { type: 'vm_trapped' }>;

const POLICIES: FailurePolicy[] = ['fail_closed', 'fail_open', 'reload'];

/**
 * Start a stream, run its request headers and return the guest's stream counter
 * (it lives in guest memory). The stream is left open, so on_log does not run.
 */
function countedStream(host: HostEmulator): number {
  const before = reports(host, 'count').length;
  const id = host.initHttpContext();
  expect(host.callOnRequestHeaders(id, { ':path': '/count' }, true)).toBe(FilterResult.CONTINUE);
  const counts = reports(host, 'count');
  expect(counts).toHaveLength(before + 1);
  return Number(counts.at(-1)!.streams);
}

interface Scenario {
  /** Phase key in the fixture configuration. */
  phase: string;
  callback: string;
  /** Extra configuration the scenario needs (tick period, queue...). */
  config?: Record<string, string>;
  /** Make the VM trap; returns the stream whose phase trapped (if any) and that phase's result. */
  trigger(host: HostEmulator): { stream?: number; result?: FilterResult };
}

const STREAM_STEPS = ['request_headers', 'request_body', 'request_trailers', 'response_headers', 'response_body', 'response_trailers'] as const;

/** Drive a stream phase by phase up to and including `phase`; returns the last result. */
function driveTo(host: HostEmulator, id: number, phase: (typeof STREAM_STEPS)[number]): FilterResult {
  let result: FilterResult = FilterResult.CONTINUE;
  for (const step of STREAM_STEPS) {
    switch (step) {
      case 'request_headers': {
        const trap: Record<string, string> = phase === 'request_headers' ? { 'x-ops': 'trap|boom in request_headers' } : {};
        result = host.callOnRequestHeaders(id, { ':method': 'POST', ':path': '/', ...trap });
        break;
      }
      case 'request_body':
        result = host.callOnRequestBody(id, 'ping', false);
        break;
      case 'request_trailers':
        result = host.callOnRequestTrailers(id, { 'x-req-trailer': '1' });
        break;
      case 'response_headers':
        result = host.callOnResponseHeaders(id, { ':status': '200' });
        break;
      case 'response_body':
        result = host.callOnResponseBody(id, 'pong', false);
        break;
      case 'response_trailers':
        result = host.callOnResponseTrailers(id, { 'x-resp-trailer': '1' });
        break;
    }
    if (step === phase) return result;
    expect(result).toBe(FilterResult.CONTINUE);
  }
  return result;
}

const SCENARIOS: Scenario[] = [
  ...STREAM_STEPS.map(
    (phase): Scenario => ({
      phase,
      callback: `proxy_on_${phase}`,
      // request_headers traps through the x-ops header, so later streams' headers still work.
      config: phase === 'request_headers' ? {} : { [phase]: `trap|boom in ${phase}` },
      trigger(host) {
        const id = host.initHttpContext();
        return { stream: id, result: driveTo(host, id, phase) };
      },
    }),
  ),
  {
    phase: 'log',
    callback: 'proxy_on_log',
    config: { log: 'trap|boom in log' },
    trigger(host) {
      const id = host.initHttpContext();
      host.callOnRequestHeaders(id, { ':path': '/' }, true);
      host.callOnResponseHeaders(id, { ':status': '200' }, true);
      host.completeHttpContext(id);
      expect(host.streamFailed(id)).toBe(true);
      return {};
    },
  },
  {
    phase: 'tick',
    callback: 'proxy_on_tick',
    config: { configure: 'tick|1000', tick: 'trap|boom in tick' },
    trigger(host) {
      expect(host.tickPeriod()).toBe(1000);
      host.tick();
      return {};
    },
  },
  {
    phase: 'queue_ready',
    callback: 'proxy_on_queue_ready',
    config: { configure: 'q.reg|jobs', queue_ready: 'trap|boom in queue_ready' },
    trigger(host) {
      host.enqueue('jobs', 'work');
      return {};
    },
  },
  {
    phase: 'http_call_response',
    callback: 'proxy_on_http_call_response',
    config: { http_call_response: 'trap|boom in http_call_response' },
    trigger(host) {
      const id = host.initHttpContext();
      expect(host.callOnRequestHeaders(id, { ':path': '/', 'x-ops': 'call|backend;pause' })).toBe(FilterResult.PAUSE);
      const [call] = host.httpCalls();
      host.respondToHttpCall(call!.token, { status: 200, body: 'ok' });
      // The stream was paused on the call; its next phase finds the VM gone.
      return { stream: id, result: host.callOnResponseHeaders(id, { ':status': '200' }) };
    },
  },
];

describe.each(POLICIES)('failure policy %s', (policy) => {
  it.each(SCENARIOS)('handles a trap in $phase', async (sc) => {
    const host = await startProbe({ request_headers: 'count', ...sc.config }, { failurePolicy: policy, upstreams: ['backend'] });
    expect(countedStream(host)).toBe(1); // one stream before the trap

    const { stream, result } = sc.trigger(host);

    // The trap is recorded with its callback and the AssemblyScript abort message.
    const trapped = host.runtimeEvents().filter((e): e is Trapped => e.type === 'vm_trapped');
    expect(trapped).toHaveLength(1);
    expect(trapped[0]).toMatchObject({ callback: sc.callback, plugins: ['plugin'], reason: expect.stringContaining(`abort: boom in ${sc.phase}`) });
    expect(host.plugin.healthy).toBe(false);
    expect(host.plugin.failure).toContain(`boom in ${sc.phase}`);

    // The stream that was in the trapped VM fails: closed (503) unless the policy is fail_open.
    if (stream !== undefined) {
      expect(result).toBe(FilterResult.FAILED);
      expect(host.streamFailed(stream)).toBe(true);
      if (policy === 'fail_open') expect(host.localResponse(stream)).toBeNull();
      else expect(host.localResponse(stream)).toMatchObject({ status: 503 });
      // Later phases of that stream no longer reach the guest.
      expect(host.callOnResponseTrailers(stream, {})).toBe(FilterResult.FAILED);
    }

    // Later streams follow the policy.
    switch (policy) {
      case 'fail_closed':
        expect(host.plugin.newHttpContext()).toBe('reject');
        expect(() => host.initHttpContext()).toThrow(/fail_closed \(reject\)/);
        expect(host.plugin.newHttpContext()).toBe('reject'); // and stays refused
        expect(host.plugin.reloads).toBe(0);
        break;
      case 'fail_open':
        expect(host.plugin.newHttpContext()).toBe('skip');
        expect(host.plugin.newHttpContext()).toBe('skip');
        expect(host.plugin.reloads).toBe(0);
        break;
      case 'reload':
        // A fresh VM: the guest-memory stream counter starts over.
        expect(countedStream(host)).toBe(1);
        expect(host.plugin.reloads).toBe(1);
        expect(host.plugin.healthy).toBe(true);
        expect(host.runtimeEvents().at(-1)).toMatchObject({ type: 'vm_reloaded', ok: true, plugins: ['plugin'] });
        expect(countedStream(host)).toBe(2);
        break;
    }
    expect(host.runtimeEvents().filter((e) => e.type === 'vm_trapped')).toHaveLength(1);
  });
});

describe('traps', () => {
  it('gives a trap without an abort message its plain reason', async () => {
    const host = await startProbe();
    const id = host.initHttpContext();
    host.callOnRequestHeaders(id, { ':path': '/', 'x-ops': 'unreachable' });
    const trapped = host.runtimeEvents().find((e): e is Trapped => e.type === 'vm_trapped')!;
    expect(trapped.reason).toContain('unreachable');
    expect(trapped.reason).not.toContain('abort:');
  });

  it('does not carry one trap\'s abort message over to the next trap', async () => {
    const host = await startProbe({}, { failurePolicy: 'reload' });
    let id = host.initHttpContext();
    host.callOnRequestHeaders(id, { ':path': '/', 'x-ops': 'trap|first failure' });
    id = host.initHttpContext(); // reloads
    host.callOnRequestHeaders(id, { ':path': '/', 'x-ops': 'unreachable' });
    const reasons = host.runtimeEvents().filter((e): e is Trapped => e.type === 'vm_trapped').map((e) => e.reason);
    expect(reasons).toHaveLength(2);
    expect(reasons[0]).toContain('first failure');
    expect(reasons[1]).not.toContain('first failure');
  });

  it('does not blame a trap on an "abort:" line logged by an earlier call that did not trap', async () => {
    const host = await startProbe();
    const id = host.initHttpContext();
    expect(host.callOnRequestHeaders(id, { ':path': '/', 'x-ops': 'stderr|abort: only a log line;mark|alive' })).toBe(FilterResult.CONTINUE);
    const crash = host.initHttpContext();
    host.callOnRequestHeaders(crash, { ':path': '/', 'x-ops': 'unreachable' });
    const trapped = host.runtimeEvents().find((e): e is Trapped => e.type === 'vm_trapped')!;
    expect(trapped.reason).toContain('unreachable');
    expect(trapped.reason).not.toContain('only a log line');
  });

  it('never lets a poisoned VM affect a plugin in another VM of the same Runtime', async () => {
    const { runtime, logs, events } = captureRuntime();
    const cfg = JSON.stringify({ request_headers: 'count' });
    const a = await runtime.loadPlugin({ name: 'a', wasm: fixture('lifecycle-probe'), vmId: 'vm-a', configuration: cfg, failurePolicy: 'fail_closed' });
    const b = await runtime.loadPlugin({ name: 'b', wasm: fixture('lifecycle-probe'), vmId: 'vm-b', configuration: cfg, failurePolicy: 'fail_closed' });
    runStream(b);
    const ctx = runStream(a, 'trap|a is broken');
    expect(ctx instanceof HttpContext && ctx.failed).toBe(true);
    expect(runStream(a)).toBe('reject');

    const from = logs.length;
    const ok = runStream(b);
    expect(ok instanceof HttpContext && !ok.failed).toBe(true);
    expect(only(pluginReports(logs, 'b', from), 'count').streams).toBe('2');
    expect(b.healthy).toBe(true);
    expect(events.filter((e) => e.type === 'vm_trapped')).toEqual([expect.objectContaining({ vmId: 'vm-a', plugins: ['a'] })]);
    runtime.close();
  });

  it('fails every plugin sharing the trapped VM (same vm_id), as the VM is one instance', async () => {
    const { runtime, events } = captureRuntime();
    const p1 = await runtime.loadPlugin({ name: 'p1', wasm: fixture('lifecycle-raw'), vmId: 'shared', rootId: 'r1', failurePolicy: 'fail_closed' });
    const p2 = await runtime.loadPlugin({ name: 'p2', wasm: fixture('lifecycle-raw'), vmId: 'shared', rootId: 'r2', failurePolicy: 'fail_open' });
    runStream(p1, 'trap|shared crash');
    expect(events.filter((e) => e.type === 'vm_trapped')).toEqual([expect.objectContaining({ vmId: 'shared', plugins: ['p1', 'p2'] })]);
    expect(runStream(p1)).toBe('reject');
    expect(runStream(p2)).toBe('skip');
    runtime.close();
  });

  it('spaces reload attempts by reloadBackoffMs: a second trap inside the window refuses streams', async () => {
    const { runtime, events } = captureRuntime({ reloadBackoffMs: 60_000 });
    const p = await runtime.loadPlugin({ name: 'p', wasm: fixture('lifecycle-probe'), failurePolicy: 'reload' });
    runStream(p, 'trap|one');
    expect(runStream(p)).toBeInstanceOf(HttpContext); // first reload happens at once
    expect(p.reloads).toBe(1);
    runStream(p, 'trap|two');
    expect(runStream(p)).toBe('reject');
    expect(p.reloads).toBe(1);
    expect(events.filter((e) => e.type === 'vm_reloaded')).toHaveLength(1);
    runtime.close();
  });

  it('keeps refusing streams while the reload itself fails (vm_reloaded ok:false), and recovers once it succeeds', async () => {
    let broken = false;
    const host = await startProbe(
      { configure: 'ff!|gate|' },
      {
        failurePolicy: 'reload',
        foreignFunctions: {
          gate: () => {
            if (broken) throw new Error('gate closed');
            return Buffer.from('open');
          },
        },
      },
    );
    const id = host.initHttpContext();
    host.callOnRequestHeaders(id, { ':path': '/', 'x-ops': 'trap|crash' });

    broken = true; // on_configure now fails on every restart
    expect(host.plugin.newHttpContext()).toBe('reject');
    expect(host.plugin.newHttpContext()).toBe('reject');
    const reloads = host.runtimeEvents().filter((e) => e.type === 'vm_reloaded');
    expect(reloads).toHaveLength(2);
    expect(reloads[0]).toMatchObject({ ok: false, reason: expect.stringContaining('ff gate failed with status 10') });
    expect(host.plugin.reloads).toBe(0);

    broken = false;
    expect(host.plugin.newHttpContext()).toBeInstanceOf(HttpContext);
    expect(host.runtimeEvents().at(-1)).toMatchObject({ type: 'vm_reloaded', ok: true });
    expect(host.plugin.reloads).toBe(1);
  });

  it('never delivers an http call response to the VM that replaced the caller\'s VM', async () => {
    const host = await startProbe({}, { failurePolicy: 'reload', upstreams: ['backend'] });
    const caller = host.initHttpContext();
    host.callOnRequestHeaders(caller, { ':path': '/', 'x-ops': 'call|backend;pause' });
    const [call] = host.httpCalls();
    const crash = host.initHttpContext();
    host.callOnRequestHeaders(crash, { ':path': '/', 'x-ops': 'trap|crash' });
    host.initHttpContext(); // reload
    expect(host.plugin.reloads).toBe(1);
    host.respondToHttpCall(call!.token, { status: 200 });
    expect(reports(host, 'http_call_response')).toEqual([]);
    expect(host.plugin.healthy).toBe(true);
  });

  it('never crashes the process when a timer or a queue notification traps with real timers', async () => {
    const events: RuntimeEvent[] = [];
    let activeTimers = 0;
    const runtime = new Runtime({
      logLevel: 'error',
      onLog: () => {},
      onEvent: (e) => events.push(e),
      // Real timers, counted.
      timers: {
        setInterval(fn, ms) {
          activeTimers++;
          const t = setInterval(fn, ms);
          t.unref();
          return t;
        },
        clearInterval(handle) {
          activeTimers--;
          clearInterval(handle as NodeJS.Timeout);
        },
      },
    });
    const ticker = await runtime.loadPlugin({
      name: 'ticker',
      wasm: fixture('lifecycle-probe'),
      vmId: 'ticker',
      configuration: JSON.stringify({ configure: 'tick|1', tick: 'trap|tick crash' }),
    });
    const queued = await runtime.loadPlugin({
      name: 'queued',
      wasm: fixture('lifecycle-probe'),
      vmId: 'queued',
      configuration: JSON.stringify({ configure: 'q.reg|jobs', queue_ready: 'exit|7' }),
    });
    const id = runtime.queues.resolve('queued', 'jobs')!;
    runtime.queues.enqueue(id, Buffer.from('x'));
    for (let i = 0; i < 50 && events.filter((e) => e.type === 'vm_trapped').length < 2; i++) await new Promise((r) => setTimeout(r, 5));
    const trapped = events.filter((e): e is Trapped => e.type === 'vm_trapped');
    expect(trapped.map((e) => [e.vmId, e.callback]).sort()).toEqual([
      ['queued', 'proxy_on_queue_ready'],
      ['ticker', 'proxy_on_tick'],
    ]);
    expect(trapped.find((e) => e.vmId === 'queued')!.reason).toContain('proc_exit(7)');
    // The trapped ticker's timer is gone.
    expect(ticker.healthy).toBe(false);
    expect(activeTimers).toBe(0);
    await new Promise((r) => setTimeout(r, 20));
    expect(events.filter((e) => e.type === 'vm_trapped')).toHaveLength(2);
    expect(queued.healthy).toBe(false);
    runtime.close();
  });
});
