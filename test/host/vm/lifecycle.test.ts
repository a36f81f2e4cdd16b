import { describe, expect, it } from 'vitest';
import { PluginStartError } from '../../../host/errors.js';
import { HostEmulator } from '../../../host/testing/emulator.js';
import type { RuntimeEvent } from '../../../host/vm/runtime.js';
import { fixture } from '../../helpers/paths.js';
import { captureRuntime, only, pluginReports, reports, results, runStream, startProbe } from './helpers.js';

/** The rejection of `p`, which must be a PluginStartError. */
async function startError(p: Promise<unknown>): Promise<PluginStartError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(PluginStartError);
  expect(err).toMatchObject({ code: 'HW_ERR_PLUGIN_START' });
  return err as PluginStartError;
}

describe('VM start', () => {
  it('runs _start before any callback, then context_create(root, 0), on_vm_start, on_configure', async () => {
    const { runtime, logs } = captureRuntime();
    const p = await runtime.loadPlugin({ name: 'raw', wasm: fixture('lifecycle-raw') });
    const order = results(logs).map((r) => (r.op === 'phase' ? r.phase : r.op));
    expect(order).toEqual(['start', 'context_create', 'vm_start', 'configure']);
    const created = only(results(logs), 'context_create');
    expect(created).toMatchObject({ ctx: String(p.id), parent: '0' });
    // on_vm_start saw the module initialised exactly once.
    expect(results(logs, 'phase')[0]).toMatchObject({ phase: 'vm_start', start_count: '1' });
    // The _start log line had no context yet.
    expect(logs.find((r) => r.message.includes('"op":"start"'))).toMatchObject({ plugin: null, contextId: 0 });
    runtime.close();
  });

  it('runs _start once per VM: a second plugin in the same VM does not rerun it', async () => {
    const { runtime, logs } = captureRuntime();
    await runtime.loadPlugin({ name: 'one', wasm: fixture('lifecycle-raw'), vmId: 'v', rootId: 'one' });
    await runtime.loadPlugin({ name: 'two', wasm: fixture('lifecycle-raw'), vmId: 'v', rootId: 'two' });
    expect(results(logs, 'start')).toHaveLength(1);
    expect(results(logs, 'phase').filter((r) => r.phase === 'vm_start').map((r) => r.start_count)).toEqual(['1', '1']);
    runtime.close();
  });

  it('makes the G-Core SDK work (its root context is registered in _start)', async () => {
    const host = await startProbe({ configure: 'mark|configured' });
    expect(only(reports(host), 'mark')).toMatchObject({ value: 'configured', ctx: String(host.plugin.id) });
    expect(reports(host, 'phase').map((r) => r.phase)).toEqual(['vm_start', 'configure']);
  });

  it('hands the VM configuration to on_vm_start and the plugin configuration to on_configure', async () => {
    const host = await startProbe({ configure: 'mark|from-plugin-config' }, { vmConfig: { vm_start: 'mark|from-vm-config' } });
    expect(reports(host, 'mark').map((r) => r.value)).toEqual(['from-vm-config', 'from-plugin-config']);
  });

  it('fails with PluginStartError when on_vm_start returns false', async () => {
    const err = await startError(startProbe({}, { name: 'picky', vmConfig: { vm_start: 'false' } }));
    expect(err.plugin).toBe('picky');
    expect(err.message).toContain('plugin picky');
    expect(err.message).toContain('proxy_on_vm_start returned false');
  });

  it('fails with PluginStartError when on_configure returns false', async () => {
    const err = await startError(startProbe({ configure: 'false' }));
    expect(err.message).toContain('proxy_on_configure returned false');
  });

  it('names in the refusal what the plugin logged at error level while refusing', async () => {
    const err = await startError(startProbe({ configure: 'stdout|just info;stderr|option "header" is required;false' }));
    expect(err.message).toContain('proxy_on_configure returned false');
    expect(err.message).toContain('option "header" is required');
    expect(err.message).not.toContain('just info');
  });

  it('fails with PluginStartError carrying the AssemblyScript abort message when on_configure traps', async () => {
    const err = await startError(startProbe({ configure: 'trap|bad config value' }));
    expect(err.message).toContain('abort: bad config value');
    expect(err.message).toContain('_lifecycle-ops.ts');
    expect(err.cause).toMatchObject({ code: 'HW_ERR_WASM_TRAP', callback: 'proxy_on_configure' });
  });

  it('fails with PluginStartError when on_vm_start traps', async () => {
    const err = await startError(startProbe({}, { vmConfig: { vm_start: 'unreachable' } }));
    expect(err.message).toContain('unreachable');
    expect(err.cause).toMatchObject({ callback: 'proxy_on_vm_start' });
  });

  it('fails with PluginStartError when _start traps', async () => {
    const { runtime, events } = captureRuntime();
    const err = await startError(
      runtime.loadPlugin({ name: 'boot', wasm: fixture('lifecycle-raw'), environment: { LIFECYCLE_TRAP_IN_START: '1' } }),
    );
    expect(err.message).toContain('start failed on purpose');
    expect(events).toContainEqual(expect.objectContaining({ type: 'plugin_start_failed', plugin: 'boot', reason: expect.stringContaining('start failed on purpose') }));
    expect(runtime.vms()).toEqual([]);
  });

  it('leaves nothing behind after a failed start, so a corrected plugin loads', async () => {
    const { runtime } = captureRuntime();
    await startError(runtime.loadPlugin({ name: 'p', wasm: fixture('lifecycle-probe'), configuration: JSON.stringify({ configure: 'false' }) }));
    expect(runtime.vms()).toEqual([]);
    const ok = await runtime.loadPlugin({ name: 'p', wasm: fixture('lifecycle-probe') });
    expect(ok.healthy).toBe(true);
    expect(runtime.vms()).toHaveLength(1);
    runtime.close();
  });

  it('rejects a plugin whose configuration fails without disturbing a plugin already in the same VM', async () => {
    const { runtime, logs } = captureRuntime();
    const good = await runtime.loadPlugin({ name: 'good', wasm: fixture('lifecycle-raw'), vmId: 'v', rootId: 'good' });
    await startError(runtime.loadPlugin({ name: 'bad', wasm: fixture('lifecycle-raw'), vmId: 'v', rootId: 'bad', configuration: JSON.stringify({ configure: 'false' }) }));
    const from = logs.length;
    expect(runStream(good, 'mark|still-here')).not.toBeTypeOf('string');
    expect(only(pluginReports(logs, 'good', from), 'mark').value).toBe('still-here');
    expect(good.healthy).toBe(true);
    runtime.close();
  });

  it('refuses a second plugin with the same root_id in one VM', async () => {
    const { runtime } = captureRuntime();
    await runtime.loadPlugin({ name: 'first', wasm: fixture('lifecycle-raw'), vmId: 'v', rootId: 'same' });
    const err = await startError(runtime.loadPlugin({ name: 'second', wasm: fixture('lifecycle-raw'), vmId: 'v', rootId: 'same' }));
    expect(err.message).toContain('root_id "same" is already in use');
    runtime.close();
  });
});

describe('runtime events', () => {
  it('reports plugin_loaded with the VM, root id, file and sha256', async () => {
    const host = await startProbe({}, { name: 'p', vmId: 'vm-p', rootId: 'root-p' });
    const loaded = host.runtimeEvents().filter((e) => e.type === 'plugin_loaded');
    expect(loaded).toEqual([
      { type: 'plugin_loaded', plugin: 'p', vmId: 'vm-p', rootId: 'root-p', sha256: expect.stringMatching(/^[0-9a-f]{64}$/), file: fixture('lifecycle-probe') },
    ]);
  });

  it('reports plugin_start_failed with the reason', async () => {
    const { runtime, events } = captureRuntime();
    await startError(runtime.loadPlugin({ name: 'nope', wasm: fixture('lifecycle-probe'), configuration: JSON.stringify({ configure: 'false' }) }));
    expect(events.filter((e) => e.type === 'plugin_start_failed')).toEqual([
      { type: 'plugin_start_failed', plugin: 'nope', vmId: 'nope', reason: expect.stringContaining('proxy_on_configure returned false') },
    ]);
    expect(events.some((e) => e.type === 'plugin_loaded')).toBe(false);
  });

  it('reports vm_trapped then vm_reloaded, in order, around a reload', async () => {
    const host = await startProbe({ request_body: 'trap|body trap' }, { failurePolicy: 'reload', name: 'r' });
    const id = host.initHttpContext();
    host.callOnRequestHeaders(id, { ':path': '/' });
    host.callOnRequestBody(id, 'x', true);
    host.initHttpContext();
    const types = host.runtimeEvents().map((e) => e.type);
    expect(types).toEqual(['plugin_loaded', 'vm_trapped', 'vm_reloaded']);
    const [, trapped, reloaded] = host.runtimeEvents() as [RuntimeEvent, Extract<RuntimeEvent, { type: 'vm_trapped' }>, Extract<RuntimeEvent, { type: 'vm_reloaded' }>];
    expect(trapped).toMatchObject({ vmId: 'r', callback: 'proxy_on_request_body', plugins: ['r'], reason: expect.stringContaining('abort: body trap') });
    expect(reloaded).toEqual({ type: 'vm_reloaded', vmId: 'r', plugins: ['r'], ok: true });
  });

  it('reports plugin_unloaded and stops serving streams after unload', async () => {
    const host = await startProbe();
    host.close();
    expect(host.runtimeEvents().at(-1)).toEqual({ type: 'plugin_unloaded', plugin: 'plugin', vmId: 'plugin' });
    expect(host.plugin.newHttpContext()).toBe('reject');
  });

  it('keeps the emulator usable for plugins started with a root id different from the name', async () => {
    const host = await HostEmulator.start({ wasm: fixture('lifecycle-raw'), name: 'n', rootId: 'r', pluginConfig: { configure: 'prop|plugin_root_id;prop|plugin_name;prop|plugin_vm_id' } });
    expect(reports(host, 'prop').map((r) => r.value)).toEqual(['r', 'n', 'n']);
  });
});
