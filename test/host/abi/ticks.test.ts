/**
 * Timers (ABI §1): proxy_set_tick_period_milliseconds arms proxy_on_tick on
 * the root context; period 0 turns it off.
 */
import { describe, it, expect } from 'vitest';
import { Status, drain, op, records, startProbe, statuses } from './probe.js';

function ticks(host: Awaited<ReturnType<typeof startProbe>>): number {
  return records(host, 'tick').filter((r) => r.op === 'args').length;
}

describe('ticks', () => {
  it('runs proxy_on_tick on the root context once per period after set_tick_period_milliseconds', async () => {
    const host = await startProbe([op('configure', 'tick_period', 250)]);
    expect(statuses(drain(host, 'configure'))).toEqual([Status.OK]);
    expect(host.tickPeriod()).toBe(250);
    host.tick();
    host.tick();
    host.tick();
    expect(ticks(host)).toBe(3);
    const [first] = records(host, 'tick');
    expect(first!.f.root).toBe(String(host.plugin.id));
  });

  it('never ticks without a period', async () => {
    const host = await startProbe([]);
    expect(host.tickPeriod()).toBe(0);
    host.tick();
    expect(ticks(host)).toBe(0);
  });

  it('stops ticking when the period is set to 0', async () => {
    const host = await startProbe([op('configure', 'tick_period', 50), op('tick', 'tick_period', 0)]);
    host.tick();
    expect(ticks(host)).toBe(1);
    expect(statuses(drain(host, 'tick'))).toEqual([Status.OK]);
    expect(host.tickPeriod()).toBe(0);
    host.tick();
    host.tick();
    expect(ticks(host)).toBe(0);
  });

  it('lets the period be changed from inside on_tick', async () => {
    const host = await startProbe([op('configure', 'tick_period', 50), op('tick', 'tick_period', 1000)]);
    host.tick();
    expect(host.tickPeriod()).toBe(1000);
    host.tick();
    expect(ticks(host)).toBe(2);
  });
});
