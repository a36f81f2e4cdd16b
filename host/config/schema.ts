/**
 * The shape of a hookwire configuration document (JSON Schema draft-07, checked
 * with ajv) and the TypeScript types of the normalized configuration that
 * load.ts produces from it.
 *
 * The schema checks everything that can be said about one value in isolation
 * (types, ranges, enums, patterns, unknown keys). Rules that relate several
 * values (url vs urls, a route's service exists, unique names, admin token
 * when not on loopback, URL syntax, listener addresses) live in load.ts,
 * because ajv can only phrase them as opaque oneOf/if-then failures.
 *
 * Every object sets `additionalProperties: false`: a misspelt key is an error,
 * never a silently ignored setting. On a `pattern`, `description` doubles as
 * the words of the error message ("must be <description> (found ...)").
 */
import { DEFAULTS } from './defaults.js';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const FAILURE_POLICIES = ['fail_closed', 'fail_open', 'reload'] as const;
export type FailurePolicy = (typeof FAILURE_POLICIES)[number];

/** The methods a route may list; upper-case only, as they appear on the wire. */
export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT'] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];

/** Workspace names end up in URLs (admin API) and metric labels, so keep them tame. */
export const WORKSPACE_NAME_PATTERN = '^[a-z0-9][a-z0-9_-]*$';
/** Kong's rule for entity names: letters, digits, ".", "-", "_" and "~". */
export const ENTITY_NAME_PATTERN = '^[A-Za-z0-9._~-]+$';
/** A DNS name, optionally with a leading "*." wildcard label; each label 1-63 chars. */
export const HOST_PATTERN =
  '^(\\*\\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$';
/** A path prefix: starts with "/", no query, fragment or whitespace. */
export const PATH_PATTERN = '^/[^?#\\s]*$';

/**
 * Length limits of free strings (Kong has none on its entities). Entity and
 * workspace names become metric labels and log fields, so they are short;
 * the rest are generous but bounded, so no single write can bloat every
 * scrape, log line and stored document.
 */
export const LIMITS = {
  workspaceName: 64,
  entityName: 128,
  /** Consumer username and custom_id, root_id, vm_id. */
  identifier: 256,
  /** A URL, a route path prefix, a wasm path. */
  location: 2048,
  /** A DNS name (RFC 1035). */
  host: 253,
} as const;

/**
 * Where entities live: `sqlite` (an embedded database, the store is the truth),
 * `postgres` (a PostgreSQL database shared by several nodes; the event hooks'
 * outbox lives there too) or `off` (DB-less: the file is).
 */
export const STORAGE_KINDS = ['sqlite', 'postgres', 'off'] as const;
export type StorageKind = (typeof STORAGE_KINDS)[number];

/** setTimeout silently turns delays above 2^31-1 ms into 1 ms, so cap every timeout there. */
const MAX_TIMEOUT_MS = 2_147_483_647;
/** `proxy.workers` and `--workers`: more processes than this is a typo, not a machine. */
export const MAX_WORKERS = 1024;

const entityName = {
  type: 'string',
  minLength: 1,
  maxLength: LIMITS.entityName,
  pattern: ENTITY_NAME_PATTERN,
  description: 'made of letters, digits, ".", "-", "_" and "~" only',
} as const;

const port = { type: 'integer', minimum: 0, maximum: 65535, description: 'TCP port; 0 lets the OS pick one' } as const;
const address = { type: 'string', minLength: 1, description: 'IP address or host name to bind' } as const;

/** Plugin configuration: any JSON value; normalized to the string handed to the plugin. */
const opaqueValue = { description: 'any JSON value; objects and arrays are passed as JSON text' } as const;

export const CONFIG_SCHEMA = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://hookwire.dev/schemas/config.json',
  title: 'hookwire configuration',
  type: 'object',
  additionalProperties: false,
  properties: {
    proxy: {
      type: 'object',
      additionalProperties: false,
      properties: {
        listen: { type: 'array', minItems: 1, items: { $ref: '#/definitions/proxy_listener' } },
        request_body_buffer_limit: { type: 'integer', minimum: 0, default: DEFAULTS.proxy.request_body_buffer_limit },
        response_body_buffer_limit: { type: 'integer', minimum: 0, default: DEFAULTS.proxy.response_body_buffer_limit },
        drain_timeout_ms: {
          type: 'integer',
          minimum: 0,
          maximum: MAX_TIMEOUT_MS,
          default: DEFAULTS.proxy.drain_timeout_ms,
        },
        workers: {
          oneOf: [
            { type: 'integer', minimum: 1, maximum: MAX_WORKERS },
            { const: 'auto' },
          ],
          default: DEFAULTS.proxy.workers,
          description: 'data-plane processes sharing the listeners (auto: one per core); `hookwire start --workers` wins',
        },
      },
    },
    admin: {
      type: 'object',
      additionalProperties: false,
      properties: {
        listen: { $ref: '#/definitions/admin_listener' },
        // Presence on non-loopback addresses is checked in load.ts.
        token: { type: ['string', 'null'], minLength: 1, default: DEFAULTS.admin.token },
        allow_plaintext_off_loopback: { type: 'boolean', default: DEFAULTS.admin.allow_plaintext_off_loopback },
      },
    },
    wasm: {
      type: 'object',
      additionalProperties: false,
      properties: {
        envoy_strict: { type: 'boolean', default: DEFAULTS.wasm.envoy_strict },
        modules_dir: { type: ['string', 'null'], minLength: 1, default: DEFAULTS.wasm.modules_dir },
        http_call_targets: {
          type: 'array',
          items: { type: 'string', pattern: '^(\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?):[0-9]{1,5}$' },
          default: DEFAULTS.wasm.http_call_targets,
        },
        call_deadline_ms: { type: 'integer', minimum: 0, maximum: MAX_TIMEOUT_MS, default: DEFAULTS.wasm.call_deadline_ms },
        start_deadline_ms: { type: 'integer', minimum: 0, maximum: MAX_TIMEOUT_MS, default: DEFAULTS.wasm.start_deadline_ms },
        max_memory_mb: { type: 'integer', minimum: 0, maximum: 4096, default: DEFAULTS.wasm.max_memory_mb },
        reload_backoff_ms: { type: 'integer', minimum: 0, maximum: MAX_TIMEOUT_MS, default: DEFAULTS.wasm.reload_backoff_ms },
        watchdog_ms: { type: 'integer', minimum: 0, maximum: MAX_TIMEOUT_MS, default: DEFAULTS.wasm.watchdog_ms },
      },
    },
    log_level: { type: 'string', enum: LOG_LEVELS, default: DEFAULTS.log_level },
    plugins: { $ref: '#/definitions/plugins' },
    services: { $ref: '#/definitions/services' },
    routes: { $ref: '#/definitions/routes' },
    consumers: { $ref: '#/definitions/consumers' },
    workspaces: { type: 'array', items: { $ref: '#/definitions/workspace' } },
    event_hooks: { $ref: '#/definitions/event_hooks' },
    storage: {
      type: 'object',
      additionalProperties: false,
      properties: {
        kind: {
          enum: STORAGE_KINDS,
          default: DEFAULTS.storage.kind,
          description: 'sqlite or postgres: the store is the truth for entities; off: DB-less, the file is the truth',
        },
        path: { type: 'string', minLength: 1, maxLength: LIMITS.location, default: DEFAULTS.storage.path },
        url: {
          type: ['string', 'null'],
          minLength: 1,
          maxLength: LIMITS.location,
          pattern: '^postgres(ql)?://',
          default: DEFAULTS.storage.url,
          description: 'PostgreSQL connection URL (postgres://user:password@host:port/database); required with kind postgres',
        },
        pool: {
          type: 'object',
          additionalProperties: false,
          properties: {
            max: { type: 'integer', minimum: 1, maximum: 1000, default: DEFAULTS.storage.pool.max },
            idle_timeout_ms: { type: 'integer', minimum: 0, maximum: MAX_TIMEOUT_MS, default: DEFAULTS.storage.pool.idle_timeout_ms },
            connect_timeout_ms: { type: 'integer', minimum: 0, maximum: MAX_TIMEOUT_MS, default: DEFAULTS.storage.pool.connect_timeout_ms },
          },
        },
        poll_interval_ms: {
          type: 'integer',
          minimum: 10,
          maximum: MAX_TIMEOUT_MS,
          default: DEFAULTS.storage.poll_interval_ms,
          description: 'postgres: how often a node checks the entities and hooks version when no change notification arrived',
        },
      },
    },
  },
  definitions: {
    event_hooks: {
      type: 'object',
      additionalProperties: false,
      properties: {
        enabled: { type: 'boolean', default: DEFAULTS.event_hooks.enabled },
        store: {
          type: 'string',
          minLength: 1,
          default: DEFAULTS.event_hooks.store,
          description: 'SQLite file (relative to the config file) or ":memory:"',
        },
        synchronous: { type: 'string', enum: ['normal', 'full'], default: DEFAULTS.event_hooks.synchronous },
        // Presence decides whether POST /event-hooks/ingest exists.
        ingest_token: { type: ['string', 'null'], minLength: 1, default: DEFAULTS.event_hooks.ingest_token },
        ingest_body_limit: { type: 'integer', minimum: 2, maximum: 1_073_741_824, default: DEFAULTS.event_hooks.ingest_body_limit },
        ingest_max_events: { type: 'integer', minimum: 1, maximum: 1_000_000, default: DEFAULTS.event_hooks.ingest_max_events },
        allow_hosts: {
          type: 'array',
          uniqueItems: true,
          default: DEFAULTS.event_hooks.allow_hosts,
          items: {
            type: 'string',
            pattern: HOST_PATTERN,
            description: 'a host name such as hooks.internal, or a wildcard such as *.internal',
          },
        },
        // CIDR syntax is checked in checks.ts.
        allow_cidrs: {
          type: 'array',
          uniqueItems: true,
          default: DEFAULTS.event_hooks.allow_cidrs,
          items: { type: 'string', minLength: 1, description: 'a CIDR range such as 10.0.0.0/8 or fd00::/8, or one address' },
        },
        ping_on_change: { type: 'boolean', default: DEFAULTS.event_hooks.ping_on_change },
        max_event_bytes: { type: 'integer', minimum: 2, maximum: 67_108_864, default: DEFAULTS.event_hooks.max_event_bytes },
        retention_ms: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER, default: DEFAULTS.event_hooks.retention_ms },
        sweep_interval_ms: { type: 'integer', minimum: 10, maximum: MAX_TIMEOUT_MS, default: DEFAULTS.event_hooks.sweep_interval_ms },
        close_timeout_ms: { type: 'integer', minimum: 0, maximum: MAX_TIMEOUT_MS, default: DEFAULTS.event_hooks.close_timeout_ms },
        delivery: {
          type: 'object',
          additionalProperties: false,
          properties: {
            retry_schedule_ms: {
              type: 'array',
              default: DEFAULTS.event_hooks.delivery.retry_schedule_ms,
              items: { type: 'integer', minimum: 0, maximum: MAX_TIMEOUT_MS },
            },
            jitter: { type: 'string', enum: ['full', 'none'], default: DEFAULTS.event_hooks.delivery.jitter },
            retry_after_cap_ms: { type: 'integer', minimum: 0, maximum: MAX_TIMEOUT_MS, default: DEFAULTS.event_hooks.delivery.retry_after_cap_ms },
            timeout_ms: { type: 'integer', minimum: 1, maximum: MAX_TIMEOUT_MS, default: DEFAULTS.event_hooks.delivery.timeout_ms },
            connect_timeout_ms: {
              type: 'integer',
              minimum: 1,
              maximum: MAX_TIMEOUT_MS,
              default: DEFAULTS.event_hooks.delivery.connect_timeout_ms,
            },
            // Must exceed timeout_ms: checked in checks.ts.
            lease_ms: { type: 'integer', minimum: 1, maximum: MAX_TIMEOUT_MS, default: DEFAULTS.event_hooks.delivery.lease_ms },
            response_excerpt_bytes: {
              type: 'integer',
              minimum: 0,
              maximum: 16_777_216,
              default: DEFAULTS.event_hooks.delivery.response_excerpt_bytes,
            },
            max_in_flight: { type: 'integer', minimum: 1, maximum: 100_000, default: DEFAULTS.event_hooks.delivery.max_in_flight },
            per_origin_concurrency: {
              type: 'integer',
              minimum: 1,
              maximum: 10_000,
              default: DEFAULTS.event_hooks.delivery.per_origin_concurrency,
            },
            poll_interval_ms: { type: 'integer', minimum: 10, maximum: MAX_TIMEOUT_MS, default: DEFAULTS.event_hooks.delivery.poll_interval_ms },
          },
        },
        circuit: {
          type: 'object',
          additionalProperties: false,
          properties: {
            failure_threshold: { type: 'integer', minimum: 1, maximum: 1_000_000, default: DEFAULTS.event_hooks.circuit.failure_threshold },
            failure_ratio: { type: 'number', exclusiveMinimum: 0, maximum: 1, default: DEFAULTS.event_hooks.circuit.failure_ratio },
            min_requests: { type: 'integer', minimum: 1, maximum: 1_000_000, default: DEFAULTS.event_hooks.circuit.min_requests },
            window_ms: { type: 'integer', minimum: 1, maximum: MAX_TIMEOUT_MS, default: DEFAULTS.event_hooks.circuit.window_ms },
            cool_down_ms: { type: 'integer', minimum: 1, maximum: MAX_TIMEOUT_MS, default: DEFAULTS.event_hooks.circuit.cool_down_ms },
          },
        },
      },
    },
    proxy_listener: {
      type: 'object',
      additionalProperties: false,
      properties: {
        address: { ...address, default: DEFAULTS.proxy.listener.address },
        port: { ...port, default: DEFAULTS.proxy.listener.port },
        tls: { $ref: '#/definitions/tls' },
        http2: { type: 'boolean', default: DEFAULTS.proxy.http2 },
      },
    },
    admin_listener: {
      type: 'object',
      additionalProperties: false,
      properties: {
        address: { ...address, default: DEFAULTS.admin.listen.address },
        port: { ...port, default: DEFAULTS.admin.listen.port },
        tls: { $ref: '#/definitions/tls' },
      },
    },
    tls: {
      type: ['object', 'null'],
      additionalProperties: false,
      required: ['certificates'],
      default: null,
      properties: {
        certificates: {
          type: 'array',
          minItems: 1,
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['cert', 'key'],
            properties: {
              cert: { type: 'string', minLength: 1, maxLength: LIMITS.location },
              key: { type: 'string', minLength: 1, maxLength: LIMITS.location },
            },
          },
        },
        min_version: { type: 'string', enum: ['TLSv1.2', 'TLSv1.3'], default: DEFAULTS.tls.min_version },
        ciphers: { type: ['string', 'null'], minLength: 1, default: DEFAULTS.tls.ciphers },
        verify_client: { type: 'string', enum: ['off', 'optional', 'on'], default: DEFAULTS.tls.verify_client },
        client_ca: { type: ['string', 'null'], minLength: 1, maxLength: LIMITS.location, default: DEFAULTS.tls.client_ca },
      },
    },
    workspace: {
      type: 'object',
      additionalProperties: false,
      required: ['name'],
      properties: {
        name: {
          type: 'string',
          maxLength: LIMITS.workspaceName,
          pattern: WORKSPACE_NAME_PATTERN,
          description: 'made of lower-case letters, digits, "_" and "-", starting with a letter or digit',
        },
        plugins: { $ref: '#/definitions/plugins' },
        services: { $ref: '#/definitions/services' },
        routes: { $ref: '#/definitions/routes' },
        consumers: { $ref: '#/definitions/consumers' },
      },
    },
    services: { type: 'array', items: { $ref: '#/definitions/service' } },
    service: {
      type: 'object',
      additionalProperties: false,
      // Exactly one of url / urls is required: checked in load.ts for a readable message.
      required: ['name'],
      properties: {
        name: entityName,
        url: { type: 'string', minLength: 1, maxLength: LIMITS.location, description: 'http:// or https:// URL; its path is a prefix' },
        urls: {
          type: 'array',
          minItems: 1,
          uniqueItems: true,
          items: { type: 'string', minLength: 1, maxLength: LIMITS.location, description: 'http:// or https:// URL; its path is a prefix' },
        },
        connect_timeout_ms: {
          type: 'integer',
          minimum: 1,
          maximum: MAX_TIMEOUT_MS,
          default: DEFAULTS.service.connect_timeout_ms,
        },
        read_timeout_ms: {
          type: 'integer',
          minimum: 1,
          maximum: MAX_TIMEOUT_MS,
          default: DEFAULTS.service.read_timeout_ms,
        },
        pool_size: { type: 'integer', minimum: 1, maximum: 65535, default: DEFAULTS.service.pool_size },
        http2: {
          type: 'boolean',
          default: DEFAULTS.service.http2,
          description: 'HTTP/2 to the upstream: offered by ALPN on https:// URLs, h2c with prior knowledge on http:// URLs',
        },
        // Only with an https:// URL: checked in checks.ts; read (and checked as PEM) when the proxy builds its pools.
        ca_file: {
          type: ['string', 'null'],
          minLength: 1,
          maxLength: LIMITS.location,
          default: DEFAULTS.service.ca_file,
          description: "PEM file of the CA certificates an https:// upstream's certificate must chain to",
        },
        plugins: { $ref: '#/definitions/plugins' },
      },
    },
    routes: { type: 'array', items: { $ref: '#/definitions/route' } },
    route: {
      type: 'object',
      additionalProperties: false,
      required: ['name', 'service'],
      properties: {
        name: entityName,
        service: { type: 'string', minLength: 1, maxLength: LIMITS.entityName },
        hosts: {
          type: 'array',
          default: DEFAULTS.route.hosts,
          items: {
            type: 'string',
            maxLength: LIMITS.host,
            pattern: HOST_PATTERN,
            description: 'a host name such as api.example.com, or a wildcard such as *.example.com',
          },
        },
        paths: {
          type: 'array',
          default: DEFAULTS.route.paths,
          items: {
            type: 'string',
            maxLength: LIMITS.location,
            pattern: PATH_PATTERN,
            description: 'a path prefix starting with "/", without query, fragment or spaces',
          },
        },
        methods: {
          type: 'array',
          uniqueItems: true,
          default: DEFAULTS.route.methods,
          items: { type: 'string', enum: HTTP_METHODS },
        },
        strip_path: { type: 'boolean', default: DEFAULTS.route.strip_path },
        plugins: { $ref: '#/definitions/plugins' },
      },
    },
    consumers: { type: 'array', items: { $ref: '#/definitions/consumer' } },
    consumer: {
      type: 'object',
      additionalProperties: false,
      required: ['username'],
      properties: {
        username: { type: 'string', minLength: 1, maxLength: LIMITS.identifier },
        custom_id: { type: ['string', 'null'], minLength: 1, maxLength: LIMITS.identifier, default: DEFAULTS.consumer.custom_id },
      },
    },
    plugins: { type: 'array', items: { $ref: '#/definitions/plugin' } },
    plugin: {
      type: 'object',
      additionalProperties: false,
      required: ['name', 'wasm'],
      properties: {
        name: entityName,
        wasm: { type: 'string', minLength: 1, maxLength: LIMITS.location, description: 'path of the .wasm file' },
        // null (or absent) means "the plugin name"; "" is a legitimate explicit root id.
        root_id: { type: ['string', 'null'], maxLength: LIMITS.identifier },
        vm_id: { type: ['string', 'null'], maxLength: LIMITS.identifier },
        configuration: opaqueValue,
        vm_configuration: opaqueValue,
        failure_policy: { type: 'string', enum: FAILURE_POLICIES, default: DEFAULTS.plugin.failure_policy },
        allow_unknown_imports: { type: 'boolean', default: DEFAULTS.plugin.allow_unknown_imports },
        enabled: { type: 'boolean', default: DEFAULTS.plugin.enabled },
        limits: {
          type: 'object',
          additionalProperties: false,
          description: "this plugin's deadlines and memory cap; absent or null fields take the wasm section's",
          properties: {
            call_deadline_ms: { type: ['integer', 'null'], minimum: 0, maximum: MAX_TIMEOUT_MS },
            start_deadline_ms: { type: ['integer', 'null'], minimum: 0, maximum: MAX_TIMEOUT_MS },
            max_memory_mb: { type: ['integer', 'null'], minimum: 0, maximum: 4096 },
          },
        },
      },
    },
  },
} as const;

// ---------------------------------------------------------------------------
// Normalized configuration (the output of load.ts). Everything is filled in,
// every entity knows its workspace and has a stable id, and the whole tree is
// deep-frozen, hence `readonly` throughout.
// ---------------------------------------------------------------------------

/** A listener's TLS settings; file paths are absolute. */
export interface TlsConfig {
  /** PEM certificate (chain) and key files; the first is served when SNI names none of them. */
  readonly certificates: readonly { readonly cert: string; readonly key: string }[];
  readonly min_version: 'TLSv1.2' | 'TLSv1.3';
  /** OpenSSL cipher list (TLS 1.2), or null for Node's default. */
  readonly ciphers: string | null;
  readonly verify_client: 'off' | 'optional' | 'on';
  readonly client_ca: string | null;
}

export interface Listener {
  readonly address: string;
  readonly port: number;
  /** Null: plaintext. */
  readonly tls: TlsConfig | null;
  /** HTTP/2 to clients: ALPN h2 (and HTTP/1.1) with tls, prior-knowledge h2c only without. Always false for admin. */
  readonly http2: boolean;
}

export interface ProxyConfig {
  readonly listen: readonly Listener[];
  readonly request_body_buffer_limit: number;
  readonly response_body_buffer_limit: number;
  readonly drain_timeout_ms: number;
  /** Processes of `hookwire start` (1: one process, as without); read at start only. */
  readonly workers: number | 'auto';
}

export interface AdminConfig {
  readonly listen: Listener;
  readonly token: string | null;
  /** Off loopback without TLS: accepted (warned at start) only when true. */
  readonly allow_plaintext_off_loopback: boolean;
}

export interface WasmConfig {
  readonly envoy_strict: boolean;
  /** Absolute, or null when plugin paths are resolved against the config's base directory. */
  readonly modules_dir: string | null;
  /** Literal host:port targets proxy_http_call may reach (non-strict mode); the rest are clusters only. */
  readonly http_call_targets: readonly string[];
  readonly call_deadline_ms: number;
  readonly start_deadline_ms: number;
  readonly max_memory_mb: number;
  readonly reload_backoff_ms: number;
  readonly watchdog_ms: number;
}

/** A plugin's own limits; null fields take the `wasm` section's. */
export interface PluginLimits {
  readonly call_deadline_ms: number | null;
  readonly start_deadline_ms: number | null;
  /** The VM's cap: plugins sharing a VM must agree on it (checked). */
  readonly max_memory_mb: number | null;
}

/** Where a plugin entry was declared; decides its place in a route's chain. */
export type PluginScope = 'global' | 'workspace' | 'service' | 'route';

export interface PluginConfig {
  readonly id: string;
  readonly name: string;
  readonly scope: PluginScope;
  /** Null for global plugins, which belong to no workspace. */
  readonly workspace: string | null;
  readonly workspace_id: string | null;
  /** Absolute path of the .wasm file. */
  readonly wasm: string;
  readonly root_id: string;
  readonly vm_id: string;
  /** Exactly the bytes (as text) handed to on_configure / on_vm_start. */
  readonly configuration: string;
  readonly vm_configuration: string;
  readonly failure_policy: FailurePolicy;
  readonly allow_unknown_imports: boolean;
  readonly enabled: boolean;
  readonly limits: PluginLimits;
}

export interface ServiceConfig {
  readonly id: string;
  readonly name: string;
  readonly workspace: string;
  readonly workspace_id: string;
  /** One or more upstream base URLs, as written (http/https, path = prefix). */
  readonly urls: readonly string[];
  readonly connect_timeout_ms: number;
  readonly read_timeout_ms: number;
  readonly pool_size: number;
  /** HTTP/2 upstream: ALPN "h2" offered on https URLs, prior-knowledge h2c on http URLs. */
  readonly http2: boolean;
  /** Absolute path of the PEM CA bundle that verifies https upstreams (null: Node's root CAs). */
  readonly ca_file: string | null;
  readonly plugins: readonly PluginConfig[];
}

export interface RouteConfig {
  readonly id: string;
  readonly name: string;
  readonly workspace: string;
  readonly workspace_id: string;
  /** Name of the service, and its id. */
  readonly service: string;
  readonly service_id: string;
  /** Lower-cased; empty = any host. */
  readonly hosts: readonly string[];
  readonly paths: readonly string[];
  readonly methods: readonly HttpMethod[];
  readonly strip_path: boolean;
  readonly plugins: readonly PluginConfig[];
}

export interface ConsumerConfig {
  readonly id: string;
  readonly username: string;
  readonly custom_id: string | null;
  readonly workspace: string;
  readonly workspace_id: string;
}

export interface WorkspaceConfig {
  readonly id: string;
  readonly name: string;
  readonly plugins: readonly PluginConfig[];
  readonly services: readonly ServiceConfig[];
  readonly routes: readonly RouteConfig[];
  readonly consumers: readonly ConsumerConfig[];
}

/** One route with everything the data plane needs to serve it. */
export interface ResolvedRoute {
  readonly route: RouteConfig;
  readonly service: ServiceConfig;
  readonly workspace: WorkspaceConfig;
  /** Effective chain, in run order: global, workspace, service, route plugins; disabled ones left out. */
  readonly plugins: readonly PluginConfig[];
}

/** Delivery knobs of the event-hooks service (host/hooks/options.ts DeliveryOptions, snake_case). */
export interface EventHooksDeliveryConfig {
  /** Wait after each failed attempt (the first attempt is immediate). */
  readonly retry_schedule_ms: readonly number[];
  readonly jitter: 'full' | 'none';
  readonly retry_after_cap_ms: number;
  readonly timeout_ms: number;
  readonly connect_timeout_ms: number;
  readonly lease_ms: number;
  readonly response_excerpt_bytes: number;
  readonly max_in_flight: number;
  readonly per_origin_concurrency: number;
  readonly poll_interval_ms: number;
}

export interface EventHooksCircuitConfig {
  readonly failure_threshold: number;
  readonly failure_ratio: number;
  readonly min_requests: number;
  readonly window_ms: number;
  readonly cool_down_ms: number;
}

export interface EventHooksConfig {
  readonly enabled: boolean;
  /** Absolute path of the SQLite file, or ":memory:". */
  readonly store: string;
  readonly synchronous: 'normal' | 'full';
  /** Null: POST /event-hooks/ingest is disabled (404). */
  readonly ingest_token: string | null;
  readonly ingest_body_limit: number;
  /** Most records per ingest batch; more: 413. */
  readonly ingest_max_events: number;
  /** The SSRF allowlist: host names (or *.suffix) and CIDR ranges webhooks may reach although not public. */
  readonly allow_hosts: readonly string[];
  readonly allow_cidrs: readonly string[];
  readonly ping_on_change: boolean;
  readonly max_event_bytes: number;
  readonly retention_ms: number;
  readonly sweep_interval_ms: number;
  /** On shutdown, how long deliveries in flight may still take. */
  readonly close_timeout_ms: number;
  readonly delivery: EventHooksDeliveryConfig;
  readonly circuit: EventHooksCircuitConfig;
}

export interface StoragePoolConfig {
  /** Most connections of the pool. */
  readonly max: number;
  /** An idle connection is closed after this long (0: never). */
  readonly idle_timeout_ms: number;
  /** Connecting gives up after this long (0: no limit). */
  readonly connect_timeout_ms: number;
}

export interface StorageConfig {
  readonly kind: StorageKind;
  /** Absolute path of the SQLite file (or ":memory:"); kind sqlite. */
  readonly path: string;
  /** PostgreSQL connection URL; kind postgres (null otherwise). */
  readonly url: string | null;
  readonly pool: StoragePoolConfig;
  /** kind postgres: the change-notification fallback's poll period. */
  readonly poll_interval_ms: number;
}

export interface HookwireConfig {
  /** File path or label the config came from (used in messages). */
  readonly source: string;
  /** Absolute directory that relative paths were resolved against. */
  readonly base_dir: string;
  readonly proxy: ProxyConfig;
  readonly admin: AdminConfig;
  readonly wasm: WasmConfig;
  readonly log_level: LogLevel;
  readonly event_hooks: EventHooksConfig;
  readonly storage: StorageConfig;
  /** Global plugins: run for every route of every workspace. */
  readonly plugins: readonly PluginConfig[];
  /** "default" first (always present), then the declared workspaces in order. */
  readonly workspaces: readonly WorkspaceConfig[];
  /** Every route of every workspace, in declaration order. */
  readonly routes: readonly ResolvedRoute[];
}
