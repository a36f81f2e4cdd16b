// What `npm pack` ships: each plugin's .wasm with a manifest whose facts match
// the file, and whose configuration schema accepts the configurations the
// project itself uses (envoy.yaml's) and refuses junk.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { run } from '../../host/cli/main.js';
import { ROOT } from '../helpers/paths.js';
import { readEnvoyYaml } from './envoy-yaml.js';

const plugins = readdirSync(join(ROOT, 'assembly/plugins'));
const manifest = (name: string) => JSON.parse(readFileSync(join(ROOT, 'dist', `${name}.manifest.json`), 'utf8'));

describe('plugin artifacts', () => {
  for (const name of plugins) {
    it(`${name}: the manifest describes dist/${name}.wasm`, () => {
      const m = manifest(name);
      const bytes = readFileSync(join(ROOT, 'dist', `${name}.wasm`));
      expect(m).toMatchObject({ name, file: `${name}.wasm`, size: bytes.length, abi_version: '0.2.1', envoy: { compatible: true } });
      expect(m.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
      expect(m.version).toBe(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version);
      expect(m.imports).toContain('env.proxy_get_buffer_bytes');
      expect(m.exports).toContain('proxy_on_configure');
      expect(new Ajv({ strict: false }).validateSchema(m.config_schema)).toBe(true);
    });
  }

  it("the config schemas accept envoy.yaml's configurations and refuse unknown keys", () => {
    const ajv = new Ajv({ strict: false, allErrors: true });
    for (const p of readEnvoyYaml().plugins) {
      const name = p.wasm.split('/').pop()!.replace('.wasm', '');
      const validate = ajv.compile(manifest(name).config_schema);
      expect(validate(JSON.parse(p.configuration)), `${p.name}: ${ajv.errorsText(validate.errors)}`).toBe(true);
    }
    const httpLog = ajv.compile(manifest('http-log').config_schema);
    expect(httpLog({ http_endpoint: 'http://c/logs', colour: 'red' })).toBe(false);
    expect(httpLog({ method: 'POST' })).toBe(false); // http_endpoint is required
  });

  it('npm pack ships every plugin, its manifest, envoy.yaml and the host, and no test fixture', () => {
    const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8' });
    const files: string[] = JSON.parse(out)[0].files.map((f: { path: string }) => f.path);
    for (const name of plugins) expect(files).toEqual(expect.arrayContaining([`dist/${name}.wasm`, `dist/${name}.manifest.json`]));
    expect(files).toEqual(expect.arrayContaining(['envoy.yaml', 'bin/hookwire.js', 'dist/host/index.js', 'dist/host/testing/emulator.js']));
    expect(files.filter((f) => f.startsWith('build/') || f.startsWith('test/'))).toEqual([]);
  });
});

describe('hookwire inspect', () => {
  function capture(argv: string[]) {
    const out: string[] = [];
    const err: string[] = [];
    return run(argv, { out: (l) => out.push(l), err: (l) => err.push(l) }).then((code) => ({ code, out: out.join('\n'), err: err.join('\n') }));
  }

  it('prints the facts of a module and exits 0 when Envoy can load it', async () => {
    const r = await capture(['inspect', join(ROOT, 'dist/http-log.wasm')]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/abi +proxy-wasm 0\.2\.1/);
    expect(r.out).toMatch(/envoy +loadable/);
    expect(r.out).toContain('env.proxy_http_call');
    expect(r.out).toContain('proxy_on_log');
  });

  it('prints exactly the manifest form with --json', async () => {
    const r = await capture(['inspect', '--json', join(ROOT, 'dist/hello-world.wasm')]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toEqual(manifest('hello-world'));
  });

  it('--json of a module built elsewhere: the manifest form without version and config_schema', async () => {
    const r = await capture(['inspect', '--json', join(ROOT, 'build/fixtures/proxy-filter.wasm')]);
    expect(r.code).toBe(0);
    const m = JSON.parse(r.out);
    expect(Object.keys(m)).toEqual(['name', 'file', 'size', 'sha256', 'abi_version', 'envoy', 'imports', 'exports']);
    expect(m).toMatchObject({ name: 'proxy-filter', file: 'proxy-filter.wasm', abi_version: '0.2.1' });
    expect(m.imports).toContain('env.proxy_get_header_map_value');
  });

  it('exits 1 naming what Envoy would refuse, for a module built by hand', async () => {
    const r = await capture(['inspect', join(ROOT, 'build/fixtures/lifecycle-unknown-import.wasm')]);
    expect(r.code).toBe(1);
    expect(r.out).toContain('import Envoy does not provide: env.proxy_hookwire_made_up');
  });

  it('exits 1 with a clear error for a file that is not wasm', async () => {
    const r = await capture(['inspect', join(ROOT, 'package.json')]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/package\.json: not a WebAssembly module/);
  });
});
