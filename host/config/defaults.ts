import { deepFreeze } from './freeze.js';

/**
 * Every default value of the hookwire configuration, in one place.
 *
 * This object is the single source of truth: the loader (load.ts) fills absent
 * keys from here, the JSON Schema (schema.ts) copies the values into its
 * `default` annotations for editors, and docs/configuration.md documents the
 * same values. Change a default here and nowhere else.
 */

/** Name of the workspace that holds the top-level `services`, `routes` and `consumers`. */
const DEFAULT_WORKSPACE = 'default';

/** Loopback only by default: nothing is exposed beyond the host until asked for. */
const LOCAL = '127.0.0.1';

/** A proxy listener entry that omits `address` or `port` gets these; port 8000 is Kong's proxy port. */
const PROXY_LISTENER = { address: LOCAL, port: 8000 };

export const DEFAULTS = deepFreeze({
  /** Name of the implicit workspace built from the top-level entities (like Kong's "default"). */
  workspace: DEFAULT_WORKSPACE,

  proxy: {
    /** Listeners used when `proxy.listen` is absent. */
    listen: [PROXY_LISTENER],
    listener: PROXY_LISTENER,
    /** Bytes of request body a filter may make the proxy buffer (1 MiB); over it the client gets 413. */
    request_body_buffer_limit: 1_048_576,
    /** Bytes of response body a filter may make the proxy buffer (1 MiB); over it the client gets 502. */
    response_body_buffer_limit: 1_048_576,
    /** On SIGTERM, how long in-flight requests may still take before sockets are closed. */
    drain_timeout_ms: 10_000,
  },

  admin: {
    /** Port 8001 is Kong's admin port; loopback, so no token is needed by default.
     *  Also what a partial `admin.listen` (only address, or only port) is completed with. */
    listen: { address: LOCAL, port: 8001 },
    /** No token: only acceptable while the admin API listens on a loopback address. */
    token: null as string | null,
  },

  wasm: {
    /** Off: hookwire's more lenient host behaviour; on: behave exactly like Envoy. */
    envoy_strict: false,
    /** Null: relative plugin `wasm` paths are resolved against the config file's directory. */
    modules_dir: null as string | null,
  },

  /** One of trace, debug, info, warn, error, fatal. */
  log_level: 'info' as const,

  service: {
    /** TCP (and TLS) connect timeout towards the upstream. */
    connect_timeout_ms: 5_000,
    /** Longest silence allowed while reading the upstream response. */
    read_timeout_ms: 60_000,
    /** Keep-alive connections kept per upstream origin. */
    pool_size: 64,
  },

  route: {
    /** Empty lists match anything. */
    hosts: [] as readonly string[],
    paths: [] as readonly string[],
    methods: [] as readonly string[],
    /** Kong's strip_path: off, so the matched prefix is kept in the upstream path. */
    strip_path: false,
  },

  consumer: {
    custom_id: null as string | null,
  },

  plugin: {
    /** Null here means "the plugin's name" (root_id and vm_id default to the name). */
    root_id: null as string | null,
    vm_id: null as string | null,
    /** Absent configuration is passed to the plugin as the empty string. */
    configuration: '',
    vm_configuration: '',
    /** A plugin that fails (trap, bad start) fails the request rather than being skipped. */
    failure_policy: 'fail_closed' as const,
    /** Unknown imports are refused at load time unless explicitly allowed. */
    allow_unknown_imports: false,
    enabled: true,
  },
});
