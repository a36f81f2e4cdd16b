/**
 * `hookwire start --workers 2` on PostgreSQL: the workers follow the shared
 * database as nodes do (LISTEN/NOTIFY plus the poll), and the one event-hooks
 * service (worker 1) delivers what both workers' plugins emit.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BIN, Server, stopServers } from '../helpers/cli.js';
import { send } from '../helpers/gateway.js';
import { usePostgres } from '../helpers/postgres.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';
import { waitUntil } from '../hooks/helpers.js';
import { fresh, servedBy, urlsOf } from './helpers.js';

const pgc = usePostgres();
let dir: string;
let upstream: Upstream;
const running: Server[] = [];

beforeAll(async () => {
  upstream = await startUpstream();
  dir = await mkdtemp(join(tmpdir(), 'hookwire-workers-pg-'));
});
afterAll(async () => {
  await upstream?.close();
  await rm(dir, { recursive: true, force: true });
});
afterEach(async () => {
  await stopServers(running);
});

describe('hookwire start --workers 2 on PostgreSQL', () => {
  it('a route created through the Admin API serves on both workers; SIGTERM exits 0', { timeout: 120_000 }, async () => {
    const url = await pgc.cluster.createDatabase('workers');
    const file = join(dir, 'hookwire.yaml');
    await writeFile(
      file,
      `proxy: {listen: [{address: 127.0.0.1, port: 0}], drain_timeout_ms: 1000}
admin: {listen: {address: 127.0.0.1, port: 0}}
log_level: info
storage: {kind: postgres, url: "${url}", poll_interval_ms: 200}
services: [{name: echo, url: "${upstream.url}"}]
routes: [{name: seeded, service: echo, paths: [/seeded]}]
`,
    );
    const server = new Server(spawn(process.execPath, [BIN, 'start', '-c', file, '--workers', '2'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] }));
    running.push(server);
    const { proxy, admin } = await urlsOf(server);
    await server.waitFor((l) => l.msg === 'all 2 workers serving', 60_000);
    const from = server.lines.length;
    const r = await send(`${admin}/routes`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'live', service: { name: 'echo' }, paths: ['/live'] }),
    });
    expect(r.status).toBe(201);
    await server.waitFor((l) => l.worker === 2 && l.msg === 'entities changed in the store (another node or worker): reloaded', 30_000, from);
    for (let i = 0; i < 10; i++) expect((await fresh(`${proxy}/live`)).status).toBe(200);
    await waitUntil(() => servedBy(server, '/live', 200, from).size === 2, 30_000, 'access-log lines of both workers');
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
  });
});
