import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AbiVersion, Status } from '../../../host/abi/constants.js';
import { UnknownImportError, WasmModuleError } from '../../../host/errors.js';
import { HostEmulator } from '../../../host/testing/emulator.js';
import { compileModule } from '../../../host/vm/module.js';
import { fixture } from '../../helpers/paths.js';
import { captureRuntime, only, reports } from './helpers.js';

// ---- a tiny wasm binary writer, for modules AssemblyScript would never emit ----

const I32 = 0x7f;
function leb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
}
const str = (s: string) => [...leb(Buffer.byteLength(s)), ...Buffer.from(s)];
const vec = (items: number[][]) => [...leb(items.length), ...items.flat()];
const section = (id: number, items: number[][]) => {
  const payload = vec(items);
  return [id, ...leb(payload.length), ...payload];
};

interface ModuleSpec {
  /** Exported functions: "name" is () -> (), "name:alloc" is (i32) -> i32. */
  funcs?: string[];
  memory?: 'export' | 'import' | 'none';
  /** Imported functions () -> (), as "module.name". */
  imports?: string[];
}

function wasm(spec: ModuleSpec): Uint8Array {
  const funcs = spec.funcs ?? [];
  const imports = spec.imports ?? [];
  const types = [
    [0x60, 0, 0], // () -> ()
    [0x60, 1, I32, 1, I32], // (i32) -> i32
  ];
  const importItems = imports.map((full) => {
    const [mod, name] = full.split('.') as [string, string];
    return [...str(mod), ...str(name), 0x00, 0];
  });
  if (spec.memory === 'import') importItems.push([...str('env'), ...str('memory'), 0x02, 0x00, 1]);
  const exports = funcs.map((f, i) => [...str(f.split(':')[0]!), 0x00, ...leb(imports.length + i)]);
  if (spec.memory !== 'none') exports.push([...str('memory'), 0x02, 0]);
  const bytes = [
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, types),
    ...(importItems.length ? section(2, importItems) : []),
    ...section(3, funcs.map((f) => [f.endsWith(':alloc') ? 1 : 0])),
    ...(spec.memory === 'export' || spec.memory === undefined ? section(5, [[0x00, 1]]) : []),
    ...section(7, exports),
    ...section(
      10,
      funcs.map((f) => {
        const body = f.endsWith(':alloc') ? [0x00, 0x20, 0x00, 0x0b] : [0x00, 0x0b];
        return [...leb(body.length), ...body];
      }),
    ),
  ];
  return new Uint8Array(bytes);
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(Error);
  return err as Error;
}

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hookwire-vm-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('module validation', () => {
  it('accepts the hand-built minimal proxy-wasm module (sanity check of the writer)', async () => {
    const m = await compileModule(wasm({ funcs: ['proxy_abi_version_0_2_1', 'malloc:alloc'] }), 'minimal.wasm');
    expect(m).toMatchObject({ abiVersion: AbiVersion.V0_2_1, allocator: 'malloc', start: null, unknownImports: [] });
  });

  it('refuses bytes that are not wasm with HW_ERR_WASM_INVALID naming the file', async () => {
    const err = await rejection(compileModule(Buffer.from('<html>definitely not wasm</html>'), 'plugins/bogus.wasm'));
    expect(err).toBeInstanceOf(WasmModuleError);
    expect(err).toMatchObject({ code: 'HW_ERR_WASM_INVALID', file: 'plugins/bogus.wasm' });
    expect(err.message).toMatch(/^plugins\/bogus\.wasm: not a WebAssembly module/);
  });

  it('refuses a file that is not wasm, and an empty one, naming the path', async () => {
    const text = join(dir, 'readme.wasm');
    const empty = join(dir, 'empty.wasm');
    await writeFile(text, 'hello, this is text\n');
    await writeFile(empty, '');
    const { runtime } = captureRuntime();
    for (const path of [text, empty]) {
      const err = await rejection(runtime.loadPlugin({ name: 'p', wasm: path }));
      expect(err).toMatchObject({ code: 'HW_ERR_WASM_INVALID', file: path });
      expect(err.message).toContain(path);
      expect(err.message).toContain('not a WebAssembly module');
    }
    expect(runtime.vms()).toEqual([]);
  });

  it('refuses truncated or corrupt wasm with the compiler\'s reason', async () => {
    const real = await readFile(fixture('lifecycle-probe'));
    const truncated = await rejection(compileModule(real.subarray(0, real.length >> 1), 'half.wasm'));
    expect(truncated).toMatchObject({ code: 'HW_ERR_WASM_INVALID', file: 'half.wasm' });
    expect(truncated.message).toContain('half.wasm: invalid WebAssembly');

    const badVersion = await rejection(compileModule(new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x00, 0x00]), 'v13.wasm'));
    expect(badVersion).toMatchObject({ code: 'HW_ERR_WASM_INVALID' });
    expect(badVersion.message).toContain('invalid WebAssembly');

    const garbage = Buffer.concat([Buffer.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]), Buffer.from([0x01, 0xff, 0xff, 0xff])]);
    expect(await rejection(compileModule(garbage, 'garbage.wasm'))).toMatchObject({ code: 'HW_ERR_WASM_INVALID' });
  });

  it('refuses a valid wasm module without a proxy_abi_version export, saying so', async () => {
    for (const bytes of [new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]), wasm({ funcs: ['malloc:alloc', 'proxy_on_configure'] })]) {
      const err = await rejection(compileModule(bytes, 'plain.wasm'));
      expect(err).toMatchObject({ code: 'HW_ERR_WASM_INVALID', file: 'plain.wasm' });
      expect(err.message).toContain('not a proxy-wasm module: no ABI version export');
      expect(err.message).toContain('proxy_abi_version_0_2_1');
    }
  });

  it('refuses a module without exported memory or without an allocator', async () => {
    const noMemory = await rejection(compileModule(wasm({ funcs: ['proxy_abi_version_0_2_1', 'malloc:alloc'], memory: 'none' }), 'nomem.wasm'));
    expect(noMemory.message).toContain('does not export its memory');
    const noAlloc = await rejection(compileModule(wasm({ funcs: ['proxy_abi_version_0_2_1'] }), 'noalloc.wasm'));
    expect(noAlloc.message).toContain('no allocator (malloc or proxy_on_memory_allocate)');
  });

  it('accepts proxy_on_memory_allocate when there is no malloc, and prefers malloc when both exist', async () => {
    const spec = await compileModule(wasm({ funcs: ['proxy_abi_version_0_2_0', 'proxy_on_memory_allocate:alloc'] }), 'spec.wasm');
    expect(spec).toMatchObject({ abiVersion: AbiVersion.V0_2_0, allocator: 'proxy_on_memory_allocate' });
    const both = await compileModule(wasm({ funcs: ['proxy_abi_version_0_2_1', 'proxy_on_memory_allocate:alloc', 'malloc:alloc'] }), 'both.wasm');
    expect(both.allocator).toBe('malloc');
  });

  it('lists every unknown import of a module', async () => {
    const m = await compileModule(await readFile(fixture('lifecycle-unknown-import')), 'unknown.wasm');
    expect([...m.unknownImports].sort()).toEqual(['env.proxy_hookwire_made_up', 'hookwire_vendor.mystery', 'wasi_snapshot_preview1.fd_pwrite']);
  });

  it('refuses to load a module with unknown imports (UnknownImportError naming each one)', async () => {
    const { runtime, events } = captureRuntime();
    const err = await rejection(runtime.loadPlugin({ name: 'u', wasm: fixture('lifecycle-unknown-import') }));
    expect(err).toBeInstanceOf(UnknownImportError);
    expect(err).toMatchObject({ code: 'HW_ERR_WASM_UNKNOWN_IMPORT', file: fixture('lifecycle-unknown-import') });
    expect([...(err as UnknownImportError).imports].sort()).toEqual(['env.proxy_hookwire_made_up', 'hookwire_vendor.mystery', 'wasi_snapshot_preview1.fd_pwrite']);
    for (const name of ['env.proxy_hookwire_made_up', 'hookwire_vendor.mystery', 'wasi_snapshot_preview1.fd_pwrite']) expect(err.message).toContain(name);
    expect(err.message).toContain('allow_unknown_imports');
    expect(runtime.vms()).toEqual([]);
    expect(events.some((e) => e.type === 'plugin_loaded')).toBe(false);
  });

  it('loads it with allowUnknownImports: each stub returns UNIMPLEMENTED (12) and a warning is logged', async () => {
    const host = await HostEmulator.start({ wasm: fixture('lifecycle-unknown-import'), allowUnknownImports: true });
    expect(only(reports(host), 'unknown_imports')).toMatchObject({ made_up: Status.UNIMPLEMENTED, fd_pwrite: Status.UNIMPLEMENTED, mystery: Status.UNIMPLEMENTED });
    const warnings = host.logs('warn');
    for (const name of ['env.proxy_hookwire_made_up', 'hookwire_vendor.mystery', 'wasi_snapshot_preview1.fd_pwrite']) {
      expect(warnings).toContain(`import ${name} is not provided by this host; stubbed to return UNIMPLEMENTED`);
      expect(warnings).toContain(`${name} is not implemented by this host (returned UNIMPLEMENTED)`);
    }
  });

  it('refuses an unknown non-function import even with allowUnknownImports (it cannot be stubbed)', async () => {
    const bytes = wasm({ funcs: ['proxy_abi_version_0_2_1', 'malloc:alloc'], memory: 'import' });
    const m = await compileModule(bytes, 'imported-memory.wasm');
    expect(m.unknownImports).toEqual(['env.memory (memory)']);
    const { runtime } = captureRuntime();
    const err = await rejection(runtime.loadPlugin({ name: 'm', module: m, allowUnknownImports: true }));
    expect(err).toBeInstanceOf(UnknownImportError);
    expect((err as UnknownImportError).imports).toEqual(['env.memory (memory)']);
  });

  it('refuses a missing file with an error naming the path', async () => {
    const path = join(dir, 'does', 'not', 'exist.wasm');
    const { runtime } = captureRuntime();
    const err = await rejection(runtime.loadPlugin({ name: 'ghost', wasm: path }));
    expect(err).toBeInstanceOf(WasmModuleError);
    expect(err).toMatchObject({ code: 'HW_ERR_WASM_INVALID', file: path });
    expect(err.message).toContain(path);
    expect(err.message).toContain('ENOENT');
  });

  it('reports in-memory bytes given to the emulator as <bytes>', async () => {
    const err = await rejection(HostEmulator.start({ wasm: Buffer.from('nope, not wasm') }));
    expect(err).toMatchObject({ code: 'HW_ERR_WASM_INVALID', file: '<bytes>' });
  });
});
