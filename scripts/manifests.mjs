#!/usr/bin/env node
// Write dist/<plugin>.manifest.json for every built plugin: name, version,
// sha256, ABI version, imports, exports, Envoy compatibility and the plugin's
// configuration JSON Schema (assembly/plugins/<name>/config.schema.json).
// Runs after build:host (it uses the compiled inspector) and build:wasm.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { inspectFile, moduleManifest } = await import(join(root, 'dist/host/vm/inspect.js'));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

let failed = false;
for (const name of readdirSync(join(root, 'assembly/plugins'))) {
  const wasm = join(root, 'dist', `${name}.wasm`);
  if (!existsSync(wasm)) continue;
  const facts = await inspectFile(wasm);
  const schemaFile = join(root, 'assembly/plugins', name, 'config.schema.json');
  if (!existsSync(schemaFile)) {
    console.error(
      `✗ ${name}: ${schemaFile} is missing: every plugin describes its configuration in a JSON Schema; ` +
        `the smallest is {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object"} (README, "Writing a plugin")`,
    );
    failed = true;
    continue;
  }
  const manifest = moduleManifest(facts, { version: pkg.version, configSchema: JSON.parse(readFileSync(schemaFile, 'utf8')) });
  writeFileSync(join(root, 'dist', `${name}.manifest.json`), JSON.stringify(manifest, null, 2) + '\n');
  console.log(`✓ dist/${name}.manifest.json (${facts.sha256.slice(0, 12)}…)`);
}
process.exit(failed ? 1 : 0);
