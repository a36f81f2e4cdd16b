/**
 * The seed scenario, end to end, composed as `hookwire start` composes it
 * (startHookwire: event-hooks service on a SQLite file, gateway, Admin API):
 *
 *   two workspaces (team-a, team-b), each with an API service and route, its
 *   own collector service, and dist/http-log.wasm on the route (event_hooks on,
 *   http_endpoint = its collector, small batches, short coalescing delay);
 *   one webhook hook created through the Admin API on http-log/log with a
 *   Standard Webhooks secret; 15 + 25 requests.
 *
 * Each collector must get exactly its own team's entries; the webhook
 * receiver one signed delivery per request of both teams, each verified
 * over the raw bytes, with distinct webhook-ids and its team's service and
 * route. Every wait is bounded.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from 'undici';
import type { RouteConfig, ServiceConfig } from '../../host/config/schema.js';
import { verifyWebhook } from '../../host/hooks/signing.js';
import { send, type Reply } from '../helpers/gateway.js';
import { plugin } from '../helpers/paths.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';
import { call, startReceiver, startTestApp, waitFor, type Receiver, type TestApp } from '../admin/helpers.js';

type Json = any;

const TEAMS = ['team-a', 'team-b'] as const;
type Team = (typeof TEAMS)[number];
const COUNT: Record<Team, number> = { 'team-a': 15, 'team-b': 25 };
const TOTAL = COUNT['team-a'] + COUNT['team-b'];
const BATCH = 5;
const SECRET = 'whsec_' + Buffer.from('hookwire-seed-scenario-secret!!!').toString('base64');

let t: TestApp;
let receiver: Receiver;
let dispatcher: Agent;
let hookId: string;
const api = {} as Record<Team, Upstream>;
const collector = {} as Record<Team, Upstream>;
const sent = new Map<string, { team: Team; reply: Reply }>();

function entries(team: Team): Json[] {
  return collector[team].received.flatMap((r) => {
    const body = JSON.parse(r.body) as Json;
    return Array.isArray(body) ? body : [body];
  });
}

const ws = (team: Team) => t.app.gateway.config.workspaces.find((w) => w.name === team)!;
const apiService = (team: Team): ServiceConfig => ws(team).services.find((s) => s.name === `${team}-svc`)!;
const apiRoute = (team: Team): RouteConfig => ws(team).routes.find((r) => r.name === `${team}-api`)!;

beforeAll(async () => {
  for (const team of TEAMS) {
    api[team] = await startUpstream();
    collector[team] = await startUpstream();
  }
  receiver = await startReceiver();
  t = await startTestApp({
    workspaces: TEAMS.map((team) => ({
      name: team,
      services: [
        { name: `${team}-svc`, url: api[team].url },
        { name: `${team}-collector`, url: collector[team].url },
      ],
      routes: [
        {
          name: `${team}-api`,
          service: `${team}-svc`,
          paths: [`/${team}`],
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
    })),
  });

  // The webhook, through the Admin API (the SSRF allowlist opens 127.0.0.1 for the receiver).
  const hook = await call(t.admin, 'POST', '/event-hooks', {
    source: 'http-log',
    event: 'log',
    handler: 'webhook',
    config: { url: receiver.url, secret: SECRET },
  });
  expect(hook.status).toBe(201);
  hookId = hook.body.id;

  // The plugins published their source when they were configured.
  await waitFor(async () => ((await call(t.admin, 'GET', '/event-hooks/sources/http-log/log')).status === 200 ? null : 'http-log/log not published'), 10_000);

  dispatcher = new Agent({ connections: 16 });
  const one = async (team: Team, i: number) => {
    const id = `${team}-req-${i}`;
    const reply = await send(`${t.url}/${team}/items/${i}`, { headers: { 'x-request-id': id, 'x-team': team }, dispatcher });
    sent.set(id, { team, reply });
  };
  // A few in sequence, then the rest concurrently, both teams interleaved.
  for (let i = 0; i < 3; i++) for (const team of TEAMS) await one(team, i);
  const rest: Promise<void>[] = [];
  for (const team of TEAMS) for (let i = 3; i < COUNT[team]; i++) rest.push(one(team, i));
  await Promise.all(rest);

  await waitFor(() => {
    const missing: string[] = [];
    for (const team of TEAMS) {
      const n = entries(team).length;
      if (n < COUNT[team]) missing.push(`${team} collector has ${n}/${COUNT[team]} entries`);
    }
    if (receiver.hits.length < TOTAL) missing.push(`${receiver.hits.length}/${TOTAL} webhooks`);
    return missing.length ? missing.join('; ') : null;
  }, 30_000);
  // Anything extra (duplicates, strays) gets a moment to show up before exact counts are asserted.
  await new Promise((r) => setTimeout(r, 300));
}, 90_000);

afterAll(async () => {
  await t?.close();
  await dispatcher?.close();
  await receiver?.close();
  for (const team of TEAMS) {
    await api[team]?.close();
    await collector[team]?.close();
  }
});

describe('seed scenario: two teams, http-log, one webhook hook', () => {
  it('served every request through its team API', () => {
    expect(sent.size).toBe(TOTAL);
    for (const [id, s] of sent) expect(s.reply.status, id).toBe(200);
    for (const team of TEAMS) {
      expect(api[team].received).toHaveLength(COUNT[team]);
      expect(new Set(api[team].received.map((e) => e.headers['x-team']))).toEqual(new Set([team]));
    }
  });

  it("gives each collector exactly its own team's entries", () => {
    for (const team of TEAMS) {
      const got = entries(team);
      expect(got).toHaveLength(COUNT[team]);
      const ids = got.map((e) => e.request.id as string);
      expect(new Set(ids).size).toBe(COUNT[team]);
      expect(new Set(ids)).toEqual(new Set([...sent].filter(([, s]) => s.team === team).map(([id]) => id)));
      for (const e of got) {
        expect(e.workspace_name).toBe(team);
        expect(e.route).toEqual({ id: apiRoute(team).id, name: `${team}-api` });
        expect(e.service).toEqual({ id: apiService(team).id, name: `${team}-svc` });
        expect(e.request.headers['x-team']).toBe(team);
      }
      for (const call of collector[team].received) {
        expect(call.url).toBe('/logs');
        expect(JSON.parse(call.body).length).toBeLessThanOrEqual(BATCH);
      }
    }
  });

  it('delivers one signed webhook per request of both teams, each verified over the raw bytes', () => {
    expect(receiver.hits).toHaveLength(TOTAL);
    const ids = new Set<string>();
    const perTeam: Record<Team, number> = { 'team-a': 0, 'team-b': 0 };
    for (const hit of receiver.hits) {
      expect(hit.method).toBe('POST');
      expect(hit.headers['content-type']).toMatch(/^application\/json/);
      const { id } = verifyWebhook(SECRET, hit.headers, hit.raw);
      expect(id).toMatch(/^msg_/);
      ids.add(id);
      const body = JSON.parse(hit.raw.toString('utf8')) as Json;
      expect(body.source).toBe('http-log');
      expect(body.event).toBe('log');
      expect(body.ip).toBe('127.0.0.1');
      const team = TEAMS.find((tm) => body.route?.name === `${tm}-api`);
      expect(team, JSON.stringify(body)).toBeDefined();
      expect(body.route).toEqual({ id: apiRoute(team!).id, name: `${team}-api` });
      expect(body.service).toEqual({ id: apiService(team!).id, name: `${team}-svc` });
      perTeam[team!]++;
    }
    expect(ids.size).toBe(TOTAL);
    expect(perTeam).toEqual(COUNT);
  });

  it('refuses a tampered body or another secret', () => {
    const hit = receiver.hits[0]!;
    const tampered = Buffer.from(hit.raw);
    tampered[tampered.length - 2] ^= 1;
    expect(() => verifyWebhook(SECRET, hit.headers, tampered)).toThrow();
    expect(() => verifyWebhook('whsec_' + Buffer.from('another-secret-another-secret!!!').toString('base64'), hit.headers, hit.raw)).toThrow();
  });

  it('records every delivery as succeeded, with the webhook-ids the receiver saw', async () => {
    const r = await call(t.admin, 'GET', `/event-hooks/${hookId}/deliveries?size=100`);
    expect(r.status).toBe(200);
    expect(r.body.data).toHaveLength(TOTAL);
    for (const d of r.body.data) expect(d).toMatchObject({ state: 'succeeded', attempt_count: 1, last_status: 200, source: 'http-log', event: 'log' });
    expect(new Set(r.body.data.map((d: { id: string }) => d.id))).toEqual(new Set(receiver.hits.map((h) => h.headers['webhook-id'])));
  });

  it('logs no plugin warnings or errors', () => {
    expect(t.lines.filter((l) => l.level >= 40 && typeof l.plugin === 'string')).toEqual([]);
  });
});
