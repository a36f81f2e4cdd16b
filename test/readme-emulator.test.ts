// The README's emulator snippet is what plugin authors copy: it is run here as
// written, from a project of its own that imports `hookwire/testing` the way
// an installed package is imported (node_modules/hookwire, the package's
// exports map), with vitest's `expect`.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from './helpers/paths.js';

const project = mkdtempSync(join(tmpdir(), 'hookwire-user-'));
afterAll(() => rmSync(project, { recursive: true, force: true }));

/** The README's fenced code block that imports `hookwire/testing`. */
function emulatorSnippet(): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
  const found = blocks.filter((b) => b.includes("from 'hookwire/testing'"));
  expect(found, 'the README has exactly one emulator snippet').toHaveLength(1);
  return found[0]!;
}

function run(code: string): { status: number | null; output: string } {
  const file = join(project, 'snippet.test.mjs');
  writeFileSync(file, `import { expect } from 'vitest';\n${code}`);
  const r = spawnSync(process.execPath, [file], { cwd: project, encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

describe("README's emulator snippet", () => {
  // A user's project: its own package.json, hookwire and vitest installed, its plugin built into dist/.
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'my-plugin', type: 'module', private: true }));
  mkdirSync(join(project, 'node_modules'));
  symlinkSync(ROOT, join(project, 'node_modules', 'hookwire'), 'dir');
  symlinkSync(join(ROOT, 'node_modules', 'vitest'), join(project, 'node_modules', 'vitest'), 'dir');
  mkdirSync(join(project, 'dist'));
  symlinkSync(join(ROOT, 'dist', 'hello-world.wasm'), join(project, 'dist', 'hello-world.wasm'));

  it('runs as written, every expectation in it holding', () => {
    const snippet = emulatorSnippet();
    // No TypeScript-only syntax: the block runs as JavaScript too.
    const r = run(snippet);
    expect(r.output).toBe('');
    expect(r.status).toBe(0);
  });

  it('its expectations can fail: a changed expectation makes it exit 1', () => {
    const r = run(emulatorSnippet().replace("toContainEqual(['x-team', 'blue'])", "toContainEqual(['x-team', 'green'])"));
    expect(r.status).toBe(1);
    expect(r.output).toContain("'green'");
  });
});
