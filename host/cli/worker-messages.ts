/**
 * The IPC messages between the primary of `hookwire start --workers N`
 * (workers.ts) and its workers (worker.ts). The channel uses Node's
 * "advanced" serialization (structured clone), so records travel as bytes.
 */
import type { EntitiesDocument } from '../config/entities.js';
import type { RuntimeEvent } from '../vm/runtime.js';
import type { WorkerReport } from './node-report.js';

/** The environment variable that tells a forked process which worker it is (1..N). */
export const WORKER_ENV = 'HOOKWIRE_WORKER';
/** The worker that serves the Admin API and runs the event-hooks service. */
export const CONTROL_WORKER = 1;

export type WorkerMessage =
  /** Listening and serving. */
  | { t: 'ready' }
  /** A data worker's event-hooks queue records, for the control worker. */
  | { t: 'records'; items: Uint8Array[] }
  /** A data worker's runtime events (the built-in `wasm` source), for the control worker. */
  | { t: 'runtime_events'; events: RuntimeEvent[] }
  /** The control worker asks for every other worker's report (request `id`). */
  | { t: 'gather'; id: number }
  /** A worker's answer to `report_request` `id`. */
  | { t: 'report'; id: number; report: WorkerReport }
  /** DB-less: the control worker replaced the entities (POST /config); the others serve them too. */
  | { t: 'entities'; entities: EntitiesDocument };

export type PrimaryMessage =
  | { t: 'records'; items: Uint8Array[] }
  | { t: 'runtime_events'; events: RuntimeEvent[] }
  | { t: 'report_request'; id: number }
  /** The reports for `gather` `id` (the workers that answered in time). */
  | { t: 'gathered'; id: number; reports: WorkerReport[]; expected: number }
  | { t: 'entities'; entities: EntitiesDocument };
