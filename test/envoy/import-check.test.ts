// Every shipped .wasm must load in Envoy: each import one Envoy implements
// (for the module's ABI version), each export Envoy needs present. A failure
// names the import or export.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { inspectFile } from '../../host/vm/inspect.js';
import { ROOT } from '../helpers/paths.js';

const dist = join(ROOT, 'dist');
const modules = readdirSync(dist).filter((f) => f.endsWith('.wasm'));

/** Stream phase callbacks a plugin must export, where they differ from the default (both header phases). */
const STREAM_CALLBACKS: Record<string, string[]> = { 'http-log.wasm': [] };

describe('import check: every dist/*.wasm loads in Envoy', () => {
  it('finds the plugins', () => {
    expect(modules).toEqual(expect.arrayContaining(['http-log.wasm', 'event-forwarder.wasm', 'hello-world.wasm']));
  });

  for (const file of modules) {
    it(file, async () => {
      const facts = await inspectFile(join(dist, file));
      expect(facts.abiVersion, `${file}: ABI version`).toBe('0.2.1');
      expect(facts.envoy.unknownImports, `${file}: imports Envoy does not implement`).toEqual([]);
      expect(facts.envoy.missingExports, `${file}: exports Envoy needs`).toEqual([]);
      // The root callbacks every plugin uses, and the stream callbacks each one
      // acts in. A phase callback a module does not export is skipped by Envoy
      // (proxy-wasm-cpp-host continues the stream), so http-log, which works
      // only in on_log, exports no header callback.
      const phases = STREAM_CALLBACKS[file] ?? ['proxy_on_request_headers', 'proxy_on_response_headers'];
      for (const cb of ['proxy_on_vm_start', 'proxy_on_configure', 'proxy_on_tick', 'proxy_on_http_call_response', 'proxy_on_log', 'proxy_on_done', 'proxy_on_delete', ...phases]) {
        expect(facts.callbacks, `${file}: export ${cb}`).toContain(cb);
      }
    });
  }
});

describe('the import check fails, naming what is wrong', () => {
  it('names an import Envoy does not provide', async () => {
    const facts = await inspectFile(join(ROOT, 'build/fixtures/lifecycle-unknown-import.wasm'));
    expect(facts.envoy.compatible).toBe(false);
    expect(facts.envoy.unknownImports).toEqual(expect.arrayContaining(['env.proxy_hookwire_made_up', 'hookwire_vendor.mystery']));
  });
});
