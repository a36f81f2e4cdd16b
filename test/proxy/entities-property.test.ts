// hookwire.entities: the route's, service's and workspace's ids and names as
// one pairs map, equal to the single hookwire.* properties, built once per
// route entry.
import { describe, expect, it } from 'vitest';
import { parsePairs } from '../../host/abi/memory.js';
import { requestProperty, type LiveRequest } from '../../host/proxy/properties.js';
import type { RouteEntry } from '../../host/proxy/generation.js';

function live(entry: RouteEntry): LiveRequest {
  return { entry } as unknown as LiveRequest;
}

const entry = {
  resolved: {
    route: { id: 'r-1', name: 'orders-api' },
    service: { id: 's-1', name: 'orders' },
    workspace: { id: 'w-1', name: 'équipe-a' },
  },
} as unknown as RouteEntry;

describe('hookwire.entities', () => {
  it('holds the same values as the single properties, as a pairs map of UTF-8 bytes', () => {
    const map = requestProperty(live(entry), 'hookwire.entities');
    expect(map).toBeInstanceOf(Uint8Array);
    const flat = parsePairs(Buffer.from(map as Uint8Array))!;
    const asText = Object.fromEntries(
      Array.from({ length: flat.length / 2 }, (_, i) => [flat[2 * i]!, Buffer.from(flat[2 * i + 1]!, 'latin1').toString('utf8')]),
    );
    expect(asText).toEqual({
      route_id: 'r-1',
      route_name: 'orders-api',
      service_id: 's-1',
      service_name: 'orders',
      workspace_id: 'w-1',
      workspace_name: 'équipe-a',
    });
    for (const [key, value] of Object.entries(asText)) expect(requestProperty(live(entry), `hookwire.${key}`)).toBe(value);
  });

  it('is serialized once per route entry', () => {
    expect(requestProperty(live(entry), 'hookwire.entities')).toBe(requestProperty(live(entry), 'hookwire.entities'));
    const other = { resolved: { ...(entry.resolved as object), route: { id: 'r-2', name: 'other' } } } as unknown as RouteEntry;
    expect(requestProperty(live(other), 'hookwire.entities')).not.toBe(requestProperty(live(entry), 'hookwire.entities'));
  });
});
