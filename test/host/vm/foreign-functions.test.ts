import { describe, expect, it } from 'vitest';
import { Status } from '../../../host/abi/constants.js';
import type { ForeignFunction } from '../../../host/vm/runtime.js';
import { FilterResult } from '../../../host/testing/emulator.js';
import { only, startProbe, streamOps } from './helpers.js';

describe('foreign functions (proxy_call_foreign_function)', () => {
  it('passes the arguments and the caller to the registered function and returns its bytes to the guest', async () => {
    const calls: Array<{ args: string; caller: Parameters<ForeignFunction>[1] }> = [];
    const host = await startProbe(
      {},
      {
        foreignFunctions: {
          reverse: (args, caller) => {
            calls.push({ args: args.toString(), caller });
            return Buffer.from(args.toString().split('').reverse().join(''));
          },
        },
      },
    );
    const r = only(streamOps(host, 'ff|reverse|hookwire'), 'ff');
    expect(r).toMatchObject({ status: Status.OK, value: 'eriwkooh' });
    expect(calls).toHaveLength(1);
    expect(calls[0]!.args).toBe('hookwire');
    expect(calls[0]!.caller).toMatchObject({ vmId: 'plugin', plugin: 'plugin' });
    // Called from a stream: the caller is that stream's context, not the root.
    expect(calls[0]!.caller.contextId).not.toBe(host.plugin.id);
  });

  it('answers NOT_FOUND for a name nobody registered', async () => {
    const host = await startProbe({}, { foreignFunctions: { known: () => Buffer.from('x') } });
    const r = only(streamOps(host, 'ff|unknown_fn|args'), 'ff');
    expect(r.status).toBe(Status.NOT_FOUND);
    expect(r).not.toHaveProperty('value');
  });

  it('returns a status the function chooses, and empty results as OK', async () => {
    const host = await startProbe(
      {},
      {
        foreignFunctions: {
          refuse: () => Status.BAD_ARGUMENT,
          nothing: () => new Uint8Array(0),
        },
      },
    );
    const [refused, empty] = streamOps(host, 'ff|refuse|x;ff|nothing|x');
    expect(refused!.status).toBe(Status.BAD_ARGUMENT);
    expect(empty).toMatchObject({ status: Status.OK, value: '' });
  });

  it('also works from the root context (on_configure)', async () => {
    let caller: Parameters<ForeignFunction>[1] | null = null;
    const host = await startProbe(
      { configure: 'ff|whoami|' },
      {
        foreignFunctions: {
          whoami: (_args, c) => {
            caller = c;
            return Buffer.from('root');
          },
        },
      },
    );
    expect(caller).toMatchObject({ contextId: host.plugin.id });
  });

  it('a foreign function that throws answers INTERNAL_FAILURE and logs the error; the VM keeps running', async () => {
    const host = await startProbe(
      {},
      {
        foreignFunctions: {
          broken: () => {
            throw new Error('host bug');
          },
        },
      },
    );
    const id = host.initHttpContext();
    const r = host.callOnRequestHeaders(id, { ':path': '/', 'x-ops': 'ff|broken|' });
    expect(r).toBe(FilterResult.CONTINUE);
    expect(host.plugin.vm.poisoned).toBeNull();
    expect(host.logs('error')).toContain('foreign function broken threw: host bug');
    expect(host.logs('info').join('\n')).toMatch(/"status":10\b/);
    expect(host.localResponse(id)).toBeNull();
  });
});
