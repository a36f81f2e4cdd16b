/**
 * The guard: a rewrite of a module's code, made in memory when the host
 * loads it, that lets the host stop a guest call that runs too long and cap
 * how far the guest's memory can grow. The file on disk is never touched, so
 * the same artifact still loads in Envoy.
 *
 * - Fuel: a mutable i32 global, spent by loop iterations and at the entry
 *   of the functions entry-checks.ts picks (wasmtime checks at every loop
 *   header and function entry: without entry checks recursion, or a loop-free
 *   call tree, could still run for exponential time). A loop header counts
 *   down a local of its function and pays LOOP_REFILL iterations at a time
 *   from the global, in advance; a function may run a few iterations per call
 *   free (its allowance, entry-checks.ts, sized so that free iterations cannot
 *   multiply through calls). A counted loop (counted-loops.ts) is charged its
 *   trip count once, at entry, to the same local. When the global drops below
 *   zero the guest calls the host import `hookwire:guard.refuel`, which
 *   compares the clock with the current call's deadline and either returns a
 *   new allowance or throws, which unwinds the guest like a trap. The host is
 *   called once per FUEL_SLICE units, not per loop.
 * - Memory: every `memory.grow` asks for `hookwire:guard.cap_grow(delta)`
 *   pages instead (an internal function, not a host call): the same delta,
 *   or 0xFFFFFFFF when the result would pass the imported global
 *   `hookwire:guard.max_pages`, which makes the grow fail (-1) as if the
 *   engine were out of memory. The cap is an import, so one rewrite serves
 *   every cap.
 *
 * The rewrite uses binaryen's JS API (loaded once, on first use: it takes
 * a moment), reads the module with every feature enabled (AssemblyScript
 * emits bulk memory, sign extension, mutable globals; other SDKs more) and
 * keeps the name section so stack traces still name functions.
 */
import type * as BinaryenNs from 'binaryen';
import { COUNTED_STEP_MAX, countedLoop, type Binaryen, type CountedLoop } from './counted-loops.js';
import { LOOP_REFILL, planChecks } from './entry-checks.js';

type ExpressionRef = number;

/** Import module of the guard's host imports; chosen not to clash with any SDK's. */
export const GUARD_MODULE = 'hookwire:guard';
/** Fuel units (loop iterations, entries) between two calls to the host, each a clock read: well under a millisecond of guest work. */
export const FUEL_SLICE = 20_000;
/** Counted loops entered with more trips than this take their checked copy: bounds the unchecked run to about a millisecond. */
export const COUNTED_TRIPS_MAX = 1 << 16;
/** Counter and bound values (from -COUNTED_STEP_MAX) with which a counted loop cannot wrap around. */
const COUNTED_RANGE = 1 << 30;

const FUEL = 'hookwire_guard_fuel';
const REFUEL = 'hookwire_guard_refuel';
const MAX_PAGES = 'hookwire_guard_max_pages';
const CAP_GROW = 'hookwire_guard_cap_grow';

let binaryenPromise: Promise<Binaryen> | null = null;

/** binaryen, imported on first use (about half a second) and kept. */
function loadBinaryen(): Promise<Binaryen> {
  binaryenPromise ??= import('binaryen').then((m) => m.default as Binaryen);
  return binaryenPromise;
}

/** Thrown when binaryen cannot read or rewrite the module; the message says why. */
export class InstrumentError extends Error {}

/**
 * The guarded copy of `bytes`. Throws InstrumentError when binaryen cannot
 * read the module or when the rewritten module does not validate.
 */
export async function instrumentModule(bytes: Uint8Array): Promise<Uint8Array> {
  const b = await loadBinaryen();
  let mod: BinaryenNs.default.Module;
  try {
    mod = (b.readBinary as unknown as (data: Uint8Array, features: number) => BinaryenNs.default.Module)(bytes, b.Features.All);
  } catch (err) {
    throw new InstrumentError(`binaryen cannot read the module: ${(err as Error).message}`, { cause: err });
  }
  try {
    // Validate and write with every feature except the encodings V8 (Node 20) cannot read yet:
    // with All, binaryen writes compact imports, which V8 rejects ("unknown import kind").
    const F = b.Features as unknown as Record<string, number>;
    mod.setFeatures(F.All! & ~F.CompactImports! & ~F.CustomPageSizes!);
    const functions: ExpressionRef[] = [];
    for (let i = 0; i < mod.getNumFunctions(); i++) {
      const fn = mod.getFunctionByIndex(i);
      const info = b.getFunctionInfo(fn);
      if (info.module === '') functions.push(fn);
    }

    mod.addGlobal(FUEL, b.i32, true, mod.i32.const(FUEL_SLICE));
    mod.addFunctionImport(REFUEL, GUARD_MODULE, 'refuel', b.none, b.i32);
    mod.addGlobalImport(MAX_PAGES, GUARD_MODULE, 'max_pages', b.i32, false);
    // cap_grow(delta) = size + delta > max_pages ? 0xFFFFFFFF : delta (all unsigned; size + delta cannot wrap: both ≤ 65536 in practice, else the grow fails anyway).
    const delta = () => mod.local.get(0, b.i32);
    mod.addFunction(
      CAP_GROW,
      b.i32,
      b.i32,
      [],
      // binaryen's select takes the condition first.
      mod.select(mod.i32.gt_u(mod.i32.add(mod.memory.size(), delta()), mod.global.get(MAX_PAGES, b.i32)), mod.i32.const(-1), delta()),
    );

    // Spend `cost` fuel (a constant, or computed at run time); below zero, ask the host (which refills or throws).
    const spendExpr = (cost: ExpressionRef): ExpressionRef =>
      mod.block(null, [
        mod.global.set(FUEL, mod.i32.sub(mod.global.get(FUEL, b.i32), cost)),
        mod.if(mod.i32.lt_s(mod.global.get(FUEL, b.i32), mod.i32.const(0)), mod.global.set(FUEL, mod.call(REFUEL, [], b.i32))),
      ]);
    const spend = (cost: number): ExpressionRef => spendExpr(mod.i32.const(cost));
    // A loop header counts down a local of its function (a register: far cheaper than the global,
    // which lives in memory; the hot path is a decrement and a branch not taken). Below zero, it pays
    // for the next LOOP_REFILL iterations, and for any deficit (a counted loop's charge, below), from
    // the global. The function's entry sets the local to its allowance (entry-checks.ts).
    const charge = (counter: number, cost: ExpressionRef): ExpressionRef =>
      mod.if(
        mod.i32.lt_s(mod.local.tee(counter, mod.i32.sub(mod.local.get(counter, b.i32), cost), b.i32), mod.i32.const(0)),
        mod.block(null, [
          spendExpr(mod.i32.sub(mod.i32.const(LOOP_REFILL), mod.local.get(counter, b.i32))),
          mod.local.set(counter, mod.i32.const(LOOP_REFILL)),
        ]),
      );
    const loopCheck = (counter: number): ExpressionRef => charge(counter, mod.i32.const(1));

    // A counted loop (host/vm/counted-loops.ts) entered with small, non-wrapping values is charged its
    // trip count once, at entry, to the same local, and runs without per-iteration checks; any other
    // entry takes a checked copy of the loop. `tripsLocal` holds the trip count between the test and the charge.
    const countedEntry = (loop: ExpressionRef, counted: CountedLoop, tripsLocal: number, checked: ExpressionRef, counter: number): ExpressionRef | null => {
      const i = () => mod.local.get(counted.counter, b.i32);
      const bound = () => ('local' in counted.bound ? mod.local.get(counted.bound.local, b.i32) : mod.i32.const(counted.bound.value));
      // No step may wrap the counter around: the bound lies in [0, 2^30) (from -STEP when the loop
      // compares signed), and the trip test puts the counter within COUNTED_TRIPS_MAX of it.
      const low = counted.unsigned ? 0 : -COUNTED_STEP_MAX;
      if ('value' in counted.bound && !(counted.bound.value >= low && counted.bound.value < COUNTED_RANGE)) return null;
      const boundInRange = () => mod.i32.lt_u(mod.i32.sub(bound(), mod.i32.const(low)), mod.i32.const(COUNTED_RANGE - low));
      const trips = counted.direction === 'up' ? mod.i32.sub(bound(), i()) : mod.i32.sub(i(), bound());
      const tripsSmall = mod.i32.lt_u(mod.local.tee(tripsLocal, trips, b.i32), mod.i32.const(COUNTED_TRIPS_MAX));
      const fast = 'local' in counted.bound ? mod.i32.and(boundInRange(), tripsSmall) : tripsSmall;
      const type = b.getExpressionType(loop);
      return mod.if(fast, mod.block(null, [charge(counter, mod.local.get(tripsLocal, b.i32)), loop], type), checked);
    };
    const walker = new Walker(b, mod, loopCheck, countedEntry);
    const plan = planChecks(
      b,
      new Map(functions.map((fn) => [b.getFunctionInfo(fn).name, b.Function.getBody(fn)])),
      (e) => walker.operands(e),
    );
    for (const fn of functions) {
      const name = b.getFunctionInfo(fn).name;
      const body = b.Function.getBody(fn);
      const locals: Record<string, number> = {};
      const addLocal = (role: string) => (locals[role] ??= (b as unknown as { _BinaryenFunctionAddVar(fn: number, type: number): number })._BinaryenFunctionAddVar(fn, b.i32));
      walker.local = addLocal;
      const prologue: ExpressionRef[] = [];
      walker.walk(body, (e) => b.Function.setBody(fn, e));
      if (plan.entryChecked.has(name)) prologue.push(spend(1));
      if (locals.counter !== undefined) prologue.push(mod.local.set(locals.counter, mod.i32.const(plan.allowance.get(name) ?? 0)));
      if (prologue.length > 0) {
        const current = b.Function.getBody(fn);
        b.Function.setBody(fn, mod.block(null, [...prologue, current], b.getExpressionType(current)));
      }
    }
    if (!mod.validate()) throw new InstrumentError('the instrumented module does not validate (binaryen printed why on stderr)');
    b.setDebugInfo(true);
    return mod.emitBinary();
  } catch (err) {
    if (err instanceof InstrumentError) throw err;
    throw new InstrumentError(`binaryen failed to instrument the module: ${(err as Error).message}`, { cause: err });
  } finally {
    mod.dispose();
  }
}

/**
 * Visits every expression of a function body (binaryen's JS API has no
 * generic child walker, so children are listed per expression kind) and
 * guards loops and memory.grow in place.
 */
class Walker {
  private readonly children = new Map<number, (e: ExpressionRef) => readonly ExpressionRef[]>();
  private readonly leaves = new Set<number>();

  constructor(
    private readonly b: Binaryen,
    private readonly mod: BinaryenNs.default.Module,
    private readonly loopCheck: (counter: number) => ExpressionRef,
    private readonly countedEntry: (loop: ExpressionRef, counted: CountedLoop, tripsLocal: number, checked: ExpressionRef, counter: number) => ExpressionRef | null,
  ) {
    const B = b as unknown as Record<string, Record<string, (e: ExpressionRef) => unknown>> & Record<string, number>;
    const get =
      (cls: string, ...names: string[]) =>
      (e: ExpressionRef): ExpressionRef[] => {
        const out: ExpressionRef[] = [];
        for (const n of names) {
          const v = B[cls]![n]!(e) as ExpressionRef | ExpressionRef[];
          if (Array.isArray(v)) out.push(...v);
          else out.push(v);
        }
        return out;
      };
    const kids: Record<string, [string, ...string[]]> = {
      Block: ['Block', 'getChildren'],
      If: ['If', 'getCondition', 'getIfTrue', 'getIfFalse'],
      Loop: ['Loop', 'getBody'],
      Break: ['Break', 'getCondition', 'getValue'],
      Switch: ['Switch', 'getCondition', 'getValue'],
      Call: ['Call', 'getOperands'],
      CallIndirect: ['CallIndirect', 'getTarget', 'getOperands'],
      LocalSet: ['LocalSet', 'getValue'],
      GlobalSet: ['GlobalSet', 'getValue'],
      Load: ['Load', 'getPtr'],
      Store: ['Store', 'getPtr', 'getValue'],
      AtomicRMW: ['AtomicRMW', 'getPtr', 'getValue'],
      AtomicCmpxchg: ['AtomicCmpxchg', 'getPtr', 'getExpected', 'getReplacement'],
      AtomicWait: ['AtomicWait', 'getPtr', 'getExpected', 'getTimeout'],
      AtomicNotify: ['AtomicNotify', 'getPtr', 'getNotifyCount'],
      SIMDExtract: ['SIMDExtract', 'getVec'],
      SIMDReplace: ['SIMDReplace', 'getVec', 'getValue'],
      SIMDShuffle: ['SIMDShuffle', 'getLeft', 'getRight'],
      SIMDTernary: ['SIMDTernary', 'getA', 'getB', 'getC'],
      SIMDShift: ['SIMDShift', 'getVec', 'getShift'],
      SIMDLoad: ['SIMDLoad', 'getPtr'],
      SIMDLoadStoreLane: ['SIMDLoadStoreLane', 'getPtr', 'getVec'],
      MemoryInit: ['MemoryInit', 'getDest', 'getOffset', 'getSize'],
      MemoryCopy: ['MemoryCopy', 'getDest', 'getSource', 'getSize'],
      MemoryFill: ['MemoryFill', 'getDest', 'getValue', 'getSize'],
      Unary: ['Unary', 'getValue'],
      Binary: ['Binary', 'getLeft', 'getRight'],
      Select: ['Select', 'getIfTrue', 'getIfFalse', 'getCondition'],
      Drop: ['Drop', 'getValue'],
      Return: ['Return', 'getValue'],
      MemoryGrow: ['MemoryGrow', 'getDelta'],
      RefIsNull: ['RefIsNull', 'getValue'],
      RefEq: ['RefEq', 'getLeft', 'getRight'],
      TableGet: ['TableGet', 'getIndex'],
      TableSet: ['TableSet', 'getIndex', 'getValue'],
      TableGrow: ['TableGrow', 'getValue', 'getDelta'],
      Try: ['Try', 'getBody', 'getCatchBodies'],
      Throw: ['Throw', 'getOperands'],
      TupleMake: ['TupleMake', 'getOperands'],
      TupleExtract: ['TupleExtract', 'getTuple'],
      RefAs: ['RefAs', 'getValue'],
      CallRef: ['CallRef', 'getOperands', 'getTarget'],
    };
    for (const [kind, [cls, ...names]] of Object.entries(kids)) this.children.set(B[`${kind}Id`]!, get(cls, ...names));
    for (const kind of [
      'Nop', 'LocalGet', 'GlobalGet', 'Const', 'MemorySize', 'Unreachable', 'Pop', 'RefNull', 'RefFunc',
      'AtomicFence', 'DataDrop', 'TableSize', 'Rethrow', 'ElemDrop',
    ]) {
      this.leaves.add(B[`${kind}Id`]!);
    }
  }

  /** Adds a local of the given role (one per role) to the function being walked; returns its index. */
  local: (role: 'counter' | 'trips') => number = () => {
    throw new Error('no function');
  };

  /** The operands of `e` (none for a leaf). */
  operands(e: ExpressionRef): readonly ExpressionRef[] {
    const id = this.b.getExpressionId(e);
    if (this.leaves.has(id)) return [];
    const kids = this.children.get(id);
    if (kids === undefined) {
      throw new InstrumentError(`unsupported instruction in function code: ${this.b.emitText(e).split('\n')[0]!.trim()}`);
    }
    return kids(e);
  }

  private copies = 0;

  /** `copy` with fresh names for the labels it defines (binaryen wants a function's labels unique). */
  private relabeled(copy: ExpressionRef): ExpressionRef {
    const b = this.b;
    const suffix = `$hookwire_guard_${++this.copies}`;
    const all: ExpressionRef[] = [];
    this.forEach(copy, (e) => all.push(e));
    const renamed = new Set<string>();
    for (const e of all) {
      const id = b.getExpressionId(e);
      const owner = id === b.LoopId ? b.Loop : id === b.BlockId ? b.Block : null;
      const name = owner?.getName(e);
      if (owner && name) {
        renamed.add(name);
        owner.setName(e, name + suffix);
      }
    }
    for (const e of all) {
      const id = b.getExpressionId(e);
      if (id === b.BreakId) {
        const name = b.Break.getName(e);
        if (name && renamed.has(name)) b.Break.setName(e, name + suffix);
      } else if (id === b.SwitchId) {
        b.Switch.getNames(e).forEach((name, i) => renamed.has(name) && b.Switch.setNameAt(e, i, name + suffix));
        const d = b.Switch.getDefaultName(e);
        if (d && renamed.has(d)) b.Switch.setDefaultName(e, d + suffix);
      }
    }
    return copy;
  }

  /** Calls `visit` on every expression under `root`, `root` included. */
  private forEach(root: ExpressionRef, visit: (e: ExpressionRef) => void): void {
    const stack = [root];
    while (stack.length > 0) {
      const e = stack.pop()!;
      if (e === 0) continue;
      visit(e);
      stack.push(...this.operands(e));
    }
  }

  /**
   * Guard the loops and memory.grow under `root` (which `replaceRoot` can swap for another
   * expression).
   */
  walk(root: ExpressionRef, replaceRoot: (e: ExpressionRef) => void): void {
    const b = this.b;
    // Each entry: an expression and how to put another in its place (null where the parent kind has no setter here).
    const stack: Array<[ExpressionRef, ((e: ExpressionRef) => void) | null]> = [[root, replaceRoot]];
    const uncounted = new Set<ExpressionRef>();
    const pushChildren = (e: ExpressionRef) => {
      const id = b.getExpressionId(e);
      if (id === b.BlockId) {
        const n = b.Block.getNumChildren(e);
        for (let i = 0; i < n; i++) stack.push([b.Block.getChildAt(e, i), (x) => b.Block.setChildAt(e, i, x)]);
      } else if (id === b.IfId) {
        stack.push([b.If.getCondition(e), null]);
        stack.push([b.If.getIfTrue(e), (x) => b.If.setIfTrue(e, x)]);
        const no = b.If.getIfFalse(e);
        if (no !== 0) stack.push([no, (x) => b.If.setIfFalse(e, x)]);
      } else {
        for (const k of this.operands(e)) stack.push([k, null]);
      }
    };
    // The per-iteration check at the top of a loop; its former body stays reachable for the walk.
    const checkLoop = (loop: ExpressionRef) => {
      const body = b.Loop.getBody(loop);
      const wrapper = this.mod.block(null, [this.loopCheck(this.local('counter')), body], b.getExpressionType(body));
      b.Loop.setBody(loop, wrapper);
      stack.push([body, (x) => b.Block.setChildAt(wrapper, 1, x)]);
    };
    while (stack.length > 0) {
      const [e, replace] = stack.pop()!;
      if (e === 0) continue; // an absent optional child (a br without value)
      const id = b.getExpressionId(e);
      if (id === b.LoopId) {
        const counted = replace === null || uncounted.has(e) ? null : countedLoop(b, e, (x) => this.operands(x));
        if (counted !== null) {
          const checked = this.relabeled(this.mod.copyExpression(e));
          const entry = this.countedEntry(e, counted, this.local('trips'), checked, this.local('counter'));
          if (entry !== null) {
            replace!(entry);
            // Loops inside the checked copy stay checked only: copying them again would double the code at every nesting level.
            this.forEach(checked, (x) => b.getExpressionId(x) === b.LoopId && uncounted.add(x));
            checkLoop(checked);
            stack.push([b.Loop.getBody(e), (x) => b.Loop.setBody(e, x)]);
            continue;
          }
        }
        checkLoop(e);
        continue;
      }
      pushChildren(e);
      if (id === b.MemoryGrowId) b.MemoryGrow.setDelta(e, this.mod.call(CAP_GROW, [b.MemoryGrow.getDelta(e)], b.i32));
    }
  }
}
