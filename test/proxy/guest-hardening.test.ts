/**
 * Guest-side hardening (issues 20 and 21): each reduced reproduction of the
 * ABI fuzz, through the real gateway, with the abi-fuzz fixture calling the
 * raw imports. Every row must answer a status from the ABI's enum (or serve
 * the request), never end the process, trap the guest, or hang a route.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { validateConfigObject } from '../../host/config/load.js';
import { cachedPropertyPaths } from '../../host/vm/properties.js';
import { MAX_STDIO_LINE } from '../../host/abi/wasi.js';
import { send, startApp, startGateway, until, type LogLine, type TestGateway } from '../helpers/gateway.js';
import { fixture, plugin, ROOT } from '../helpers/paths.js';
import { closedPort, startUpstream, type Echo, type Upstream } from '../helpers/upstream.js';

const BAD_ARGUMENT = 2;
const INVALID_MEMORY_ACCESS = 6;
const EFAULT = 21;

let upstream: Upstream;
/** An upstream that closes every connection after its answer (Connection: close), 100 ms late. */
let closing: Server;
let gw: TestGateway;

/** An abi-fuzz plugin running `ops` by phase. */
const fuzz = (name: string, ops: Record<string, string>, extra: Record<string, unknown> = {}) => ({
  name,
  wasm: fixture('abi-fuzz'),
  configuration: { cluster: 'echo', ...ops },
  ...extra,
});

interface Report {
  op: string;
  status: number;
  [key: string]: string | number;
}

/** The fixture's report lines ("R {...}") of one plugin, in order. */
function reports(lines: readonly LogLine[], pluginName: string, op?: string): Report[] {
  const out: Report[] = [];
  for (const l of lines) {
    if (l.plugin !== pluginName || typeof l.msg !== 'string' || !l.msg.startsWith('R {')) continue;
    const r = JSON.parse(l.msg.slice(2)) as Report;
    if (op === undefined || r.op === op) out.push(r);
  }
  return out;
}

function traps(lines: readonly LogLine[]): LogLine[] {
  return lines.filter((l) => l.msg === 'VM trapped');
}

beforeAll(async () => {
  upstream = await startUpstream();
  closing = createServer((req, res) => {
    req.resume();
    setTimeout(() => {
      res.writeHead(200, { connection: 'close', 'content-type': 'text/plain' });
      res.end('closing');
    }, 100);
  });
  await new Promise<void>((resolve) => closing.listen(0, '127.0.0.1', resolve));
  const closingUrl = `http://127.0.0.1:${(closing.address() as AddressInfo).port}`;
  gw = await startGateway({
    services: [
      { name: 'closing', url: closingUrl, pool_size: 1 },
      { name: 'echo', url: upstream.url },
      // One connection: a socket parked by an abandoned request would hang every later one.
      { name: 'single', url: upstream.url, pool_size: 1 },
    ],
    routes: [
      { name: 'clean', service: 'echo', paths: ['/clean'], plugins: [{ name: 'hello', wasm: plugin('hello-world') }] },
      { name: 'direct-single', service: 'single', paths: ['/direct-single'], strip_path: true },
      { name: 'direct-closing', service: 'closing', paths: ['/direct-closing'], strip_path: true },
      { name: 'filtered-closing', service: 'closing', paths: ['/filtered-closing'], strip_path: true, plugins: [fuzz('f-closing', {})] },
      {
        name: 'late-calls',
        service: 'echo',
        paths: ['/late-calls'],
        plugins: [
          fuzz('f-late', {
            // After a local reply, then close_stream, then in on_log: every call answers a status.
            request_headers: 'local|403|denied;hdr.rep|0|:path|/y;cont|0;hdr.get|0|:path',
            response_headers: 'hdr.rep|2|x-after|1;pause;cont|1',
            log: 'hdr.rep|2|x|y;hdr.add|0|x|y;local|500|x;cont|1;close|1;cont|0;prop|response\u0000code;eff|root;hdr.get|0|:path;eff|last',
          }),
        ],
      },
      {
        name: 'effective',
        service: 'echo',
        paths: ['/effective'],
        plugins: [
          fuzz('f-effective', {
            // Paused until the call answers; the root context then acts in the stream's name.
            request_headers: 'call|echo|2000|GET|/;pause',
            http_call_response: 'eff|last;hdr.add|0|x-from-root|1;cont|0;eff|-5',
          }),
        ],
      },
      { name: 'filtered-single', service: 'single', paths: ['/filtered-single'], strip_path: true, plugins: [fuzz('f-single', {})] },
      { name: 'method-get', service: 'echo', paths: ['/method-get'], plugins: [fuzz('f-method-get', { request_headers: 'hdr.rep|0|:method|GET' })] },
      { name: 'method-head', service: 'echo', paths: ['/method-head'], plugins: [fuzz('f-method-head', { request_headers: 'hdr.rep|0|:method|HEAD' })] },
      {
        name: 'pseudo',
        service: 'echo',
        paths: ['/pseudo'],
        plugins: [fuzz('f-pseudo', { request_headers: 'hdr.rep|0|:path|/status/201;hdr.rep|0|:authority|example.test' })],
      },
      { name: 'bad-path', service: 'echo', paths: ['/bad-path'], plugins: [fuzz('f-bad-path', { request_headers: 'hdr.rep|0|:path|no slash' })] },
      {
        name: 'trailers-pause',
        service: 'echo',
        paths: ['/trailers'],
        strip_path: false,
        plugins: [fuzz('f-trailers-pause', { response_trailers: 'hdr.add|3|bad name|x;cont|1;pause' })],
      },
      {
        name: 'status',
        service: 'echo',
        paths: ['/status-edit'],
        // Response phases run in reverse: A edits :status, then B (another VM) reads response.code.
        plugins: [
          fuzz('f-status-b', { response_headers: 'prop|response\u0000code' }),
          fuzz('f-status-a', {
            response_headers: 'hdr.rep|2|:status|abc;hdr.rep|2|:status|1e400;hdr.rep|2|:status|99999999999999999999;hdr.add|2|:status|20;hdr.rep|2|:status|299',
          }),
        ],
      },
      { name: 'junk-props', service: 'echo', paths: ['/junk-props'], plugins: [fuzz('f-junk', { request_headers: 'props.junk|300|65536' })] },
      {
        name: 'literal',
        service: 'echo',
        paths: ['/literal'],
        plugins: [fuzz('f-literal', { request_headers: 'call|a:99999|1000;call|127.0.0.1:1|1000;calls.many|200' })],
      },
      { name: 'stdout', service: 'echo', paths: ['/stdout'], plugins: [fuzz('f-stdout', { request_headers: 'fdw.big|4194304|8' })] },
      { name: 'wasi', service: 'echo', paths: ['/wasi'], plugins: [fuzz('f-wasi', { request_headers: 'wasi.oob' })] },
      { name: 'oob', service: 'echo', paths: ['/oob'], plugins: [fuzz('f-oob', { request_headers: 'pairs.oob|0;call.oob;local.oob' })] },
      { name: 'grow', service: 'echo', paths: ['/grow'], plugins: [fuzz('f-grow', { request_headers: 'pairs.grow' })] },
      { name: 'local-1xx', service: 'echo', paths: ['/local-1xx'], plugins: [fuzz('f-local', { request_headers: 'local|101|x;local|199|x' })] },
      { name: 'big-header', service: 'echo', paths: ['/big-header'], plugins: [fuzz('f-big', { request_headers: 'hdr.big|0|2000000;hdr.big|0|1000' })] },
      {
        name: 'long-timers',
        service: 'echo',
        paths: ['/long-timers'],
        plugins: [
          fuzz('f-timers', {
            configure: 'tick|2147483648',
            tick: 'hdr.get|0|x',
            request_headers: 'call|echo|4294967295|GET|/slow?ms=150',
          }),
        ],
      },
      {
        name: 'start-ops',
        service: 'echo',
        paths: ['/start-ops'],
        plugins: [fuzz('f-start', { configure: 'call|a:99999|1000;wasi.oob' }, { vm_configuration: { vm_start: 'call|a:99999|1000;wasi.oob' } })],
      },
    ],
  });
});

afterAll(async () => {
  await gw?.close();
  await upstream?.close();
  closing?.closeAllConnections();
  await new Promise((r) => closing?.close(r));
});

describe('changing pseudo-headers (issue 21 row 1)', () => {
  it('follows the method sent upstream: a HEAD turned into GET is answered without a body, and the process stays up', async () => {
    const r = await send(gw.url + '/method-get', { method: 'HEAD' });
    expect(r.status).toBe(200);
    expect(r.text).toBe('');
    expect(upstream.received.at(-1)!.method).toBe('GET');
    // The gateway is still serving, on every route.
    expect((await send(gw.url + '/clean')).status).toBe(200);
    expect(reports(gw.lines, 'f-method-get', 'hdr.rep')[0]!.status).toBe(0);
  });

  it('a GET turned into HEAD gets the headers of the upstream answer and an empty body', async () => {
    const r = await send(gw.url + '/method-head');
    expect(r.status).toBe(200);
    expect(r.text).toBe('');
    expect(upstream.received.at(-1)!.method).toBe('HEAD');
    expect((await send(gw.url + '/clean')).status).toBe(200);
  });

  it('sends the :path and :authority a filter set, as Envoy does', async () => {
    const r = await send(gw.url + '/pseudo');
    expect(r.status).toBe(201);
    const echo = r.json<Echo>();
    expect(echo.url).toBe('/status/201');
    expect(echo.headers.host).toBe('example.test');
  });

  it('answers 502 when the upstream request cannot be built from the edited :path', async () => {
    expect((await send(gw.url + '/bad-path')).status).toBe(502);
    expect((await send(gw.url + '/clean')).status).toBe(200);
  });
});

describe('response trailers (issue 21 row 2)', () => {
  it('drops a trailer name HTTP/1.1 cannot carry; the response ends, with the valid trailers', async () => {
    const r = await send(gw.url + '/trailers');
    expect(r.status).toBe(200);
    expect(r.text).toBe('with trailers');
    expect(r.trailers['x-trailer']).toBe('trailer-value');
    expect(r.trailers['bad name']).toBeUndefined();
    expect(reports(gw.lines, 'f-trailers-pause', 'hdr.add')[0]!.status).toBe(0);
    expect(gw.lines.some((l) => l.msg === 'response trailer dropped: invalid name or value' && l.trailer === 'bad name')).toBe(true);
    expect((await send(gw.url + '/clean')).status).toBe(200);
  });
});

describe(':status edits and response.code (issue 21 row 5)', () => {
  it('refuses a :status that is not a three-digit code; another VM reading response.code never traps', async () => {
    const r = await send(gw.url + '/status-edit');
    expect(r.status).toBe(299);
    const edits = reports(gw.lines, 'f-status-a').filter((x) => x.op === 'hdr.rep' || x.op === 'hdr.add');
    expect(edits.map((x) => x.status)).toEqual([BAD_ARGUMENT, BAD_ARGUMENT, BAD_ARGUMENT, BAD_ARGUMENT, 0]);
    const read = reports(gw.lines, 'f-status-b', 'prop')[0]!;
    expect(read.status).toBe(0);
    expect(read.int).toBe('299'); // A's valid edit, as B sees it
    expect(traps(gw.lines)).toEqual([]);
  });
});

describe('property paths (issue 20 row 3, issue 21 row 3)', () => {
  it('keeps nothing for reads of unknown paths (the path cache stays bounded)', async () => {
    const before = cachedPropertyPaths();
    const r = await send(gw.url + '/junk-props');
    expect(r.status).toBe(200);
    expect(reports(gw.lines, 'f-junk', 'props.junk')[0]!.not_found).toBe('300');
    expect(cachedPropertyPaths() - before).toBeLessThanOrEqual(1);
  });
});

describe('a client that leaves early (issue 21 row 4)', () => {
  /** One request the client gives up on after `ms`, while the only upstream connection is busy. */
  async function abandonWhileQueued(prefix: string): Promise<void> {
    const busy = send(`${gw.url}${prefix}/slow?ms=300`);
    await new Promise((r) => setTimeout(r, 50));
    const ac = new AbortController();
    const queued = request(`${gw.url}${prefix}/queued`, { signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    await expect(queued).rejects.toThrow();
    expect((await busy).status).toBe(200);
  }

  for (const prefix of ['/direct-single', '/filtered-single', '/direct-closing', '/filtered-closing']) {
    it(`resets an upstream request abandoned before it got a connection (${prefix})`, async () => {
      for (let i = 0; i < 3; i++) await abandonWhileQueued(prefix);
      // With the single pooled socket parked, this one would wait forever.
      const r = await request(`${gw.url}${prefix}/after`, { signal: AbortSignal.timeout(5000) });
      expect(r.statusCode).toBe(200);
      await r.body.text();
    });

    it(`resets an upstream request the client abandoned mid-way (${prefix})`, async () => {
      for (let i = 0; i < 5; i++) {
        const ac = new AbortController();
        const p = request(`${gw.url}${prefix}/slow?ms=100`, { signal: ac.signal });
        setTimeout(() => ac.abort(), 5);
        await expect(p).rejects.toThrow();
      }
      const r = await request(`${gw.url}${prefix}/after`, { signal: AbortSignal.timeout(5000) });
      expect(r.statusCode).toBe(200);
      await r.body.text();
    });
  }
});

describe('host calls in late phases (issue 20)', () => {
  it('answers a status to every call after a local reply, after close_stream and in on_log; the next request is served', async () => {
    for (let i = 0; i < 2; i++) {
      const r = await send(gw.url + '/late-calls');
      expect(r.status).toBe(403);
      expect(r.text).toBe('denied');
    }
    const all = reports(gw.lines, 'f-late');
    expect(all.length).toBeGreaterThanOrEqual(2 * 14);
    for (const r of all) expect(r.status >= 0 && r.status <= 12, `${r.op} answered ${r.status}`).toBe(true);
    // on_log: the maps are read-only (BAD_ARGUMENT), response.code is the local reply's.
    const edits = all.filter((r) => r.op === 'hdr.rep' && r.name === 'x');
    expect(edits.map((r) => r.status)).toEqual([BAD_ARGUMENT, BAD_ARGUMENT]);
    expect(all.filter((r) => r.op === 'prop').map((r) => r.int)).toEqual(['403', '403']);
    expect(traps(gw.lines)).toEqual([]);
    expect((await send(gw.url + '/clean')).status).toBe(200);
  });

  it('lets a root context continue a stream in its name (set_effective_context); an unknown id is BAD_ARGUMENT', async () => {
    const r = await send(gw.url + '/effective');
    expect(r.status).toBe(200);
    expect(r.json<Echo>().headers['x-from-root']).toBe('1');
    const effs = reports(gw.lines, 'f-effective', 'eff');
    expect(effs.map((e) => e.status)).toEqual([0, BAD_ARGUMENT]);
  });
});

describe('proxy_http_call targets (issue 21 rows 6, 7, 10)', () => {
  it('answers BAD_ARGUMENT to an invalid port and to unlisted literal targets, without a pool per target', async () => {
    expect((await send(gw.url + '/literal')).status).toBe(200);
    const calls = reports(gw.lines, 'f-literal', 'call');
    expect(calls.map((c) => c.status)).toEqual([BAD_ARGUMENT, BAD_ARGUMENT]);
    expect(reports(gw.lines, 'f-literal', 'calls.many')[0]).toMatchObject({ ok: '0', bad_argument: '200' });
  });

  it('starts a plugin that calls "a:99999" from on_vm_start and on_configure (BAD_ARGUMENT, no trap)', async () => {
    const calls = reports(gw.lines, 'f-start', 'call');
    expect(calls.map((c) => c.status)).toEqual([BAD_ARGUMENT, BAD_ARGUMENT]);
    expect((await send(gw.url + '/start-ops')).status).toBe(200);
  });

  it('a listed literal target is called in the default mode and refused (BAD_ARGUMENT) in Envoy-strict mode, where only clusters exist', async () => {
    const target = `127.0.0.1:${upstream.port}`;
    const doc = (strict: boolean) => ({
      wasm: { envoy_strict: strict, http_call_targets: [target] },
      services: [{ name: 'echo', url: upstream.url }],
      routes: [{ name: 'lit', service: 'echo', plugins: [fuzz('f-listed', { request_headers: `call|${target}|1000` })] }],
    });
    for (const strict of [false, true]) {
      const g = await startGateway(doc(strict));
      try {
        expect((await send(g.url + '/x')).status).toBe(200);
        expect(reports(g.lines, 'f-listed', 'call').map((c) => c.status), `envoy_strict ${strict}`).toEqual([strict ? BAD_ARGUMENT : 0]);
      } finally {
        await g.close();
      }
    }
  });

  it('never lets a plugin reach the Admin API: refused at run time, and refused as a listed target', async () => {
    const adminPort = await closedPort();
    const app = await startApp({
      admin: { listen: { address: '127.0.0.1', port: adminPort } },
      services: [{ name: 'echo', url: upstream.url }],
      routes: [
        { name: 'victim', service: 'echo', paths: ['/victim'] },
        {
          name: 'attacker',
          service: 'echo',
          paths: ['/attack'],
          plugins: [fuzz('f-admin', { request_headers: `call|127.0.0.1:${adminPort}|1000|DELETE|/routes/victim` })],
        },
      ],
    });
    try {
      expect((await send(app.url + '/attack')).status).toBe(200);
      expect(reports(app.lines, 'f-admin', 'call')[0]!.status).toBe(BAD_ARGUMENT);
      expect((await send(app.admin + '/routes/victim')).status).toBe(200);
      expect((await send(app.url + '/victim')).status).toBe(200);
    } finally {
      await app.app.close();
    }
    const withAdmin = {
      admin: { listen: { address: '127.0.0.1', port: 8123 } },
      wasm: { http_call_targets: ['localhost:8123'] },
    };
    expect(() => validateConfigObject(withAdmin, 'test', { baseDir: ROOT })).toThrow(/admin listener/);
    expect(() => validateConfigObject({ wasm: { http_call_targets: ['a:99999'] } }, 'test', { baseDir: ROOT })).toThrow(/1\.\.65535/);
  });
});

describe('guest durations (issue 20 row 2, issue 21 row 9)', () => {
  it('clamps a tick period and a call timeout of 2^31 ms or more instead of running them every millisecond', async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      expect(reports(gw.lines, 'f-timers', 'tick')[0]!.status).toBe(0);
      const r = await send(gw.url + '/long-timers');
      expect(r.status).toBe(200);
      await until(() => reports(gw.lines, 'f-timers', 'call_response').length > 0);
      // A successful response (headers), not an immediate timeout (none).
      expect(Number(reports(gw.lines, 'f-timers', 'call_response')[0]!.headers)).toBeGreaterThan(0);
      await new Promise((r) => setTimeout(r, 100));
      // No tick ran: the period is about 24.8 days.
      expect(reports(gw.lines, 'f-timers', 'hdr.get')).toEqual([]);
      expect(warnings.filter((w) => w.name === 'TimeoutOverflowWarning')).toEqual([]);
    } finally {
      process.off('warning', onWarning);
    }
  });
});

describe('WASI (issue 21 rows 8, 11)', () => {
  it('logs every long fd_write at once, capped, instead of holding the line without bound', async () => {
    expect((await send(gw.url + '/stdout')).status).toBe(200);
    const out = gw.lines.filter((l) => l.plugin === 'f-stdout' && l.source === 'stdout');
    expect(out).toHaveLength(8);
    for (const l of out) expect(l.msg.length).toBeLessThan(MAX_STDIO_LINE + 100);
    expect(reports(gw.lines, 'f-stdout', 'fdw.big')[0]!.status).toBe(0);
  });

  it('answers EFAULT to out-of-bounds pointers, at start-up and per request', async () => {
    expect((await send(gw.url + '/wasi')).status).toBe(200);
    const wasi = reports(gw.lines, 'f-wasi').filter((r) => r.op.startsWith('wasi.'));
    expect(wasi.length).toBe(8);
    for (const r of wasi) expect([r.op, r.status]).toEqual([r.op, EFAULT]);
    // The plugin that ran the same calls in on_vm_start and on_configure started.
    const atStart = reports(gw.lines, 'f-start').filter((r) => r.op.startsWith('wasi.'));
    expect(atStart.length).toBe(16);
    for (const r of atStart) expect([r.op, r.status]).toEqual([r.op, EFAULT]);
  });
});

describe('memory edges (issue 21 rows 12, 13)', () => {
  it('answers INVALID_MEMORY_ACCESS to an empty pairs argument at an out-of-bounds pointer', async () => {
    expect((await send(gw.url + '/oob')).status).toBe(200);
    const r = reports(gw.lines, 'f-oob');
    expect(r.map((x) => [x.op, x.status])).toEqual([
      ['pairs.oob', INVALID_MEMORY_ACCESS],
      ['call.oob', INVALID_MEMORY_ACCESS],
      ['local.oob', INVALID_MEMORY_ACCESS],
    ]);
  });

  it('serializes header pairs before the guest malloc runs (a map edited by malloc is not written past the block)', async () => {
    expect((await send(gw.url + '/grow')).status).toBe(200);
    const r = reports(gw.lines, 'f-grow', 'pairs.grow')[0]!;
    expect(r.status).toBe(0);
    expect(r.len).toBe(r.need);
    // The header malloc added is there for the next reader (here: the upstream).
    expect(upstream.received.at(-1)!.headers['x-added-by-malloc']).toBeDefined();
  });
});

describe('local responses and bounds (issue 21 row 15, issue 20 bounds)', () => {
  it('refuses send_local_response with a 1xx code (BAD_ARGUMENT); the request goes on', async () => {
    expect((await send(gw.url + '/local-1xx')).status).toBe(200);
    expect(reports(gw.lines, 'f-local', 'local').map((r) => r.status)).toEqual([BAD_ARGUMENT, BAD_ARGUMENT]);
  });

  it('refuses a header edit over the map bound, counts it, and keeps a small one', async () => {
    const r = await send(gw.url + '/big-header');
    expect(r.status).toBe(200);
    expect(reports(gw.lines, 'f-big', 'hdr.big').map((x) => x.status)).toEqual([BAD_ARGUMENT, 0]);
    expect(r.json<Echo>().headers['x-big']).toHaveLength(1000);
    expect(gw.gateway.metricsText()).toMatch(/hookwire_wasm_bound_hits_total\{vm_id="f-big",bound="header_map"\} 1/);
  });
});
