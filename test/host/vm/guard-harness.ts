/**
 * Hand-written modules run under the guard (host/vm/instrument.ts) with a
 * deadline counted in fuel refills instead of milliseconds, so that tests of
 * what the guard stops do not depend on the machine's speed.
 */
import binaryen from 'binaryen';
import type { Binaryen } from '../../../host/vm/counted-loops.js';
import { guardImports } from '../../../host/vm/deadline.js';
import { FUEL_SLICE, GUARD_MODULE, instrumentModule } from '../../../host/vm/instrument.js';

export const b = binaryen as unknown as Binaryen;

/** A module whose exported function `run` is written in WAT (`more`: other fields of the module, e.g. functions it calls). */
export function wat(params: string, body: string, locals = '', more = ''): Uint8Array {
  const mod = b.parseText(`(module (memory 1) ${more} (func (export "run") ${params} (result i32) ${locals} ${body}))`);
  try {
    if (!mod.validate()) throw new Error('test module does not validate');
    b.setDebugInfo(true); // keep the functions' names
    return mod.emitBinary();
  } finally {
    mod.dispose();
  }
}

export class Stopped extends Error {}

/** Instantiates `bytes` guarded; refuel stops the call after `slices` refills (a deadline in fuel, not in time). */
export async function guarded(bytes: Uint8Array, slices = 50): Promise<{ run: (...args: number[]) => number; refuels: () => number }> {
  let refuels = 0;
  const instance = await WebAssembly.instantiate(await WebAssembly.compile(await instrumentModule(bytes)), {
    [GUARD_MODULE]: guardImports(
      () => {
        if (++refuels > slices) throw new Stopped(`out of fuel after ${refuels - 1} slices`);
        return FUEL_SLICE;
      },
      { callDeadlineMs: 0, startDeadlineMs: 0, maxMemoryMb: 0 },
    ) as Record<string, WebAssembly.ImportValue>,
  });
  const run = instance.exports.run as (...args: number[]) => number;
  return { run, refuels: () => refuels };
}

export async function plain(bytes: Uint8Array): Promise<(...args: number[]) => number> {
  const instance = await WebAssembly.instantiate(await WebAssembly.compile(bytes), {});
  return instance.exports.run as (...args: number[]) => number;
}

/** Children of the expression kinds the test modules use (the guard's own walker knows every kind). */
export function children(e: number): number[] {
  const id = b.getExpressionId(e);
  const w = b as unknown as { Call: { getOperands(e: number): number[] }; Drop: { getValue(e: number): number } };
  if (id === b.BlockId) return Array.from({ length: b.Block.getNumChildren(e) }, (_, i) => b.Block.getChildAt(e, i));
  if (id === b.IfId) return [b.If.getCondition(e), b.If.getIfTrue(e), b.If.getIfFalse(e)];
  if (id === b.LoopId) return [b.Loop.getBody(e)];
  if (id === b.BreakId) return [b.Break.getCondition(e)];
  if (id === b.LocalSetId) return [b.LocalSet.getValue(e)];
  if (id === b.BinaryId) return [b.Binary.getLeft(e), b.Binary.getRight(e)];
  if (id === b.CallId) return w.Call.getOperands(e);
  if (id === b.DropId) return [w.Drop.getValue(e)];
  return [];
}
