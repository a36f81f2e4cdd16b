/**
 * The backstop behind the guest deadlines: a watchdog on its own thread that
 * notices the main event loop stalled (a host bug, a synchronous call that
 * never returns, a guest run unguarded) and ends the process so a supervisor
 * restarts it, as Envoy's watchdog does (its `kill_timeout`).
 *
 * The main thread stamps a heartbeat into a SharedArrayBuffer from a timer;
 * the worker reads it. A stalled loop runs no timer, so the stamp goes stale.
 * The worker then writes one line to stderr itself (fd 2, synchronously: the
 * main thread, which normally carries a worker's output, is the one stuck)
 * naming the stall and the last guest call the deadline guard saw running,
 * and sends the process SIGKILL: a stalled loop could not run a SIGTERM or
 * SIGABRT handler, and SIGKILL needs none. A supervisor sees the signal (exit
 * status 137 in a shell).
 */
import { Worker } from 'node:worker_threads';
import { guestActivity } from './deadline.js';

/** Layout of the shared buffer: [0] heartbeat (ms since the epoch), [1] guest activity stamp, [2] label length, then the label. */
const LABEL_OFFSET = 24;
const LABEL_BYTES = 232;
const BUFFER_BYTES = LABEL_OFFSET + LABEL_BYTES;

const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const { writeSync } = require('node:fs');
const { shared, limitMs, checkMs } = workerData;
const stamps = new BigInt64Array(shared, 0, 3);
const label = new Uint8Array(shared, ${LABEL_OFFSET}, ${LABEL_BYTES});
setInterval(() => {
  const now = Date.now();
  const stalled = now - Number(Atomics.load(stamps, 0));
  if (stalled <= limitMs) return;
  const at = Number(Atomics.load(stamps, 1));
  const len = Number(Atomics.load(stamps, 2));
  const last = at > 0 ? Buffer.from(label.subarray(0, len)).toString('utf8') : null;
  const line = {
    level: 60,
    time: new Date(now).toISOString(),
    pid: process.pid,
    code: 'HW_WATCHDOG_STALL',
    stalled_ms: stalled,
    limit_ms: limitMs,
    last_guest_call: last,
    last_guest_call_age_ms: at > 0 ? now - at : null,
    msg: 'watchdog: the event loop stalled for ' + stalled + ' ms (wasm.watchdog_ms ' + limitMs + '); ending the process',
  };
  try { writeSync(2, JSON.stringify(line) + '\\n'); } catch {}
  process.kill(process.pid, 'SIGKILL');
}, checkMs);
`;

export class Watchdog {
  private readonly stamps: BigInt64Array;
  private readonly label: Uint8Array;
  private readonly worker: Worker;
  private readonly timer: NodeJS.Timeout;
  private readonly encoder = new TextEncoder();

  /** Start watching: a stall longer than `limitMs` ends the process. */
  constructor(readonly limitMs: number) {
    if (!(limitMs > 0)) throw new RangeError(`watchdog limit must be positive, got ${limitMs}`);
    const shared = new SharedArrayBuffer(BUFFER_BYTES);
    this.stamps = new BigInt64Array(shared, 0, 3);
    this.label = new Uint8Array(shared, LABEL_OFFSET, LABEL_BYTES);
    // Beat and check several times per limit, so a stall is seen within about 1.25 limits.
    const beatMs = Math.max(5, Math.floor(limitMs / 4));
    this.beat();
    this.timer = setInterval(() => this.beat(), beatMs);
    this.timer.unref();
    // execArgv []: CommonJS (require) whatever flags the process runs with (--input-type=module...).
    this.worker = new Worker(WORKER_SOURCE, { eval: true, execArgv: [], workerData: { shared, limitMs, checkMs: beatMs } });
    this.worker.unref();
    // A broken watchdog must not take the process down; it says so once.
    this.worker.on('error', (err) => process.emitWarning(`watchdog thread failed: ${err.message}`));
    guestActivity.sink = (plugin, callback) => this.noteGuestCall(plugin, callback);
  }

  private beat(): void {
    Atomics.store(this.stamps, 0, BigInt(Date.now()));
  }

  /** Called by the deadline guard when a guest call has run for a while: what to name if the loop stalls. */
  private noteGuestCall(plugin: string, callback: string): void {
    const { written } = this.encoder.encodeInto(`${callback} of plugin ${plugin}`, this.label);
    Atomics.store(this.stamps, 2, BigInt(written));
    Atomics.store(this.stamps, 1, BigInt(Date.now()));
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    if (guestActivity.sink !== null) guestActivity.sink = null;
    await this.worker.terminate();
  }
}
