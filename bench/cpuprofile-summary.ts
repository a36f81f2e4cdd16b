/**
 * Self time of a V8 CPU profile (`node --cpu-prof`), summed per function and
 * per file, so two runs can be compared without a flame-graph viewer:
 *
 *   node dist/bench/cpuprofile-summary.js <file.cpuprofile> [--requests N] [--top 40] [--by function|file|category]
 *                                          [--base <other.cpuprofile>]
 *
 * A .cpuprofile is JSON: `nodes` (id, callFrame {functionName, url,
 * lineNumber}, children), `samples` (node ids) and `timeDeltas` (µs between
 * samples). A node's self time is the sum of the deltas of the samples that
 * landed on it. With --requests N, times are divided by N (µs per request).
 * A windows.json next to the profile (written by `proxy-throughput --cpu-prof`:
 * the load windows in CLOCK_MONOTONIC µs, V8's profile clock, and the requests
 * each served) restricts the sums to those windows (start-up, module
 * instrumentation and idle gaps left out) and gives the request count.
 * With --base, each row is the difference to the other profile, both in µs
 * per request (each from its own windows.json): where a variant's extra
 * time per request goes, e.g. http-log against no plugin.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const args = process.argv.slice(2);
const opt = (name: string) => (args.includes(`--${name}`) ? args[args.indexOf(`--${name}`) + 1] : undefined);
const valued = new Set(['--requests', '--top', '--by', '--base']);
const file = args.find((a, i) => !a.startsWith('--') && !valued.has(args[i - 1] ?? ''));
if (file === undefined) throw new Error('usage: cpuprofile-summary <file.cpuprofile> [--requests N] [--top 40] [--by function|file|category] [--base <other.cpuprofile>]');
const top = Number(opt('top') ?? 40);
const by = opt('by') ?? 'function';

/** Where a frame's code lives, short: node_modules/<pkg>/..., dist/host/..., node:internal... */
function shortUrl(url: string): string {
  if (url === '') return '(native)';
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) return url.slice(nm + 'node_modules/'.length);
  const dist = url.indexOf('/dist/');
  if (dist >= 0) return url.slice(dist + 1);
  return url.replace(/^file:\/\//, '');
}

/** A coarse bucket for --by category: where a frame's time belongs in the data plane's accounting. */
function category(f: CallFrame): string {
  const url = f.url;
  if (url === '') {
    if (f.functionName.startsWith('(')) return f.functionName;
    return 'native (syscalls, buffer and string builtins)';
  }
  if (url.startsWith('wasm://')) {
    if (f.functionName.startsWith('js-to-wasm') || f.functionName.startsWith('wasm-to-js')) return 'wasm<->JS call wrappers';
    return 'wasm code (the filter; undici\'s llhttp parser)';
  }
  if (url.includes('/dist/host/abi/')) return 'host calls (host/abi)';
  if (url.includes('/dist/host/vm/')) return 'VM, contexts, properties (host/vm)';
  if (url.includes('/dist/host/proxy/stream.js')) return 'filter chain and streams (host/proxy/stream.ts)';
  if (url.includes('/dist/host/proxy/properties.js')) return 'request properties (host/proxy/properties.ts)';
  if (url.includes('/dist/host/proxy/')) return 'gateway, other (host/proxy)';
  if (url.includes('/dist/host/hooks/')) return 'event hooks (host/hooks)';
  if (url.includes('/dist/')) return 'hookwire, other';
  if (url.includes('node_modules/undici/')) return 'undici (upstream client)';
  if (url.includes('node_modules/pino')) return 'pino (logs)';
  if (url.includes('node_modules/')) return 'other dependencies';
  if (url.startsWith('node:')) return 'node core (http, streams, net, timers)';
  return url;
}

interface Summary {
  requests: number;
  /** Self time per key, µs. */
  self: Map<string, number>;
  /** (idle), (program), (garbage collector): V8's pseudo-frames, µs. */
  pseudo: Map<string, number>;
  total: number;
}

function summarize(path: string, requestsOpt: number | undefined): Summary {
  const windowsFile = join(dirname(path), 'windows.json');
  const windows = existsSync(windowsFile) ? (JSON.parse(readFileSync(windowsFile, 'utf8')) as { from: number; to: number; requests: number }[]) : null;
  const requests = requestsOpt ?? windows?.reduce((n, w) => n + w.requests, 0) ?? 0;
  const profile = JSON.parse(readFileSync(path, 'utf8')) as Profile;
  const byId = new Map<number, ProfileNode>();
  for (const n of profile.nodes) byId.set(n.id, n);
  const self = new Map<string, number>();
  const pseudo = new Map<string, number>();
  let total = 0;
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]!)!;
    const dt = profile.timeDeltas[i] ?? 0;
    t += dt;
    if (windows !== null && !windows.some((w) => t >= w.from && t <= w.to)) continue;
    const f = node.callFrame;
    if (f.url === '' && f.functionName.startsWith('(')) pseudo.set(f.functionName, (pseudo.get(f.functionName) ?? 0) + dt);
    const key = by === 'file' ? shortUrl(f.url) : by === 'category' ? category(f) : `${f.functionName || '(anonymous)'}  ${shortUrl(f.url)}:${f.lineNumber + 1}`;
    self.set(key, (self.get(key) ?? 0) + dt);
    total += dt;
  }
  return { requests, self, pseudo, total };
}

const main = summarize(file, opt('requests') === undefined ? undefined : Number(opt('requests')));
const basePath = opt('base');
const base = basePath === undefined ? null : summarize(basePath, undefined);
const perReq = main.requests > 0 && (base === null || base.requests > 0);
const unit = perReq ? 'µs/req' : 'ms';
/** A summary's time in the unit shown (per request when counts are known). */
const scale = (s: Summary, us: number) => (perReq ? us / s.requests : us / 1000);
const value = (map: 'self' | 'pseudo', key: string) => scale(main, main[map].get(key) ?? 0) - (base === null ? 0 : scale(base, base[map].get(key) ?? 0));
const busyOf = (s: Summary) => scale(s, s.total - (s.pseudo.get('(idle)') ?? 0));

process.stdout.write(`${file}: ${(main.total / 1e6).toFixed(2)} s sampled${main.requests > 0 ? `, ${main.requests} requests` : ''}\n`);
if (base !== null) process.stdout.write(`minus ${basePath}: ${(base.total / 1e6).toFixed(2)} s sampled, ${base.requests} requests\n`);
for (const k of new Set([...main.pseudo.keys(), ...(base?.pseudo.keys() ?? [])])) {
  process.stdout.write(`  ${k.padEnd(22)} ${value('pseudo', k).toFixed(2).padStart(9)} ${unit}\n`);
}
const busy = busyOf(main) - (base === null ? 0 : busyOf(base));
process.stdout.write(`  busy (not idle)        ${busy.toFixed(2).padStart(9)} ${unit}\n\n`);
const keys = new Set([...main.self.keys(), ...(base?.self.keys() ?? [])]);
keys.delete(by === 'file' ? '(native)' : by === 'category' ? '(idle)' : '(idle)  (native):0');
const rows = [...keys].map((k) => [k, value('self', k)] as const).sort((a, b) => Math.abs(b[1]) - Math.abs(a[1])).slice(0, top);
for (const [k, v] of rows) process.stdout.write(`${v.toFixed(2).padStart(9)} ${unit} ${((100 * v) / busy).toFixed(1).padStart(6)}%  ${k}\n`);
