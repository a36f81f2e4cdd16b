/**
 * `hookwire start --workers 2` through the real command: a primary and two
 * worker processes sharing the proxy listener, one SQLite entity store and
 * one event-hooks store. Each request goes over a new connection, so the
 * primary hands them round-robin and the access-log lines (which carry the
 * worker number) show who served what.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BIN, Server, stopServers } from '../helpers/cli.js';
import { send } from '../helpers/gateway.js';
import { fixture } from '../helpers/paths.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';
import { receiver, waitUntil } from '../hooks/helpers.js';
import { fresh, servedBy, urlsOf } from './helpers.js';

let dir: string;
let upstream: Upstream;
const running: Server[] = [];

beforeAll(async () => {
  upstream = await startUpstream();
  dir = await mkdtemp(join(tmpdir(), 'hookwire-workers-'));
});
afterAll(async () => {
  await upstream?.close();
  await rm(dir, { recursive: true, force: true });
});
afterEach(async () => {
  await stopServers(running);
});

/** Generous: three processes per node start and serve on a loaded 2-core machine (the bounds guard against hangs only). */
const LONG = { timeout: 120_000 };

/** `hookwire start --workers 2` on a new file in its own folder, once every worker serves. */
async function startNode(extra = '', args: string[] = ['--workers', '2'], proxyExtra = '') {
  const home = await mkdtemp(join(dir, 'node-'));
  const file = join(home, 'hookwire.yaml');
  await writeFile(
    file,
    `proxy: {listen: [{address: 127.0.0.1, port: 0}], drain_timeout_ms: 1000${proxyExtra}}
admin: {listen: {address: 127.0.0.1, port: 0}}
log_level: info
services: [{name: echo, url: "${upstream.url}"}]
routes: [{name: seeded, service: echo, paths: [/seeded]}]
${extra}`,
  );
  const server = new Server(spawn(process.execPath, [BIN, 'start', '-c', file, ...args], { cwd: home, stdio: ['ignore', 'pipe', 'pipe'] }));
  running.push(server);
  const urls = await urlsOf(server);
  const oneProcess = args.includes('--workers') && args[args.indexOf('--workers') + 1] === '1';
  if (!oneProcess) await server.waitFor((l) => typeof l.msg === 'string' && /^all \d+ workers serving$/.test(l.msg), 60_000);
  return { ...urls, file, home };
}

const pidAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

interface StatusWorker {
  worker: number;
  pid: number;
  role: string;
}

describe('hookwire start --workers 2', () => {
  it('both workers serve one listener; /status lists them; /metrics sums their requests; SIGTERM stops all with exit 0', LONG, async () => {
    const { server, proxy, admin } = await startNode();
    // Each worker's log is its own buffered stream: worker 2's line may come after the primary's "serving".
    await server.waitFor((l) => l.worker === 2 && typeof l.msg === 'string' && l.msg.startsWith('proxy listening'), 30_000);
    const listeners = server.lines.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('proxy listening'));
    expect(listeners.map((l) => l.worker).sort()).toEqual([1, 2]);
    expect(new Set(listeners.map((l) => l.url)).size).toBe(1); // one shared port

    for (let i = 0; i < 20; i++) expect((await fresh(`${proxy}/seeded`)).status).toBe(200);
    await waitUntil(() => servedBy(server, '/seeded', 200).size === 2, 30_000, 'requests served by both workers');

    const status = (await send(`${admin}/status`)).json() as { workers: { configured: number; running: number; list: StatusWorker[] } };
    expect(status.workers.configured).toBe(2);
    expect(status.workers.running).toBe(2);
    expect(status.workers.list.map((w) => [w.worker, w.role])).toEqual([
      [1, 'control'],
      [2, 'data'],
    ]);
    const pids = status.workers.list.map((w) => w.pid);
    expect(new Set([...pids, server.child.pid]).size).toBe(3);

    // Summed across workers: exactly the 20 requests, though each worker counted only its share.
    const metrics = (await send(`${admin}/metrics`)).text;
    expect(metrics).toMatch(/^hookwire_http_requests_total\{route="seeded",service="echo",workspace="default",status="200"\} 20$/m);
    expect(metrics).toMatch(/^hookwire_http_request_duration_seconds_count\{route="seeded",service="echo",workspace="default"\} 20$/m);
    expect(metrics).toMatch(/^hookwire_workers 2$/m);
    // Gauges: one series per worker.
    expect(metrics).toMatch(/^hookwire_inflight_requests\{worker="1"\} \d+$/m);
    expect(metrics).toMatch(/^hookwire_inflight_requests\{worker="2"\} \d+$/m);
    expect(metrics.match(/^# TYPE hookwire_http_requests_total counter$/gm)).toHaveLength(1);

    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    const stopped = server.lines.filter((l) => typeof l.msg === 'string' && /^worker \d stopped$/.test(l.msg));
    expect(stopped.map((l) => [l.worker, l.code]).sort()).toEqual([
      [1, 0],
      [2, 0],
    ]);
    for (const pid of pids) expect(pidAlive(pid)).toBe(false);
  });

  it('a route created through the Admin API serves on every worker (SQLite store watch)', LONG, async () => {
    const { server, proxy, admin } = await startNode();
    const from = server.lines.length;
    const r = await send(`${admin}/routes`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'live', service: { name: 'echo' }, paths: ['/live'] }),
    });
    expect(r.status).toBe(201);
    const createdAt = Date.now();
    // Worker 2 did not handle the write: it learns of it from the store.
    const reloaded = await server.waitFor((l) => l.worker === 2 && l.msg === 'entities changed in the store (another node or worker): reloaded', 30_000, from);
    const latencyMs = Date.parse(reloaded.time as string) - createdAt;
    console.log(`route created on worker 1 served by worker 2 after ~${latencyMs} ms`);
    for (let i = 0; i < 10; i++) expect((await fresh(`${proxy}/live`)).status).toBe(200);
    // Access-log lines reach this process through the workers' stdout, some after the responses.
    await waitUntil(() => servedBy(server, '/live', 200, from).size === 2, 30_000, 'access-log lines of both workers');
  });

  it('a worker killed -9 is forked again; serving continues on the other meanwhile', LONG, async () => {
    const { server, proxy, admin } = await startNode();
    const before = ((await send(`${admin}/status`)).json() as { workers: { list: StatusWorker[] } }).workers.list;
    const victim = before.find((w) => w.worker === 2)!;
    const from = server.lines.length;
    process.kill(victim.pid, 'SIGKILL');
    await server.waitFor((l) => l.msg === 'worker 2 died: forking it again', 30_000, from);
    // Worker 1 takes every new connection until worker 2 is back.
    for (let i = 0; i < 10; i++) expect((await fresh(`${proxy}/seeded`)).status).toBe(200);
    const back = await server.waitFor((l) => l.msg === 'worker 2 serving', 60_000, from);
    expect(back.worker_pid).not.toBe(victim.pid);
    const served = server.lines.length;
    for (let i = 0; i < 20; i++) expect((await fresh(`${proxy}/seeded`)).status).toBe(200);
    await waitUntil(() => servedBy(server, '/seeded', 200, served).size === 2, 30_000, 'both workers serving again');
    const after = ((await send(`${admin}/status`)).json() as { workers: { running: number; list: StatusWorker[] } }).workers;
    expect(after.running).toBe(2);
    expect(after.list.find((w) => w.worker === 2)!.pid).toBe(back.worker_pid);
  });

  it('worker 1 (Admin API, event hooks) killed -9 is forked again: the proxy serves on meanwhile, the Admin API comes back and writes serve everywhere', LONG, async () => {
    const { server, proxy, admin } = await startNode();
    const control = ((await send(`${admin}/status`)).json() as { workers: { list: StatusWorker[] } }).workers.list.find((w) => w.worker === 1)!;
    const from = server.lines.length;
    process.kill(control.pid, 'SIGKILL');
    await server.waitFor((l) => l.msg === 'worker 1 died: forking it again', 30_000, from);
    // Worker 2 serves the proxy while worker 1 is away.
    for (let i = 0; i < 10; i++) expect((await fresh(`${proxy}/seeded`)).status).toBe(200);
    const back = await server.waitFor((l) => l.msg === 'worker 1 serving', 60_000, from);
    expect(back.worker_pid).not.toBe(control.pid);
    // The admin listener had port 0: the new worker 1 logs where it listens now.
    const again = (await server.waitFor((l) => typeof l.msg === 'string' && l.msg.startsWith('admin listening'), 60_000, from)).url as string;
    const status = (await send(`${again}/status`)).json() as { workers: { running: number } };
    expect(status.workers.running).toBe(2);
    const created = await send(`${again}/routes`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'after-restart', service: 'echo', paths: ['/after-restart'] }),
    });
    expect(created.status).toBe(201);
    const served = server.lines.length;
    await waitUntil(
      async () => {
        for (let i = 0; i < 6; i++) await fresh(`${proxy}/after-restart`);
        return servedBy(server, '/after-restart', 200, served).size === 2;
      },
      30_000,
      'the route created after the restart serves on both workers',
    );
  });

  it('SIGHUP reaches every worker', LONG, async () => {
    const { server } = await startNode();
    const from = server.lines.length;
    server.child.kill('SIGHUP');
    await waitUntil(() => {
      const workers = new Set(server.lines.slice(from).filter((l) => l.msg === 'configuration reloaded').map((l) => l.worker));
      return workers.has(1) && workers.has(2);
    }, 30_000, 'both workers reloaded');
  });

  it('webhooks of events emitted on both workers are delivered exactly once (one event-hooks service, SQLite)', LONG, async () => {
    const hook = await receiver();
    try {
      const emitter = JSON.stringify({ publish: [{ source: 'orders', event: 'paid', fields: ['n'], unique: [], description: 'paid' }] });
      const { server, proxy, admin } = await startNode(`event_hooks:
  allow_cidrs: [127.0.0.1/32]
  close_timeout_ms: 1000
  delivery: {poll_interval_ms: 100, retry_schedule_ms: [100, 100, 100], jitter: none}
plugins: [{name: emitter, wasm: "${fixture('eh-emitter')}", configuration: ${emitter}}]
`);
      const created = await send(`${admin}/event-hooks`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ source: 'orders', event: 'paid', handler: 'webhook', config: { url: hook.url } }),
      });
      expect(created.status).toBe(201);
      const N = 200;
      const from = server.lines.length;
      for (let i = 0; i < N; i++) {
        const r = await fresh(`${proxy}/seeded`, JSON.stringify({ source: 'orders', event: 'paid', data: { n: i } }));
        expect(r.status).toBe(200);
      }
      // Access-log lines reach this process through the workers' stdout, some after the responses.
      await waitUntil(() => servedBy(server, '/seeded', 200, from).size === 2, 30_000, 'access-log lines of both workers');
      await hook.waitFor(N, 60_000);
      // Anything sent twice would arrive within a few poll intervals more.
      await new Promise((r) => setTimeout(r, 1000));
      const ids = hook.received.map((r) => r.headers['webhook-id']);
      // A webhook's body is the event's data (Kong's event hooks).
      const ns = hook.received.map((r) => (JSON.parse(r.body.toString()) as { n: number }).n).sort((a, b) => a - b);
      expect(hook.received).toHaveLength(N);
      expect(new Set(ids).size).toBe(N);
      expect(ns).toEqual(Array.from({ length: N }, (_, i) => i));
    } finally {
      await hook.close();
    }
  });

  it('DB-less: POST /config on worker 1 serves on every worker', LONG, async () => {
    const { server, proxy, admin } = await startNode('storage: {kind: off}\n');
    const from = server.lines.length;
    const r = await send(`${admin}/config`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ services: [{ name: 'echo', url: upstream.url }], routes: [{ name: 'posted', service: 'echo', paths: ['/posted'] }] }),
    });
    expect(r.status).toBe(201);
    await server.waitFor((l) => l.worker === 2 && l.msg === 'configuration reloaded', 30_000, from);
    for (let i = 0; i < 10; i++) expect((await fresh(`${proxy}/posted`)).status).toBe(200);
    // Access-log lines reach this process through the workers' stdout, some after the responses.
    await waitUntil(() => servedBy(server, '/posted', 200, from).size === 2, 30_000, 'access-log lines of both workers');
    expect((await fresh(`${proxy}/seeded`)).status).toBe(404);
  });

  it('proxy.workers starts the workers without the flag; --workers 1 wins over it (one process, as before)', LONG, async () => {
    const configured = await startNode('', [], ', workers: 2');
    expect(configured.server.lines.some((l) => l.msg === 'all 2 workers serving')).toBe(true);
    configured.server.child.kill('SIGTERM');
    expect(await configured.server.exited).toBe(0);

    const single = await startNode('', ['--workers', '1'], ', workers: 2');
    expect((await send(`${single.proxy}/seeded`)).status).toBe(200);
    const status = (await send(`${single.admin}/status`)).json() as Record<string, unknown>;
    expect(status).not.toHaveProperty('workers');
    expect(single.server.lines.some((l) => 'worker' in l)).toBe(false);
  });

  it('refuses an in-memory entity store, and a bad --workers value', LONG, async () => {
    const home = await mkdtemp(join(dir, 'bad-'));
    const file = join(home, 'hookwire.yaml');
    await writeFile(file, 'storage: {path: ":memory:"}\n');
    const { runCli } = await import('../helpers/cli.js');
    const mem = await runCli(['start', '-c', file, '--workers', '2'], home, 60_000);
    expect(mem.code).toBe(1);
    expect(mem.stderr).toContain('storage.path ":memory:" would give every worker its own entities');
    const bad = await runCli(['start', '-c', file, '--workers', 'many'], home, 60_000);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--workers needs a number of processes from 1 to 1024, or auto (one per core); found "many"');
    const notStart = await runCli(['validate', '-c', file, '--workers', '2'], home, 60_000);
    expect(notStart.code).toBe(2);
    expect(notStart.stderr).toContain('--workers is an option of start');
  });
});
