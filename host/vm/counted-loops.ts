/**
 * Counted loops: the loops whose number of iterations the guard can compute
 * when the loop is entered, so that it charges them all at once instead of
 * counting each iteration (host/vm/instrument.ts).
 *
 * Most loop iterations of a typical plugin are in loops of this shape (a
 * string escaped byte by byte, a header map walked pair by pair, digits
 * written one by one): a local `i` moves by a constant step toward a bound
 * that does not change inside the loop, and the loop goes on only while `i`
 * has not reached it. A per-iteration check costs a decrement and a branch in
 * such a loop's few instructions (about 10 % of http-log's CPU); charging the
 * trip count at entry costs a handful of instructions once.
 *
 * The recognition is syntactic and conservative: anything it does not prove
 * (a second way back to the loop's top, a step that may skip the bound, a
 * bound written in the loop) keeps the per-iteration check. The guard also
 * keeps the checked copy of a counted loop for the entries whose values could
 * wrap around or whose trip count is large (instrument.ts decides at entry),
 * so a loop proved here runs at most COUNTED_TRIPS_MAX iterations. What its
 * body does besides (nested loops, calls) keeps its own checks: the proof
 * only bounds how often the body runs, and locals cannot be written by a
 * callee.
 */
import type * as BinaryenNs from 'binaryen';

type ExpressionRef = number;
type E = ExpressionRef;
/** The expression wrappers the guard uses; binaryen's bundled typings (index.d.ts) predate them. */
export interface Wrappers {
  Function: { getBody(fn: number): E; setBody(fn: number, body: E): void };
  Loop: { getName(e: E): string | null; setName(e: E, name: string): void; getBody(e: E): E; setBody(e: E, body: E): void };
  Block: { getName(e: E): string | null; setName(e: E, name: string): void; getNumChildren(e: E): number; getChildAt(e: E, i: number): E; setChildAt(e: E, i: number, child: E): void };
  If: { getCondition(e: E): E; getIfTrue(e: E): E; setIfTrue(e: E, x: E): void; getIfFalse(e: E): E; setIfFalse(e: E, x: E): void };
  Break: { getName(e: E): string | null; setName(e: E, name: string): void; getCondition(e: E): E };
  Switch: {
    getNames(e: E): string[];
    setNameAt(e: E, i: number, name: string): void;
    getDefaultName(e: E): string | null;
    setDefaultName(e: E, name: string): void;
  };
  LocalGet: { getIndex(e: E): number };
  LocalSet: { getIndex(e: E): number; isTee(e: E): boolean; getValue(e: E): E };
  Binary: { getOp(e: E): number; getLeft(e: E): E; getRight(e: E): E };
  Const: { getValueI32(e: E): number };
  MemoryGrow: { getDelta(e: E): E; setDelta(e: E, delta: E): void };
  Call: { getTarget(e: E): string };
}
export type Binaryen = typeof BinaryenNs.default & Wrappers;

/** Largest step (and offset on the counter in the condition) accepted: keeps the entry's range check simple. */
export const COUNTED_STEP_MAX = 1 << 15;

export interface CountedLoop {
  /** The local the loop counts with. */
  readonly counter: number;
  /** What it counts toward: another local (never written in the loop) or a constant. */
  readonly bound: { readonly local: number } | { readonly value: number };
  /** `up`: the counter grows while below the bound; `down`: it shrinks while above it (signed). */
  readonly direction: 'up' | 'down';
  /** The loop's condition compares unsigned (then a negative bound is past every counter). */
  readonly unsigned: boolean;
}

interface Visited {
  readonly e: ExpressionRef;
  /** The expression holding `e`, and `e`'s position there when that is a block (-1: not a block child). */
  readonly parent: ExpressionRef;
  readonly index: number;
}

/** Binary ops of a loop condition, by what they mean for a counter on the left. */
interface Ops {
  below: Set<number>; // i < N, i <= N (signed or unsigned): counting up
  aboveSigned: Set<number>; // i > N, i >= N (signed): counting down
  belowSigned: Set<number>;
  above: Set<number>;
}

/**
 * The counted-loop description of `loop`, or null when it is not provably one.
 * `children` lists an expression's operands (the guard's walker knows every kind).
 */
export function countedLoop(
  b: Binaryen,
  loop: ExpressionRef,
  children: (e: ExpressionRef) => readonly ExpressionRef[],
): CountedLoop | null {
  const B = b as unknown as Record<string, number>;
  const name = b.Loop.getName(loop);
  if (!name) return null;
  const body = b.Loop.getBody(loop);

  // One pass over the body: every reference to the loop's label and every local write, each with
  // its parent (to see what runs before it).
  const refs: Visited[] = [];
  const sets: Visited[] = [];
  const parents = new Map<ExpressionRef, Visited>();
  const stack: Visited[] = [{ e: body, parent: 0, index: -1 }];
  while (stack.length > 0) {
    const v = stack.pop()!;
    const e = v.e;
    if (e === 0) continue;
    parents.set(e, v);
    const id = b.getExpressionId(e);
    if (id === b.BreakId && b.Break.getName(e) === name) refs.push(v);
    if (id === b.SwitchId && (b.Switch.getNames(e).includes(name) || b.Switch.getDefaultName(e) === name)) return null;
    if (id === b.LocalSetId) sets.push(v);
    if (id === b.BlockId) {
      const n = b.Block.getNumChildren(e);
      for (let i = 0; i < n; i++) stack.push({ e: b.Block.getChildAt(e, i), parent: e, index: i });
    } else {
      for (const k of children(e)) stack.push({ e: k, parent: e, index: -1 });
    }
  }
  if (refs.length === 0) return null;
  const postDecrement = postDecrementLoop(b, B, body, sets);
  if (postDecrement !== null) return postDecrement;

  // The condition every iteration passes: a top-level if without else (while form: any number of
  // ways back to the top, each starts over with the condition), or the only way back being the
  // body's last expression, a br_if (do-while form).
  let condition: ExpressionRef;
  const bodyId = b.getExpressionId(body);
  if (bodyId === b.IfId && b.If.getIfFalse(body) === 0) {
    condition = b.If.getCondition(body);
  } else {
    const last = bodyId === b.BlockId && b.Block.getNumChildren(body) > 0 ? b.Block.getChildAt(body, b.Block.getNumChildren(body) - 1) : body;
    if (refs.length !== 1 || last !== refs[0]!.e) return null;
    condition = b.Break.getCondition(last);
    if (condition === 0) return null;
  }

  // `a < b` reads as "a counts up to b" or "b counts down to a": the writes in the loop decide.
  for (const candidate of matchComparison(b, B, condition)) {
    if (provesCounter(b, B, candidate, body, refs, sets, parents)) {
      return { counter: candidate.counter, bound: candidate.bound, direction: candidate.direction, unsigned: candidate.unsigned };
    }
  }
  return null;
}

/**
 * `while (n--) { ... }` as AssemblyScript compiles it (its memory.compare, for one): the body is
 * `n = (t = n) - 1` then `if (t) { ... }`, so every way back to the top passes that test, and the
 * loop goes on while the value before the decrement was not zero: from n (unsigned), n iterations.
 * The counter must not be written anywhere else in the loop; `t` may be reused inside the if, as
 * it is read only right after its tee.
 */
function postDecrementLoop(b: Binaryen, B: Record<string, number>, body: ExpressionRef, sets: readonly Visited[]): CountedLoop | null {
  if (b.getExpressionId(body) !== b.BlockId || b.Block.getNumChildren(body) !== 2) return null;
  const step = b.Block.getChildAt(body, 0);
  const test = b.Block.getChildAt(body, 1);
  if (b.getExpressionId(step) !== b.LocalSetId || b.LocalSet.isTee(step)) return null;
  if (b.getExpressionId(test) !== b.IfId || b.If.getIfFalse(test) !== 0) return null;
  const counter = b.LocalSet.getIndex(step);
  const value = b.LocalSet.getValue(step);
  if (b.getExpressionId(value) !== b.BinaryId || b.Binary.getOp(value) !== B.SubInt32 || constI32(b, b.Binary.getRight(value)) !== 1) return null;
  const before = b.Binary.getLeft(value);
  if (b.getExpressionId(before) !== b.LocalSetId || !b.LocalSet.isTee(before)) return null;
  const copy = b.LocalSet.getIndex(before);
  const read = b.LocalSet.getValue(before);
  if (copy === counter || b.getExpressionId(read) !== b.LocalGetId || b.LocalGet.getIndex(read) !== counter) return null;
  const condition = b.If.getCondition(test);
  if (b.getExpressionId(condition) !== b.LocalGetId || b.LocalGet.getIndex(condition) !== copy) return null;
  if (sets.some((s) => s.e !== step && b.LocalSet.getIndex(s.e) === counter)) return null;
  return { counter, bound: { value: 0 }, direction: 'down', unsigned: true };
}

interface Candidate {
  readonly counter: number;
  readonly bound: CountedLoop['bound'];
  readonly direction: CountedLoop['direction'];
  readonly unsigned: boolean;
  /** The counter's operand in the condition (a tee there may be the step). */
  readonly counterExpr: ExpressionRef;
}

function provesCounter(
  b: Binaryen,
  B: Record<string, number>,
  { counter, bound, direction, counterExpr }: Candidate,
  body: ExpressionRef,
  refs: readonly Visited[],
  sets: readonly Visited[],
  parents: ReadonlyMap<ExpressionRef, Visited>,
): boolean {
  // Every write of the counter, nested loops included, moves it toward the bound; the bound is never written.
  const steps = new Set<ExpressionRef>();
  for (const s of sets) {
    const index = b.LocalSet.getIndex(s.e);
    if ('local' in bound && index === bound.local) return false;
    if (index !== counter) continue;
    if (!isStep(b, B, b.LocalSet.getValue(s.e), counter, direction)) return false;
    steps.add(s.e);
  }
  if (steps.size === 0) return false;

  // A step runs before every return to the top: it is the condition's own tee, or an earlier
  // sibling, in a block, of the way back or of one of its enclosing expressions (control reaches a
  // block's k-th child only through the ones before it).
  if (steps.has(counterExpr)) return true;
  return refs.every((ref) => {
    for (let v: Visited | undefined = ref; v !== undefined && v.e !== body; v = parents.get(v.parent)) {
      for (let i = 0; i < v.index; i++) if (steps.has(b.Block.getChildAt(v.parent, i))) return true;
    }
    return false;
  });
}

function matchComparison(
  b: Binaryen,
  B: Record<string, number>,
  e: ExpressionRef,
): Candidate[] {
  const found: Candidate[] = [];
  if (b.getExpressionId(e) !== b.BinaryId) return found;
  const op = b.Binary.getOp(e);
  const ops: Ops = {
    below: new Set([B.LtSInt32!, B.LtUInt32!, B.LeSInt32!, B.LeUInt32!]),
    above: new Set([B.GtSInt32!, B.GtUInt32!, B.GeSInt32!, B.GeUInt32!]),
    aboveSigned: new Set([B.GtSInt32!, B.GeSInt32!]),
    belowSigned: new Set([B.LtSInt32!, B.LeSInt32!]),
  };
  const left = b.Binary.getLeft(e);
  const right = b.Binary.getRight(e);
  // counter OP bound, or bound OP counter (mirrored).
  for (const [c, n, up, down] of [
    [left, right, ops.below, ops.aboveSigned],
    [right, left, ops.above, ops.belowSigned],
  ] as const) {
    const direction = up.has(op) ? 'up' : down.has(op) ? 'down' : null;
    if (direction === null) continue;
    const counter = counterOperand(b, B, c, direction);
    const bound = boundOperand(b, n);
    if (counter === null || bound === null) continue;
    if ('local' in bound && bound.local === counter.index) continue;
    const unsigned = [B.LtUInt32, B.LeUInt32, B.GtUInt32, B.GeUInt32].includes(op);
    found.push({ counter: counter.index, bound, direction, unsigned, counterExpr: counter.expr });
  }
  return found;
}

/** `i`, `i = <step>` (a tee), or (counting up) `i + k` with a small k ≥ 0. */
function counterOperand(b: Binaryen, B: Record<string, number>, e: ExpressionRef, direction: 'up' | 'down'): { index: number; expr: ExpressionRef } | null {
  const id = b.getExpressionId(e);
  if (id === b.LocalGetId) return { index: b.LocalGet.getIndex(e), expr: e };
  if (id === b.LocalSetId && b.LocalSet.isTee(e)) return { index: b.LocalSet.getIndex(e), expr: e };
  if (direction === 'up' && id === b.BinaryId && b.Binary.getOp(e) === B.AddInt32) {
    const l = b.Binary.getLeft(e);
    const k = constI32(b, b.Binary.getRight(e));
    if (b.getExpressionId(l) === b.LocalGetId && k !== null && k >= 0 && k <= COUNTED_STEP_MAX) return { index: b.LocalGet.getIndex(l), expr: e };
  }
  return null;
}

function boundOperand(b: Binaryen, e: ExpressionRef): CountedLoop['bound'] | null {
  const id = b.getExpressionId(e);
  if (id === b.LocalGetId) return { local: b.LocalGet.getIndex(e) };
  const value = constI32(b, e);
  return value === null ? null : { value };
}

/** `i + c` / `c + i` (up) or `i - c` / `i + (-c)` (down), with 1 ≤ c ≤ COUNTED_STEP_MAX. */
function isStep(b: Binaryen, B: Record<string, number>, e: ExpressionRef, counter: number, direction: 'up' | 'down'): boolean {
  if (b.getExpressionId(e) !== b.BinaryId) return false;
  const op = b.Binary.getOp(e);
  const l = b.Binary.getLeft(e);
  const r = b.Binary.getRight(e);
  const isCounter = (x: ExpressionRef) => b.getExpressionId(x) === b.LocalGetId && b.LocalGet.getIndex(x) === counter;
  const small = (c: number | null) => c !== null && c >= 1 && c <= COUNTED_STEP_MAX;
  if (op === B.AddInt32) {
    const [c, x] = isCounter(l) ? [constI32(b, r), l] : isCounter(r) ? [constI32(b, l), r] : [null, 0];
    if (x === 0 || c === null) return false;
    return direction === 'up' ? small(c) : small(-c);
  }
  if (op === B.SubInt32 && direction === 'down') return isCounter(l) && small(constI32(b, r));
  return false;
}

function constI32(b: Binaryen, e: ExpressionRef): number | null {
  if (b.getExpressionId(e) !== b.ConstId || b.getExpressionType(e) !== b.i32) return null;
  return b.Const.getValueI32(e);
}
