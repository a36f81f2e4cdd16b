/**
 * The guest-side ABI fuzz (issue 20): the abi-fuzz fixture calls every
 * env.proxy_* import and the WASI calls with seeded random arguments (valid
 * values, 0, 0xFFFFFFFF, pointers at and past the end of memory, huge
 * lengths, out-of-range enums) in every phase, root and stream, through the
 * real gateway, beside a clean route running hello-world and the Admin API.
 *
 * Asserted: every status stays in the ABI's enum (the fixture counts the
 * rest), no guest traps, the clean route and the Admin API keep answering,
 * the process stays up (an uncaught error fails the run) and RSS stays bounded.
 *
 * Short by default; longer with environment variables:
 *   HOOKWIRE_GUEST_FUZZ_SEEDS      seeds, run one after the other (default 2)
 *   HOOKWIRE_GUEST_FUZZ_REQUESTS   requests on the fuzzed route per seed (default 24)
 *   HOOKWIRE_GUEST_FUZZ_CALLS      random host calls per phase (default 24)
 *   HOOKWIRE_GUEST_FUZZ_SEED       first seed (default 1; seed i is first + i)
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHookwire } from '../../host/cli/app.js';
import { testConfig } from '../helpers/gateway.js';
import { fixture, plugin } from '../helpers/paths.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';

const env = (name: string, fallback: number) => {
  const v = Number(process.env[name]);
  return Number.isInteger(v) && v > 0 ? v : fallback;
};
const SEEDS = env('HOOKWIRE_GUEST_FUZZ_SEEDS', 2);
const REQUESTS = env('HOOKWIRE_GUEST_FUZZ_REQUESTS', 24);
const CALLS = env('HOOKWIRE_GUEST_FUZZ_CALLS', 24);
const FIRST_SEED = env('HOOKWIRE_GUEST_FUZZ_SEED', 1);
/** Requests in flight at once on the fuzzed route (a paused one waits for its client timeout). */
const CONCURRENCY = 6;
const MiB = 1024 * 1024;

interface FuzzReport {
  phase: string;
  calls: string;
  bad: string;
  first_bad: string;
}

/** A logger that keeps only what the assertions need (a fuzzed guest logs a lot of junk). */
function fuzzLogger() {
  const fuzz: FuzzReport[] = [];
  const trapped: string[] = [];
  let lines = 0;
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const text of chunk.toString('utf8').split('\n')) {
        if (text === '') continue;
        lines++;
        if (!text.includes('"R {\\"op\\":\\"fuzz\\"') && !text.includes('"VM trapped"')) continue;
        const line = JSON.parse(text) as { level: number; msg: string; reason?: string; callback?: string; plugins?: string[] };
        // While serving (error level); a trap during unload is logged as a warning and is the unload's business.
        if (line.msg === 'VM trapped') {
          if (line.level >= 50) trapped.push(`${line.plugins?.join(',')} ${line.callback}: ${line.reason}`);
        }
        else fuzz.push(JSON.parse(line.msg.slice(2)) as FuzzReport);
      }
      cb();
    },
  });
  return { logger: pino({ level: 'info' }, stream), fuzz, trapped, count: () => lines };
}

let upstream: Upstream;

beforeAll(async () => {
  upstream = await startUpstream();
});

afterAll(async () => {
  await upstream?.close();
});

/** One fuzzed request: a random method, path and body, given up after a second. */
async function fuzzRequest(base: string, i: number, dispatcher: Agent): Promise<void> {
  const paths = ['/fuzz/', '/fuzz/trailers', '/fuzz/slow?ms=20', '/fuzz/status/204', '/fuzz/big?bytes=70000', '/fuzz/chunks?n=3&ms=5'];
  const methods = ['GET', 'POST', 'HEAD', 'PUT'];
  const method = methods[i % methods.length]!;
  try {
    const res = await request(base + paths[(i * 7) % paths.length], {
      method: method as 'GET',
      body: method === 'POST' || method === 'PUT' ? 'x'.repeat((i * 131) % 5000) : undefined,
      signal: AbortSignal.timeout(1000),
      dispatcher,
    });
    await res.body.text();
  } catch {
    // Reset, local reply cut short, paused until the client gave up: all fine for a fuzzed stream.
  }
}

describe(`guest ABI fuzz (${SEEDS} seeds x ${REQUESTS} requests x ${CALLS} calls per phase)`, () => {
  for (let s = 0; s < SEEDS; s++) {
    const seed = FIRST_SEED + s;
    it(`seed ${seed}: statuses stay in the enum, no trap, the clean route and the Admin API answer, RSS bounded`, async () => {
      const log = fuzzLogger();
      const rssBefore = process.memoryUsage().rss;
      const fuzzConfig = { seed: String(seed), calls: String(CALLS), cluster: 'echo' };
      const app = await startHookwire(
        testConfig({
          services: [{ name: 'echo', url: upstream.url }],
          routes: [
            { name: 'clean', service: 'echo', paths: ['/clean'], plugins: [{ name: 'hello', wasm: plugin('hello-world') }] },
            {
              name: 'fuzz',
              service: 'echo',
              paths: ['/fuzz'],
              plugins: [{ name: 'fuzz', wasm: fixture('abi-fuzz'), configuration: fuzzConfig, vm_configuration: fuzzConfig }],
            },
          ],
        }),
        { logger: log.logger, runtime: { reloadBackoffMs: 0 } },
      );
      // The clean route and the Admin API get connections of their own: a fuzzed
      // response may carry any framing its filter left, which is that client's business.
      const dispatcher = new Agent({ connections: 32 });
      const cleanDispatcher = new Agent({ connections: 4 });
      const base = app.gateway.listeners[0]!.url;
      const cleanStatuses: number[] = [];
      let adminOk = 0;
      try {
        for (let i = 0; i < REQUESTS; i += CONCURRENCY) {
          const batch: Promise<void>[] = [];
          for (let j = i; j < Math.min(REQUESTS, i + CONCURRENCY); j++) batch.push(fuzzRequest(base, j + seed * 1000, dispatcher));
          // The clean route and the Admin API, while the fuzzed route is driven.
          const clean = request(base + '/clean', { dispatcher: cleanDispatcher, signal: AbortSignal.timeout(5000) }).then(
            async (r) => {
              await r.body.text();
              cleanStatuses.push(r.statusCode);
            },
            (err: Error) => cleanStatuses.push(-1, err.message as unknown as number),
          );
          const admin = request(app.adminListener.url + '/status', { dispatcher: cleanDispatcher, signal: AbortSignal.timeout(5000) }).then(
            async (r) => {
              await r.body.text();
              if (r.statusCode === 200) adminOk++;
            },
            () => {},
          );
          await Promise.all([...batch, clean, admin]);
        }
      } finally {
        await dispatcher.destroy();
        await cleanDispatcher.close();
        await app.close({ drainTimeoutMs: 500 });
      }
      const calls = log.fuzz.reduce((n, r) => Math.max(n, Number(r.calls)), 0);
      const bad = log.fuzz.filter((r) => r.bad !== '0');
      expect(bad.map((r) => `${r.phase}: ${r.bad} (first: import ${r.first_bad})`)).toEqual([]);
      expect(log.trapped).toEqual([]);
      // Root phases (vm_start, configure) and stream phases all fuzzed.
      const phases = new Set(log.fuzz.map((r) => r.phase));
      expect(phases.has('vm_start') && phases.has('configure') && phases.has('request_headers')).toBe(true);
      expect(calls).toBeGreaterThanOrEqual(CALLS * REQUESTS);
      const rounds = Math.ceil(REQUESTS / CONCURRENCY);
      expect(cleanStatuses).toEqual(new Array(rounds).fill(200));
      expect(adminOk).toBe(rounds);
      // Generous: a guest's misuse must not make the host keep what it asks for.
      expect(process.memoryUsage().rss - rssBefore).toBeLessThan(384 * MiB);
    }, 120_000);
  }
});
