/**
 * Properties (ABI §5): NUL-separated and dotted paths, the Envoy-strict mode,
 * value encodings (string raw, int 8-byte LE, bool 1 byte, double, maps and
 * lists as pairs), plugin_* attributes, set_property on a stream, NOT_FOUND.
 */
import { describe, it, expect } from 'vitest';
import { HeaderMap } from '../../../host/abi/header-map.js';
import { serializePairs } from '../../../host/abi/memory.js';
import { Float64 } from '../../../host/vm/properties.js';
import { TWO_PAIRS } from '../../fixtures/golden/pairs.js';
import { SENTINEL, Status, bytes, drain, op, startProbe, statuses, value } from './probe.js';

const ATTRS = {
  'request.path': '/p?q=1',
  'request.method': 'GET',
  'response.code': 200,
  'connection.id': 0x0102030405060708n,
  'connection.mtls': true,
  'upstream.tls': false,
  'request.duration': -2,
  'x.ratio': new Float64(1.5),
  'request.headers': HeaderMap.fromPairs(TWO_PAIRS.pairs),
  'x.list': ['a', 'bc'],
  'x.empty': '',
  'x.raw': Uint8Array.from([0, 255, 1]),
} as const;

function get(phase: string, path: string) {
  return op(phase, 'get_property', path);
}

describe('property paths', () => {
  it('accepts NUL-separated paths (with or without a trailing NUL) and, by default, dotted ones', async () => {
    const host = await startProbe([
      get('request_headers', 'request\0path'),
      get('request_headers', 'request\0path\0'),
      get('request_headers', 'request.path'),
      get('request_headers', 'request\0method'),
    ]);
    const id = host.initHttpContext(ATTRS);
    host.callOnRequestHeaders(id, { ':path': '/' });
    const r = drain(host);
    expect(statuses(r)).toEqual([Status.OK, Status.OK, Status.OK, Status.OK]);
    expect(r.map(value)).toEqual(['/p?q=1', '/p?q=1', '/p?q=1', 'GET']);
  });

  it('answers NOT_FOUND for a name only Object.prototype has ("constructor", "__proto__"), without trapping', async () => {
    const host = await startProbe([get('request_headers', 'constructor'), get('request_headers', '__proto__'), get('request_headers', 'request\0path')]);
    const id = host.initHttpContext(ATTRS);
    host.callOnRequestHeaders(id, { ':path': '/' });
    const r = drain(host);
    expect(statuses(r)).toEqual([Status.NOT_FOUND, Status.NOT_FOUND, Status.OK]);
    expect(host.plugin.failure).toBeNull();
  });

  it('answers NOT_FOUND to a dotted path for a built-in attribute in envoyStrict mode', async () => {
    const host = await startProbe(
      [
        get('request_headers', 'request.path'),
        get('request_headers', 'request\0path'),
        get('request_headers', 'plugin_name'),
      ],
      { envoyStrict: true, name: 'strict-plugin' },
    );
    const id = host.initHttpContext(ATTRS);
    host.callOnRequestHeaders(id, { ':path': '/' });
    const r = drain(host);
    expect(statuses(r)).toEqual([Status.NOT_FOUND, Status.OK, Status.OK]);
    expect([Number(r[0]!.f.p), Number(r[0]!.f.n)]).toEqual([SENTINEL, SENTINEL]);
    expect(value(r[1]!)).toBe('/p?q=1');
    expect(value(r[2]!)).toBe('strict-plugin');
  });

  it('answers NOT_FOUND for unknown attributes and leaves the return slots alone', async () => {
    const host = await startProbe([get('request_headers', 'nope\0x'), get('request_headers', 'request\0nope'), get('request_headers', 'nope')]);
    const id = host.initHttpContext(ATTRS);
    host.callOnRequestHeaders(id, { ':path': '/' });
    const r = drain(host);
    expect(statuses(r)).toEqual([Status.NOT_FOUND, Status.NOT_FOUND, Status.NOT_FOUND]);
    for (const x of r) expect([Number(x.f.p), Number(x.f.n)]).toEqual([SENTINEL, SENTINEL]);
  });
});

describe('property encodings (Envoy serializeValue)', () => {
  it('encodes each attribute type the way Envoy does', async () => {
    const paths = [
      'response\0code',
      'connection\0id',
      'connection\0mtls',
      'upstream\0tls',
      'request\0duration',
      'x\0ratio',
      'request\0headers',
      'x\0list',
      'x\0raw',
    ];
    const host = await startProbe(paths.map((p) => get('request_headers', p)));
    const id = host.initHttpContext(ATTRS);
    host.callOnRequestHeaders(id, { ':path': '/' });
    const r = drain(host);
    expect(statuses(r)).toEqual(paths.map(() => Status.OK));
    const hex = r.map((x) => bytes(x).toString('hex'));
    expect(hex[0]).toBe('c800000000000000'); // int: 8 bytes little-endian
    expect(hex[1]).toBe('0807060504030201');
    expect(hex[2]).toBe('01'); // bool: one byte
    expect(hex[3]).toBe('00');
    expect(hex[4]).toBe('feffffffffffffff'); // negative int (duration) two's complement
    expect(hex[5]).toBe(Buffer.from(new Float64Array([1.5]).buffer).toString('hex')); // double: 8-byte LE IEEE 754
    expect(bytes(r[6]!)).toEqual(Buffer.from(TWO_PAIRS.bytes)); // a map: pairs
    expect(bytes(r[7]!)).toEqual(serializePairs(['a', '', 'bc', ''])); // a list: values in the key slots
    expect(hex[8]).toBe('00ff01'); // bytes: raw
  });

  it('hands strings over raw as UTF-8, and an empty one as ptr 0 / len 0', async () => {
    const host = await startProbe([get('request_headers', 'x\0utf8'), get('request_headers', 'x\0empty')]);
    const id = host.initHttpContext({ ...ATTRS, 'x.utf8': 'Zürich ☕' });
    host.callOnRequestHeaders(id, { ':path': '/' });
    const [utf8, empty] = drain(host);
    expect(bytes(utf8!)).toEqual(Buffer.from('Zürich ☕', 'utf8'));
    expect([empty!.s, empty!.f.p, empty!.f.n]).toEqual([Status.OK, '0', '0']);
  });
});

describe('plugin and host attributes', () => {
  it('reports plugin_name, plugin_root_id and plugin_vm_id from the plugin configuration', async () => {
    const script = [get('configure', 'plugin_name'), get('configure', 'plugin_root_id'), get('configure', 'plugin_vm_id'), get('request_headers', 'plugin_root_id')];
    const host = await startProbe(script, { name: 'probe-name', rootId: 'probe-root', vmId: 'probe-vm' });
    const r = drain(host, 'configure');
    expect(statuses(r)).toEqual([Status.OK, Status.OK, Status.OK]);
    expect(r.map(value)).toEqual(['probe-name', 'probe-root', 'probe-vm']);
    const id = host.initHttpContext();
    host.callOnRequestHeaders(id, { ':path': '/' });
    expect(drain(host).map(value)).toEqual(['probe-root']);
  });

  it('serves host-level properties (emulator option `properties`) to every context', async () => {
    const host = await startProbe(
      [get('configure', 'node\0id'), get('request_headers', 'node\0id'), get('request_headers', 'xds\0cluster_name'), get('request_headers', 'node\0port')],
      { properties: { 'node.id': 'node-1', 'xds.cluster_name': 'edge', 'node.port': 8080 } },
    );
    expect(drain(host, 'configure').map(value)).toEqual(['node-1']);
    const id = host.initHttpContext();
    host.callOnRequestHeaders(id, { ':path': '/' });
    const r = drain(host);
    expect(statuses(r)).toEqual([Status.OK, Status.OK, Status.OK]);
    expect(r.slice(0, 2).map(value)).toEqual(['node-1', 'edge']);
    expect(bytes(r[2]!).toString('hex')).toBe('901f000000000000'); // typed host properties are encoded too
  });

  it('lets a stream set a property and read it back; other streams do not see it', async () => {
    const host = await startProbe(
      [
        op('request_headers', 'set_property', 'wasm.color', 'blue'),
        op('request_headers', 'set_property', 'wasm\0shape', 'round'),
        get('response_headers', 'wasm.color'),
        get('response_headers', 'wasm\0color'),
        get('response_headers', 'wasm.shape'),
      ],
      { envoyStrict: true },
    );
    const a = host.initHttpContext(ATTRS);
    const b = host.initHttpContext(ATTRS);
    host.callOnRequestHeaders(a, { ':path': '/' });
    expect(statuses(drain(host))).toEqual([Status.OK, Status.OK]);
    host.callOnResponseHeaders(a, { ':status': '200' });
    const r = drain(host);
    // Both path forms name the same property, also in envoyStrict mode (it is not a built-in).
    expect(statuses(r)).toEqual([Status.OK, Status.OK, Status.OK]);
    expect(r.map(value)).toEqual(['blue', 'blue', 'round']);

    host.callOnResponseHeaders(b, { ':status': '200' });
    expect(statuses(drain(host))).toEqual([Status.NOT_FOUND, Status.NOT_FOUND, Status.NOT_FOUND]);
  });
});
