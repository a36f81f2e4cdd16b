/** Where compiled plugins and fixtures live; a missing file means the wasm build did not run. */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

function mustExist(path: string): string {
  if (!existsSync(path)) throw new Error(`${path} is missing: run "npm run build:wasm" first`);
  return path;
}

/** A test fixture compiled from test/fixtures/assembly/<name>.ts. */
export function fixture(name: string): string {
  return mustExist(join(ROOT, 'build', 'fixtures', `${name}.wasm`));
}

/** A plugin compiled from assembly/plugins/<name>/index.ts. */
export function plugin(name: string): string {
  return mustExist(join(ROOT, 'dist', `${name}.wasm`));
}
