/**
 * Per-endpoint isolation: each origin (scheme://host:port) has a concurrency
 * limit and a circuit breaker.
 *
 * closed ──(N consecutive failures, or failure ratio ≥ r over ≥ m attempts
 *          within the window)──▶ open ──(cool-down)──▶ half-open: one probe
 * half-open ──probe succeeds──▶ closed;  ──probe fails──▶ open (cool-down again)
 *
 * A "failure" here means the endpoint looks unhealthy: no answer (network,
 * timeout) or 5xx / 429. A 4xx or 3xx is a failed delivery but a live
 * endpoint. Deliveries to an open circuit stay pending and are not attempted
 * until it half-opens (the dispatcher skips the origin): rescheduled, not failed.
 */
import type { CircuitSnapshot, CircuitState } from './types.js';

export interface CircuitOptions {
  /** Consecutive failures that open the circuit. */
  failureThreshold: number;
  /** Failure ratio (0..1] that opens the circuit, once `minRequests` outcomes are in the window. */
  failureRatio: number;
  minRequests: number;
  windowMs: number;
  /** How long the circuit stays open before a probe. */
  coolDownMs: number;
}

export class Circuit {
  state: CircuitState = 'closed';
  consecutiveFailures = 0;
  reopenAt = 0;
  private probeInFlight = false;
  // Outcomes in the current window (a tumbling window keeps this O(1)).
  private windowStart = 0;
  private windowTotal = 0;
  private windowFailures = 0;

  constructor(private readonly options: CircuitOptions) {}

  /** Whether an attempt may start now (a half-open circuit admits one probe). */
  canStart(now: number): boolean {
    if (this.state === 'closed') return true;
    if (this.state === 'open') return now >= this.reopenAt;
    return !this.probeInFlight;
  }

  /** An attempt starts (call only after canStart). */
  start(now: number): void {
    if (this.state === 'open' && now >= this.reopenAt) this.state = 'half-open';
    if (this.state === 'half-open') this.probeInFlight = true;
  }

  /** Records an outcome; returns true when this outcome opened the circuit. */
  record(healthy: boolean, now: number): boolean {
    if (now - this.windowStart >= this.options.windowMs) {
      this.windowStart = now;
      this.windowTotal = 0;
      this.windowFailures = 0;
    }
    this.windowTotal++;
    if (healthy) {
      this.consecutiveFailures = 0;
      if (this.state === 'half-open') {
        this.state = 'closed';
        this.probeInFlight = false;
        this.windowStart = now;
        this.windowTotal = 0;
        this.windowFailures = 0;
      }
      return false;
    }
    this.consecutiveFailures++;
    this.windowFailures++;
    if (this.state === 'half-open') {
      this.probeInFlight = false;
      this.open(now);
      return true;
    }
    if (this.state === 'closed') {
      const ratioTrip =
        this.windowTotal >= this.options.minRequests && this.windowFailures / this.windowTotal >= this.options.failureRatio;
      if (this.consecutiveFailures >= this.options.failureThreshold || ratioTrip) {
        this.open(now);
        return true;
      }
    }
    return false;
  }

  private open(now: number): void {
    this.state = 'open';
    this.reopenAt = now + this.options.coolDownMs;
  }
}

export interface OriginState {
  readonly origin: string;
  active: number;
  readonly circuit: Circuit;
  lastUsed: number;
}

export class Origins {
  private readonly map = new Map<string, OriginState>();

  constructor(
    private readonly limit: number,
    private readonly circuitOptions: CircuitOptions,
  ) {}

  get(origin: string): OriginState {
    let s = this.map.get(origin);
    if (!s) {
      s = { origin, active: 0, circuit: new Circuit(this.circuitOptions), lastUsed: 0 };
      this.map.set(origin, s);
    }
    return s;
  }

  /** How many more attempts may start to `origin` now (0 when saturated or the circuit refuses). */
  free(origin: string, now: number): number {
    const s = this.get(origin);
    if (!s.circuit.canStart(now)) return 0;
    if (s.circuit.state !== 'closed') return s.active === 0 ? 1 : 0;
    return Math.max(0, this.limit - s.active);
  }

  /** Earliest time an open circuit lets a probe through, or null. */
  nextReopen(): number | null {
    let t: number | null = null;
    for (const s of this.map.values()) if (s.circuit.state === 'open' && (t === null || s.circuit.reopenAt < t)) t = s.circuit.reopenAt;
    return t;
  }

  /** Forgets idle, closed origins not used since `before`. */
  prune(before: number): void {
    for (const [k, s] of this.map) if (s.active === 0 && s.circuit.state === 'closed' && s.lastUsed < before) this.map.delete(k);
  }

  snapshot(): CircuitSnapshot[] {
    return [...this.map.values()].map((s) => ({
      origin: s.origin,
      state: s.circuit.state,
      active: s.active,
      consecutive_failures: s.circuit.consecutiveFailures,
      reopen_at_ms: s.circuit.state === 'open' ? s.circuit.reopenAt : null,
    }));
  }
}
