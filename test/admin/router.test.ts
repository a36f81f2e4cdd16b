// The admin router: path templates, specificity, 404/405, the token and public routes, errors thrown by handlers.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminHttpError, nestedFields } from '../../host/admin/http.js';
import { AdminServer, sendJson } from '../../host/admin/server.js';
import { EventHookNotFoundError } from '../../host/errors.js';
import { memoryLogger } from '../helpers/gateway.js';
import { call } from './helpers.js';

let admin: AdminServer;
let base: string;

beforeAll(async () => {
  admin = new AdminServer({ token: 'tok', logger: memoryLogger().logger });
  const echo = (name: string) => (_req: unknown, res: Parameters<typeof sendJson>[0], _url: URL, params: Record<string, string>) => sendJson(res, 200, { route: name, params });
  admin
    .route('GET', '/event-hooks/{id}', echo('hook'))
    .route('PATCH', '/event-hooks/{id}', echo('hook'))
    .route('GET', '/event-hooks/sources', echo('sources'))
    .route('GET', '/{workspace}/services', echo('ws-services'))
    .route('GET', '/services/{service}', echo('service'))
    .route('POST', '/open', echo('open'), { public: true })
    .route('GET', '/throws/{what}', (_req, _res, _url, params) => {
      if (params.what === 'http') throw new AdminHttpError(418, { message: 'teapot' });
      if (params.what === 'missing') throw new EventHookNotFoundError('event_hook', 'x');
      throw new Error('boom');
    });
  await admin.listen({ address: '127.0.0.1', port: 0 });
  base = admin.info!.url;
});

afterAll(async () => {
  await admin?.close();
});

const auth = { authorization: 'Bearer tok' };

describe('admin router', () => {
  it('matches templates, literal segments first, and decodes parameters', async () => {
    expect((await call(base, 'GET', '/event-hooks/sources', undefined, auth)).body).toEqual({ route: 'sources', params: {} });
    expect((await call(base, 'GET', '/event-hooks/abc%3Adef', undefined, auth)).body).toEqual({ route: 'hook', params: { id: 'abc:def' } });
    expect((await call(base, 'GET', '/team-a/services', undefined, auth)).body).toEqual({ route: 'ws-services', params: { workspace: 'team-a' } });
    // Both /services/{service} and /{workspace}/services match: the literal first segment wins.
    expect((await call(base, 'GET', '/services/services', undefined, auth)).body.route).toBe('service');
  });

  it('404 for no template, 405 with Allow for a wrong method, HEAD served by GET', async () => {
    expect((await call(base, 'GET', '/nope', undefined, auth)).body).toEqual({ message: 'Not found' });
    expect((await call(base, 'GET', '/event-hooks/', undefined, auth)).status).toBe(404);
    const r = await call(base, 'DELETE', '/event-hooks/x', undefined, auth);
    expect(r.status).toBe(405);
    expect(r.headers.allow).toBe('GET, PATCH');
    expect((await call(base, 'HEAD', '/event-hooks/x', undefined, auth)).status).toBe(200);
  });

  it('requires the token except on public routes', async () => {
    expect((await call(base, 'GET', '/event-hooks/x')).status).toBe(401);
    expect((await call(base, 'GET', '/nope')).status).toBe(401);
    expect((await call(base, 'POST', '/open')).status).toBe(200);
    expect((await call(base, 'GET', '/event-hooks/x', undefined, { 'hookwire-admin-token': 'tok' })).status).toBe(200);
  });

  it('turns thrown errors into answers: AdminHttpError as given, typed errors mapped, others 500', async () => {
    expect(await call(base, 'GET', '/throws/http', undefined, auth)).toMatchObject({ status: 418, body: { message: 'teapot' } });
    expect(await call(base, 'GET', '/throws/missing', undefined, auth)).toMatchObject({ status: 404, body: { message: 'Not found' } });
    expect(await call(base, 'GET', '/throws/other', undefined, auth)).toMatchObject({ status: 500, body: { message: 'An unexpected error occurred' } });
  });

  it('refuses conflicting registrations', () => {
    expect(() => admin.route('GET', '/event-hooks/{other}', () => {})).toThrow(/same template/);
    expect(() => admin.route('GET', '/event-hooks/sources', () => {})).toThrow(/already registered/);
    expect(() => admin.route('GET', '/x/{a}{b}', () => {})).toThrow(/whole segment/);
  });
});

describe("Kong's nested fields", () => {
  it('nests pointers, keeps whole-entity problems under @entity', () => {
    expect(
      nestedFields([
        { path: '/config/url', message: 'bad url' },
        { path: '/paths/0', message: 'bad path' },
        { path: '', message: 'set url or urls' },
        { path: '/config', message: 'whole config' },
      ]),
    ).toEqual({ config: { url: 'bad url', '@entity': ['whole config'] }, paths: { '0': 'bad path' }, '@entity': ['set url or urls'] });
  });
});
