/** The Admin API's shapes the dashboard reads (docs/openapi.json has them all). */

export interface Listener {
  address: string;
  port: number;
  url: string;
}

export interface PluginStatus {
  name: string;
  vm_id: string;
  root_id: string;
  failure_policy: string;
  healthy: boolean;
  failure: string | null;
  reloads: number;
}

export interface Circuit {
  origin: string;
  state: 'closed' | 'open' | 'half-open';
  active: number;
  consecutive_failures: number;
  reopen_at_ms: number | null;
}

export interface Status {
  generation: number;
  started_at: string;
  config_source: string | null;
  draining: boolean;
  inflight: number;
  listeners: { proxy: Listener[]; admin: Listener | null };
  routes: number;
  services: number;
  plugins: PluginStatus[];
  event_hooks: { enabled: boolean; store: string; ingest: boolean; in_flight?: number; circuits?: Circuit[] };
}

export type HandlerName = 'webhook' | 'webhook-custom' | 'log' | 'wasm';

export interface EventHook {
  id: string;
  created_at: number;
  updated_at: number;
  source: string;
  event: string | null;
  handler: HandlerName;
  on_change: boolean | null;
  snooze: number | null;
  enabled: boolean;
  config: Record<string, unknown>;
}

export interface Attempt {
  attempt: number;
  started_at_ms: number;
  duration_ms: number;
  status: number | null;
  error: string | null;
  response: string | null;
  url: string | null;
}

export type DeliveryState = 'pending' | 'delivering' | 'succeeded' | 'failed' | 'dropped';

export interface Delivery {
  id: string;
  hook_id: string;
  event_id: string;
  source: string;
  event: string;
  data: Record<string, unknown>;
  state: DeliveryState;
  attempt_count: number;
  next_attempt_at_ms: number | null;
  created_at_ms: number;
  updated_at_ms: number;
  last_status: number | null;
  last_error: string | null;
  attempts: Attempt[];
}

export interface EventSpec {
  fields: string[];
  unique?: string[];
  description?: string;
}

export type Sources = Record<string, Record<string, EventSpec>>;

export type EntityKind = 'services' | 'routes' | 'consumers' | 'plugins';

export type Entity = Record<string, unknown> & { id: string };
