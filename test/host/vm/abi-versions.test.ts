import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { AbiVersion, LogLevel, Status } from '../../../host/abi/constants.js';
import { providedImports } from '../../../host/abi/imports.js';
import { UnknownImportError } from '../../../host/errors.js';
import { HostEmulator } from '../../../host/testing/emulator.js';
import { compileModule } from '../../../host/vm/module.js';
import { Runtime } from '../../../host/vm/runtime.js';
import { fixture } from '../../helpers/paths.js';
import { only, reports } from './helpers.js';

describe('ABI 0.1.0 (legacy)', () => {
  async function start() {
    return HostEmulator.start({
      wasm: fixture('legacy-v010'),
      pluginConfig: 'plugin-config-0.1.0',
      vmConfig: 'vm-config-0.1.0',
    });
  }

  it('is recognised by its proxy_abi_version_0_1_0 marker', async () => {
    const module = await compileModule(await readFile(fixture('legacy-v010')), 'legacy-v010.wasm');
    expect(module.abiVersion).toBe(AbiVersion.V0_1_0);
    expect(module.unknownImports).toEqual([]);
  });

  it('reads the VM configuration in on_vm_start and the plugin configuration in on_configure with proxy_get_configuration', async () => {
    const host = await start();
    expect(only(reports(host), 'vm_start')).toMatchObject({ status: Status.OK, size: 'vm-config-0.1.0'.length, value: 'vm-config-0.1.0' });
    expect(only(reports(host), 'configure')).toMatchObject({ status: Status.OK, size: 'plugin-config-0.1.0'.length, value: 'plugin-config-0.1.0' });
  });

  it('calls on_request_headers with (context, headers) and answers a missing header with "" and OK', async () => {
    const host = await start();
    const id = host.initHttpContext();
    host.callOnRequestHeaders(id, { ':method': 'GET', ':path': '/', 'x-present': 'yes' }, true);
    expect(only(reports(host), 'request_headers').headers).toBe(3);
    // 0.1.0 semantics: no NOT_FOUND for a missing header, an empty value instead.
    expect(only(reports(host), 'header_missing')).toMatchObject({ status: Status.OK, len: 0, value: '' });
    expect(only(reports(host), 'header_present')).toMatchObject({ status: Status.OK, len: 3, value: 'yes' });
  });

  it('resumes streams with proxy_continue_request / proxy_continue_response and accepts proxy_clear_route_cache', async () => {
    const host = await start();
    const id = host.initHttpContext();
    host.callOnRequestHeaders(id, { ':path': '/' }, true);
    host.callOnResponseHeaders(id, { ':status': '200' }, true);
    expect(only(reports(host), 'continue_request').status).toBe(Status.OK);
    expect(only(reports(host), 'continue_response').status).toBe(Status.OK);
    expect(only(reports(host), 'clear_route_cache').status).toBe(Status.OK);
    expect(only(reports(host), 'response_headers').headers).toBe(1);
    expect(host.streamControl(id).continued).toEqual({ request: 1, response: 1 });
  });

  it('links the 0.1.0 calls only for 0.1.0 modules, and the 0.2.x calls only for 0.2.x', () => {
    const v010 = providedImports(AbiVersion.V0_1_0);
    const v020 = providedImports(AbiVersion.V0_2_0);
    const v021 = providedImports(AbiVersion.V0_2_1);
    for (const name of ['proxy_get_configuration', 'proxy_continue_request', 'proxy_continue_response', 'proxy_clear_route_cache']) {
      expect(v010.has(`env.${name}`)).toBe(true);
      expect(v020.has(`env.${name}`)).toBe(false);
      expect(v021.has(`env.${name}`)).toBe(false);
    }
    for (const name of ['proxy_continue_stream', 'proxy_close_stream']) {
      expect(v010.has(`env.${name}`)).toBe(false);
      expect(v020.has(`env.${name}`)).toBe(true);
      expect(v021.has(`env.${name}`)).toBe(true);
    }
    expect(v010.has('env.proxy_get_log_level')).toBe(false);
    expect(v020.has('env.proxy_get_log_level')).toBe(false);
    expect(v021.has('env.proxy_get_log_level')).toBe(true);
  });
});

describe('ABI 0.2.0 vs 0.2.1: proxy_get_log_level', () => {
  it('refuses a 0.2.0 module that imports proxy_get_log_level as an unknown import', async () => {
    const runtime = new Runtime({ onLog: () => {} });
    const err = await runtime.loadPlugin({ name: 'old', wasm: fixture('legacy-v020-log-level') }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnknownImportError);
    expect(err).toMatchObject({ code: 'HW_ERR_WASM_UNKNOWN_IMPORT', imports: ['env.proxy_get_log_level'] });
    expect((err as Error).message).toContain('legacy-v020-log-level.wasm');
    expect(runtime.vms()).toEqual([]);
  });

  it('stubs it with UNIMPLEMENTED for a 0.2.0 module when unknown imports are allowed', async () => {
    const host = await HostEmulator.start({ wasm: fixture('legacy-v020-log-level'), allowUnknownImports: true });
    expect(only(reports(host), 'log_level')).toMatchObject({ status: Status.UNIMPLEMENTED, level: 99 });
  });

  it('answers the same call in a 0.2.1 module with OK and the host log level', async () => {
    const warn = await HostEmulator.start({ wasm: fixture('legacy-v021-log-level'), logLevel: 'warn' });
    expect(only(reports(warn), 'log_level')).toMatchObject({ status: Status.OK, level: LogLevel.WARN });
    const debug = await HostEmulator.start({ wasm: fixture('legacy-v021-log-level'), logLevel: 'debug' });
    expect(only(reports(debug), 'log_level')).toMatchObject({ status: Status.OK, level: LogLevel.DEBUG });
  });
});
