/**
 * envoy.yaml, read the way Envoy reads it, for tests that must not drift from
 * it: every Wasm plugin (HTTP filters and bootstrap services) with its
 * configuration, and every cluster with its address.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { ROOT } from '../helpers/paths.js';

export interface EnvoyWasmPlugin {
  readonly kind: 'http_filter' | 'service';
  /** The listener an HTTP filter sits on. */
  readonly listener: string | null;
  readonly name: string;
  readonly rootId: string;
  readonly vmId: string;
  /** The plugin configuration exactly as Envoy passes it (StringValue unwrapped). */
  readonly configuration: string;
  readonly failurePolicy: 'fail_closed' | 'fail_open' | 'reload';
  /** Absolute path of vm_config.code.local.filename (relative to the repository root). */
  readonly wasm: string;
  readonly singleton: boolean;
}

export interface EnvoyCluster {
  readonly name: string;
  readonly address: string;
  readonly port: number;
}

export interface EnvoyYaml {
  readonly plugins: readonly EnvoyWasmPlugin[];
  readonly clusters: ReadonlyMap<string, EnvoyCluster>;
  /** Listener name -> the cluster its routes send traffic to. */
  readonly listenerClusters: ReadonlyMap<string, string>;
}

type Any = any;

// Envoy >= 1.33: UNSPECIFIED (0) = FAIL_CLOSED, FAIL_RELOAD, FAIL_CLOSED, FAIL_OPEN; older: fail_open bool.
function failurePolicy(config: Any): EnvoyWasmPlugin['failurePolicy'] {
  switch (config.failure_policy) {
    case 'FAIL_OPEN':
      return 'fail_open';
    case 'FAIL_RELOAD':
      return 'reload';
    case undefined:
      return config.fail_open === true ? 'fail_open' : 'fail_closed';
    default:
      return 'fail_closed';
  }
}

function configurationOf(config: Any): string {
  const c = config.configuration;
  if (c === undefined) return '';
  const type = String(c['@type'] ?? '');
  if (type.endsWith('google.protobuf.StringValue') || type.endsWith('google.protobuf.BytesValue')) return String(c.value ?? '');
  if (type.endsWith('google.protobuf.Struct')) return JSON.stringify(c.value ?? {});
  throw new Error(`envoy.yaml: unsupported configuration type ${type}`);
}

function plugin(kind: EnvoyWasmPlugin['kind'], listener: string | null, config: Any, singleton: boolean): EnvoyWasmPlugin {
  const vm = config.vm_config;
  return {
    kind,
    listener,
    name: config.name,
    rootId: config.root_id ?? '',
    vmId: vm.vm_id ?? '',
    configuration: configurationOf(config),
    failurePolicy: failurePolicy(config),
    wasm: join(ROOT, vm.code.local.filename),
    singleton,
  };
}

export function readEnvoyYaml(path = join(ROOT, 'envoy.yaml')): EnvoyYaml {
  const doc: Any = parse(readFileSync(path, 'utf8'));
  const plugins: EnvoyWasmPlugin[] = [];
  for (const ext of doc.bootstrap_extensions ?? []) {
    const t = ext.typed_config;
    if (String(t['@type']).endsWith('envoy.extensions.wasm.v3.WasmService')) plugins.push(plugin('service', null, t.config, t.singleton === true));
  }
  const listenerClusters = new Map<string, string>();
  for (const l of doc.static_resources.listeners) {
    for (const chain of l.filter_chains) {
      for (const f of chain.filters) {
        if (f.name !== 'envoy.filters.network.http_connection_manager') continue;
        const hcm = f.typed_config;
        for (const vh of hcm.route_config.virtual_hosts) for (const r of vh.routes) if (r.route?.cluster) listenerClusters.set(l.name, r.route.cluster);
        for (const hf of hcm.http_filters) {
          if (hf.name === 'envoy.filters.http.wasm') plugins.push(plugin('http_filter', l.name, hf.typed_config.config, false));
        }
      }
    }
  }
  const clusters = new Map<string, EnvoyCluster>();
  for (const c of doc.static_resources.clusters) {
    const sa = c.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address;
    clusters.set(c.name, { name: c.name, address: sa.address, port: sa.port_value });
  }
  return { plugins, clusters, listenerClusters };
}
