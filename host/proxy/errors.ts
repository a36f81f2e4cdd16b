/**
 * Errors of the data plane. Codes are stable and never reused (see
 * docs/data-plane.md, "Error codes").
 */
import { HookwireError } from '../errors.js';

/** Why a reload was refused; the previous configuration keeps serving. */
export type ReloadStage = 'config' | 'tls' | 'plugins' | 'listeners' | 'closed';

/**
 * A reload (SIGHUP or Gateway.reload) failed. Nothing changed: the previous
 * generation keeps serving. `cause` is the underlying error (ConfigError,
 * PluginStartError, WasmModuleError...).
 */
export class ReloadError extends HookwireError {
  readonly stage: ReloadStage;
  /** The generation that keeps serving. */
  readonly generation: number;
  constructor(stage: ReloadStage, generation: number, reason: string, options?: { cause?: unknown }) {
    super('HW_ERR_RELOAD_FAILED', `reload refused (${stage}), generation ${generation} keeps serving: ${reason}`, options);
    this.stage = stage;
    this.generation = generation;
  }
}

/** A proxy or admin listener could not be opened (address in use, permission...). */
export class ListenError extends HookwireError {
  readonly address: string;
  readonly port: number;
  constructor(what: string, address: string, port: number, options?: { cause?: unknown }) {
    const reason = (options?.cause as NodeJS.ErrnoException | undefined)?.code ?? (options?.cause as Error | undefined)?.message ?? 'unknown error';
    super('HW_ERR_LISTEN', `cannot listen on ${address}:${port} (${what}): ${reason}`, options);
    this.address = address;
    this.port = port;
  }
}

/** Work arrived after Gateway.close() began (a reload, a second start...). */
export class GatewayClosedError extends HookwireError {
  constructor(what: string) {
    super('HW_ERR_GATEWAY_CLOSED', `${what}: the gateway is closed or closing`);
  }
}

/**
 * A listener's certificate, key or CA file cannot be used: unreadable, not
 * PEM, or a key that does not belong to its certificate. `file` is the file
 * at fault. At start the listener does not open; on SIGHUP the certificates
 * already loaded keep serving.
 */
export class TlsConfigError extends HookwireError {
  readonly file: string;
  constructor(file: string, reason: string, options?: { cause?: unknown }) {
    super('HW_ERR_TLS_CONFIG', `${file}: ${reason}`, options);
    this.file = file;
  }
}
