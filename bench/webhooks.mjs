#!/usr/bin/env node
// Webhook delivery cost: hookwire's event-hooks service (signed with
// Standard Webhooks v1, durable in a SQLite file, SSRF-vetted, attempts
// recorded) next to a plain undici POST loop, against the same loopback
// receiver (a separate process), with the same connection count.
//
//   npm run build:host && node bench/webhooks.mjs [--rounds 7] [--seconds 2] [--connections 16] [--synchronous normal|full]
//     [--dist dist/host[,dist/old/host]]
//
// The primary figure is CPU time of this process per request (plain loop)
// and per delivery (hookwire end to end: ingest, outbox, signed request,
// outcome recorded), and their ratio, taken round by round: on a shared
// machine CPU per item moves far less than requests per second do, and a
// round's ratio compares two windows seconds apart. Each figure is the
// median over the rounds with the min–max beside it.
//
// The two are measured in alternating windows (plain, hookwire, plain, ...)
// so that load from elsewhere on the machine hits both alike. --dist takes
// one build of the host or several (comma-separated, e.g. the current one
// and an old one copied aside): their windows alternate with the plain
// loop's in the same run (the order flips every round), and each build's
// CPU per delivery is also given relative to the first build's in the same
// round, which is how a change is judged (docs/event-hooks.md §9).
// Bounded: about rounds × ((1 + builds) × seconds + drain) + 3 s.
import { fork } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const HERE = dirname(fileURLToPath(import.meta.url));

if (process.argv[2] === '--receiver') {
  // The receiver: answers every request 200 "ok" after reading the body.
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  server.keepAliveTimeout = 10_000;
  server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
  process.on('disconnect', () => process.exit(0));
} else {
  await main();
}

async function main() {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '2' },
      rounds: { type: 'string', default: '7' },
      connections: { type: 'string', default: '16' },
      synchronous: { type: 'string', default: 'normal' },
      only: { type: 'string', default: '' }, // "hooks": skip the plain loop (profiling)
      dist: { type: 'string', default: join(HERE, '..', 'dist', 'host') },
    },
  });
  const seconds = Number(values.seconds);
  const rounds = Number(values.rounds);
  const connections = Number(values.connections);
  const { pino } = await import('pino');
  const { Pool } = await import('undici');
  // Several builds (comma-separated) are measured in the same run, their windows alternating.
  const builds = [];
  for (const dist of values.dist.split(',')) {
    try {
      const mod = await import(pathToFileURL(join(resolve(dist), 'hooks', 'index.js')).href);
      builds.push({ dist, EventHooks: mod.EventHooks });
    } catch (err) {
      console.error(`${dist}/hooks is missing: run "npm run build:host" first.`, err.message);
      process.exit(1);
    }
  }

  const child = fork(fileURLToPath(import.meta.url), ['--receiver'], { stdio: 'inherit' });
  const port = await new Promise((r) => child.once('message', (m) => r(m.port)));
  const url = `http://127.0.0.1:${port}/hook`;
  const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
  const data = { consumer: 'c-42', ip: '203.0.113.7', service: 'billing', route: 'invoices', latency_ms: 12, status: 200 };
  const body = JSON.stringify({ ...data, event: 'log', source: 'http-log' });
  const emit = { v: 1, type: 'emit', source: 'http-log', event: 'log', data, plugin: 'bench' };
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const cpu = () => {
    const c = process.cpuUsage();
    return c.user + c.system;
  };
  const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    return s[Math.floor(s.length / 2)];
  };
  // Median and min–max over the rounds, rounded to `digits`.
  const spread = (xs, digits = 1) => {
    const r = (x) => Number(x.toFixed(digits));
    return { median: r(median(xs)), min: r(Math.min(...xs)), max: r(Math.max(...xs)) };
  };
  const fmt = (s, unit = '') => `${s.median}${unit} (${s.min}–${s.max})`;
  const dir = mkdtempSync(join(tmpdir(), 'hookwire-bench-'));
  const serviceOptions = (file) => ({
    database: join(dir, file),
    synchronous: values.synchronous,
    logger: pino({ level: 'warn' }),
    ssrf: { allowCidrs: ['127.0.0.1/32'] },
    delivery: { perOriginConcurrency: connections, maxInFlight: connections * 4 },
  });

  // ---- plain undici loop: the same body, the same connection count ----
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections, pipelining: 1 });
  async function plain(ms) {
    let n = 0;
    const end = Date.now() + ms;
    await Promise.all(
      Array.from({ length: connections }, async () => {
        while (Date.now() < end) {
          const res = await pool.request({ path: '/hook', method: 'POST', headers: { 'content-type': 'application/json' }, body });
          await res.body.text();
          if (res.statusCode === 200) n++;
        }
      }),
    );
    return n;
  }

  // ---- hookwire: ingest (durable) → outbox → signed webhook → attempt recorded ----
  for (const [i, b] of builds.entries()) {
    b.hooks = new b.EventHooks(serviceOptions(`bench-${i}.db`));
    await b.hooks.start();
    await b.hooks.createHook({ source: 'http-log', event: 'log', handler: 'webhook', config: { url, secret } });
    await b.hooks.ingest([{ v: 1, type: 'publish', source: 'http-log', event: 'log', fields: Object.keys(data), plugin: 'bench' }]);
    b.ingested = 0;
    b.results = [];
  }
  async function hooked(b, ms) {
    const succeeded = () => b.hooks.stats().deliveriesSucceeded;
    // A producer keeps a backlog in the outbox (each ingest call: one transaction of 200 events).
    // It looks every 5 ms (at most ~100 deliveries at these rates, the backlog stays over 900):
    // its polling is the benchmark's cost, not hookwire's.
    let producing = true;
    const producer = (async () => {
      while (producing) {
        if (b.ingested - succeeded() > 1000) {
          await sleep(5);
          continue;
        }
        b.ingested += (await b.hooks.ingest(Array.from({ length: 200 }, () => emit))).accepted;
      }
    })();
    await sleep(200);
    const s0 = succeeded();
    const c0 = cpu();
    const t0 = performance.now();
    await sleep(ms);
    const n = succeeded() - s0;
    const elapsed = performance.now() - t0;
    const used = cpu() - c0;
    producing = false;
    await producer;
    while (succeeded() < b.ingested) await sleep(5); // drain outside the window
    return { rate: n / (elapsed / 1000), cpuPer: used / n };
  }

  await plain(500);
  for (const b of builds) await hooked(b, 500);
  const plainResults = [];
  for (let r = 0; r < rounds; r++) {
    let p = { rate: NaN, cpuPer: NaN };
    if (values.only !== 'hooks') {
      const c0 = cpu();
      const t0 = performance.now();
      const n = await plain(seconds * 1000);
      p = { rate: n / ((performance.now() - t0) / 1000), cpuPer: (cpu() - c0) / n };
    }
    plainResults.push(p);
    let line = `round ${r + 1}: plain ${p.cpuPer.toFixed(1)} µs CPU/req (${Math.round(p.rate)} req/s)`;
    // Alternate the order of the builds from round to round.
    const order = r % 2 === 0 ? builds : [...builds].reverse();
    for (const b of order) {
      const h = await hooked(b, seconds * 1000);
      b.results.push({ hooks: h, ratio: h.rate / p.rate, cpuRatio: h.cpuPer / p.cpuPer });
      line += ` | ${builds.length > 1 ? `${b.dist} ` : 'hookwire '}${h.cpuPer.toFixed(1)} µs CPU/delivery, ${(h.cpuPer / p.cpuPer).toFixed(2)}x plain (${Math.round(h.rate)}/s)`;
    }
    if (builds.length > 1) {
      const first = builds[0].results[r].hooks.cpuPer;
      line += ` | CPU vs ${builds[0].dist}: ${builds.slice(1).map((b) => (b.results[r].hooks.cpuPer / first).toFixed(3)).join(', ')}`;
    }
    console.log(line);
  }
  await pool.close();
  for (const b of builds) {
    b.failed = b.hooks.stats().deliveriesFailed;
    await b.hooks.close({ timeoutMs: 5000 });
  }

  const plainMedian = median(plainResults.map((p) => p.rate));
  for (const [i, b] of builds.entries()) {
    // ---- delivery only: one instance accepts a backlog and closes; a fresh one drains it ----
    const DRAIN = Math.max(5000, Math.round(median(b.results.map((r) => r.hooks.rate)) * seconds));
    const filler = new b.EventHooks({ ...serviceOptions(`drain-${i}.db`), synchronous: 'normal' });
    await filler.createHook({ source: 'http-log', event: 'log', handler: 'webhook', config: { url, secret } });
    await filler.ingest([{ v: 1, type: 'publish', source: 'http-log', event: 'log', fields: [], plugin: 'bench' }]);
    for (let j = 0; j < DRAIN; j += 500) await filler.ingest(Array.from({ length: Math.min(500, DRAIN - j) }, () => emit));
    await filler.close();
    const drainer = new b.EventHooks(serviceOptions(`drain-${i}.db`));
    const c3 = cpu();
    const t3 = performance.now();
    await drainer.start();
    while (drainer.stats().deliveriesSucceeded < DRAIN) await sleep(2);
    const drainRate = DRAIN / ((performance.now() - t3) / 1000);
    const drainCpu = (cpu() - c3) / DRAIN;
    await drainer.close();

    // ---- accept only: durable ingestion, batches of 100, no delivery ----
    const hooks2 = new b.EventHooks({ database: join(dir, `accept-${i}.db`), synchronous: values.synchronous, logger: pino({ level: 'warn' }) });
    await hooks2.createHook({ source: 'http-log', event: 'log', handler: 'webhook', config: { url } });
    await hooks2.ingest([{ v: 1, type: 'publish', source: 'http-log', event: 'log', fields: [], plugin: 'bench' }]);
    let accepted = 0;
    const t2 = performance.now();
    const endAccept = Date.now() + Math.min(2000, seconds * 1000);
    while (Date.now() < endAccept) accepted += (await hooks2.ingest(Array.from({ length: 100 }, () => emit))).accepted;
    const acceptRate = accepted / ((performance.now() - t2) / 1000);
    await hooks2.close();

    const summary = {
      dist: b.dist,
      rounds,
      seconds_per_window: seconds,
      connections,
      synchronous: values.synchronous,
      load_average: loadavg().map((x) => Number(x.toFixed(2))),
      plain_cpu_us_per_req: spread(plainResults.map((p) => p.cpuPer)),
      hooks_cpu_us_per_delivery: spread(b.results.map((r) => r.hooks.cpuPer)),
      cpu_ratio: spread(b.results.map((r) => r.cpuRatio), 3),
      ...(i > 0 ? { cpu_vs_first_build: spread(b.results.map((r, k) => r.hooks.cpuPer / builds[0].results[k].hooks.cpuPer), 3) } : {}),
      plain_rps_median: Math.round(plainMedian),
      webhooks_per_s_median: Math.round(median(b.results.map((r) => r.hooks.rate))),
      ratio_median: Number(median(b.results.map((r) => r.ratio)).toFixed(3)),
      plain_cpu_us_per_req_median: Number(median(plainResults.map((p) => p.cpuPer)).toFixed(1)),
      hooks_cpu_us_per_delivery_median: Number(median(b.results.map((r) => r.hooks.cpuPer)).toFixed(1)),
      delivery_only_per_s: Math.round(drainRate),
      delivery_only_cpu_us: Number(drainCpu.toFixed(1)),
      delivery_only_ratio: Number((drainRate / plainMedian).toFixed(3)),
      accept_events_per_s: Math.round(acceptRate),
      failed_deliveries: b.failed,
      node: process.version,
    };
    console.log(
      `${b.dist}: CPU per delivery end to end (ingest + signed, durable delivery) ${fmt(summary.hooks_cpu_us_per_delivery, ' µs')}, plain ${fmt(summary.plain_cpu_us_per_req, ' µs')} per request: ${fmt(summary.cpu_ratio, 'x')} the plain loop's CPU (median (min–max) over ${rounds} rounds)` +
        (summary.cpu_vs_first_build ? `; ${fmt(summary.cpu_vs_first_build, 'x')} the CPU of ${builds[0].dist}` : ''),
    );
    console.log(
      `${b.dist}: throughput (medians): plain ${summary.plain_rps_median} req/s, hookwire ${summary.webhooks_per_s_median} webhooks/s, ratio ${summary.ratio_median}x`,
    );
    console.log(
      `${b.dist}: delivery only (a backlog of ${DRAIN} drained by a fresh instance): ${summary.delivery_only_per_s}/s (${summary.delivery_only_cpu_us} µs CPU each), ratio ${summary.delivery_only_ratio}x; accept only: ${summary.accept_events_per_s} events/s`,
    );
    console.log(JSON.stringify(summary));
  }

  child.disconnect();
  rmSync(dir, { recursive: true, force: true });
}
