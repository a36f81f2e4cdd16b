/**
 * The dispatcher: leases due deliveries from the outbox origin by origin,
 * runs attempts, and records outcomes.
 *
 * Scheduling is per origin. The dispatcher keeps, in memory, the earliest due
 * time of each origin with pending work (learnt from accepts, outcomes and a
 * periodic re-scan of the store), and for each origin a small queue of
 * leased deliveries ready to start (up to twice its concurrency limit), so
 * the next attempt starts the moment a slot frees, without waiting for the
 * store. An origin gets at most its concurrency limit of attempts at once,
 * none while its circuit is open (its deliveries stay pending: postponed,
 * not failed), one probe when half-open; a slow or dead endpoint therefore
 * holds only its own slots, and its backlog is neither scanned nor rewritten
 * while it waits.
 *
 * Store round trips (`cycle`) lease the next deliveries when a ready queue
 * runs low (from memory when the store can: outbox-tail.ts), and record the
 * outcomes of finished attempts in batches: once `OUTCOME_BATCH` piled up,
 * and at most `OUTCOME_DELAY_MS` after an outcome. A crash loses at most
 * those unrecorded outcomes: the deliveries are sent again (same webhook-id)
 * by the next owner.
 */
import type { Logger } from 'pino';
import { WebhookRequestError } from '../errors.js';
import type { Circuit, Origins } from './circuit.js';
import { TransformError } from '../errors.js';
import { buildRequest, signRequest, transformedRequest, webhookJson, type BuiltRequest } from './handlers.js';
import type { HookCounters } from './metrics.js';
import type { DeliveryOptions } from './options.js';
import { parseRetryAfter, retryDelay } from './retry.js';
import type { AttemptRecord, ClaimedDelivery, ClaimRequest, CycleResult, DeliveryOutcome, EventHookStore } from './store.js';
import { transformRunner } from './transform.js';
import type { Transport } from './transport.js';
import type { EventHook, HookClock } from './types.js';

export interface DispatcherDeps {
  store: EventHookStore;
  transport: Transport;
  origins: Origins;
  clock: HookClock;
  logger: Logger;
  counters: HookCounters;
  random: () => number;
  /** Lease owner name of this process. */
  owner: string;
  hook(id: string): EventHook | undefined;
  /**
   * A claimed delivery names a hook this process does not know. Shared
   * stores: another node created it and the hook list here is about to be
   * reloaded, so the delivery is handed back for a moment (true). Otherwise
   * (absent: false) the hook was deleted.
   */
  hookNotLoadedYet?(id: string): boolean;
  /** Where `wasm` hooks' module paths are looked up (null: base64 modules only). */
  modulesDir: string | null;
  /** The endpoint answered 410 Gone. */
  disableHook(id: string, reason: string): Promise<void>;
}

const ERROR_TEXT_MAX = 1000;
/** Outcomes are recorded at most this long after they happen... */
const OUTCOME_DELAY_MS = 10;
/** ...or as soon as this many are waiting (one commit for all of them). */
const OUTCOME_BATCH = 128;
/** A delivery of a hook another node just created waits this long for this node's hook list to catch up. */
const HOOK_RELOAD_WAIT_MS = 200;
/** An origin keeps up to this many times its concurrency limit leased (in flight + queued). */
const PREFETCH = 3;

function clip(s: string): string {
  return s.length > ERROR_TEXT_MAX ? `${s.slice(0, ERROR_TEXT_MAX - 3)}...` : s;
}

interface Pending {
  outcome: DeliveryOutcome;
  origin: string;
}

export class Dispatcher {
  /** Earliest due time of each origin with pending deliveries not leased here. */
  private readonly due = new Map<string, number>();
  /** Bumped by every notice of new due work, so a store answer computed before it cannot erase it. */
  private readonly dueVersion = new Map<string, number>();
  /** Leased deliveries waiting for a slot, per origin. */
  private readonly ready = new Map<string, ClaimedDelivery[]>();
  private readyCount = 0;
  private readonly running = new Set<Promise<void>>();
  private inFlight = 0;
  private outcomes: Pending[] = [];
  private outcomeTimer: NodeJS.Timeout | null = null;
  private current: Promise<void> = Promise.resolve();
  private pumping = false;
  private pumpAgain = false;
  private pumpScheduled = false;
  private timer: NodeJS.Timeout | null = null;
  private timerAt = Infinity;
  private poller: NodeJS.Timeout | null = null;
  private started = false;
  private stopped = false;

  constructor(
    private readonly deps: DispatcherDeps,
    private readonly options: DeliveryOptions,
  ) {}

  get inFlightCount(): number {
    return this.inFlight;
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    await this.rescan();
    this.poller = setInterval(
      () => void this.rescan().catch((err) => this.deps.logger.error({ err }, 'event hooks: outbox scan failed')),
      this.options.pollIntervalMs,
    );
    this.poller.unref();
    this.schedulePump();
  }

  /** Reloads the due time of every origin from the store. */
  async rescan(): Promise<void> {
    if (this.stopped) return;
    const fresh = await this.deps.store.dueOrigins();
    for (const [origin, at] of fresh) this.due.set(origin, at);
    for (const origin of this.due.keys()) if (!fresh.has(origin)) this.due.delete(origin);
    this.schedulePump();
  }

  /** `origin` has a delivery due at `at`. */
  notify(origin: string, at: number): void {
    this.noteDue(origin, at);
    if (this.started) this.schedulePump();
  }

  private noteDue(origin: string, at: number): void {
    const cur = this.due.get(origin);
    if (cur === undefined || at < cur) this.due.set(origin, at);
    this.dueVersion.set(origin, (this.dueVersion.get(origin) ?? 0) + 1);
  }

  private schedulePump(): void {
    if (this.pumpScheduled || this.stopped || !this.started) return;
    this.pumpScheduled = true;
    // setImmediate, not a microtask: what finishes in one turn is handled together.
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump().catch((err) => this.deps.logger.error({ err }, 'event hooks: dispatcher pump failed'));
    });
  }

  private pump(force = false): Promise<void> {
    if (this.pumping) {
      this.pumpAgain = true;
      return this.current;
    }
    this.pumping = true;
    this.current = this.pumpLoop(force).finally(() => {
      this.pumping = false;
      this.armTimer();
    });
    return this.current;
  }

  /** How many more deliveries `origin` should lease now (0: none, or not worth a round trip yet). */
  private wanted(origin: string, now: number): number {
    const o = this.deps.origins.get(origin);
    const queued = this.ready.get(origin)?.length ?? 0;
    if (o.circuit.state !== 'closed') {
      // One probe at a time, and only when its turn has come.
      return this.deps.origins.free(origin, now) > 0 && queued === 0 ? 1 : 0;
    }
    const limit = this.options.perOriginConcurrency;
    const want = PREFETCH * limit - o.active - queued;
    // Lease in batches of at least `limit` (one commit per batch), unless the origin would go idle.
    return want >= limit || o.active + queued === 0 ? want : 0;
  }

  /**
   * One store round trip: record what finished, lease what may start.
   * Origins are served round robin, within the global budget.
   */
  private async pumpLoop(force: boolean): Promise<void> {
    do {
      this.pumpAgain = false;
      const now = this.deps.clock.now();
      const requests: ClaimRequest[] = [];
      if (!this.stopped) {
        let budget = this.options.maxInFlight - this.inFlight - this.readyCount;
        for (const [origin, at] of this.due) {
          if (budget <= 0) break;
          if (at > now) continue;
          const want = Math.min(this.wanted(origin, now), budget);
          if (want <= 0) continue;
          requests.push({ origin, limit: want });
          budget -= want;
        }
      }
      // Outcomes wait to be recorded together (claims no longer need a transaction: outbox-tail.ts).
      const record = force || this.outcomes.length >= OUTCOME_BATCH;
      force = false;
      let outcomes: Pending[] = [];
      if (record) {
        if (this.outcomeTimer) {
          clearTimeout(this.outcomeTimer);
          this.outcomeTimer = null;
        }
        outcomes = this.outcomes;
        this.outcomes = [];
      } else this.armOutcomeTimer();
      if (outcomes.length === 0 && requests.length === 0) return;
      const versions = requests.map((r) => this.dueVersion.get(r.origin) ?? 0);
      let result: CycleResult;
      try {
        result = await this.deps.store.cycle(
          outcomes.map((o) => o.outcome),
          requests,
          now,
          now + this.options.leaseMs,
          this.deps.owner,
        );
      } catch (err) {
        // Unrecorded outcomes leave their deliveries pending: they are sent again by the next owner.
        this.deps.logger.error({ err, outcomes: outcomes.length }, 'event hooks: outbox cycle failed');
        return;
      }
      requests.forEach((req, i) => {
        // Round robin: the origins just served go to the back.
        const cur = this.due.get(req.origin);
        this.due.delete(req.origin);
        let next = result.nextDue.has(req.origin) ? result.nextDue.get(req.origin)! : cur;
        // New work noticed while the store answered: its due time stands.
        if ((this.dueVersion.get(req.origin) ?? 0) !== versions[i] && cur !== undefined) next = next == null ? cur : Math.min(next, cur);
        if (next !== null && next !== undefined) this.due.set(req.origin, next);
      });
      for (const { outcome, origin } of outcomes) if (outcome.kind === 'retry') this.noteDue(origin, outcome.nextAttemptAtMs);
      const touched = new Set<string>();
      for (const c of result.claimed) {
        if (this.stopped) {
          this.handBack(c, now);
          continue;
        }
        let q = this.ready.get(c.origin);
        if (!q) this.ready.set(c.origin, (q = []));
        q.push(c);
        this.readyCount++;
        touched.add(c.origin);
      }
      for (const origin of touched) this.startReady(origin);
    } while (this.pumpAgain);
  }

  /** Records the waiting outcomes at most OUTCOME_DELAY_MS from now. */
  private armOutcomeTimer(): void {
    if (this.outcomes.length === 0 || this.outcomeTimer) return;
    this.outcomeTimer = setTimeout(() => {
      this.outcomeTimer = null;
      this.pump(true).catch((err) => this.deps.logger.error({ err }, 'event hooks: dispatcher pump failed'));
    }, OUTCOME_DELAY_MS);
  }

  /** A leased delivery goes back untouched (due now, attempt not counted). */
  private handBack(c: ClaimedDelivery, now: number): void {
    this.outcomes.push({ outcome: { seq: c.seq, kind: 'retry', nextAttemptAtMs: now, attempt: null, error: null }, origin: c.origin });
  }

  /** Starts queued deliveries of `origin` while it has free slots. */
  private startReady(origin: string): void {
    const q = this.ready.get(origin);
    if (!q || q.length === 0 || this.stopped) return;
    const now = this.deps.clock.now();
    while (q.length > 0 && this.deps.origins.free(origin, now) > 0) {
      this.readyCount--;
      this.startAttempt(q.shift()!, now);
    }
    if (q.length === 0) this.ready.delete(origin);
  }

  /** The circuit of `origin` opened: its queued deliveries go back to wait in the outbox. */
  private releaseReady(origin: string): void {
    const q = this.ready.get(origin);
    if (!q) return;
    this.ready.delete(origin);
    this.readyCount -= q.length;
    const now = this.deps.clock.now();
    for (const c of q) this.handBack(c, now);
    this.noteDue(origin, now);
  }

  /** Wakes up for the next future due time or circuit reopening (or now, for work already due). */
  private armTimer(): void {
    if (this.stopped) return;
    const now = this.deps.clock.now();
    let next = Infinity;
    for (const [origin, at] of this.due) {
      if (at > now) {
        if (at < next) next = at;
      } else if (this.wanted(origin, now) > 0 && this.inFlight + this.readyCount < this.options.maxInFlight) {
        // Due already (e.g. a short retry noted after its time) and startable: no timer, go now.
        this.schedulePump();
        return;
      }
    }
    const reopen = this.deps.origins.nextReopen();
    if (reopen !== null && reopen < next) next = Math.max(reopen, now + 1);
    if (next === Infinity) return;
    if (this.timer && this.timerAt <= next) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = next;
    this.timer = setTimeout(
      () => {
        this.timer = null;
        this.timerAt = Infinity;
        this.schedulePump();
      },
      Math.min(Math.max(0, next - now), 2_147_483_647),
    );
    this.timer.unref();
  }

  private startAttempt(c: ClaimedDelivery, now: number): void {
    const o = this.deps.origins.get(c.origin);
    o.active++;
    o.lastUsed = now;
    o.circuit.start(now);
    this.inFlight++;
    const finish = (): void => {
      o.active--;
      this.inFlight--;
      this.running.delete(p);
      // The next one starts now, without waiting for the store.
      this.startReady(c.origin);
      this.schedulePump();
    };
    // One continuation per attempt (not .catch().finally()).
    const p: Promise<void> = this.attempt(c).then(finish, (err: unknown) => {
      // attempt() records its own failures; this is a bug guard.
      this.deps.logger.error({ err, delivery: c.id }, 'event hooks: attempt crashed');
      this.push({ seq: c.seq, kind: 'retry', nextAttemptAtMs: this.deps.clock.now() + 1000, attempt: null, error: String(err) }, c.origin);
      finish();
    });
    this.running.add(p);
  }

  private async attempt(c: ClaimedDelivery): Promise<void> {
    const { clock, counters } = this.deps;
    const hook = this.deps.hook(c.hookId);
    if (!hook) {
      if (this.deps.hookNotLoadedYet?.(c.hookId)) {
        // A deleted hook takes its deliveries with it in the store: this row's hook exists, elsewhere.
        this.push({ seq: c.seq, kind: 'retry', nextAttemptAtMs: clock.now() + HOOK_RELOAD_WAIT_MS, attempt: null, error: null }, c.origin);
        return;
      }
      this.push({ seq: c.seq, kind: 'failed', attempt: null, error: 'hook deleted' }, c.origin);
      return;
    }
    if (!hook.enabled) {
      counters.deliveriesFailed++;
      this.push({ seq: c.seq, kind: 'failed', attempt: null, error: 'hook disabled; not sent' }, c.origin);
      return;
    }
    const startedAt = clock.now();
    const t0 = performance.now();
    const record = (status: number | null, error: string | null, response: string | null, ts: number | null, url: string | null): AttemptRecord => ({
      attempt: c.attempt,
      startedAtMs: startedAt,
      durationMs: Math.round(performance.now() - t0),
      status,
      error: error === null ? null : clip(error),
      response,
      webhookTimestamp: ts,
      url,
    });

    if (hook.handler === 'log') {
      const data = JSON.parse(c.json) as Record<string, unknown>;
      this.deps.logger.info({ event_hook: hook.id, event: c.event, source: c.source, data, delivery: c.id }, 'log callback');
      counters.attemptsSuccess++;
      counters.deliveriesSucceeded++;
      this.push({ seq: c.seq, kind: 'succeeded', attempt: record(null, null, null, null, null) }, c.origin);
      return;
    }

    let transformed: BuiltRequest | null = null;
    if (hook.handler === 'wasm') {
      // The transform runs first; its failures are the attempt's (retried), and touch no circuit: nothing was contacted.
      try {
        const runner = await transformRunner(hook, this.deps.modulesDir);
        const result = runner.run(webhookJson(c.source, c.event, c.json));
        if (result.drop) {
          counters.deliveriesDropped++;
          this.push({ seq: c.seq, kind: 'dropped', attempt: record(null, null, result.reason, null, null) }, c.origin);
          return;
        }
        transformed = transformedRequest(hook, result);
      } catch (err) {
        const error = err instanceof TransformError ? err.message : `transform module: ${(err as Error).message}`;
        counters.attemptsFailure++;
        this.retryOrFail(c, record(null, error, null, null, null), error, 0);
        return;
      }
    }

    let url: string | null = null;
    let ts: number | null = null;
    const circuit = this.deps.origins.get(c.origin).circuit;
    try {
      const req = transformed ?? buildRequest(hook, c.source, c.event, c.json);
      url = req.url;
      ts = Math.floor(clock.now() / 1000);
      const headers = signRequest(req, hook, c.id, ts);
      const res = await this.deps.transport.send({ method: req.method, url: req.url, headers, body: req.body, sslVerify: req.sslVerify });
      const now = clock.now();
      const status = res.status;
      if (status >= 200 && status < 300) {
        circuit.record(true, now);
        counters.attemptsSuccess++;
        counters.deliveriesSucceeded++;
        this.push({ seq: c.seq, kind: 'succeeded', attempt: record(status, null, res.excerpt, ts, url) }, c.origin);
        return;
      }
      counters.attemptsFailure++;
      // 4xx and 3xx come from a live endpoint; 5xx and 429 say it is unwell.
      this.recordHealth(circuit, status < 500 && status !== 429, now, c.origin);
      if (status === 410) {
        const error = 'endpoint answered 410 Gone: hook disabled';
        counters.deliveriesFailed++;
        this.push({ seq: c.seq, kind: 'failed', attempt: record(status, error, res.excerpt, ts, url), error }, c.origin);
        await this.deps.disableHook(hook.id, error);
        return;
      }
      const error =
        status >= 300 && status < 400
          ? `endpoint answered ${status} (redirects are not followed${res.headers.location ? `; location ${clip(res.headers.location)}` : ''})`
          : `endpoint answered ${status}`;
      let floor = 0;
      if (status === 429 || status === 503) {
        const ra = parseRetryAfter(res.headers['retry-after'], now);
        if (ra !== null) floor = Math.min(ra, this.options.retryAfterCapMs);
      }
      this.retryOrFail(c, record(status, error, res.excerpt, ts, url), error, floor);
    } catch (err) {
      const e = err instanceof WebhookRequestError ? err : new WebhookRequestError('network', String((err as Error)?.message ?? err), { cause: err });
      if (e.reason === 'refused' || e.reason === 'invalid_request') {
        // Permanent: the same URL would be refused again. No circuit impact (nothing was contacted).
        counters.attemptsRefused++;
        counters.deliveriesFailed++;
        this.push({ seq: c.seq, kind: 'failed', attempt: record(null, e.message, null, ts, url), error: e.message }, c.origin);
        return;
      }
      counters.attemptsFailure++;
      this.recordHealth(circuit, false, clock.now(), c.origin);
      this.retryOrFail(c, record(null, e.message, null, ts, url), e.message, 0);
    }
  }

  /** Feeds the circuit; when it opens: count, log, and hand the origin's queued deliveries back. */
  private recordHealth(circuit: Circuit, healthy: boolean, now: number, origin: string): void {
    if (!circuit.record(healthy, now)) return;
    this.deps.counters.circuitsOpened++;
    this.releaseReady(origin);
    this.deps.logger.warn(
      { origin, consecutive_failures: circuit.consecutiveFailures, reopen_at_ms: circuit.reopenAt },
      'event hooks: circuit opened; deliveries to this origin wait until it half-opens',
    );
  }

  private retryOrFail(c: ClaimedDelivery, attempt: AttemptRecord, error: string, floorMs: number): void {
    const delay = retryDelay(c.attempt - c.cycleStart, this.options.retrySchedule, this.options.jitter, this.deps.random);
    if (delay === null) {
      this.deps.counters.deliveriesFailed++;
      const final = `retries exhausted after ${c.attempt} attempts; last: ${error}`;
      this.push({ seq: c.seq, kind: 'failed', attempt, error: clip(final) }, c.origin);
      return;
    }
    this.deps.counters.deliveriesRetried++;
    const at = this.deps.clock.now() + Math.max(delay, floorMs);
    this.push({ seq: c.seq, kind: 'retry', nextAttemptAtMs: at, attempt, error }, c.origin);
  }

  private push(outcome: DeliveryOutcome, origin: string): void {
    this.outcomes.push({ outcome, origin });
    this.schedulePump();
  }

  /**
   * Stops leasing, hands queued deliveries back, lets attempts in flight
   * finish for up to `timeoutMs`, then aborts the rest (`abort`), and records
   * every outcome.
   */
  async close(timeoutMs: number, abort: () => Promise<void>): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.poller) clearInterval(this.poller);
    if (this.outcomeTimer) clearTimeout(this.outcomeTimer);
    for (const origin of [...this.ready.keys()]) this.releaseReady(origin);
    if (this.running.size > 0) {
      let t: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        Promise.allSettled([...this.running]).then(() => false),
        new Promise<boolean>((r) => (t = setTimeout(() => r(true), timeoutMs))),
      ]);
      clearTimeout(t);
      if (timedOut) {
        this.deps.logger.warn({ in_flight: this.running.size }, 'event hooks: drain timed out; aborting attempts in flight');
        await abort();
        await Promise.allSettled([...this.running]);
      }
    }
    // Record every outcome (stopped: nothing new is leased).
    await this.current;
    await this.pump(true);
  }
}
