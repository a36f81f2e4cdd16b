/**
 * Counted loops (host/vm/counted-loops.ts): the guard charges a provably
 * counted loop its trip count at entry instead of checking every iteration.
 * These tests hold it to its two promises, on hand-written modules whose loop
 * shapes are those compilers emit (while form, do-while form, steps in a tee,
 * continues, nested loops):
 * - the rewrite changes no result: the instrumented and the original module
 *   compute the same for every input (a seeded property test, edge values
 *   included);
 * - no loop escapes the deadline: large trip counts, values that would wrap,
 *   counters written otherwise than by a step, and unbounded loops nested in
 *   counted ones are all stopped, and the stop is counted as fuel.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { countedLoop } from '../../../host/vm/counted-loops.js';
import { b, children, guarded, plain, Stopped, wat } from './guard-harness.js';

/** Whether the guard recognised the module's loops as counted (how many of them). */
function countedLoops(bytes: Uint8Array): number {
  const mod = b.readBinary(bytes);
  try {
    let found = 0;
    const fn = mod.getFunctionByIndex(0);
    const stack = [b.Function.getBody(fn)];
    while (stack.length > 0) {
      const e = stack.pop()!;
      if (e === 0) continue;
      const id = b.getExpressionId(e);
      if (id === b.LoopId) {
        if (countedLoop(b, e, children) !== null) found++;
        stack.push(b.Loop.getBody(e));
      } else {
        stack.push(...children(e));
      }
    }
    return found;
  } finally {
    mod.dispose();
  }
}


// Sums i over the loop's iterations (plus a trip counter in $t), so a changed trip count changes the result.
const UP_WHILE = wat(
  '(param $i i32) (param $n i32)',
  `(local.set $t (i32.const 0))
   (loop $top (if (i32.lt_s (local.get $i) (local.get $n)) (then
     (local.set $t (i32.add (local.get $t) (i32.const 1)))
     (local.set $s (i32.add (local.get $s) (local.get $i)))
     (local.set $i (i32.add (local.get $i) (i32.const 3)))
     (br $top))))
   (i32.add (local.get $s) (i32.mul (local.get $t) (i32.const 1000003)))`,
  '(local $s i32) (local $t i32)',
);
const UP_UNSIGNED_OFFSET = wat(
  '(param $i i32) (param $n i32)',
  `(loop $top (if (i32.le_u (i32.add (local.get $i) (i32.const 8)) (local.get $n)) (then
     (local.set $s (i32.add (local.get $s) (i32.const 1)))
     (local.set $i (i32.add (local.get $i) (i32.const 8)))
     (br $top))))
   (local.get $s)`,
  '(local $s i32)',
);
const DOWN_DO_WHILE_TEE = wat(
  '(param $i i32) (param $n i32)',
  `(loop $top
     (local.set $s (i32.add (local.get $s) (i32.const 1)))
     (br_if $top (i32.gt_s (local.tee $i (i32.sub (local.get $i) (i32.const 2))) (local.get $n))))
   (local.get $s)`,
  '(local $s i32)',
);
// Two ways back to the top, each after its own step (a `continue` and the loop's end).
const CONTINUES = wat(
  '(param $i i32) (param $n i32)',
  `(loop $top (if (i32.gt_s (local.get $n) (local.get $i)) (then
     (if (i32.and (local.get $i) (i32.const 1)) (then
       (local.set $i (i32.add (local.get $i) (i32.const 1)))
       (local.set $s (i32.add (local.get $s) (i32.const 7)))
       (br $top)))
     (local.set $s (i32.add (local.get $s) (i32.const 1)))
     (local.set $i (i32.add (local.get $i) (i32.const 2)))
     (br $top))))
   (local.get $s)`,
  '(local $s i32)',
);
// `while (n--)` as AssemblyScript compiles it (memory.compare): the test is on the value before the
// decrement, kept in $t, which the body then reuses as scratch.
const POST_DECREMENT = wat(
  '(param $i i32) (param $n i32)',
  `(loop $top
     (local.set $n (i32.sub (local.tee $t (local.get $n)) (i32.const 1)))
     (if (local.get $t) (then
       (local.set $t (i32.add (local.get $s) (local.get $i)))
       (local.set $s (i32.add (local.get $t) (i32.const 1)))
       (br $top))))
   (local.get $s)`,
  '(local $s i32) (local $t i32)',
);

describe('counted loops', () => {
  it('recognises the counted shapes compilers emit', () => {
    expect(countedLoops(UP_WHILE)).toBe(1);
    expect(countedLoops(UP_UNSIGNED_OFFSET)).toBe(1);
    expect(countedLoops(DOWN_DO_WHILE_TEE)).toBe(1);
    expect(countedLoops(CONTINUES)).toBe(1);
    expect(countedLoops(POST_DECREMENT)).toBe(1);
  });

  it('computes what the module computes, for every start and bound (edges and wrap-around included)', async () => {
    const edges = fc.constantFrom(0, 1, -1, 2, 7, 8, 65535, 65536, 65537, (1 << 30) - 1, 1 << 30, 0x7fffffff, -0x80000000, -0x7ffffff0, 0x7ffffff8);
    const value = fc.oneof(fc.integer({ min: -70_000, max: 70_000 }), fc.integer({ min: -0x80000000, max: 0x7fffffff }), edges);
    // How many times each loop turns, in i32 arithmetic, up to a cap: inputs the original would
    // spin on for billions of turns (wrap-arounds) are left out, the oracle being the original itself.
    const CAP = 1 << 17;
    const turns: Array<[Uint8Array, (i: number, n: number) => number]> = [
      [UP_WHILE, (i, n) => { let k = 0; for (; k < CAP && i < n; k++) i = (i + 3) | 0; return k; }],
      [UP_UNSIGNED_OFFSET, (i, n) => { let k = 0; for (; k < CAP && ((i + 8) >>> 0) <= n >>> 0; k++) i = (i + 8) | 0; return k; }],
      [DOWN_DO_WHILE_TEE, (i, n) => { let k = 1; for (; k < CAP && (i = (i - 2) | 0) > n; k++); return k; }],
      [CONTINUES, (i, n) => { let k = 0; for (; k < CAP && n > i; k++) i = (i + (i & 1 ? 1 : 2)) | 0; return k; }],
      [POST_DECREMENT, (_i, n) => { let k = 0; for (; k < CAP && n !== 0; k++) n = (n - 1) | 0; return k; }],
    ];
    for (const [bytes, turnsOf] of turns) {
      const original = await plain(bytes);
      const { run } = await guarded(bytes, 1_000_000);
      fc.assert(
        fc.property(value, value, (i, n) => {
          fc.pre(turnsOf(i, n) < CAP);
          expect(run(i, n)).toBe(original(i, n));
        }),
        { seed: 13, numRuns: 300 },
      );
    }
  });

  it('charges a counted loop its trips: an endless repetition of small counted loops is stopped', async () => {
    const bytes = wat(
      '(param $n i32)',
      `(loop $forever
         (local.set $i (i32.const 0))
         (loop $top (if (i32.lt_u (local.get $i) (local.get $n)) (then
           (local.set $i (i32.add (local.get $i) (i32.const 1)))
           (br $top))))
         (br $forever))
       (i32.const 0)`,
      '(local $i i32)',
    );
    const { run, refuels } = await guarded(bytes, 20);
    expect(() => run(1000)).toThrow(Stopped);
    expect(refuels()).toBe(21);
  });

  it.each([
    ['a trip count over the unchecked maximum', UP_WHILE, [0, 0x3fffffff]],
    ['a bound where a step would wrap the counter', UP_UNSIGNED_OFFSET, [0, -1]],
    ['a negative bound compared unsigned, which a step wraps below', UP_UNSIGNED_OFFSET, [-6, -5]],
    ['a counter that wraps below the bound', DOWN_DO_WHILE_TEE, [0x7ffffff0, -0x80000000]],
    ['a post-decrement count over the unchecked maximum', POST_DECREMENT, [0, 0x7fffffff]],
    ['a negative post-decrement count (2^32 - 1 turns)', POST_DECREMENT, [0, -1]],
  ] as const)('stops %s (the checked copy runs)', async (_what, bytes, args) => {
    const { run } = await guarded(bytes, 5);
    expect(() => run(...args)).toThrow(Stopped);
  });

  it('keeps the per-iteration check when the proof fails: a counter reset in the loop, an endless inner loop', async () => {
    const reset = wat(
      '(param $i i32) (param $n i32)',
      `(loop $top (if (i32.lt_s (local.get $i) (local.get $n)) (then
         (local.set $i (i32.add (local.get $i) (i32.const 1)))
         (if (i32.eq (local.get $i) (i32.const 5)) (then (local.set $i (i32.const 0))))
         (br $top))))
       (i32.const 0)`,
    );
    expect(countedLoops(reset)).toBe(0);

    // `while (n--)` whose body writes n again.
    const postDecrementReset = wat(
      '(param $i i32) (param $n i32)',
      `(loop $top
         (local.set $n (i32.sub (local.tee $t (local.get $n)) (i32.const 1)))
         (if (local.get $t) (then
           (if (i32.eq (local.get $n) (i32.const 3)) (then (local.set $n (i32.const 9))))
           (br $top))))
       (i32.const 0)`,
      '(local $t i32)',
    );
    expect(countedLoops(postDecrementReset)).toBe(0);
    await expect(guarded(postDecrementReset, 5).then(({ run }) => run(0, 10))).rejects.toThrow(Stopped);
    await expect(guarded(reset, 5).then(({ run }) => run(0, 10))).rejects.toThrow(Stopped);

    const endlessInner = wat(
      '(param $i i32) (param $n i32)',
      `(loop $top (if (i32.lt_s (local.get $i) (local.get $n)) (then
         (loop $spin (br_if $spin (i32.eqz (local.get $s))))
         (local.set $i (i32.add (local.get $i) (i32.const 1)))
         (br $top))))
       (i32.const 0)`,
      '(local $s i32)',
    );
    expect(countedLoops(endlessInner)).toBe(1);
    await expect(guarded(endlessInner, 5).then(({ run }) => run(0, 10))).rejects.toThrow(Stopped);
  });
});
