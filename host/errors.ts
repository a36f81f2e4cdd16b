/**
 * Typed errors with stable codes. Every error hookwire throws on purpose is a
 * HookwireError subclass whose `code` never changes meaning; docs/errors.md
 * lists each code with its cause and fix. Codes are never reused.
 */
export class HookwireError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** The bytes are not a usable proxy-wasm module (not wasm, no ABI marker, bad exports). */
export class WasmModuleError extends HookwireError {
  readonly file: string;
  constructor(file: string, reason: string, options?: { cause?: unknown }) {
    super('HW_ERR_WASM_INVALID', `${file}: ${reason}`, options);
    this.file = file;
  }
}

/** The module imports functions the host does not provide (and unknown imports are not allowed). */
export class UnknownImportError extends HookwireError {
  readonly file: string;
  readonly imports: readonly string[];
  constructor(file: string, imports: readonly string[]) {
    super(
      'HW_ERR_WASM_UNKNOWN_IMPORT',
      `${file}: imports that this host does not provide: ${imports.join(', ')} ` +
        '(set allow_unknown_imports to stub them with UNIMPLEMENTED)',
    );
    this.file = file;
    this.imports = imports;
  }
}

/** on_vm_start / on_configure returned false, or trapped, or the VM could not start. */
export class PluginStartError extends HookwireError {
  readonly plugin: string;
  constructor(plugin: string, reason: string, options?: { cause?: unknown }) {
    super('HW_ERR_PLUGIN_START', `plugin ${plugin}: ${reason}`, options);
    this.plugin = plugin;
  }
}

/** A guest callback trapped (unreachable, abort, proc_exit, out-of-bounds...). */
export class WasmTrapError extends HookwireError {
  readonly callback: string;
  constructor(callback: string, reason: string, options?: { cause?: unknown }) {
    super('HW_ERR_WASM_TRAP', `trap in ${callback}: ${reason}`, options);
    this.callback = callback;
  }
}

/** A call reached a VM that was poisoned by an earlier trap. */
export class VmPoisonedError extends HookwireError {
  constructor(vmId: string, reason: string) {
    super('HW_ERR_VM_POISONED', `VM ${JSON.stringify(vmId)} is poisoned: ${reason}`);
  }
}

/** An emulator or host API call named a context that does not exist (or was deleted). */
export class ContextNotFoundError extends HookwireError {
  constructor(contextId: number) {
    super('HW_ERR_CONTEXT_NOT_FOUND', `no live context with id ${contextId}`);
  }
}

/** One problem found in a configuration document. */
export interface ConfigIssue {
  /** JSON-pointer-like path to the offending value, e.g. /workspaces/0/routes/1/service */
  readonly path: string;
  readonly message: string;
}

/** A configuration file or document failed validation; `issues` names every problem. */
export class ConfigError extends HookwireError {
  readonly source: string;
  readonly issues: readonly ConfigIssue[];
  constructor(source: string, issues: readonly ConfigIssue[]) {
    super(
      'HW_ERR_CONFIG_INVALID',
      `${source}: invalid configuration:\n` + issues.map((i) => `  ${i.path || '/'}: ${i.message}`).join('\n'),
    );
    this.source = source;
    this.issues = issues;
  }
}

/** An event hook, delivery, source or source event named by the caller does not exist. */
export class EventHookNotFoundError extends HookwireError {
  readonly entity: 'event_hook' | 'delivery' | 'source' | 'event';
  readonly id: string;
  constructor(entity: 'event_hook' | 'delivery' | 'source' | 'event', id: string) {
    super('HW_ERR_EVENT_HOOK_NOT_FOUND', `${entity.replace('_', ' ')} ${JSON.stringify(id)} not found`);
    this.entity = entity;
    this.id = id;
  }
}

/** An event hook (entity or handler config) or an argument of the event-hooks service is invalid; `issues` names every problem. */
export class EventHookValidationError extends HookwireError {
  readonly issues: readonly ConfigIssue[];
  constructor(issues: readonly ConfigIssue[]) {
    super(
      'HW_ERR_EVENT_HOOK_INVALID',
      'invalid event hook:\n' + issues.map((i) => `  ${i.path || '/'}: ${i.message}`).join('\n'),
    );
    this.issues = issues;
  }
}

/** An event was emitted for a source or event nobody published (Kong's messages: "source 'x' is not registered"). */
export class EventRejectedError extends HookwireError {
  readonly source: string;
  readonly event: string;
  constructor(source: string, event: string, reason: string) {
    super('HW_ERR_EVENT_REJECTED', reason);
    this.source = source;
    this.event = event;
  }
}

/**
 * A webhook request was refused before sending (SSRF guard, invalid URL) or
 * failed (DNS, connect, TLS, timeout, non-2xx answer to test/ping).
 */
export class WebhookRequestError extends HookwireError {
  readonly reason: 'refused' | 'invalid_request' | 'dns' | 'connect' | 'tls' | 'timeout' | 'network' | 'status';
  /** HTTP status when the endpoint answered (reason "status"). */
  readonly status: number | null;
  constructor(
    reason: WebhookRequestError['reason'],
    message: string,
    options?: { cause?: unknown; status?: number },
  ) {
    super('HW_ERR_WEBHOOK_REQUEST', message, options);
    this.reason = reason;
    this.status = options?.status ?? null;
  }
}

/**
 * An event-hook transform (handler `wasm`) failed for one event: it trapped
 * (`trap`, an AssemblyScript abort included), ran past its deadline
 * (`deadline`), or returned something that is not a request or a drop
 * decision (`invalid_output`). Recorded as the attempt's error; retried.
 */
export class TransformError extends HookwireError {
  readonly reason: 'trap' | 'deadline' | 'invalid_output';
  constructor(reason: TransformError['reason'], message: string, options?: { cause?: unknown }) {
    super('HW_ERR_TRANSFORM', message, options);
    this.reason = reason;
  }
}

/** A received webhook failed verification (missing header, bad timestamp, no matching signature). */
export class WebhookVerificationError extends HookwireError {
  constructor(reason: string) {
    super('HW_ERR_WEBHOOK_SIGNATURE', reason);
  }
}

/** The event-hooks service was called after close(). */
export class EventHooksClosedError extends HookwireError {
  constructor(operation: string) {
    super('HW_ERR_EVENT_HOOKS_CLOSED', `event hooks service is closed (${operation})`);
  }
}

/** The event-hooks database was written by a newer hookwire (its schema version is higher than this one knows). */
export class EventHooksStoreVersionError extends HookwireError {
  readonly file: string;
  constructor(file: string, found: number, known: number) {
    super('HW_ERR_EVENT_HOOKS_STORE_VERSION', `${file}: event hooks database has schema version ${found}; this hookwire knows up to ${known}`);
    this.file = file;
  }
}

/** The entity store (`storage.path`) was written by a newer hookwire, or cannot be opened. */
export class EntityStoreError extends HookwireError {
  readonly file: string;
  constructor(code: 'HW_ERR_ENTITY_STORE_VERSION' | 'HW_ERR_ENTITY_STORE', file: string, message: string, options?: { cause?: unknown }) {
    super(code, `${file}: ${message}`, options);
    this.file = file;
  }
}

/** Another writer changed the stored entities since they were read (a concurrent Admin API write on another process). */
export class EntityStoreConflictError extends HookwireError {
  constructor(file: string, expected: number, found: number) {
    super('HW_ERR_ENTITY_STORE_CONFLICT', `${file}: the stored entities changed under this write (version ${found}, expected ${expected}); retry`);
  }
}

/** A PostgreSQL store (`storage.kind: postgres`) cannot be reached, read or written, or was migrated by a newer hookwire. */
export class PostgresStoreError extends HookwireError {
  /** The connection URL without its password. */
  readonly url: string;
  constructor(code: 'HW_ERR_POSTGRES_STORE_VERSION' | 'HW_ERR_POSTGRES_STORE', url: string, message: string, options?: { cause?: unknown }) {
    const shown = redactUrl(url);
    super(code, `${shown}: ${message}`, options);
    this.url = shown;
  }
}

/** A connection URL without its password, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://(unparsable url)';
  }
}
