/**
 * Logging (ABI §1): proxy_log at every level, proxy_get_log_level, and WASI
 * fd_write (stdout lines carry the SDK's "[LEVEL]: " prefix; stderr is error).
 */
import { describe, it, expect } from 'vitest';
import type { HostEmulator } from '../../../host/testing/emulator.js';
import { Status, drain, op, startProbe, statuses } from './probe.js';

/** Log records that are not the probe's own reports. */
function guestLines(host: HostEmulator) {
  return host
    .logRecords()
    .filter((r) => r.source !== 'host' && !r.message.startsWith('R '))
    .map((r) => ({ level: r.level, message: r.message, source: r.source, contextId: r.contextId, plugin: r.plugin }));
}

const LEVELS = [0, 1, 2, 3, 4, 5];

describe('proxy_log', () => {
  it('delivers a message at every level exactly (trace 0 ... critical 5), tagged with plugin and context', async () => {
    const host = await startProbe(LEVELS.map((l) => op('request_headers', 'log', l, `level ${l} ☕`)), { name: 'logger' });
    const id = host.initHttpContext();
    host.callOnRequestHeaders(id, { ':path': '/' });
    expect(guestLines(host)).toEqual(
      LEVELS.map((l) => ({ level: l, message: `level ${l} ☕`, source: 'proxy_log', contextId: id, plugin: 'logger' })),
    );
    expect(statuses(drain(host))).toEqual(LEVELS.map(() => Status.OK));
  });

  it('answers BAD_ARGUMENT to a level beyond critical and logs nothing', async () => {
    const host = await startProbe([op('request_headers', 'log', 6, 'too loud'), op('request_headers', 'log', 0xffffffff, 'way too loud')]);
    const id = host.initHttpContext();
    host.callOnRequestHeaders(id, { ':path': '/' });
    expect(guestLines(host)).toEqual([]);
    expect(statuses(drain(host))).toEqual([Status.BAD_ARGUMENT, Status.BAD_ARGUMENT]);
  });
});

describe('proxy_get_log_level', () => {
  it.each([
    { logLevel: 'trace' as const, expected: 0 },
    { logLevel: 'debug' as const, expected: 1 },
    { logLevel: 'info' as const, expected: 2 },
  ])('returns the configured level ($logLevel) and messages below it are dropped', async ({ logLevel, expected }) => {
    const host = await startProbe([op('configure', 'log_level'), ...LEVELS.map((l) => op('configure', 'log', l, `m${l}`))], { logLevel });
    expect(guestLines(host).map((x) => x.level)).toEqual(LEVELS.filter((l) => l >= expected));
    const [r] = drain(host, 'configure').filter((x) => x.op === 'log_level');
    expect([r!.s, Number(r!.f.v)]).toEqual([Status.OK, expected]);
  });
});

describe('WASI stdout and stderr', () => {
  it('gives stdout lines the level of their SDK prefix, plain stdout info, and stderr error', async () => {
    const host = await startProbe([
      op('configure', 'stdout', '[TRACE]: t1\n'),
      op('configure', 'stdout', '[DEBUG]: d1\n'),
      op('configure', 'stdout', '[INFO]: i1\n'),
      op('configure', 'stdout', '[WARN]: w1\n'),
      op('configure', 'stdout', '[ERROR]: e1\n'),
      op('configure', 'stdout', '[CRITICAL]: c1\n'),
      op('configure', 'stdout', 'plain line\n'),
      op('configure', 'stderr', 'went wrong\n'),
      op('configure', 'stdout', 'part-'),
      op('configure', 'stdout', 'two\nthree\n'),
    ]);
    expect(guestLines(host).map(({ level, message, source }) => [level, source, message])).toEqual([
      [0, 'stdout', 't1'],
      [1, 'stdout', 'd1'],
      [2, 'stdout', 'i1'],
      [3, 'stdout', 'w1'],
      [4, 'stdout', 'e1'],
      [5, 'stdout', 'c1'],
      [2, 'stdout', 'plain line'],
      [4, 'stderr', 'went wrong'],
      // A line written in pieces is one record; several lines in one write are several.
      [2, 'stdout', 'part-two'],
      [2, 'stdout', 'three'],
    ]);
  });
});
