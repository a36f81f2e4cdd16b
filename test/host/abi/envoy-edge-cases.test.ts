// Host-call edge cases pinned to what Envoy (proxy-wasm-cpp-host's exports.cc and
// Envoy's wasm Context) answers; the full list is in docs/errors.md.
import { describe, expect, it } from 'vitest';
import { drain, op, records, startProbe, statuses, Status } from './probe.js';

describe('host calls at their edges, as Envoy answers them', () => {
  it('an empty plugin configuration reads as OK with (0, 0), and the module starts', async () => {
    const host = await startProbe([]);
    const [config] = records(host, 'configure');
    expect(config).toMatchObject({ op: 'config', s: Status.OK, f: { size: '0', p: '0', n: '0' } });
    host.close();
  });

  it('a gauge moves both ways; below zero it reads back the 64 bits Envoy holds (-3 as i64)', async () => {
    const host = await startProbe([
      op('request_headers', 'define_metric', 1, 'g'),
      op('request_headers', 'increment_metric', 'last', '-3'),
      op('request_headers', 'get_metric', 'last'),
      op('request_headers', 'increment_metric', 'last', 5),
      op('request_headers', 'get_metric', 'last'),
    ]);
    const id = host.initHttpContext();
    host.callOnRequestHeaders(id, { ':path': '/' });
    const r = drain(host);
    expect(statuses(r)).toEqual([0, 0, 0, 0, 0]);
    expect([r[2]!.f.v, r[4]!.f.v]).toEqual(['-3', '2']);
    host.close();
  });
});
