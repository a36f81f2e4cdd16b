/**
 * A local reply (proxy_send_local_response, or the host's own error reply) as
 * Envoy builds it, shared by the gateway's data plane and the emulator: the
 * reply's headers and the response code details it records.
 */

/** The response code details Envoy records when a plugin closes (resets) the stream. */
export const CLOSE_STREAM_DETAILS = 'wasm_close_stream';

/**
 * The response code details Envoy records for a local reply: every ASCII
 * whitespace character replaced with "_" (Envoy's wasm context passes the
 * plugin's details through StringUtil::replaceAllEmptySpace before
 * sendLocalReply). A plugin that gave none is named instead, so the access
 * log still says who answered.
 */
export function localReplyDetails(details: string, plugin: string): string {
  if (details === '') return `local_reply_by_${plugin}`;
  return /[\t\n\v\f\r ]/.test(details) ? details.replace(/[\t\n\v\f\r ]/g, '_') : details;
}

/**
 * The headers of a local reply as the response chain sees them: :status
 * first, then the plugin's headers (pseudo-headers and content-length
 * dropped: the host frames the body); Envoy adds text/plain to a non-empty
 * body without a type. `extra` is a flat [name, value, ...] list, lower-case.
 */
export function localReplyHeaders(status: number, extra: readonly string[], body: Uint8Array): string[] {
  const flat = [':status', String(status)];
  let typed = false;
  for (let i = 0; i < extra.length; i += 2) {
    const name = extra[i]!;
    if (name.charCodeAt(0) === 58 || name === 'content-length') continue;
    if (name === 'content-type') typed = true;
    flat.push(name, extra[i + 1]!);
  }
  if (!typed && body.length > 0) flat.push('content-type', 'text/plain');
  return flat;
}
