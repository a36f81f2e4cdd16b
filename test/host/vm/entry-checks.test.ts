/**
 * Entry checks (host/vm/entry-checks.ts): the guard checks at function entry
 * only where code without loops could still run unbounded (recursion, calls
 * through a table, call trees that multiply), and every such shape is
 * stopped; small functions called from checked code carry no check. The
 * iterations a function counts in its register before spending them (its
 * loop stride) cannot multiply through nested calls either.
 */
import { describe, expect, it } from 'vitest';
import { ALLOWANCE_MAX, planChecks, WORK_MAX } from '../../../host/vm/entry-checks.js';
import { b, children, guarded, plain, Stopped, wat } from './guard-harness.js';

/** The guard's plan for `bytes`'s functions (entry checks and loop allowances). */
function plan(bytes: Uint8Array): { checked: string[]; allowance: Record<string, number> } {
  const mod = b.readBinary(bytes);
  try {
    const functions = new Map<string, number>();
    for (let i = 0; i < mod.getNumFunctions(); i++) {
      const info = b.getFunctionInfo(mod.getFunctionByIndex(i));
      if (info.module === '') functions.set(info.name, info.body);
    }
    const planned = planChecks(b, functions, children);
    return { checked: [...planned.entryChecked].sort(), allowance: Object.fromEntries(planned.allowance) };
  } finally {
    mod.dispose();
  }
}

/** The names of `bytes`'s functions that get a check at entry. */
const checkedFunctions = (bytes: Uint8Array): string[] => plan(bytes).checked;

/** The loop allowances planned for `bytes`'s functions, by name. */
const allowances = (bytes: Uint8Array): Record<string, number> => plan(bytes).allowance;

/**
 * $f0 loops `trips` times calling $f1, which loops `trips` times calling $f2, ... down to $f<depth>, a
 * leaf: trips^depth iterations of the innermost loop. Each loop keeps its counter in memory (not a
 * counted loop: every iteration is checked).
 */
function nestedThroughCalls(depth: number, trips: number): Uint8Array {
  let more = `(func $f${depth} (result i32) (i32.const 1))`;
  for (let k = depth - 1; k >= 0; k--) {
    const at = 4 * k;
    more += `(func $f${k} (result i32) (local $sum i32)
      (i32.store (i32.const ${at}) (i32.const 0))
      (loop $again
        (local.set $sum (i32.add (local.get $sum) (call $f${k + 1})))
        (i32.store (i32.const ${at}) (i32.add (i32.load (i32.const ${at})) (i32.const 1)))
        (br_if $again (i32.lt_u (i32.load (i32.const ${at})) (i32.const ${trips}))))
      (local.get $sum))`;
  }
  return wat('', '(call $f0)', '', more);
}


// $f0 calls $f1 twice, $f1 calls $f2 twice, ... $f39 is a leaf: 2^40 calls without a loop.
const levels = 40;
const TREE = wat(
  '(param $x i32)',
  '(call $f0 (local.get $x))',
  '',
  Array.from({ length: levels }, (_, k) =>
    k === levels - 1
      ? `(func $f${k} (param i32) (result i32) (i32.add (local.get 0) (i32.const 1)))`
      : `(func $f${k} (param i32) (result i32) (i32.add (call $f${k + 1} (local.get 0)) (call $f${k + 1} (local.get 0))))`,
  ).join(' '),
);

describe('entry checks', () => {
  it('checks recursion, calls through a table and call trees past the work bound; not small callees', () => {
    const recursive = wat('(param $x i32)', '(call $down (local.get $x))', '', '(func $down (param i32) (result i32) (if (result i32) (local.get 0) (then (call $down (i32.sub (local.get 0) (i32.const 1)))) (else (i32.const 0))))');
    expect(checkedFunctions(recursive)).toEqual(['down']);

    const mutual = wat('(param $x i32)', '(call $ping (local.get $x))', '', '(func $ping (param i32) (result i32) (call $pong (local.get 0))) (func $pong (param i32) (result i32) (call $ping (local.get 0)))');
    expect(checkedFunctions(mutual)).toEqual(['ping', 'pong']);

    const table = wat('(param $x i32)', '(call_indirect (type $t) (local.get $x) (i32.const 0))', '', '(type $t (func (param i32) (result i32))) (table 1 funcref) (elem (i32.const 0) $leaf) (func $leaf (param i32) (result i32) (local.get 0))');
    expect(checkedFunctions(table).length).toBe(1); // run, the table's caller (names: run is unnamed)

    const small = wat('(param $x i32)', '(i32.add (call $leaf (local.get $x)) (call $leaf (local.get $x)))', '', '(func $leaf (param i32) (result i32) (i32.mul (local.get 0) (i32.const 3)))');
    expect(checkedFunctions(small)).toEqual([]);

    // Some levels of the tree are checked: no unchecked stretch of it runs more than the bound.
    const tree = checkedFunctions(TREE);
    expect(tree.length).toBeGreaterThan(0);
    expect(tree.length).toBeLessThan(levels);
    expect(WORK_MAX).toBeLessThan(2 ** 20);
  });

  it('gives a loop free iterations only while its unpaid work stays within the bound: small loops run free, loops over calls that loop pay first', async () => {
    const bytes = nestedThroughCalls(3, 60);
    const planned = allowances(bytes);
    expect(planned.f2).toBe(ALLOWANCE_MAX); // a small loop over a leaf
    // Its caller's loop would multiply f2's free iterations: f1 gets few, f0 none (it pays before its first iteration).
    expect(planned.f1).toBeLessThan(ALLOWANCE_MAX / 8);
    expect(planned.f0).toBe(0);
    // Same results as the module as compiled.
    expect((await guarded(bytes, 1000)).run()).toBe(60 ** 3);
    expect((await plain(bytes))()).toBe(60 ** 3);
  });

  it.each([
    ['endless recursion', wat('(param $x i32)', '(call $spin (local.get $x))', '', '(func $spin (param i32) (result i32) (call $spin (local.get 0)))')],
    ['endless mutual recursion', wat('(param $x i32)', '(call $ping (local.get $x))', '', '(func $ping (param i32) (result i32) (call $pong (local.get 0))) (func $pong (param i32) (result i32) (call $ping (local.get 0)))')],
    ['a call tree of 2^40 calls without a loop', TREE],
    // 60^8 iterations: with 60 free iterations per call at every level this would never refuel.
    ['loops of 60 iterations nested through 8 calls', nestedThroughCalls(8, 60)],
    [
      'endless recursion through a table',
      wat('(param $x i32)', '(call_indirect (type $t) (local.get $x) (i32.const 0))', '', '(type $t (func (param i32) (result i32))) (table 1 funcref) (elem (i32.const 0) $self) (func $self (param i32) (result i32) (call_indirect (type $t) (local.get 0) (i32.const 0)))'),
    ],
  ])('stops %s', async (_what, bytes) => {
    const { run } = await guarded(bytes, 5);
    // Endless recursion may also end in the engine's stack overflow (a RangeError) before the fuel runs out: either way it stops.
    let stopped: unknown = null;
    try {
      run(1);
    } catch (err) {
      stopped = err;
    }
    expect(stopped instanceof Stopped || stopped instanceof RangeError).toBe(true);
    if (!_what.includes('recursion')) expect(stopped).toBeInstanceOf(Stopped);
  });
});
