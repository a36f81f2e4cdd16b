import { describe, expect, it } from 'vitest';
import { Status } from '../../../host/abi/constants.js';
import type { PluginLogRecord } from '../../../host/vm/logging.js';
import { Runtime } from '../../../host/vm/runtime.js';
import type { QueueInfo } from '../../../host/vm/shared-queues.js';
import { fixture } from '../../helpers/paths.js';
import { captureRuntime, only, pluginReports, reports, results, runStream, startProbe, streamOps } from './helpers.js';

describe('shared queues', () => {
  it('registers a queue with a non-zero id and returns the same id on re-register', async () => {
    const host = await startProbe({ configure: 'q.reg|jobs;q.reg|jobs;q.reg|other' });
    const [a, b, c] = reports(host, 'q.reg');
    expect(a).toMatchObject({ status: Status.OK });
    expect(Number(a!.id)).toBeGreaterThan(0);
    expect(b!.id).toBe(a!.id);
    expect(c!.id).not.toBe(a!.id);
  });

  it('resolves (vm_id, name) to the registered id, also for another VM, and NOT_FOUND otherwise', async () => {
    const { runtime, logs } = captureRuntime();
    const a = await runtime.loadPlugin({ name: 'a', wasm: fixture('lifecycle-probe'), vmId: 'vm-a', configuration: JSON.stringify({ configure: 'q.reg|jobs' }) });
    const id = only(pluginReports(logs, 'a'), 'q.reg').id;
    const b = await runtime.loadPlugin({ name: 'b', wasm: fixture('lifecycle-probe'), vmId: 'vm-b' });

    let from = logs.length;
    runStream(a, 'q.res|vm-a|jobs');
    expect(only(pluginReports(logs, 'a', from), 'q.res')).toMatchObject({ status: Status.OK, id });

    from = logs.length;
    runStream(b, 'q.res|vm-a|jobs;q.res|vm-b|jobs;q.res|vm-a|nope;q.res|no-such-vm|jobs');
    const [other, ownVm, badName, badVm] = pluginReports(logs, 'b', from);
    expect(other).toMatchObject({ status: Status.OK, id });
    expect(ownVm!.status).toBe(Status.NOT_FOUND);
    expect(badName!.status).toBe(Status.NOT_FOUND);
    expect(badVm!.status).toBe(Status.NOT_FOUND);
    runtime.close();
  });

  it('fires on_queue_ready on the registering root context after the enqueueing call returns', async () => {
    const host = await startProbe({ configure: 'q.reg|jobs' });
    const id = only(reports(host), 'q.reg').id;
    const out = streamOps(host, `q.enq|${id}|a;q.enq|${id}|b;mark|end-of-call`);
    expect(out.map((r) => r.op)).toEqual(['q.enq', 'q.enq', 'mark', 'queue_ready', 'queue_ready']);
    expect(out[0]!.status).toBe(Status.OK);
    for (const ready of out.slice(3)) expect(ready).toMatchObject({ root: String(host.plugin.id), queue: id });
    // The notification ran with the root context as the current context.
    const record = host.logRecords().find((r) => r.message.includes('"op":"queue_ready"'))!;
    expect(record.contextId).toBe(host.plugin.id);
  });

  it('posts on_queue_ready through the runtime defer (setImmediate by default), never synchronously', async () => {
    const logs: PluginLogRecord[] = [];
    const runtime = new Runtime({ logLevel: 'trace', onLog: (r) => logs.push(r) });
    const p = await runtime.loadPlugin({ name: 'p', wasm: fixture('lifecycle-probe'), configuration: JSON.stringify({ configure: 'q.reg|jobs' }) });
    const id = only(results(logs), 'q.reg').id;
    runStream(p, `q.enq|${id}|x`);
    expect(results(logs, 'queue_ready')).toHaveLength(0);
    await new Promise((r) => setImmediate(r));
    expect(results(logs, 'queue_ready')).toEqual([expect.objectContaining({ root: String(p.id), queue: id })]);
    runtime.close();
  });

  it('notifies the root context that registered the queue, not the one that enqueued', async () => {
    // Two root contexts in one VM (lifecycle-raw supports several).
    const { runtime, logs, flush } = captureRuntime();
    const owner = await runtime.loadPlugin({ name: 'owner', wasm: fixture('lifecycle-raw'), vmId: 'shared', rootId: 'owner', configuration: JSON.stringify({ configure: 'q.reg|inbox' }) });
    const sender = await runtime.loadPlugin({ name: 'sender', wasm: fixture('lifecycle-raw'), vmId: 'shared', rootId: 'sender' });
    const id = only(pluginReports(logs, 'owner'), 'q.reg').id;
    const from = logs.length;
    runStream(sender, `q.res|shared|inbox;q.enq|${id}|hi`);
    flush();
    const ready = results(logs.slice(from), 'queue_ready');
    expect(ready).toEqual([expect.objectContaining({ root: String(owner.id), queue: id })]);
    expect(owner.id).not.toBe(sender.id);
    runtime.close();
  });

  it('moves notifications to the latest registrant when a queue is registered again', async () => {
    const { runtime, logs, flush } = captureRuntime();
    const cfg = JSON.stringify({ configure: 'q.reg|inbox' });
    const first = await runtime.loadPlugin({ name: 'first', wasm: fixture('lifecycle-raw'), vmId: 'shared', rootId: 'first', configuration: cfg });
    const second = await runtime.loadPlugin({ name: 'second', wasm: fixture('lifecycle-raw'), vmId: 'shared', rootId: 'second', configuration: cfg });
    const ids = [only(pluginReports(logs, 'first'), 'q.reg').id, only(pluginReports(logs, 'second'), 'q.reg').id];
    expect(ids[1]).toBe(ids[0]);
    const from = logs.length;
    runStream(first, `q.enq|${ids[0]}|x`);
    flush();
    expect(results(logs.slice(from), 'queue_ready')).toEqual([expect.objectContaining({ root: String(second.id) })]);
    runtime.close();
  });

  it('notifies the registering VM when another VM enqueues', async () => {
    const { runtime, logs, flush } = captureRuntime();
    const a = await runtime.loadPlugin({ name: 'a', wasm: fixture('lifecycle-probe'), vmId: 'vm-a', configuration: JSON.stringify({ configure: 'q.reg|jobs' }) });
    const b = await runtime.loadPlugin({ name: 'b', wasm: fixture('lifecycle-probe'), vmId: 'vm-b' });
    const id = only(pluginReports(logs, 'a'), 'q.reg').id;
    const from = logs.length;
    runStream(b, `q.enq|${id}|from-b`);
    flush();
    expect(pluginReports(logs, 'a', from).filter((r) => r.op === 'queue_ready')).toEqual([expect.objectContaining({ root: String(a.id), queue: id })]);
    expect(pluginReports(logs, 'b', from).filter((r) => r.op === 'queue_ready')).toEqual([]);
    // The item waits in the queue until someone dequeues it.
    const got = logs.length;
    runStream(a, `q.deq|${id}`);
    expect(only(pluginReports(logs, 'a', got), 'q.deq')).toMatchObject({ status: Status.OK, value: 'from-b' });
    runtime.close();
  });

  it('dequeues items in FIFO order, then answers EMPTY', async () => {
    const host = await startProbe({ configure: 'q.reg|jobs' });
    const id = only(reports(host), 'q.reg').id;
    streamOps(host, `q.enq|${id}|first;q.enq|${id}|second;q.enq|${id}|third`);
    expect(host.queueItems('jobs').map(String)).toEqual(['first', 'second', 'third']);
    const out = streamOps(host, `q.deq|${id};q.deq|${id};q.deq|${id};q.deq|${id}`);
    expect(out.map((r) => [r.status, r.value])).toEqual([
      [Status.OK, 'first'],
      [Status.OK, 'second'],
      [Status.OK, 'third'],
      [Status.EMPTY, undefined],
    ]);
  });

  it('answers NOT_FOUND for enqueue and dequeue on an unknown queue id', async () => {
    const host = await startProbe();
    const out = streamOps(host, 'q.enq|4242|x;q.deq|4242');
    expect(out.map((r) => [r.op, r.status])).toEqual([
      ['q.enq', Status.NOT_FOUND],
      ['q.deq', Status.NOT_FOUND],
    ]);
  });

  it('fires on_queue_ready for items the host enqueues (emulator enqueue)', async () => {
    const host = await startProbe({ configure: 'q.reg|jobs' });
    const id = only(reports(host), 'q.reg').id;
    host.enqueue('jobs', 'from-host');
    expect(reports(host, 'queue_ready')).toEqual([expect.objectContaining({ root: String(host.plugin.id), queue: id })]);
    expect(only(streamOps(host, `q.deq|${id}`), 'q.deq').value).toBe('from-host');
  });

  it('hands items to a native consumer (runtime.queues.consume) instead of storing them', async () => {
    const host = await startProbe();
    const seen: Array<[string, QueueInfo]> = [];
    const stop = host.runtime.queues.consume('plugin', 'events', (item, q) => seen.push([Buffer.from(item).toString(), q]));

    // The guest resolves the host-consumed queue like any other.
    const [res] = streamOps(host, 'q.res|plugin|events');
    expect(res).toMatchObject({ status: Status.OK });
    const id = res!.id;
    const out = streamOps(host, `q.enq|${id}|e1;q.enq|${id}|e2;q.deq|${id}`);
    expect(out.map((r) => [r.op, r.status])).toEqual([
      ['q.enq', Status.OK],
      ['q.enq', Status.OK],
      ['q.deq', Status.EMPTY],
    ]);
    expect(seen.map(([item]) => item)).toEqual(['e1', 'e2']);
    expect(seen[0]![1]).toMatchObject({ id: Number(id), vmId: 'plugin', name: 'events' });

    // After unsubscribing nobody listens: the queue is gone (NOT_FOUND), so producers keep their records.
    stop();
    const [after] = streamOps(host, `q.enq|${id}|e3`);
    expect(after).toMatchObject({ op: 'q.enq', status: Status.NOT_FOUND });
    expect(seen).toHaveLength(2);
    expect(host.queueItems('events')).toEqual([]);
  });

  it('gives a consumer that attaches late the items already waiting', async () => {
    const host = await startProbe({ configure: 'q.reg|backlog' });
    const id = only(reports(host), 'q.reg').id;
    streamOps(host, `q.enq|${id}|old-1;q.enq|${id}|old-2`);
    const seen: string[] = [];
    host.runtime.queues.consume('plugin', 'backlog', (item) => seen.push(Buffer.from(item).toString()));
    expect(seen).toEqual(['old-1', 'old-2']);
    expect(host.queueItems('backlog')).toEqual([]);
  });
});
