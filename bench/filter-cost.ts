/**
 * A filter's own cost per request, in one process, without sockets: the real
 * Runtime runs the module, and each request goes through what the data plane
 * does for a stream (an HTTP context, request and response header maps as
 * FilterStream builds them, the data plane's own property lookup, then
 * on_done / on_log / on_delete). What remains of a request in the gateway
 * (HTTP parsing, sockets, undici) is left out, so the figure is the filter's
 * share alone, and it moves less with the machine's load than the throughput
 * benchmark does.
 *
 *   npm run build && tsc -p bench/tsconfig.json
 *   node dist/bench/filter-cost.js [--rounds 11] [--requests 44000] [--event-hooks] [--guard on|off|both] [a.wasm,b.wasm,...]
 *
 * With several modules (e.g. two builds of the same plugin), each is loaded
 * in its own VM and the rounds alternate between them, so that the machine's
 * load hits all alike. The default modules are dist/http-log.wasm and the
 * empty filter (a module that exports no stream callback: the chain's floor).
 * Every module is configured as http-log (batches of 100 to an in-process
 * collector that answers 200); modules that ignore configuration do not mind.
 * Reported per module: the median and the minimum over rounds of the process
 * CPU time (user + system) per request, in µs.
 *
 * --guard: modules run with the deadline and memory guard (host/vm/instrument.ts,
 * "on", the default, as the gateway runs them), as compiled ("off"), or each
 * both ways in alternating rounds ("both": what the guard costs).
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const host = (path: string) => import(new URL(`../host/${path}`, import.meta.url).href);

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    rounds: { type: 'string', default: '11' },
    requests: { type: 'string', default: '44000' },
    'event-hooks': { type: 'boolean', default: false },
    guard: { type: 'string', default: 'on' },
  },
});
if (!['on', 'off', 'both'].includes(values.guard!)) throw new Error(`--guard: on, off or both, not ${values.guard}`);
const GUARDS: boolean[] = values.guard === 'both' ? [true, false] : [values.guard === 'on'];
const ROUNDS = Math.max(3, Number(values.rounds));
const REQUESTS = Math.max(ROUNDS * 100, Number(values.requests));
const EVENT_HOOKS = values['event-hooks'];
const MODULES = positionals.length > 0 ? positionals.join(',').split(',') : [join(ROOT, 'dist/http-log.wasm'), join(ROOT, 'build/fixtures/empty-filter.wasm')];

type HeaderMapClass = new (flat: string[]) => { flat: string[] };
interface HttpContext {
  requestHeaders: unknown;
  responseHeaders: unknown;
  onRequestHeaders(eos: boolean): number;
  onResponseHeaders(eos: boolean): number;
  complete(): void;
}
interface Plugin {
  newHttpContext(options: { properties: (key: string) => unknown }): HttpContext | string;
}

async function main(): Promise<void> {
  const { Runtime } = await host('vm/runtime.js');
  const { HeaderMap } = (await host('abi/header-map.js')) as { HeaderMap: HeaderMapClass };
  const { requestProperty } = await host('proxy/properties.js');

  let posts = 0;
  let events = 0;
  const makeRuntime = (guarded: boolean) => new Runtime({
    // null: modules run as compiled; undefined: the default limits (the guard on).
    ...(guarded ? {} : { limits: null }),
    logLevel: 'warn',
    defer: (fn: () => void) => queueMicrotask(fn),
    httpCalls: {
      hasUpstream: () => true,
      dispatch(_call: unknown, done: (r: unknown) => void) {
        posts++;
        queueMicrotask(() => done({ headers: new HeaderMap([':status', '200']), body: new Uint8Array(0) }));
      },
    },
  });
  const runtimes = GUARDS.map(makeRuntime);
  if (EVENT_HOOKS) for (const runtime of runtimes) runtime.queues.consume('hookwire_event_hooks', 'event_hooks', () => void events++);
  const configuration = JSON.stringify({
    http_endpoint: 'http://collector/logs',
    queue: { max_batch_size: 100, max_coalescing_delay: 1 },
    event_hooks: EVENT_HOOKS,
  });
  const plugins: Plugin[] = [];
  const labels: string[] = [];
  for (const [i, wasm] of MODULES.entries()) {
    for (const [g, runtime] of runtimes.entries()) {
      plugins.push(await runtime.loadPlugin({ name: `filter-${i}`, vmId: `filter-${i}`, wasm, configuration }));
      labels.push(`${wasm.replace(ROOT + '/', '')}${GUARDS.length > 1 ? (GUARDS[g] ? ' (guard on)' : ' (guard off)') : ''}`);
    }
  }

  // What a stream exposes to property lookups (host/proxy/properties.ts LiveRequest), for one route.
  const socket = { remoteAddress: '127.0.0.1', remotePort: 40000, localAddress: '127.0.0.1', localPort: 8000 };
  const entry = {
    resolved: {
      route: { id: 'a5f1c2d4-0000-4000-8000-000000000001', name: 'all' },
      service: { id: 'a5f1c2d4-0000-4000-8000-000000000002', name: 'upstream' },
      workspace: { id: 'a5f1c2d4-0000-4000-8000-000000000003', name: 'default' },
    },
  };
  const target = { address: '127.0.0.1:9000' };

  function oneRequest(plugin: Plugin, i: number): void {
    const requestId = `8c2f6a1e-${i}`;
    // As FilterStream builds it from autocannon's request.
    const requestHeaders = new HeaderMap([
      ':authority', '127.0.0.1:8000', ':path', '/', ':method', 'GET', ':scheme', 'http',
      'x-forwarded-for', '127.0.0.1', 'x-forwarded-proto', 'http', 'x-forwarded-host', '127.0.0.1:8000', 'x-request-id', requestId,
    ]);
    const stream = {
      req: { socket, httpVersion: '1.1' },
      entry,
      requestId,
      requestHeaders,
      responseHeaders: null as unknown,
      startWallNs: BigInt(Date.now()) * 1_000_000n,
      startMono: process.hrtime.bigint(),
      endMono: 0n,
      requestBodyBytes: 0,
      responseBodyBytes: 2,
      codeDetails: 'via_upstream',
      target,
      upstreamRequest: { path: '/' },
      upstreamStatus: 200,
      backendLatency: () => 1_000_000n,
    };
    const ctx = plugin.newHttpContext({ properties: (key) => requestProperty(stream, key) });
    if (typeof ctx === 'string') throw new Error(`the plugin refused the stream: ${ctx}`);
    ctx.requestHeaders = requestHeaders;
    ctx.onRequestHeaders(true);
    const responseHeaders = new HeaderMap([
      ':status', '200', 'content-length', '2', 'date', 'Sat, 28 Nov 2026 19:00:00 GMT', 'connection', 'keep-alive', 'keep-alive', 'timeout=5',
    ]);
    stream.responseHeaders = responseHeaders;
    ctx.responseHeaders = responseHeaders;
    ctx.onResponseHeaders(false);
    stream.endMono = process.hrtime.bigint();
    ctx.complete();
  }

  /** CPU µs per request over n requests; the event loop turns every 100 (http call answers, ticks). */
  async function round(plugin: Plugin, n: number): Promise<number> {
    const before = process.cpuUsage();
    for (let i = 0; i < n; i++) {
      oneRequest(plugin, i);
      if (i % 100 === 99) await new Promise<void>((resolve) => setImmediate(resolve));
    }
    const used = process.cpuUsage(before);
    return (used.user + used.system) / n;
  }

  for (const plugin of plugins) await round(plugin, 3000); // warm-up: the engine tiers the code up
  const results = plugins.map(() => [] as number[]);
  const perRound = Math.floor(REQUESTS / ROUNDS);
  // Every other round runs the modules in reverse order, so that no module always follows the same
  // one (and inherits its garbage to collect).
  for (let r = 0; r < ROUNDS; r++) {
    const order = [...plugins.keys()];
    if (r % 2 === 1) order.reverse();
    for (const i of order) results[i]!.push(await round(plugins[i]!, perRound));
  }

  const guardNote = GUARDS.length > 1 ? '' : GUARDS[0] ? ', guard on' : ', guard off';
  console.log(`${ROUNDS} rounds x ${perRound} requests per module${EVENT_HOOKS ? ', event hooks on' : ''}${guardNote}; CPU µs per request`);
  console.log('| module | median | min |');
  console.log('| --- | --- | --- |');
  // Per-round ratios before sorting: rounds alternate, so a pair shares the machine's load.
  const guardCost: string[] = [];
  if (GUARDS.length > 1) {
    for (const [m, wasm] of MODULES.entries()) {
      const on = results[m * 2]!;
      const off = results[m * 2 + 1]!;
      const ratios = on.map((x, r) => x / off[r]!).sort((a, b) => a - b);
      guardCost.push(`${wasm.replace(ROOT + '/', '')}: guard on/off, median of per-round ratios ${((ratios[ratios.length >> 1]! - 1) * 100).toFixed(1)} %`);
    }
  }
  for (const [i, label] of labels.entries()) {
    const xs = [...results[i]!].sort((a, b) => a - b);
    console.log(`| ${label} | ${xs[xs.length >> 1]!.toFixed(2)} | ${xs[0]!.toFixed(2)} |`);
  }
  console.log(`(${posts} batches posted${EVENT_HOOKS ? `, ${events} event records consumed` : ''})`);
  for (const line of guardCost) console.log(line);
  for (const runtime of runtimes) runtime.close();
}

await main();
