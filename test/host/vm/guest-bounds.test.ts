/**
 * Guest bounds (issue 20): what a guest can make the host keep is bounded per
 * VM (host/vm/limits.ts); a call over a bound answers a status, stores
 * nothing, and is counted in Runtime.bounds (hookwire_wasm_bound_hits_total).
 */
import { describe, expect, it } from 'vitest';
import { Status } from '../../../host/abi/constants.js';
import { GUEST_LIMITS } from '../../../host/vm/limits.js';
import { reports, startProbe, streamOps } from './helpers.js';

/** `n` ops built by `op(i)`, ";"-joined. */
const many = (n: number, op: (i: number) => string) => Array.from({ length: n }, (_, i) => op(i)).join(';');

/** Thousands of host calls in one callback: bounds are tested here, not the call deadline (which a loaded machine could reach). */
const NO_DEADLINE = { limits: { callDeadlineMs: 0 } } as const;

describe('guest bounds', () => {
  it('shared data: a value over 1 MiB is BAD_ARGUMENT, a key past the per-vm_id count is INTERNAL_FAILURE', async () => {
    const host = await startProbe({}, { vmId: 'sd-vm', ...NO_DEADLINE });
    const big = 'v'.repeat(GUEST_LIMITS.sharedDataValueBytes + 1);
    const [tooBig] = streamOps(host, `sd.set|big|${big}|0`);
    expect(tooBig!.status).toBe(Status.BAD_ARGUMENT);
    expect(host.sharedData('big')).toBeUndefined();
    const filled = streamOps(host, many(GUEST_LIMITS.sharedDataKeys + 1, (i) => `sd.set|k${i}|v|0`));
    expect(filled.slice(0, -1).every((r) => r.status === Status.OK)).toBe(true);
    expect(filled.at(-1)!.status).toBe(Status.INTERNAL_FAILURE);
    // An existing key can still be rewritten.
    expect(streamOps(host, 'sd.set|k0|w|0')[0]!.status).toBe(Status.OK);
    expect(host.runtime.bounds.count('sd-vm', 'shared_data')).toBe(2);
  });

  it('shared queues: a full queue answers INTERNAL_FAILURE until it is drained', async () => {
    const host = await startProbe({ configure: 'q.reg|jobs' }, { vmId: 'q-vm', ...NO_DEADLINE });
    const id = reports(host, 'q.reg')[0]!.id;
    const r = streamOps(host, many(GUEST_LIMITS.queueItems + 1, () => `q.enq|${id}|x`)).filter((x) => x.op === 'q.enq');
    expect(r.filter((x) => x.status === Status.OK)).toHaveLength(GUEST_LIMITS.queueItems);
    expect(r.at(-1)!.status).toBe(Status.INTERNAL_FAILURE);
    const [deq, enq] = streamOps(host, `q.deq|${id};q.enq|${id}|y`).filter((x) => x.op === 'q.deq' || x.op === 'q.enq');
    expect([deq!.status, enq!.status]).toEqual([Status.OK, Status.OK]);
    expect(host.runtime.bounds.count('q-vm', 'queue_items')).toBe(1);
  });

  it('metrics: a definition past the bound is INTERNAL_FAILURE; defining an existing name still works', async () => {
    const host = await startProbe({}, { vmId: 'm-vm', ...NO_DEADLINE });
    const r = streamOps(host, many(GUEST_LIMITS.metrics + 1, (i) => `m.def|0|c${i}`));
    expect(r.at(-2)!.status).toBe(Status.OK);
    expect(r.at(-1)!.status).toBe(Status.INTERNAL_FAILURE);
    expect(streamOps(host, 'm.def|0|c0')[0]!.status).toBe(Status.OK);
    expect(streamOps(host, `m.def|0|${'n'.repeat(GUEST_LIMITS.metricNameBytes + 1)}`)[0]!.status).toBe(Status.BAD_ARGUMENT);
    expect(host.runtime.bounds.count('m-vm', 'metrics')).toBe(2);
  });
});
