/**
 * Proxy throughput, side by side in one run on loopback:
 *   bare          node:http + undici Pool (bench/bare-proxy.ts), the baseline
 *   hookwire      `hookwire start`, one route, no plugin
 *   hookwire+log  the same with log_level info (one access-log line per request, to /dev/null)
 *   hello-world   `hookwire start`, the route runs dist/hello-world.wasm
 * Every proxy runs in its own child process (so its CPU time is its own),
 * against one upstream child answering 200 "ok". Rounds are interleaved
 * (the variant order rotates), each variant gets `duration` seconds of
 * autocannon per round. Reported per variant: median requests/s, median
 * proxy CPU time per request (utime+stime of the proxy process from
 * /proc/<pid>/stat), and the median per-round ratio to the bare proxy.
 * With taskset available the proxy is pinned to CPU 0 and the upstream and
 * load generator to CPU 1, as in performance-anchors §2b.
 *
 *   npm run bench -- [--rounds 3] [--duration 3] [--connections 50] [--no-pin] [--json]
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir, cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const args = process.argv.slice(2);
const opt = (name: string, fallback: number) => (args.includes(`--${name}`) ? Number(args[args.indexOf(`--${name}`) + 1]) : fallback);
const ROUNDS = opt('rounds', 3);
const DURATION = opt('duration', 3);
const CONNECTIONS = opt('connections', 50);
const PIN = !args.includes('--no-pin') && cpus().length >= 2 && hasTaskset();
const JSON_OUT = args.includes('--json');

function hasTaskset(): boolean {
  try {
    execFileSync('taskset', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

/** utime + stime of a process, in microseconds (Linux /proc). */
function cpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state); utime is field 14, stime field 15.
  return ((Number(fields[11]) + Number(fields[12])) / CLK_TCK) * 1e6;
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function launch(cpu: number | null, argv: string[]): ChildProcess {
  const [cmd, rest] = cpu === null || !PIN ? [process.execPath, argv] : ['taskset', ['-c', String(cpu), process.execPath, ...argv]];
  return spawn(cmd as string, rest as string[], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
}

async function waitReady(port: number, path = '/'): Promise<void> {
  const end = Date.now() + 15_000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode === 200));
      });
      req.on('error', () => resolve(false));
      req.end();
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`nothing answered 200 on port ${port}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface Variant {
  readonly name: string;
  readonly port: number;
  child: ChildProcess;
}

async function autocannon(port: number, seconds: number): Promise<{ requests: number; rps: number; errors: number; non2xx: number; p50: number; p99: number }> {
  const bin = join(ROOT, 'node_modules', 'autocannon', 'autocannon.js');
  const argv = [bin, '-c', String(CONNECTIONS), '-d', String(seconds), '-j', `http://127.0.0.1:${port}/`];
  const [cmd, rest] = PIN ? ['taskset', ['-c', '1', process.execPath, ...argv]] : [process.execPath, argv];
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn(cmd as string, rest as string[], { cwd: ROOT, stdio: ['ignore', 'pipe', 'ignore'] });
    let text = '';
    child.stdout.on('data', (d) => (text += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), (seconds + 20) * 1000);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(text);
      else reject(new Error(`autocannon exited with ${code}`));
    });
  });
  const r = JSON.parse(out) as {
    requests: { total: number; average: number };
    errors: number;
    non2xx: number;
    latency: { p50: number; p99: number };
    duration: number;
  };
  return { requests: r.requests.total, rps: r.requests.total / r.duration, errors: r.errors, non2xx: r.non2xx, p50: r.latency.p50, p99: r.latency.p99 };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function main(): Promise<void> {
  for (const f of ['dist/host/cli/main.js', 'dist/bench/bare-proxy.js', 'dist/hello-world.wasm']) {
    if (!existsSync(join(ROOT, f))) throw new Error(`${f} is missing: run "npm run build" first`);
  }
  const tmp = mkdtempSync(join(tmpdir(), 'hookwire-bench-'));
  const children: ChildProcess[] = [];
  try {
    const upstreamPort = await freePort();
    const upstream = launch(1, ['dist/bench/upstream.js', String(upstreamPort)]);
    children.push(upstream);
    await waitReady(upstreamPort);
    const upstreamUrl = `http://127.0.0.1:${upstreamPort}`;

    const hookwire = async (name: string, logLevel: string, plugins: string): Promise<Variant> => {
      const port = await freePort();
      const adminPort = await freePort();
      const file = join(tmp, `${name}.yaml`);
      writeFileSync(
        file,
        `log_level: ${logLevel}
proxy: {listen: [{address: 127.0.0.1, port: ${port}}]}
admin: {listen: {address: 127.0.0.1, port: ${adminPort}}}
services: [{name: upstream, url: "${upstreamUrl}", pool_size: 50}]
routes:
  - name: all
    service: upstream
    plugins: ${plugins}
`,
      );
      const child = launch(0, ['bin/hookwire.js', 'start', '-c', file]);
      children.push(child);
      return { name, port, child };
    };

    const barePort = await freePort();
    const bare: Variant = { name: 'bare undici proxy', port: barePort, child: launch(0, ['dist/bench/bare-proxy.js', String(barePort), upstreamUrl]) };
    children.push(bare.child);
    const hello = JSON.stringify([{ name: 'hello', wasm: join(ROOT, 'dist/hello-world.wasm'), configuration: { header: 'x-hello', value: 'world' } }]);
    const variants: Variant[] = [
      bare,
      await hookwire('hookwire, no plugin', 'warn', '[]'),
      await hookwire('hookwire, no plugin, access log', 'info', '[]'),
      await hookwire('hookwire, hello-world', 'warn', hello),
    ];
    for (const v of variants) await waitReady(v.port);

    process.stderr.write(`pinning: ${PIN ? 'proxy on CPU 0, upstream and autocannon on CPU 1' : 'off'}; ${ROUNDS} rounds x ${DURATION} s x ${variants.length} variants, ${CONNECTIONS} connections\n`);
    for (const v of variants) await autocannon(v.port, 1); // warm-up (JIT, pools)

    const results = new Map<string, { rps: number[]; cpu: number[]; ratio: number[]; p50: number[]; p99: number[]; errors: number }>();
    for (const v of variants) results.set(v.name, { rps: [], cpu: [], ratio: [], p50: [], p99: [], errors: 0 });
    for (let round = 0; round < ROUNDS; round++) {
      const order = variants.map((_, i) => variants[(i + round) % variants.length]!);
      const roundRps = new Map<string, number>();
      for (const v of order) {
        const before = cpuMicros(v.child.pid!);
        const r = await autocannon(v.port, DURATION);
        const cpu = cpuMicros(v.child.pid!) - before;
        const res = results.get(v.name)!;
        res.rps.push(r.rps);
        res.cpu.push(cpu / Math.max(1, r.requests));
        res.p50.push(r.p50);
        res.p99.push(r.p99);
        res.errors += r.errors + r.non2xx;
        roundRps.set(v.name, r.rps);
        process.stderr.write(`round ${round + 1}: ${v.name.padEnd(34)} ${r.rps.toFixed(0).padStart(7)} req/s  ${(cpu / Math.max(1, r.requests)).toFixed(1).padStart(6)} us CPU/req\n`);
      }
      for (const v of variants) results.get(v.name)!.ratio.push(roundRps.get(v.name)! / roundRps.get(bare.name)!);
    }

    const rows = variants.map((v) => {
      const r = results.get(v.name)!;
      return {
        variant: v.name,
        rps: Math.round(median(r.rps)),
        rps_min: Math.round(Math.min(...r.rps)),
        rps_max: Math.round(Math.max(...r.rps)),
        cpu_us_per_req: Math.round(median(r.cpu) * 10) / 10,
        ratio_vs_bare: Math.round(median(r.ratio) * 1000) / 1000,
        cpu_ratio_vs_bare: 0,
        p50_ms: median(r.p50),
        p99_ms: median(r.p99),
        errors: r.errors,
      };
    });
    const bareCpu = rows[0]!.cpu_us_per_req;
    for (const row of rows) row.cpu_ratio_vs_bare = Math.round((row.cpu_us_per_req / bareCpu) * 1000) / 1000;
    if (JSON_OUT) {
      process.stdout.write(JSON.stringify({ rounds: ROUNDS, duration: DURATION, connections: CONNECTIONS, pinned: PIN, node: process.version, rows }, null, 2) + '\n');
    } else {
      const line = (cells: (string | number)[]) => `| ${cells.join(' | ')} |`;
      process.stdout.write(
        [
          line(['variant', 'req/s median (min-max)', 'ratio vs bare (req/s)', 'proxy CPU/req', 'CPU ratio vs bare', 'p50 / p99 ms', 'errors']),
          line(['---', '---', '---', '---', '---', '---', '---']),
          ...rows.map((r) =>
            line([r.variant, `${r.rps} (${r.rps_min}-${r.rps_max})`, r.ratio_vs_bare.toFixed(3), `${r.cpu_us_per_req} us`, r.cpu_ratio_vs_bare.toFixed(3), `${r.p50_ms} / ${r.p99_ms}`, r.errors]),
          ),
        ].join('\n') + '\n',
      );
    }
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    rmSync(tmp, { recursive: true, force: true });
  }
}

await main();
