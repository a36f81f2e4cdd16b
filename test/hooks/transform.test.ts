/**
 * Event-hook transforms (handler `wasm`) through the authoring helper
 * loadTransform: the example under assembly/transforms and the fixtures under
 * test/fixtures/transforms, compiled by `npm run build`, run in the real guard.
 */
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TransformError } from '../../host/errors.js';
import { loadTransform, TransformModuleError } from '../../host/hooks/transform.js';
import { ROOT } from '../helpers/paths.js';

const SLACK = join(ROOT, 'dist', 'transforms', 'slack.wasm');
const fixture = (name: string) => join(ROOT, 'build', 'fixtures', 'transforms', `${name}.wasm`);

async function refusal(module: string | Uint8Array): Promise<string> {
  const err = await loadTransform(module).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TransformModuleError);
  return (err as Error).message;
}

function thrown(fn: () => unknown): TransformError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(TransformError);
    return err as TransformError;
  }
  throw new Error('expected a TransformError');
}

describe('example transform: crud event to a Slack message', () => {
  it('turns a crud event into a Slack message, with its headers', async () => {
    const t = await loadTransform(SLACK);
    const r = t.run('crud', 'services:create', { operation: 'create', schema: 'services', entity: { id: 's1', name: 'billing' } });
    expect(r.drop).toBe(false);
    if (r.drop) return;
    expect(r.method).toBe('POST');
    expect(r.url).toBeNull();
    expect({ ...r.headers }).toEqual({ 'content-type': 'application/json', 'x-hookwire-transform': 'slack' });
    expect(JSON.parse(r.body!.toString())).toEqual({ text: 'services billing create' });
  });

  it('falls back to the id when the entity has no name', async () => {
    const t = await loadTransform(SLACK);
    const r = t.run('crud', 'routes:delete', { operation: 'delete', schema: 'routes', entity: { id: 'r9' } });
    expect(r.drop === false && JSON.parse(r.body!.toString())).toEqual({ text: 'routes r9 delete' });
  });

  it('drops consumers events, with a reason', async () => {
    const t = await loadTransform(SLACK);
    expect(t.run('crud', 'consumers:create', { operation: 'create', schema: 'consumers', entity: { id: 'c1' } })).toEqual({
      drop: true,
      reason: 'consumers events are not sent to Slack',
    });
  });
});

describe('transform sandbox', () => {
  it('keeps one instance across calls (its globals persist)', async () => {
    const t = await loadTransform(fixture('counter'));
    const bodies = [1, 2, 3].map(() => {
      const r = t.run('s', 'e', {});
      return r.drop ? null : r.body!.toString();
    });
    expect(bodies).toEqual(['1', '2', '3']);
  });

  it('stops a looping transform at its deadline, and runs again afterwards', async () => {
    const t = await loadTransform(fixture('loop'), { timeoutMs: 20 });
    const t0 = performance.now();
    const err = thrown(() => t.run('s', 'e', {}));
    expect(err.reason).toBe('deadline');
    expect(err.message).toMatch(/^transform stopped by its deadline: 20 ms \(ran \d+ ms\)$/);
    // Generous bound: "did not hang".
    expect(performance.now() - t0).toBeLessThan(5000);
    expect(thrown(() => t.run('s', 'e', {})).reason).toBe('deadline');
  });

  it('a trap (an AssemblyScript throw) fails the call with the abort message; the next call gets a fresh instance', async () => {
    const t = await loadTransform(fixture('echo'));
    const err = thrown(() => t.run('s', 'e', { why: 'fail' }));
    expect(err.reason).toBe('trap');
    expect(err.message).toMatch(/^transform trapped: abort: asked to fail at test\/fixtures\/transforms\/echo\.ts:\d+:\d+$/);
    const ok = t.run('s', 'e', { n: 1 });
    expect(ok.drop === false && JSON.parse(ok.body!.toString())).toEqual({ n: 1, event: 'e', source: 's' });
  });

  it('caps memory: growing past max_memory_mb traps (8 MiB fits in 64, not in 4)', async () => {
    const small = await loadTransform(fixture('echo'), { maxMemoryMb: 4, timeoutMs: 5000 });
    const err = thrown(() => small.run('s', 'e', { why: 'grow' }));
    expect(err.reason).toBe('trap');
    // AssemblyScript's allocator traps when memory.grow fails.
    expect(err.message).toBe('transform trapped: unreachable');
    const big = await loadTransform(fixture('echo'), { maxMemoryMb: 64, timeoutMs: 5000 });
    const ok = big.run('s', 'e', { why: 'grow' });
    expect(ok.drop === false && ok.body!.toString()).toBe('8');
  });

  it('refuses invalid output, and a url the hook does not allow', async () => {
    const t = await loadTransform(fixture('bad-output'));
    const notJson = thrown(() => t.run('s', 'e', {}));
    expect(notJson.reason).toBe('invalid_output');
    expect(notJson.message).toBe('transform returned no JSON: "not json"');
    expect(thrown(() => t.run('s', 'e', { url: 1 })).message).toBe('transform returned a "url", which this hook does not allow (set config.allow_url)');
    const allowed = (await loadTransform(fixture('bad-output'), { allowUrl: true })).run('s', 'e', { url: 1 });
    expect(allowed.drop === false && allowed.url).toBe('http://127.0.0.1:9/elsewhere');
  });
});

describe('transform modules refused at load (as at create)', () => {
  it('bytes that are not wasm', async () => {
    expect(await refusal(Buffer.from('not a module'))).toMatch(/^does not compile: /);
  });
  it('no transform export', async () => {
    expect(await refusal(fixture('no-export'))).toBe('does not export the function "transform" (export function transform(event: string): string)');
  });
  it('a transform of the wrong signature', async () => {
    expect(await refusal(fixture('wrong-signature'))).toBe(
      'export "transform" must be transform(event: string): string (found 2 parameter(s), 1 result(s))',
    );
  });
  it('imports beyond the AssemblyScript runtime (a proxy-wasm plugin)', async () => {
    const msg = await refusal(join(ROOT, 'dist', 'hello-world.wasm'));
    expect(msg).toMatch(/^imports .*: a transform may import only the AssemblyScript runtime's env\.abort, env\.trace, env\.seed$/);
  });
  it('a module compiled without --exportRuntime', async () => {
    // A minimal module exporting transform (i32) -> i32 and memory, but no runtime.
    const wat = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
    const bytes = Uint8Array.from([
      ...wat,
      // type section: (i32) -> i32
      0x01, 0x06, 0x01, 0x60, 0x01, 0x7f, 0x01, 0x7f,
      // function section
      0x03, 0x02, 0x01, 0x00,
      // memory section: 1 page
      0x05, 0x03, 0x01, 0x00, 0x01,
      // export section: "transform" func 0, "memory" mem 0
      0x07, 0x16, 0x02, 0x09, ...Buffer.from('transform'), 0x00, 0x00, 0x06, ...Buffer.from('memory'), 0x02, 0x00,
      // code section: local.get 0
      0x0a, 0x06, 0x01, 0x04, 0x00, 0x20, 0x00, 0x0b,
    ]);
    expect(await refusal(bytes)).toBe('does not export the runtime (__new, __pin, __unpin): compile it with --exportRuntime');
  });
  it('a missing file', async () => {
    expect(await refusal(join(ROOT, 'build', 'no-such.wasm'))).toMatch(/^cannot read .*no-such\.wasm: ENOENT$/);
  });
});

it('the example module is the built one (sanity: non-empty wasm)', () => {
  expect(readFileSync(SLACK).subarray(0, 4)).toEqual(Buffer.from([0, 0x61, 0x73, 0x6d]));
});
