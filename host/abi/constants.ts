/**
 * The proxy-wasm ABI's enumerations (spec v0.2.1, values as Envoy uses them).
 * Plain const objects (not TS enums) so they cost nothing at run time and read
 * the same in tests, logs and docs.
 */

export const Status = {
  OK: 0,
  NOT_FOUND: 1,
  BAD_ARGUMENT: 2,
  SERIALIZATION_FAILURE: 3,
  PARSE_FAILURE: 4,
  BAD_EXPRESSION: 5,
  INVALID_MEMORY_ACCESS: 6,
  EMPTY: 7,
  CAS_MISMATCH: 8,
  RESULT_MISMATCH: 9,
  INTERNAL_FAILURE: 10,
  BROKEN_CONNECTION: 11,
  UNIMPLEMENTED: 12,
} as const;
export type Status = (typeof Status)[keyof typeof Status];

export const LogLevel = { TRACE: 0, DEBUG: 1, INFO: 2, WARN: 3, ERROR: 4, CRITICAL: 5 } as const;
export type LogLevel = (typeof LogLevel)[keyof typeof LogLevel];
export const LOG_LEVEL_NAMES = ['trace', 'debug', 'info', 'warn', 'error', 'critical'] as const;
export type LogLevelName = (typeof LOG_LEVEL_NAMES)[number];

/** Filter return values. Envoy's richer header/data statuses (2..4) all mean "stop" except 0. */
export const Action = { CONTINUE: 0, PAUSE: 1 } as const;
export type Action = (typeof Action)[keyof typeof Action];

export const BufferType = {
  HTTP_REQUEST_BODY: 0,
  HTTP_RESPONSE_BODY: 1,
  DOWNSTREAM_DATA: 2,
  UPSTREAM_DATA: 3,
  HTTP_CALL_RESPONSE_BODY: 4,
  GRPC_RECEIVE_BUFFER: 5,
  VM_CONFIGURATION: 6,
  PLUGIN_CONFIGURATION: 7,
  CALL_DATA: 8,
} as const;
export type BufferType = (typeof BufferType)[keyof typeof BufferType];

export const MapType = {
  HTTP_REQUEST_HEADERS: 0,
  HTTP_REQUEST_TRAILERS: 1,
  HTTP_RESPONSE_HEADERS: 2,
  HTTP_RESPONSE_TRAILERS: 3,
  GRPC_RECEIVE_INITIAL_METADATA: 4,
  GRPC_RECEIVE_TRAILING_METADATA: 5,
  HTTP_CALL_RESPONSE_HEADERS: 6,
  HTTP_CALL_RESPONSE_TRAILERS: 7,
} as const;
export type MapType = (typeof MapType)[keyof typeof MapType];

export const StreamType = { HTTP_REQUEST: 0, HTTP_RESPONSE: 1, DOWNSTREAM: 2, UPSTREAM: 3 } as const;
export type StreamType = (typeof StreamType)[keyof typeof StreamType];

export const PeerType = { UNKNOWN: 0, LOCAL: 1, REMOTE: 2 } as const;

export const MetricType = { COUNTER: 0, GAUGE: 1, HISTOGRAM: 2 } as const;
export type MetricType = (typeof MetricType)[keyof typeof MetricType];

/** ABI versions, keyed by the marker export the module carries. */
export const AbiVersion = {
  V0_1_0: '0.1.0',
  V0_2_0: '0.2.0',
  V0_2_1: '0.2.1',
} as const;
export type AbiVersion = (typeof AbiVersion)[keyof typeof AbiVersion];

export const ABI_MARKERS: Readonly<Record<string, AbiVersion>> = {
  proxy_abi_version_0_2_1: AbiVersion.V0_2_1,
  proxy_abi_version_0_2_0: AbiVersion.V0_2_0,
  proxy_abi_version_0_1_0: AbiVersion.V0_1_0,
};

/** A name for a status code, for logs and error messages. */
export function statusName(code: number): string {
  for (const [name, value] of Object.entries(Status)) if (value === code) return name;
  return `STATUS_${code}`;
}
