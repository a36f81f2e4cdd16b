/**
 * One HTTP stream as one plugin sees it: its header maps, bodies, local
 * response and the phase callbacks. The data plane (or the emulator) owns
 * the stream's progress; this class only runs the guest's callbacks and
 * records what the guest asked for.
 */
import { BufferType, MapType, Status, StreamType } from '../abi/constants.js';
import { HeaderMap } from '../abi/header-map.js';
import type { AbiBuffer } from '../abi/host.js';
import { BodyBuffer } from './buffer.js';
import type { ContextBinding } from './context.js';
import type { Plugin } from './plugin.js';
import type { PropertySource, PropertyValue } from './properties.js';
import type { WasmVm } from './vm.js';
import { storeProperty } from './limits.js';

/** What a phase callback asked for. FAILED: the VM trapped (apply the failure policy). */
export const FilterResult = { CONTINUE: 0, PAUSE: 1, FAILED: -1 } as const;
export type FilterResult = (typeof FilterResult)[keyof typeof FilterResult];

export interface LocalResponse {
  readonly status: number;
  readonly details: string;
  readonly body: Buffer;
  /** Byte-string pairs, lower-case names. */
  readonly headers: HeaderMap;
  readonly grpcStatus: number;
}

/** The stream owner's side of the guest's stream control calls. */
export interface StreamDelegate {
  continueStream?(ctx: HttpContext, stream: 0 | 1): void;
  closeStream?(ctx: HttpContext, stream: 0 | 1): void;
  sendLocalResponse?(ctx: HttpContext, response: LocalResponse): void;
  /** The stream's attributes (request.*, source.*...), when the options give no `properties`. */
  streamProperty?(key: string): PropertyValue | undefined;
}

export interface HttpContextOptions {
  delegate?: StreamDelegate;
  /** Attributes of the live stream (request.*, source.*...). */
  properties?: PropertySource;
}

/**
 * proxy_continue_stream / proxy_close_stream on a stream an HTTP filter does
 * not own, as Envoy answers (its Context::continueStream / closeStream): the
 * network streams (downstream 2, upstream 3) are a no-op OK, except
 * continuing upstream (UNIMPLEMENTED); beyond the ABI's types, BAD_ARGUMENT.
 */
export function streamTypeStatus(stream: number, close: boolean): Status {
  if (stream === StreamType.HTTP_REQUEST || stream === StreamType.HTTP_RESPONSE || stream === StreamType.DOWNSTREAM) return Status.OK;
  if (stream === StreamType.UPSTREAM) return close ? Status.OK : Status.UNIMPLEMENTED;
  return Status.BAD_ARGUMENT;
}

export class HttpContext implements ContextBinding {
  readonly id: number;
  readonly plugin: Plugin;
  readonly vm: WasmVm;
  /** Set by the stream owner when each phase starts; null means "not yet" (NOT_FOUND). */
  requestHeaders: HeaderMap | null = null;
  requestTrailers: HeaderMap | null = null;
  responseHeaders: HeaderMap | null = null;
  responseTrailers: HeaderMap | null = null;
  readonly requestBody = new BodyBuffer();
  readonly responseBody = new BodyBuffer();
  localResponse: LocalResponse | null = null;
  /** The VM trapped while serving this stream. */
  failed = false;
  deleted = false;
  private inLog = false;
  private overrides: Map<string, Uint8Array> | null = null;
  private readonly properties: PropertySource | undefined;
  private readonly delegate: StreamDelegate | undefined;

  constructor(plugin: Plugin, vm: WasmVm, options: HttpContextOptions) {
    this.plugin = plugin;
    this.vm = vm;
    this.id = vm.allocateContextId(this);
    this.properties = options.properties;
    this.delegate = options.delegate;
  }

  markFailed(): void {
    this.failed = true;
    this.vm.releaseContext(this.id);
  }

  private run(name: Parameters<WasmVm['call']>[1], a: number, b = 0): FilterResult {
    if (this.failed || this.deleted) return FilterResult.FAILED;
    try {
      return this.vm.call(this, name, 0, this.id, a, b) === 0 ? FilterResult.CONTINUE : FilterResult.PAUSE;
    } catch {
      this.markFailed();
      return FilterResult.FAILED;
    }
  }

  onRequestHeaders(endOfStream: boolean): FilterResult {
    this.requestHeaders ??= new HeaderMap();
    return this.run('proxy_on_request_headers', this.requestHeaders.count, endOfStream ? 1 : 0);
  }

  /** The guest sees the whole buffered body (requestBody) and its size. */
  onRequestBody(endOfStream: boolean): FilterResult {
    this.requestBody.endOfStream = endOfStream;
    return this.run('proxy_on_request_body', this.requestBody.size, endOfStream ? 1 : 0);
  }

  onRequestTrailers(): FilterResult {
    this.requestTrailers ??= new HeaderMap();
    return this.run('proxy_on_request_trailers', this.requestTrailers.count);
  }

  onResponseHeaders(endOfStream: boolean): FilterResult {
    this.responseHeaders ??= new HeaderMap();
    return this.run('proxy_on_response_headers', this.responseHeaders.count, endOfStream ? 1 : 0);
  }

  onResponseBody(endOfStream: boolean): FilterResult {
    this.responseBody.endOfStream = endOfStream;
    return this.run('proxy_on_response_body', this.responseBody.size, endOfStream ? 1 : 0);
  }

  onResponseTrailers(): FilterResult {
    this.responseTrailers ??= new HeaderMap();
    return this.run('proxy_on_response_trailers', this.responseTrailers.count);
  }

  /** After the stream: on_done, on_log (maps read-only), on_delete. Safe to call once. */
  complete(): void {
    if (this.deleted) return;
    if (!this.failed) {
      try {
        this.vm.call(this, 'proxy_on_done', 1, this.id);
        this.inLog = true;
        this.vm.call(this, 'proxy_on_log', 0, this.id);
        this.inLog = false;
        this.vm.call(this, 'proxy_on_delete', 0, this.id);
      } catch {
        this.failed = true;
      }
    }
    this.inLog = false;
    this.deleted = true;
    this.vm.releaseContext(this.id);
  }

  // ---- ContextBinding ----

  inAccessLog(): boolean {
    return this.inLog;
  }

  headerMap(type: number, forWrite: boolean): HeaderMap | Status | null {
    let map: HeaderMap | null;
    switch (type) {
      case MapType.HTTP_REQUEST_HEADERS:
        map = this.requestHeaders;
        break;
      case MapType.HTTP_REQUEST_TRAILERS:
        map = this.requestTrailers;
        break;
      case MapType.HTTP_RESPONSE_HEADERS:
        map = this.responseHeaders;
        break;
      case MapType.HTTP_RESPONSE_TRAILERS:
        map = this.responseTrailers;
        break;
      default:
        // The SDKs read call-response maps with the stream as effective context.
        return this.plugin.headerMap(type, forWrite);
    }
    if (forWrite && this.inLog) return Status.BAD_ARGUMENT;
    if (map === null) return null;
    return map;
  }

  buffer(type: number): AbiBuffer | Status {
    if (type === BufferType.HTTP_REQUEST_BODY) return this.requestBody;
    if (type === BufferType.HTTP_RESPONSE_BODY) return this.responseBody;
    return this.plugin.buffer(type);
  }

  overrideProperty(key: string): Uint8Array | undefined {
    return this.overrides?.get(key);
  }

  property(key: string): PropertyValue | undefined {
    // Like Envoy, a built-in attribute wins over a value the filter stored under the same path.
    const stream = this.properties !== undefined ? this.properties(key) : this.delegate?.streamProperty?.(key);
    return stream ?? this.overrides?.get(key) ?? this.plugin.property(key);
  }

  setProperty(key: string, value: Uint8Array): Status {
    if (storeProperty((this.overrides ??= new Map()), key, value)) return Status.OK;
    this.vm.boundHit('properties');
    return Status.BAD_ARGUMENT;
  }

  continueStream(stream: number): Status {
    if (stream !== StreamType.HTTP_REQUEST && stream !== StreamType.HTTP_RESPONSE) return streamTypeStatus(stream, false);
    this.delegate?.continueStream?.(this, stream);
    return Status.OK;
  }

  closeStream(stream: number): Status {
    if (stream !== StreamType.HTTP_REQUEST && stream !== StreamType.HTTP_RESPONSE) return streamTypeStatus(stream, true);
    this.delegate?.closeStream?.(this, stream);
    return Status.OK;
  }

  sendLocalResponse(code: number, details: string, body: Buffer, headers: string[], grpcStatus: number): Status {
    // A 1xx is not a final response: sent as one, the client would wait or treat the connection as upgraded.
    if (code < 200 || code > 999) return Status.BAD_ARGUMENT;
    for (let i = 0; i < headers.length; i += 2) headers[i] = headers[i]!.toLowerCase();
    const response: LocalResponse = { status: code, details, body, headers: new HeaderMap(headers), grpcStatus };
    this.localResponse = response;
    this.delegate?.sendLocalResponse?.(this, response);
    return Status.OK;
  }
}
