/**
 * The primary of `hookwire start --workers N` (Node's cluster module): it
 * serves nothing itself. It forks N worker processes, each a gateway with
 * its own VMs (as Envoy runs one VM per worker thread), sharing the proxy
 * listeners (the primary accepts and hands connections round-robin).
 *
 *   worker 1, the control worker: proxy traffic, plus the Admin API and the
 *     one event-hooks service (dispatcher, retention sweep, on_change and
 *     snooze digests, circuit breakers): what must be single lives in one
 *     process. It is forked first; the others once it listens (so one
 *     process creates and migrates the stores).
 *   workers 2..N, data workers: proxy traffic only. Their plugins' event
 *     records and runtime events come here and go on to worker 1.
 *
 * Every worker reads the entities from the shared store (SQLite in WAL mode
 * or PostgreSQL) and follows its changes (the store's watch). SIGTERM,
 * SIGINT and SIGHUP are passed to every worker. A worker that dies is
 * forked again after a backoff (doubling from 100 ms to 10 s, reset once a
 * worker has lived 10 s); while it is down the others take its connections.
 * A worker that dies before the node first became ready is a start failure:
 * the others are stopped and the primary exits 1.
 */
import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import type { Logger } from 'pino';
import type { EntitiesDocument } from '../config/entities.js';
import { MAX_WORKERS } from '../config/schema.js';
import type { WorkerReport } from './node-report.js';
import { WORKER_ENV, type PrimaryMessage, type WorkerMessage } from './worker-messages.js';

/** Restart backoff: the first wait, the longest, and how long a worker must live for the next crash to count as the first. */
const RESTART_FIRST_MS = 100;
const RESTART_MAX_MS = 10_000;
const STABLE_AFTER_MS = 10_000;
/** How long the control worker waits for the others' reports (a busy worker answers late, not never). */
const GATHER_TIMEOUT_MS = 2_000;
/** Records held for the control worker while it is down; past this the oldest are dropped (and counted in the log). */
const MAX_HELD_RECORDS = 100_000;

/** `--workers` / `proxy.workers`: a count, or `auto` (one per core). */
export function workerCount(value: number | 'auto'): number {
  return value === 'auto' ? Math.min(availableParallelism(), MAX_WORKERS) : value;
}

/** Parses the `--workers` flag's value; a string is the message naming what was wrong. */
export function parseWorkers(text: string): number | 'auto' | string {
  if (text === 'auto') return 'auto';
  if (!/^[0-9]+$/.test(text) || Number(text) < 1 || Number(text) > MAX_WORKERS) {
    return `--workers needs a number of processes from 1 to ${MAX_WORKERS}, or auto (one per core); found ${JSON.stringify(text)}`;
  }
  return Number(text);
}

interface Slot {
  readonly n: number;
  worker: Worker | null;
  ready: boolean;
  startedAt: number;
  crashes: number;
  restart: NodeJS.Timeout | null;
}

/** Runs the primary until every worker has stopped; resolves with the exit code. */
export function runPrimary(count: number, logger: Logger): Promise<number> {
  cluster.setupPrimary({ serialization: 'advanced' });
  const slots: Slot[] = Array.from({ length: count }, (_, i) => ({ n: i + 1, worker: null, ready: false, startedAt: 0, crashes: 0, restart: null }));
  const control = slots[0]!;
  let stopping = false;
  let startFailed = false;
  let everReady = false;
  let exitCode = 0;
  /** Records and runtime events for the control worker while it is not serving. */
  let held: PrimaryMessage[] = [];
  let heldRecords = 0;
  let droppedRecords = 0;
  /** DB-less: the entities last replaced through POST /config, for a worker forked later. */
  let replaced: EntitiesDocument | null = null;
  let nextId = 1;
  const gathers = new Map<number, { from: Worker; replyId: number; reports: WorkerReport[]; waiting: Set<number>; timer: NodeJS.Timeout }>();

  let finish!: (code: number) => void;
  const done = new Promise<number>((resolve) => (finish = resolve));

  const send = (w: Worker | null, m: PrimaryMessage): void => {
    if (w !== null && w.isConnected()) w.send(m);
  };

  const toControl = (m: PrimaryMessage & { t: 'records' | 'runtime_events' }): void => {
    if (control.ready && control.worker?.isConnected()) {
      control.worker.send(m);
      return;
    }
    held.push(m);
    if (m.t === 'records') heldRecords += m.items.length;
    while (heldRecords > MAX_HELD_RECORDS && held.length > 1) {
      const old = held.shift()!;
      if (old.t === 'records') {
        heldRecords -= old.items.length;
        droppedRecords += old.items.length;
      }
    }
  };

  const gatherDone = (id: number): void => {
    const g = gathers.get(id);
    if (!g) return;
    gathers.delete(id);
    clearTimeout(g.timer);
    send(g.from, { t: 'gathered', id: g.replyId, reports: g.reports, expected: count });
  };

  const onMessage = (slot: Slot, w: Worker, m: WorkerMessage): void => {
    switch (m.t) {
      case 'ready': {
        slot.ready = true;
        logger.info({ worker: slot.n, worker_pid: w.process.pid }, `worker ${slot.n} serving`);
        if (replaced !== null && slot !== control) send(w, { t: 'entities', entities: replaced });
        if (slot === control) {
          if (droppedRecords > 0) logger.warn({ dropped: droppedRecords }, 'event-hooks records dropped while the control worker was down (over the hold limit)');
          droppedRecords = 0;
          for (const h of held) w.send(h);
          held = [];
          heldRecords = 0;
          if (!everReady) for (const s of slots.slice(1)) fork(s);
        }
        if (!everReady && slots.every((s) => s.ready)) {
          everReady = true;
          logger.info({ workers: count }, `all ${count} workers serving`);
        }
        return;
      }
      case 'records':
      case 'runtime_events':
        toControl(m);
        return;
      case 'gather': {
        const others = slots.filter((s) => s !== slot && s.ready && s.worker?.isConnected());
        const id = nextId++;
        const g = { from: w, replyId: m.id, reports: [], waiting: new Set(others.map((s) => s.n)), timer: setTimeout(() => gatherDone(id), GATHER_TIMEOUT_MS) };
        gathers.set(id, g);
        for (const s of others) send(s.worker, { t: 'report_request', id });
        if (others.length === 0) gatherDone(id);
        return;
      }
      case 'report': {
        const g = gathers.get(m.id);
        if (!g || !g.waiting.delete(slot.n)) return;
        g.reports.push(m.report);
        if (g.waiting.size === 0) gatherDone(m.id);
        return;
      }
      case 'entities':
        replaced = m.entities;
        for (const s of slots) if (s !== slot) send(s.worker, { t: 'entities', entities: m.entities });
        return;
    }
  };

  const fork = (slot: Slot): void => {
    slot.restart = null;
    slot.ready = false;
    slot.startedAt = Date.now();
    const w = cluster.fork({ [WORKER_ENV]: String(slot.n) });
    slot.worker = w;
    w.on('message', (m: WorkerMessage) => onMessage(slot, w, m));
    w.on('exit', (code, signal) => onExit(slot, w, code, signal));
  };

  const allStopped = (): boolean => slots.every((s) => s.worker === null && s.restart === null);

  const onExit = (slot: Slot, w: Worker, code: number | null, signal: string | null): void => {
    if (slot.worker !== w) return;
    slot.worker = null;
    slot.ready = false;
    for (const [id, g] of gathers) if (g.waiting.delete(slot.n) && g.waiting.size === 0) gatherDone(id);
    if (stopping) {
      if (code !== 0) exitCode = 1;
      logger.info({ worker: slot.n, worker_pid: w.process.pid, code, signal }, `worker ${slot.n} stopped`);
      if (allStopped()) finish(exitCode);
      return;
    }
    if (!everReady) {
      // A worker that cannot start (a bad module, a port in use): restarting would fail the same way.
      logger.fatal({ worker: slot.n, worker_pid: w.process.pid, code, signal }, `worker ${slot.n} exited before the node was serving: stopping`);
      startFailed = true;
      stop('start failure');
      if (allStopped()) finish(1);
      return;
    }
    if (Date.now() - slot.startedAt >= STABLE_AFTER_MS) slot.crashes = 0;
    const delay = Math.min(RESTART_FIRST_MS * 2 ** slot.crashes, RESTART_MAX_MS);
    slot.crashes++;
    logger.error({ worker: slot.n, worker_pid: w.process.pid, code, signal, restart_in_ms: delay }, `worker ${slot.n} died: forking it again`);
    slot.restart = setTimeout(() => fork(slot), delay);
  };

  const stop = (signal: string): void => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: passing it on (workers exit without waiting for the drain)');
    } else {
      stopping = true;
      logger.info({ signal, workers: slots.filter((s) => s.worker !== null).length }, 'shutting down: stopping every worker');
    }
    if (startFailed) exitCode = 1;
    for (const s of slots) {
      if (s.restart !== null) clearTimeout(s.restart);
      s.restart = null;
      if (s.worker !== null && !s.worker.isDead()) s.worker.process.kill('SIGTERM');
    }
  };

  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => {
    logger.info('SIGHUP: every worker reloads the configuration');
    replaced = null; // DB-less: the file is read again, and is the truth again
    for (const s of slots) if (s.worker !== null && !s.worker.isDead()) s.worker.process.kill('SIGHUP');
  });

  logger.info({ workers: count }, `starting ${count} workers`);
  fork(control);
  return done;
}
