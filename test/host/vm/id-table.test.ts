/**
 * IdTable (host/vm/id-table.ts): the same answers as a Map for any sequence of
 * adds, removals and look-ups, with ids handed out in increasing order as
 * context ids and http call tokens are (some long-lived, most short), and with
 * arbitrary ids too.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IdTable } from '../../../host/vm/id-table.js';

type Op = { kind: 'add' } | { kind: 'remove'; pick: number } | { kind: 'get'; pick: number } | { kind: 'put'; id: number };

function check(ops: Op[], capacity: number): void {
  const table = new IdTable<string>(capacity);
  const model = new Map<number, string>();
  let next = 1;
  for (const op of ops) {
    const live = [...model.keys()];
    if (op.kind === 'add') {
      const id = next++;
      table.set(id, `v${id}`);
      model.set(id, `v${id}`);
    } else if (op.kind === 'put') {
      table.set(op.id, `p${op.id}`);
      model.set(op.id, `p${op.id}`);
    } else {
      // Half the picks name a live id, the rest one that may be gone or never was.
      const id = live.length > 0 && op.pick % 2 === 0 ? live[(op.pick >> 1) % live.length]! : op.pick;
      if (op.kind === 'remove') expect(table.delete(id)).toBe(model.delete(id));
      else expect(table.get(id)).toBe(model.get(id));
    }
    expect(table.size).toBe(model.size);
  }
  for (const [id, value] of model) expect(table.get(id)).toBe(value);
}

const op = fc.oneof(
  { arbitrary: fc.constant<Op>({ kind: 'add' }), weight: 5 },
  { arbitrary: fc.nat(200).map((pick): Op => ({ kind: 'remove', pick })), weight: 4 },
  { arbitrary: fc.nat(200).map((pick): Op => ({ kind: 'get', pick })), weight: 2 },
  // Ids of any size (tokens wrap at 2^32; context ids may pass 2^31).
  { arbitrary: fc.oneof(fc.nat(300), fc.constantFrom(0x7fffffff, 0x80000000, 0xffffffff, 2 ** 40 + 3)).map((id): Op => ({ kind: 'put', id })), weight: 1 },
);

describe('IdTable', () => {
  it('answers as a Map does for any sequence of adds, removals and look-ups (probe runs, wrap-around, growth)', () => {
    fc.assert(fc.property(fc.array(op, { maxLength: 400 }), fc.constantFrom(1, 8, 64), (ops, capacity) => check(ops, capacity)), { numRuns: 300 });
  });

  it('keeps long-lived ids while many short-lived ones come and go (a root context among streams)', () => {
    const table = new IdTable<number>(8);
    table.set(1, 1);
    table.set(2, 2);
    const inFlight: number[] = [];
    for (let id = 3; id < 20_000; id++) {
      table.set(id, id);
      inFlight.push(id);
      if (inFlight.length > 50) expect(table.delete(inFlight.shift()!)).toBe(true);
    }
    expect(table.size).toBe(2 + inFlight.length);
    expect(table.get(1)).toBe(1);
    expect(table.get(2)).toBe(2);
    for (const id of inFlight) expect(table.get(id)).toBe(id);
    expect(table.get(3)).toBeUndefined();
    table.clear();
    expect(table.size).toBe(0);
    expect(table.get(1)).toBeUndefined();
  });
});
