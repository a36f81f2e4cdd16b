/**
 * What Envoy links and requires, as data (proxy-wasm-cpp-host's
 * registerCallbacks and its WASI list). This is deliberately a separate list
 * from what hookwire's import object provides: the Envoy-strict mode links
 * only these, and the import check compares every built module against them,
 * so a drift in either place shows up as a failing check.
 */
import { AbiVersion } from './constants.js';

/** env.* functions Envoy registers for every ABI version. */
const ENVOY_ENV_COMMON = [
  'proxy_log',
  'proxy_get_current_time_nanoseconds',
  'proxy_set_tick_period_milliseconds',
  'proxy_set_effective_context',
  'proxy_done',
  'proxy_call_foreign_function',
  'proxy_get_property',
  'proxy_set_property',
  'proxy_send_local_response',
  'proxy_get_shared_data',
  'proxy_set_shared_data',
  'proxy_register_shared_queue',
  'proxy_resolve_shared_queue',
  'proxy_dequeue_shared_queue',
  'proxy_enqueue_shared_queue',
  'proxy_get_header_map_value',
  'proxy_add_header_map_value',
  'proxy_replace_header_map_value',
  'proxy_remove_header_map_value',
  'proxy_get_header_map_pairs',
  'proxy_set_header_map_pairs',
  'proxy_get_header_map_size',
  'proxy_get_buffer_status',
  'proxy_get_buffer_bytes',
  'proxy_set_buffer_bytes',
  'proxy_http_call',
  'proxy_grpc_call',
  'proxy_grpc_stream',
  'proxy_grpc_close',
  'proxy_grpc_cancel',
  'proxy_grpc_send',
  'proxy_define_metric',
  'proxy_increment_metric',
  'proxy_record_metric',
  'proxy_get_metric',
  'proxy_get_status',
] as const;

const ENVOY_ENV_BY_VERSION: Record<AbiVersion, readonly string[]> = {
  [AbiVersion.V0_1_0]: ['proxy_get_configuration', 'proxy_continue_request', 'proxy_continue_response', 'proxy_clear_route_cache'],
  [AbiVersion.V0_2_0]: ['proxy_continue_stream', 'proxy_close_stream'],
  [AbiVersion.V0_2_1]: ['proxy_continue_stream', 'proxy_close_stream', 'proxy_get_log_level'],
};

/** WASI functions Envoy registers (under both module names). */
export const ENVOY_WASI = [
  'fd_write',
  'fd_read',
  'fd_seek',
  'fd_close',
  'fd_fdstat_get',
  'fd_fdstat_set_flags',
  'fd_prestat_get',
  'fd_prestat_dir_name',
  'environ_get',
  'environ_sizes_get',
  'args_get',
  'args_sizes_get',
  'clock_time_get',
  'random_get',
  'sched_yield',
  'poll_oneoff',
  'proc_exit',
  'path_open',
] as const;

export const ENVOY_WASI_MODULES = ['wasi_snapshot_preview1', 'wasi_unstable'] as const;

/** Every "module.name" import Envoy can satisfy for a module of this ABI version. */
export function envoyImports(version: AbiVersion): ReadonlySet<string> {
  const names = new Set<string>();
  for (const n of [...ENVOY_ENV_COMMON, ...ENVOY_ENV_BY_VERSION[version]]) names.add(`env.${n}`);
  for (const mod of ENVOY_WASI_MODULES) for (const n of ENVOY_WASI) names.add(`${mod}.${n}`);
  return names;
}

/** Exports Envoy needs to load and drive an HTTP filter module. */
export const ENVOY_REQUIRED_EXPORTS = ['memory', 'proxy_on_context_create'] as const;
/** One of these must be exported (Envoy tries malloc first). */
export const ENVOY_ALLOCATORS = ['malloc', 'proxy_on_memory_allocate'] as const;
