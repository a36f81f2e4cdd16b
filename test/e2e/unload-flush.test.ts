/**
 * Nothing lost when a VM is unloaded (issue 10): the real CLI, the real
 * dist/http-log.wasm, a real collector on 127.0.0.1 and real signals. On
 * SIGHUP and on an Admin API change (a new generation) and on SIGTERM
 * (shutdown) the gateway calls the root's proxy_on_done; http-log answers false, sends the batch still waiting
 * out its coalescing delay, then calls proxy_done. Every request served must
 * reach the collector exactly once.
 *
 * The load test runs a few seconds in `npm test`; HOOKWIRE_UNLOAD_LOAD_SECONDS
 * (and HOOKWIRE_UNLOAD_LOAD_CONNECTIONS, HOOKWIRE_UNLOAD_LOAD_SIGHUP_MS) run
 * the long version: 60 s at 50 connections, a SIGHUP every 5 s.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startConfig } from '../helpers/cli.js';
import { plugin } from '../helpers/paths.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';

const LOAD_SECONDS = Number(process.env.HOOKWIRE_UNLOAD_LOAD_SECONDS ?? 6);
const LOAD_CONNECTIONS = Number(process.env.HOOKWIRE_UNLOAD_LOAD_CONNECTIONS ?? (process.env.HOOKWIRE_UNLOAD_LOAD_SECONDS ? 50 : 4));
const LOAD_SIGHUP_MS = Number(process.env.HOOKWIRE_UNLOAD_LOAD_SIGHUP_MS ?? (process.env.HOOKWIRE_UNLOAD_LOAD_SECONDS ? 5000 : 1500));

let dir: string;
let api: Upstream;
let collector: Upstream;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hookwire-unload-'));
  api = await startUpstream();
  collector = await startUpstream();
});

afterAll(async () => {
  await api?.close();
  await collector?.close();
  await rm(dir, { recursive: true, force: true });
});

/**
 * Batches of 100 with a 30 s coalescing delay: after 250 requests two batches
 * are sent and 50 entries wait, which only the unload protocol delivers.
 */
function config(queue: Record<string, number>): string {
  return `proxy:
  listen: [{address: 127.0.0.1, port: 0}]
  drain_timeout_ms: 10000
admin:
  listen: {address: 127.0.0.1, port: 0}
log_level: info
# Each server's entities in a store of its own: the tests share one folder.
storage: {path: ":memory:"}
services:
  - {name: api, url: "${api.url}"}
  - {name: collector, url: "${collector.url}"}
routes:
  - name: r
    service: api
    plugins:
      - name: http-log
        wasm: "${plugin('http-log')}"
        configuration: {http_endpoint: "http://collector/logs", queue: ${JSON.stringify(queue)}}
`;
}

/** request.uri of every entry the collector received so far (batches are JSON arrays). */
function loggedUris(): string[] {
  return collector.received.flatMap((r) => {
    const body = JSON.parse(r.body) as { request: { uri: string } } | { request: { uri: string } }[];
    return (Array.isArray(body) ? body : [body]).map((e) => e.request.uri);
  });
}

async function until(what: () => string | null, ms: number): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    const missing = what();
    if (missing === null) return;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms: ${missing}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** `n` requests with unique paths, 10 at a time; resolves with the paths served. */
async function sendMany(proxy: string, prefix: string, n: number, dispatcher: Agent): Promise<string[]> {
  const paths: string[] = [];
  for (let i = 0; i < n; i += 10) {
    const batch = Array.from({ length: Math.min(10, n - i) }, (_, k) => `/${prefix}/${i + k}`);
    await Promise.all(
      batch.map(async (p) => {
        const res = await request(proxy + p, { dispatcher });
        await res.body.dump();
        expect(res.statusCode).toBe(200);
      }),
    );
    paths.push(...batch);
  }
  return paths;
}

function expectExactly(sent: string[], prefix: string): void {
  const got = loggedUris().filter((u) => u.startsWith(`/${prefix}/`));
  expect(got.length).toBe(sent.length);
  expect(new Set(got)).toEqual(new Set(sent));
}

describe('http-log flushes its queue when its VM is unloaded', () => {
  it('250 requests then SIGHUP: 250 of 250 entries at the collector', async () => {
    const { server, proxy } = await startConfig(dir, config({ max_batch_size: 100, max_coalescing_delay: 30 }));
    const dispatcher = new Agent({ connections: 10 });
    try {
      const sent = await sendMany(proxy, 'hup', 250, dispatcher);
      await until(() => (loggedUris().filter((u) => u.startsWith('/hup/')).length >= 200 ? null : 'the two full batches'), 10_000);
      server.child.kill('SIGHUP');
      await server.waitFor((l) => l.msg === 'configuration reloaded');
      await until(() => {
        const n = loggedUris().filter((u) => u.startsWith('/hup/')).length;
        return n >= 250 ? null : `${n} of 250 entries at the collector`;
      }, 10_000);
      expectExactly(sent, 'hup');
      // The old root said it was flushing, then finished before the deadline.
      expect(server.lines.some((l) => l.msg === 'http-log: unloading; sending 50 queued entries first')).toBe(true);
      expect(server.lines.some((l) => typeof l.msg === 'string' && l.msg.includes('did not call proxy_done'))).toBe(false);
    } finally {
      await dispatcher.close();
      server.child.kill('SIGTERM');
      expect(await server.exited).toBe(0);
    }
  });

  it('250 requests then an Admin API change (which reloads): 250 of 250 entries at the collector', async () => {
    const { server, proxy, admin } = await startConfig(dir, config({ max_batch_size: 100, max_coalescing_delay: 30 }));
    const dispatcher = new Agent({ connections: 10 });
    try {
      const sent = await sendMany(proxy, 'admin', 250, dispatcher);
      await until(() => (loggedUris().filter((u) => u.startsWith('/admin/')).length >= 200 ? null : 'the two full batches'), 10_000);
      const res = await request(admin + '/services', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'another', url: api.url }),
        dispatcher,
      });
      await res.body.dump();
      expect(res.statusCode).toBe(201);
      await until(() => {
        const n = loggedUris().filter((u) => u.startsWith('/admin/')).length;
        return n >= 250 ? null : `${n} of 250 entries at the collector`;
      }, 10_000);
      expectExactly(sent, 'admin');
    } finally {
      await dispatcher.close();
      server.child.kill('SIGTERM');
      expect(await server.exited).toBe(0);
    }
  });

  it('250 requests then SIGTERM: 250 of 250 entries at the collector before the process exits', async () => {
    const { server, proxy } = await startConfig(dir, config({ max_batch_size: 100, max_coalescing_delay: 30 }));
    const dispatcher = new Agent({ connections: 10 });
    let sent: string[];
    try {
      sent = await sendMany(proxy, 'term', 250, dispatcher);
    } finally {
      await dispatcher.close();
      server.child.kill('SIGTERM');
    }
    expect(await server.exited).toBe(0);
    expectExactly(sent, 'term');
    expect(server.lines.some((l) => l.msg === 'gateway stopped')).toBe(true);
  });

  it(
    `load with reloads (${LOAD_SECONDS} s, ${LOAD_CONNECTIONS} connections, SIGHUP every ${LOAD_SIGHUP_MS} ms): every request served is logged once`,
    async () => {
      const { server, proxy } = await startConfig(dir, config({ max_batch_size: 100, max_coalescing_delay: 1 }));
      const dispatcher = new Agent({ connections: LOAD_CONNECTIONS, pipelining: 1 });
      const served: string[] = [];
      const failures: string[] = [];
      let reloads = 0;
      try {
        const end = Date.now() + LOAD_SECONDS * 1000;
        const hup = setInterval(() => {
          server.child.kill('SIGHUP');
          reloads++;
        }, LOAD_SIGHUP_MS);
        try {
          await Promise.all(
            Array.from({ length: LOAD_CONNECTIONS }, async (_, c) => {
              for (let i = 0; Date.now() < end; i++) {
                const path = `/load/${c}/${i}`;
                try {
                  const res = await request(proxy + path, { dispatcher });
                  await res.body.dump();
                  if (res.statusCode === 200) served.push(path);
                  else failures.push(`${path}: ${res.statusCode}`);
                } catch (err) {
                  failures.push(`${path}: ${(err as Error).message}`);
                }
              }
            }),
          );
        } finally {
          clearInterval(hup);
        }
        // Every reload was applied (each one unloaded a generation with entries waiting).
        await until(() => {
          const n = server.lines.filter((l) => l.msg === 'configuration reloaded').length;
          return n >= reloads ? null : `${n} of ${reloads} reloads logged`;
        }, 10_000);
      } finally {
        await dispatcher.close();
        server.child.kill('SIGTERM');
      }
      expect(await server.exited).toBe(0);
      const logged = loggedUris().filter((u) => u.startsWith('/load/'));
      console.info(`unload load test: ${served.length} requests served, ${logged.length} entries logged, ${reloads} reloads, ${failures.length} failed requests`);
      expect(failures).toEqual([]);
      expect(reloads).toBeGreaterThan(0);
      expect(logged.length).toBe(served.length);
      expect(new Set(logged)).toEqual(new Set(served));
    },
    (LOAD_SECONDS + 40) * 1000,
  );
});
