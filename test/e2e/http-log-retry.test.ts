/**
 * http-log's retries through the real data plane: a real collector that
 * fails (500, 503), times out once, then recovers. Every entry must reach it
 * exactly once among the batches it accepted, a failed batch must come back
 * whole, and retries must wait out the configured backoff.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send, startGateway, until, type TestGateway } from '../helpers/gateway.js';
import { plugin } from '../helpers/paths.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';

interface Attempt {
  at: number;
  ids: string[];
  outcome: 'error' | 'timeout' | 'accepted';
}

const COUNT = 20;
const TIMEOUT_MS = 300;
const INITIAL_RETRY_DELAY_S = 0.05;

let upstream: Upstream;
let gw: TestGateway;
let collector: Server;
const attempts: Attempt[] = [];
const held: ServerResponse[] = [];

/** The collector's script: two errors, a request it never answers, one more error, then success. */
const SCRIPT: readonly Attempt['outcome'][] = ['error', 'error', 'timeout', 'error'];

function collect(req: IncomingMessage, res: ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const ids = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { request: { id: string } }[]).map((e) => e.request.id);
    const outcome = SCRIPT[attempts.length] ?? 'accepted';
    attempts.push({ at: Date.now(), ids, outcome });
    if (outcome === 'timeout') held.push(res); // answered never: http-log's call times out
    else if (outcome === 'error') res.writeHead(attempts.length % 2 ? 500 : 503).end('try later');
    else res.writeHead(200).end('ok');
  });
}

beforeAll(async () => {
  upstream = await startUpstream();
  collector = createServer(collect);
  await new Promise<void>((ok) => collector.listen(0, '127.0.0.1', ok));
  const port = (collector.address() as AddressInfo).port;
  gw = await startGateway({
    services: [
      { name: 'api', url: upstream.url },
      { name: 'collector', url: `http://127.0.0.1:${port}` },
    ],
    routes: [
      {
        name: 'logged',
        service: 'api',
        plugins: [
          {
            name: 'log',
            wasm: plugin('http-log'),
            configuration: {
              http_endpoint: 'http://collector/logs',
              timeout: TIMEOUT_MS,
              queue: { max_batch_size: 5, max_coalescing_delay: 0.05, initial_retry_delay: INITIAL_RETRY_DELAY_S, max_retry_delay: 0.2, max_retry_time: 30 },
            },
          },
        ],
      },
    ],
  });
  for (let i = 0; i < COUNT; i++) expect((await send(`${gw.url}/r/${i}`, { headers: { 'x-request-id': `req-${i}` } })).status).toBe(200);
  await until(() => new Set(attempts.filter((a) => a.outcome === 'accepted').flatMap((a) => a.ids)).size === COUNT, 20_000);
  await new Promise((r) => setTimeout(r, 300)); // a duplicate would come after the last entry
}, 40_000);

afterAll(async () => {
  for (const res of held) res.destroy();
  await gw?.close();
  await new Promise((ok) => collector?.close(ok));
  await upstream?.close();
});

describe('http-log against a collector that fails, times out and recovers', () => {
  it('delivers every entry exactly once among the accepted batches', () => {
    const accepted = attempts.filter((a) => a.outcome === 'accepted').flatMap((a) => a.ids);
    expect(accepted.slice().sort()).toEqual(Array.from({ length: COUNT }, (_, i) => `req-${i}`).sort());
    expect(attempts.slice(0, SCRIPT.length).map((a) => a.outcome)).toEqual(SCRIPT);
  });

  it('sends a failed or timed-out batch again, whole, until it is accepted', () => {
    const first = attempts[0]!.ids;
    expect(first.length).toBeGreaterThan(0);
    // The first batch failed four times (500, 503, no answer, 500): the next four attempts are that same batch.
    for (let i = 1; i <= SCRIPT.length; i++) expect(attempts[i]!.ids, `attempt ${i}`).toEqual(first);
    expect(attempts[SCRIPT.length]!.outcome).toBe('accepted');
  });

  it('waits out the backoff between attempts, and the call timeout on a collector that does not answer', () => {
    const gap = (i: number) => attempts[i + 1]!.at - attempts[i]!.at;
    // Retry n waits min(max_retry_delay, initial_retry_delay * 2^n) after the failure.
    expect(gap(0)).toBeGreaterThanOrEqual(INITIAL_RETRY_DELAY_S * 1000 * 0.8);
    expect(gap(1)).toBeGreaterThanOrEqual(INITIAL_RETRY_DELAY_S * 2 * 1000 * 0.8);
    // The unanswered attempt only fails when the call's timeout expires, then backs off again.
    expect(gap(2)).toBeGreaterThanOrEqual(TIMEOUT_MS * 0.8);
  });

  it('logs each failed attempt as a warning naming the collector, and no error', () => {
    const warnings = gw.lines.filter((l) => l.plugin === 'log' && l.level === 40).map((l) => l.msg as string);
    // Kong's words for a failed batch: the collector's host, the status and body, or the failure.
    expect(warnings).toEqual([
      'http-log: handler could not process entries: request to collector:80 returned status code 500 and body try later',
      'http-log: handler could not process entries: request to collector:80 returned status code 503 and body try later',
      expect.stringMatching(/^http-log: handler could not process entries: failed request to collector:80: .*timeout/),
      'http-log: handler could not process entries: request to collector:80 returned status code 503 and body try later',
    ]);
    expect(gw.lines.filter((l) => l.plugin === 'log' && l.level >= 50)).toEqual([]);
  });
});
