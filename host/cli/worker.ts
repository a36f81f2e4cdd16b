/**
 * One worker process of `hookwire start --workers N` (the primary is
 * workers.ts). Worker 1 runs the whole gateway (Admin API, event-hooks
 * service); the others a data worker (app.ts startDataWorker) whose
 * event-hooks records and runtime events travel to worker 1. Every worker
 * answers the primary's report requests, so the Admin API's /metrics and
 * /status describe the whole node.
 */
import type { Logger } from 'pino';
import type { WorkerPeers } from '../admin/api.js';
import type { HookwireConfig } from '../config/schema.js';
import type { ReloadResult } from '../proxy/gateway.js';
import type { RuntimeEvent } from '../vm/runtime.js';
import { startDataWorker, startHookwire, type EventForwarder } from './app.js';
import { mergeMetrics, mergeStatus, type WorkerReport } from './node-report.js';
import { CONTROL_WORKER, WORKER_ENV, type PrimaryMessage, type WorkerMessage } from './worker-messages.js';

/** A record batch is sent when this many are waiting, or at the end of the event-loop turn. */
const FORWARD_BATCH = 512;

/** What `hookwire start` drives in a worker, as in a single process. */
export interface Served {
  readonly inflight: number;
  reloadFromFile(): Promise<ReloadResult>;
  close(): Promise<void>;
}

/** This process's worker number, or null when it is not a worker of `--workers`. */
export function workerNumber(): number | null {
  const v = process.env[WORKER_ENV];
  return v === undefined || process.send === undefined ? null : Number(v);
}

function toPrimary(m: WorkerMessage): void {
  if (process.connected) process.send!(m);
}

/** Batches a data worker's records and runtime events to the primary: one IPC message per event-loop turn, not per record. */
function forwarder(): EventForwarder {
  let items: Uint8Array[] = [];
  let events: RuntimeEvent[] = [];
  let scheduled = false;
  const flush = (): void => {
    scheduled = false;
    if (items.length > 0) toPrimary({ t: 'records', items });
    if (events.length > 0) toPrimary({ t: 'runtime_events', events });
    items = [];
    events = [];
  };
  const later = (): void => {
    if (scheduled) return;
    scheduled = true;
    setImmediate(flush);
  };
  return {
    record(item) {
      items.push(item);
      if (items.length >= FORWARD_BATCH) flush();
      else later();
    },
    runtimeEvent(e) {
      events.push(e);
      later();
    },
  };
}

/** The control worker's view of the node: its own report merged with the others', gathered by the primary. */
function peers(worker: number, ownReport: () => WorkerReport): WorkerPeers {
  let nextId = 1;
  const pending = new Map<number, (m: PrimaryMessage & { t: 'gathered' }) => void>();
  process.on('message', (m: PrimaryMessage) => {
    if (m.t !== 'gathered') return;
    pending.get(m.id)?.(m);
    pending.delete(m.id);
  });
  const gather = (): Promise<PrimaryMessage & { t: 'gathered' }> =>
    new Promise((resolve) => {
      const id = nextId++;
      const alone = { t: 'gathered' as const, id, reports: [], expected: 0 };
      if (!process.connected) return resolve(alone); // the primary is gone: this worker's report only
      // The primary answers within its own gather timeout; this bound is for a primary that dies meanwhile.
      const timer = setTimeout(() => {
        pending.delete(id);
        resolve(alone);
      }, 5_000);
      pending.set(id, (m) => {
        clearTimeout(timer);
        resolve(m);
      });
      toPrimary({ t: 'gather', id });
    });
  return {
    async metrics(own) {
      const g = await gather();
      return mergeMetrics([{ worker, metrics: own }, ...g.reports].sort((a, b) => a.worker - b.worker));
    },
    async status(own) {
      const g = await gather();
      return mergeStatus(own, [ownReport(), ...g.reports].sort((a, b) => a.worker - b.worker), g.expected);
    },
  };
}

/** Starts worker `worker`'s gateway; tells the primary once it serves. */
export async function startWorker(config: HookwireConfig, configPath: string | null, logger: Logger, worker: number): Promise<Served> {
  if (worker === CONTROL_WORKER) {
    let app: Awaited<ReturnType<typeof startHookwire>> | null = null;
    const report = (): WorkerReport => ({ worker, pid: process.pid, metrics: app!.gateway.metricsText(), status: app!.gateway.status() });
    app = await startHookwire(config, {
      logger,
      configPath,
      workers: peers(worker, report),
      onEntitiesReplaced: (entities) => toPrimary({ t: 'entities', entities }),
    });
    const started = app;
    const sink = started.hooks?.runtimeEventSink();
    process.on('message', (m: PrimaryMessage) => {
      if (m.t === 'records') void started.hooks?.ingest(m.items);
      else if (m.t === 'runtime_events') for (const e of m.events) sink?.(e);
      else if (m.t === 'report_request') toPrimary({ t: 'report', id: m.id, report: report() });
    });
    toPrimary({ t: 'ready' });
    return { get inflight() { return started.gateway.inflight; }, reloadFromFile: () => started.reloadFromFile(), close: () => started.close() };
  }
  const data = await startDataWorker(config, { logger, configPath, forward: forwarder() });
  process.on('message', (m: PrimaryMessage) => {
    if (m.t === 'report_request') {
      toPrimary({ t: 'report', id: m.id, report: { worker, pid: process.pid, metrics: data.gateway.metricsText(), status: data.gateway.status() } });
    } else if (m.t === 'entities') {
      data.replaceEntities(m.entities).catch((err: unknown) => logger.error({ err }, 'serving the entities POST /config replaced failed'));
    }
  });
  toPrimary({ t: 'ready' });
  return { get inflight() { return data.gateway.inflight; }, reloadFromFile: () => data.reloadFromFile(), close: () => data.close() };
}
