/**
 * hookwire's public API: the gateway (data plane), its composition with the
 * admin listener, configuration loading, and the errors they throw.
 * The plugin-author emulator is exported separately as "hookwire/testing".
 */
export { Gateway, listenerUrl } from './proxy/gateway.js';
export type { GatewayOptions, GatewayStatus, ListenerInfo, PluginStatus, ReloadResult } from './proxy/gateway.js';
export { ReloadError, ListenError, GatewayClosedError } from './proxy/errors.js';
export type { ReloadStage } from './proxy/errors.js';
export { Router, normalizeHost, upstreamTarget } from './proxy/router.js';
export type { RouteMatch, RouteSpec } from './proxy/router.js';
export { REQUEST_PROPERTIES } from './proxy/properties.js';
export { GatewayMetrics, LATENCY_BUCKETS } from './proxy/metrics.js';
export { errorBody } from './proxy/stream.js';
export { AdminServer, sendJson } from './admin/server.js';
export type { AdminHandler, AdminServerOptions } from './admin/server.js';
export { startHookwire } from './cli/app.js';
export type { Hookwire, HookwireOptions } from './cli/app.js';
export { run as runCli } from './cli/main.js';
export { defaultConfig, loadConfigFile, parseConfig, validateConfigObject } from './config/load.js';
export type { HookwireConfig, ResolvedRoute, RouteConfig, ServiceConfig, PluginConfig } from './config/schema.js';
export {
  HookwireError,
  ConfigError,
  PluginStartError,
  WasmModuleError,
  WasmTrapError,
  UnknownImportError,
  TransformError,
} from './errors.js';
