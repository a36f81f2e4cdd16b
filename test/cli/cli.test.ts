import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send } from '../helpers/gateway.js';
import { fixture, ROOT } from '../helpers/paths.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';
import { listening, runCli as runCliIn, Server, startServer as startServerFile } from '../helpers/cli.js';
import { rawRequest } from '../admin/raw.js';
let dir: string;
let upstream: Upstream;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hookwire-cli-'));
  upstream = await startUpstream();
});

afterAll(async () => {
  await upstream?.close();
  await rm(dir, { recursive: true, force: true });
});

/** A `hookwire start` of `config`: `node` (with `nodeArgs`, e.g. a preloaded module) or through `npm start`. */
async function startServer(config: string, nodeArgs: string[] | 'npm start' = []): Promise<{ server: Server; proxy: string; admin: string }> {
  const file = join(dir, `hookwire-${Math.random().toString(36).slice(2)}.yaml`);
  await writeFile(file, config);
  if (nodeArgs !== 'npm start') return startServerFile(file, dir, nodeArgs);
  // As a user runs it (the build its prestart does is skipped: the suite has built already).
  return listening(new Server(spawn('npm', ['start', '--silent', '--ignore-scripts', '--', '-c', file], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })));
}

const runCli = (args: string[], timeoutMs?: number) => runCliIn(args, dir, timeoutMs);

/** Entities in a store of their own per server (memory), unless a test says otherwise. */
const base = (storage = '{path: ":memory:"}') => `proxy:
  listen: [{address: 127.0.0.1, port: 0}]
  drain_timeout_ms: 5000
admin:
  listen: {address: 127.0.0.1, port: 0}
storage: ${storage}
services:
  - {name: echo, url: "${upstream.url}"}
`;

describe('hookwire validate', () => {
  it('prints ok and exits 0 for a valid file', async () => {
    const file = join(dir, 'ok.yaml');
    await writeFile(file, `${base()}routes: [{name: r, service: echo, plugins: [{name: p, wasm: "${fixture('proxy-filter')}"}]}]\n`);
    const r = await runCli(['validate', '-c', file]);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe('ok');
  });

  it('exits 1 with the ConfigError message, naming the file and the problem', async () => {
    const file = join(dir, 'bad.yaml');
    await writeFile(file, 'routes: [{name: r, service: missing}]\nbogus: 1\n');
    const r = await runCli(['validate', '-c', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(file);
    expect(r.stderr).toContain('/bogus');
    expect(r.stderr).toContain('missing');
  });

  it('exits 1 when the file does not exist', async () => {
    const r = await runCli(['validate', '-c', join(dir, 'absent.yaml')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('absent.yaml');
    expect(r.stderr).toContain('file not found');
  });

  it('exits 1 when a plugin .wasm is missing', async () => {
    const file = join(dir, 'nowasm.yaml');
    await writeFile(file, `${base()}routes: [{name: r, service: echo, plugins: [{name: p, wasm: ./nope.wasm}]}]\n`);
    const r = await runCli(['validate', '-c', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('nope.wasm');
  });

  it("configures every plugin: a configuration the plugin refuses fails with the plugin's own message at its place in the file", async () => {
    const file = join(dir, 'refused.yaml');
    const hello = join(ROOT, 'dist', 'hello-world.wasm');
    await writeFile(
      file,
      `${base()}routes:\n` +
        `  - {name: r, service: echo, plugins: [{name: fine, wasm: "${hello}"}]}\n` +
        `  - {name: r2, service: echo, plugins: [{name: ticks, wasm: "${hello}", configuration: {tick_ms: -5}}]}\n`,
    );
    const r = await runCli(['validate', '-c', file]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(file);
    expect(r.stderr).toContain('/routes/1/plugins/0: plugin ticks: proxy_on_configure returned false');
    expect(r.stderr).toContain('tick_ms must be >= 0');
    expect(r.stderr).not.toContain('plugin fine');
    // The same file is what `start` refuses.
    const started = await runCli(['start', '-c', file]);
    expect(started.code).toBe(1);
    expect(started.stderr).toContain('tick_ms must be >= 0');
  });

  it('refuses bad arguments with the usage text', async () => {
    const r = await runCli(['validate', '--what']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Usage: hookwire');
  });
});

describe('hookwire start', () => {
  it('exits 1 naming the file when the configuration is invalid', async () => {
    const file = join(dir, 'invalid.yaml');
    await writeFile(file, 'proxy: {listen: [{port: "eighty"}]}\n');
    const r = await runCli(['start', '-c', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(file);
    expect(r.stderr).toContain('/proxy/listen/0/port');
  });

  it('drains on SIGTERM: the slow request in flight completes and the process exits 0', async () => {
    const { server, proxy } = await startServer(`${base()}routes:
  - name: r
    service: echo
    plugins: [{name: logger, wasm: "${fixture('proxy-filter')}", configuration: {log: true, name: drain}}]
`);
    const slow = send(proxy + '/slow?ms=800');
    await server.waitFor(() => upstream.received.some((e) => e.url === '/slow?ms=800'));
    server.child.kill('SIGTERM');
    const r = await slow;
    expect(r.status).toBe(200);
    expect(await server.exited).toBe(0);
    // The filter's log phase ran for the drained request, and the gateway said it stopped.
    expect(server.lines.some((l) => typeof l.msg === 'string' && /^log drain status=200/.test(l.msg))).toBe(true);
    expect(server.lines.some((l) => l.msg === 'gateway stopped')).toBe(true);
  });

  it('npm start passes SIGTERM to the gateway: npm exits 0 and the ports are closed', async () => {
    const { server, admin } = await startServer(base(), 'npm start');
    expect((await send(admin + '/status')).status).toBe(200);
    server.child.kill('SIGTERM'); // the npm process, as a supervisor or a terminal would signal it
    expect(await server.exited).toBe(0);
    expect(server.lines.some((l) => l.msg === 'gateway stopped')).toBe(true);
    await expect(send(admin + '/status')).rejects.toThrow(/ECONNREFUSED/);
  });

  it('DB-less: reloads the file on SIGHUP, and keeps serving when the new file is invalid', async () => {
    const { server, proxy, admin } = await startServer(`${base('{kind: off}')}routes: [{name: one, service: echo, paths: [/one]}]\n`);
    try {
      expect((await send(proxy + '/one')).status).toBe(200);
      const file = server.child.spawnargs.at(-1)!;
      await writeFile(file, 'routes: [{name: broken, service: nowhere}]\n');
      server.child.kill('SIGHUP');
      await server.waitFor((l) => l.code === 'HW_ERR_RELOAD_FAILED');
      expect((await send(proxy + '/one')).status).toBe(200);

      await writeFile(file, `${base('{kind: off}')}routes: [{name: two, service: echo, paths: [/two]}]\n`);
      server.child.kill('SIGHUP');
      await server.waitFor((l) => l.msg === 'configuration reloaded');
      expect((await send(proxy + '/two')).status).toBe(200);
      expect((await send(proxy + '/one')).status).toBe(404);
      expect((await send(admin + '/status')).json().generation).toBeGreaterThan(1);
    } finally {
      server.child.kill('SIGTERM');
      expect(await server.exited).toBe(0);
    }
  });

  it('an unauthenticated request with the target `//` (or `http://[::1`) answers 400; the process keeps serving', async () => {
    const { server, admin } = await startServer(base().replace('admin:\n', 'admin:\n  token: cli-token\n'));
    try {
      for (const target of ['//', '//a:b@', 'http://[::1', 'http://x:99999/status']) {
        expect((await rawRequest(admin, target)).status, target).toBe(400);
      }
      expect((await send(admin + '/status', { headers: { authorization: 'Bearer cli-token' } })).status).toBe(200);
    } finally {
      server.child.kill('SIGTERM');
      expect(await server.exited).toBe(0);
    }
  });

  // A preloaded module that misbehaves on SIGUSR2 the way a bug would: a rejected promise nobody awaits,
  // or an exception thrown from a callback.
  const fault = (kind: 'reject' | 'throw') =>
    `--import=data:text/javascript,process.on('SIGUSR2',()=>{${kind === 'reject' ? "Promise.reject(new Error('hw-test-fault'))" : "throw new Error('hw-test-fault')"}})`;

  it('last resort: an unhandled rejection is logged and the process keeps serving', async () => {
    const { server, proxy } = await startServer(`${base()}routes: [{name: one, service: echo, paths: [/one]}]\n`, [fault('reject')]);
    try {
      server.child.kill('SIGUSR2');
      const line = await server.waitFor((l) => typeof l.msg === 'string' && l.msg.startsWith('unhandled promise rejection'));
      expect((line.err as { message: string }).message).toBe('hw-test-fault');
      expect((await send(proxy + '/one')).status).toBe(200);
    } finally {
      server.child.kill('SIGTERM');
      expect(await server.exited).toBe(0);
    }
  });

  it('last resort: an uncaught exception is logged, the requests in flight drain, and the process exits 1', async () => {
    const { server, proxy } = await startServer(`${base()}routes: [{name: one, service: echo, paths: [/slow]}]\n`, [fault('throw')]);
    const slow = send(proxy + '/slow?ms=600');
    await server.waitFor(() => upstream.received.some((e) => e.url === '/slow?ms=600'));
    server.child.kill('SIGUSR2');
    expect((await slow).status).toBe(200);
    expect(await server.exited).toBe(1);
    const line = server.lines.find((l) => typeof l.msg === 'string' && l.msg.startsWith('uncaught exception'));
    expect((line?.err as { message: string } | undefined)?.message).toBe('hw-test-fault');
  });
});
