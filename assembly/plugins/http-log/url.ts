// URL and encoding helpers for http-log: the http_endpoint URL, Basic auth,
// and querystring decoding (as ngx.req.get_uri_args does it).

/** http_endpoint split the way Kong's parse_url does (port defaulted by scheme, path defaulted to "/"). */
export class Endpoint {
  scheme: string = "";
  userinfo: string = "";
  host: string = "";
  port: i32 = 0;
  /** Path and query: Kong Enterprise keeps the query string (OSS drops it). */
  path: string = "/";
}

/** Why the last parseEndpoint call failed. */
export let endpointError: string = "";

/**
 * `s` with A-Z made a-z. Used where only ASCII can matter (the scheme compared
 * with "http"/"https", header names checked to be tokens first): the same
 * result as toLowerCase there, without the Unicode case tables (1.1 KB).
 */
export function asciiLower(s: string): string {
  const n = s.length;
  const out = changetype<string>(__new(<usize>n << 1, idof<string>()));
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    store<u16>(changetype<usize>(out) + (<usize>i << 1), c >= 0x41 && c <= 0x5a ? c + 0x20 : c);
  }
  return out;
}

function isDigit(c: i32): bool {
  return c >= 0x30 && c <= 0x39;
}

export function parseEndpoint(url: string): Endpoint | null {
  endpointError = "";
  const sep = url.indexOf("://");
  if (sep <= 0) {
    endpointError = "must be a URL with a scheme (http or https)";
    return null;
  }
  const e = new Endpoint();
  e.scheme = asciiLower(url.substring(0, sep));
  if (e.scheme != "http" && e.scheme != "https") {
    endpointError = "must use the http or https scheme";
    return null;
  }
  let rest = url.substring(sep + 3);
  const hash = rest.indexOf("#");
  if (hash >= 0) rest = rest.substring(0, hash);
  let end = rest.length;
  for (let i = 0; i < rest.length; i++) {
    const c = rest.charCodeAt(i);
    if (c == 0x2f || c == 0x3f) {
      end = i;
      break;
    }
  }
  let authority = rest.substring(0, end);
  const tail = rest.substring(end);
  e.path = tail.length == 0 ? "/" : tail.charCodeAt(0) == 0x3f ? "/" + tail : tail;
  const at = authority.lastIndexOf("@");
  if (at >= 0) {
    e.userinfo = authority.substring(0, at);
    authority = authority.substring(at + 1);
  }
  let portText = "";
  if (authority.startsWith("[")) {
    const close = authority.indexOf("]");
    if (close < 0) {
      endpointError = "has an unterminated IPv6 address";
      return null;
    }
    e.host = authority.substring(0, close + 1);
    const after = authority.substring(close + 1);
    if (after.length > 0) {
      if (!after.startsWith(":")) {
        endpointError = "has an invalid host";
        return null;
      }
      portText = after.substring(1);
    }
  } else {
    const colon = authority.lastIndexOf(":");
    if (colon >= 0) {
      e.host = authority.substring(0, colon);
      portText = authority.substring(colon + 1);
    } else {
      e.host = authority;
    }
  }
  if (e.host.length == 0) {
    endpointError = "must name a host (the cluster that receives the logs)";
    return null;
  }
  for (let i = 0; i < e.host.length; i++) {
    const c = e.host.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f) {
      endpointError = "has an invalid host";
      return null;
    }
  }
  if (portText.length > 0) {
    if (portText.length > 5) {
      endpointError = "has an invalid port";
      return null;
    }
    let port = 0;
    for (let i = 0; i < portText.length; i++) {
      const c = portText.charCodeAt(i);
      if (!isDigit(c)) {
        endpointError = "has an invalid port";
        return null;
      }
      port = port * 10 + (c - 0x30);
    }
    if (port < 1 || port > 65535) {
      endpointError = "has an invalid port";
      return null;
    }
    e.port = port;
  } else {
    e.port = e.scheme == "https" ? 443 : 80;
  }
  return e;
}

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** Standard base64 (with padding) of the UTF-8 bytes of `s`. */
export function base64(s: string): string {
  const bytes = Uint8Array.wrap(String.UTF8.encode(s));
  let out = "";
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (<u32>bytes[i] << 16) | (<u32>bytes[i + 1] << 8) | <u32>bytes[i + 2];
    out += B64.charAt(n >> 18) + B64.charAt((n >> 12) & 63) + B64.charAt((n >> 6) & 63) + B64.charAt(n & 63);
  }
  const left = bytes.length - i;
  if (left == 1) {
    const n = <u32>bytes[i] << 16;
    out += B64.charAt(n >> 18) + B64.charAt((n >> 12) & 63) + "==";
  } else if (left == 2) {
    const n = (<u32>bytes[i] << 16) | (<u32>bytes[i + 1] << 8);
    out += B64.charAt(n >> 18) + B64.charAt((n >> 12) & 63) + B64.charAt((n >> 6) & 63) + "=";
  }
  return out;
}

function hexValue(c: u32): i32 {
  if (c >= 0x30 && c <= 0x39) return <i32>(c - 0x30);
  const l = c | 0x20;
  if (l >= 0x61 && l <= 0x66) return <i32>(l - 0x61 + 10);
  return -1;
}

/**
 * Decode a querystring component in place into `out` (starting at out+0):
 * "+" is a space, "%XX" a byte; a malformed escape is kept literally.
 * Returns the decoded length (never more than len).
 */
export function unescapeQuery(ptr: usize, len: i32, out: usize): i32 {
  let o = 0;
  let i = 0;
  while (i < len) {
    const c = <u32>load<u8>(ptr + i);
    if (c == 0x2b) {
      store<u8>(out + o++, 0x20);
      i++;
    } else if (c == 0x25 && i + 2 < len) {
      const h = hexValue(<u32>load<u8>(ptr + i + 1));
      const l = hexValue(<u32>load<u8>(ptr + i + 2));
      if (h >= 0 && l >= 0) {
        store<u8>(out + o++, <u8>((h << 4) | l));
        i += 3;
      } else {
        store<u8>(out + o++, <u8>c);
        i++;
      }
    } else {
      store<u8>(out + o++, <u8>c);
      i++;
    }
  }
  return o;
}
