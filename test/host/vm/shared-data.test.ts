import { describe, expect, it } from 'vitest';
import { Status } from '../../../host/abi/constants.js';
import { fixture } from '../../helpers/paths.js';
import { captureRuntime, only, pluginReports, reports, runStream, startProbe, streamOps } from './helpers.js';

describe('shared data (proxy_get_shared_data / proxy_set_shared_data)', () => {
  it('answers NOT_FOUND for a key nobody set', async () => {
    const host = await startProbe({ configure: 'sd.get|never-set' });
    const r = only(reports(host), 'sd.get');
    expect(r.status).toBe(Status.NOT_FOUND);
    expect(r).not.toHaveProperty('value');
  });

  it('returns the stored value and a non-zero cas after a set', async () => {
    const host = await startProbe();
    const [set, get] = streamOps(host, 'sd.set|color|blue|0;sd.get|color');
    expect(set).toMatchObject({ op: 'sd.set', status: Status.OK });
    expect(get).toMatchObject({ op: 'sd.get', status: Status.OK, value: 'blue' });
    const cas = Number(get!.cas);
    expect(cas).toBeGreaterThan(0);
    // The host's view agrees with what the guest saw.
    expect(host.sharedData('color')).toEqual({ value: Buffer.from('blue'), cas });
  });

  it('gives a new cas on every write and refuses a stale one with CAS_MISMATCH', async () => {
    const host = await startProbe();
    const first = streamOps(host, 'sd.set|k|v1|0;sd.get|k');
    const cas1 = Number(first[1]!.cas);

    // The current cas wins and bumps the cas.
    const second = streamOps(host, `sd.set|k|v2|${cas1};sd.get|k`);
    expect(second[0]!.status).toBe(Status.OK);
    expect(second[1]!.value).toBe('v2');
    const cas2 = Number(second[1]!.cas);
    expect(cas2).not.toBe(cas1);

    // The old cas is now stale: refused, value untouched.
    const third = streamOps(host, `sd.set|k|v3|${cas1};sd.get|k`);
    expect(third[0]).toMatchObject({ op: 'sd.set', status: Status.CAS_MISMATCH });
    expect(third[1]).toMatchObject({ value: 'v2', cas: String(cas2) });
  });

  it('overwrites unconditionally with cas 0', async () => {
    const host = await startProbe();
    streamOps(host, 'sd.set|k|old|0');
    const [set, get] = streamOps(host, 'sd.set|k|new|0;sd.get|k');
    expect(set!.status).toBe(Status.OK);
    expect(get!.value).toBe('new');
  });

  it('creates a missing key even when a cas is given (as Envoy does)', async () => {
    const host = await startProbe();
    const [set, get] = streamOps(host, 'sd.set|fresh|x|12345;sd.get|fresh');
    expect(set!.status).toBe(Status.OK);
    expect(get).toMatchObject({ status: Status.OK, value: 'x' });
  });

  it('stores an empty value as present (OK with zero bytes), not as missing', async () => {
    const host = await startProbe();
    const [, get] = streamOps(host, 'sd.set|empty||0;sd.get|empty');
    expect(get).toMatchObject({ status: Status.OK, value: '' });
  });

  it('shares data between the host API and the guest', async () => {
    const host = await startProbe();
    host.setSharedData('from-host', 'hello');
    expect(only(streamOps(host, 'sd.get|from-host'), 'sd.get')).toMatchObject({ status: Status.OK, value: 'hello' });
  });

  it('scopes keys per vm_id: plugins in different VMs of one Runtime do not see each other', async () => {
    const { runtime, logs } = captureRuntime();
    const a = await runtime.loadPlugin({ name: 'a', wasm: fixture('lifecycle-probe'), vmId: 'vm-a' });
    const b = await runtime.loadPlugin({ name: 'b', wasm: fixture('lifecycle-probe'), vmId: 'vm-b' });
    expect(a.vm === b.vm).toBe(false);

    runStream(a, 'sd.set|secret|from-a|0');
    let from = logs.length;
    runStream(b, 'sd.get|secret');
    expect(only(pluginReports(logs, 'b', from), 'sd.get').status).toBe(Status.NOT_FOUND);

    from = logs.length;
    runStream(a, 'sd.get|secret');
    expect(only(pluginReports(logs, 'a', from), 'sd.get')).toMatchObject({ status: Status.OK, value: 'from-a' });

    expect(runtime.sharedData.keys('vm-a')).toEqual(['secret']);
    expect(runtime.sharedData.keys('vm-b')).toEqual([]);
    runtime.close();
  });

  it('is shared by root contexts of one VM (same vm_id, different root_id)', async () => {
    // lifecycle-raw keeps one configuration per root context, so two plugins can share its VM.
    const { runtime, logs } = captureRuntime();
    const p1 = await runtime.loadPlugin({
      name: 'p1',
      wasm: fixture('lifecycle-raw'),
      vmId: 'shared',
      rootId: 'root-1',
      configuration: JSON.stringify({ configure: 'prop|plugin_root_id;sd.set|owner|root-1|0' }),
    });
    const p2 = await runtime.loadPlugin({
      name: 'p2',
      wasm: fixture('lifecycle-raw'),
      vmId: 'shared',
      rootId: 'root-2',
      configuration: JSON.stringify({ configure: 'prop|plugin_root_id;sd.get|owner' }),
    });
    expect(p2.vm === p1.vm).toBe(true);
    expect(p2.id).not.toBe(p1.id);

    // Each root context ran its own configuration...
    expect(only(pluginReports(logs, 'p1'), 'prop').value).toBe('root-1');
    expect(only(pluginReports(logs, 'p2'), 'prop').value).toBe('root-2');
    // ...and root-2 saw what root-1 stored.
    expect(only(pluginReports(logs, 'p2'), 'sd.get')).toMatchObject({ status: Status.OK, value: 'root-1' });

    // Streams of either plugin share it too; a third VM does not.
    const from = logs.length;
    runStream(p2, 'sd.set|owner|root-2|0');
    runStream(p1, 'sd.get|owner');
    expect(only(pluginReports(logs, 'p1', from), 'sd.get').value).toBe('root-2');
    const other = await runtime.loadPlugin({ name: 'p3', wasm: fixture('lifecycle-raw'), vmId: 'other', configuration: JSON.stringify({ configure: 'sd.get|owner' }) });
    expect(only(pluginReports(logs, 'p3'), 'sd.get').status).toBe(Status.NOT_FOUND);
    expect(runtime.sharedData.get('shared', 'owner')?.value).toEqual(Buffer.from('root-2'));
    expect(other.vm === p1.vm).toBe(false);
    runtime.close();
  });

  it('survives a VM reload (the data lives outside the VM instance)', async () => {
    const host = await startProbe({ request_body: 'trap|boom' }, { failurePolicy: 'reload' });
    streamOps(host, 'sd.set|kept|yes|0');
    const id = host.initHttpContext();
    host.callOnRequestHeaders(id, { ':path': '/' });
    host.callOnRequestBody(id, 'x', true);
    expect(host.plugin.vm.poisoned).not.toBeNull();
    expect(only(streamOps(host, 'sd.get|kept'), 'sd.get')).toMatchObject({ status: Status.OK, value: 'yes' });
    expect(host.plugin.reloads).toBe(1);
  });
});
