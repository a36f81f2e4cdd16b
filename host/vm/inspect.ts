/**
 * Facts about any proxy-wasm module, for `hookwire inspect` and the plugin
 * manifests shipped with the package: ABI version, imports and exports, and
 * whether Envoy would load it. Works on modules from any SDK (Rust, Go, C++,
 * AssemblyScript), since it reads only the module's declarations.
 */
import { readFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { ENVOY_ALLOCATORS, ENVOY_REQUIRED_EXPORTS } from '../abi/envoy.js';
import { compileModule, envoyUnknownImports, type ModuleImport } from './module.js';

export interface ModuleFacts {
  readonly file: string;
  readonly size: number;
  readonly sha256: string;
  readonly abiVersion: string;
  readonly imports: readonly ModuleImport[];
  readonly exports: readonly string[];
  /** proxy_on_* callbacks the module implements. */
  readonly callbacks: readonly string[];
  readonly allocator: string;
  readonly start: string | null;
  readonly envoy: {
    /** True when Envoy links every import and finds every export it needs. */
    readonly compatible: boolean;
    readonly unknownImports: readonly string[];
    readonly missingExports: readonly string[];
  };
}

/** What Envoy needs exported that `exports` lacks. */
export function missingEnvoyExports(exports: readonly string[]): string[] {
  const have = new Set(exports);
  const missing: string[] = ENVOY_REQUIRED_EXPORTS.filter((e) => !have.has(e));
  if (!ENVOY_ALLOCATORS.some((a) => have.has(a))) missing.push(ENVOY_ALLOCATORS.join(' or '));
  return missing;
}

/** Inspect module bytes. Throws WasmModuleError when they are not a proxy-wasm module. */
export async function inspectModule(bytes: Uint8Array, file: string): Promise<ModuleFacts> {
  const m = await compileModule(bytes, file);
  const unknownImports = envoyUnknownImports(m);
  const missingExports = missingEnvoyExports(m.exports);
  return {
    file,
    size: bytes.byteLength,
    sha256: m.sha256,
    abiVersion: m.abiVersion,
    imports: m.imports,
    exports: m.exports,
    callbacks: m.exports.filter((e) => e.startsWith('proxy_on_')),
    allocator: m.allocator,
    start: m.start,
    envoy: { compatible: unknownImports.length === 0 && missingExports.length === 0, unknownImports, missingExports },
  };
}

export async function inspectFile(path: string): Promise<ModuleFacts> {
  const bytes = await readFile(path).catch((err: NodeJS.ErrnoException) => {
    throw Object.assign(new Error(`${path}: cannot read the file: ${err.code ?? err.message}`), { code: 'HW_ERR_WASM_INVALID' });
  });
  return inspectModule(bytes, path);
}

/**
 * The manifest form (`dist/<plugin>.manifest.json`, `hookwire inspect --json`):
 * facts under snake_case keys, imports as `module.name` strings. `version`
 * and `config_schema` are the plugin's, when known.
 */
export interface ModuleManifest {
  readonly name: string;
  readonly version?: string;
  readonly file: string;
  readonly size: number;
  readonly sha256: string;
  readonly abi_version: string;
  readonly envoy: ModuleFacts['envoy'];
  readonly imports: readonly string[];
  readonly exports: readonly string[];
  readonly config_schema?: unknown;
}

export function moduleManifest(facts: ModuleFacts, plugin: { version?: string; configSchema?: unknown } = {}): ModuleManifest {
  const file = basename(facts.file);
  return {
    name: file.replace(/\.wasm$/, ''),
    ...(plugin.version !== undefined ? { version: plugin.version } : {}),
    file,
    size: facts.size,
    sha256: facts.sha256,
    abi_version: facts.abiVersion,
    envoy: facts.envoy,
    imports: facts.imports.map((i) => `${i.module}.${i.name}`),
    exports: facts.exports,
    ...(plugin.configSchema !== undefined ? { config_schema: plugin.configSchema } : {}),
  };
}

/**
 * The manifest of a module file: the built `<name>.manifest.json` beside it
 * when it describes these very bytes (so version and config_schema come
 * along), else the manifest of the facts alone.
 */
export async function manifestOfFile(facts: ModuleFacts): Promise<ModuleManifest> {
  const beside = join(dirname(facts.file), `${basename(facts.file).replace(/\.wasm$/, '')}.manifest.json`);
  try {
    const built = JSON.parse(await readFile(beside, 'utf8')) as { sha256?: unknown; version?: string; config_schema?: unknown };
    if (built.sha256 === facts.sha256) return moduleManifest(facts, { version: built.version, configSchema: built.config_schema });
  } catch {
    // No manifest beside the module (a module built elsewhere): the facts alone.
  }
  return moduleManifest(facts);
}

/** Human-readable report of the facts. */
export function formatFacts(f: ModuleFacts): string {
  const lines = [
    `file         ${f.file}`,
    `size         ${f.size} bytes`,
    `sha256       ${f.sha256}`,
    `abi          proxy-wasm ${f.abiVersion}`,
    `allocator    ${f.allocator}`,
    `start        ${f.start ?? '(none)'}`,
    `envoy        ${f.envoy.compatible ? 'loadable' : 'NOT loadable'}`,
  ];
  for (const u of f.envoy.unknownImports) lines.push(`  import Envoy does not provide: ${u}`);
  for (const e of f.envoy.missingExports) lines.push(`  export Envoy needs: ${e}`);
  lines.push(`imports (${f.imports.length}):`);
  for (const i of f.imports) lines.push(`  ${i.module}.${i.name}${i.kind === 'function' ? '' : ` (${i.kind})`}`);
  lines.push(`callbacks (${f.callbacks.length}):`);
  for (const c of f.callbacks) lines.push(`  ${c}`);
  const other = f.exports.filter((e) => !e.startsWith('proxy_on_'));
  lines.push(`other exports (${other.length}): ${other.join(', ')}`);
  return lines.join('\n');
}
