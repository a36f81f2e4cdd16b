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
