/**
 * Proxy throughput, side by side in one run on loopback:
 *   bare            node:http + undici Pool (bench/bare-proxy.ts), the baseline
 *   none            `hookwire start`, one route, no plugin
 *   access-log      the same with log_level info (one access-log line per request, to /dev/null)
 *   hello           `hookwire start`, the route runs dist/hello-world.wasm
 *   empty           the route runs a filter that exports no stream callback
 *                   (build/fixtures/empty-filter.wasm): the filter chain's own cost
 *   http-log        the route runs dist/http-log.wasm; its collector is a loopback
 *                   sink (bench/upstream.ts --sink), batches of 100
 *   http-log-hooks  the same with event_hooks on; the host consumes the records
 *                   natively with a counting consumer (bench/hookwire-events.ts)
 *   none-binaryen   (only when named in --only) no plugin, with binaryen imported at
 *                   start, as the deadline guard leaves it in the heap: what a
 *                   larger heap alone costs per request
 *   http-log-service the same, consumed by hookwire's event-hooks service (as
 *                   `hookwire start` runs it by default: every event stored in
 *                   SQLite, no hook configured). The other hookwire variants
 *                   turn the service off (event_hooks.enabled: false).
 *   https           hookwire on a TLS listener, beside `bare https` (the bare
 *                   proxy on node:https); autocannon over https://
 *   h2              hookwire on a TLS listener with http2 (ALPN h2), beside
 *                   `bare h2` (a node:http2 server proxying with undici); load
 *                   from bench/h2-load.ts (autocannon has no HTTP/2), whose
 *                   own CPU time is reported apart from the proxy's.
 *                   Upstreams stay HTTP/1.1; the certificate is made with
 *                   openssl for the run. Compare each with its bare twin.
 *   workers         with --workers N (N >= 2): `hookwire start --workers N`, one route,
 *                   no plugin; not pinned (its workers may use every CPU, so they
 *                   share CPU 1 with the upstream and the load generator); its CPU
 *                   time is the primary's and every worker's.
 * Every proxy runs in its own child process (so its CPU time is its own),
 * against one upstream child answering 200 "ok". Rounds are interleaved
 * (the variant order rotates), each variant gets `duration` seconds of
 * autocannon per round. The primary figure is the proxy's CPU time per
 * request (utime+stime of the proxy process from /proc/<pid>/stat): on a
 * shared machine it moves far less than req/s, which depends on how much of
 * the core the proxy got. Reported per variant, each median with the min–max
 * over rounds beside it: CPU per request, the CPU it adds over hookwire
 * without plugin (the difference taken per round, then its median), the
 * per-round CPU ratio to no plugin, then req/s and its ratios (secondary),
 * and the filters' own cost per request: hookwire
 * runs with HOOKWIRE_MEASURE_WASM=1, which times every top-level guest call
 * (host calls included), read from /metrics (hookwire_wasm_call_seconds_total)
 * before and after each round. At the end, the entries the sinks received and
 * the events the host consumed are checked against the requests served.
 * With taskset available the proxy is pinned to CPU 0 and the upstream,
 * sinks and load generator to CPU 1, as in performance-anchors §2b.
 *
 * A/B of two host builds: `--ab <dir>` starts every hookwire variant a second
 * time from another checkout's build (`<dir>/bin/hookwire.js`, its dist/; the
 * same .wasm files), named with " [B]"; its "added over no plugin" is taken
 * against that build's own no-plugin variant, in the same round.
 *
 * Defaults: 7 rounds x 5 s, so with the 8 variants about 5 minutes
 * (7 x 8 x 5 s of load, plus warm-up, start-up and the final delivery check).
 *
 *   npm run bench -- [--rounds 7] [--duration 5] [--connections 50] [--only none,empty,http-log,...]
 *                    [--ab <dir>] [--cpu-prof <dir>] [--gc] [--no-measure] [--no-pin] [--json] [--workers N]
 *
 * --gc runs the hookwire variants with --trace-gc-nvp and adds what each
 * allocates and promotes (moves to the old generation) per request (V8's own
 * byte counts for each collection, which the machine's load hardly moves), its
 * GC pause time and its major collections.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, request } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir, cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const args = process.argv.slice(2);
const opt = (name: string, fallback: number) => (args.includes(`--${name}`) ? Number(args[args.indexOf(`--${name}`) + 1]) : fallback);
const ROUNDS = opt('rounds', 7);
const DURATION = opt('duration', 5);
const CONNECTIONS = opt('connections', 50);
const PIN = !args.includes('--no-pin') && cpus().length >= 2 && hasTaskset();
const JSON_OUT = args.includes('--json');
const MEASURE = !args.includes('--no-measure');
const ONLY = args.includes('--only') ? new Set(args[args.indexOf('--only') + 1]!.split(',')) : null;
const WORKERS = opt('workers', 1);
/** Run the hookwire variants with --trace-gc-nvp and report what they allocate, promote and collect per request (counts, unlike time). */
const GC = args.includes('--gc');
/** Profile each hookwire variant (node --cpu-prof) into <dir>/<id>/ (the CPU figures then include the profiler). */
const CPU_PROF = args.includes('--cpu-prof') ? args[args.indexOf('--cpu-prof') + 1]! : null;
/** Another checkout whose build runs every hookwire variant a second time (A/B of host changes). */
const AB_ROOT = args.includes('--ab') ? args[args.indexOf('--ab') + 1]! : null;

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

/** utime + stime of a process and its live descendants (the workers of `--workers`), in microseconds (Linux /proc). */
function cpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state); utime is field 14, stime field 15.
  let micros = ((Number(fields[11]) + Number(fields[12])) / CLK_TCK) * 1e6;
  let children: string[] = [];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(' ').filter(Boolean);
  } catch {
    // No children file (an older kernel): the process alone.
  }
  for (const child of children) {
    try {
      micros += cpuMicros(Number(child));
    } catch {
      // Exited meanwhile.
    }
  }
  return micros;
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function launch(cpu: number | null, argv: string[], env: Record<string, string> = {}, cwd = ROOT, gc: GcTrace | null = null): ChildProcess {
  const [cmd, rest] = cpu === null || !PIN ? [process.execPath, argv] : ['taskset', ['-c', String(cpu), process.execPath, ...argv]];
  const child = spawn(cmd as string, rest as string[], { cwd, stdio: ['ignore', gc === null ? 'ignore' : 'pipe', 'inherit'], env: { ...process.env, ...env } });
  if (gc !== null) {
    let rest = '';
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (d: string) => {
      const lines = (rest + d).split('\n');
      rest = lines.pop()!;
      for (const line of lines) gc.line(line);
    });
  }
  return child;
}

/**
 * A process's garbage collections, from its --trace-gc-nvp lines (one per
 * collection: "... pause=1.2 ... gc=s ... allocated=13000000 promoted=90000 ..."):
 * `allocated` is what the process allocated since the previous collection,
 * `promoted` what this one moved into the old generation (a scavenge: objects
 * that survived two; a Mark-Compact: everything alive in the young generation).
 * Promoted bytes are what brings the next major collection.
 */
class GcTrace {
  allocatedMb = 0;
  promotedMb = 0;
  minor = 0;
  major = 0;
  ms = 0;
  private static readonly KIND = / gc=(\w+)/;
  private static readonly PAUSE = / pause=([\d.]+)/;
  private static readonly ALLOCATED = / allocated=(\d+)/;
  private static readonly PROMOTED = / promoted=(\d+)/;

  line(text: string): void {
    const kind = GcTrace.KIND.exec(text)?.[1];
    if (kind === undefined) return;
    const num = (re: RegExp) => Number(re.exec(text)?.[1] ?? 0);
    this.allocatedMb += num(GcTrace.ALLOCATED) / 1048576;
    this.promotedMb += num(GcTrace.PROMOTED) / 1048576;
    this.ms += num(GcTrace.PAUSE);
    // s: scavenge, mmc: minor mark-compact; mc (and anything else): a full collection.
    if (kind === 's' || kind === 'mmc') this.minor++;
    else this.major++;
  }

  snapshot(): { allocatedMb: number; promotedMb: number; minor: number; major: number; ms: number } {
    return { allocatedMb: this.allocatedMb, promotedMb: this.promotedMb, minor: this.minor, major: this.major, ms: this.ms };
  }
}

async function getText(port: number, path: string): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => (res.statusCode === 200 ? resolve(text) : reject(new Error(`GET ${path} on ${port}: ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error(`GET ${path} on ${port} timed out`)));
    req.end();
  });
}

/** Values of unlabelled samples in a hookwire admin listener's /metrics (NaN when missing). */
async function metricValues(adminPort: number, names: string[]): Promise<number[]> {
  const lines = (await getText(adminPort, '/metrics')).split('\n');
  return names.map((n) => {
    const line = lines.find((l) => l.startsWith(`${n} `));
    return line === undefined ? Number.NaN : Number(line.slice(n.length + 1));
  });
}

/** Requests a hookwire proxy answered (hookwire_http_requests_total, every label). */
async function requestsServed(adminPort: number): Promise<number> {
  let n = 0;
  for (const line of (await getText(adminPort, '/metrics')).split('\n')) {
    if (line.startsWith('hookwire_http_requests_total{')) n += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return n;
}

/** Guest call time (s) and calls, summed over plugins, from a hookwire admin listener's /metrics. */
async function wasmTotals(adminPort: number): Promise<{ seconds: number; calls: number }> {
  const text = await getText(adminPort, '/metrics');
  let seconds = 0;
  let calls = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('hookwire_wasm_call_seconds_total{')) seconds += Number(line.slice(line.lastIndexOf(' ') + 1));
    else if (line.startsWith('hookwire_wasm_calls_total{')) calls += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return { seconds, calls };
}

/** Until `port` answers 200 (over TLS, trusting `ca`, when given). */
async function waitReady(port: number, path = '/', ca?: Buffer): Promise<void> {
  // Generous: on a loaded machine several proxies start (and instrument their modules) at once.
  const end = Date.now() + 90_000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const get = ca === undefined ? request : httpsRequest;
      const req = get({ host: '127.0.0.1', port, path, agent: false, ...(ca === undefined ? {} : { ca }) }, (res) => {
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
  readonly id: string;
  readonly name: string;
  readonly port: number;
  /** hookwire's admin listener (for /metrics), if any. */
  readonly adminPort: number | null;
  /** The http-log collector sink, if any. */
  readonly sinkPort: number | null;
  /** Counts events natively (GET /bench/events on the admin port). */
  readonly events: boolean;
  /** Runs hookwire's event-hooks service (the other hookwire variants turn it off). */
  readonly service: boolean;
  /** The build it runs: "" for this checkout, " [B]" for --ab's. */
  readonly build: string;
  /** Its collections (--gc). */
  readonly gc: GcTrace | null;
  child: ChildProcess;
  /** Requests autocannon completed against it, warm-up included. */
  served: number;
  /** How clients reach it: absent for plain HTTP/1.1, `https` (autocannon over TLS) or `h2` (bench/h2-load.ts). */
  readonly protocol?: 'https' | 'h2';
}

/** The variants' load generators: CPU time per request (us) of each run, by variant id, reported apart from the proxy's. */
const loadgenCpu = new Map<string, number[]>();
/** The TLS variants' certificate (made for the run); its own CA. */
let benchCert: { cert: string; key: string; pem: Buffer } | null = null;

/** A self-signed certificate for 127.0.0.1 in `dir` (Debian's openssl, as the tests make theirs). */
function makeCertificate(dir: string): { cert: string; key: string; pem: Buffer } {
  const cert = join(dir, 'bench.pem');
  const key = join(dir, 'bench.key');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert,
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-days', '2'], { stdio: ['ignore', 'ignore', 'pipe'] });
  return { cert, key, pem: readFileSync(cert) };
}

type LoadResult = { requests: number; rps: number; errors: number; non2xx: number; p50: number; p99: number };

/** One load run against `v` with the generator its protocol needs; its CPU per request goes to loadgenCpu. */
async function load(v: Variant, seconds: number): Promise<LoadResult> {
  const r = v.protocol === 'h2' ? await h2load(v.port, seconds) : await autocannon(v.port, seconds, v.protocol === 'https' ? 'https' : 'http');
  if (!loadgenCpu.has(v.id)) loadgenCpu.set(v.id, []);
  loadgenCpu.get(v.id)!.push(r.loadgenCpuUs / Math.max(1, r.requests));
  return r;
}

/** bench/h2-load.ts: `CONNECTIONS` streams in flight over 5 sessions, pinned where autocannon would be. */
async function h2load(port: number, seconds: number): Promise<LoadResult & { loadgenCpuUs: number }> {
  const argv = [join(ROOT, 'dist/bench/h2-load.js'), `https://127.0.0.1:${port}`, String(CONNECTIONS), String(seconds), benchCert!.cert, '5'];
  const [cmd, rest] = PIN ? ['taskset', ['-c', '1', process.execPath, ...argv]] : [process.execPath, argv];
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn(cmd as string, rest as string[], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    child.stdout.on('data', (d) => (text += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), (seconds + 20) * 1000);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(text);
      else reject(new Error(`h2-load exited with ${code}`));
    });
  });
  const r = JSON.parse(out) as { requests: { total: number }; duration: number; errors: number; non2xx: number; latency: { p50: number; p99: number }; cpu_us: number };
  return { requests: r.requests.total, rps: r.requests.total / r.duration, errors: r.errors, non2xx: r.non2xx, p50: r.latency.p50, p99: r.latency.p99, loadgenCpuUs: r.cpu_us };
}

async function autocannon(port: number, seconds: number, scheme: 'http' | 'https' = 'http'): Promise<LoadResult & { loadgenCpuUs: number }> {
  const bin = join(ROOT, 'node_modules', 'autocannon', 'autocannon.js');
  const argv = [bin, '-c', String(CONNECTIONS), '-d', String(seconds), '-j', `${scheme}://127.0.0.1:${port}/`];
  const [cmd, rest] = PIN ? ['taskset', ['-c', '1', process.execPath, ...argv]] : [process.execPath, argv];
  let loadgenCpuUs = 0;
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn(cmd as string, rest as string[], { cwd: ROOT, stdio: ['ignore', 'pipe', 'ignore'] });
    let text = '';
    child.stdout.on('data', (d) => {
      // autocannon writes its JSON once, at the end: its CPU time, read while it is still alive.
      if (text === '') loadgenCpuUs = cpuMicros(child.pid!);
      text += d;
    });
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
  return { requests: r.requests.total, rps: r.requests.total / r.duration, errors: r.errors, non2xx: r.non2xx, p50: r.latency.p50, p99: r.latency.p99, loadgenCpuUs };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function main(): Promise<void> {
  for (const f of ['dist/host/cli/main.js', 'dist/bench/bare-proxy.js', 'dist/bench/hookwire-events.js', 'dist/bench/h2-load.js', 'dist/hello-world.wasm', 'dist/http-log.wasm', 'build/fixtures/empty-filter.wasm']) {
    if (!existsSync(join(ROOT, f))) throw new Error(`${f} is missing: run "npm run build" first`);
  }
  const started = Date.now();
  const tmp = mkdtempSync(join(tmpdir(), 'hookwire-bench-'));
  const children: ChildProcess[] = [];
  try {
    const upstreamPort = await freePort();
    const upstream = launch(1, ['dist/bench/upstream.js', String(upstreamPort)]);
    children.push(upstream);
    await waitReady(upstreamPort);
    const upstreamUrl = `http://127.0.0.1:${upstreamPort}`;

    const hookwire = async (
      id: string,
      name: string,
      logLevel: string,
      plugins: string,
      opts: { sinkPort?: number; events?: boolean; service?: boolean; protocol?: 'https' | 'h2'; workers?: number; build?: string; nodeFlags?: string[] } = {},
    ): Promise<Variant> => {
      const build = opts.build ?? '';
      if (build !== '') {
        id += '@b';
        name += build;
      }
      const port = await freePort();
      const adminPort = await freePort();
      const file = join(tmp, `${id}.yaml`);
      const collector = opts.sinkPort === undefined ? '' : `\n  - {name: collector, url: "http://127.0.0.1:${opts.sinkPort}"}`;
      writeFileSync(
        file,
        `log_level: ${logLevel}
proxy: {listen: [{address: 127.0.0.1, port: ${port}${listenerTls(opts.protocol)}}]}
admin: {listen: {address: 127.0.0.1, port: ${adminPort}}}
storage: {kind: off}
${opts.service ? '' : 'event_hooks: {enabled: false}\n'}services:
  - {name: upstream, url: "${upstreamUrl}", pool_size: 50}${collector}
routes:
  - name: all
    service: upstream
    plugins: ${plugins}
`,
      );
      const env: Record<string, string> = MEASURE ? { HOOKWIRE_MEASURE_WASM: '1' } : {};
      const workers = opts.workers === undefined ? [] : ['--workers', String(opts.workers)];
      const argv = opts.events ? ['dist/bench/hookwire-events.js', file] : ['bin/hookwire.js', 'start', '-c', file, ...workers];
      if (CPU_PROF !== null) argv.unshift('--cpu-prof', `--cpu-prof-dir=${join(CPU_PROF, id)}`);
      if (opts.nodeFlags) argv.unshift(...opts.nodeFlags);
      if (GC) argv.unshift('--trace-gc-nvp');
      const gc = GC ? new GcTrace() : null;
      // Workers are not pinned: they may use every CPU.
      const child = launch(opts.workers === undefined ? 0 : null, argv, env, build === '' ? ROOT : AB_ROOT!, gc);
      children.push(child);
      return { id, name, port, adminPort, sinkPort: opts.sinkPort ?? null, events: opts.events ?? false, service: opts.service ?? false, build, gc, child, served: 0, protocol: opts.protocol };
    };
    const listenerTls = (protocol: 'https' | 'h2' | undefined) =>
      protocol === undefined ? '' : `, tls: {certificates: [{cert: "${benchCert!.cert}", key: "${benchCert!.key}"}]}${protocol === 'h2' ? ', http2: true' : ''}`;
    const bareTls = async (protocol: 'https' | 'h2'): Promise<Variant> => {
      const port = await freePort();
      const child = launch(0, ['dist/bench/bare-proxy.js', String(port), upstreamUrl, protocol, benchCert!.cert, benchCert!.key]);
      children.push(child);
      return { id: `bare-${protocol}`, name: `bare undici proxy, ${protocol}`, port, adminPort: null, sinkPort: null, events: false, service: false, build: '', gc: null, child, served: 0, protocol };
    };
    const sink = async (): Promise<number> => {
      const port = await freePort();
      children.push(launch(1, ['dist/bench/upstream.js', String(port), '--sink']));
      await waitReady(port, '/count');
      return port;
    };

    const barePort = await freePort();
    const bare: Variant = {
      id: 'bare',
      name: 'bare undici proxy',
      port: barePort,
      adminPort: null,
      sinkPort: null,
      events: false,
      service: false,
      build: '',
      gc: null,
      child: launch(0, ['dist/bench/bare-proxy.js', String(barePort), upstreamUrl]),
      served: 0,
    };
    children.push(bare.child);
    const hello = JSON.stringify([{ name: 'hello', wasm: join(ROOT, 'dist/hello-world.wasm'), configuration: { header: 'x-hello', value: 'world' } }]);
    const empty = JSON.stringify([{ name: 'empty', wasm: join(ROOT, 'build/fixtures/empty-filter.wasm') }]);
    const httpLog = (eventHooks: boolean) =>
      JSON.stringify([
        {
          name: 'http-log',
          wasm: join(ROOT, 'dist/http-log.wasm'),
          configuration: { http_endpoint: 'http://collector/logs', queue: { max_batch_size: 100, max_coalescing_delay: 1 }, event_hooks: eventHooks },
        },
      ]);
    const want = (id: string) => ONLY === null || ONLY.has(id);
    const variants: Variant[] = [bare];
    for (const build of AB_ROOT === null ? [''] : ['', ' [B]']) {
      if (want('none')) variants.push(await hookwire('none', 'hookwire, no plugin', 'warn', '[]', { build }));
      // Diagnostic, only when named in --only: no plugin, but binaryen loaded (as the deadline guard leaves it in the heap).
      if (ONLY?.has('none-binaryen')) variants.push(await hookwire('none-binaryen', 'hookwire, no plugin, binaryen loaded', 'warn', '[]', { build, nodeFlags: ['--import', 'binaryen'] }));
      if (want('access-log')) variants.push(await hookwire('access-log', 'hookwire, no plugin, access log', 'info', '[]', { build }));
      if (want('hello')) variants.push(await hookwire('hello', 'hookwire, hello-world', 'warn', hello, { build }));
      if (want('empty')) variants.push(await hookwire('empty', 'hookwire, empty filter', 'warn', empty, { build }));
      if (want('http-log')) variants.push(await hookwire('http-log', 'hookwire, http-log', 'warn', httpLog(false), { sinkPort: await sink(), build }));
      if (want('http-log-hooks')) {
        variants.push(
          await hookwire('http-log-hooks', 'hookwire, http-log + event hooks', 'warn', httpLog(true), { sinkPort: await sink(), events: true, build }),
        );
      }
      if (want('http-log-service')) {
        variants.push(
          await hookwire('http-log-service', 'hookwire, http-log + event hooks service', 'warn', httpLog(true), { sinkPort: await sink(), service: true, build }),
        );
      }
    }
    for (const protocol of ['https', 'h2'] as const) {
      if (!want(protocol)) continue;
      benchCert ??= makeCertificate(tmp);
      variants.push(await bareTls(protocol), await hookwire(protocol, `hookwire, no plugin, ${protocol}`, 'warn', '[]', { protocol }));
    }
    if (WORKERS > 1 && want('workers')) variants.push(await hookwire('workers', `hookwire, no plugin, ${WORKERS} workers`, 'warn', '[]', { workers: WORKERS }));
    /** The no-plugin variant of the same build, the base of "added over no plugin". */
    const noneOf = (v: Variant): Variant | null => variants.find((x) => (x.id === 'none' || x.id === 'none@b') && x.build === v.build) ?? null;
    const none = variants.find((v) => v.id === 'none') ?? null;
    for (const v of variants) await waitReady(v.port, '/', v.protocol === undefined ? undefined : benchCert!.pem);
    for (const v of variants.filter((x) => x.id === 'workers')) {
      // The port answers once worker 1 serves: wait for the others too.
      const end = Date.now() + 60_000;
      while ((JSON.parse(await getText(v.adminPort!, '/status')) as { workers: { running: number } }).workers.running < WORKERS) {
        if (Date.now() > end) throw new Error(`${v.name}: not every worker serves`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }

    const loadBefore = loadavg();
    process.stderr.write(
      `pinning: ${PIN ? 'proxy on CPU 0, upstream and autocannon on CPU 1' : 'off'}; ${ROUNDS} rounds x ${DURATION} s x ${variants.length} variants, ${CONNECTIONS} connections; load average ${loadBefore.map((x) => x.toFixed(2)).join(' ')}\n`,
    );
    for (const v of variants) v.served += (await load(v, 1)).requests; // warm-up (JIT, pools)

    interface Result {
      rps: number[];
      cpu: number[];
      ratio: number[];
      ratioNone: number[];
      cpuRatioNone: number[];
      /** CPU µs per request over the same build's no-plugin variant, per round. */
      cpuAdded: number[];
      /** --gc: KB allocated, GC µs (wall, from the trace) and major collections per 10,000 requests, per round. */
      allocKb: number[];
      promotedKb: number[];
      gcUs: number[];
      majorPer10k: number[];
      /** --gc: major collections and requests of each round (their sums give the rate over the whole run). */
      majors: number[];
      gcRequests: number[];
      wasm: number[];
      wasmCalls: number[];
      p50: number[];
      p99: number[];
      errors: number;
    }
    const results = new Map<string, Result>();
    for (const v of variants) results.set(v.name, { rps: [], cpu: [], ratio: [], ratioNone: [], cpuRatioNone: [], cpuAdded: [], allocKb: [], promotedKb: [], gcUs: [], majorPer10k: [], majors: [], gcRequests: [], wasm: [], wasmCalls: [], p50: [], p99: [], errors: 0 });
    const windows = new Map<string, { from: number; to: number; requests: number }[]>(variants.map((v) => [v.id, []]));
    for (let round = 0; round < ROUNDS; round++) {
      const order = variants.map((_, i) => variants[(i + round) % variants.length]!);
      const roundRps = new Map<string, number>();
      const roundCpu = new Map<string, number>();
      for (const v of order) {
        const wasmBefore = MEASURE && v.adminPort !== null ? await wasmTotals(v.adminPort) : null;
        const before = cpuMicros(v.child.pid!);
        const gcBefore = v.gc?.snapshot() ?? null;
        const t0 = process.hrtime.bigint();
        const r = await load(v, DURATION);
        const cpu = cpuMicros(v.child.pid!) - before;
        // The load windows (CLOCK_MONOTONIC µs, the clock of V8's profile timestamps) and what they served.
        if (CPU_PROF !== null) windows.get(v.id)!.push({ from: Number(t0 / 1000n), to: Number(process.hrtime.bigint() / 1000n), requests: r.requests });
        const wasmAfter = wasmBefore !== null ? await wasmTotals(v.adminPort!) : null;
        let gcText = '';
        if (gcBefore !== null) {
          await new Promise((r) => setTimeout(r, 50)); // the last trace lines of the window
          const g = v.gc!.snapshot();
          const res = results.get(v.name)!;
          const n = Math.max(1, r.requests);
          res.allocKb.push(((g.allocatedMb - gcBefore.allocatedMb) * 1024) / n);
          res.promotedKb.push(((g.promotedMb - gcBefore.promotedMb) * 1024) / n);
          res.gcUs.push(((g.ms - gcBefore.ms) * 1000) / n);
          res.majorPer10k.push(((g.major - gcBefore.major) * 10_000) / n);
          res.majors.push(g.major - gcBefore.major);
          res.gcRequests.push(n);
          gcText = `  ${res.allocKb.at(-1)!.toFixed(2)} KB allocated/req, ${res.promotedKb.at(-1)!.toFixed(3)} KB promoted/req, GC ${res.gcUs.at(-1)!.toFixed(1)} us/req`;
        }
        v.served += r.requests;
        const res = results.get(v.name)!;
        const n = Math.max(1, r.requests);
        res.rps.push(r.rps);
        res.cpu.push(cpu / n);
        res.p50.push(r.p50);
        res.p99.push(r.p99);
        res.errors += r.errors + r.non2xx;
        let wasmText = '';
        if (wasmBefore !== null && wasmAfter !== null && wasmAfter.calls > 0) {
          const us = ((wasmAfter.seconds - wasmBefore.seconds) * 1e6) / n;
          res.wasm.push(us);
          res.wasmCalls.push((wasmAfter.calls - wasmBefore.calls) / n);
          wasmText = `  ${us.toFixed(2).padStart(6)} us in wasm/req`;
        }
        roundRps.set(v.name, r.rps);
        roundCpu.set(v.name, cpu / n);
        process.stderr.write(`round ${round + 1}: ${v.name.padEnd(34)} ${r.rps.toFixed(0).padStart(7)} req/s  ${(cpu / n).toFixed(1).padStart(6)} us CPU/req${wasmText}${gcText}\n`);
      }
      for (const v of variants) {
        const res = results.get(v.name)!;
        res.ratio.push(roundRps.get(v.name)! / roundRps.get(bare.name)!);
        const base = v.id === 'bare' ? none : noneOf(v);
        if (base !== null) {
          res.ratioNone.push(roundRps.get(v.name)! / roundRps.get(base.name)!);
          res.cpuRatioNone.push(roundCpu.get(v.name)! / roundCpu.get(base.name)!);
          res.cpuAdded.push(roundCpu.get(v.name)! - roundCpu.get(base.name)!);
        }
      }
    }

    if (CPU_PROF !== null) {
      for (const v of variants) {
        if (v.adminPort === null) continue;
        mkdirSync(join(CPU_PROF, v.id), { recursive: true });
        writeFileSync(join(CPU_PROF, v.id, 'windows.json'), JSON.stringify(windows.get(v.id)));
      }
    }

    // Delivery: what the sinks received and the host consumed, against what was served.
    await new Promise((r) => setTimeout(r, 2500)); // the last batches (coalescing delay 1 s)
    const delivery = new Map<string, string>();
    for (const v of variants) {
      const parts: string[] = [];
      // Requests the proxy answered (autocannon does not count those in flight when it stops).
      if (v.adminPort !== null) v.served = await requestsServed(v.adminPort);
      if (v.sinkPort !== null) {
        const c = JSON.parse(await getText(v.sinkPort, '/count')) as { posts: number; entries: number; bytes: number };
        parts.push(`${c.entries}/${v.served} entries in ${c.posts} POSTs`);
      }
      if (v.service) {
        const m = await metricValues(v.adminPort!, ['hookwire_event_hooks_events_accepted_total', 'hookwire_event_hooks_records_published_total']);
        parts.push(`${m[0]}/${v.served} events accepted by the event-hooks service, ${m[1]} publish`);
      }
      if (v.events) {
        const e = JSON.parse(await getText(v.adminPort!, '/bench/events')) as { publish: number; emit: number };
        parts.push(`${e.emit}/${v.served} events, ${e.publish} publish`);
      }
      if (parts.length > 0) delivery.set(v.name, parts.join('; '));
    }

    const round3 = (x: number) => Math.round(x * 1000) / 1000;
    const rows = variants.map((v) => {
      const r = results.get(v.name)!;
      return {
        variant: v.name,
        rps: Math.round(median(r.rps)),
        rps_min: Math.round(Math.min(...r.rps)),
        rps_max: Math.round(Math.max(...r.rps)),
        cpu_us_per_req: Math.round(median(r.cpu) * 10) / 10,
        cpu_us_min: Math.round(Math.min(...r.cpu) * 10) / 10,
        cpu_us_max: Math.round(Math.max(...r.cpu) * 10) / 10,
        cpu_added_us: r.cpuAdded.length ? Math.round(median(r.cpuAdded) * 10) / 10 : null,
        cpu_added_us_min: r.cpuAdded.length ? Math.round(Math.min(...r.cpuAdded) * 10) / 10 : null,
        cpu_added_us_max: r.cpuAdded.length ? Math.round(Math.max(...r.cpuAdded) * 10) / 10 : null,
        cpu_ratio_vs_none_min: r.cpuRatioNone.length ? round3(Math.min(...r.cpuRatioNone)) : null,
        cpu_ratio_vs_none_max: r.cpuRatioNone.length ? round3(Math.max(...r.cpuRatioNone)) : null,
        ratio_vs_bare: round3(median(r.ratio)),
        cpu_ratio_vs_bare: 0,
        ratio_vs_none: r.ratioNone.length ? round3(median(r.ratioNone)) : null,
        ratio_vs_none_min: r.ratioNone.length ? round3(Math.min(...r.ratioNone)) : null,
        ratio_vs_none_max: r.ratioNone.length ? round3(Math.max(...r.ratioNone)) : null,
        cpu_ratio_vs_none: r.cpuRatioNone.length ? round3(median(r.cpuRatioNone)) : null,
        wasm_us_per_req: r.wasm.length ? Math.round(median(r.wasm) * 100) / 100 : null,
        wasm_us_per_req_min: r.wasm.length ? Math.round(Math.min(...r.wasm) * 100) / 100 : null,
        wasm_us_per_req_max: r.wasm.length ? Math.round(Math.max(...r.wasm) * 100) / 100 : null,
        wasm_calls_per_req: r.wasmCalls.length ? Math.round(median(r.wasmCalls) * 100) / 100 : null,
        alloc_kb_per_req: r.allocKb.length ? Math.round(median(r.allocKb) * 100) / 100 : null,
        alloc_kb_min: r.allocKb.length ? Math.round(Math.min(...r.allocKb) * 100) / 100 : null,
        alloc_kb_max: r.allocKb.length ? Math.round(Math.max(...r.allocKb) * 100) / 100 : null,
        promoted_kb_per_req: r.promotedKb.length ? Math.round(median(r.promotedKb) * 1000) / 1000 : null,
        promoted_kb_min: r.promotedKb.length ? Math.round(Math.min(...r.promotedKb) * 1000) / 1000 : null,
        promoted_kb_max: r.promotedKb.length ? Math.round(Math.max(...r.promotedKb) * 1000) / 1000 : null,
        gc_us_per_req: r.gcUs.length ? Math.round(median(r.gcUs) * 10) / 10 : null,
        major_gc_per_10k: r.majorPer10k.length ? Math.round(median(r.majorPer10k) * 100) / 100 : null,
        major_gcs: r.majors.reduce((a, b) => a + b, 0),
        major_gc_per_10k_all: r.gcRequests.length ? Math.round(((r.majors.reduce((a, b) => a + b, 0) * 10_000) / r.gcRequests.reduce((a, b) => a + b, 0)) * 100) / 100 : null,
        p50_ms: median(r.p50),
        p99_ms: median(r.p99),
        errors: r.errors,
        delivery: delivery.get(v.name) ?? null,
      };
    });
    const bareCpu = rows[0]!.cpu_us_per_req;
    for (const row of rows) row.cpu_ratio_vs_bare = round3(row.cpu_us_per_req / bareCpu);
    if (JSON_OUT) {
      process.stdout.write(
        JSON.stringify(
          { rounds: ROUNDS, duration: DURATION, connections: CONNECTIONS, pinned: PIN, ab: AB_ROOT, measured: MEASURE, node: process.version, load: { before: loadBefore, after: loadavg() }, rows },
          null,
          2,
        ) + '\n',
      );
    } else {
      const line = (cells: (string | number)[]) => `| ${cells.join(' | ')} |`;
      const range = (m: number | null, lo: number | null, hi: number | null, digits: number, unit = '') =>
        m === null ? '—' : `${m.toFixed(digits)}${unit} (${lo!.toFixed(digits)}–${hi!.toFixed(digits)})`;
      const signed = (x: number | null) => (x === null ? '—' : `${x >= 0 ? '+' : ''}${x.toFixed(1)}`);
      process.stdout.write(
        [
          line([
            'variant',
            'proxy CPU / request: median (min–max)',
            'added over no plugin: median (min–max)',
            'CPU vs no plugin',
            'in wasm / request: median (min–max; calls)',
            'req/s: median (min–max)',
            'req/s vs no plugin',
            'p50 / p99 ms',
            'errors',
          ]),
          line(['---', '---', '---', '---', '---', '---', '---', '---', '---']),
          ...rows.map((r) =>
            line([
              r.variant,
              range(r.cpu_us_per_req, r.cpu_us_min, r.cpu_us_max, 1, ' µs'),
              r.cpu_added_us === null ? '—' : `${signed(r.cpu_added_us)} µs (${signed(r.cpu_added_us_min)} to ${signed(r.cpu_added_us_max)})`,
              range(r.cpu_ratio_vs_none, r.cpu_ratio_vs_none_min, r.cpu_ratio_vs_none_max, 3),
              r.wasm_us_per_req === null ? '—' : `${r.wasm_us_per_req} µs (${r.wasm_us_per_req_min}–${r.wasm_us_per_req_max}; ${r.wasm_calls_per_req} calls)`,
              `${r.rps} (${r.rps_min}–${r.rps_max})`,
              range(r.ratio_vs_none, r.ratio_vs_none_min, r.ratio_vs_none_max, 3),
              `${r.p50_ms} / ${r.p99_ms}`,
              r.errors,
            ]),
          ),
        ].join('\n') + '\n',
      );
      if (GC) {
        process.stdout.write(
          '\n| variant | allocated / request: median (min–max) | promoted / request: median (min–max) | GC pause / request | major GCs per 10,000 requests (all rounds: count) |\n| --- | --- | --- | --- | --- |\n',
        );
        for (const r of rows) {
          if (r.alloc_kb_per_req === null) continue;
          process.stdout.write(
            `| ${r.variant} | ${r.alloc_kb_per_req} KB (${r.alloc_kb_min}–${r.alloc_kb_max}) | ${r.promoted_kb_per_req} KB (${r.promoted_kb_min}–${r.promoted_kb_max}) | ${r.gc_us_per_req} µs | ${r.major_gc_per_10k_all} (${r.major_gcs}) |\n`,
          );
        }
      }
      if (CPU_PROF !== null) for (const v of variants) if (v.adminPort !== null) process.stdout.write(`${v.id}: ${v.served} requests served, profile in ${join(CPU_PROF, v.id)}\n`);
      for (const r of rows) if (r.delivery !== null) process.stdout.write(`${r.variant}: ${r.delivery}\n`);
      protocolReport(variants, rows);
      process.stdout.write(
        `${ROUNDS} rounds x ${DURATION} s, ${Math.round((Date.now() - started) / 1000)} s in all; load average (1/5/15 min) before ${loadBefore.map((x) => x.toFixed(2)).join(' ')}, after ${loadavg().map((x) => x.toFixed(2)).join(' ')}\n`,
      );
    }
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
    // A profiled proxy writes its profile when it exits (after draining): wait for the exits.
    const exited = Promise.all(children.map((c) => (c.exitCode !== null || c.signalCode !== null ? null : new Promise((r) => c.once('exit', r)))));
    await Promise.race([exited, new Promise((r) => setTimeout(r, CPU_PROF === null ? 300 : 30_000))]);
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * The TLS and HTTP/2 variants against their bare twins (same protocol, same
 * load generator), and what the load generators took: on 2 cores the load
 * generator shares CPU 1 with the upstream, so its cost bounds the rates.
 */
function protocolReport(variants: readonly Variant[], rows: readonly { variant: string; rps: number; cpu_us_per_req: number }[]): void {
  const row = (id: string) => rows[variants.findIndex((v) => v.id === id)];
  for (const protocol of ['https', 'h2']) {
    const hw = row(protocol);
    const bare = row(`bare-${protocol}`);
    if (hw === undefined || bare === undefined) continue;
    process.stdout.write(
      `${protocol}: hookwire ${hw.rps} req/s, ${hw.cpu_us_per_req} us CPU/req; bare ${bare.rps} req/s, ${bare.cpu_us_per_req} us CPU/req; ` +
        `req/s ${(hw.rps / bare.rps).toFixed(3)}x, CPU/req ${(hw.cpu_us_per_req / bare.cpu_us_per_req).toFixed(3)}x of bare ${protocol}\n`,
    );
  }
  const gen = variants.map((v) => {
    const xs = loadgenCpu.get(v.id) ?? [];
    return `${v.id} ${xs.length > 1 ? median(xs.slice(1)).toFixed(1) : '—'} us`; // slice(1): without the warm-up run
  });
  process.stdout.write(`load generator CPU/req (autocannon; h2-load for h2 variants), median: ${gen.join(', ')}\n`);
}

await main();
