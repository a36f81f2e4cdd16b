/**
 * The composition root: a gateway (proxy listeners, plugins) plus the admin
 * listener with its operational routes. `hookwire start` runs this; tests and
 * embedders can too.
 */
import type { Logger } from 'pino';
import { AdminServer, sendJson } from '../admin/server.js';
import type { HookwireConfig } from '../config/schema.js';
import { Gateway, type GatewayOptions, type ListenerInfo, type ReloadResult } from '../proxy/gateway.js';

export interface HookwireOptions extends GatewayOptions {
  logger: Logger;
}

export interface Hookwire {
  readonly gateway: Gateway;
  readonly admin: AdminServer;
  readonly adminListener: ListenerInfo;
  /** gateway.reload; the admin API will call it. */
  reload(config: HookwireConfig): Promise<ReloadResult>;
  /** Drain the proxy, then close the admin listener. */
  close(options?: { drainTimeoutMs?: number }): Promise<void>;
}

/** Start the gateway, then the admin listener (GET /metrics, GET /status). */
export async function startHookwire(config: HookwireConfig, options: HookwireOptions): Promise<Hookwire> {
  const gateway = await Gateway.start(config, options);
  const admin = new AdminServer({ token: config.admin.token, logger: options.logger });
  admin.route('GET', '/metrics', (_req, res) => {
    const text = gateway.metricsText();
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  });
  admin.route('GET', '/status', (_req, res) => {
    const status = gateway.status();
    sendJson(res, 200, { ...status, listeners: { ...status.listeners, admin: admin.info } });
  });
  let adminListener: ListenerInfo;
  try {
    adminListener = await admin.listen(config.admin.listen);
  } catch (err) {
    await gateway.close({ drainTimeoutMs: 0 });
    throw err;
  }
  return {
    gateway,
    admin,
    adminListener,
    reload: (next) => gateway.reload(next),
    async close(opts) {
      await gateway.close(opts);
      await admin.close();
    },
  };
}
