// The event_hooks section of the configuration, the document round trip the Admin API relies on, and the composition.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { eventHooksOptions, startHookwire } from '../../host/cli/app.js';
import { DEFAULTS } from '../../host/config/defaults.js';
import { compactDocument, toDocument } from '../../host/config/document.js';
import { defaultConfig, PACKAGE_ROOT, parseConfig, validateConfigObject } from '../../host/config/load.js';
import { ConfigError, type ConfigIssue } from '../../host/errors.js';
import { DEFAULTS as HOOK_DEFAULTS } from '../../host/hooks/options.js';
import { resolveOptions } from '../../host/hooks/options.js';
import { memoryLogger } from '../helpers/gateway.js';

function issues(doc: unknown): ConfigIssue[] {
  try {
    validateConfigObject(doc, 't', { baseDir: '/srv' });
  } catch (err) {
    if (err instanceof ConfigError) return [...err.issues];
    throw err;
  }
  return [];
}

describe('event_hooks configuration', () => {
  it('has defaults: enabled, a store next to the config file, no ingest token, an empty allowlist', () => {
    const cfg = validateConfigObject({}, 't', { baseDir: '/srv/hw' });
    expect(cfg.event_hooks).toMatchObject({
      enabled: true,
      store: '/srv/hw/.hookwire/event-hooks.db',
      ingest_token: null,
      allow_hosts: [],
      allow_cidrs: [],
    });
    expect(defaultConfig().event_hooks.store).toBe(join(PACKAGE_ROOT, '.hookwire', 'event-hooks.db'));
    expect(validateConfigObject({ event_hooks: { store: ':memory:' } }, 't').event_hooks.store).toBe(':memory:');
    expect(validateConfigObject({ event_hooks: { store: 'data/hooks.db' } }, 't', { baseDir: '/a' }).event_hooks.store).toBe('/a/data/hooks.db');
  });

  it("uses the event-hooks service's own defaults for every delivery knob", () => {
    const d = DEFAULTS.event_hooks;
    const o = eventHooksOptions(validateConfigObject({}, 't').event_hooks, memoryLogger().logger);
    expect(o.delivery).toEqual(HOOK_DEFAULTS.delivery);
    expect(o.circuit).toEqual(HOOK_DEFAULTS.circuit);
    expect(o.retentionMs).toBe(HOOK_DEFAULTS.retentionMs);
    expect(o.sweepIntervalMs).toBe(HOOK_DEFAULTS.sweepIntervalMs);
    expect(o.maxEventBytes).toBe(HOOK_DEFAULTS.maxEventBytes);
    expect(o.pingOnChange).toBe(HOOK_DEFAULTS.pingOnChange);
    expect(d.delivery.retry_schedule_ms).toEqual(HOOK_DEFAULTS.delivery.retrySchedule);
    // And the service accepts them.
    expect(() => resolveOptions(o)).not.toThrow();
  });

  it('refuses unknown keys and bad values, naming the path', () => {
    expect(issues({ event_hooks: { colour: 'red' } })).toEqual([
      { path: '/event_hooks/colour', message: expect.stringMatching(/^unknown key "colour" \(allowed: enabled, store, /) },
    ]);
    expect(issues({ event_hooks: { delivery: { retry_schedule: [1] } } })[0]!.path).toBe('/event_hooks/delivery/retry_schedule');
    expect(issues({ event_hooks: { ingest_token: '' } })).toEqual([{ path: '/event_hooks/ingest_token', message: 'must be a non-empty string or null (found "")' }]);
    expect(issues({ event_hooks: { allow_cidrs: ['10.0.0.0/8', '10.0.0.0/33', 'nope', '::1', 'fd00::/8'] } })).toEqual([
      { path: '/event_hooks/allow_cidrs/1', message: expect.stringMatching(/^must be a CIDR range/) },
      { path: '/event_hooks/allow_cidrs/2', message: expect.stringMatching(/^must be a CIDR range/) },
    ]);
    expect(issues({ event_hooks: { allow_hosts: ['ok.example', 'bad host'] } })[0]!.path).toBe('/event_hooks/allow_hosts/1');
    expect(issues({ event_hooks: { delivery: { timeout_ms: 5000, lease_ms: 5000 } } })).toEqual([
      { path: '/event_hooks/delivery/lease_ms', message: expect.stringMatching(/^must be greater than event_hooks.delivery.timeout_ms/) },
    ]);
    expect(issues({ event_hooks: { circuit: { failure_ratio: 0 } } })[0]!.path).toBe('/event_hooks/circuit/failure_ratio');
    expect(issues({ event_hooks: { delivery: { jitter: 'some' } } })).toEqual([{ path: '/event_hooks/delivery/jitter', message: 'must be one of full, none (found "some")' }]);
    expect(issues({ event_hooks: { enabled: 'yes' } })[0]!.path).toBe('/event_hooks/enabled');
  });
});

describe('toDocument', () => {
  it('gives a document that validates to the same configuration (full example, explicit and compact forms)', () => {
    const md = readFileSync(join(PACKAGE_ROOT, 'docs', 'configuration.md'), 'utf8');
    const example = /## Full example\s+```yaml\n([\s\S]*?)```/.exec(md)![1]!;
    const cfg = parseConfig(example + '\nevent_hooks: {ingest_token: t0k, allow_cidrs: [10.0.0.0/8], delivery: {retry_schedule_ms: [1, 2]}}\n', 'x', { baseDir: '/srv' });
    const { base_dir: _a, ...expected } = cfg;
    for (const doc of [toDocument(cfg), compactDocument(toDocument(cfg))]) {
      const { base_dir: _b, ...again } = validateConfigObject(structuredClone(doc), 'x', { baseDir: '/elsewhere' });
      expect(again).toEqual(expected);
    }
    const compact = compactDocument(toDocument(cfg));
    expect((compact.services as { name: string }[]).map((s) => s.name)).toEqual(['status']);
    expect((compact.workspaces as { name: string }[]).map((w) => w.name)).toEqual(['team-a']);
  });

  it('keeps plugin configurations byte for byte', () => {
    const cfg = validateConfigObject(
      {
        plugins: [
          { name: 'a', wasm: '/x.wasm', configuration: '{"kept": "as written"}' },
          { name: 'b', wasm: '/x.wasm', configuration: { n: 1 } },
          { name: 'c', wasm: '/x.wasm', configuration: 'ttl=30', root_id: '', vm_id: 'shared' },
        ],
      },
      'x',
    );
    const again = validateConfigObject(toDocument(cfg), 'x');
    expect(again.plugins.map((p) => [p.configuration, p.root_id, p.vm_id])).toEqual([
      ['{"kept": "as written"}', 'a', 'a'],
      ['{"n":1}', 'b', 'b'],
      ['ttl=30', '', 'shared'],
    ]);
  });
});

describe('composition', () => {
  it('creates the store directory on a fresh checkout and closes cleanly', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hookwire-fresh-'));
    try {
      const config = validateConfigObject(
        { proxy: { listen: [{ address: '127.0.0.1', port: 0 }] }, admin: { listen: { address: '127.0.0.1', port: 0 } } },
        join(dir, 'hookwire.yaml'),
        { baseDir: dir },
      );
      expect(existsSync(join(dir, '.hookwire'))).toBe(false);
      const app = await startHookwire(config, { logger: memoryLogger().logger });
      expect(existsSync(join(dir, '.hookwire', 'event-hooks.db'))).toBe(true);
      expect(app.hooks).not.toBeNull();
      await app.close({ drainTimeoutMs: 0 });
      expect(app.hooks!.closed).toBe(true);
      expect(app.gateway.closed).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses to start with an unusable store, naming it, and leaves nothing running', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hookwire-bad-store-'));
    try {
      const config = validateConfigObject(
        { proxy: { listen: [{ address: '127.0.0.1', port: 0 }] }, admin: { listen: { address: '127.0.0.1', port: 0 } }, event_hooks: { store: dir } },
        't',
        { baseDir: dir },
      );
      await expect(startHookwire(config, { logger: memoryLogger().logger })).rejects.toThrow(`event hooks store ${dir}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
