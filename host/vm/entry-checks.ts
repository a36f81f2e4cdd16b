/**
 * Which functions the guard (host/vm/instrument.ts) checks at their entry,
 * and how many loop iterations each call of a function runs free (see
 * CheckPlan).
 *
 * Loops are checked where they are. What remains unbounded without a loop is
 * recursion, and a call tree whose size multiplies at each level (f calls g
 * twice, g calls h twice, ...). So a function needs an entry check when it is
 * part of a cycle of direct calls, when it calls through a table (any target,
 * possibly itself), or when the code it runs without meeting another check
 * (its own expressions plus, for each call site, the same figure of an
 * unchecked callee, times its free passes when it loops) passes WORK_MAX.
 * Everything else runs a bounded amount of
 * code between two checks of its callers or loops, and most functions of a
 * plugin are small ones called per request, where a check at every entry
 * cost about 2 % of http-log's CPU.
 */
import type { Binaryen } from './counted-loops.js';

type ExpressionRef = number;

/** Most expressions a function may run, callees included, between two fuel checks. */
export const WORK_MAX = 20_000;
/** Loop iterations paid for at once from the fuel global (then counted down in a register). */
export const LOOP_REFILL = 16;
/** Most iterations free in each call of a function (its allowance). */
export const ALLOWANCE_MAX = 64;
/** A loop function's free iterations may take at most this share of WORK_MAX, so that its callers can call several. */
const ALLOWANCE_SHARE = 4;

/**
 * Loops count their iterations in a local of their function (a register:
 * far cheaper than the fuel global, which lives in memory), paying for them
 * from the global LOOP_REFILL at a time, in advance. A function may also be
 * given an allowance: the local starts there in every call, so that many
 * iterations of each call are free (a small loop called per request then
 * never touches the global). Free iterations multiply (a loop that calls a
 * function with an allowance gets its free iterations at each of its own
 * iterations), so the allowance is what keeps one call's unpaid work (its
 * passes over its body, callees included) within a share of WORK_MAX; a
 * function whose body is too large for that gets none and pays before its
 * first iteration.
 */
export interface CheckPlan {
  /** Functions that spend one unit at entry. */
  readonly entryChecked: Set<string>;
  /** Functions with loops: the iterations free in each call (0..ALLOWANCE_MAX). */
  readonly allowance: Map<string, number>;
}

interface FunctionFacts {
  /** Expressions in its body. */
  size: number;
  /** It has a loop. */
  loops: boolean;
  /** Defined functions it calls directly, once per call site. */
  calls: string[];
  /** It calls through a table or a reference. */
  indirect: boolean;
}

/** The entry checks and loop allowances for `functions` (defined functions, by name). `operands` lists an expression's children. */
export function planChecks(
  b: Binaryen,
  functions: ReadonlyMap<string, ExpressionRef>,
  operands: (e: ExpressionRef) => readonly ExpressionRef[],
): CheckPlan {
  const facts = new Map<string, FunctionFacts>();
  for (const [name, body] of functions) {
    const f: FunctionFacts = { size: 0, loops: false, calls: [], indirect: false };
    const stack = [body];
    while (stack.length > 0) {
      const e = stack.pop()!;
      if (e === 0) continue;
      f.size++;
      const id = b.getExpressionId(e);
      if (id === b.CallId) {
        const target = b.Call.getTarget(e);
        if (functions.has(target)) f.calls.push(target);
      } else if (id === b.CallIndirectId || id === (b as unknown as { CallRefId: number }).CallRefId) {
        f.indirect = true;
      } else if (id === b.LoopId) {
        f.loops = true;
      }
      stack.push(...operands(e));
    }
    facts.set(name, f);
  }

  const checked = new Set<string>();
  for (const name of inCycles(facts)) checked.add(name);
  for (const [name, f] of facts) if (f.indirect) checked.add(name);

  // Work between checks, callees first (the rest of the graph is acyclic now that cycles are checked).
  const work = new Map<string, number>();
  const allowance = new Map<string, number>();
  /** One pass over f's body: its expressions and, per call site, what an unchecked callee runs unpaid. */
  const pass = (f: FunctionFacts) => {
    let w = f.size;
    for (const c of f.calls) if (!checked.has(c)) w += work.get(c) ?? 0;
    return w;
  };
  const allowanceFor = (p: number) => Math.max(0, Math.min(ALLOWANCE_MAX, Math.floor(WORK_MAX / (ALLOWANCE_SHARE * p)) - 1));
  const computeWork = (root: string): void => {
    // Iterative post-order: deep call chains must not overflow the JS stack.
    const stack: Array<[string, boolean]> = [[root, false]];
    while (stack.length > 0) {
      const [name, expanded] = stack.pop()!;
      if (work.has(name)) continue;
      const f = facts.get(name)!;
      if (!expanded) {
        stack.push([name, true]);
        for (const c of f.calls) if (!checked.has(c) && !work.has(c)) stack.push([c, false]);
        continue;
      }
      const p = pass(f);
      let w = p;
      if (f.loops) {
        const free = allowanceFor(p);
        allowance.set(name, free);
        w = (free + 1) * p;
      }
      if (w > WORK_MAX) {
        checked.add(name);
        w = f.size; // its callers meet its check: they count only what runs before it
      }
      work.set(name, w);
    }
  };
  for (const name of facts.keys()) if (!checked.has(name)) computeWork(name);
  // Checked functions (cycles, tables) were skipped above; their allowance follows from their body alike
  // (every unchecked callee's work is known by now).
  for (const [name, f] of facts) if (f.loops && !allowance.has(name)) allowance.set(name, allowanceFor(pass(f)));
  return { entryChecked: checked, allowance };
}

/** Functions on a cycle of direct calls (self-calls included): Tarjan's strongly connected components, iteratively. */
function inCycles(facts: ReadonlyMap<string, FunctionFacts>): Set<string> {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const sccStack: string[] = [];
  const out = new Set<string>();
  let next = 0;
  for (const root of facts.keys()) {
    if (index.has(root)) continue;
    const work: Array<{ name: string; i: number }> = [{ name: root, i: 0 }];
    index.set(root, next);
    low.set(root, next++);
    sccStack.push(root);
    onStack.add(root);
    while (work.length > 0) {
      const top = work[work.length - 1]!;
      const calls = facts.get(top.name)!.calls;
      if (top.i < calls.length) {
        const c = calls[top.i++]!;
        if (c === top.name) out.add(c);
        if (!index.has(c)) {
          index.set(c, next);
          low.set(c, next++);
          sccStack.push(c);
          onStack.add(c);
          work.push({ name: c, i: 0 });
        } else if (onStack.has(c)) {
          low.set(top.name, Math.min(low.get(top.name)!, index.get(c)!));
        }
        continue;
      }
      work.pop();
      if (work.length > 0) {
        const parent = work[work.length - 1]!.name;
        low.set(parent, Math.min(low.get(parent)!, low.get(top.name)!));
      }
      if (low.get(top.name) === index.get(top.name)) {
        const component: string[] = [];
        let n: string;
        do {
          n = sccStack.pop()!;
          onStack.delete(n);
          component.push(n);
        } while (n !== top.name);
        if (component.length > 1) for (const m of component) out.add(m);
      }
    }
  }
  return out;
}
