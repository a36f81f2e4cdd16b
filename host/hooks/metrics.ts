/** Counters of the event-hooks service, rendered as samples for /metrics. */
import type { MetricSample } from './types.js';

export class HookCounters {
  eventsReceived = 0;
  eventsRejected = 0;
  eventsAccepted = 0;
  throttledSnooze = 0;
  throttledOnChange = 0;
  recordsPublished = 0;
  deliveriesCreated = 0;
  attemptsSuccess = 0;
  attemptsFailure = 0;
  attemptsRefused = 0;
  deliveriesSucceeded = 0;
  deliveriesFailed = 0;
  deliveriesRetried = 0;
  /** `wasm` hooks: events their transform decided not to send. */
  deliveriesDropped = 0;
  hooksDisabled = 0;
  circuitsOpened = 0;

  samples(gauges: { inFlight: number; pending: number; hooks: number }): MetricSample[] {
    const p = 'hookwire_event_hooks_';
    const c = (name: string, help: string, value: number, labels?: Record<string, string>): MetricSample => ({
      name: p + name,
      help,
      type: 'counter',
      value,
      ...(labels ? { labels } : {}),
    });
    const g = (name: string, help: string, value: number): MetricSample => ({ name: p + name, help, type: 'gauge', value });
    return [
      c('events_received_total', 'Events emitted or ingested', this.eventsReceived),
      c('events_rejected_total', 'Records or events refused (malformed, unpublished, too large, store failure)', this.eventsRejected),
      c('events_accepted_total', 'Events accepted (on disk)', this.eventsAccepted),
      c('events_throttled_total', 'Matches dropped by snooze or on_change', this.throttledSnooze, { reason: 'snooze' }),
      c('events_throttled_total', 'Matches dropped by snooze or on_change', this.throttledOnChange, { reason: 'on_change' }),
      c('records_published_total', 'Publish records applied', this.recordsPublished),
      c('deliveries_created_total', 'Deliveries created', this.deliveriesCreated),
      c('attempts_total', 'Delivery attempts', this.attemptsSuccess, { result: 'success' }),
      c('attempts_total', 'Delivery attempts', this.attemptsFailure, { result: 'failure' }),
      c('attempts_total', 'Delivery attempts', this.attemptsRefused, { result: 'refused' }),
      c('deliveries_succeeded_total', 'Deliveries that succeeded', this.deliveriesSucceeded),
      c('deliveries_failed_total', 'Deliveries that failed for good', this.deliveriesFailed),
      c('deliveries_retried_total', 'Retries scheduled', this.deliveriesRetried),
      c('deliveries_dropped_total', 'Deliveries a wasm transform dropped', this.deliveriesDropped),
      c('hooks_disabled_total', 'Hooks disabled by a 410 Gone', this.hooksDisabled),
      c('circuits_opened_total', 'Circuit breakers opened', this.circuitsOpened),
      g('deliveries_in_flight', 'Attempts in flight', gauges.inFlight),
      g('deliveries_pending', 'Deliveries waiting for an attempt (or in flight)', gauges.pending),
      g('hooks', 'Event hooks configured', gauges.hooks),
    ];
  }
}
