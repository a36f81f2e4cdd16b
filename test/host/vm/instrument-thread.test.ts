/**
 * The guard's rewrite on a worker thread (host/vm/instrument-thread.ts), as
 * the built gateway runs it (dist/: under vitest the TypeScript sources run
 * the rewrite in this thread, so this test loads the compiled module).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { instrumentModule } from '../../../host/vm/instrument.js';
import { ROOT, plugin as pluginWasm } from '../../helpers/paths.js';

type Thread = typeof import('../../../host/vm/instrument-thread.js');

const thread = (): Promise<Thread> => import(join(ROOT, 'dist/host/vm/instrument-thread.js')) as Promise<Thread>;

describe('the guard on a worker thread', () => {
  it('gives the bytes the in-thread rewrite gives, while this thread keeps serving', async () => {
    const { instrumentOffThread } = await thread();
    const bytes = await readFile(pluginWasm('http-log'));
    let turns = 0;
    let turning = true;
    const turn = () => {
      turns++;
      if (turning) setImmediate(turn);
    };
    setImmediate(turn);
    const off = await instrumentOffThread(bytes);
    turning = false;
    // Loading binaryen and rewriting http-log take hundreds of milliseconds: the loop turned meanwhile.
    expect(turns).toBeGreaterThan(10);
    expect(Buffer.from(off).equals(Buffer.from(await instrumentModule(bytes)))).toBe(true);
  });

  it('reports what cannot be rewritten as an InstrumentError, and serves the next job', async () => {
    const { instrumentOffThread } = await thread();
    const { InstrumentError } = (await import(join(ROOT, 'dist/host/vm/instrument.js'))) as typeof import('../../../host/vm/instrument.js');
    await expect(instrumentOffThread(new Uint8Array([0, 0x61, 0x73, 0x6d, 9, 9, 9, 9]))).rejects.toBeInstanceOf(InstrumentError);
    const ok = await instrumentOffThread(await readFile(pluginWasm('hello-world')));
    expect(WebAssembly.validate(ok)).toBe(true);
  });
});
