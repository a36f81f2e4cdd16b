/**
 * The seed scenario's data-plane half, end to end: two workspaces, each with
 * an API service and route, a collector service and an http-log plugin
 * (event_hooks on) on the route. Real gateway on loopback, real upstream and
 * collector servers, the real dist/http-log.wasm. Each collector must get
 * exactly its own team's log entries; the host must get one `log` event per
 * request from both plugins, consumed natively from the shared queue.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from 'undici';
import type { RouteConfig, ServiceConfig, WorkspaceConfig } from '../../host/config/schema.js';
import { send, startGateway, type Reply, type TestGateway } from '../helpers/gateway.js';
import { plugin } from '../helpers/paths.js';
import { startUpstream, type Echo, type Upstream } from '../helpers/upstream.js';
import { httpLogPublishRecord } from '../helpers/records.js';

type Json = any;

const TEAMS = ['team-a', 'team-b'] as const;
type Team = (typeof TEAMS)[number];
const COUNT: Record<Team, number> = { 'team-a': 20, 'team-b': 30 };
const BATCH = 5;

let gw: TestGateway;
let dispatcher: Agent;
const api = {} as Record<Team, Upstream>;
const collector = {} as Record<Team, Upstream>;
/** Every record the host consumed from the event_hooks queue, in order. */
const records: Json[] = [];
const queueNames = new Set<string>();
let unsubscribe: () => void = () => {};

/** What the test sent, by request id. */
interface Sent {
  team: Team;
  path: string;
  upstreamPath: string;
  authorization: string | null;
  reply: Reply;
}
const sent = new Map<string, Sent>();

/** Poll until `fn` holds, with a deadline; the message says what was still missing. */
async function waitFor(what: () => string | null, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    const missing = what();
    if (missing === null) return;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms: ${missing}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Every entry a collector received, in arrival order (batches are JSON arrays). */
function entries(team: Team): Json[] {
  return collector[team].received.flatMap((r) => {
    const body = JSON.parse(r.body) as Json;
    return Array.isArray(body) ? body : [body];
  });
}

const workspace = (name: Team): WorkspaceConfig => gw.gateway.config.workspaces.find((w) => w.name === name)!;
const service = (team: Team, name: string): ServiceConfig => workspace(team).services.find((s) => s.name === name)!;
const route = (team: Team): RouteConfig => workspace(team).routes.find((r) => r.name === `${team}-api`)!;

beforeAll(async () => {
  for (const team of TEAMS) {
    api[team] = await startUpstream();
    collector[team] = await startUpstream();
  }
  const ws = (team: Team, apiUrl: string, paths: string[], stripPath: boolean) => ({
    name: team,
    services: [
      { name: `${team}-svc`, url: apiUrl },
      { name: `${team}-collector`, url: collector[team].url },
    ],
    routes: [
      {
        name: `${team}-api`,
        service: `${team}-svc`,
        paths,
        strip_path: stripPath,
        plugins: [
          {
            name: `${team}-log`,
            wasm: plugin('http-log'),
            configuration: {
              http_endpoint: `http://${team}-collector/logs`,
              event_hooks: true,
              queue: { max_batch_size: BATCH, max_coalescing_delay: 0.1 },
            },
          },
        ],
      },
    ],
  });
  gw = await startGateway({
    workspaces: [
      // team-a: strip_path to a service path, so upstream_uri differs from the request uri.
      ws('team-a', `${api['team-a'].url}/a-api`, ['/team-a'], true),
      // team-b: paths kept, so /status/NNN reaches the upstream's status endpoint.
      ws('team-b', api['team-b'].url, ['/team-b', '/status'], false),
    ],
  });
  // The plugins loaded before this consumer existed: their publish records are
  // held by the event-hooks library and sent when the queue resolves.
  // No expect here: an assertion failing inside the consumer would throw into the guest's enqueue, not this test.
  unsubscribe = gw.gateway.runtime.queues.consume('hookwire_event_hooks', 'event_hooks', (item, queue) => {
    queueNames.add(queue.name);
    records.push(JSON.parse(Buffer.from(item).toString('utf8')));
  });
  dispatcher = new Agent({ connections: 16 });

  const one = async (team: Team, i: number): Promise<void> => {
    const id = `${team}-req-${i}`;
    let path: string;
    let upstreamPath: string;
    if (team === 'team-a') {
      path = `/team-a/items/${i}?n=${i}&tag=x&tag=y`;
      upstreamPath = `/a-api/items/${i}?n=${i}&tag=x&tag=y`;
    } else if (i % 5 === 0) {
      path = `/status/${i % 10 === 0 ? 404 : 503}`;
      upstreamPath = path;
    } else {
      path = `/team-b/orders/${i}`;
      upstreamPath = path;
    }
    const authorization = i % 3 === 0 ? `Bearer secret-${team}-${i}` : null;
    const headers: Record<string, string> = { 'x-request-id': id, 'x-team': team };
    if (authorization !== null) headers.authorization = authorization;
    const reply = await send(gw.url + path, { headers, dispatcher, method: i % 4 === 1 ? 'POST' : 'GET', body: i % 4 === 1 ? `body-${i}` : undefined });
    sent.set(id, { team, path, upstreamPath, authorization, reply });
  };
  // Some sequential, then the rest concurrently, both teams interleaved.
  for (let i = 0; i < 6; i++) {
    await one('team-a', i);
    await one('team-b', i);
  }
  const concurrent: Promise<void>[] = [];
  for (let i = 6; i < COUNT['team-a']; i++) concurrent.push(one('team-a', i));
  for (let i = 6; i < COUNT['team-b']; i++) concurrent.push(one('team-b', i));
  await Promise.all(concurrent);

  await waitFor(() => {
    const missing: string[] = [];
    for (const team of TEAMS) {
      const n = entries(team).length;
      if (n < COUNT[team]) missing.push(`${team} collector has ${n}/${COUNT[team]} entries`);
    }
    const emits = records.filter((r) => r.type === 'emit').length;
    if (emits < 50) missing.push(`${emits}/50 emit records`);
    return missing.length ? missing.join('; ') : null;
  });
  // Give anything extra (duplicates, strays) a moment to show up before asserting exact counts.
  await new Promise((r) => setTimeout(r, 250));
}, 60_000);

afterAll(async () => {
  unsubscribe();
  await gw?.close();
  await dispatcher?.close();
  for (const team of TEAMS) {
    await api[team]?.close();
    await collector[team]?.close();
  }
});

describe('http-log in two workspaces, through the data plane', () => {
  it('served every request through its own team API', () => {
    expect(sent.size).toBe(50);
    for (const [id, s] of sent) {
      const expected = s.path.startsWith('/status/') ? Number(s.path.slice(8)) : 200;
      expect(s.reply.status, id).toBe(expected);
    }
    expect(api['team-a'].received).toHaveLength(20);
    expect(api['team-b'].received).toHaveLength(30);
    expect(new Set(api['team-a'].received.map((e: Echo) => e.headers['x-team']))).toEqual(new Set(['team-a']));
    expect(new Set(api['team-b'].received.map((e: Echo) => e.headers['x-team']))).toEqual(new Set(['team-b']));
  });

  it('sends each collector batches of its own entries as JSON arrays, with a correct Content-Length', () => {
    for (const team of TEAMS) {
      const calls = collector[team].received;
      expect(calls.length).toBeGreaterThanOrEqual(Math.ceil(COUNT[team] / BATCH));
      for (const call of calls) {
        expect(call.method).toBe('POST');
        expect(call.url).toBe('/logs');
        expect(call.headers['content-type']).toBe('application/json');
        expect(call.headers.host).toBe(`${team}-collector`); // :authority = the cluster name
        expect(Number(call.headers['content-length'])).toBe(Buffer.byteLength(call.body));
        const batch = JSON.parse(call.body) as Json[];
        expect(Array.isArray(batch)).toBe(true);
        expect(batch.length).toBeGreaterThanOrEqual(1);
        expect(batch.length).toBeLessThanOrEqual(BATCH);
      }
    }
  });

  it("gives each collector exactly its team's entries, none of the other team's", () => {
    for (const team of TEAMS) {
      const got = entries(team);
      expect(got).toHaveLength(COUNT[team]);
      const ids = got.map((e) => e.request.id as string);
      expect(new Set(ids).size).toBe(COUNT[team]); // no duplicates
      const expectedIds = [...sent.entries()].filter(([, s]) => s.team === team).map(([id]) => id);
      expect(new Set(ids)).toEqual(new Set(expectedIds));
      for (const e of got) {
        expect(e.workspace_name).toBe(team);
        expect(e.request.headers['x-team']).toBe(team);
      }
    }
  });

  it('fills every entry from the live request: paths, names, ids, redaction, statuses', () => {
    for (const team of TEAMS) {
      const ws = workspace(team);
      const r = route(team);
      const svc = service(team, `${team}-svc`);
      for (const e of entries(team)) {
        const s = sent.get(e.request.id)!;
        const { search, searchParams } = new URL(s.path, 'http://x');
        expect(e.request.uri).toBe(s.path);
        expect(e.request.url).toBe(`http://127.0.0.1:${new URL(gw.url).port}${s.path}`);
        expect(e.request.method).toBe(Number(e.request.id.split('-').pop()) % 4 === 1 ? 'POST' : 'GET');
        // Kong's form: one value as a string, a repeated key as a list.
        if (search) expect(e.request.querystring).toEqual({ n: searchParams.get('n'), tag: ['x', 'y'] });
        else expect(e.request.querystring).toEqual({});
        expect(e.request.headers.host).toBe(new URL(gw.url).host);
        if (s.authorization !== null) expect(e.request.headers.authorization).toBe('REDACTED');
        else expect(e.request.headers).not.toHaveProperty('authorization');
        expect(JSON.stringify(e)).not.toContain('secret-');
        expect(e.request.size).toBeGreaterThan(0);
        expect(e.upstream_uri).toBe(s.upstreamPath);
        expect(e.response.status).toBe(s.reply.status);
        expect(e.upstream_status).toBe(String(s.reply.status));
        expect(e.source).toBe('upstream');
        expect(e.response.headers['x-upstream']).toBe('yes');
        expect(e.tries).toEqual([{ ip: '127.0.0.1', port: api[team].port, balancer_latency: 0 }]);
        expect(e.client_ip).toBe('127.0.0.1');
        expect(e.route).toEqual({ id: r.id, name: `${team}-api` });
        expect(e.service).toEqual({ id: svc.id, name: `${team}-svc` });
        expect(e).not.toHaveProperty('consumer');
        expect(e.workspace).toBe(ws.id);
        expect(e.workspace_name).toBe(team);
        // Measured on the live path: the upstream's time (proxy) and the gateway's own (kong) add up to the request's.
        for (const k of ['kong', 'proxy', 'request', 'receive'] as const) expect(Number.isInteger(e.latencies[k]), k).toBe(true);
        expect(e.latencies.proxy).toBeGreaterThanOrEqual(0);
        expect(e.latencies.kong).toBeGreaterThanOrEqual(0);
        expect(e.latencies.kong + e.latencies.proxy).toBe(Math.max(e.latencies.request, e.latencies.proxy));
        expect(e.latencies.request).toBeLessThan(60_000);
        // Bytes sent to the client: the body and every header line ("name: value" CRLF).
        const bodyBytes = Buffer.byteLength(s.reply.text);
        const headerLines = Object.entries(e.response.headers as Record<string, string | string[]>).reduce(
          (n, [k, v]) => n + (Array.isArray(v) ? v : [v]).reduce((m, x) => m + k.length + x.length + 4, 0),
          0,
        );
        expect(e.response.size).toBeGreaterThanOrEqual(bodyBytes + headerLines);
        expect(e.response.size).toBeLessThanOrEqual(bodyBytes + headerLines + 64);
        expect(e.started_at).toBeGreaterThan(Date.now() - 120_000);
      }
    }
  });

  it('hands the host one publish per plugin, before that plugin\'s first emit', () => {
    expect([...queueNames]).toEqual(['event_hooks']);
    const publishes = records.filter((r) => r.type === 'publish');
    expect(publishes).toHaveLength(2);
    for (const team of TEAMS) {
      const name = `${team}-log`;
      const pub = publishes.find((p) => p.plugin === name);
      expect(pub).toEqual(httpLogPublishRecord(name));
      const firstEmit = records.findIndex((r) => r.type === 'emit' && r.plugin === name);
      expect(records.indexOf(pub)).toBeLessThan(firstEmit);
    }
  });

  it('hands the host one log event per request, with its team\'s service and route', () => {
    const emits = records.filter((r) => r.type === 'emit');
    expect(emits).toHaveLength(50);
    for (const team of TEAMS) {
      const mine = emits.filter((r) => r.plugin === `${team}-log`);
      expect(mine).toHaveLength(COUNT[team]);
      const r = route(team);
      const svc = service(team, `${team}-svc`);
      for (const rec of mine) {
        expect(Object.keys(rec)).toEqual(['v', 'type', 'source', 'event', 'data', 'plugin', 'time_ms']);
        expect(rec.source).toBe('http-log');
        expect(rec.event).toBe('log');
        expect(rec.data).toEqual({
          consumer: {},
          ip: '127.0.0.1',
          service: { id: svc.id, name: `${team}-svc` },
          route: { id: r.id, name: `${team}-api` },
        });
        expect(rec.time_ms).toBeGreaterThan(Date.now() - 120_000);
        expect(rec.time_ms).toBeLessThanOrEqual(Date.now());
      }
    }
  });

  it('logs no plugin warnings or errors', () => {
    const bad = gw.lines.filter((l) => l.level >= 40 && typeof l.plugin === 'string');
    expect(bad).toEqual([]);
  });
});
