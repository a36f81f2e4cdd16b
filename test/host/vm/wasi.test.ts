import { describe, expect, it } from 'vitest';
import { LogLevel } from '../../../host/abi/constants.js';
import { FilterResult } from '../../../host/testing/emulator.js';
import { only, reports, startProbe, streamOps } from './helpers.js';

const ERRNO_INVAL = 28;

describe('WASI subset', () => {
  it('clock_time_get(realtime) is the wall clock in ns, as proxy_get_current_time_nanoseconds and Date.now', async () => {
    const host = await startProbe();
    const before = BigInt(Date.now()) * 1_000_000n;
    const [clock, time, date] = streamOps(host, 'clock|0;time;date');
    const after = BigInt(Date.now()) * 1_000_000n;
    for (const r of [clock, time]) {
      expect(r!.status).toBe(0);
      const ns = BigInt(r!.value!);
      expect(ns >= before - 1_000_000n && ns <= after + 1_000_000n).toBe(true);
    }
    // Date.now() in AssemblyScript goes through the wasi-shim, i.e. clock_time_get too.
    const ms = Number(date!.value);
    expect(Math.abs(ms - Date.now())).toBeLessThan(5_000);
  });

  it('takes both clocks from the runtime clock (deterministic in tests)', async () => {
    const host = await startProbe({}, { clock: { now: () => 1_700_000_000_123_456_789n, monotonic: () => 42n } });
    const [real, mono, time] = streamOps(host, 'clock|0;clock|1;time');
    expect(real!.value).toBe('1700000000123456789');
    expect(mono!.value).toBe('42');
    expect(time!.value).toBe('1700000000123456789');
  });

  it('has a non-decreasing monotonic clock and rejects unknown clock ids with EINVAL', async () => {
    const host = await startProbe();
    const [a, b, bad] = streamOps(host, 'clock|1;clock|1;clock|9');
    expect(BigInt(b!.value!) >= BigInt(a!.value!)).toBe(true);
    expect(bad!.status).toBe(ERRNO_INVAL);
  });

  it('random_get fills the buffer with fresh random bytes', async () => {
    const host = await startProbe();
    const [a, b] = streamOps(host, 'random|16;random|16');
    expect(a!.status).toBe(0);
    expect(a!.value).toMatch(/^[0-9a-f]{32}$/);
    expect(a!.value).not.toBe('0'.repeat(32));
    expect(a!.value).not.toBe(b!.value);
  });

  it('exposes the plugin environment through environ_sizes_get / environ_get (and process.env)', async () => {
    const host = await startProbe({}, { environment: { REGION: 'eu-west', TOKEN: 's3cr3t=x' } });
    const [environ, region, missing] = streamOps(host, 'environ;env|TOKEN;env|NOT_SET');
    expect(environ).toMatchObject({ status: 0, count: '2', value: 'REGION=eu-west,TOKEN=s3cr3t=x' });
    expect(Number(environ!.size)).toBe('REGION=eu-west\0TOKEN=s3cr3t=x\0'.length);
    expect(region).toMatchObject({ status: 0, value: 's3cr3t=x' });
    expect(missing!.status).toBe(1);
  });

  it('has an empty environment by default', async () => {
    const host = await startProbe();
    expect(only(streamOps(host, 'environ'), 'environ')).toMatchObject({ status: 0, count: '0', size: '0', value: '' });
  });

  it('reports zero command-line arguments', async () => {
    const host = await startProbe();
    // The fixture pre-fills both result slots with 99, so a host that writes nothing fails here.
    expect(only(streamOps(host, 'args'), 'args')).toMatchObject({ status: 0, count: '0', size: '0' });
  });

  it('proc_exit ends the VM like a trap (poisoned, vm_trapped) without ending the process', async () => {
    const host = await startProbe();
    const id = host.initHttpContext();
    expect(host.callOnRequestHeaders(id, { ':path': '/', 'x-ops': 'exit|3;mark|not-reached' })).toBe(FilterResult.FAILED);
    expect(reports(host, 'mark')).toEqual([]);
    expect(host.plugin.vm.poisoned).toContain('proc_exit(3)');
    expect(host.runtimeEvents()).toContainEqual(expect.objectContaining({ type: 'vm_trapped', callback: 'proxy_on_request_headers', reason: expect.stringContaining('proc_exit(3)') }));
    expect(host.streamFailed(id)).toBe(true);
  });

  it('logs stdout lines at info and stderr lines at error, tagged with their source', async () => {
    const host = await startProbe();
    streamOps(host, 'stdout|to stdout;stderr|to stderr;unstable.stdout|via wasi_unstable');
    const lines = host.logRecords().filter((r) => r.source === 'stdout' || r.source === 'stderr');
    expect(lines.map((r) => [r.source, r.level, r.message])).toEqual([
      ['stdout', LogLevel.INFO, 'to stdout'],
      ['stderr', LogLevel.ERROR, 'to stderr'],
      ['stdout', LogLevel.INFO, 'via wasi_unstable'],
    ]);
    expect(host.logs('info')).toContain('to stdout');
    expect(host.logs('error')).toContain('to stderr');
  });

  it('joins partial writes into one line and reads the SDK "[LEVEL]: " prefix as the level', async () => {
    const host = await startProbe();
    streamOps(host, 'stdout.raw|par;stdout|tial;stdout|[WARN]: careful;stderr|[DEBUG]: detail');
    const lines = host.logRecords().filter((r) => r.source === 'stdout' || r.source === 'stderr');
    expect(lines.map((r) => [r.level, r.message])).toEqual([
      [LogLevel.INFO, 'partial'],
      [LogLevel.WARN, 'careful'],
      [LogLevel.DEBUG, 'detail'],
    ]);
  });
});
