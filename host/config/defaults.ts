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
    /** A listener's `http2`: off, like Kong's proxy_listen without the http2 flag. */
    http2: false,
    /** Bytes of request body a filter may make the proxy buffer (1 MiB); over it the client gets 413. */
    request_body_buffer_limit: 1_048_576,
    /** Bytes of response body a filter may make the proxy buffer (1 MiB); over it the client gets 502. */
    response_body_buffer_limit: 1_048_576,
    /** On SIGTERM, how long in-flight requests may still take before sockets are closed. */
    drain_timeout_ms: 10_000,
    /** One process; `auto` runs one per core (os.availableParallelism()). */
    workers: 1 as number | 'auto',
  },

  admin: {
    /** Port 8001 is Kong's admin port; loopback, so no token is needed by default.
     *  Also what a partial `admin.listen` (only address, or only port) is completed with. */
    listen: { address: LOCAL, port: 8001 },
    /** No token: only acceptable while the admin API listens on a loopback address. */
    token: null as string | null,
    /**
     * Off loopback the admin API needs TLS (the token would travel in clear
     * text otherwise); true accepts plaintext there anyway (warned at start).
     */
    allow_plaintext_off_loopback: false,
  },

  /** A listener's `tls` section: null is plaintext. */
  tls: {
    /** TLS 1.2 and 1.3 (Node's own floor); "TLSv1.3" refuses 1.2 clients. */
    min_version: 'TLSv1.2' as 'TLSv1.2' | 'TLSv1.3',
    /** Null: Node's default cipher list (OpenSSL's secure defaults, no RC4/3DES/export). */
    ciphers: null as string | null,
    /** Client certificates (mTLS): "off" asks for none, "optional" verifies one if sent, "on" requires one. */
    verify_client: 'off' as 'off' | 'optional' | 'on',
    /** PEM file of the CAs client certificates must chain to (required unless verify_client is "off"). */
    client_ca: null as string | null,
  },

  wasm: {
    /** Off: hookwire's more lenient host behaviour; on: behave exactly like Envoy. */
    envoy_strict: false,
    /** Null: relative plugin `wasm` paths are resolved against the config file's directory. */
    modules_dir: null as string | null,
    /**
     * Literal "host:port" targets proxy_http_call may reach besides the
     * configured services (non-strict mode only). Empty: clusters only.
     */
    http_call_targets: [] as readonly string[],
    /** Longest a stream, tick, timer, queue or http-call callback may run before the guest is stopped (0: no deadline). */
    call_deadline_ms: 100,
    /** The same for _start/_initialize, on_vm_start and on_configure, which may parse a configuration. */
    start_deadline_ms: 2_000,
    /** Largest memory of one VM; a guest's memory.grow past it fails (0: only the engine's 4 GiB). */
    max_memory_mb: 256,
    /** Failure policy "reload": least time between two reloads of a VM (Envoy: reload_config.backoff). */
    reload_backoff_ms: 1_000,
    /** A stalled event loop (a host bug, not a guest: guests have deadlines) ends the process after this long (0: no watchdog). */
    watchdog_ms: 0,
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
    /** HTTP/1.1 to the upstream, as Kong and Envoy's default cluster. */
    http2: false,
    /** Null: https upstreams are verified against Node's bundled root CAs (verification is never off). */
    ca_file: null as string | null,
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

  event_hooks: {
    /** Kong's event_hooks_enabled: on. */
    enabled: true,
    /** SQLite file, relative to the config file's directory (the package root for the built-in defaults); ":memory:" keeps nothing. */
    store: '.hookwire/event-hooks.db',
    /** SQLite synchronous mode: "normal" survives a process crash, "full" also a power loss. */
    synchronous: 'normal' as 'normal' | 'full',
    /** No token: POST /event-hooks/ingest (the Envoy forwarder's endpoint) is disabled. */
    ingest_token: null as string | null,
    /** Largest ingest batch body (32 MiB: 100 records of up to 256 KiB, and then some). */
    ingest_body_limit: 33_554_432,
    /** Most records in one ingest batch (the forwarder sends 100): a batch is worked through in slices, this bounds the whole. */
    ingest_max_events: 10_000,
    /** The SSRF allowlist is empty: webhooks reach public addresses only. */
    allow_hosts: [] as readonly string[],
    allow_cidrs: [] as readonly string[],
    /** Kong's ping on create/update of a webhook hook: off (host/hooks/options.ts). */
    ping_on_change: false,
    /** Largest event data accepted, as JSON bytes (256 KiB). */
    max_event_bytes: 262_144,
    /** Attempts and finished deliveries are kept 7 days. */
    retention_ms: 604_800_000,
    sweep_interval_ms: 60_000,
    /** On shutdown, deliveries in flight get 10 s to finish (then they are retried after a restart). */
    close_timeout_ms: 10_000,
    /** The event-hooks service's own defaults (host/hooks/options.ts; a test keeps the two equal). */
    delivery: {
      /** 5 s, 30 s, 2 min, 10 min, 30 min, 1 h, 3 h, 6 h. */
      retry_schedule_ms: [5_000, 30_000, 120_000, 600_000, 1_800_000, 3_600_000, 10_800_000, 21_600_000] as readonly number[],
      jitter: 'full' as 'full' | 'none',
      retry_after_cap_ms: 3_600_000,
      timeout_ms: 15_000,
      connect_timeout_ms: 10_000,
      lease_ms: 60_000,
      response_excerpt_bytes: 16_384,
      max_in_flight: 256,
      per_origin_concurrency: 16,
      poll_interval_ms: 5_000,
    },
    circuit: {
      failure_threshold: 5,
      failure_ratio: 0.5,
      min_requests: 20,
      window_ms: 60_000,
      cool_down_ms: 30_000,
    },
  },

  storage: {
    /**
     * Kong's "with a database": Admin API entity writes are stored, and the
     * store (not the file) is the truth; the file's entities seed an empty store.
     */
    kind: 'sqlite' as 'sqlite' | 'postgres' | 'off',
    /** SQLite file of the entities, beside the event-hooks store; ":memory:" keeps nothing. */
    path: '.hookwire/entities.db',
    /** kind postgres: the connection URL (required then). */
    url: null as string | null,
    pool: { max: 10, idle_timeout_ms: 30_000, connect_timeout_ms: 10_000 },
    /** LISTEN/NOTIFY carries changes at once; this poll catches what a dropped connection missed. */
    poll_interval_ms: 1000,
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
    /** Per-plugin call_deadline_ms / start_deadline_ms / max_memory_mb; null: the `wasm` section's. */
    limits: { call_deadline_ms: null as number | null, start_deadline_ms: null as number | null, max_memory_mb: null as number | null },
  },
});
