/**
 * The differential test of issue 15: one scripted probe (the abi-probe
 * fixture: every host call reports its status and what it handed over) runs
 * the same script through the real gateway (a real client, a real upstream)
 * and in the HostEmulator, and the two records must be identical.
 *
 * The gateway run comes first; what the outside world gave it (the request
 * headers as the filters saw them, the body chunks, the upstream's response,
 * the http call's answer) is read back from its records and replayed into the
 * emulator, phase by phase, in the order the gateway ran them. Everything the
 * host computes (statuses, properties, local replies and the response phases
 * they run, shared data, queues, metrics, http call results) must then come
 * out the same. Intended differences are listed in the README's emulator
 * section; none of them is exercised here.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { parsePairs } from '../../host/abi/memory.js';
import { FilterResult, HostEmulator } from '../../host/testing/emulator.js';
import { op, parseRecord, probeWasm, type Rec } from '../host/abi/probe.js';
import { send, startGateway, until, type Reply, type TestGateway } from '../helpers/gateway.js';
import { fixture } from '../helpers/paths.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';

const NUL = '\0';
const prop = (...path: string[]) => path.join(NUL);

let upstream: Upstream | undefined;
let gw: TestGateway | undefined;
let host: HostEmulator | undefined;
/** The emulator's stream ids, in the order the replay opened them. */
let replayed: number[] = [];

afterEach(async () => {
  replayed = [];
  host?.close();
  host = undefined;
  await gw?.close();
  gw = undefined;
  await upstream?.close();
  upstream = undefined;
});

interface ProbeRequest {
  path: string;
  method: string;
  headers: Record<string, string>;
  body?: string;
}

/** Run `script` as plugin "probe" on a fresh gateway (one plugin: ids and counters start as in a fresh emulator). */
async function throughGateway(script: readonly string[], request: ProbeRequest) {
  const { replies, records } = await requestsThroughGateway(script, [request]);
  const reply = replies[0]!;
  if (reply instanceof Error) throw reply;
  return { reply, records };
}

/** Send `requests` one after the other; the records once every stream has ended (its access log line written, after on_log). */
async function requestsThroughGateway(script: readonly string[], requests: readonly ProbeRequest[], failurePolicy = 'fail_closed') {
  upstream = await startUpstream();
  gw = await startGateway(
    {
      services: [{ name: 'probe-svc', url: upstream.url }],
      routes: [
        {
          name: 'r-probe',
          service: 'probe-svc',
          paths: ['/'],
          plugins: [{ name: 'probe', wasm: fixture('abi-probe'), configuration: script.join('\n'), failure_policy: failurePolicy }],
        },
      ],
    },
  ); // startGateway reloads a trapped VM for the very next stream, as the emulator does
  const lines = gw.lines;
  // A stream the gateway resets ends the client's request with an error.
  const replies: Array<Reply | Error> = [];
  for (const [i, request] of requests.entries()) {
    const body = request.body === undefined ? {} : { body: request.body };
    replies.push(await send(gw.url + request.path, { method: request.method, headers: request.headers, ...body }).catch((err: unknown) => err as Error));
    // on_log runs once the response is over, before the stream's access log line.
    await until(() => lines.filter((l) => l.msg === 'request').length > i);
  }
  const records = lines.filter((l) => l.plugin === 'probe' && l.msg.startsWith('R ')).map((l) => l.msg);
  return { replies, records };
}

const fromBytes = (latin1: string) => Buffer.from(latin1, 'latin1').toString('utf8');

/** The first record of `op` after the args record at `i`, in the same phase. */
function input(recs: Rec[], i: number, opName: string): Rec {
  const phase = recs[i]!.phase;
  for (let j = i + 1; j < recs.length && recs[j]!.phase === phase && recs[j]!.op !== 'args'; j++) {
    if (recs[j]!.op === opName) return recs[j]!;
  }
  throw new Error(`the script reads no ${opName} in ${phase}: the replay needs it`);
}

function pairsOf(rec: Rec): Array<[string, string]> {
  const flat = parsePairs(Buffer.from(rec.f.hex ?? '', 'hex'));
  if (flat === null) throw new Error(`not a pairs map: ${rec.f.hex}`);
  const out: Array<[string, string]> = [];
  for (let i = 0; i < flat.length; i += 2) out.push([fromBytes(flat[i]!), fromBytes(flat[i + 1]!)]);
  return out;
}

const bodyOf = (rec: Rec) => Buffer.from(rec.f.hex ?? '', 'hex');

/**
 * Replay the gateway's inputs into a fresh emulator, phase by phase in the
 * gateway's order; response phases of a locally answered stream are not
 * replayed (the emulator runs them itself, on the reply).
 */
async function throughEmulator(
  script: readonly string[],
  gatewayRecords: readonly string[],
  upstreams: string[],
  failurePolicy: 'fail_closed' | 'fail_open' | 'reload' = 'fail_closed',
): Promise<string[]> {
  host = await HostEmulator.start({ wasm: probeWasm(), name: 'probe', pluginConfig: script.join('\n'), upstreams, logLevel: 'info', failurePolicy });
  const recs = gatewayRecords.map((m) => parseRecord(m)!);
  let id = 0;
  for (let i = 0; i < recs.length; i++) {
    const r = recs[i]!;
    if (r.op !== 'args') continue;
    const eos = r.f.eos === '1';
    switch (r.phase) {
      case 'request_headers':
        id = host.initHttpContext();
        replayed.push(id);
        host.callOnRequestHeaders(id, pairsOf(input(recs, i, 'get_pairs')), eos);
        break;
      case 'request_body':
        host.callOnRequestBody(id, bodyOf(input(recs, i, 'get_buffer')), eos, true);
        break;
      case 'call_response': {
        const [call] = host.httpCalls();
        host.respondToHttpCall(call!.token, { headers: pairsOf(input(recs, i, 'get_pairs')), body: bodyOf(input(recs, i, 'get_buffer')) });
        break;
      }
      case 'response_headers':
        if (host.localResponse(id) === null) host.callOnResponseHeaders(id, pairsOf(input(recs, i, 'get_pairs')), eos);
        break;
      case 'response_body':
        if (host.localResponse(id) === null) host.callOnResponseBody(id, bodyOf(input(recs, i, 'get_buffer')), eos, true);
        break;
      case 'response_trailers':
        if (host.localResponse(id) === null) host.callOnResponseTrailers(id, pairsOf(input(recs, i, 'get_pairs')));
        break;
      case 'log':
        host.completeHttpContext(id);
        break;
    }
  }
  return host.logs('info').filter((m) => m.startsWith('R '));
}

describe('the emulator answers as the gateway does (same script, same records)', () => {
  it('every phase, headers, bodies, properties, http calls, shared data, queues and metrics', async () => {
    const rh = 'request_headers';
    const cr = 'call_response';
    const script = [
      op(rh, 'get_pairs', 0),
      op(rh, 'get_value', 0, ':path'),
      op(rh, 'get_property', prop('request', 'path')),
      op(rh, 'get_property', prop('request', 'url_path')),
      op(rh, 'get_property', prop('request', 'query')),
      op(rh, 'get_property', prop('request', 'method')),
      op(rh, 'get_property', prop('request', 'host')),
      op(rh, 'get_property', prop('request', 'scheme')),
      op(rh, 'get_property', prop('request', 'useragent')),
      op(rh, 'get_property', prop('request', 'headers', 'x-probe-in')),
      op(rh, 'get_property', prop('request', 'size')),
      op(rh, 'get_property', prop('response', 'code')),
      op(rh, 'get_property', prop('response', 'code_details')),
      op(rh, 'get_property', prop('no', 'such', 'thing')),
      op(rh, 'set_property', prop('my', 'key'), 'mine'),
      op(rh, 'get_property', prop('my', 'key')),
      op(rh, 'add', 0, 'x-added', '1'),
      op(rh, 'replace', 0, 'x-probe-in', 'replaced'),
      op(rh, 'remove', 0, 'x-gone'),
      op(rh, 'size', 0),
      op(rh, 'get_pairs', 2),
      op(rh, 'get_value', 3, 'x'),
      op(rh, 'get_buffer', 0, 0, 100),
      op(rh, 'buffer_status', 0),
      op(rh, 'get_buffer', 4, 0, 100),
      op(rh, 'http_call', 'undeclared-cluster', 1000, '', ':method', 'GET', ':path', '/x', ':authority', 'a'),
      op(rh, 'http_call', 'probe-svc', 5000, 'ping', ':method', 'POST', ':path', '/status/201', ':authority', 'probe'),
      op(rh, 'set_shared', 'k', 'v1', 0),
      op(rh, 'set_shared', 'k', 'v2', 999),
      op(rh, 'get_shared', 'k'),
      op(rh, 'get_shared', 'absent'),
      op(rh, 'register_queue', 'q'),
      op(rh, 'enqueue', 'last', 'item'),
      op(rh, 'dequeue', 'last'),
      op(rh, 'dequeue', 'last'),
      op(rh, 'resolve_queue', 'no-such-vm', 'q'),
      op(rh, 'enqueue', 777, 'x'),
      op(rh, 'define_metric', 0, 'probe_counter'),
      op(rh, 'increment_metric', 'last', 5),
      op(rh, 'get_metric', 'last'),
      op(rh, 'define_metric', 1, 'probe_gauge'),
      op(rh, 'increment_metric', 'last', '-3'),
      op(rh, 'get_metric', 'last'),
      op(rh, 'define_metric', 2, 'probe_histogram'),
      op(rh, 'record_metric', 'last', 7),
      op(rh, 'get_metric', 999),
      op(rh, 'continue', 9),
      op(rh, 'log_level'),
      op(rh, 'return', 1),
      op(cr, 'get_pairs', 6),
      op(cr, 'get_buffer', 4, 0, 1000),
      op(cr, 'buffer_status', 4),
      op(cr, 'get_pairs', 7),
      op(cr, 'get_status'),
      op(cr, 'get_pairs', 0),
      op(cr, 'set_effective', 'origin'),
      op(cr, 'get_value', 0, 'x-added'),
      op(cr, 'add', 0, 'x-from-call', 'yes'),
      op(cr, 'continue', 0),
      op('request_body', 'get_buffer', 0, 0, 1000),
      op('request_body', 'buffer_status', 0),
      op('request_body', 'get_property', prop('request', 'size')),
      op('request_body', 'get_property', prop('request', 'total_size')),
      op('response_headers', 'get_pairs', 2),
      op('response_headers', 'get_property', prop('response', 'code')),
      op('response_headers', 'get_property', prop('response', 'code_details')),
      op('response_headers', 'get_property', prop('response', 'headers', 'content-type')),
      op('response_headers', 'get_property', prop('response', 'size')),
      op('response_headers', 'get_value', 0, 'x-from-call'),
      op('response_headers', 'add', 2, 'x-resp', '1'),
      op('response_body', 'get_buffer', 1, 0, 100000),
      op('response_body', 'buffer_status', 1),
      op('response_body', 'get_property', prop('response', 'size')),
      op('log', 'get_property', prop('response', 'code')),
      op('log', 'get_property', prop('response', 'code_details')),
      op('log', 'get_property', prop('response', 'size')),
      op('log', 'get_property', prop('response', 'total_size')),
      op('log', 'get_property', prop('request', 'total_size')),
      op('log', 'get_value', 2, 'x-resp'),
      op('log', 'add', 2, 'x-late', 'v'),
      op('log', 'get_shared', 'k'),
    ];
    const g = await throughGateway(script, {
      path: '/probe/path?a=1',
      method: 'POST',
      headers: { 'x-probe-in': 'in', 'x-gone': 'bye', 'user-agent': 'parity', 'content-type': 'text/plain' },
      body: 'hello body',
    });
    expect(g.reply.status).toBe(200);
    // The script did run through every phase in the gateway.
    const phases = new Set(g.records.map((m) => m.split(' ')[1]));
    expect([...phases]).toEqual(expect.arrayContaining(['configure', 'request_headers', 'call_response', 'request_body', 'response_headers', 'response_body', 'log']));
    // The http call response map holds the upstream's headers as its HTTP/1 codec read them, hop-by-hop
    // ones included (Envoy's client codec keeps them; only the connection manager strips them on the way
    // to a client, and an http call does not pass it).
    const callMap = pairsOf(g.records.map((m) => parseRecord(m)!).find((r) => r.phase === 'call_response' && r.op === 'get_pairs')!);
    expect(callMap.map(([k]) => k)).toEqual(expect.arrayContaining([':status', 'connection', 'keep-alive']));
    const e = await throughEmulator(script, g.records, ['probe-svc']);
    expect(e).toEqual(g.records);
  });

  it('a local reply: iteration stops whatever the guest returns, the response phases run on the reply', async () => {
    const rh = 'request_headers';
    const script = [
      op(rh, 'get_pairs', 0),
      op(rh, 'send_local', 403, 'denied by\tprobe', 'no entry', 'x-why', 'because'),
      op(rh, 'get_property', prop('response', 'code')),
      op(rh, 'return', 0),
      op('request_body', 'get_buffer', 0, 0, 100),
      op('response_headers', 'get_pairs', 2),
      op('response_headers', 'get_property', prop('response', 'code')),
      op('response_headers', 'get_property', prop('response', 'code_details')),
      op('response_headers', 'get_property', prop('response', 'size')),
      op('response_headers', 'add', 2, 'x-on-reply', '1'),
      op('response_body', 'get_buffer', 1, 0, 100),
      op('response_body', 'get_property', prop('response', 'size')),
      op('log', 'get_property', prop('response', 'code')),
      op('log', 'get_property', prop('response', 'code_details')),
      op('log', 'get_property', prop('response', 'size')),
      op('log', 'get_property', prop('response', 'total_size')),
      op('log', 'get_pairs', 2),
    ];
    const g = await throughGateway(script, { path: '/deny', method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'never read' });
    expect(g.reply.status).toBe(403);
    expect(g.reply.text).toBe('no entry');
    expect(g.reply.headers['x-on-reply']).toBe('1');
    const phases = g.records.filter((m) => m.includes(' args ')).map((m) => m.split(' ')[1]);
    expect(phases).toEqual(['request_headers', 'response_headers', 'response_body', 'log']);
    // Envoy's details: whitespace replaced with "_".
    const details = Buffer.from('denied_by_probe').toString('hex');
    expect(g.records.filter((m) => m.startsWith('R log get_property') && m.includes(` hex=${details} `))).toHaveLength(1);
    const e = await throughEmulator(script, g.records, []);
    expect(e).toEqual(g.records);
  });

  it('a response body replaced with set_buffer, response trailers read and edited', async () => {
    const script = [
      op('request_headers', 'get_pairs', 0),
      op('request_body', 'get_buffer', 0, 0, 1000),
      op('request_body', 'get_property', prop('request', 'size')),
      op('response_headers', 'get_pairs', 2),
      op('response_body', 'get_buffer', 1, 0, 1000),
      op('response_body', 'set_buffer', 1, 0, 100000, 'new body'),
      op('response_body', 'buffer_status', 1),
      op('response_body', 'get_property', prop('response', 'size')),
      op('response_trailers', 'get_pairs', 3),
      op('response_trailers', 'add', 3, 'x-added-trailer', 't'),
      op('response_trailers', 'get_property', prop('response', 'size')),
      op('log', 'get_property', prop('response', 'size')),
      op('log', 'get_property', prop('response', 'total_size')),
      op('log', 'get_property', prop('request', 'total_size')),
      op('log', 'get_pairs', 3),
    ];
    const g = await throughGateway(script, { path: '/trailers', method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'original' });
    expect(g.reply.status).toBe(200);
    expect(g.reply.text).toBe('new body');
    expect(g.reply.trailers).toMatchObject({ 'x-trailer': 'trailer-value', 'x-added-trailer': 't' });
    const phases = g.records.filter((m) => m.includes(' args ')).map((m) => m.split(' ')[1]);
    expect(phases).toEqual(expect.arrayContaining(['request_body', 'response_body', 'response_trailers', 'log']));
    const e = await throughEmulator(script, g.records, []);
    expect(e).toEqual(g.records);
  });

  it('a local reply from a response phase replaces the upstream response before it is sent', async () => {
    const script = [
      op('request_headers', 'get_pairs', 0),
      op('response_headers', 'get_pairs', 2),
      op('response_headers', 'send_local', 502, 'bad upstream', 'replaced', 'x-r', '1'),
      op('response_headers', 'get_property', prop('response', 'code')),
      op('response_headers', 'return', 0),
      op('response_body', 'get_buffer', 1, 0, 100),
      op('log', 'get_property', prop('response', 'code')),
      op('log', 'get_property', prop('response', 'code_details')),
      op('log', 'get_property', prop('response', 'size')),
      op('log', 'get_pairs', 2),
    ];
    const g = await throughGateway(script, { path: '/', method: 'GET', headers: {} });
    expect(g.reply.status).toBe(502);
    expect(g.reply.text).toBe('replaced');
    expect(g.reply.headers['x-r']).toBe('1');
    const phases = g.records.filter((m) => m.includes(' args ')).map((m) => m.split(' ')[1]);
    expect(phases).toEqual(['request_headers', 'response_headers', 'log']);
    const e = await throughEmulator(script, g.records, []);
    expect(e).toEqual(g.records);
    expect(host!.localResponse(replayed[0]!)).toMatchObject({ status: 502 });
    expect(host!.currentResponseBody(replayed[0]!).toString()).toBe('replaced');
  });

  it('a local reply from an http call response: the response phases run on the reply', async () => {
    const script = [
      op('request_headers', 'get_pairs', 0),
      op('request_headers', 'http_call', 'probe-svc', 5000, '', ':method', 'GET', ':path', '/status/200', ':authority', 'probe'),
      op('request_headers', 'return', 1),
      op('call_response', 'get_pairs', 6),
      op('call_response', 'get_buffer', 4, 0, 100000),
      op('call_response', 'set_effective', 'origin'),
      op('call_response', 'send_local', 401, 'call said no', 'denied', 'x-from', 'call'),
      op('response_headers', 'get_pairs', 2),
      op('response_headers', 'get_property', prop('response', 'code_details')),
      op('response_headers', 'add', 2, 'x-on-reply', '1'),
      op('response_body', 'get_buffer', 1, 0, 100),
      op('log', 'get_property', prop('response', 'code')),
      op('log', 'get_property', prop('response', 'code_details')),
      op('log', 'get_property', prop('response', 'size')),
    ];
    const g = await throughGateway(script, { path: '/', method: 'GET', headers: {} });
    expect(g.reply.status).toBe(401);
    expect(g.reply.text).toBe('denied');
    expect(g.reply.headers['x-on-reply']).toBe('1');
    const phases = g.records.filter((m) => m.includes(' args ')).map((m) => m.split(' ')[1]);
    expect(phases).toEqual(['request_headers', 'call_response', 'response_headers', 'response_body', 'log']);
    const e = await throughEmulator(script, g.records, ['probe-svc']);
    expect(e).toEqual(g.records);
  });

  describe.each(['fail_closed', 'fail_open', 'reload'] as const)('a trap under %s', (policy) => {
    it('fails the stream and the next one as the gateway does', async () => {
      const script = [
        op('request_headers', 'get_pairs', 0),
        op('response_headers', 'get_pairs', 2),
        op('response_body', 'get_buffer', 1, 0, 100000),
        op('response_body', 'trap'),
        op('log', 'get_property', prop('response', 'code')),
      ];
      const request = { path: '/', method: 'GET', headers: {} };
      const g = await requestsThroughGateway(script, [request, request], policy);
      // fail_open: the filter is dropped (then skipped) and the upstream's answer goes through; else 503.
      const status = policy === 'fail_open' ? 200 : 503;
      expect(g.replies.map((r) => (r instanceof Error ? r : r.status))).toEqual([status, status]);
      // A reload runs the second stream on a fresh VM (which traps again); the others never reach the guest again.
      const streams = g.records.filter((m) => m.startsWith('R request_headers args')).length;
      expect(streams).toBe(policy === 'reload' ? 2 : 1);
      expect(g.records.some((m) => m.startsWith('R log'))).toBe(false);

      const e = await throughEmulator(script, g.records, [], policy);
      expect(e).toEqual(g.records);
      for (const id of replayed) {
        expect(host!.streamFailed(id)).toBe(true);
        if (policy === 'fail_open') expect(host!.localResponse(id)).toBeNull();
        else expect(host!.localResponse(id)).toMatchObject({ status: 503, details: 'wasm_fail_stream' });
      }
      if (policy !== 'reload') expect(() => host!.initHttpContext()).toThrow(policy === 'fail_open' ? /\(skip\)/ : /\(reject\)/);
    });
  });

  it('close_stream resets the stream: no more phases, on_log still runs', async () => {
    const script = [
      op('request_headers', 'get_pairs', 0),
      op('response_headers', 'get_pairs', 2),
      op('response_headers', 'close', 1),
      op('response_headers', 'return', 0),
      op('response_body', 'get_buffer', 1, 0, 100000),
      op('log', 'get_property', prop('response', 'code_details')),
      op('log', 'get_property', prop('response', 'code')),
    ];
    const g = await requestsThroughGateway(script, [{ path: '/', method: 'GET', headers: {} }]);
    expect(g.replies[0]).toBeInstanceOf(Error);
    const phases = g.records.filter((m) => m.includes(' args ')).map((m) => m.split(' ')[1]);
    expect(phases).toEqual(['request_headers', 'response_headers', 'log']);
    // The upstream's answer already set the details (via_upstream): Envoy keeps the first reason.
    const details = Buffer.from('via_upstream').toString('hex');
    expect(g.records.some((m) => m.startsWith('R log get_property') && m.includes(` hex=${details} `))).toBe(true);
    const e = await throughEmulator(script, g.records, []);
    expect(e).toEqual(g.records);
    expect(host!.streamControl(replayed[0]!).closed).toEqual({ request: false, response: true });
  });

  it('a local reply once the response head went out resets the stream', async () => {
    const script = [
      op('request_headers', 'get_pairs', 0),
      op('response_headers', 'get_pairs', 2),
      op('response_body', 'get_buffer', 1, 0, 100000),
      op('response_trailers', 'get_pairs', 3),
      op('response_trailers', 'send_local', 500, 'too late', 'late'),
      op('log', 'get_property', prop('response', 'code')),
      op('log', 'get_property', prop('response', 'code_details')),
      op('log', 'get_property', prop('response', 'size')),
    ];
    const g = await requestsThroughGateway(script, [{ path: '/trailers', method: 'GET', headers: {} }]);
    expect(g.replies[0]).toBeInstanceOf(Error);
    const e = await throughEmulator(script, g.records, []);
    expect(e).toEqual(g.records);
    // The data plane runs nothing more on a reset stream; the emulator refuses to, and says why.
    const id = host!.initHttpContext();
    host!.callOnRequestHeaders(id, { ':method': 'GET', ':path': '/' }, true);
    host!.callOnResponseHeaders(id, { ':status': '200' });
    host!.callOnResponseBody(id, 'sent', false);
    expect(host!.callOnResponseTrailers(id, {})).toBe(FilterResult.PAUSE);
    expect(() => host!.callOnResponseTrailers(id, {})).toThrow(/reset \(local reply 500 after the response started\)/);
  });
});
