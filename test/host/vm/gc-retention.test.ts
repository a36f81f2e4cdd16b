/**
 * What ended must not outlive the young collections (issue 13): stream
 * contexts the VM registered, names the guest memory cached.
 *
 * A VM registers every stream's context by id and forgets it when the stream
 * ends. With a Map there, a Mark-Compact promoted the Map's table, every later
 * table was allocated in the old generation, and each table the Map left behind
 * on a rehash kept the contexts in flight at that moment, which the scavenger
 * took as roots: under churn most streams, with everything they reference, were
 * promoted. Here the real runtime runs a real plugin's streams, 50 in flight,
 * each holding about 16 KB of its own objects; after a Mark-Compact and
 * thousands of streams, what the old generation gained is measured after two
 * young collections. With the Map it gained about 30 MB (0.8 MB without); it must stay small.
 *
 * The figures are V8's byte counts after explicit collections (no timing); the
 * bound leaves room for whatever else the process allocates meanwhile.
 */
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { GuestMemory } from '../../../host/abi/memory.js';
import type { HttpContext } from '../../../host/vm/http-context.js';
import { fixture } from '../../helpers/paths.js';
import { captureRuntime } from './helpers.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as (options?: { type: 'major' | 'minor' }) => void;

const oldSpaceUsed = () => getHeapSpaceStatistics().find((s) => s.space_name === 'old_space')!.space_used_size;

describe('stream contexts and the collector', () => {
  it('a stream that ended is not kept through young collections by the VM (no promotion of ended streams)', async () => {
    const { runtime } = captureRuntime({ logLevel: 'warn' });
    const plugin = await runtime.loadPlugin({ name: 'probe', wasm: fixture('lifecycle-probe') });
    const STREAMS = 3_000;
    const IN_FLIGHT = 50;
    const open = (i: number): HttpContext => {
      // About 16 KB of young objects per stream, reachable only through its context.
      const own = { payload: new Array<number>(2048).fill(i) };
      const ctx = plugin.newHttpContext({ properties: (key) => (key === 'never' ? String(own.payload.length) : undefined) });
      if (typeof ctx === 'string') throw new Error(`stream refused: ${ctx}`);
      return ctx;
    };
    // Warm up, then a Mark-Compact: it promotes whatever the VM holds now (as one under load does).
    for (let i = 0; i < 200; i++) open(i).complete();
    const inFlight: HttpContext[] = [];
    for (let i = 0; i < IN_FLIGHT; i++) inFlight.push(open(i));
    gc();
    const before = oldSpaceUsed();
    for (let i = 0; i < STREAMS; i++) {
      inFlight.push(open(i));
      inFlight.shift()!.complete();
    }
    for (const ctx of inFlight.splice(0)) ctx.complete();
    gc({ type: 'minor' });
    gc({ type: 'minor' });
    const gainedMb = (oldSpaceUsed() - before) / 1048576;
    // 3,000 streams of ~16 KB: ~48 MB allocated. With the Map the old generation gained about 30 MB.
    expect(gainedMb).toBeLessThan(8);
    await runtime.unloadPlugin(plugin);
  });
});

describe('the name cache and the collector', () => {
  it('names read once from fresh addresses (the SDK encodes every property path anew) are not kept through young collections', () => {
    const memory = new WebAssembly.Memory({ initial: 4 });
    const guest = new GuestMemory(memory, () => 0);
    const bytes = new Uint8Array(memory.buffer);
    const write = (at: number, s: string) => bytes.set(Buffer.from(s, 'latin1'), at);
    const NAMES = 40_000;
    // A warm cache, then a Mark-Compact (it promotes the cache as it is).
    for (let i = 0; i < 1_000; i++) write(i * 6, `r\0p${i % 1000}`.padEnd(6, 'x'));
    for (let i = 0; i < 1_000; i++) guest.name(i * 6, 6);
    gc();
    const before = oldSpaceUsed();
    for (let i = 0; i < NAMES; i++) {
      const at = (i * 40) % (bytes.length - 64);
      write(at, `request\0path-${i}`);
      expect(guest.name(at, `request\0path-${i}`.length)).toBe(`request\0path-${i}`);
    }
    gc({ type: 'minor' });
    gc({ type: 'minor' });
    const gainedMb = (oldSpaceUsed() - before) / 1048576;
    // 40,000 misses of ~300 bytes each (text, bytes, words): with the Map and its clear() the old generation gained 17 MB (1.1 without).
    expect(gainedMb).toBeLessThan(5);
  });
});
