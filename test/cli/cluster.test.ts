/**
 * Acceptance of issue 12 (PostgreSQL, several nodes), through the real
 * command: two `hookwire start` processes on one private PostgreSQL behave
 * as one gateway. A route created on node A serves on node B; N events with
 * a webhook hook, accepted by both nodes, arrive once each (by webhook-id);
 * with node A killed (-9) halfway, none is lost and a repeat carries the
 * same webhook-id. N is 1,000 by default, HOOKWIRE_CLUSTER_EVENTS=5000 for
 * the full figure.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startServer, type Server, stopServers } from '../helpers/cli.js';
import { send } from '../helpers/gateway.js';
import { usePostgres } from '../helpers/postgres.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';
import { receiver, waitUntil, type Receiver } from '../hooks/helpers.js';

const N = Number(process.env.HOOKWIRE_CLUSTER_EVENTS ?? 1000);
const INGEST_TOKEN = 'cluster-ingest-token';
const pgc = usePostgres();
let dir: string;
let upstream: Upstream;
const running: Server[] = [];
const closers: (() => Promise<void>)[] = [];

beforeAll(async () => {
  upstream = await startUpstream();
  dir = await mkdtemp(join(tmpdir(), 'hookwire-cluster-'));
});
afterAll(async () => {
  await upstream?.close();
  await rm(dir, { recursive: true, force: true });
});
afterEach(async () => {
  await stopServers(running, 5000);
  for (const c of closers.splice(0)) await c();
});

/** A configuration file for the nodes of one cluster (database `url`). */
async function clusterConfig(url: string): Promise<string> {
  const file = join(dir, `cluster-${Date.now()}-${Math.random().toString(16).slice(2)}.yaml`);
  await writeFile(
    file,
    `proxy: {listen: [{address: 127.0.0.1, port: 0}], drain_timeout_ms: 1000}
admin: {listen: {address: 127.0.0.1, port: 0}}
log_level: info
storage: {kind: postgres, url: "${url}", poll_interval_ms: 200}
event_hooks:
  ingest_token: ${INGEST_TOKEN}
  allow_cidrs: [127.0.0.1/32]
  close_timeout_ms: 1000
  delivery: {timeout_ms: 5000, lease_ms: 10000, poll_interval_ms: 100, retry_schedule_ms: [100, 100, 100, 100, 100], jitter: none}
services: [{name: echo, url: "${upstream.url}"}]
routes: [{name: seeded, service: echo, paths: [/seeded]}]
`,
  );
  return file;
}

async function node(file: string) {
  const s = await startServer(file, dir);
  running.push(s.server);
  return s;
}

const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
  send(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });

async function recv(): Promise<Receiver> {
  const r = await receiver();
  closers.push(() => r.close());
  return r;
}

const publish = { v: 1, type: 'publish', source: 'orders', event: 'paid', fields: ['n'], unique: [], description: '', plugin: 'test' };
const emit = (n: number) => ({ v: 1, type: 'emit', source: 'orders', event: 'paid', data: { n }, plugin: 'test', time_ms: Date.now() });

/** Ingests events 0..n-1, alternating batches of 100 between the nodes' admin URLs; every batch stored. */
async function ingestAcross(admins: string[], n: number): Promise<void> {
  const auth = { authorization: `Bearer ${INGEST_TOKEN}` };
  for (const a of admins) expect((await post(`${a}/event-hooks/ingest`, [publish], auth)).status).toBe(200);
  for (let start = 0, i = 0; start < n; start += 100, i++) {
    const batch = Array.from({ length: Math.min(100, n - start) }, (_, k) => emit(start + k));
    const r = await post(`${admins[i % admins.length]}/event-hooks/ingest`, batch, auth);
    expect(r.status).toBe(200);
    expect(r.json()).toMatchObject({ stored: true, accepted: batch.length, deliveries: batch.length });
  }
}

/** The node's hookwire_event_hooks_deliveries_succeeded_total. */
function succeeded(metrics: string): number {
  const m = /^hookwire_event_hooks_deliveries_succeeded_total (\d+)$/m.exec(metrics);
  if (!m) throw new Error(`no deliveries_succeeded_total in /metrics:\n${metrics}`);
  return Number(m[1]);
}

/** A webhook hook on `orders/paid` created through `admin`, and seen by every other node. */
async function hookOn(admin: string, others: string[], url: string): Promise<string> {
  const r = await post(`${admin}/event-hooks`, { source: 'orders', event: 'paid', handler: 'webhook', config: { url } });
  expect(r.status).toBe(201);
  const id = (r.json() as { id: string }).id;
  for (const o of others) await waitUntil(async () => (await send(`${o}/event-hooks/${id}`)).status === 200, 10_000, 'the hook on every node');
  return id;
}

/** Generous: a loaded 2-core machine runs two gateways, PostgreSQL and the receiver (the bounds guard against hangs only). */
const LONG = { timeout: 300_000 };

describe('two hookwire nodes on one PostgreSQL', () => {
  it('a route created on node A serves on node B (reloaded on the change notification)', LONG, async () => {
    const file = await clusterConfig(await pgc.cluster.createDatabase('e2e'));
    const a = await node(file);
    const b = await node(file);
    expect((await send(`${b.proxy}/seeded`)).status).toBe(200);
    expect((await send(`${b.proxy}/fresh`)).status).toBe(404);
    const t0 = Date.now();
    expect((await post(`${a.admin}/routes`, { name: 'fresh', service: { name: 'echo' }, paths: ['/fresh'] })).status).toBe(201);
    await waitUntil(async () => (await send(`${b.proxy}/fresh`)).status === 200, 10_000, 'the route on node B');
    const ms = Date.now() - t0;
    console.log(`route created on node A served on node B after ${ms} ms`);
    // The issue asks for 1 s; the bound here only guards against a hang (timing on a shared CI machine varies).
    expect(ms).toBeLessThan(5000);
    // A delete on B stops it serving on A.
    expect((await send(`${b.admin}/routes/fresh`, { method: 'DELETE' })).status).toBe(204);
    await waitUntil(async () => (await send(`${a.proxy}/fresh`)).status === 404, 10_000, 'the route gone on node A');
    await b.server.waitFor((l) => l.msg === 'entities changed in the store (another node or worker): reloaded');
  });

  it(`${N} events with a webhook hook, accepted by both nodes: each webhook-id arrives exactly once`, LONG, async () => {
    const file = await clusterConfig(await pgc.cluster.createDatabase('e2e'));
    const a = await node(file);
    const b = await node(file);
    const r = await recv();
    await hookOn(a.admin, [b.admin], r.url);
    const t0 = Date.now();
    await ingestAcross([a.admin, b.admin], N);
    await r.waitFor(N, 120_000);
    const ms = Date.now() - t0;
    console.log(`${N} webhooks through two nodes in ${ms} ms (${Math.round((N * 1000) / ms)}/s, ingest included)`);
    await new Promise((res) => setTimeout(res, 500)); // a second send would come within the poll interval
    const ids = r.received.map((x) => x.headers['webhook-id']);
    expect(ids).toHaveLength(N);
    expect(new Set(ids).size).toBe(N);
    const ns = new Set(r.received.map((x) => (JSON.parse(x.body.toString()) as { n: number }).n));
    expect(ns.size).toBe(N);
    // Both nodes delivered, and their counts add up to N (none sent twice).
    const sent = await Promise.all([a, b].map(async (x) => succeeded((await send(`${x.admin}/metrics`)).text)));
    console.log(`delivered by node A: ${sent[0]}, by node B: ${sent[1]}`);
    expect(sent[0]! + sent[1]!).toBe(N);
    expect(Math.min(...sent)).toBeGreaterThan(0);
  });

  it(`kill -9 of node A halfway through ${N} events: none lost, a repeat only with the same webhook-id`, LONG, async () => {
    const file = await clusterConfig(await pgc.cluster.createDatabase('e2e'));
    const a = await node(file);
    const b = await node(file);
    // A receiver slow enough that node A holds leases when it dies.
    const r = await receiver((_, res) => void setTimeout(() => res.end('ok'), 2));
    closers.push(() => r.close());
    await hookOn(a.admin, [b.admin], r.url);
    await ingestAcross([a.admin, b.admin], N);
    await r.waitFor(Math.floor(N / 2), 120_000);
    a.server.child.kill('SIGKILL');
    await a.server.exited;
    await r.waitFor(N, 120_000).catch(() => undefined);
    // Wait for the distinct ids: repeats may make the raw count reach N early.
    await waitUntil(() => new Set(r.received.map((x) => x.headers['webhook-id'])).size >= N, 60_000, `${N} distinct webhook-ids`);
    const ids = r.received.map((x) => x.headers['webhook-id']!);
    const byId = new Map<string, Set<string>>();
    for (const x of r.received) {
      const id = x.headers['webhook-id']!;
      const bodies = byId.get(id) ?? new Set<string>();
      bodies.add(x.body.toString());
      byId.set(id, bodies);
    }
    // 0 lost: every event's delivery arrived; a repeat is the same delivery (same id, same body).
    const ns = new Set(r.received.map((x) => (JSON.parse(x.body.toString()) as { n: number }).n));
    expect(ns.size).toBe(N);
    expect(byId.size).toBe(N);
    expect([...byId.values()].every((bodies) => bodies.size === 1)).toBe(true);
    console.log(`kill -9 halfway: ${N} delivered, ${ids.length - N} repeated (same webhook-id)`);
  });
});

describe('the commands on PostgreSQL', () => {
  it('config export prints the shared entities; config import replaces them and running nodes serve them', LONG, async () => {
    const url = await pgc.cluster.createDatabase('e2e');
    const file = await clusterConfig(url);
    const a = await node(file);
    expect((await post(`${a.admin}/routes`, { name: 'live', service: { name: 'echo' }, paths: ['/live'] })).status).toBe(201);
    const exported = await runCli(['config', 'export', '-c', file, '--json'], dir);
    expect(exported.code).toBe(0);
    const doc = JSON.parse(exported.stdout) as { routes: { name: string }[] };
    expect(doc.routes.map((r) => r.name).sort()).toEqual(['live', 'seeded']);
    const other = join(dir, `import-${Date.now()}.yaml`);
    const text = (await readFile(file, 'utf8')).replace('paths: [/seeded]', 'paths: [/imported]');
    await writeFile(other, text);
    const imported = await runCli(['config', 'import', '-c', other], dir);
    expect(imported.code, imported.stderr).toBe(0);
    expect(imported.stdout).toContain('running nodes serve them within a moment');
    expect(imported.stdout).not.toContain('secret');
    await waitUntil(async () => (await send(`${a.proxy}/imported`)).status === 200, 10_000, 'the imported route on the running node');
    expect((await send(`${a.proxy}/live`)).status).toBe(404);
  });

  it('an unreachable database: start exits 1 with HW_ERR_POSTGRES_STORE, naming it without the password', LONG, async () => {
    const file = join(dir, 'unreachable.yaml');
    const port = pgc.cluster.port + 1;
    await writeFile(
      file,
      `admin: {listen: {address: 127.0.0.1, port: 0}}
proxy: {listen: [{address: 127.0.0.1, port: 0}]}
storage: {kind: postgres, url: "postgres://hw:s3cret@127.0.0.1:${port}/none", pool: {connect_timeout_ms: 2000}}
`,
    );
    const r = await runCli(['start', '-c', file], dir, 20_000);
    expect(r.code).toBe(1);
    const out = r.stdout + r.stderr;
    expect(out).toContain('HW_ERR_POSTGRES_STORE');
    expect(out).toContain(`127.0.0.1:${port}/none`);
    expect(out).not.toContain('s3cret');
  });
});
