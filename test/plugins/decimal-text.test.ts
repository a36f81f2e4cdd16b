// assembly/sdk/decimal.ts writes the integers of the plugins' messages in
// place of toString() (a smaller module: docs/module-size.md). It must give
// the same text: checked in the module against the standard library's
// toString, over the edges and random values of each integer type.
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { fixture } from '../helpers/paths.js';

type Same = (v: number | bigint) => number;
let exports: Record<'sameI64' | 'sameI32' | 'sameU32' | 'sameU64', Same>;

beforeAll(async () => {
  // The fixture's only imports are the WASI shim's abort path; nothing here aborts.
  const stubs = new Proxy({}, { get: () => () => 0 });
  const { instance } = await WebAssembly.instantiate(readFileSync(fixture('decimal-text')), new Proxy({}, { get: () => stubs }));
  // The WASI shim's modules export their start-up code (runtime, static strings) as _start.
  (instance.exports._start as () => void)();
  exports = instance.exports as unknown as typeof exports;
});

describe('decimal() gives what toString() gives', () => {
  it('at the edges of i64, i32, u32 and u64', () => {
    for (const v of [0n, 1n, -1n, 9n, 10n, -10n, 99n, 100n, 9223372036854775807n, -9223372036854775808n, -9223372036854775807n, 4294967295n, 4294967296n, 1000000000000000000n]) {
      expect(exports.sameI64(v), `i64 ${v}`).toBe(1);
    }
    for (const v of [0, 1, -1, 2147483647, -2147483648, 1000000000, -1000000000]) expect(exports.sameI32(v), `i32 ${v}`).toBe(1);
    // u32 and u64 arguments arrive as their signed bit patterns
    for (const v of [0, 1, -1, 2147483647, -2147483648]) expect(exports.sameU32(v), `u32 bits ${v}`).toBe(1);
    for (const v of [0n, 1n, -1n, 9223372036854775807n, -9223372036854775808n, 10000000000000000000n - (1n << 64n)]) {
      expect(exports.sameU64(v), `u64 bits ${v}`).toBe(1);
    }
  });

  it('for random values of each type', () => {
    fc.assert(fc.property(fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }), (v) => exports.sameI64(v) === 1 && exports.sameU64(v) === 1), { numRuns: 5000 });
    fc.assert(fc.property(fc.integer(), (v) => exports.sameI32(v) === 1 && exports.sameU32(v) === 1), { numRuns: 5000 });
  });
});
