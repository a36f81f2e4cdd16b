/**
 * HTTP/2 clients (ALPN "h2" on TLS listeners, prior-knowledge h2c on
 * plaintext ones with `http2: true`). node:http2's compatibility API gives a
 * request/response pair shaped like node:http's, so the one request path in
 * stream.ts serves both; only the request head differs, and is adapted here
 * once per HTTP/2 request (never on the HTTP/1.1 path):
 *   - pseudo-headers leave rawHeaders (the stream rebuilds Envoy's
 *     `:authority`, `:path`, `:method`, `:scheme` from the request, as it
 *     does for HTTP/1.1), `:authority` becomes the Host the router reads;
 *   - a request whose HEADERS frame did not end the stream has a body even
 *     without content-length (HTTP/2 frames it), which is said with the
 *     `transfer-encoding: chunked` HTTP/1.1 would use (read, never forwarded).
 * Upstreams are HTTP/1.1 unless their service sets `http2` (upstream.ts).
 */
import type { Http2ServerRequest } from 'node:http2';

export function adaptHttp2Request(req: Http2ServerRequest): void {
  const raw = req.rawHeaders;
  const head: string[] = [];
  let host: string | undefined;
  let framed = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.charCodeAt(0) === 58 /* : */) {
      if (name === ':authority') host ??= raw[i + 1]!;
      continue;
    }
    if (name === 'host') host = undefined; // a Host header wins over :authority (RFC 9113 8.3.1 says they must agree)
    if (name === 'content-length') framed = true;
    head.push(name, raw[i + 1]!);
  }
  if (host !== undefined) head.unshift('host', host);
  if (!framed && !req.stream.endAfterHeaders) head.push('transfer-encoding', 'chunked');
  // An own property shadows the compatibility API's getter for this request only.
  Object.defineProperty(req, 'rawHeaders', { value: head });
}
