#!/usr/bin/env node
// Webhook delivery throughput on PostgreSQL (storage.kind postgres): signed,
// durable webhooks per second end to end (ingest → outbox in PostgreSQL →
// signed webhook → attempt recorded) with one node and with two nodes (each
// a separate process with its own event-hooks service, sharing the
// database), against one loopback receiver process. The SQLite figure is
// bench/webhooks.mjs's.
//
//   npm run build:host && node bench/webhooks-pg.mjs --url postgres://user@127.0.0.1:5432/db
//     [--rounds 3] [--seconds 3] [--connections 16] [--nodes 1,2]
//
// The database must be one the benchmark may fill and empty: its event-hooks
// tables are truncated before every window. Windows alternate between the
// node counts (1, 2, 1, 2, ...) so load from elsewhere hits both alike;
// the summary gives medians. Each node keeps a backlog of up to 1000 of its
// own accepted events (ingest batches of 200) and counts its successes.
import { fork } from 'node:child_process';
import { createServer } from 'node:http';
import { join, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const HERE = dirname(fileURLToPath(import.meta.url));
const SELF = fileURLToPath(import.meta.url);
const DIST = join(HERE, '..', 'dist', 'host');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const data = { consumer: 'c-42', ip: '203.0.113.7', service: 'billing', route: 'invoices', latency_ms: 12, status: 200 };
const emit = { v: 1, type: 'emit', source: 'http-log', event: 'log', data, plugin: 'bench' };
const publish = { v: 1, type: 'publish', source: 'http-log', event: 'log', fields: Object.keys(data), plugin: 'bench' };

async function load() {
  try {
    const hooks = await import(pathToFileURL(join(DIST, 'hooks', 'index.js')).href);
    const pg = await import(pathToFileURL(join(DIST, 'hooks', 'pg-store.js')).href);
    return { EventHooks: hooks.EventHooks, PgEventHookStore: pg.PgEventHookStore };
  } catch (err) {
    console.error('dist/host is missing: run "npm run build:host" first.', err.message);
    process.exit(1);
  }
}

if (process.argv[2] === '--receiver') {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  server.keepAliveTimeout = 10_000;
  server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
  process.on('disconnect', () => process.exit(0));
} else if (process.argv[2] === '--node') {
  await node(process.argv[3], Number(process.argv[4]));
} else {
  await main();
}

/** One node: an event-hooks service on the database; produces and delivers during each window the parent asks for. */
async function node(url, connections) {
  const { pino } = await import('pino');
  const { EventHooks, PgEventHookStore } = await load();
  const store = new PgEventHookStore(url, { pool: { max: 8, idleTimeoutMs: 30_000, connectTimeoutMs: 10_000 } });
  const hooks = new EventHooks({
    store,
    logger: pino({ level: 'warn' }),
    ssrf: { allowCidrs: ['127.0.0.1/32'] },
    delivery: { perOriginConcurrency: connections, maxInFlight: connections * 4, pollIntervalMs: 50 },
  });
  await hooks.start();
  await hooks.ingest([publish]);
  const cpu = () => {
    const c = process.cpuUsage();
    return c.user + c.system;
  };
  process.on('message', async (m) => {
    if (m.type === 'close') {
      await hooks.close({ timeoutMs: 5000 });
      await store.close();
      process.exit(0);
    }
    if (m.type !== 'window') return;
    const succeeded = () => hooks.stats().deliveriesSucceeded;
    let ingested = succeeded();
    let producing = true;
    const producer = (async () => {
      while (producing) {
        if (ingested - succeeded() > 1000) {
          await sleep(1);
          continue;
        }
        ingested += (await hooks.ingest(Array.from({ length: 200 }, () => emit))).accepted;
      }
    })();
    await sleep(m.warmupMs);
    const s0 = succeeded();
    const c0 = cpu();
    await sleep(m.ms);
    const n = succeeded() - s0;
    const used = cpu() - c0;
    producing = false;
    await producer;
    process.send({ type: 'done', n, cpuUs: used, failed: hooks.stats().deliveriesFailed });
  });
  process.send({ type: 'ready' });
}

async function main() {
  const { values } = parseArgs({
    options: {
      url: { type: 'string' },
      seconds: { type: 'string', default: '3' },
      rounds: { type: 'string', default: '3' },
      connections: { type: 'string', default: '16' },
      nodes: { type: 'string', default: '1,2' },
    },
  });
  if (!values.url) {
    console.error('give --url postgres://user@host:port/database (a database the benchmark may fill and truncate)');
    process.exit(2);
  }
  const url = values.url;
  const seconds = Number(values.seconds);
  const rounds = Number(values.rounds);
  const connections = Number(values.connections);
  const counts = values.nodes.split(',').map(Number);
  const { pino } = await import('pino');
  const { EventHooks, PgEventHookStore } = await load();
  const pg = (await import('pg')).default;

  const receiver = fork(SELF, ['--receiver'], { stdio: 'inherit' });
  const port = await new Promise((r) => receiver.once('message', (m) => r(m.port)));
  const hookUrl = `http://127.0.0.1:${port}/hook`;

  // The schema and the hook, once.
  const setupStore = new PgEventHookStore(url);
  const setup = new EventHooks({ store: setupStore, logger: pino({ level: 'warn' }), ssrf: { allowCidrs: ['127.0.0.1/32'] } });
  await setup.start();
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  await db.query('TRUNCATE hookwire_event_hooks, hookwire_deliveries, hookwire_attempts, hookwire_throttle');
  await setup.createHook({ source: 'http-log', event: 'log', handler: 'webhook', config: { url: hookUrl, secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' } });
  await setup.close();
  await setupStore.close();

  const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    return s[Math.floor(s.length / 2)];
  };
  const results = new Map(counts.map((c) => [c, []]));
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? counts : [...counts].reverse();
    let line = `round ${r + 1}:`;
    for (const k of order) {
      await db.query('TRUNCATE hookwire_deliveries, hookwire_attempts');
      const nodes = Array.from({ length: k }, () => fork(SELF, ['--node', url, String(connections)], { stdio: 'inherit' }));
      await Promise.all(nodes.map((n) => new Promise((ok) => n.once('message', ok))));
      const done = nodes.map((n) => new Promise((ok) => n.once('message', ok)));
      for (const n of nodes) n.send({ type: 'window', ms: seconds * 1000, warmupMs: 500 });
      const outs = await Promise.all(done);
      for (const n of nodes) n.send({ type: 'close' });
      await Promise.all(nodes.map((n) => new Promise((ok) => n.once('exit', ok))));
      const n = outs.reduce((s, o) => s + o.n, 0);
      const rate = n / seconds;
      const cpuPer = outs.reduce((s, o) => s + o.cpuUs, 0) / n;
      results.get(k).push({ rate, cpuPer, failed: outs.reduce((s, o) => s + o.failed, 0) });
      line += ` | ${k} node${k > 1 ? 's' : ''} ${Math.round(rate)} webhooks/s (${cpuPer.toFixed(0)} µs CPU/delivery, nodes: ${outs.map((o) => o.n).join('+')})`;
    }
    console.log(line);
  }
  await db.end();
  receiver.disconnect();
  const summary = {
    store: 'postgres',
    rounds,
    seconds_per_window: seconds,
    connections,
    node: process.version,
    ...Object.fromEntries(
      counts.flatMap((k) => [
        [`webhooks_per_s_median_${k}_node${k > 1 ? 's' : ''}`, Math.round(median(results.get(k).map((x) => x.rate)))],
        [`cpu_us_per_delivery_median_${k}_node${k > 1 ? 's' : ''}`, Number(median(results.get(k).map((x) => x.cpuPer)).toFixed(1))],
      ]),
    ),
    failed_deliveries: [...results.values()].flat().reduce((s, x) => s + x.failed, 0),
  };
  console.log(JSON.stringify(summary));
}
