// Envoy's unload protocol for a root context (host/vm Runtime.unloadPlugin):
// proxy_on_done true deletes the root at once; false keeps its ticks and http
// call responses until proxy_done, a trap, or the drain deadline. Driven with
// the raw-ABI fixture (its "done" phase answers proxy_on_done; the "done" op
// calls proxy_done) and real timers.
import { afterEach, describe, expect, it } from 'vitest';
import type { Runtime } from '../../../host/vm/runtime.js';
import { fixture } from '../../helpers/paths.js';
import { captureRuntime, results } from './helpers.js';

let runtime: Runtime | undefined;
afterEach(() => runtime?.close());

async function start(config: Record<string, string>) {
  const captured = captureRuntime({ defer: (fn) => void setImmediate(fn) });
  runtime = captured.runtime;
  const plugin = await captured.runtime.loadPlugin({ name: 'raw', wasm: fixture('lifecycle-raw'), configuration: JSON.stringify(config) });
  return { ...captured, plugin };
}

describe('unloading a plugin (root proxy_on_done / proxy_done)', () => {
  it('deletes a root that answers true at once', async () => {
    const { runtime: rt, plugin, events } = await start({});
    await rt.unloadPlugin(plugin, 10_000);
    expect(plugin.closed).toBe(true);
    expect(events.filter((e) => e.type === 'plugin_unloaded')).toHaveLength(1);
  });

  it('keeps a root that answers false ticking until it calls proxy_done, then deletes it after that call', async () => {
    const { runtime: rt, plugin, logs, events } = await start({ done: 'false;tick|5', tick: 'count;done' });
    let deleted = false;
    const unloaded = rt.unloadPlugin(plugin, 10_000).then(() => (deleted = true));
    expect(plugin.closing).toBe(true);
    expect(plugin.closed).toBe(false);
    expect(plugin.newHttpContext()).toBe('reject'); // no new streams while unloading
    expect(events.some((e) => e.type === 'plugin_unloaded')).toBe(false);
    await unloaded;
    expect(deleted).toBe(true);
    expect(plugin.closed).toBe(true);
    // The tick ran while unloading, and proxy_done answered OK.
    const ops = results(logs).filter((r) => r.op !== 'phase');
    expect(ops.some((r) => r.op === 'count')).toBe(true);
    expect(ops.filter((r) => r.op === 'done').map((r) => r.status)).toEqual([0]);
    expect(events.filter((e) => e.type === 'plugin_unloaded')).toHaveLength(1);
  });

  it('proxy_done from a root that is not unloading is NOT_FOUND', async () => {
    const { plugin, logs } = await start({ tick: 'done;tick|0' });
    plugin.tick();
    expect(results(logs, 'done').map((r) => r.status)).toEqual([1]); // NOT_FOUND, as in Envoy
  });

  it('deletes a root that never calls proxy_done at the deadline, with a warning naming it', async () => {
    const { runtime: rt, plugin, logs } = await start({ done: 'false' });
    const t0 = Date.now();
    await rt.unloadPlugin(plugin, 50);
    expect(plugin.closed).toBe(true);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(45);
    expect(logs.some((r) => r.message === 'plugin raw did not call proxy_done within 50 ms of proxy_on_done; unloading it now')).toBe(true);
  });

  it('ends the wait when the root traps while unloading', async () => {
    const { runtime: rt, plugin, events } = await start({ done: 'false;tick|5', tick: 'unreachable' });
    await rt.unloadPlugin(plugin, 10_000);
    expect(plugin.closed).toBe(true);
    expect(events.some((e) => e.type === 'vm_trapped')).toBe(true);
  });

  it('Runtime.close deletes a root still waiting, and the pending unload resolves', async () => {
    const { runtime: rt, plugin } = await start({ done: 'false' });
    const unloaded = rt.unloadPlugin(plugin, 60_000);
    rt.close();
    await unloaded;
    expect(plugin.closed).toBe(true);
  });
});
