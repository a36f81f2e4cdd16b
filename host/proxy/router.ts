/**
 * Route matching: which configured route serves a request.
 *
 * A route matches when every condition it sets holds: its host (exact, or a
 * `*.example.com` wildcard matching one or more labels), one of its path
 * prefixes (plain string prefix of the path, query excluded) and its method.
 * Empty lists match anything. Among matching routes (Envoy picks the virtual
 * host first, Kong prefers routes with more conditions):
 *   1. exact host beats wildcard host (longer wildcard suffix first) beats no host;
 *   2. then the longest matching path prefix wins;
 *   3. then routes that list methods beat routes that do not;
 *   4. then declaration order.
 * Everything is sorted once when the router is built; a lookup is a Map get
 * and a short scan, with no allocation.
 */

/** One route as the router sees it; `T` is whatever the data plane attaches. */
export interface RouteSpec<T> {
  readonly hosts: readonly string[];
  readonly paths: readonly string[];
  readonly methods: readonly string[];
  readonly value: T;
}

/** A route and the path prefix that matched (for strip_path). */
export interface RouteMatch<T> {
  readonly value: T;
  /** The matched prefix ("" when the route has no paths). */
  readonly prefix: string;
}

interface Candidate<T> extends RouteMatch<T> {
  readonly methods: readonly string[];
  readonly order: number;
}

function byPriority<T>(a: Candidate<T>, b: Candidate<T>): number {
  return (
    b.prefix.length - a.prefix.length ||
    (b.methods.length > 0 ? 1 : 0) - (a.methods.length > 0 ? 1 : 0) ||
    a.order - b.order
  );
}

/** Lower-cased host without its port ("Api.Example.com:8000" -> "api.example.com", "[::1]:80" -> "::1"). */
export function normalizeHost(host: string | undefined): string {
  if (host === undefined || host === '') return '';
  let end = host.length;
  if (host.charCodeAt(0) === 91 /* [ */) {
    const close = host.indexOf(']');
    return (close > 0 ? host.slice(1, close) : host).toLowerCase();
  }
  const colon = host.lastIndexOf(':');
  if (colon >= 0) end = colon;
  const name = end === host.length ? host : host.slice(0, end);
  // Most clients send lower-case hosts; avoid the copy then.
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c >= 65 && c <= 90) return name.toLowerCase();
  }
  return name;
}

export class Router<T> {
  private readonly exact = new Map<string, Candidate<T>[]>();
  /** Wildcards by suffix (".example.com"), longest first. */
  private readonly wildcards: { suffix: string; candidates: Candidate<T>[] }[] = [];
  private readonly anyHost: Candidate<T>[] = [];
  readonly size: number;

  constructor(routes: readonly RouteSpec<T>[]) {
    const wild = new Map<string, Candidate<T>[]>();
    let order = 0;
    for (const route of routes) {
      const prefixes = route.paths.length > 0 ? route.paths : [''];
      const candidates = prefixes.map((prefix) => ({ value: route.value, prefix, methods: route.methods, order: order++ }));
      if (route.hosts.length === 0) {
        this.anyHost.push(...candidates);
        continue;
      }
      for (const h of route.hosts) {
        const host = h.toLowerCase();
        if (host.startsWith('*.')) {
          const suffix = host.slice(1);
          let list = wild.get(suffix);
          if (!list) wild.set(suffix, (list = []));
          list.push(...candidates);
        } else {
          let list = this.exact.get(host);
          if (!list) this.exact.set(host, (list = []));
          list.push(...candidates);
        }
      }
    }
    for (const list of this.exact.values()) list.sort(byPriority);
    for (const [suffix, candidates] of wild) this.wildcards.push({ suffix, candidates: candidates.sort(byPriority) });
    this.wildcards.sort((a, b) => b.suffix.length - a.suffix.length);
    this.anyHost.sort(byPriority);
    this.size = routes.length;
  }

  /**
   * The best route for a request, or null. `host` is already normalized
   * (normalizeHost); `url` is the request target ("/path?query").
   */
  match(method: string, host: string, url: string): RouteMatch<T> | null {
    if (host !== '') {
      const exact = this.exact.get(host);
      if (exact !== undefined) {
        const m = pick(exact, method, url);
        if (m !== null) return m;
      }
      for (let i = 0; i < this.wildcards.length; i++) {
        const w = this.wildcards[i]!;
        if (host.length > w.suffix.length && host.endsWith(w.suffix)) {
          const m = pick(w.candidates, method, url);
          if (m !== null) return m;
        }
      }
    }
    return pick(this.anyHost, method, url);
  }
}

function pick<T>(candidates: readonly Candidate<T>[], method: string, url: string): Candidate<T> | null {
  for (let i = 0; i < candidates.length; i++) {
    const c = candidates[i]!;
    // Prefixes never contain "?", so a prefix of the target is a prefix of its path.
    if (c.prefix !== '' && !url.startsWith(c.prefix)) continue;
    if (c.methods.length > 0 && !c.methods.includes(method)) continue;
    return c;
  }
  return null;
}

/**
 * The upstream request target, Kong-style: with strip_path the matched prefix
 * is removed, then the service URL's path is prepended, joined by exactly one
 * "/". `url` is the request target (path and query).
 */
export function upstreamTarget(basePath: string, url: string, stripPrefix: string): string {
  let rest = url;
  if (stripPrefix !== '' && url.startsWith(stripPrefix)) {
    rest = url.slice(stripPrefix.length);
    if (rest === '' || rest.charCodeAt(0) === 63 /* ? */) rest = (basePath === '' ? '/' : '') + rest;
    else if (rest.charCodeAt(0) !== 47 /* / */) rest = '/' + rest;
  }
  if (basePath === '') return rest;
  if (rest === '' || rest.charCodeAt(0) === 63) return basePath + rest;
  return basePath.endsWith('/') ? basePath + rest.slice(1) : basePath + rest;
}
