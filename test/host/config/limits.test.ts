// The guest limits in the configuration: wasm.call_deadline_ms, start_deadline_ms,
// max_memory_mb, reload_backoff_ms, watchdog_ms, and a plugin's own `limits`.
import { describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../../host/config/defaults.js';
import { validateConfigObject } from '../../../host/config/load.js';
import { guestLimits } from '../../../host/proxy/generation.js';
import { ROOT } from '../../helpers/paths.js';

const load = (doc: Record<string, unknown>) => validateConfigObject(doc, 'limits-test', { baseDir: ROOT });
const plugin = (name: string, extra: Record<string, unknown> = {}) => ({ name, wasm: 'x.wasm', ...extra });

describe('guest limits', () => {
  it('defaults: 100 ms calls, 2 s starts, 256 MiB, 1 s reload backoff, no watchdog', () => {
    const cfg = load({ plugins: [plugin('p')] });
    expect(cfg.wasm).toMatchObject({ call_deadline_ms: 100, start_deadline_ms: 2000, max_memory_mb: 256, reload_backoff_ms: 1000, watchdog_ms: 0 });
    expect(cfg.plugins[0]!.limits).toEqual({ call_deadline_ms: null, start_deadline_ms: null, max_memory_mb: null });
    expect(guestLimits(cfg.wasm, cfg.plugins[0]!)).toEqual({ callDeadlineMs: 100, startDeadlineMs: 2000, maxMemoryMb: 256 });
    expect(DEFAULTS.wasm.call_deadline_ms).toBe(100);
  });

  it('a plugin overrides the wasm section field by field', () => {
    const cfg = load({
      wasm: { call_deadline_ms: 50, max_memory_mb: 64 },
      plugins: [plugin('p', { limits: { call_deadline_ms: 250, start_deadline_ms: null } })],
    });
    expect(guestLimits(cfg.wasm, cfg.plugins[0]!)).toEqual({ callDeadlineMs: 250, startDeadlineMs: 2000, maxMemoryMb: 64 });
  });

  it('refuses bad values, naming the path', () => {
    expect(() => load({ wasm: { call_deadline_ms: -1 } })).toThrow(/\/wasm\/call_deadline_ms/);
    expect(() => load({ wasm: { max_memory_mb: 5000 } })).toThrow(/\/wasm\/max_memory_mb/);
    expect(() => load({ plugins: [plugin('p', { limits: { deadline: 5 } })] })).toThrow(/\/plugins\/0\/limits/);
  });

  it('plugins sharing a VM must agree on its memory cap', () => {
    expect(() =>
      load({ plugins: [plugin('a', { vm_id: 'v' }), plugin('b', { vm_id: 'v', limits: { max_memory_mb: 32 } })] }),
    ).toThrow(/\/plugins\/1\/limits\/max_memory_mb.*different limits.max_memory_mb/);
  });
});
