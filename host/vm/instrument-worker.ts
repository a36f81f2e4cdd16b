/**
 * The worker thread of instrument-thread.ts: rewrites each module it is sent
 * with the guard (instrument.ts) and sends the bytes back, or why it could not.
 */
import { parentPort } from 'node:worker_threads';
import { instrumentModule } from './instrument.js';
import type { InstrumentReply } from './instrument-thread.js';

const port = parentPort;
if (port === null) throw new Error('instrument-worker.js runs as a worker thread (host/vm/instrument-thread.ts)');

port.on('message', (job: { id: number; bytes: Uint8Array }) => {
  instrumentModule(job.bytes).then(
    (out) => {
      // Transfer, not copy: a buffer of exactly these bytes (never a view of binaryen's heap).
      const bytes = out.byteOffset === 0 && out.byteLength === out.buffer.byteLength ? out : out.slice();
      port.postMessage({ id: job.id, bytes } satisfies InstrumentReply, [bytes.buffer as ArrayBuffer]);
    },
    (err: Error) => port.postMessage({ id: job.id, error: err.message } satisfies InstrumentReply),
  );
});
