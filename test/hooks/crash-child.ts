/**
 * The child process of crash.test.ts, transpiled with host/hooks to
 * build/test-hooks-child/ and run by plain node:
 *   node child.js <db> <receiver url> <first|restart> <count>
 * "first" creates a hook and ingests <count> events, then prints
 * {"accepted":n}; "ingest" creates a hook and ingests batches of <count>
 * events numbered on from 0, printing {"batch":b,"accepted":n} after each
 * answer, until killed; "restart" prints "ready", then "drained" once the
 * outbox has no pending delivery. All keep delivering until SIGTERM (graceful
 * close) or SIGKILL.
 */
import { pino } from 'pino';
import { EventHooks } from '../../host/hooks/index.js';

const [db, url, mode, count] = process.argv.slice(2) as [string, string, string, string];
const hooks = new EventHooks({
  database: db,
  logger: pino({ level: 'silent' }),
  ssrf: { allowCidrs: ['127.0.0.1/32'] },
  delivery: { perOriginConcurrency: 2, timeoutMs: 1000, leaseMs: 1500, retrySchedule: [100, 100, 100, 100, 100, 100], jitter: 'none', pollIntervalMs: 200 },
});
await hooks.start();
// The service's own timers do not hold the process open (a library should not); this does.
setInterval(() => {}, 1 << 30);
process.on('SIGTERM', () => {
  void hooks.close({ timeoutMs: 2000 }).then(() => process.exit(0));
});
if (mode === 'first') {
  await hooks.createHook({ source: 'chaos', event: 'tick', handler: 'webhook', config: { url, secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' } });
  const records: unknown[] = [{ v: 1, type: 'publish', source: 'chaos', event: 'tick', fields: ['n'], plugin: 'chaos' }];
  for (let n = 0; n < Number(count); n++) records.push({ v: 1, type: 'emit', source: 'chaos', event: 'tick', data: { n }, plugin: 'chaos' });
  const r = await hooks.ingest(records);
  process.stdout.write(`${JSON.stringify({ accepted: r.accepted })}\n`);
} else if (mode === 'ingest') {
  await hooks.createHook({ source: 'chaos', event: 'tick', handler: 'webhook', config: { url, secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' } });
  await hooks.ingest([{ v: 1, type: 'publish', source: 'chaos', event: 'tick', fields: ['n'], plugin: 'chaos' }]);
  const size = Number(count);
  for (let batch = 0; ; batch++) {
    const records: unknown[] = [];
    for (let i = 0; i < size; i++) records.push({ v: 1, type: 'emit', source: 'chaos', event: 'tick', data: { n: batch * size + i }, plugin: 'chaos' });
    const r = await hooks.ingest(records);
    process.stdout.write(`${JSON.stringify({ batch, accepted: r.accepted })}\n`);
  }
} else {
  process.stdout.write('ready\n');
  const timer = setInterval(() => {
    void hooks.metrics().then((samples) => {
      if (samples.find((m) => m.name === 'hookwire_event_hooks_deliveries_pending')?.value === 0) {
        clearInterval(timer);
        process.stdout.write('drained\n');
      }
    });
  }, 100);
}
