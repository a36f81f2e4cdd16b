import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, type ConfigIssue } from '../../../host/errors.js';
import {
  PACKAGE_ROOT,
  defaultConfig,
  loadConfigFile,
  parseConfig,
  validateConfigObject,
} from '../../../host/config/load.js';
import { DEFAULTS } from '../../../host/config/defaults.js';
import { stableId } from '../../../host/config/ids.js';
import { isLoopback } from '../../../host/config/checks.js';
import { CONFIG_SCHEMA, type HookwireConfig } from '../../../host/config/schema.js';

const BASE = '/srv/hookwire';
const UUID_V5 = /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

const FULL = `
proxy:
  listen:
    - {address: 127.0.0.1, port: 8000}
    - {address: "::1", port: 8443}
  request_body_buffer_limit: 2048
admin:
  listen: {address: 0.0.0.0, port: 9001}
  token: s3cret
  allow_plaintext_off_loopback: true
wasm:
  modules_dir: plugins
log_level: debug
plugins:
  - name: global-log
    wasm: http-log.wasm
    configuration: {url: "http://collector:9999", batch: 10}
  - name: global-off
    wasm: off.wasm
    enabled: false
services:
  - name: catalog
    url: http://127.0.0.1:9100/v1
routes:
  - name: catalog-api
    service: catalog
    paths: [/catalog]
consumers:
  - username: bob
workspaces:
  - name: team-a
    plugins:
      - name: ws-auth
        wasm: /opt/wasm/auth.wasm
        vm_configuration: "raw text"
        failure_policy: fail_open
    services:
      - name: orders
        urls: [http://10.0.0.1:9000, https://10.0.0.2:9443/api]
        connect_timeout_ms: 1500
        plugins:
          - name: svc-cache
            wasm: cache.wasm
            configuration: 42
    routes:
      - name: orders-api
        service: orders
        hosts: [API.Example.com, "*.example.org"]
        paths: [/orders]
        methods: [GET, POST]
        strip_path: true
        plugins:
          - name: route-limit
            wasm: limit.wasm
            root_id: ""
            vm_id: shared
            allow_unknown_imports: true
          - name: route-off
            wasm: limit.wasm
            enabled: false
      - name: orders-any
        service: orders
    consumers:
      - {username: alice, custom_id: a-1}
  - name: default
    services:
      - name: extra
        url: http://127.0.0.1:9200
`;

function parseFull(): HookwireConfig {
  return parseConfig(FULL, 'full.yaml', { baseDir: BASE });
}

/** The issues of the ConfigError that fn throws (fails the test if it throws anything else). */
function issuesOf(fn: () => unknown): readonly ConfigIssue[] {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as ConfigError).issues;
  }
  throw new Error('expected a ConfigError, nothing was thrown');
}

function yamlIssues(text: string): readonly ConfigIssue[] {
  return issuesOf(() => parseConfig(text, 'test.yaml', { baseDir: BASE }));
}

function objIssues(obj: unknown): readonly ConfigIssue[] {
  return issuesOf(() => validateConfigObject(obj, 'test', { baseDir: BASE }));
}

/** A minimal valid document with one service and one route in the default workspace. */
function minimal(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    services: [{ name: 's', url: 'http://127.0.0.1:9000' }],
    routes: [{ name: 'r', service: 's' }],
    ...extra,
  };
}

describe('parseConfig: full valid document', () => {
  it('puts "default" first, merging top-level entities with a "default" workspace entry', () => {
    const cfg = parseFull();
    expect(cfg.workspaces.map((w) => w.name)).toEqual(['default', 'team-a']);
    const def = cfg.workspaces[0]!;
    expect(def.services.map((s) => s.name)).toEqual(['catalog', 'extra']);
    expect(def.routes.map((r) => r.name)).toEqual(['catalog-api']);
    expect(def.consumers.map((c) => c.username)).toEqual(['bob']);
    // Top-level plugins are global, not the default workspace's.
    expect(def.plugins).toEqual([]);
    expect(cfg.plugins.map((p) => p.name)).toEqual(['global-log', 'global-off']);
  });

  it('gives every entity a v5 UUID, its workspace and workspace id', () => {
    const cfg = parseFull();
    const teamA = cfg.workspaces[1]!;
    expect(teamA.id).toMatch(UUID_V5);
    const entities = [...teamA.services, ...teamA.routes, ...teamA.consumers, ...teamA.plugins];
    for (const e of entities) {
      expect(e.id).toMatch(UUID_V5);
      expect(e.workspace).toBe('team-a');
      expect(e.workspace_id).toBe(teamA.id);
    }
    const ids = cfg.workspaces.flatMap((w) => [w.id, ...w.services.map((s) => s.id), ...w.routes.map((r) => r.id)]);
    expect(new Set(ids).size).toBe(ids.length);
    const route = teamA.routes[0]!;
    expect(route.service_id).toBe(teamA.services[0]!.id);
    expect(cfg.plugins[0]!.workspace).toBeNull();
    expect(cfg.plugins[0]!.workspace_id).toBeNull();
    expect(cfg.plugins[0]!.id).toMatch(UUID_V5);
  });

  it('keeps ids stable across parses, and across unrelated edits', () => {
    const a = parseFull();
    const b = parseFull();
    const edited = parseConfig(FULL.replace('connect_timeout_ms: 1500', 'connect_timeout_ms: 2500'), 'other.yaml', {
      baseDir: '/elsewhere',
    });
    const ids = (c: HookwireConfig) =>
      c.workspaces.flatMap((w) => [
        w.id,
        ...w.services.map((s) => s.id),
        ...w.routes.map((r) => r.id),
        ...w.consumers.map((x) => x.id),
        ...w.plugins.map((p) => p.id),
      ]);
    expect(ids(b)).toEqual(ids(a));
    expect(ids(edited)).toEqual(ids(a));
    expect(a.workspaces[1]!.services[0]!.id).toBe(stableId('team-a', 'service', 'orders'));
  });

  it('derives different ids for the same name in different workspaces or entity types', () => {
    expect(stableId('a', 'service', 'x')).not.toBe(stableId('b', 'service', 'x'));
    expect(stableId('a', 'service', 'x')).not.toBe(stableId('a', 'route', 'x'));
    expect(stableId(null, 'workspace', 'a')).toMatch(UUID_V5);
    // No separator games: the triple is encoded unambiguously.
    expect(stableId('a', 'service', 'b:c')).not.toBe(stableId('a:b', 'service', 'c'));
  });

  it('builds each route chain in order global, workspace, service, route, without disabled plugins', () => {
    const cfg = parseFull();
    const byName = new Map(cfg.routes.map((r) => [r.route.name, r]));
    expect(cfg.routes.map((r) => r.route.name)).toEqual(['catalog-api', 'orders-api', 'orders-any']);
    expect(byName.get('orders-api')!.plugins.map((p) => p.name)).toEqual([
      'global-log',
      'ws-auth',
      'svc-cache',
      'route-limit',
    ]);
    expect(byName.get('orders-any')!.plugins.map((p) => p.name)).toEqual(['global-log', 'ws-auth', 'svc-cache']);
    expect(byName.get('catalog-api')!.plugins.map((p) => p.name)).toEqual(['global-log']);
    // Disabled plugins stay visible on their entity (for the admin API), just not in chains.
    const ordersApi = byName.get('orders-api')!;
    expect(ordersApi.route.plugins.map((p) => [p.name, p.enabled])).toEqual([
      ['route-limit', true],
      ['route-off', false],
    ]);
    expect(ordersApi.service.name).toBe('orders');
    expect(ordersApi.workspace.name).toBe('team-a');
    // The flattened table shares objects with the workspace tree.
    expect(ordersApi.route).toBe(cfg.workspaces[1]!.routes[0]);
    expect(ordersApi.plugins.map((p) => p.scope)).toEqual(['global', 'workspace', 'service', 'route']);
  });

  it('fills defaults from DEFAULTS', () => {
    const cfg = parseFull();
    expect(cfg.proxy.request_body_buffer_limit).toBe(2048);
    expect(cfg.proxy.response_body_buffer_limit).toBe(DEFAULTS.proxy.response_body_buffer_limit);
    expect(cfg.proxy.drain_timeout_ms).toBe(DEFAULTS.proxy.drain_timeout_ms);
    expect(cfg.wasm.envoy_strict).toBe(false);
    const orders = cfg.workspaces[1]!.services[0]!;
    expect(orders.connect_timeout_ms).toBe(1500);
    expect(orders.read_timeout_ms).toBe(DEFAULTS.service.read_timeout_ms);
    expect(orders.pool_size).toBe(DEFAULTS.service.pool_size);
    const any = cfg.workspaces[1]!.routes[1]!;
    expect(any).toMatchObject({ hosts: [], paths: [], methods: [], strip_path: false, plugins: [] });
    const bob = cfg.workspaces[0]!.consumers[0]!;
    expect(bob.custom_id).toBeNull();
    const log = cfg.plugins[0]!;
    expect(log).toMatchObject({
      root_id: 'global-log',
      vm_id: 'global-log',
      vm_configuration: '',
      failure_policy: 'fail_closed',
      allow_unknown_imports: false,
      enabled: true,
    });
  });

  it('keeps explicit values over defaults (including an explicit empty root_id)', () => {
    const cfg = parseFull();
    const limit = cfg.workspaces[1]!.routes[0]!.plugins[0]!;
    expect(limit).toMatchObject({ root_id: '', vm_id: 'shared', allow_unknown_imports: true });
    expect(cfg.workspaces[1]!.plugins[0]!.failure_policy).toBe('fail_open');
    expect(cfg.log_level).toBe('debug');
    expect(cfg.admin).toEqual({ listen: { address: '0.0.0.0', port: 9001, tls: null, http2: false }, token: 's3cret', allow_plaintext_off_loopback: true });
    expect(cfg.proxy.listen).toEqual([
      { address: '127.0.0.1', port: 8000, tls: null, http2: false },
      { address: '::1', port: 8443, tls: null, http2: false },
    ]);
  });

  it('resolves plugin wasm paths to absolute paths (modules_dir, itself relative to the base dir)', () => {
    const cfg = parseFull();
    expect(cfg.base_dir).toBe(BASE);
    expect(cfg.wasm.modules_dir).toBe('/srv/hookwire/plugins');
    expect(cfg.plugins[0]!.wasm).toBe('/srv/hookwire/plugins/http-log.wasm');
    expect(cfg.workspaces[1]!.plugins[0]!.wasm).toBe('/opt/wasm/auth.wasm');
    expect(cfg.workspaces[1]!.services[0]!.plugins[0]!.wasm).toBe('/srv/hookwire/plugins/cache.wasm');
    const noModulesDir = validateConfigObject({ plugins: [{ name: 'p', wasm: '../x/p.wasm' }] }, 't', {
      baseDir: '/a/b',
    });
    expect(noModulesDir.plugins[0]!.wasm).toBe('/a/x/p.wasm');
  });

  it('turns plugin configuration into the string the plugin receives', () => {
    const cfg = parseFull();
    expect(cfg.plugins[0]!.configuration).toBe('{"url":"http://collector:9999","batch":10}');
    expect(cfg.plugins[1]!.configuration).toBe('');
    expect(cfg.workspaces[1]!.plugins[0]!.vm_configuration).toBe('raw text');
    expect(cfg.workspaces[1]!.services[0]!.plugins[0]!.configuration).toBe('42');
    const more = validateConfigObject(
      {
        plugins: [
          { name: 'a', wasm: 'a.wasm', configuration: [1, 'two'] },
          { name: 'b', wasm: 'b.wasm', configuration: null },
          { name: 'c', wasm: 'c.wasm', configuration: false },
          { name: 'd', wasm: 'd.wasm', configuration: '{"kept": "as written"}' },
        ],
      },
      't',
    );
    expect(more.plugins.map((p) => p.configuration)).toEqual(['[1,"two"]', '', 'false', '{"kept": "as written"}']);
  });

  it('always gives services a urls array and lower-cases route hosts', () => {
    const cfg = parseFull();
    expect(cfg.workspaces[0]!.services[0]!.urls).toEqual(['http://127.0.0.1:9100/v1']);
    expect(cfg.workspaces[1]!.services[0]!.urls).toEqual(['http://10.0.0.1:9000', 'https://10.0.0.2:9443/api']);
    expect(cfg.workspaces[1]!.routes[0]!.hosts).toEqual(['api.example.com', '*.example.org']);
    expect(cfg.workspaces[1]!.routes[0]!.methods).toEqual(['GET', 'POST']);
  });

  it('records the source', () => {
    expect(parseFull().source).toBe('full.yaml');
  });
});

describe('output is deep-frozen', () => {
  it('freezes every level', () => {
    const cfg = parseFull();
    const route = cfg.routes[1]!;
    for (const value of [
      cfg,
      cfg.proxy,
      cfg.proxy.listen,
      cfg.proxy.listen[0],
      cfg.admin.listen,
      cfg.workspaces,
      cfg.workspaces[1]!.services[0]!.urls,
      route,
      route.plugins,
      route.plugins[0],
      route.route.hosts,
    ]) {
      expect(Object.isFrozen(value)).toBe(true);
    }
  });

  it('throws on mutation (ESM is strict mode)', () => {
    const cfg = parseFull();
    expect(() => {
      (cfg.proxy as { drain_timeout_ms: number }).drain_timeout_ms = 1;
    }).toThrow(TypeError);
    expect(() => (cfg.routes as unknown[]).push({})).toThrow(TypeError);
    expect(() => {
      (cfg.plugins[0] as { configuration: string }).configuration = 'x';
    }).toThrow(TypeError);
  });

  it('does not freeze or change the input object, nor leak DEFAULTS objects', () => {
    const input = minimal();
    const snapshot = JSON.parse(JSON.stringify(input));
    const cfg = validateConfigObject(input, 't');
    expect(input).toEqual(snapshot);
    expect(Object.isFrozen(input)).toBe(false);
    expect(cfg.proxy.listen[0]).not.toBe(DEFAULTS.proxy.listener);
    expect(Object.isFrozen(DEFAULTS)).toBe(true);
    expect(Object.isFrozen(DEFAULTS.route.hosts)).toBe(true);
  });
});

describe('defaultConfig', () => {
  it('listens on 127.0.0.1:8000 (proxy) and 127.0.0.1:8001 (admin) with nothing configured', () => {
    const cfg = defaultConfig();
    expect(cfg.proxy.listen).toEqual([{ address: '127.0.0.1', port: 8000, tls: null, http2: false }]);
    expect(cfg.admin).toEqual({ listen: { address: '127.0.0.1', port: 8001, tls: null, http2: false }, token: null, allow_plaintext_off_loopback: false });
    expect(cfg.routes).toEqual([]);
    expect(cfg.plugins).toEqual([]);
    expect(cfg.workspaces.map((w) => [w.name, w.services.length, w.routes.length])).toEqual([['default', 0, 0]]);
    expect(cfg.log_level).toBe('info');
    expect(cfg.base_dir).toBe(PACKAGE_ROOT);
    expect(Object.isFrozen(cfg)).toBe(true);
    expect(defaultConfig()).toBe(cfg);
  });

  it('equals the normalized empty document', () => {
    const empty = parseConfig('', 'empty.yaml', { baseDir: PACKAGE_ROOT });
    const comments = parseConfig('# nothing here\n', 'c.yaml', { baseDir: PACKAGE_ROOT });
    const { source: _a, ...fromEmpty } = empty;
    const { source: _b, ...fromDefaults } = defaultConfig();
    expect(fromEmpty).toEqual(fromDefaults);
    expect(comments.routes).toEqual([]);
  });

  it('finds the package root from import.meta.url', async () => {
    const pkg = JSON.parse(await readFile(join(PACKAGE_ROOT, 'package.json'), 'utf8'));
    expect(pkg.name).toBe('hookwire');
  });
});

describe('JSON input', () => {
  it('accepts JSON text', () => {
    const json = JSON.stringify({
      log_level: 'warn',
      services: [{ name: 's', urls: ['http://127.0.0.1:1'] }],
      routes: [{ name: 'r', service: 's', methods: ['GET'] }],
      plugins: [{ name: 'p', wasm: 'p.wasm', configuration: { a: [1, 2] } }],
    });
    const cfg = parseConfig(json, 'cfg.json', { baseDir: BASE });
    expect(cfg.log_level).toBe('warn');
    expect(cfg.routes[0]!.plugins[0]!.configuration).toBe('{"a":[1,2]}');
    expect(cfg.routes[0]!.service.urls).toEqual(['http://127.0.0.1:1']);
  });

  it('gives the same result for the same document in YAML and JSON', () => {
    const obj = minimal({ plugins: [{ name: 'p', wasm: 'p.wasm', configuration: { k: 'v' } }] });
    const fromJson = parseConfig(JSON.stringify(obj, null, 2), 'x', { baseDir: BASE });
    const fromObj = validateConfigObject(obj, 'x', { baseDir: BASE });
    expect(fromJson).toEqual(fromObj);
  });

  it('reports JSON syntax errors with line and column', () => {
    const issues = yamlIssues('{\n  "log_level": "info",\n  "proxy": {\n}');
    expect(issues.length).toBeGreaterThan(0);
    expect(issues[0]!.message).toMatch(/^YAML syntax error at line \d+, column \d+: /);
  });
});

describe('schema errors', () => {
  it('refuses an unknown key at depth, listing the allowed keys', () => {
    const issues = objIssues({
      workspaces: [{ name: 'team-a', services: [{ name: 'orders', url: 'http://x', colour: 'red' }] }],
    });
    expect(issues).toEqual([
      {
        path: '/workspaces/0/services/0/colour',
        message:
          'unknown key "colour" (allowed: name, url, urls, connect_timeout_ms, read_timeout_ms, pool_size, http2, ca_file, plugins)',
      },
    ]);
  });

  it('refuses unknown keys at the top level and in plugin entries', () => {
    const issues = objIssues({ servicez: [], plugins: [{ name: 'p', wasm: 'p.wasm', config: {} }] });
    expect(issues.map((i) => i.path)).toEqual(['/servicez', '/plugins/0/config']);
    expect(issues[0]!.message).toMatch(/^unknown key "servicez" \(allowed: proxy, admin, wasm, log_level, plugins,/);
  });

  it('escapes odd keys as JSON pointers', () => {
    expect(objIssues({ proxy: { 'a/b~c': 1 } })[0]!.path).toBe('/proxy/a~1b~0c');
  });

  it('reports wrong types with what was expected and found', () => {
    const issues = objIssues({
      proxy: { drain_timeout_ms: 'soon', listen: { address: '127.0.0.1' } },
      wasm: { envoy_strict: 'yes' },
      plugins: {},
    });
    expect(issues).toEqual([
      { path: '/proxy/listen', message: 'must be a list (array) (found a mapping)' },
      { path: '/proxy/drain_timeout_ms', message: 'must be an integer between 0 and 2147483647 (found "soon")' },
      { path: '/wasm/envoy_strict', message: 'must be true or false (found "yes")' },
      { path: '/plugins', message: 'must be a list (array) (found a mapping)' },
    ]);
  });

  it('reads YAML 1.2: "yes" is a string, not a boolean', () => {
    expect(yamlIssues('plugins: [{name: p, wasm: p.wasm, enabled: yes}]')).toEqual([
      { path: '/plugins/0/enabled', message: 'must be true or false (found "yes")' },
    ]);
  });

  it('reports a wrong root type', () => {
    expect(objIssues(42)).toEqual([{ path: '', message: 'must be a mapping (object) (found 42)' }]);
    expect(yamlIssues('- a\n- b\n')).toEqual([{ path: '', message: 'must be a mapping (object) (found a list)' }]);
  });

  it('reports a bad enum value with the allowed values', () => {
    const issues = objIssues(
      minimal({ routes: [{ name: 'r', service: 's', methods: ['GET', 'FETCH'] }], log_level: 'loud' }),
    );
    expect(issues).toContainEqual({
      path: '/routes/0/methods/1',
      message: 'must be one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, TRACE, CONNECT (found "FETCH")',
    });
    expect(issues).toContainEqual({
      path: '/log_level',
      message: 'must be one of trace, debug, info, warn, error, fatal (found "loud")',
    });
    const policy = objIssues({ plugins: [{ name: 'p', wasm: 'p.wasm', failure_policy: 'retry' }] });
    expect(policy).toEqual([
      { path: '/plugins/0/failure_policy', message: 'must be one of fail_closed, fail_open, reload (found "retry")' },
    ]);
  });

  it('gives one message per value when both type and enum fail', () => {
    expect(objIssues({ log_level: 3 })).toEqual([
      { path: '/log_level', message: 'must be one of trace, debug, info, warn, error, fatal (found 3)' },
    ]);
  });

  it('reports numeric ranges', () => {
    const issues = objIssues({
      proxy: { listen: [{ port: 70000 }], request_body_buffer_limit: -1 },
      services: [{ name: 's', url: 'http://x', pool_size: -3, read_timeout_ms: 1.5 }],
    });
    expect(issues).toEqual([
      { path: '/proxy/listen/0/port', message: 'must be an integer between 0 and 65535 (found 70000)' },
      { path: '/proxy/request_body_buffer_limit', message: 'must be an integer >= 0 (found -1)' },
      { path: '/services/0/read_timeout_ms', message: 'must be an integer between 1 and 2147483647 (found 1.5)' },
      { path: '/services/0/pool_size', message: 'must be an integer between 1 and 65535 (found -3)' },
    ]);
  });

  it('reports missing required keys at the path of the key', () => {
    const issues = objIssues({
      workspaces: [{ name: 'w', routes: [{ name: 'r' }], plugins: [{ wasm: 'p.wasm' }], consumers: [{}] }],
    });
    expect(issues).toEqual([
      { path: '/workspaces/0/plugins/0/name', message: 'required key "name" is missing' },
      { path: '/workspaces/0/routes/0/service', message: 'required key "service" is missing' },
      { path: '/workspaces/0/consumers/0/username', message: 'required key "username" is missing' },
    ]);
  });

  it('checks name, host and path formats', () => {
    const issues = objIssues({
      workspaces: [
        {
          name: 'Team A',
          services: [{ name: 'my service', url: 'http://x' }],
          routes: [{ name: 'r', service: 'my service', hosts: ['bad host', '*.ok.example'], paths: ['orders', '/ok'] }],
        },
      ],
    });
    expect(issues).toEqual([
      {
        path: '/workspaces/0/name',
        message: 'must be made of lower-case letters, digits, "_" and "-", starting with a letter or digit (found "Team A")',
      },
      {
        path: '/workspaces/0/services/0/name',
        message: 'must be made of letters, digits, ".", "-", "_" and "~" only (found "my service")',
      },
      {
        path: '/workspaces/0/routes/0/hosts/0',
        message: 'must be a host name such as api.example.com, or a wildcard such as *.example.com (found "bad host")',
      },
      {
        path: '/workspaces/0/routes/0/paths/0',
        message: 'must be a path prefix starting with "/", without query, fragment or spaces (found "orders")',
      },
    ]);
  });

  it('refuses empty strings where a value is needed, and duplicate methods', () => {
    const issues = objIssues({
      admin: { token: '' },
      plugins: [{ name: 'p', wasm: '' }],
      routes: [{ name: 'r', service: 's', methods: ['GET', 'GET'] }],
      services: [{ name: 's', url: 'http://x' }],
    });
    expect(issues).toEqual([
      { path: '/admin/token', message: 'must be a non-empty string or null (found "")' },
      { path: '/plugins/0/wasm', message: 'must be a non-empty string (found "")' },
      { path: '/routes/0/methods/1', message: 'duplicates item 0 (found "GET" twice)' },
    ]);
  });

  it('refuses duplicate upstream URLs in urls', () => {
    expect(objIssues({ services: [{ name: 's', urls: ['http://a', 'http://b', 'http://a'] }] })).toEqual([
      { path: '/services/0/urls/2', message: 'duplicates item 0 (found "http://a" twice)' },
    ]);
  });

  it('requires at least one proxy listener', () => {
    expect(objIssues({ proxy: { listen: [] } })).toEqual([
      { path: '/proxy/listen', message: 'must be a list of at least 1 item (found an empty list)' },
    ]);
  });

  it('compiles a strict draft-07 schema with additionalProperties: false on every object', () => {
    const objects: Record<string, unknown>[] = [];
    const walk = (node: unknown): void => {
      if (node === null || typeof node !== 'object') return;
      const n = node as Record<string, unknown>;
      if (n.type === 'object') objects.push(n);
      for (const v of Object.values(n)) walk(v);
    };
    walk(CONFIG_SCHEMA);
    expect(objects.length).toBeGreaterThan(8);
    for (const o of objects) expect(o.additionalProperties).toBe(false);
  });
});

describe('cross-field errors', () => {
  it('reports a route naming a service its workspace does not define, at the service field', () => {
    const issues = objIssues({
      services: [{ name: 'orders', url: 'http://x' }], // default workspace: not visible from team-a
      workspaces: [{ name: 'team-a', routes: [{ name: 'orders-api', service: 'nope' }, { name: 'b', service: 'orders' }] }],
    });
    expect(issues).toEqual([
      {
        path: '/workspaces/0/routes/0/service',
        message: 'route "orders-api" names service "nope", which workspace "team-a" does not define',
      },
      {
        path: '/workspaces/0/routes/1/service',
        message: 'route "b" names service "orders", which workspace "team-a" does not define',
      },
    ]);
  });

  it('lets top-level routes use services of a "default" workspace entry, and vice versa', () => {
    const cfg = validateConfigObject(
      {
        services: [{ name: 'a', url: 'http://a' }],
        routes: [{ name: 'ra', service: 'b' }],
        workspaces: [{ name: 'default', services: [{ name: 'b', url: 'http://b' }], routes: [{ name: 'rb', service: 'a' }] }],
      },
      't',
    );
    expect(cfg.routes.map((r) => [r.route.name, r.service.name, r.workspace.name])).toEqual([
      ['ra', 'b', 'default'],
      ['rb', 'a', 'default'],
    ]);
  });

  it('reports duplicate names, pointing at the later one', () => {
    const issues = objIssues({
      services: [{ name: 's', url: 'http://x' }],
      routes: [{ name: 'r', service: 's' }],
      consumers: [{ username: 'alice', custom_id: 'c1' }],
      workspaces: [
        {
          name: 'default',
          services: [{ name: 's', url: 'http://y' }],
          routes: [{ name: 'r', service: 's' }],
          consumers: [{ username: 'alice' }, { username: 'bob', custom_id: 'c1' }],
        },
        { name: 'team-a', services: [{ name: 's', url: 'http://z' }] }, // same name, other workspace: fine
        { name: 'team-a' },
      ],
    });
    expect(issues).toEqual([
      { path: '/workspaces/2/name', message: 'duplicate workspace name "team-a" (already used by /workspaces/1)' },
      {
        path: '/workspaces/0/services/0/name',
        message: 'duplicate service name "s" in workspace "default" (already used by /services/0)',
      },
      {
        path: '/workspaces/0/routes/0/name',
        message: 'duplicate route name "r" in workspace "default" (already used by /routes/0)',
      },
      {
        path: '/workspaces/0/consumers/0/username',
        message: 'duplicate consumer username "alice" in workspace "default" (already used by /consumers/0)',
      },
      {
        path: '/workspaces/0/consumers/1/custom_id',
        message: 'duplicate consumer custom_id "c1" in workspace "default" (already used by /consumers/0)',
      },
    ]);
  });

  it('refuses two "default" workspace entries', () => {
    expect(objIssues({ workspaces: [{ name: 'default' }, { name: 'default' }] })).toEqual([
      { path: '/workspaces/1/name', message: 'duplicate workspace name "default" (already used by /workspaces/0)' },
    ]);
  });

  it('requires plugin names to be unique across the whole document', () => {
    const issues = objIssues({
      plugins: [{ name: 'p', wasm: 'a.wasm' }],
      workspaces: [
        {
          name: 'w',
          services: [{ name: 's', url: 'http://x', plugins: [{ name: 'p', wasm: 'b.wasm' }] }],
        },
      ],
    });
    expect(issues).toHaveLength(1);
    expect(issues[0]!.path).toBe('/workspaces/0/services/0/plugins/0/name');
    expect(issues[0]!.message).toMatch(/^duplicate plugin name "p" \(already used by \/plugins\/0\)/);
  });

  it('requires exactly one of url and urls', () => {
    const issues = objIssues({
      workspaces: [
        {
          name: 'w',
          services: [
            { name: 'both', url: 'http://a', urls: ['http://b'] },
            { name: 'neither' },
          ],
        },
      ],
    });
    expect(issues).toEqual([
      { path: '/workspaces/0/services/0', message: 'must set exactly one of "url" and "urls" (found both)' },
      { path: '/workspaces/0/services/1', message: 'must set exactly one of "url" and "urls" (found neither)' },
    ]);
  });

  it('accepts http and https upstreams with a path prefix, and nothing else', () => {
    const ok = validateConfigObject(
      { services: [{ name: 's', urls: ['http://a:1/p/q', 'HTTPS://B.example/', 'http://[::1]:9000'] }] },
      't',
    );
    expect(ok.workspaces[0]!.services[0]!.urls).toHaveLength(3);
    const issues = objIssues({
      services: [{ name: 's', urls: ['ftp://a', 'not a url', 'http://u:p@h/', 'http://h/?q=1', 'http://h/#f'] }],
    });
    expect(issues).toEqual([
      { path: '/services/0/urls/0', message: 'must be an http:// or https:// URL (found "ftp://a")' },
      { path: '/services/0/urls/1', message: 'must be an absolute http:// or https:// URL (found "not a url")' },
      {
        path: '/services/0/urls/2',
        message: 'must not contain credentials (found "http://u:p@h/"); set upstream auth with a plugin',
      },
      { path: '/services/0/urls/3', message: 'must not contain a query string or fragment (found "http://h/?q=1")' },
      { path: '/services/0/urls/4', message: 'must not contain a query string or fragment (found "http://h/#f")' },
    ]);
  });

  it('requires an admin token when the admin API listens off loopback', () => {
    const issues = objIssues({ admin: { listen: { address: '0.0.0.0' }, allow_plaintext_off_loopback: true } });
    expect(issues).toHaveLength(1);
    expect(issues[0]!.path).toBe('/admin/token');
    expect(issues[0]!.message).toMatch(/^must be a non-empty string when admin.listen.address is not a loopback address \(found no token, with address "0.0.0.0"\)/);
    expect(objIssues({ admin: { listen: { address: '10.1.2.3', port: 8001 }, token: null } }).map((i) => i.path)).toEqual([
      '/admin/token',
      '/admin/listen/tls',
    ]);
    const withToken = validateConfigObject({ admin: { listen: { address: '0.0.0.0' }, token: 't0k', allow_plaintext_off_loopback: true } }, 't');
    expect(withToken.admin).toEqual({ listen: { address: '0.0.0.0', port: 8001, tls: null, http2: false }, token: 't0k', allow_plaintext_off_loopback: true });
  });

  it('needs no admin token on loopback addresses', () => {
    for (const address of ['127.0.0.1', '127.9.9.9', '::1', '0:0:0:0:0:0:0:1', 'localhost', 'LOCALHOST']) {
      expect(validateConfigObject({ admin: { listen: { address } } }, 't').admin.token).toBeNull();
    }
    expect(isLoopback('::ffff:127.0.0.1')).toBe(true);
    for (const address of ['0.0.0.0', '::', '128.0.0.1', '192.168.1.1', 'example.com', 'localhost.evil.com']) {
      expect(isLoopback(address)).toBe(false);
    }
  });

  it('checks listener addresses and refuses two listeners on one address and port', () => {
    const issues = objIssues({
      proxy: { listen: [{ port: 8001 }, { address: '[::1]', port: 1 }, { port: 0 }, { port: 0 }] },
    });
    expect(issues).toEqual([
      {
        path: '/proxy/listen/1/address',
        message: 'must be an IP address (without brackets) or a host name (found "[::1]")',
      },
      {
        path: '/admin/listen',
        message: 'listens on 127.0.0.1:8001 like /proxy/listen/0 (each listener needs its own address and port)',
      },
    ]);
  });

  it('requires plugins sharing a VM to agree on vm_configuration and allow_unknown_imports', () => {
    const issues = objIssues({
      wasm: { modules_dir: 'm' },
      plugins: [
        { name: 'a', wasm: 'x.wasm', vm_id: 'vm', vm_configuration: { v: 1 } },
        { name: 'b', wasm: 'x.wasm', vm_id: 'vm', vm_configuration: '{"v":1}' }, // same text: fine
        { name: 'c', wasm: './x.wasm', vm_id: 'vm', vm_configuration: 'other', allow_unknown_imports: true },
        { name: 'd', wasm: 'y.wasm', vm_id: 'vm', vm_configuration: 'other' }, // other wasm: own VM
        { name: 'e', wasm: 'x.wasm', vm_id: 'vm', enabled: false }, // disabled: starts no VM
      ],
    });
    expect(issues).toEqual([
      {
        path: '/plugins/2/vm_configuration',
        message: 'shares VM "vm" (same vm_id and wasm) with /plugins/0 but has a different vm_configuration',
      },
      {
        path: '/plugins/2/allow_unknown_imports',
        message: 'shares VM "vm" (same vm_id and wasm) with /plugins/0 but has a different allow_unknown_imports',
      },
    ]);
  });

  it('refuses plugin configuration values that have no JSON form', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const issues = objIssues({
      plugins: [
        { name: 'a', wasm: 'a.wasm', configuration: 10n },
        { name: 'b', wasm: 'b.wasm', vm_configuration: cyclic },
      ],
    });
    expect(issues.map((i) => i.path)).toEqual(['/plugins/0/configuration', '/plugins/1/vm_configuration']);
    expect(issues[0]!.message).toMatch(/^must be a JSON value \(found /);
  });
});

describe('error reporting', () => {
  it('collects every problem of the document in one ConfigError', () => {
    let error: unknown;
    try {
      parseConfig(
        [
          'proxy: {colour: red}',
          'log_level: loud',
          'services: [{name: s, url: http://x, urls: [http://y]}]',
          'routes: [{name: r, service: nope}]',
        ].join('\n'),
        'many.yaml',
      );
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const e = error as ConfigError;
    expect(e.code).toBe('HW_ERR_CONFIG_INVALID');
    expect(e.source).toBe('many.yaml');
    expect(e.issues.map((i) => i.path)).toEqual(['/proxy/colour', '/log_level', '/services/0', '/routes/0/service']);
    expect(e.message.split('\n')).toEqual([
      'many.yaml: invalid configuration:',
      ...e.issues.map((i) => `  ${i.path}: ${i.message}`),
    ]);
  });

  it('reports YAML syntax errors with line and column', () => {
    const issues = yamlIssues('proxy:\n  drain_timeout_ms: 5\n routes: [\n');
    expect(issues.length).toBeGreaterThan(0);
    expect(issues[0]).toEqual({ path: '', message: expect.stringMatching(/^YAML syntax error at line 3, column \d+: /) });
  });

  it('reports a repeated key as a YAML error at its line', () => {
    expect(yamlIssues('log_level: info\nproxy: {}\nlog_level: warn\n')).toEqual([
      { path: '', message: 'YAML syntax error at line 3, column 1: Map keys must be unique' },
    ]);
  });

  it('refuses several documents in one file', () => {
    expect(yamlIssues('log_level: info\n---\nlog_level: warn\n')[0]!.message).toMatch(/^YAML syntax error at line 2/);
  });

  it('supports anchors and merge keys to share settings', () => {
    const cfg = parseConfig(
      [
        'plugins:',
        '  - &base {name: a, wasm: p.wasm, failure_policy: fail_open}',
        '  - {<<: *base, name: b}',
      ].join('\n'),
      't',
      { baseDir: BASE },
    );
    expect(cfg.plugins.map((p) => [p.name, p.wasm, p.failure_policy])).toEqual([
      ['a', '/srv/hookwire/p.wasm', 'fail_open'],
      ['b', '/srv/hookwire/p.wasm', 'fail_open'],
    ]);
  });
});

describe('docs/configuration.md', () => {
  it('has a full example that is valid and whose chain is as documented', async () => {
    const doc = await readFile(join(PACKAGE_ROOT, 'docs', 'configuration.md'), 'utf8');
    const example = /## Full example\s+```yaml\n([\s\S]*?)```/.exec(doc)?.[1];
    expect(example).toBeDefined();
    const cfg = parseConfig(example!, 'docs example', { baseDir: BASE });
    const ordersApi = cfg.routes.find((r) => r.route.name === 'orders-api')!;
    expect(ordersApi.plugins.map((p) => p.name)).toEqual([
      'access-log',
      'team-a-auth',
      'orders-cache',
      'orders-rate-limit',
    ]);
    expect(cfg.plugins[0]!.wasm).toBe('/srv/hookwire/plugins/http-log.wasm');
  });

  it('documents every key of the schema', async () => {
    const doc = await readFile(join(PACKAGE_ROOT, 'docs', 'configuration.md'), 'utf8');
    const keys = new Set<string>();
    const walk = (node: unknown): void => {
      if (node === null || typeof node !== 'object') return;
      const n = node as Record<string, unknown>;
      if (n.properties) for (const k of Object.keys(n.properties as object)) keys.add(k);
      for (const v of Object.values(n)) walk(v);
    };
    walk(CONFIG_SCHEMA);
    // As a table key: `key`, `listen[].key` or `listen.key`.
    for (const key of keys) expect(doc, key).toMatch(new RegExp(`[\`.]${key}\``));
  });
});

describe('loadConfigFile', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hookwire-config-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('resolves relative wasm paths against the file\'s directory', async () => {
    await mkdir(join(dir, 'conf'), { recursive: true });
    const file = join(dir, 'conf', 'hookwire.yaml');
    await writeFile(file, 'plugins:\n  - {name: p, wasm: ../wasm/p.wasm}\n');
    const cfg = await loadConfigFile(file);
    expect(cfg.source).toBe(file);
    expect(cfg.base_dir).toBe(join(dir, 'conf'));
    expect(cfg.plugins[0]!.wasm).toBe(join(dir, 'wasm', 'p.wasm'));
  });

  it('resolves modules_dir against the file\'s directory', async () => {
    const file = join(dir, 'modules.yaml');
    await writeFile(file, 'wasm: {modules_dir: mods}\nplugins: [{name: p, wasm: p.wasm}]\n');
    const cfg = await loadConfigFile(file);
    expect(cfg.wasm.modules_dir).toBe(join(dir, 'mods'));
    expect(cfg.plugins[0]!.wasm).toBe(join(dir, 'mods', 'p.wasm'));
  });

  it('loads JSON files', async () => {
    const file = join(dir, 'hookwire.json');
    await writeFile(file, JSON.stringify(minimal({ log_level: 'error' })));
    const cfg = await loadConfigFile(file);
    expect(cfg.log_level).toBe('error');
    expect(cfg.routes).toHaveLength(1);
  });

  it('names the path of a missing file', async () => {
    const file = join(dir, 'nope.yaml');
    const error = await loadConfigFile(file).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).source).toBe(file);
    expect((error as ConfigError).issues).toEqual([{ path: '', message: `configuration file ${file}: file not found` }]);
    expect((error as ConfigError).message).toContain(file);
  });

  it('refuses a directory', async () => {
    const error = await loadConfigFile(dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toContain('is a directory');
  });

  it('uses the file path as the source of validation errors', async () => {
    const file = join(dir, 'bad.yaml');
    await writeFile(file, 'log_level: info\nproxy:\n  listen: [{port: 8000}\n');
    const error = await loadConfigFile(file).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).source).toBe(file);
    expect((error as ConfigError).issues[0]!.message).toMatch(/^YAML syntax error at line \d+, column \d+: /);
  });
});

describe('keys from Object.prototype in the file (issue 19)', () => {
  const protoKeys = () => Reflect.ownKeys(Object.prototype).map(String).sort();

  it('`__proto__`, `constructor` and `prototype` are plain keys: unknown ones are refused by name, nothing reaches Object.prototype', () => {
    const before = protoKeys();
    const issues = yamlIssues('__proto__: {log_level: debug}\nproxy:\n  constructor: 1\n  prototype: {a: 1}\n');
    expect(issues.map((i) => i.path).sort()).toEqual(['/__proto__', '/proxy/constructor', '/proxy/prototype']);
    expect(protoKeys()).toEqual(before);
    expect({}.constructor).toBe(Object);
  });

  it('a plugin configuration keeps them as data, byte for byte', () => {
    const config = parseConfig(
      'plugins:\n  - {name: p, wasm: x.wasm, configuration: {"__proto__": {"a": 1}, "constructor": 2}}\n',
      'test.yaml',
      { baseDir: BASE },
    );
    expect(config.plugins[0]!.configuration).toBe('{"__proto__":{"a":1},"constructor":2}');
    expect(({} as Record<string, unknown>).a).toBeUndefined();
  });

  it('a document nested deeper than MAX_INPUT_DEPTH is refused naming the place', () => {
    const deep = 'plugins:\n  - {name: p, wasm: x.wasm, configuration: ' + '{"a":'.repeat(80) + '1' + '}'.repeat(80) + '}\n';
    const issues = yamlIssues(deep);
    expect(issues).toHaveLength(1);
    expect(issues[0]!.path).toMatch(/^\/plugins\/0\/configuration(\/a)+$/);
    expect(issues[0]!.message).toMatch(/nested deeper than 64 levels/);
  });
});

describe('storage: kind postgres', () => {
  it('takes a URL and pool settings, with defaults', () => {
    const cfg = validateConfigObject(minimal({ storage: { kind: 'postgres', url: 'postgres://u:p@127.0.0.1:5432/db', pool: { max: 4 } } }), 't', {
      baseDir: BASE,
    });
    expect(cfg.storage).toMatchObject({
      kind: 'postgres',
      url: 'postgres://u:p@127.0.0.1:5432/db',
      pool: { max: 4, idle_timeout_ms: DEFAULTS.storage.pool.idle_timeout_ms, connect_timeout_ms: DEFAULTS.storage.pool.connect_timeout_ms },
      poll_interval_ms: 1000,
    });
    expect(validateConfigObject(minimal(), 't', { baseDir: BASE }).storage).toMatchObject({ kind: 'sqlite', url: null });
  });

  it('names what is wrong: no URL with postgres, a URL with another kind, a URL that is not postgres://, a bad pool size', () => {
    expect(objIssues(minimal({ storage: { kind: 'postgres' } }))).toEqual([
      { path: '/storage/url', message: 'is required with kind postgres (postgres://user:password@host:port/database)' },
    ]);
    expect(objIssues(minimal({ storage: { kind: 'sqlite', url: 'postgres://h/db' } }))).toEqual([
      { path: '/storage/url', message: 'is only used with kind postgres (kind is sqlite)' },
    ]);
    expect(objIssues(minimal({ storage: { kind: 'postgres', url: 'mysql://h/db' } })).map((i) => i.path)).toEqual(['/storage/url']);
    expect(objIssues(minimal({ storage: { kind: 'postgres', url: 'postgres://h/db', pool: { max: 0 } } })).map((i) => i.path)).toEqual(['/storage/pool/max']);
    expect(objIssues(minimal({ storage: { kind: 'mysql' } })).map((i) => i.path)).toEqual(['/storage/kind']);
  });
});
