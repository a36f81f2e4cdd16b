/**
 * `hookwire validate`: everything `start` would refuse, found without
 * starting. Past the document checks, every enabled plugin is started and
 * configured (on_vm_start, on_configure) in a scratch runtime, as `start`
 * does, so a plugin that refuses its configuration fails validation with its
 * own message. The scratch runtime opens no listener, makes no outbound call
 * (http calls are accepted and never answered), fires no tick and writes
 * nothing; it is closed before returning.
 */
import { pluginPointers } from '../config/checks.js';
import type { HookwireConfig } from '../config/schema.js';
import { ConfigError, PluginStartError, type ConfigIssue } from '../errors.js';
import { allPlugins, pluginSpec } from '../proxy/generation.js';
import { loadModuleFile, type ProxyWasmModule } from '../vm/module.js';
import type { HttpCallTransport } from '../vm/plugin.js';
import { Runtime, type TimerScheduler } from '../vm/runtime.js';

const noTicks: TimerScheduler = {
  setInterval: () => null,
  clearInterval: () => {},
};

/**
 * Starts and configures every enabled plugin of `config` in a scratch
 * runtime. Throws ConfigError naming each refusing plugin at its place in
 * `document` (`/services/0/plugins/1: proxy_on_configure returned false …`),
 * or the first module error (missing or unusable .wasm) as it is.
 */
export async function configurePlugins(config: HookwireConfig, document: unknown): Promise<void> {
  const clusters = new Set(config.workspaces.flatMap((ws) => ws.services.map((s) => s.name)));
  const httpCalls: HttpCallTransport = {
    hasUpstream: (upstream) => clusters.has(upstream),
    dispatch: () => {},
  };
  const runtime = new Runtime({ envoyStrict: config.wasm.envoy_strict, logLevel: 'critical', timers: noTicks, httpCalls });
  const pointers = pluginPointers(document);
  const modules = new Map<string, ProxyWasmModule>();
  const issues: ConfigIssue[] = [];
  try {
    for (const p of allPlugins(config)) {
      let module = modules.get(p.wasm);
      if (!module) {
        module = await loadModuleFile(p.wasm);
        modules.set(p.wasm, module);
      }
      try {
        // One generation, as `start` loads them (plugins naming one vm_id share its VM); a
        // plugin that refuses is reported and the next one still checked.
        await runtime.loadPlugin(pluginSpec(p, module, 1, config.wasm));
      } catch (err) {
        if (!(err instanceof PluginStartError)) throw err;
        issues.push({ path: pointers.get(p.name) ?? '', message: err.message });
      }
    }
  } finally {
    runtime.close();
  }
  if (issues.length > 0) throw new ConfigError(config.source, issues);
}
