/**
 * The rules the JSON Schema cannot phrase well because they relate several
 * values: url vs urls, URL syntax, a route's service must exist in the same
 * workspace, unique names, an admin token off loopback, listener addresses
 * and clashes, and plugins that would share a VM disagreeing about it.
 *
 * These run on the raw document even when the schema already failed, so one
 * run reports every problem; each check therefore looks only at values of
 * the type it expects and leaves wrong types to the schema's messages.
 */
import { BlockList, isIP } from 'node:net';
import { resolve } from 'node:path';
import type { ConfigIssue } from '../errors.js';
import { DEFAULTS } from './defaults.js';
import { describeValue } from './issues.js';
import { modulesBase, normalizeListener, pluginString } from './normalize.js';
import { asArray, asObject, groupWorkspaces, type Raw, type WorkspaceGroup } from './workspaces.js';
import type { Listener } from './schema.js';

export interface CheckContext {
  /** Absolute directory for relative paths, to tell whether two plugins name the same .wasm. */
  readonly baseDir: string;
}

export function checkDocument(root: unknown, ctx: CheckContext): ConfigIssue[] {
  const doc = asObject(root);
  if (!doc) return [];
  const issues: ConfigIssue[] = [];
  const report = (path: string, message: string) => issues.push({ path, message });

  checkListeners(doc, report);
  checkAdminToken(doc, report);
  checkHttpCallTargets(doc, report);
  checkEventHooks(doc, report);
  checkStorage(doc, report);

  const { groups, duplicates } = groupWorkspaces(doc);
  for (const dup of duplicates) {
    report(`${dup.pointer}/name`, `duplicate workspace name ${JSON.stringify(dup.name)} (already used by ${dup.first})`);
  }
  for (const group of groups) checkWorkspace(group, report);
  checkPlugins(doc, groups, ctx, report);
  return issues;
}

type Report = (path: string, message: string) => void;

/** kind postgres needs a URL; a URL with another kind is a mistake worth naming. */
function checkStorage(doc: Record<string, unknown>, report: Report): void {
  const storage = asObject(doc.storage);
  if (!storage) return;
  const url = storage.url ?? null;
  if (storage.kind === 'postgres' && url === null) report('/storage/url', 'is required with kind postgres (postgres://user:password@host:port/database)');
  if (storage.kind !== 'postgres' && url !== null) report('/storage/url', `is only used with kind postgres (kind is ${String(storage.kind ?? 'sqlite')})`);
}

// --- listeners --------------------------------------------------------------

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6'); // BlockList also matches ::ffff:127.x.y.z against the IPv4 subnet

/** Loopback as the admin token rule means it: 127.0.0.0/8, ::1 (any spelling) and "localhost". */
export function isLoopback(address: string): boolean {
  if (address.toLowerCase() === 'localhost') return true;
  const family = isIP(address);
  return family !== 0 && LOOPBACK.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

const HOSTNAME = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

function checkListeners(doc: Raw, report: Report): void {
  const seen = new Map<string, string>();
  const check = (raw: unknown, pointer: string, defaults: Pick<Listener, 'address' | 'port'>) => {
    const obj = asObject(raw);
    if (!obj) return;
    const { address, port } = normalizeListener(obj, defaults);
    if (typeof address === 'string' && address !== '' && isIP(address) === 0 && !HOSTNAME.test(address)) {
      report(`${pointer}/address`, `must be an IP address (without brackets) or a host name (found ${describeValue(address)})`);
    }
    // Port 0 asks the OS for a fresh port each time, so it never clashes.
    if (typeof address !== 'string' || !Number.isInteger(port) || port === 0) return;
    const key = `${address.toLowerCase()}|${port}`;
    const first = seen.get(key);
    if (first !== undefined) report(pointer, `listens on ${address}:${port} like ${first} (each listener needs its own address and port)`);
    else seen.set(key, pointer);
  };
  const proxy = asObject(doc.proxy) ?? {};
  const listen = proxy.listen === undefined ? DEFAULTS.proxy.listen : asArray(proxy.listen);
  listen.forEach((l, i) => {
    check(l, `/proxy/listen/${i}`, DEFAULTS.proxy.listener);
    checkTls(asObject(l)?.tls, `/proxy/listen/${i}/tls`, report);
  });
  const adminListen = asObject(asObject(doc.admin)?.listen) ?? {};
  check(adminListen, '/admin/listen', DEFAULTS.admin.listen);
  checkTls(adminListen.tls, '/admin/listen/tls', report);
}

function checkAdminToken(doc: Raw, report: Report): void {
  const admin = asObject(doc.admin) ?? {};
  const listen = asObject(admin.listen);
  const address = listen?.address ?? DEFAULTS.admin.listen.address;
  const token = admin.token ?? DEFAULTS.admin.token;
  // A wrong type or empty token is the schema's to report; here only "missing".
  if (typeof address !== 'string' || address === '' || isLoopback(address)) return;
  if (token === null) {
    report(
      '/admin/token',
      `must be a non-empty string when admin.listen.address is not a loopback address ` +
        `(found no token, with address ${JSON.stringify(address)}); ` +
        'anyone who can reach the admin API could reconfigure the gateway',
    );
  }
  // The token (and every entity) would cross the network in clear text.
  if ((listen?.tls ?? null) === null && admin.allow_plaintext_off_loopback !== true) {
    report(
      '/admin/listen/tls',
      `is required when admin.listen.address is not a loopback address (found none, with address ${JSON.stringify(address)}): ` +
        'the admin token would travel in clear text; set admin.allow_plaintext_off_loopback: true to accept that (a TLS-terminating proxy in front)',
    );
  }
}

/** mTLS needs the CAs to verify client certificates against. */
function checkTls(raw: unknown, pointer: string, report: Report): void {
  const tls = asObject(raw);
  if (!tls) return;
  const verify = tls.verify_client ?? DEFAULTS.tls.verify_client;
  if (verify !== 'off' && (tls.client_ca ?? null) === null) {
    report(`${pointer}/client_ca`, `must name a PEM file of CA certificates when verify_client is ${JSON.stringify(verify)} (found none)`);
  }
}

/** proxy_http_call literal targets: a real port, and never the admin listener (a plugin must not reconfigure the gateway). */
function checkHttpCallTargets(doc: Raw, report: Report): void {
  const targets = asArray(asObject(doc.wasm)?.http_call_targets);
  const admin = normalizeListener(asObject(asObject(doc.admin)?.listen) ?? {}, DEFAULTS.admin.listen);
  targets.forEach((t, i) => {
    if (typeof t !== 'string') return;
    const colon = t.lastIndexOf(':');
    const host = t.slice(0, colon).replace(/^\[|\]$/g, '').toLowerCase();
    const port = Number(t.slice(colon + 1));
    const adminHost = String(admin.address).toLowerCase();
    const sameHost = host === adminHost || (isLoopback(host) && isLoopback(adminHost)) || adminHost === '0.0.0.0' || adminHost === '::';
    if (!(port >= 1 && port <= 65535)) report(`/wasm/http_call_targets/${i}`, `port must be 1..65535 (found ${JSON.stringify(t)})`);
    else if (port === admin.port && sameHost) {
      report(`/wasm/http_call_targets/${i}`, `${JSON.stringify(t)} is the admin listener: plugins may not call the Admin API`);
    }
  });
}

// --- event hooks ---------------------------------------------------------------

/** A CIDR range (`10.0.0.0/8`, `fd00::/8`) or a single address (a /32 or /128). */
export function isCidr(text: string): boolean {
  const slash = text.indexOf('/');
  const address = slash < 0 ? text : text.slice(0, slash);
  const family = isIP(address);
  if (family === 0) return false;
  if (slash < 0) return true;
  const prefix = text.slice(slash + 1);
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128);
}

function checkEventHooks(doc: Raw, report: Report): void {
  const hooks = asObject(doc.event_hooks);
  if (!hooks) return;
  asArray(hooks.allow_cidrs).forEach((c, i) => {
    if (typeof c === 'string' && c !== '' && !isCidr(c)) {
      report(`/event_hooks/allow_cidrs/${i}`, `must be a CIDR range such as 10.0.0.0/8 or fd00::/8, or one IP address (found ${describeValue(c)})`);
    }
  });
  const delivery = asObject(hooks.delivery) ?? {};
  const d = DEFAULTS.event_hooks.delivery;
  const timeout = delivery.timeout_ms ?? d.timeout_ms;
  const lease = delivery.lease_ms ?? d.lease_ms;
  if (typeof timeout === 'number' && typeof lease === 'number' && Number.isInteger(lease) && lease <= timeout) {
    report(
      '/event_hooks/delivery/lease_ms',
      `must be greater than event_hooks.delivery.timeout_ms (found ${lease}, with timeout_ms ${timeout}): ` +
        'a slow attempt could otherwise be sent twice',
    );
  }
}

// --- workspaces and their entities -------------------------------------------

interface Located {
  readonly pointer: string;
  readonly doc: Raw;
}

/** The entities of one kind across all sources of a workspace, with their pointers. */
function entities(group: WorkspaceGroup, key: 'services' | 'routes' | 'consumers'): Located[] {
  return group.sources.flatMap((s) =>
    asArray(s.doc[key]).flatMap((e, i) => {
      const doc = asObject(e);
      return doc ? [{ pointer: `${s.pointer}/${key}/${i}`, doc }] : [];
    }),
  );
}

/** Reports every later use of an already used value of `field`. */
function checkUnique(items: Located[], field: string, what: string, workspace: string, report: Report): void {
  const first = new Map<string, string>();
  for (const { pointer, doc } of items) {
    const value = doc[field];
    if (typeof value !== 'string') continue;
    const earlier = first.get(value);
    if (earlier === undefined) first.set(value, pointer);
    else
      report(
        `${pointer}/${field}`,
        `duplicate ${what} ${JSON.stringify(value)} in workspace ${JSON.stringify(workspace)} (already used by ${earlier})`,
      );
  }
}

function checkWorkspace(group: WorkspaceGroup, report: Report): void {
  const services = entities(group, 'services');
  const routes = entities(group, 'routes');
  const consumers = entities(group, 'consumers');
  checkUnique(services, 'name', 'service name', group.name, report);
  checkUnique(routes, 'name', 'route name', group.name, report);
  checkUnique(consumers, 'username', 'consumer username', group.name, report);
  checkUnique(consumers, 'custom_id', 'consumer custom_id', group.name, report);

  for (const { pointer, doc } of services) checkServiceUrls(pointer, doc, report);

  const serviceNames = new Set(services.map((s) => s.doc.name).filter((n) => typeof n === 'string'));
  for (const { pointer, doc } of routes) {
    if (typeof doc.service !== 'string' || doc.service === '' || serviceNames.has(doc.service)) continue;
    const route = typeof doc.name === 'string' ? `route ${JSON.stringify(doc.name)}` : 'this route';
    report(
      `${pointer}/service`,
      `${route} names service ${JSON.stringify(doc.service)}, which workspace ${JSON.stringify(group.name)} does not define`,
    );
  }
}

function checkServiceUrls(pointer: string, service: Raw, report: Report): void {
  const hasUrl = service.url !== undefined;
  const hasUrls = service.urls !== undefined;
  if (hasUrl && hasUrls) report(pointer, 'must set exactly one of "url" and "urls" (found both)');
  if (!hasUrl && !hasUrls) report(pointer, 'must set exactly one of "url" and "urls" (found neither)');
  if (typeof service.url === 'string') checkUrl(`${pointer}/url`, service.url, report);
  asArray(service.urls).forEach((u, i) => {
    if (typeof u === 'string') checkUrl(`${pointer}/urls/${i}`, u, report);
  });
  // A CA verifies TLS upstreams only: on a plaintext-only service it would silently do nothing.
  if (typeof service.ca_file === 'string') {
    const urls = typeof service.url === 'string' ? [service.url] : asArray(service.urls).filter((u): u is string => typeof u === 'string');
    if (urls.length > 0 && !urls.some((u) => /^https:/i.test(u))) {
      report(`${pointer}/ca_file`, 'verifies https:// upstreams only (this service has no https:// URL); remove it or use https://');
    }
  }
}

/** An upstream base URL: http(s), a host, optionally a path prefix; nothing the proxy would have to drop. */
function checkUrl(pointer: string, text: string, report: Report): void {
  if (text === '') return; // minLength reports it
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    report(pointer, `must be an absolute http:// or https:// URL (found ${describeValue(text)})`);
    return;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    report(pointer, `must be an http:// or https:// URL (found ${describeValue(text)})`);
  } else if (url.username !== '' || url.password !== '') {
    report(pointer, `must not contain credentials (found ${describeValue(text)}); set upstream auth with a plugin`);
  } else if (text.includes('?') || text.includes('#')) {
    report(pointer, `must not contain a query string or fragment (found ${describeValue(text)})`);
  }
}

// --- plugins -----------------------------------------------------------------

interface PluginAt {
  readonly pointer: string;
  readonly doc: Raw;
}

/** Every plugin entry of the document, at every level, with its pointer. */
function allPlugins(root: Raw, groups: WorkspaceGroup[]): PluginAt[] {
  const at = (list: unknown, base: string): PluginAt[] =>
    asArray(list).flatMap((p, i) => {
      const doc = asObject(p);
      return doc ? [{ pointer: `${base}/plugins/${i}`, doc }] : [];
    });
  const found = at(root.plugins, '');
  for (const group of groups) {
    for (const source of group.sources) if (source.ownsPlugins) found.push(...at(source.doc.plugins, source.pointer));
    for (const { pointer, doc } of [...entities(group, 'services'), ...entities(group, 'routes')]) {
      found.push(...at(doc.plugins, pointer));
    }
  }
  return found;
}

/** Each named plugin entry's JSON pointer in a (valid) document, e.g. `/workspaces/1/services/0/plugins/2`. */
export function pluginPointers(root: unknown): Map<string, string> {
  const doc = asObject(root);
  const pointers = new Map<string, string>();
  if (!doc) return pointers;
  for (const { pointer, doc: plugin } of allPlugins(doc, groupWorkspaces(doc).groups)) {
    if (typeof plugin.name === 'string' && !pointers.has(plugin.name)) pointers.set(plugin.name, pointer);
  }
  return pointers;
}

function checkPlugins(root: Raw, groups: WorkspaceGroup[], ctx: CheckContext, report: Report): void {
  const plugins = allPlugins(root, groups);

  // Names are global: the name is what logs and metrics show (plugin_name), and
  // the default root_id and vm_id, so two instances must never share one.
  const firstName = new Map<string, string>();
  for (const { pointer, doc } of plugins) {
    if (typeof doc.name !== 'string') continue;
    const earlier = firstName.get(doc.name);
    if (earlier === undefined) firstName.set(doc.name, pointer);
    else
      report(
        `${pointer}/name`,
        `duplicate plugin name ${JSON.stringify(doc.name)} (already used by ${earlier}); ` +
          'plugin names identify instances in logs and metrics, so each must be unique in the whole document',
      );
  }

  // Objects handed to validateConfigObject may hold values with no JSON form.
  for (const { pointer, doc } of plugins) {
    for (const key of ['configuration', 'vm_configuration']) {
      if (doc[key] === undefined) continue;
      const problem = jsonProblem(doc[key]);
      if (problem) report(`${pointer}/${key}`, `must be a JSON value (found ${problem})`);
    }
  }

  // Plugins with the same vm_id and .wasm share one VM, which is started once:
  // they must agree on what it is started with.
  const wasmBase = modulesBase(root, resolve(ctx.baseDir));
  const vms = new Map<string, PluginAt>();
  for (const plugin of plugins) {
    const { doc, pointer } = plugin;
    if (doc.enabled === false || typeof doc.name !== 'string' || typeof doc.wasm !== 'string' || doc.wasm === '') continue;
    const vmId = doc.vm_id ?? DEFAULTS.plugin.vm_id ?? doc.name;
    if (typeof vmId !== 'string') continue;
    const key = JSON.stringify([vmId, resolve(wasmBase, doc.wasm)]);
    const first = vms.get(key);
    if (!first) {
      vms.set(key, plugin);
      continue;
    }
    const shared = `shares VM ${JSON.stringify(vmId)} (same vm_id and wasm) with ${first.pointer}`;
    if (!jsonProblem(doc.vm_configuration) && !jsonProblem(first.doc.vm_configuration)) {
      const mine = pluginString(doc.vm_configuration, DEFAULTS.plugin.vm_configuration);
      const theirs = pluginString(first.doc.vm_configuration, DEFAULTS.plugin.vm_configuration);
      if (mine !== theirs) report(`${pointer}/vm_configuration`, `${shared} but has a different vm_configuration`);
    }
    const mine = doc.allow_unknown_imports ?? DEFAULTS.plugin.allow_unknown_imports;
    const theirs = first.doc.allow_unknown_imports ?? DEFAULTS.plugin.allow_unknown_imports;
    if (typeof mine === 'boolean' && typeof theirs === 'boolean' && mine !== theirs) {
      report(`${pointer}/allow_unknown_imports`, `${shared} but has a different allow_unknown_imports`);
    }
    // The memory cap belongs to the VM, so its plugins must agree on it (null: the wasm section's).
    const cap = (d: typeof doc) => (d.limits as { max_memory_mb?: unknown } | undefined)?.max_memory_mb ?? null;
    if (cap(doc) !== cap(first.doc)) report(`${pointer}/limits/max_memory_mb`, `${shared} but has a different limits.max_memory_mb`);
  }
}

/** Why a value has no faithful JSON text (cycles, bigint, functions...), or null when it has one. */
function jsonProblem(value: unknown): string | null {
  if (value === undefined) return null;
  try {
    return JSON.stringify(value) === undefined ? `a ${typeof value}` : null;
  } catch (e) {
    return `a value JSON cannot encode: ${(e as Error).message}`;
  }
}
