/**
 * The seed scenario in Envoy-strict mode, with every Wasm configuration taken
 * from envoy.yaml itself: the team filters (team-a-log, team-b-log) with
 * their envoy.yaml configuration strings, clusters named as envoy.yaml names
 * them, and the event-forwarder singleton with its envoy.yaml configuration.
 * In strict mode hookwire has no native queue consumer, so events travel as
 * they would from Envoy: filter -> shared queue -> forwarder ->
 * proxy_http_call to cluster hookwire_ingest -> POST /event-hooks/ingest
 * (bearer token) -> event hooks -> a signed webhook.
 */
import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyWebhook } from '../../host/hooks/signing.js';
import { send } from '../helpers/gateway.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';
import { call, startReceiver, startTestApp, waitFor, type Receiver, type TestApp } from '../admin/helpers.js';
import { readEnvoyYaml } from '../envoy/envoy-yaml.js';

type Json = any;
const envoy = readEnvoyYaml();
const filters = envoy.plugins.filter((p) => p.kind === 'http_filter');
const forwarder = envoy.plugins.find((p) => p.kind === 'service')!;
const forwarderConfig = JSON.parse(forwarder.configuration);
const TEAMS = [
  { name: 'team-a', filter: 'team-a-log', count: 6 },
  { name: 'team-b', filter: 'team-b-log', count: 9 },
] as const;
const TOTAL = TEAMS.reduce((n, t) => n + t.count, 0);
const SECRET = 'whsec_' + Buffer.from('hookwire-strict-seed-secret!!!!!').toString('base64');

/** A free loopback port for the admin listener, which the hookwire_ingest cluster must name up front. */
async function freePort(): Promise<number> {
  const s: Server = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

let t: TestApp;
let receiver: Receiver;
const ingested = { emit: 0, publish: 0 };
const api: Record<string, Upstream> = {};
const collector: Record<string, Upstream> = {};

beforeAll(async () => {
  for (const team of TEAMS) {
    api[team.name] = await startUpstream();
    collector[team.name] = await startUpstream();
  }
  receiver = await startReceiver();
  const adminPort = await freePort();
  // Services carry envoy.yaml's cluster names, so the filters' http_endpoint hosts resolve as in Envoy.
  const clusterOf = (team: string, kind: 'api' | 'collector') => `${team.replace('-', '_')}_${kind}`;
  t = await startTestApp({
    wasm: { envoy_strict: true },
    admin: { listen: { address: '127.0.0.1', port: adminPort } },
    event_hooks: { ingest_token: forwarderConfig.token },
    services: [{ name: forwarderConfig.cluster, url: `http://127.0.0.1:${adminPort}` }],
    workspaces: TEAMS.map((team) => {
      const f = filters.find((p) => p.name === team.filter)!;
      return {
        name: team.name,
        services: [
          { name: clusterOf(team.name, 'api'), url: api[team.name]!.url },
          { name: clusterOf(team.name, 'collector'), url: collector[team.name]!.url },
        ],
        routes: [
          {
            name: `${team.name}-routes`,
            service: clusterOf(team.name, 'api'),
            paths: [`/${team.name}`],
            plugins: [{ name: f.name, wasm: f.wasm, root_id: f.rootId, vm_id: f.vmId, configuration: f.configuration, failure_policy: f.failurePolicy }],
          },
        ],
      };
    }),
  });
  // The singleton service, as envoy.yaml declares it (bootstrap_extensions).
  await t.app.gateway.runtime.loadPlugin({
    name: forwarder.name,
    wasm: forwarder.wasm,
    rootId: forwarder.rootId,
    vmId: forwarder.vmId,
    configuration: forwarder.configuration,
    failurePolicy: forwarder.failurePolicy,
  });

  // Count what arrives through the ingest endpoint (the only way in, in strict mode).
  const hooks = t.app.hooks!;
  const ingest = hooks.ingest.bind(hooks);
  hooks.ingest = async (records) => {
    // The ingest endpoint hands over each record's bytes (it splits the batch without parsing it whole).
    for (const r of records) {
      const rec = (r instanceof Uint8Array ? JSON.parse(Buffer.from(r).toString('utf8')) : r) as Json;
      ingested[rec?.type === 'emit' ? 'emit' : 'publish']++;
    }
    return ingest(records);
  };

  const hook = await call(t.admin, 'POST', '/event-hooks', { source: 'http-log', event: 'log', handler: 'webhook', config: { url: receiver.url, secret: SECRET } });
  expect(hook.status).toBe(201);

  for (const team of TEAMS) for (let i = 0; i < team.count; i++) {
    const r = await send(`${t.url}/${team.name}/orders/${i}`, { headers: { 'x-request-id': `${team.name}-${i}` } });
    expect(r.status).toBe(200);
  }
  // envoy.yaml: http-log batches of 10 with a 1 s coalescing delay; the forwarder flushes every 1 s.
  await waitFor(() => {
    const got = TEAMS.map((team) => collector[team.name]!.received.flatMap((c) => JSON.parse(c.body)).length);
    const missing = TEAMS.filter((team, i) => got[i]! < team.count).map((team, i) => `${team.name}: ${got[i]}/${team.count}`);
    if (receiver.hits.length < TOTAL) missing.push(`${receiver.hits.length}/${TOTAL} webhooks`);
    return missing.length ? missing.join('; ') : null;
  }, 30_000);
}, 60_000);

afterAll(async () => {
  await t?.close();
  await receiver?.close();
  for (const u of [...Object.values(api), ...Object.values(collector)]) await u.close();
});

describe('seed scenario in Envoy-strict mode, configured from envoy.yaml', () => {
  it("gives each team's collector exactly its own entries", () => {
    for (const team of TEAMS) {
      const got: Json[] = collector[team.name]!.received.flatMap((c) => JSON.parse(c.body));
      expect(got).toHaveLength(team.count);
      expect(new Set(got.map((e) => e.request.id))).toEqual(new Set(Array.from({ length: team.count }, (_, i) => `${team.name}-${i}`)));
      for (const e of got) expect(e.workspace_name).toBe(team.name);
    }
  });

  it('delivers every event through the forwarder and the ingest endpoint as one signed webhook per request', () => {
    expect(receiver.hits).toHaveLength(TOTAL);
    const ids = new Set<string>();
    for (const hit of receiver.hits) {
      ids.add(verifyWebhook(SECRET, hit.headers, hit.raw).id);
      const body = JSON.parse(hit.raw.toString('utf8'));
      expect(body).toMatchObject({ source: 'http-log', event: 'log', ip: '127.0.0.1' });
    }
    expect(ids.size).toBe(TOTAL);
  });

  it('has no native consumer in strict mode: every event came through the forwarder and the ingest endpoint', () => {
    expect(ingested.emit).toBe(TOTAL);
    expect(ingested.publish).toBeGreaterThanOrEqual(2); // one per team filter (re-sent after failures)
  });
});
