// host/input.ts: null-prototype copies of untrusted values, nesting bounded, `__proto__` kept or refused.
import { describe, expect, it } from 'vitest';
import { inputCopy, InputShapeError, MAX_INPUT_DEPTH } from '../../host/input.js';

function shapeError(fn: () => unknown): InputShapeError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InputShapeError);
    return err as InputShapeError;
  }
  throw new Error('expected an InputShapeError');
}

describe('inputCopy', () => {
  it('copies every object with a null prototype, keeping `__proto__` as a plain key by default', () => {
    const parsed = JSON.parse('{"a":[{"__proto__":{"x":1}},2],"constructor":"c"}') as unknown;
    const copy = inputCopy(parsed) as Record<string, unknown>;
    expect(Object.getPrototypeOf(copy)).toBeNull();
    const item = (copy.a as Record<string, unknown>[])[0]!;
    expect(Object.getPrototypeOf(item)).toBeNull();
    expect(Object.keys(item)).toEqual(['__proto__']);
    expect(JSON.stringify(copy)).toBe(JSON.stringify(parsed));
    expect(Array.isArray(copy.a)).toBe(true);
  });

  it('refuses `__proto__` when asked, naming the place as a JSON pointer (escaped)', () => {
    const e = shapeError(() => inputCopy(JSON.parse('{"a/b":[0,{"m~n":{"__proto__":1}}]}'), { refuseProtoKey: true }));
    expect(e.reason).toBe('key');
    expect(e.path).toBe('/a~1b/1/m~0n/__proto__');
  });

  it(`refuses nesting deeper than ${MAX_INPUT_DEPTH} levels (objects and arrays alike), naming where`, () => {
    const ok = JSON.parse('['.repeat(MAX_INPUT_DEPTH) + ']'.repeat(MAX_INPUT_DEPTH)) as unknown;
    expect(() => inputCopy(ok)).not.toThrow();
    const e = shapeError(() => inputCopy({ x: JSON.parse('['.repeat(MAX_INPUT_DEPTH) + ']'.repeat(MAX_INPUT_DEPTH)) }));
    expect(e.reason).toBe('depth');
    expect(e.path).toBe('/x' + '/0'.repeat(MAX_INPUT_DEPTH - 1));
    expect(shapeError(() => inputCopy(JSON.parse('{"a":'.repeat(10) + '1' + '}'.repeat(10)), { maxDepth: 3 })).path).toBe('/a/a/a');
  });
});
