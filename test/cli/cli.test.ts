import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, startServer as startCliServer } from '../helpers/cli.js';
import { send } from '../helpers/gateway.js';
import { fixture } from '../helpers/paths.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';

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

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runCli(args: string[], timeoutMs = 15_000): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`hookwire ${args.join(' ')} did not exit in ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function startServer(config: string): ReturnType<typeof startCliServer> {
  return startCliServer(dir, config);
}

const base = () => `proxy:
  listen: [{address: 127.0.0.1, port: 0}]
  drain_timeout_ms: 5000
admin:
  listen: {address: 127.0.0.1, port: 0}
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

  it('reloads the file on SIGHUP, and keeps serving when the new file is invalid', async () => {
    const { server, proxy, admin } = await startServer(`${base()}routes: [{name: one, service: echo, paths: [/one]}]\n`);
    try {
      expect((await send(proxy + '/one')).status).toBe(200);
      const file = server.child.spawnargs.at(-1)!;
      await writeFile(file, 'routes: [{name: broken, service: nowhere}]\n');
      server.child.kill('SIGHUP');
      await server.waitFor((l) => l.code === 'HW_ERR_RELOAD_FAILED');
      expect((await send(proxy + '/one')).status).toBe(200);

      await writeFile(file, `${base()}routes: [{name: two, service: echo, paths: [/two]}]\n`);
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
});
