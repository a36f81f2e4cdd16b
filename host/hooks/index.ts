/**
 * The event-hooks service (Kong's Event Hooks on a durable outbox), its
 * schemas for the Admin API, and the webhook verifier for receivers.
 */
export { EventHooks, EVENT_HOOKS_QUEUE, PING_SOURCE } from './service.js';
export { DEFAULTS, type EventHooksOptions, type DeliveryOptions } from './options.js';
export type { CircuitOptions } from './circuit.js';
export {
  EVENT_HOOK_SCHEMA,
  EVENT_HOOK_PATCH_SCHEMA,
  HANDLER_CONFIG_SCHEMAS,
  WEBHOOK_CONFIG_SCHEMA,
  WEBHOOK_CUSTOM_CONFIG_SCHEMA,
  LOG_CONFIG_SCHEMA,
  WASM_CONFIG_SCHEMA,
  validateHookInput,
  applyHookPatch,
} from './schemas.js';
export { verifyWebhook, verifyKongSignature, publicKeyOf, standardSignature, kongSignature, DEFAULT_TOLERANCE_SECONDS } from './signing.js';
export { classifyAddress, SsrfPolicy, type AddressVerdict, type SsrfPolicyOptions, type LookupFn } from './ssrf.js';
export { digest, normalizeTable } from './digest.js';
export { BUILT_IN_SOURCES, WASM_EVENTS, DEFAULT_CRUD_ENTITIES, CRUD_OPERATIONS, type CrudOperation } from './sources.js';
export {
  loadTransform,
  TransformModuleError,
  TRANSFORM_EXPORT,
  TRANSFORM_IMPORTS,
  type LoadedTransform,
  type LoadTransformOptions,
  type TransformResult,
} from './transform.js';
export { DEFAULT_RETRY_SCHEDULE_MS } from './retry.js';
export { WIRE_VERSION } from './wire.js';
export { SqliteStore } from './sqlite-store.js';
export type * from './store.js';
export type * from './types.js';
export { HANDLERS, SIGNATURE_MODES } from './types.js';
