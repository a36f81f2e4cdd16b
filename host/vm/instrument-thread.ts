/**
 * The guard's rewrite (instrument.ts) run on a worker thread, so that
 * binaryen never enters the serving process's heap (its JS alone is about
 * 27 MB, which every major collection of the gateway would mark again) and
 * the event loop is not held while a module is rewritten (0.1–0.8 s for
 * http-log, plus about 0.6 s to load binaryen).
 *
 * One worker serves every rewrite and ends after IDLE_MS without work, which
 * frees binaryen. Where the compiled worker script does not exist (the
 * TypeScript sources run directly, as under vitest), the rewrite runs in
 * this thread instead.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { InstrumentError, instrumentModule } from './instrument.js';

/** How long an idle worker stays (a reload often brings several modules in a row). */
const IDLE_MS = 5_000;

/** What the worker answers for one job. */
export type InstrumentReply = { readonly id: number; readonly bytes: Uint8Array } | { readonly id: number; readonly error: string };

interface Job {
  resolve(bytes: Uint8Array): void;
  reject(err: Error): void;
}

const script = new URL('./instrument-worker.js', import.meta.url);
const runsOffThread = script.protocol === 'file:' && existsSync(fileURLToPath(script));

let worker: Worker | null = null;
let idleTimer: NodeJS.Timeout | null = null;
let nextId = 1;
const jobs = new Map<number, Job>();

/** The guarded copy of `bytes` (see instrumentModule); rewritten on the worker thread when there is one. */
export function instrumentOffThread(bytes: Uint8Array): Promise<Uint8Array> {
  if (!runsOffThread) return instrumentModule(bytes);
  return new Promise<Uint8Array>((resolve, reject) => {
    const id = nextId++;
    jobs.set(id, { resolve, reject });
    const w = ensureWorker();
    if (idleTimer !== null) clearTimeout(idleTimer);
    idleTimer = null;
    w.ref();
    w.postMessage({ id, bytes });
  });
}

function ensureWorker(): Worker {
  if (worker !== null) return worker;
  const w = new Worker(script);
  worker = w;
  w.on('message', (reply: InstrumentReply) => {
    const job = jobs.get(reply.id);
    if (job === undefined) return;
    jobs.delete(reply.id);
    if ('error' in reply) job.reject(new InstrumentError(reply.error));
    else job.resolve(reply.bytes);
    if (jobs.size === 0) idle(w);
  });
  // A worker that fails takes its pending jobs with it; the next rewrite starts a new one.
  const fail = (why: string) => {
    if (worker === w) worker = null;
    for (const [id, job] of jobs) {
      jobs.delete(id);
      job.reject(new InstrumentError(`the instrumenting thread ${why}`));
    }
  };
  w.on('error', (err) => fail(`failed: ${err.message}`));
  w.on('exit', (code) => fail(`exited (code ${code})`));
  return w;
}

/** No job left: let the process exit without waiting for the worker, and end it after IDLE_MS. */
function idle(w: Worker): void {
  w.unref();
  idleTimer = setTimeout(() => {
    idleTimer = null;
    if (worker === w && jobs.size === 0) {
      worker = null;
      void w.terminate();
    }
  }, IDLE_MS);
  idleTimer.unref();
}
