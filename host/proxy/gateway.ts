/**
 * The gateway: proxy listeners, the serving generation (plugins + router +
 * upstreams), reloads that swap generations atomically, graceful shutdown,
 * and the status and metrics the admin API shows. One proxy-wasm Runtime
 * lives as long as the gateway, so shared data, queues and plugin metrics
 * survive reloads (plugins of a new generation get fresh VMs).
 *
 * ```ts
 * const gateway = await Gateway.start(await loadConfigFile('hookwire.yaml'), { logger });
 * await gateway.reload(await loadConfigFile('hookwire.yaml')); // throws ReloadError, old config keeps serving
 * await gateway.close(); // stop accepting, drain, done/log, unload
 * ```
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createSecureServer as createHttp2SecureServer, createServer as createHttp2Server, type Http2ServerRequest, type Http2Session } from 'node:http2';
import type { AddressInfo, Server as NetServer } from 'node:net';
import type { Duplex } from 'node:stream';
import { pino, type Logger } from 'pino';
import type { LogLevelName } from '../abi/constants.js';
import { loadConfigFile } from '../config/load.js';
import type { HookwireConfig, Listener, TlsConfig } from '../config/schema.js';
import { DEFAULTS } from '../config/defaults.js';
import { Runtime, type RuntimeEvent, type RuntimeOptions } from '../vm/runtime.js';
import type { PluginLogRecord } from '../vm/logging.js';
import { GatewayClosedError, ListenError, ReloadError, TlsConfigError } from './errors.js';
import { Generation, type RouteEntry } from './generation.js';
import { GatewayMetrics } from './metrics.js';
import { errorBody, hasExchange, serve, type StreamCore } from './stream.js';
import { adaptHttp2Request } from './http2.js';
import { ListenerCertificates } from './tls.js';
import { UpgradeStream } from './upgrade.js';
import { HttpCallDispatcher, PoolRegistry } from './upstream.js';

export interface GatewayOptions {
  /** Where hookwire logs (default: pino to stdout at the config's log_level). */
  logger?: Logger;
  /** The file the config came from; SIGHUP / reloadFromFile() re-read it. */
  configPath?: string | null;
  /** Extra runtime settings (tests: reloadBackoffMs, clock, timers, foreignFunctions...). */
  runtime?: Omit<RuntimeOptions, 'envoyStrict' | 'logLevel' | 'onLog' | 'onEvent' | 'httpCalls'>;
  /** Open the proxy listeners (default true); false to serve only through handle(). */
  listen?: boolean;
  /**
   * Also told about every runtime event (the event-hooks service's `wasm`
   * source), after the gateway logged it. Traps while plugins are being
   * unloaded (the AssemblyScript SDK's, see `unloading`) are not passed on.
   */
  onRuntimeEvent?: (event: RuntimeEvent) => void;
  /** Called with the runtime before the first plugins load: attach native queue consumers here. */
  beforeLoad?: (runtime: Runtime) => void;
}

export interface ListenerInfo {
  readonly address: string;
  readonly port: number;
  readonly url: string;
  readonly tls: boolean;
}

export interface ReloadResult {
  readonly generation: number;
  readonly previous: number;
  readonly plugins: number;
  readonly routes: number;
}

export interface PluginStatus {
  readonly name: string;
  readonly vm_id: string;
  readonly root_id: string;
  readonly failure_policy: string;
  readonly healthy: boolean;
  readonly failure: string | null;
  readonly reloads: number;
  /** Only when guest calls are measured (HOOKWIRE_MEASURE_WASM=1): top-level calls and their total wall time. */
  readonly wasm_calls?: number;
  readonly wasm_call_seconds?: number;
}

export interface GatewayStatus {
  readonly generation: number;
  readonly started_at: string;
  readonly config_source: string;
  readonly draining: boolean;
  readonly inflight: number;
  readonly listeners: { readonly proxy: readonly ListenerInfo[] };
  readonly routes: number;
  readonly services: number;
  readonly plugins: readonly PluginStatus[];
}

/** pino level names by proxy-wasm log level (trace..critical). */
const PINO_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;

/** The runtime's level for a config log_level (proxy-wasm calls fatal "critical"). */
function runtimeLevel(level: HookwireConfig['log_level']): LogLevelName {
  return level === 'fatal' ? 'critical' : level;
}

export function listenerUrl(address: string, port: number, tls = false): string {
  return `${tls ? 'https' : 'http'}://${address.includes(':') ? `[${address}]` : address}:${port}`;
}

/** Where to listen; without `tls` (embedders, tests), plaintext. */
export type ListenerSpec = Pick<Listener, 'address' | 'port'> & { readonly tls?: TlsConfig | null; readonly http2?: boolean };

/** An HTTP server (node:http or node:https) whose certificates, if any, a SIGHUP re-reads. */
export interface HttpListener {
  readonly server: Server;
  readonly certificates: ListenerCertificates | null;
  /** HTTP/2 listeners: the open sessions (node:http2 servers have no closeAllConnections). Null for HTTP/1.1 ones. */
  readonly sessions: Set<Http2Session> | null;
}

/** Stop taking requests on idle connections (HTTP/2: GOAWAY, streams in flight finish). */
export function closeIdle(l: HttpListener): void {
  if (l.sessions === null) l.server.closeIdleConnections();
  else for (const s of l.sessions) s.close();
}

/** Close every connection now. */
export function closeAll(l: HttpListener): void {
  if (l.sessions === null) l.server.closeAllConnections();
  else for (const s of l.sessions) s.destroy();
}

/**
 * The server for `listener`: node:https with its certificates when it has
 * `tls` (TlsConfigError names a bad file), node:http otherwise.
 */
export function createListenerServer(listener: ListenerSpec, logger: Logger, handler: (req: IncomingMessage, res: ServerResponse) => void): HttpListener {
  const certificates = listener.tls == null ? null : ListenerCertificates.load(listener.tls, logger);
  if (listener.http2 === true) {
    // HTTP/2's compatibility API gives request/response objects shaped like node:http's (see http2.ts).
    const h2 = handler as unknown as Parameters<typeof createHttp2Server>[1];
    const server = certificates === null ? createHttp2Server({}, h2) : createHttp2SecureServer({ ...certificates.serverOptions(), allowHTTP1: true }, h2);
    const sessions = new Set<Http2Session>();
    server.on('session', (session: Http2Session) => {
      sessions.add(session);
      session.once('close', () => sessions.delete(session));
    });
    return { server: server as unknown as Server, certificates, sessions };
  }
  if (certificates === null) return { server: createServer(handler), certificates: null, sessions: null };
  // node:https's Server is node:http's plus TLS (same request/response types).
  return { server: createHttpsServer(certificates.serverOptions(), handler) as unknown as Server, certificates, sessions: null };
}

/** Listen on `listener`; ListenError (naming `what`) on failure. */
export async function listen(server: NetServer, listener: ListenerSpec, what: string): Promise<ListenerInfo> {
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => reject(new ListenError(what, listener.address, listener.port, { cause: err }));
    server.once('error', onError);
    server.listen(listener.port, listener.address, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const tls = listener.tls != null;
  return { address: addr.address, port: addr.port, url: listenerUrl(addr.address, addr.port, tls), tls };
}

export class Gateway implements StreamCore {
  readonly logger: Logger;
  readonly metrics = new GatewayMetrics();
  readonly runtime: Runtime;
  readonly startedAt = new Date();
  /** Where the proxy listens (filled by start()). */
  readonly listeners: ListenerInfo[] = [];
  configPath: string | null;
  /** Requests being served, all generations together. */
  inflight = 0;
  draining = false;
  accessLog: boolean;

  private readonly registry = new PoolRegistry();
  private readonly calls: HttpCallDispatcher;
  private current!: Generation;
  private nextGeneration = 1;
  private readonly retired = new Set<Generation>();
  /** Generations whose plugins are being unloaded (some may wait for proxy_done). */
  private readonly unloads = new Set<Promise<void>>();
  private readonly servers: HttpListener[] = [];
  /** The TLS listeners, whose certificates a SIGHUP re-reads. */
  private readonly tlsListeners: HttpListener[] = [];
  private closing: Promise<void> | null = null;
  private drainWaiter: (() => void) | null = null;
  private reloadChain: Promise<unknown> = Promise.resolve();
  /**
   * Plugins are being unloaded. A module built on the AssemblyScript SDK's
   * own context classes (@gcoredev 1.2.3) aborts in a root context's
   * proxy_on_done (it looks the root up in its stream map), so every unload
   * of such a plugin traps; that is reported as a warning, not as a failure
   * of a serving plugin. hookwire's plugins (assembly/sdk) export their own.
   */
  private unloading = false;
  private readonly handler = (req: IncomingMessage, res: ServerResponse): void => this.handle(req, res);
  /** HTTP/2 listeners: HTTP/1.1 requests (ALPN fallback) as usual, HTTP/2 ones adapted first. */
  private readonly http2Handler = (req: IncomingMessage, res: ServerResponse): void => {
    if (req.httpVersionMajor === 2) adaptHttp2Request(req as unknown as Http2ServerRequest);
    this.handle(req, res);
  };
  private readonly upgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer): void => this.handleUpgrade(req, socket, head);
  /** Upgraded connections (WebSocket) open now: shutdown closes them after the drain timeout. */
  private readonly upgrades = new Set<UpgradeStream>();
  private readonly onRuntimeEvent: ((event: RuntimeEvent) => void) | null;
  /** A reload backoff the embedder fixed (GatewayOptions.runtime), else wasm.reload_backoff_ms of the serving config. */
  private readonly reloadBackoffOverride: number | null;

  private constructor(config: HookwireConfig, options: GatewayOptions) {
    this.logger = options.logger ?? pino({ level: config.log_level });
    this.configPath = options.configPath ?? null;
    this.onRuntimeEvent = options.onRuntimeEvent ?? null;
    this.accessLog = this.logger.isLevelEnabled('info');
    const d = DEFAULTS.service;
    this.calls = new HttpCallDispatcher(
      (name) => this.current?.clusters.get(name),
      this.registry,
      { connectTimeoutMs: d.connect_timeout_ms, readTimeoutMs: d.read_timeout_ms, connections: 16 },
      config.proxy.response_body_buffer_limit,
      (hostPort) => (this.current?.config ?? config).wasm.http_call_targets.includes(hostPort),
    );
    this.reloadBackoffOverride = options.runtime?.reloadBackoffMs ?? null;
    this.runtime = new Runtime({
      ...options.runtime,
      reloadBackoffMs: this.reloadBackoffOverride ?? config.wasm.reload_backoff_ms,
      envoyStrict: config.wasm.envoy_strict,
      logLevel: runtimeLevel(config.log_level),
      onLog: (record) => this.pluginLog(record),
      onEvent: (event) => this.runtimeEvent(event),
      httpCalls: this.calls,
    });
  }

  /**
   * Load and configure every plugin of `config` (generation 1), then open
   * the proxy listeners. Throws PluginStartError / WasmModuleError /
   * ListenError, with nothing left running.
   */
  static async start(config: HookwireConfig, options: GatewayOptions = {}): Promise<Gateway> {
    const gateway = new Gateway(config, options);
    try {
      options.beforeLoad?.(gateway.runtime);
      gateway.current = await Generation.load(gateway.runtime, config, gateway.nextGeneration++, gateway.registry, gateway.metrics);
      if (options.listen ?? true) {
        for (const l of config.proxy.listen) {
          const listener = createListenerServer(l, gateway.logger, l.http2 ? gateway.http2Handler : gateway.handler);
          const server = listener.server;
          server.on('upgrade', gateway.upgradeHandler);
          gateway.servers.push(listener);
          if (listener.certificates !== null) gateway.tlsListeners.push(listener);
          const info = await listen(server, l, 'proxy');
          gateway.listeners.push(info);
          gateway.logger.info({ url: info.url }, `proxy listening on ${info.url}`);
        }
      }
    } catch (err) {
      await gateway.close({ drainTimeoutMs: 0 });
      throw err;
    }
    gateway.logger.info(
      { generation: gateway.current.number, routes: gateway.current.router.size, plugins: gateway.current.plugins.size, source: config.source },
      'configuration loaded',
    );
    return gateway;
  }

  /** The configuration serving new requests. */
  get config(): HookwireConfig {
    return this.current.config;
  }

  /** The generation serving new requests. */
  get generation(): number {
    return this.current.number;
  }

  /** Whether close() has begun. */
  get closed(): boolean {
    return this.closing !== null;
  }

  /** The request entry point (the proxy listeners call it; embedders may too). */
  handle(req: IncomingMessage, res: ServerResponse): void {
    const gen = this.current;
    gen.inflight++;
    this.inflight++;
    try {
      serve(this, gen, req, res);
    } catch (err) {
      if (!hasExchange(res)) this.streamDone(gen);
      if (res.headersSent) {
        this.logger.error({ err }, 'request handling failed');
        res.destroy();
        return;
      }
      // Answer rather than reset: the client gets a status and an id to find this log line by.
      const requestId = randomUUID();
      this.logger.error({ err, request_id: requestId }, 'request handling failed');
      const body = errorBody('An unexpected error occurred', requestId);
      const headers: Record<string, string | number> = { 'content-type': 'application/json; charset=utf-8', 'content-length': body.length, 'x-request-id': requestId };
      // HTTP/2 has no Connection header (node:http2 refuses one); its stream ends alone.
      if (req.httpVersionMajor !== 2) headers.connection = 'close';
      res.writeHead(500, headers);
      res.end(body);
    }
  }

  /** An HTTP/1.1 Upgrade request (WebSocket): proxied as a tunnel, see upgrade.ts. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const gen = this.current;
    gen.inflight++;
    this.inflight++;
    if (this.draining) {
      socket.end('HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
      this.streamDone(gen);
      return;
    }
    try {
      const stream = UpgradeStream.start(this, gen, req, socket, head);
      if (stream !== null) {
        this.upgrades.add(stream);
        socket.once('close', () => this.upgrades.delete(stream));
      }
    } catch (err) {
      this.logger.error({ err }, 'upgrade handling failed');
      socket.destroy();
    }
  }

  streamDone(gen: Generation): void {
    gen.requestDone();
    if (--this.inflight === 0) this.drainWaiter?.();
  }

  // ---- reload ----

  /**
   * Serve `config` from now on: its plugins are loaded in fresh VMs (a new
   * generation) and configured first; then the router is swapped. Requests
   * in flight finish on the previous generation, whose plugins are unloaded
   * afterwards. On failure nothing changes and a ReloadError says why.
   * Listener, admin and envoy_strict changes need a restart (logged).
   */
  reload(config: HookwireConfig): Promise<ReloadResult> {
    return this.queueSwap(config, []);
  }

  private queueSwap(config: HookwireConfig, switchCertificates: readonly (() => void)[]): Promise<ReloadResult> {
    const run = this.reloadChain.then(() => this.swap(config, switchCertificates));
    this.reloadChain = run.catch(() => undefined);
    return run;
  }

  /**
   * Re-read the configuration file (SIGHUP) and reload it, and re-read the
   * TLS listeners' certificate files: both change together, or nothing does.
   */
  async reloadFromFile(path: string | null = this.configPath, prepare?: (file: HookwireConfig) => HookwireConfig | Promise<HookwireConfig>): Promise<ReloadResult> {
    if (path === null) {
      const err = new ReloadError('config', this.generation, 'hookwire was started without a configuration file, there is nothing to re-read');
      this.logger.error({ code: err.code }, err.message);
      throw err;
    }
    let config: HookwireConfig;
    try {
      config = await loadConfigFile(path);
      // The composition root puts the stored entities in (with a store, the store is the truth).
      if (prepare) config = await prepare(config);
    } catch (cause) {
      const err = new ReloadError('config', this.generation, (cause as Error).message, { cause });
      this.logger.error({ code: err.code, stage: err.stage }, err.message);
      throw err;
    }
    let switches: (() => void)[];
    try {
      switches = this.tlsListeners.map((l) => l.certificates!.prepareReload(l.server as unknown as { setSecureContext(o: object): void }));
    } catch (cause) {
      const err = new ReloadError('tls', this.generation, (cause as Error).message, { cause });
      this.logger.error({ code: err.code, stage: err.stage }, err.message);
      throw err;
    }
    return this.queueSwap(config, switches);
  }

  private async swap(config: HookwireConfig, switchCertificates: readonly (() => void)[]): Promise<ReloadResult> {
    const previous = this.current;
    if (this.closing) throw new ReloadError('closed', previous.number, new GatewayClosedError('reload').message);
    let next: Generation;
    try {
      next = await Generation.load(this.runtime, config, this.nextGeneration++, this.registry, this.metrics);
    } catch (cause) {
      // A service's ca_file is read as the pools are built: a TLS file at fault, not a plugin.
      const err = new ReloadError(cause instanceof TlsConfigError ? 'tls' : 'plugins', previous.number, (cause as Error).message, { cause });
      this.logger.error({ code: err.code, stage: err.stage, generation: previous.number }, err.message);
      throw err;
    }
    if (this.closing) {
      next.release(this.runtime, this.registry);
      throw new ReloadError('closed', previous.number, new GatewayClosedError('reload').message);
    }
    this.warnUnapplied(previous.config, config);
    // The swap: new requests take the new router from here on (and new handshakes the re-read certificates).
    this.current = next;
    this.runtime.reloadBackoffMs = this.reloadBackoffOverride ?? config.wasm.reload_backoff_ms;
    for (const switchOver of switchCertificates) switchOver();
    if (switchCertificates.length > 0) this.logger.info({ listeners: switchCertificates.length }, 'TLS certificates reloaded');
    if (config.log_level !== previous.config.log_level) {
      this.logger.level = config.log_level;
      this.accessLog = this.logger.isLevelEnabled('info');
    }
    this.retired.add(previous);
    previous.retire(() => {
      this.retired.delete(previous);
      // Plugins that flush on unload (proxy_on_done false) get proxy.drain_timeout_ms to call proxy_done.
      void this.release(previous, previous.config.proxy.drain_timeout_ms).then(() =>
        this.logger.debug({ generation: previous.number }, 'previous generation drained and unloaded'),
      );
    });
    const result = { generation: next.number, previous: previous.number, plugins: next.plugins.size, routes: next.router.size };
    this.logger.info({ ...result, source: config.source }, 'configuration reloaded');
    return result;
  }

  private warnUnapplied(before: HookwireConfig, after: HookwireConfig): void {
    const changed: string[] = [];
    if (JSON.stringify(before.proxy.listen) !== JSON.stringify(after.proxy.listen)) changed.push('proxy.listen');
    if (JSON.stringify(before.admin) !== JSON.stringify(after.admin)) changed.push('admin');
    if (before.wasm.envoy_strict !== after.wasm.envoy_strict) changed.push('wasm.envoy_strict');
    if (before.log_level !== after.log_level) changed.push('log_level (plugin log filtering)');
    if (JSON.stringify(before.event_hooks) !== JSON.stringify(after.event_hooks)) changed.push('event_hooks');
    if (changed.length > 0) this.logger.warn({ settings: changed }, `reload does not apply ${changed.join(', ')}: restart hookwire for that`);
  }

  // ---- shutdown ----

  /**
   * Stop accepting connections, let in-flight requests finish (at most
   * `drainTimeoutMs`, default proxy.drain_timeout_ms), close what is left
   * (each stream still runs done/log/delete), then unload every plugin and
   * close the upstream pools. Idempotent.
   */
  close(options: { drainTimeoutMs?: number } = {}): Promise<void> {
    this.closing ??= this.shutdown(options.drainTimeoutMs ?? this.current?.config.proxy.drain_timeout_ms ?? 0);
    return this.closing;
  }

  private async shutdown(drainTimeoutMs: number): Promise<void> {
    this.draining = true;
    // One budget for the whole drain: requests in flight, then plugins flushing on unload.
    const deadline = Date.now() + drainTimeoutMs;
    const serversClosed = this.servers.map((l) => new Promise<void>((resolve) => l.server.close(() => resolve())));
    for (const l of this.servers) closeIdle(l);
    if (this.inflight > 0) {
      this.logger.info({ inflight: this.inflight, timeout_ms: drainTimeoutMs }, 'draining in-flight requests');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, drainTimeoutMs);
        this.drainWaiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.drainWaiter = null;
    }
    if (this.inflight > 0) this.logger.warn({ inflight: this.inflight }, 'drain timeout: closing the remaining connections');
    for (const l of this.servers) closeAll(l);
    // Upgraded connections are no longer the HTTP server's: close them here.
    for (const u of this.upgrades) u.destroy();
    await Promise.all(serversClosed);
    const left = Math.max(0, deadline - Date.now());
    for (const gen of this.retired) void this.release(gen, left);
    this.retired.clear();
    if (this.current) void this.release(this.current, left);
    if (this.unloads.size > 0) {
      // Unloads of earlier reloads have their own deadlines; none outlives this one.
      this.logger.info({ timeout_ms: left }, 'waiting for plugins to finish (proxy_done)');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.all(this.unloads), new Promise<void>((resolve) => (timer = setTimeout(resolve, left)))]);
      clearTimeout(timer);
    }
    this.runtime.close();
    this.calls.close();
    await this.registry.closeAll();
    this.logger.info('gateway stopped');
  }

  /**
   * Unload a generation's plugins and release its pools; plugins whose root
   * returned false from proxy_on_done have `drainMs` to call proxy_done.
   */
  private release(gen: Generation, drainMs: number): Promise<void> {
    this.unloading = true;
    let unload: Promise<void>;
    try {
      unload = gen.release(this.runtime, this.registry, drainMs);
    } finally {
      this.unloading = false;
    }
    this.unloads.add(unload);
    void unload.finally(() => this.unloads.delete(unload));
    return unload;
  }

  // ---- observability ----

  status(): GatewayStatus {
    const gen = this.current;
    return {
      generation: gen.number,
      started_at: this.startedAt.toISOString(),
      config_source: gen.config.source,
      draining: this.draining,
      inflight: this.inflight,
      listeners: { proxy: this.listeners },
      routes: gen.router.size,
      services: gen.config.workspaces.reduce((n, ws) => n + ws.services.length, 0),
      plugins: [...gen.plugins.values()].map((p) => ({
        name: p.name,
        vm_id: p.vmId,
        root_id: p.rootId,
        failure_policy: p.failurePolicy,
        healthy: p.healthy,
        failure: p.failure,
        reloads: p.reloads,
        ...(p.timing !== null ? { wasm_calls: p.timing.calls, wasm_call_seconds: p.timing.ns / 1e9 } : {}),
      })),
    };
  }

  /** Prometheus text exposition of the gateway's and the plugins' metrics. */
  metricsText(): string {
    return this.metrics.render(
      { inflight: this.inflight, generation: this.current.number, plugins: this.current.plugins.size },
      this.runtime.metrics.snapshot(),
      this.runtime.wasmTiming,
      this.runtime.bounds,
    );
  }

  /** The route entry a request would take (for tools and tests). */
  route(method: string, host: string, url: string): RouteEntry | null {
    return this.current.router.match(method, host, url)?.value ?? null;
  }

  private pluginLog(r: PluginLogRecord): void {
    if (this.unloading && r.level >= 4) {
      this.logger.warn({ plugin: r.plugin, vm_id: r.vmId, source: r.source, during: 'unload' }, r.message);
      return;
    }
    this.logger[PINO_LEVELS[r.level] ?? 'info']({ plugin: r.plugin, vm_id: r.vmId, context_id: r.contextId, source: r.source }, r.message);
  }

  private runtimeEvent(e: RuntimeEvent): void {
    switch (e.type) {
      case 'vm_trapped':
        if (e.deadlineExceeded) this.metrics.deadlineExceeded(e.deadlineExceeded.plugin);
        this.logger[this.unloading ? 'warn' : 'error']({ vm_id: e.vmId, callback: e.callback, plugins: e.plugins, reason: e.reason }, 'VM trapped');
        break;
      case 'vm_reloaded':
        this.metrics.vmRestart(e.vmId, e.ok);
        this.logger[e.ok ? 'warn' : 'error']({ vm_id: e.vmId, plugins: e.plugins, ok: e.ok, reason: e.reason }, 'VM reloaded after a trap');
        break;
      case 'plugin_start_failed':
        this.logger.error({ plugin: e.plugin, vm_id: e.vmId, reason: e.reason }, 'plugin failed to start');
        break;
      case 'plugin_loaded':
        this.logger.debug({ plugin: e.plugin, vm_id: e.vmId, root_id: e.rootId, sha256: e.sha256, file: e.file }, 'plugin loaded');
        break;
      case 'plugin_unloaded':
        this.logger.debug({ plugin: e.plugin, vm_id: e.vmId }, 'plugin unloaded');
        break;
    }
    if (this.onRuntimeEvent === null || (e.type === 'vm_trapped' && this.unloading)) return;
    try {
      this.onRuntimeEvent(e);
    } catch (err) {
      this.logger.error({ err, event: e.type }, 'runtime event listener failed');
    }
  }
}
