/**
 * `hookwire start` with a counting native consumer of the event-hooks queue
 * instead of the event-hooks service, for the benchmark's "http-log + event
 * hooks" variant: what handing the records to the host costs, apart from what
 * the service does with them (the config turns the service off). Same
 * composition root (startHookwire) and the same buffered pino destination as
 * the CLI; the consumer is attached before the plugins load and counts
 * records on the shared queue (vm_id hookwire_event_hooks, queue event_hooks);
 * the admin listener answers GET /bench/events with
 * {"publish": N, "emit": N, "bytes": N}.
 *   node dist/bench/hookwire-events.js <config-file>
 */
import { destination, pino } from 'pino';

// The host is loaded from dist/host at run time (this file is compiled on its own, into dist/bench).
const host = (path: string) => import(new URL(`../host/${path}`, import.meta.url).href);
const { loadConfigFile } = await host('config/load.js');
const { startHookwire } = await host('cli/app.js');

const file = process.argv[2];
if (!file) throw new Error('usage: hookwire-events.js <config-file>');
const config = await loadConfigFile(file);
const stream = destination({ dest: 1, sync: false, minLength: 8192 });
setInterval(() => stream.flush(), 100).unref();
const logger = pino({ level: config.log_level, base: { pid: process.pid } }, stream);

const counts = { publish: 0, emit: 0, bytes: 0 };
const EMIT = Buffer.from('"type":"emit"');
const count = (item: Uint8Array) => {
  // Counting only: the record's type is the second key of a v1 record (docs/event-wire-format.md).
  const b = Buffer.from(item.buffer, item.byteOffset, item.byteLength);
  const at = b.indexOf(EMIT);
  if (at >= 0 && at < 24) counts.emit++;
  else counts.publish++;
  counts.bytes += b.length;
};
const app = await startHookwire(config, {
  logger,
  configPath: file,
  beforeLoad: (runtime: { queues: { consume(vmId: string, name: string, fn: (item: Uint8Array) => void): unknown } }) =>
    runtime.queues.consume('hookwire_event_hooks', 'event_hooks', count),
});
app.admin.route('GET', '/bench/events', (_req: unknown, res: import('node:http').ServerResponse) => {
  const text = JSON.stringify(counts);
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
});
const stop = () => void app.close({ drainTimeoutMs: 0 }).then(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
