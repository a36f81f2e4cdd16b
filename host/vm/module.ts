/**
 * Compiling and validating a proxy-wasm module before any VM runs it:
 * the bytes must be wasm, carry a `proxy_abi_version_*` marker, export memory
 * and an allocator, and import only what this host provides (or what the
 * plugin's unknown-import policy allows).
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { ABI_MARKERS, type AbiVersion } from '../abi/constants.js';
import { envoyImports } from '../abi/envoy.js';
import { providedImports } from '../abi/imports.js';
import { WasmModuleError } from '../errors.js';
import { instrumentOffThread } from './instrument-thread.js';

export interface ModuleImport {
  readonly module: string;
  readonly name: string;
  readonly kind: string;
}

export interface ProxyWasmModule {
  /** Where the bytes came from (a path, or a label for in-memory bytes). */
  readonly file: string;
  readonly sha256: string;
  readonly module: WebAssembly.Module;
  readonly abiVersion: AbiVersion;
  readonly imports: readonly ModuleImport[];
  readonly exports: readonly string[];
  /** Imports this host does not provide, as "module.name". */
  readonly unknownImports: readonly string[];
  readonly allocator: 'malloc' | 'proxy_on_memory_allocate';
  readonly start: '_initialize' | '_start' | null;
  /** The bytes as loaded (kept to build the guarded copy; never written back). */
  readonly bytes: Uint8Array;
}

const WASM_MAGIC = Buffer.from([0x00, 0x61, 0x73, 0x6d]);

/** Compile and validate module bytes. Throws WasmModuleError naming `file` and the reason. */
export async function compileModule(bytes: Uint8Array, file: string): Promise<ProxyWasmModule> {
  if (bytes.byteLength < 8 || !WASM_MAGIC.equals(Buffer.from(bytes.buffer, bytes.byteOffset, 4))) {
    throw new WasmModuleError(file, 'not a WebAssembly module (missing the \\0asm magic bytes)');
  }
  let module: WebAssembly.Module;
  try {
    module = await WebAssembly.compile(bytes);
  } catch (err) {
    throw new WasmModuleError(file, `invalid WebAssembly: ${(err as Error).message}`, { cause: err });
  }
  const exportList = WebAssembly.Module.exports(module);
  const exports = exportList.map((e) => e.name);
  const exportSet = new Set(exports);

  // Prefer the newest marker when a module (oddly) carries several.
  const marker = Object.keys(ABI_MARKERS).find((k) => exportSet.has(k));
  if (!marker) {
    throw new WasmModuleError(
      file,
      `not a proxy-wasm module: no ABI version export (expected one of ${Object.keys(ABI_MARKERS).join(', ')})`,
    );
  }
  const abiVersion = ABI_MARKERS[marker]!;
  if (!exportList.some((e) => e.name === 'memory' && e.kind === 'memory')) {
    throw new WasmModuleError(file, 'the module does not export its memory as "memory"');
  }
  // Envoy and ngx try malloc first; the spec prefers proxy_on_memory_allocate.
  const allocator = exportSet.has('malloc') ? 'malloc' : exportSet.has('proxy_on_memory_allocate') ? 'proxy_on_memory_allocate' : null;
  if (!allocator) {
    throw new WasmModuleError(file, 'the module exports no allocator (malloc or proxy_on_memory_allocate)');
  }

  const imports = WebAssembly.Module.imports(module).map((i) => ({ module: i.module, name: i.name, kind: i.kind }));
  const provided = providedImports(abiVersion);
  const unknownImports = imports
    .filter((i) => i.kind !== 'function' || !provided.has(`${i.module}.${i.name}`))
    .map((i) => (i.kind === 'function' ? `${i.module}.${i.name}` : `${i.module}.${i.name} (${i.kind})`));

  return {
    file,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    module,
    abiVersion,
    imports,
    exports,
    unknownImports,
    allocator,
    start: exportSet.has('_initialize') ? '_initialize' : exportSet.has('_start') ? '_start' : null,
    bytes,
  };
}

/** Guarded (instrumented and compiled) modules by the sha256 of their original bytes: each rewritten once per process. */
const guarded = new Map<string, Promise<WebAssembly.Module>>();

/**
 * The module with the deadline and memory guard compiled in (see
 * instrument.ts), made once per distinct module and shared by every VM of it.
 * Throws WasmModuleError naming the file when the rewrite fails.
 */
export function guardedModule(module: ProxyWasmModule): Promise<WebAssembly.Module> {
  let p = guarded.get(module.sha256);
  if (p === undefined) {
    p = instrumentOffThread(module.bytes).then(
      (bytes) => WebAssembly.compile(bytes),
      (err: Error) => {
        throw new WasmModuleError(module.file, `cannot add the deadline guard: ${err.message}`, { cause: err });
      },
    );
    guarded.set(module.sha256, p);
    // A failure is not cached: the next load retries (and reports) it again.
    p.catch(() => guarded.delete(module.sha256));
  }
  return p;
}

/** Read and compile a module from a file. */
export async function loadModuleFile(path: string): Promise<ProxyWasmModule> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw new WasmModuleError(path, `cannot read the file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, {
      cause: err,
    });
  }
  return compileModule(bytes, path);
}

/** Imports of `module` that Envoy would not link (Envoy-strict mode, the import check). */
export function envoyUnknownImports(module: Pick<ProxyWasmModule, 'imports' | 'abiVersion' | 'unknownImports'>): string[] {
  const envoy = envoyImports(module.abiVersion);
  const out = new Set(module.unknownImports);
  for (const i of module.imports) {
    if (i.kind === 'function' && !envoy.has(`${i.module}.${i.name}`)) out.add(`${i.module}.${i.name}`);
  }
  return [...out];
}
