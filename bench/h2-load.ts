/**
 * A small HTTP/2 load generator (autocannon speaks HTTP/1.1 only): `streams`
 * GET / requests kept in flight over `sessions` node:http2 client sessions
 * for `seconds`, each slot sending its next request when the previous one
 * ends. Prints one JSON line shaped like autocannon's -j output (requests,
 * duration, errors, non2xx, latency p50/p99 in ms) plus `cpu_us`, this
 * process's own CPU time, so the caller can tell it apart from the proxy's.
 *   node dist/bench/h2-load.js <https-url> <streams> <seconds> <ca.pem> [sessions]
 */
import { readFileSync } from 'node:fs';
import { connect, type ClientHttp2Session } from 'node:http2';

const [url, streamsArg, secondsArg, caFile, sessionsArg] = process.argv.slice(2);
if (!url || !streamsArg || !secondsArg || !caFile) throw new Error('usage: h2-load.js <https-url> <streams> <seconds> <ca.pem> [sessions]');
const streams = Number(streamsArg);
const seconds = Number(secondsArg);
const sessionCount = Math.max(1, Math.min(streams, Number(sessionsArg ?? 5)));
const ca = readFileSync(caFile);

const cpuStart = process.cpuUsage();
const latencies: number[] = [];
let errors = 0;
let non2xx = 0;
const start = performance.now();
const deadline = start + seconds * 1000;

const sessions: ClientHttp2Session[] = [];
for (let i = 0; i < sessionCount; i++) {
  const session = connect(url, { ca });
  session.on('error', () => errors++);
  sessions.push(session);
}

/** One slot: a request at a time until the deadline. */
function slot(session: ClientHttp2Session): Promise<void> {
  return new Promise((resolve) => {
    const next = (): void => {
      if (performance.now() >= deadline || session.destroyed) return resolve();
      const sent = performance.now();
      let completed = false;
      const req = session.request({ ':method': 'GET', ':path': '/' });
      req.on('response', (headers) => {
        const status = Number(headers[':status']);
        if (status < 200 || status > 299) non2xx++;
      });
      req.resume();
      req.on('end', () => (completed = true));
      req.on('error', () => undefined); // counted on close
      // A stuck request is given up, so every slot ends soon after the deadline.
      req.setTimeout(10_000, () => req.close());
      req.on('close', () => {
        if (completed) latencies.push(performance.now() - sent);
        else errors++;
        next();
      });
    };
    next();
  });
}

await Promise.all(Array.from({ length: streams }, (_, i) => slot(sessions[i % sessionCount]!)));
const duration = (performance.now() - start) / 1000;
for (const s of sessions) s.close();
const cpu = process.cpuUsage(cpuStart);

latencies.sort((a, b) => a - b);
const pct = (p: number) => (latencies.length === 0 ? 0 : latencies[Math.min(latencies.length - 1, Math.floor((latencies.length * p) / 100))]!);
process.stdout.write(
  JSON.stringify({
    requests: { total: latencies.length, average: latencies.length / duration },
    duration,
    errors,
    non2xx,
    latency: { p50: Math.round(pct(50) * 100) / 100, p99: Math.round(pct(99) * 100) / 100 },
    cpu_us: cpu.user + cpu.system,
  }) + '\n',
);
