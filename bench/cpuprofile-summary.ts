/**
 * Self time of a V8 CPU profile (`node --cpu-prof`), summed per function and
 * per file, so two runs can be compared without a flame-graph viewer:
 *
 *   node dist/bench/cpuprofile-summary.js <file.cpuprofile> [--requests N] [--top 40] [--by file|function]
 *
 * A .cpuprofile is JSON: `nodes` (id, callFrame {functionName, url,
 * lineNumber}, children), `samples` (node ids) and `timeDeltas` (µs between
 * samples). A node's self time is the sum of the deltas of the samples that
 * landed on it. With --requests N, times are divided by N (µs per request).
 * A windows.json next to the profile (written by `proxy-throughput --cpu-prof`:
 * the load windows in CLOCK_MONOTONIC µs, V8's profile clock, and the requests
 * each served) restricts the sums to those windows (start-up, module
 * instrumentation and idle gaps left out) and gives the request count.
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
const file = args.find((a) => !a.startsWith('--') && !/^\d+$/.test(a) && a !== 'file' && a !== 'function');
if (file === undefined) throw new Error('usage: cpuprofile-summary <file.cpuprofile> [--requests N] [--top 40] [--by file|function]');
const opt = (name: string) => (args.includes(`--${name}`) ? args[args.indexOf(`--${name}`) + 1] : undefined);
const windowsFile = join(dirname(file), 'windows.json');
const windows = existsSync(windowsFile) ? (JSON.parse(readFileSync(windowsFile, 'utf8')) as { from: number; to: number; requests: number }[]) : null;
const requests = Number(opt('requests') ?? windows?.reduce((n, w) => n + w.requests, 0) ?? 0);
const top = Number(opt('top') ?? 40);
const by = opt('by') ?? 'function';

const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map<number, ProfileNode>();
for (const n of profile.nodes) byId.set(n.id, n);

/** Where a frame's code lives, short: node_modules/<pkg>/..., dist/host/..., node:internal... */
function shortUrl(url: string): string {
  if (url === '') return '(native)';
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) return url.slice(nm + 'node_modules/'.length);
  const dist = url.indexOf('/dist/');
  if (dist >= 0) return url.slice(dist + 1);
  return url.replace(/^file:\/\//, '');
}

const self = new Map<string, number>();
/** (idle), (program), (garbage collector): V8's pseudo-frames. */
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
  const key = by === 'file' ? shortUrl(f.url) : `${f.functionName || '(anonymous)'}  ${shortUrl(f.url)}:${f.lineNumber + 1}`;
  self.set(key, (self.get(key) ?? 0) + dt);
  total += dt;
}

const unit = requests > 0 ? 'µs/req' : 'ms';
const scale = (us: number) => (requests > 0 ? us / requests : us / 1000);
process.stdout.write(`${file}: ${(total / 1e6).toFixed(2)} s sampled${requests > 0 ? `, ${requests} requests` : ''}\n`);
for (const [k, v] of pseudo) process.stdout.write(`  ${k.padEnd(22)} ${scale(v).toFixed(2).padStart(9)} ${unit}\n`);
const busy = total - (pseudo.get('(idle)') ?? 0);
process.stdout.write(`  busy (not idle)        ${scale(busy).toFixed(2).padStart(9)} ${unit}\n\n`);
const rows = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, top);
for (const [k, v] of rows) process.stdout.write(`${scale(v).toFixed(2).padStart(9)} ${unit} ${((100 * v) / busy).toFixed(1).padStart(5)}%  ${k}\n`);
