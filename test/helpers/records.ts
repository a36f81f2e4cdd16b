/** The wire records http-log's event hooks produce (docs/event-wire-format.md), as the tests expect them. */

/** The event http-log publishes: source "http-log", event "log", as the seed plugin does. */
export const HTTP_LOG_EVENT = {
  source: 'http-log',
  event: 'log',
  fields: ['consumer', 'ip', 'service', 'route'],
  unique: ['consumer', 'ip', 'service'],
  description: 'Run an event for a request',
};

/** The publish record of that event, sent by the plugin instance named `plugin`. */
export function httpLogPublishRecord(plugin: string) {
  return { v: 1, type: 'publish', ...HTTP_LOG_EVENT, plugin };
}
