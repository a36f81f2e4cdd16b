/**
 * What every context (root or HTTP stream) answers for the host calls the
 * guest makes while it is the effective context.
 */
import type { Status } from '../abi/constants.js';
import type { HeaderMap } from '../abi/header-map.js';
import type { AbiBuffer } from '../abi/host.js';
import type { PropertyValue } from './properties.js';
import type { Plugin } from './plugin.js';

export interface ContextBinding {
  readonly id: number;
  /** The root context (plugin) this context belongs to; a root context is its own plugin. */
  readonly plugin: Plugin;
  /** null: a valid map type this context has no instance of now. */
  headerMap(type: number, forWrite: boolean): HeaderMap | Status | null;
  /** In proxy_on_log. */
  inAccessLog?(): boolean;
  buffer(type: number): AbiBuffer | Status;
  property(key: string): PropertyValue | undefined;
  setProperty(key: string, value: Uint8Array): Status;
  continueStream(stream: number): Status;
  closeStream(stream: number): Status;
  sendLocalResponse(code: number, details: string, body: Buffer, headers: string[], grpcStatus: number): Status;
}
