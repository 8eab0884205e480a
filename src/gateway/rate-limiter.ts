import type { Clock } from "../sip/index.js";

export interface RateLimiterOptions {
  /** Tokens added per second (> 0). */
  readonly requestsPerSecond: number;
  /** The bucket's size. */
  readonly burst: number;
  /** The flood meter runs at floodFactor × the rate, with floodFactor × burst of room. */
  readonly floodFactor: number;
  /** Sources tracked at once; the least recently seen is forgotten first. */
  readonly maxSources: number;
  readonly clock: Clock;
}

interface Source {
  /** Tokens of the rate bucket, 0…burst. */
  tokens: number;
  /** The flood meter: floodBurst down to -floodBurst (a debt a flooder must wait off). */
  flood: number;
  at: number;
}

/** How many stale entries one request may clear from the front of the table. */
const SWEEP_PER_REQUEST = 2;

/**
 * Per-source token buckets (the gateway's request-rate limit) and a flood meter above them.
 *
 * Every request from a source counts against its flood meter, a bucket that refills at
 * floodFactor × the rate; a source that empties it is flooding, and its requests are dropped
 * until it has slowed down enough to pay back the debt it ran up (down to −floodFactor × burst),
 * so a flood gets no answers at all. Requests the gateway could answer with a 503 take a token
 * from the rate bucket; without one they are refused.
 *
 * The table is a Map in least-recently-seen order, capped at `maxSources` (a scan from many
 * addresses forgets the oldest, which then start afresh with full buckets: forgetting only
 * ever errs towards admitting). Each request also clears up to two entries at the front that
 * have been idle long enough to refill completely, since they hold nothing a fresh entry would
 * not: the table shrinks back when traffic calms, with no timer.
 */
export class SourceRateLimiter {
  readonly #rate: number;
  readonly #burst: number;
  readonly #floodRate: number;
  readonly #floodBurst: number;
  /**
   * Idle time after which any entry is full again: from the deepest flood debt, 2 × floodBurst
   * at floodFactor × the rate, which is 2 × burst / rate (the rate bucket is full sooner).
   */
  readonly #idleMs: number;
  readonly #max: number;
  readonly #clock: Clock;
  readonly #sources = new Map<string, Source>();

  constructor(options: RateLimiterOptions) {
    if (!(options.requestsPerSecond > 0)) throw new RangeError("requestsPerSecond must be > 0");
    this.#rate = options.requestsPerSecond / 1000;
    this.#burst = options.burst;
    this.#floodRate = this.#rate * options.floodFactor;
    this.#floodBurst = options.burst * options.floodFactor;
    this.#idleMs = (2 * options.burst) / this.#rate;
    this.#max = options.maxSources;
    this.#clock = options.clock;
  }

  /** Sources tracked now. */
  get size(): number {
    return this.#sources.size;
  }

  /**
   * Counts one request from `key` against its flood meter; true when the source is flooding
   * (drop the request).
   */
  flooding(key: string): boolean {
    const now = this.#clock.now();
    this.#sweep(now);
    let s = this.#sources.get(key);
    if (s === undefined) {
      s = { tokens: this.#burst, flood: this.#floodBurst, at: now };
      if (this.#sources.size >= this.#max) {
        this.#sources.delete(this.#sources.keys().next().value!);
      }
    } else {
      this.#refill(s, now);
      this.#sources.delete(key);
    }
    this.#sources.set(key, s);
    const flooding = s.flood < 1;
    s.flood = Math.max(-this.#floodBurst, s.flood - 1);
    return flooding;
  }

  /** Takes a token from `key`'s bucket (after `flooding(key)`); false when there is none. */
  take(key: string): boolean {
    const s = this.#sources.get(key);
    if (s === undefined) return true;
    this.#refill(s, this.#clock.now());
    if (s.tokens < 1) return false;
    s.tokens -= 1;
    return true;
  }

  #refill(s: Source, now: number): void {
    const elapsed = now - s.at;
    if (elapsed <= 0) return;
    s.tokens = Math.min(this.#burst, s.tokens + elapsed * this.#rate);
    s.flood = Math.min(this.#floodBurst, s.flood + elapsed * this.#floodRate);
    s.at = now;
  }

  #sweep(now: number): void {
    for (let i = 0; i < SWEEP_PER_REQUEST; i++) {
      const first = this.#sources.entries().next();
      if (first.done === true || now - first.value[1].at < this.#idleMs) return;
      this.#sources.delete(first.value[0]);
    }
  }
}
