// envoy.yaml's Wasm plugins, loaded with the exact configuration Envoy would
// pass them, into hookwire's Envoy-strict host: they must configure, reach only
// clusters envoy.yaml defines, and move logs and events as they would in Envoy.
import { existsSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { HeaderMap } from '../../host/abi/header-map.js';
import { HostEmulator } from '../../host/testing/emulator.js';
import type { Plugin } from '../../host/vm/plugin.js';
import { readEnvoyYaml, type EnvoyWasmPlugin } from './envoy-yaml.js';

const envoy = readEnvoyYaml();
const filters = envoy.plugins.filter((p) => p.kind === 'http_filter');
const [forwarder] = envoy.plugins.filter((p) => p.kind === 'service');
const clusterNames = [...envoy.clusters.keys()];

function hostOf(url: string): string {
  return new URL(url).hostname;
}

describe('envoy.yaml', () => {
  let host: HostEmulator | undefined;
  afterEach(() => host?.close());

  it('declares the seed scenario: two http-log filters with event hooks and the forwarder singleton', () => {
    expect(filters.map((f) => f.name)).toEqual(['team-a-log', 'team-b-log']);
    expect(forwarder).toMatchObject({ name: 'hookwire-event-forwarder', vmId: 'hookwire_event_hooks', singleton: true });
    for (const p of envoy.plugins) expect(existsSync(p.wasm), `${p.wasm} (run npm run build)`).toBe(true);
  });

  it('sends every http call and route to a cluster it defines', () => {
    for (const f of filters) {
      const config = JSON.parse(f.configuration);
      expect(clusterNames, `${f.name}: http_endpoint cluster`).toContain(hostOf(config.http_endpoint));
      expect(clusterNames, `${f.name}: route cluster`).toContain(envoy.listenerClusters.get(f.listener!));
      expect(config.event_hooks).toBe(true);
    }
    expect(clusterNames).toContain(JSON.parse(forwarder!.configuration).cluster);
  });

  // A clock the test moves, so coalescing delays and flush intervals pass instantly.
  const clock = { ms: 1_700_000_000_000n, now: () => clock.ms * 1_000_000n, monotonic: () => clock.ms * 1_000_000n };

  const start = (p: EnvoyWasmPlugin) =>
    HostEmulator.start({
      wasm: p.wasm,
      name: p.name,
      rootId: p.rootId,
      vmId: p.vmId,
      pluginConfig: p.configuration,
      failurePolicy: p.failurePolicy,
      envoyStrict: true,
      upstreams: clusterNames,
      clock,
    });

  for (const p of envoy.plugins) {
    it(`${p.name} configures in the Envoy-strict host with its envoy.yaml configuration`, async () => {
      host = await start(p);
      expect(host.plugin.failure).toBeNull();
      expect(host.logs('error')).toEqual([]);
    });
  }

  it('moves a request log to the team collector and its event through the forwarder to ingest, in strict mode', async () => {
    // The singleton first (it registers the event_hooks queue), then the team filters in the same runtime.
    host = await start(forwarder!);
    const loaded = new Map<string, Plugin>();
    for (const f of filters) loaded.set(f.name, await host.runtime.loadPlugin({ name: f.name, wasm: f.wasm, rootId: f.rootId, vmId: f.vmId, configuration: f.configuration, failurePolicy: f.failurePolicy }));

    // One request through team A's filter, with attributes encoded as Envoy encodes them.
    const ctx = loaded.get('team-a-log')!.newHttpContext({
      properties: (key: string) =>
        ({
          'request.path': '/orders?id=7',
          'request.method': 'GET',
          'request.headers': HeaderMap.fromPairs([[':method', 'GET'], [':path', '/orders?id=7'], ['authorization', 'secret']]),
          'response.code': 200,
          'source.address': '192.0.2.10:40000',
          'xds.route_name': 'team-a-routes',
          'xds.cluster_name': 'team_a_api',
        })[key],
    });
    if (typeof ctx === 'string') throw new Error(`stream refused: ${ctx}`);
    ctx.requestHeaders = HeaderMap.fromPairs([[':method', 'GET'], [':path', '/orders?id=7']]);
    ctx.onRequestHeaders(true);
    ctx.responseHeaders = HeaderMap.fromPairs([[':status', '200']]);
    ctx.onResponseHeaders(true);
    ctx.complete();
    clock.ms += 2000n; // past http-log's 1 s coalescing delay and the forwarder's flush interval
    host.tick();

    const calls = host.httpCalls();
    const log = calls.find((c) => c.upstream === 'team_a_collector');
    expect(log, 'a log call to team A collector').toBeDefined();
    const entries = JSON.parse(log!.body.toString());
    expect(entries[0]).toMatchObject({ request: { method: 'GET', headers: { authorization: 'REDACTED' } }, route: { name: 'team-a-routes' }, service: { name: 'team_a_api' }, client_ip: '192.0.2.10' });
    expect(calls.some((c) => c.upstream === 'team_b_collector')).toBe(false);

    const ingest = calls.find((c) => c.upstream === 'hookwire_ingest');
    expect(ingest, 'the forwarder ships events to hookwire_ingest').toBeDefined();
    expect(ingest!.headers).toContainEqual(['authorization', `Bearer ${JSON.parse(forwarder!.configuration).token}`]);
    const records = JSON.parse(ingest!.body.toString());
    expect(records.filter((r: { type: string }) => r.type === 'publish').map((r: { plugin: string }) => r.plugin).sort()).toEqual(['team-a-log', 'team-b-log']);
    expect(records.filter((r: { type: string }) => r.type === 'emit')).toEqual([
      expect.objectContaining({ source: 'http-log', event: 'log', plugin: 'team-a-log', data: expect.objectContaining({ ip: '192.0.2.10' }) }),
    ]);
  });
});
