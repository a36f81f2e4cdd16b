import { describe, expect, it } from 'vitest';
import { MetricType, Status } from '../../../host/abi/constants.js';
import { fixture } from '../../helpers/paths.js';
import { captureRuntime, only, pluginReports, reports, runStream, startProbe, streamOps } from './helpers.js';

const { COUNTER, GAUGE, HISTOGRAM } = MetricType;

/** Define metrics in on_configure and return their ids by name. */
async function withMetrics(defs: Array<[number, string]>) {
  const host = await startProbe({ configure: defs.map(([t, n]) => `m.def|${t}|${n}`).join(';') });
  const ids: Record<string, string> = {};
  reports(host, 'm.def').forEach((r, i) => {
    expect(r.status).toBe(Status.OK);
    ids[defs[i]![1]] = String(r.id);
  });
  return { host, ids };
}

describe('metrics', () => {
  it('defines counters, gauges and histograms with distinct non-zero ids', async () => {
    const { ids } = await withMetrics([
      [COUNTER, 'requests'],
      [GAUGE, 'in_flight'],
      [HISTOGRAM, 'latency_ms'],
    ]);
    const values = Object.values(ids);
    expect(new Set(values).size).toBe(3);
    for (const id of values) expect(Number(id)).toBeGreaterThan(0);
  });

  it('returns the same id when the same name and type are defined again', async () => {
    const { host, ids } = await withMetrics([[COUNTER, 'requests']]);
    const again = streamOps(host, `m.def|${COUNTER}|requests;m.def|${GAUGE}|other`);
    expect(again[0]).toMatchObject({ status: Status.OK, id: ids.requests });
    expect(again[1]!.id).not.toBe(ids.requests);
  });

  it('refuses an unknown metric type with BAD_ARGUMENT', async () => {
    const host = await startProbe({ configure: 'm.def|3|weird' });
    expect(only(reports(host), 'm.def').status).toBe(Status.BAD_ARGUMENT);
  });

  it('increments and reads a counter, as the host API also sees it', async () => {
    const { host, ids } = await withMetrics([[COUNTER, 'requests']]);
    const out = streamOps(host, `m.inc|${ids.requests}|1;m.inc|${ids.requests}|2;m.get|${ids.requests}`);
    expect(out.map((r) => r.status)).toEqual([Status.OK, Status.OK, Status.OK]);
    expect(out[2]!.value).toBe('3');
    expect(host.metric('requests')).toBe(3n);
  });

  it('carries 64-bit values both ways (i64 arrives as a BigInt)', async () => {
    const { host, ids } = await withMetrics([
      [COUNTER, 'bytes'],
      [GAUGE, 'level'],
    ]);
    const big = 5_000_000_000n; // > 2^32
    const out = streamOps(
      host,
      `m.inc|${ids.bytes}|${big};m.inc|${ids.bytes}|${big};m.get|${ids.bytes};` +
        `m.rec|${ids.level}|18446744073709551615;m.get|${ids.level}`,
    );
    expect(out.map((r) => r.status)).toEqual([0, 0, 0, 0, 0]);
    expect(out[2]!.value).toBe(String(2n * big));
    expect(host.metric('bytes')).toBe(10_000_000_000n);
    expect(typeof host.metric('bytes')).toBe('bigint');
    // u64 max survives the round trip through the guest.
    expect(out[4]!.value).toBe('18446744073709551615');
  });

  it('refuses a counter increment by zero or less with BAD_ARGUMENT and leaves the value alone', async () => {
    const { host, ids } = await withMetrics([[COUNTER, 'requests']]);
    const out = streamOps(host, `m.inc|${ids.requests}|4;m.inc|${ids.requests}|0;m.inc|${ids.requests}|-1;m.get|${ids.requests}`);
    expect(out.map((r) => r.status)).toEqual([Status.OK, Status.BAD_ARGUMENT, Status.BAD_ARGUMENT, Status.OK]);
    expect(out[3]!.value).toBe('4');
  });

  it('moves a gauge both ways with increment and sets it with record', async () => {
    const { host, ids } = await withMetrics([[GAUGE, 'in_flight']]);
    const out = streamOps(host, `m.rec|${ids.in_flight}|10;m.inc|${ids.in_flight}|5;m.inc|${ids.in_flight}|-3;m.get|${ids.in_flight}`);
    expect(out.map((r) => r.status)).toEqual([0, 0, 0, 0]);
    expect(out[3]!.value).toBe('12');
    expect(host.metric('in_flight')).toBe(12n);
  });

  it('adds recorded values to a counter', async () => {
    const { host, ids } = await withMetrics([[COUNTER, 'requests']]);
    const out = streamOps(host, `m.inc|${ids.requests}|1;m.rec|${ids.requests}|10;m.get|${ids.requests}`);
    expect(out[2]!.value).toBe('11');
  });

  it('records histogram values but refuses get and increment with BAD_ARGUMENT', async () => {
    const { host, ids } = await withMetrics([[HISTOGRAM, 'latency_ms']]);
    const out = streamOps(host, `m.rec|${ids.latency_ms}|7;m.rec|${ids.latency_ms}|300;m.get|${ids.latency_ms};m.inc|${ids.latency_ms}|1`);
    expect(out.map((r) => r.status)).toEqual([Status.OK, Status.OK, Status.BAD_ARGUMENT, Status.BAD_ARGUMENT]);
    expect(out[2]).not.toHaveProperty('value');
    // host.metric gives a histogram's count; the snapshot has sum and buckets.
    expect(host.metric('latency_ms')).toBe(2n);
    const snap = host.runtime.metrics.snapshot().find((m) => m.name === 'latency_ms')!;
    expect(snap.sum).toBe(307n);
    expect(snap.type).toBe(HISTOGRAM);
  });

  it('answers NOT_FOUND for increment, record and get of an unknown id', async () => {
    const host = await startProbe();
    const out = streamOps(host, 'm.inc|999|1;m.rec|999|1;m.get|999');
    expect(out.map((r) => r.status)).toEqual([Status.NOT_FOUND, Status.NOT_FOUND, Status.NOT_FOUND]);
    expect(host.metric('never-defined')).toBeUndefined();
  });

  it('keeps one series per name across VMs of a Runtime', async () => {
    const { runtime, logs } = captureRuntime();
    const cfg = JSON.stringify({ configure: `m.def|${COUNTER}|shared_total` });
    const a = await runtime.loadPlugin({ name: 'a', wasm: fixture('lifecycle-probe'), vmId: 'vm-a', configuration: cfg });
    const b = await runtime.loadPlugin({ name: 'b', wasm: fixture('lifecycle-probe'), vmId: 'vm-b', configuration: cfg });
    const idA = only(pluginReports(logs, 'a'), 'm.def').id;
    const idB = only(pluginReports(logs, 'b'), 'm.def').id;
    expect(idB).toBe(idA);
    runStream(a, `m.inc|${idA}|2`);
    runStream(b, `m.inc|${idB}|3`);
    expect(runtime.metrics.value('shared_total')).toBe(5n);
    runtime.close();
  });
});
