#!/usr/bin/env node
// Compile every AssemblyScript plugin to dist/<name>.wasm, every event-hook
// transform (assembly/transforms/*.ts) to dist/transforms/<name>.wasm, and every
// test fixture to build/fixtures/<name>.wasm (transform fixtures, under
// test/fixtures/transforms, to build/fixtures/transforms/<name>.wasm), two at a
// time (asc is single-threaded). Plugins use assembly/sdk/asconfig.json (the
// minimal runtime and size-first optimisation, then binaryen -Oz over the release
// output: docs/module-size.md); transforms use
// assembly/transforms/asconfig.json (no WASI shim, runtime exported for
// @assemblyscript/loader); fixtures use ./asconfig.json.
// An output newer than all of its possible inputs is kept (pass --force to rebuild).
//   node scripts/build-wasm.mjs [--target release|debug] [--force] [--only name]
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const target = args.includes('--target') ? args[args.indexOf('--target') + 1] : 'release';
const force = args.includes('--force');
const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : null;

function newestMtime(path) {
  if (!existsSync(path)) return 0;
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = st.mtimeMs;
  for (const e of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, e)));
  return newest;
}

const outDir = target === 'debug' ? 'dist/debug' : 'dist';
const jobs = [];
const pluginsDir = join(root, 'assembly/plugins');
// Beside the SDK layer the plugins build on (assembly/plugins holds plugin folders only).
const pluginConfig = join(root, 'assembly/sdk/asconfig.json');
for (const name of existsSync(pluginsDir) ? readdirSync(pluginsDir) : []) {
  const entry = join(pluginsDir, name, 'index.ts');
  // A plugin depends on every file of its folder (dir), not only on index.ts.
  if (existsSync(entry)) jobs.push({ name, entry, dir: join(pluginsDir, name), out: join(root, outDir, `${name}.wasm`), pluginConfig });
}
const fixturesDir = join(root, 'test/fixtures/assembly');
for (const file of existsSync(fixturesDir) ? readdirSync(fixturesDir) : []) {
  if (!file.endsWith('.ts') || file.startsWith('_')) continue;
  const name = file.slice(0, -3);
  jobs.push({ name: `fixture:${name}`, entry: join(fixturesDir, file), out: join(root, 'build/fixtures', `${name}.wasm`) });
}
const transformConfig = join(root, 'assembly/transforms/asconfig.json');
for (const [dir, out, prefix] of [
  [join(root, 'assembly/transforms'), join(root, outDir, 'transforms'), 'transform:'],
  [join(root, 'test/fixtures/transforms'), join(root, 'build/fixtures/transforms'), 'fixture:transform:'],
]) {
  for (const file of existsSync(dir) ? readdirSync(dir) : []) {
    if (!file.endsWith('.ts') || file.startsWith('_')) continue;
    const name = file.slice(0, -3);
    jobs.push({ name: `${prefix}${name}`, entry: join(dir, file), out: join(out, `${name}.wasm`), config: transformConfig });
  }
}

// Anything under assembly/ (plugins and libraries), the SDK and the compiler
// config can change any output; fixtures also share the `_*.ts` helpers beside them.
// Libraries: everything under assembly/ except the plugin folders (a plugin depends on its own folder only).
const libraryInputs = (existsSync(join(root, 'assembly')) ? readdirSync(join(root, 'assembly')) : [])
  .filter((e) => e !== 'plugins' && e !== 'transforms')
  .map((e) => newestMtime(join(root, 'assembly', e)));
const commonInputs = Math.max(
  0,
  ...libraryInputs,
  newestMtime(join(root, 'asconfig.json')),
  newestMtime(join(root, 'node_modules/@gcoredev/proxy-wasm-sdk-as/package.json')),
  newestMtime(join(root, 'node_modules/assemblyscript/package.json')),
);
const fixtureHelpers = Math.max(
  0,
  ...(existsSync(fixturesDir) ? readdirSync(fixturesDir) : [])
    .filter((f) => f.startsWith('_'))
    .map((f) => newestMtime(join(fixturesDir, f))),
);
const inputsOf = (job) =>
  job.config
    ? Math.max(newestMtime(job.entry), newestMtime(job.config), newestMtime(join(root, 'node_modules/assemblyscript/package.json')))
    : Math.max(commonInputs, newestMtime(job.dir ?? job.entry), job.pluginConfig ? newestMtime(job.pluginConfig) : 0, job.name.startsWith('fixture:') ? fixtureHelpers : 0);

const todo = jobs.filter((j) => (!only || j.name.endsWith(only)) && (force || newestMtime(j.out) < inputsOf(j)));

function compile(job) {
  mkdirSync(dirname(job.out), { recursive: true });
  const asc = join(root, 'node_modules/assemblyscript/bin/asc.js');
  const argv = [asc, relative(root, job.entry), '--config', relative(root, job.config ?? job.pluginConfig ?? join(root, 'asconfig.json')), '--target', target, '-o', relative(root, job.out)];
  return new Promise((resolve) => {
    const child = spawn(process.execPath, argv, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('close', (code) => resolve({ job, code, output }));
  });
}

/**
 * Release plugins: binaryen's size-first pipeline (-Oz) once more over asc's
 * output, until it stops shrinking (about 350 bytes on http-log; bytes only,
 * not behaviour). The features are asc's defaults, so the optimizer uses no
 * instruction asc did not enable (Envoy loads the result as before).
 */
let binaryen = null;
async function shrink(path) {
  binaryen ??= (await import('binaryen')).default;
  const F = binaryen.Features;
  const module = binaryen.readBinary(readFileSync(path));
  try {
    module.setFeatures(F.MutableGlobals | F.SignExt | F.NontrappingFPToInt | F.BulkMemory | F.BulkMemoryOpt);
    binaryen.setOptimizeLevel(2);
    binaryen.setShrinkLevel(2);
    let best = readFileSync(path);
    for (;;) {
      module.optimize();
      const out = module.emitBinary();
      if (out.length >= best.length) break;
      best = out;
    }
    if (!module.validate()) throw new Error(`binaryen: ${path} does not validate after -Oz`);
    writeFileSync(path, best);
  } finally {
    module.dispose();
  }
}

let failed = 0;
const queue = [...todo];
async function worker() {
  for (let job = queue.shift(); job; job = queue.shift()) {
    const started = Date.now();
    let { code, output } = await compile(job);
    if (code === 0 && job.pluginConfig && target === 'release') {
      try {
        await shrink(job.out);
      } catch (err) {
        code = 1;
        output += String(err);
      }
    }
    if (code !== 0) {
      failed++;
      console.error(`✗ ${job.name}: asc exited with ${code}\n${output}`);
    } else {
      console.log(`✓ ${job.name} -> ${relative(root, job.out)} (${Date.now() - started} ms)`);
    }
  }
}
await Promise.all([worker(), worker()]);
console.log(`${todo.length} built, ${jobs.length - todo.length} up to date${failed ? `, ${failed} FAILED` : ''}`);
process.exit(failed ? 1 : 0);
