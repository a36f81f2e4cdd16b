/**
 * Does one large ingest batch stall the proxy? (issue 10: a 300k-event batch
 * stalled proxied requests for 3.2 s.) Runs `hookwire start` in a child
 * process (an upstream answering 200, one route without plugin, event hooks
 * with an ingest token, the store in a temporary file, one webhook hook on the
 * ingested source so every event is stored with a delivery), keeps
 * `--connections` closed-loop clients sending proxied requests, posts one
 * batch of `--events` emit records to /event-hooks/ingest, and reports the
 * latency of the proxied requests made while the ingest was running (p50,
 * p99, max), the ingest's answer and its duration. The batch is posted by
 * curl (needs sh and curl on PATH), started before the measured window and
 * waiting for a line on stdin, so neither sending the batch nor forking this
 * process delays its clients; with --expose-gc the batch built here is
 * collected before the clients start. `--max-events N` sets event_hooks.ingest_max_events (default
 * 10000: a larger batch is refused with 413 after a short scan).
 *
 *   npm run build && tsc -p bench/tsconfig.json && node --expose-gc dist/bench/ingest-stall.js [--events 300000] [--connections 8] [--max-events 300000] [--cpu-prof <dir>]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const args = process.argv.slice(2);
const arg = (name: string, fallback: number) => (args.includes(`--${name}`) ? Number(args[args.indexOf(`--${name}`) + 1]) : fallback);
const EVENTS = arg('events', 300_000);
const CONNECTIONS = arg('connections', 8);
/** event_hooks.ingest_max_events (default: the configuration's, 10000: a larger batch gets 413). */
const MAX_EVENTS = args.includes('--max-events') ? arg('max-events', 10_000) : null;
const TOKEN = 'bench-ingest-token';
/** --cpu-prof <dir>: profile the gateway (node --cpu-prof; the profile is written when it exits). */
const CPU_PROF = args.includes('--cpu-prof') ? args[args.indexOf('--cpu-prof') + 1]! : null;

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'hookwire-ingest-bench-'));
  const sink = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
  const sinkUrl = `http://127.0.0.1:${(sink.address() as AddressInfo).port}`;
  const file = join(dir, 'hookwire.yaml');
  writeFileSync(
    file,
    `proxy: {listen: [{address: 127.0.0.1, port: 0}]}
admin: {listen: {address: 127.0.0.1, port: 0}}
log_level: info
event_hooks: {store: "${join(dir, 'hooks.db')}", ingest_token: ${TOKEN}, allow_cidrs: [127.0.0.1/32]${MAX_EVENTS !== null ? `, ingest_max_events: ${MAX_EVENTS}` : ''}}
services: [{name: up, url: "${sinkUrl}"}]
routes: [{name: r, service: up}]
`,
  );
  const profile = CPU_PROF === null ? [] : ['--cpu-prof', `--cpu-prof-dir=${CPU_PROF}`];
  const child = spawn(process.execPath, [...profile, join(root, 'bin', 'hookwire.js'), 'start', '-c', file], { stdio: ['ignore', 'pipe', 'inherit'] });
  const urls = await new Promise<{ proxy: string; admin: string }>((resolve, reject) => {
    let buf = '';
    const found: Record<string, string> = {};
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      for (const line of buf.split('\n')) {
        const m = /"url":"([^"]+)".*"msg":"(proxy|admin) listening/.exec(line);
        if (m) found[m[2]!] = m[1]!;
      }
      if (found.proxy && found.admin) resolve({ proxy: found.proxy, admin: found.admin });
    });
    child.on('exit', (code) => reject(new Error(`hookwire exited with ${code}`)));
  });
  child.stdout!.resume();
  const agent = new Agent({ connections: CONNECTIONS + 2 });
  const post = async (path: string, body: unknown, token?: string) => {
    const res = await request(urls.admin + path, {
      method: 'POST',
      body: typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body),
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      dispatcher: agent,
    });
    return { status: res.statusCode, text: await res.body.text() };
  };
  await post('/event-hooks/ingest', [{ v: 1, type: 'publish', source: 'bench', event: 'e', fields: ['i'], plugin: 'bench' }], TOKEN);
  const hook = await post('/event-hooks', { source: 'bench', event: 'e', handler: 'webhook', config: { url: sinkUrl + '/hook' } });
  if (hook.status !== 201) throw new Error(`creating the hook: ${hook.status} ${hook.text}`);

  const bodyFile = join(dir, 'batch.json');
  {
    // Built in a block: the records and the body (100+ MB of heap) are garbage before the clients start.
    const records = Array.from({ length: EVENTS }, (_, i) => ({ v: 1, type: 'emit', source: 'bench', event: 'e', data: { i, ip: '192.0.2.1' }, plugin: 'bench' }));
    const body = Buffer.from(JSON.stringify(records));
    writeFileSync(bodyFile, body);
    console.log(`batch: ${EVENTS} events, ${(body.length / 1e6).toFixed(1)} MB`);
  }
  (globalThis as { gc?: () => void }).gc?.();
  // curl is started now and waits for a line on stdin: forking this process inside the measured
  // window would pause its clients (the fork copies its page tables), not the gateway.
  const curl = spawn('sh', ['-c', 'read go; exec curl "$@"', 'sh', '-sS', '-o', '-', '-w', '\\n%{http_code}', '-H', 'content-type: application/json', '-H', `authorization: Bearer ${TOKEN}`, '--data-binary', `@${bodyFile}`, `${urls.admin}/event-hooks/ingest`]);
  let curlOut = '';
  curl.stdout.on('data', (d: Buffer) => (curlOut += d.toString()));
  const curlDone = new Promise<{ status: number; text: string }>((resolve, reject) => {
    curl.on('error', reject);
    curl.on('exit', () => {
      const nl = curlOut.lastIndexOf('\n');
      resolve({ status: Number(curlOut.slice(nl + 1)), text: curlOut.slice(0, nl) });
    });
  });

  // Closed-loop proxied traffic; latencies of requests started while the ingest runs.
  let ingesting = false;
  let stop = false;
  const during: number[] = [];
  const before: number[] = [];
  const clients = Array.from({ length: CONNECTIONS }, async () => {
    while (!stop) {
      const t0 = performance.now();
      const counted = ingesting;
      const res = await request(urls.proxy + '/x', { dispatcher: agent });
      await res.body.dump();
      (counted ? during : before).push(performance.now() - t0);
    }
  });
  await new Promise((r) => setTimeout(r, 1000));
  ingesting = true;
  const t0 = performance.now();
  // Posted by curl, a process of its own: sending 30 MB must not delay this process's clients.
  curl.stdin.end('go\n');
  const ingest = await curlDone;
  const ingestMs = performance.now() - t0;
  ingesting = false;
  stop = true;
  await Promise.all(clients);
  during.sort((a, b) => a - b);
  before.sort((a, b) => a - b);
  const summary = (l: number[]) => `n=${l.length} p50=${percentile(l, 50).toFixed(1)} ms p99=${percentile(l, 99).toFixed(1)} ms max=${(l.at(-1) ?? NaN).toFixed(1)} ms`;
  console.log(`ingest: ${ingest.status} in ${ingestMs.toFixed(0)} ms: ${ingest.text.slice(0, 200)}`);
  console.log(`proxied before the ingest: ${summary(before)}`);
  console.log(`proxied during the ingest: ${summary(during)}`);
  child.kill('SIGTERM');
  await new Promise((r) => child.on('exit', r));
  await agent.close();
  sink.close();
  rmSync(dir, { recursive: true, force: true });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
