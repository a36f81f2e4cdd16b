/**
 * Entry points of the configuration module: text or file or object in, a
 * validated, normalized, deep-frozen HookwireConfig out, or one ConfigError
 * listing every problem found (so a user fixes the file in one pass).
 *
 * Pipeline: YAML/JSON text -> plain object -> JSON Schema (ajv) + cross-field
 * checks -> normalize -> deep-freeze.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import { parseDocument } from 'yaml';
import { ConfigError, type ConfigIssue } from '../errors.js';
import { inputCopy, InputShapeError } from '../input.js';
import { checkDocument } from './checks.js';
import { deepFreeze } from './freeze.js';
import { dedupeIssues, issuesFromAjv } from './issues.js';
import { normalize } from './normalize.js';
import { CONFIG_SCHEMA, type HookwireConfig } from './schema.js';

export interface LoadOptions {
  /** Directory that relative paths (plugin wasm, modules_dir) are resolved against; default: process.cwd(). */
  readonly baseDir?: string;
}

/**
 * The package root, found by walking up from this file to the nearest
 * package.json named "hookwire": the same code runs from host/config/ (source,
 * vitest) and dist/host/config/ (compiled), at different depths.
 */
export const PACKAGE_ROOT: string = findPackageRoot(dirname(fileURLToPath(import.meta.url)));

function findPackageRoot(start: string): string {
  for (let dir = start; ; dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown };
      if (pkg.name === 'hookwire') return dir;
    } catch {
      // No (readable) package.json here: keep walking.
    }
    if (dirname(dir) === dir) break;
  }
  // Bundled or copied without its package.json: the working directory is the
  // least surprising base, and only matters for relative plugin paths.
  return process.cwd();
}

// Compiled once: compiling the schema costs far more than validating a document.
// verbose: errors carry the offending data and the schema, for "found ..." and "allowed: ...".
const ajv = new Ajv({ allErrors: true, verbose: true, strict: true, allowUnionTypes: true });
const validateSchema = ajv.compile(CONFIG_SCHEMA);

/**
 * Parses YAML (or JSON, which YAML 1.2 reads as-is) text. `source` names the
 * text in error messages (usually the file path). An empty document is the
 * all-defaults configuration.
 */
export function parseConfig(text: string, source: string, options: LoadOptions = {}): HookwireConfig {
  return validateConfigObject(readYaml(text, source), source, options);
}

/** YAML (or JSON) text to a plain value; ConfigError naming the line on a syntax error. */
function readYaml(text: string, source: string): unknown {
  const doc = parseDocument(text, {
    prettyErrors: true,
    uniqueKeys: true, // a repeated key is a mistake, not "last one wins"
    merge: true, // allow `<<: *anchor` to share settings between entries
  });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      source,
      doc.errors.map((e) => {
        const pos = e.linePos?.[0];
        // yaml's message ends with its own position and a code excerpt: keep only the reason.
        const reason = e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
        const where = pos ? ` at line ${pos.line}, column ${pos.col}` : '';
        return { path: '', message: `YAML syntax error${where}: ${reason}` };
      }),
    );
  }
  let value: unknown;
  try {
    // maxAliasCount bounds "billion laughs" alias expansion; the copy gives every mapping a null
    // prototype (a `__proto__` key is then a plain key, refused by the schema like any unknown one).
    value = inputCopy(doc.toJS({ maxAliasCount: 100 }));
  } catch (e) {
    if (e instanceof InputShapeError) throw new ConfigError(source, [{ path: e.path, message: e.message }]);
    throw new ConfigError(source, [{ path: '', message: `YAML could not be read: ${(e as Error).message}` }]);
  }
  return value ?? {};
}

/** Reads and parses a config file; relative paths in it are resolved against the file's directory. */
export async function loadConfigFile(path: string): Promise<HookwireConfig> {
  return (await loadConfigDocument(path)).config;
}

/** A config file's configuration and the document it was read from (to name places in it). */
export async function loadConfigDocument(path: string): Promise<{ config: HookwireConfig; document: unknown }> {
  const file = resolve(path);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const reason =
      code === 'ENOENT'
        ? 'file not found'
        : code === 'EISDIR'
          ? 'is a directory, not a file'
          : code === 'EACCES'
            ? 'permission denied'
            : `cannot be read (${(e as Error).message})`;
    throw new ConfigError(file, [{ path: '', message: `configuration file ${file}: ${reason}` }]);
  }
  const document = readYaml(text, file);
  return { config: validateConfigObject(document, file, { baseDir: dirname(file) }), document };
}

let embedded: HookwireConfig | undefined;

/**
 * The configuration `hookwire start` uses without a file: proxy on
 * 127.0.0.1:8000, admin on 127.0.0.1:8001, no services, routes or plugins
 * (so every request gets the 404 JSON answer). All of it comes from DEFAULTS.
 */
export function defaultConfig(): HookwireConfig {
  // Frozen, so one shared instance is safe.
  embedded ??= validateConfigObject({}, '<built-in defaults>', { baseDir: PACKAGE_ROOT });
  return embedded;
}

/** Validates an already parsed document (e.g. from the admin API or a test) and normalizes it. */
export function validateConfigObject(obj: unknown, source: string, options: LoadOptions = {}): HookwireConfig {
  const baseDir = resolve(options.baseDir ?? process.cwd());
  const issues: ConfigIssue[] = [];
  if (!validateSchema(obj)) issues.push(...issuesFromAjv(validateSchema.errors ?? []));
  issues.push(...checkDocument(obj, { baseDir }));
  if (issues.length > 0) throw new ConfigError(source, dedupeIssues(issues));
  return deepFreeze(normalize(obj as Record<string, unknown>, { source, baseDir }));
}
