import type { Clock, ClockTimer, Logger } from "../../sip/index.js";
import type { CollectionMode, ProxyTable } from "../proxy-table.js";
import { fetchLoad } from "./fetch-load.js";

/**
 * The table already holds this report or a newer one of the same boot. With several modes at
 * once one report can come twice (a GET /load is also streamed, a stream may overtake a
 * poll): that is no replay, so it is skipped quietly rather than refused and logged.
 */
export function alreadyHeld(table: ProxyTable, id: string, report: unknown): boolean {
  const held = table.status(id)?.report;
  if (held === undefined || typeof report !== "object" || report === null) return false;
  if (!("boot" in report) || !("seq" in report)) return false;
  return report.boot === held.boot && typeof report.seq === "number" && report.seq <= held.seq;
}

/** A sipsteer proxy polled at `GET <http>/load`. */
export interface HttpPolledProxy {
  readonly id: string;
  /** The proxy's HTTP base URL, without a trailing slash. */
  readonly http: string;
  /** GET /load this often; undefined: only when asked (on-query). */
  readonly intervalMs: number | undefined;
  readonly timeoutMs: number;
}

/**
 * A proxy another adapter asks (Kamailio over JSON-RPC, OPTIONS pings): `collect` does one
 * round and puts its outcome in the table itself (a report, or a failed probe). It resolves
 * when that is done, never rejects, and touches the table no more once `signal` aborts.
 */
export interface AdapterPolledProxy {
  readonly id: string;
  /** Collect this often; undefined: only when asked (on-query). */
  readonly intervalMs: number | undefined;
  readonly collect: (via: CollectionMode, signal: AbortSignal) => Promise<void>;
}

export type PolledProxy = HttpPolledProxy | AdapterPolledProxy;

export interface LoadPollerOptions {
  readonly table: ProxyTable;
  readonly clock: Clock;
  readonly log: Logger;
}

interface PollState {
  readonly proxy: PolledProxy;
  timer: ClockTimer | undefined;
  inFlight: Promise<void> | undefined;
  /** Aborts this proxy's requests alone (it was removed), or all of them (stop). */
  readonly signal: AbortSignal;
  readonly abort: AbortController;
}

/**
 * Poll collection (issue 5): `GET <http>/load` (or another adapter's `collect`) every interval
 * per proxy, one request in flight per proxy. A good report goes to the table (which counts it
 * as a passed probe); a timeout, refused connection, bad status or bad body is a failed probe.
 * `pollNow` serves on-query.
 */
export class LoadPoller {
  readonly #table: ProxyTable;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #states = new Map<string, PollState>();
  readonly #abort = new AbortController();
  #running = false;
  #polls = 0;

  constructor(options: LoadPollerOptions) {
    this.#table = options.table;
    this.#clock = options.clock;
    this.#log = options.log.child({ component: "load-poller" });
  }

  /** GET /load requests made, by interval and on query (other adapters count their own). */
  get polls(): number {
    return this.#polls;
  }

  add(proxy: PolledProxy): void {
    if (this.#states.has(proxy.id)) throw new Error(`${proxy.id} is polled already`);
    const abort = new AbortController();
    const signal = AbortSignal.any([this.#abort.signal, abort.signal]);
    const state: PollState = { proxy, timer: undefined, inFlight: undefined, signal, abort };
    this.#states.set(proxy.id, state);
    if (this.#running) this.#schedule(state, 0);
  }

  /**
   * Stops polling `id` (an admin remove): its timer is cleared and a request in flight is
   * aborted and touches the table no more. False when it was not polled.
   */
  remove(id: string): boolean {
    const state = this.#states.get(id);
    if (state === undefined) return false;
    this.#states.delete(id);
    if (state.timer !== undefined) this.#clock.clearTimeout(state.timer);
    state.timer = undefined;
    state.abort.abort();
    return true;
  }

  /** Proxies polled (on an interval or on query). */
  get size(): number {
    return this.#states.size;
  }

  has(id: string): boolean {
    return this.#states.has(id);
  }

  /** Starts the interval polls, the first at once. */
  start(): void {
    this.#running = true;
    for (const state of this.#states.values()) this.#schedule(state, 0);
  }

  /**
   * Polls one proxy now (or joins the poll in flight), its report marked `via`. Resolves when
   * the outcome is in the table; never rejects.
   */
  pollNow(id: string, via: CollectionMode = "poll"): Promise<void> {
    const state = this.#states.get(id);
    if (state === undefined || !this.#running) return Promise.resolve();
    return state.inFlight ?? this.#poll(state, via);
  }

  /** Clears every timer and aborts the requests in flight; waits for them to end. */
  async stop(): Promise<void> {
    this.#running = false;
    this.#abort.abort();
    const pending: Promise<void>[] = [];
    for (const state of this.#states.values()) {
      if (state.timer !== undefined) this.#clock.clearTimeout(state.timer);
      state.timer = undefined;
      if (state.inFlight !== undefined) pending.push(state.inFlight);
    }
    await Promise.all(pending);
  }

  #schedule(state: PollState, delayMs: number): void {
    if (!this.#running || state.proxy.intervalMs === undefined || state.signal.aborted) return;
    if (state.timer !== undefined) this.#clock.clearTimeout(state.timer);
    state.timer = this.#clock.setTimeout(() => {
      state.timer = undefined;
      // One in flight: an on-query poll still running stands for this one.
      const poll = state.inFlight ?? this.#poll(state, "poll");
      void poll.then(() => this.#schedule(state, state.proxy.intervalMs ?? 0));
    }, delayMs);
  }

  #poll(state: PollState, via: CollectionMode): Promise<void> {
    const { proxy } = state;
    const poll =
      "collect" in proxy
        ? proxy
            .collect(via, state.signal)
            // collect never rejects: a rejection is our bug, logged rather than unhandled.
            .catch((e: unknown) => this.#log.error({ err: e, proxy: proxy.id }, "collect threw"))
            .then(() => {
              state.inFlight = undefined;
            })
        : this.#getLoad(state, proxy, via);
    state.inFlight = poll;
    return poll;
  }

  #getLoad(state: PollState, proxy: HttpPolledProxy, via: CollectionMode): Promise<void> {
    const { id, http, timeoutMs } = proxy;
    this.#polls++;
    return fetchLoad({
      url: `${http}/load`,
      timeoutMs,
      clock: this.#clock,
      signal: state.signal,
    }).then((outcome) => {
      state.inFlight = undefined;
      if (!this.#running || state.signal.aborted) return;
      if (!outcome.ok) {
        this.#log.debug({ proxy: id, reason: outcome.reason }, "poll failed");
        this.#table.probeFailed(id, `GET /load: ${outcome.reason}`);
        return;
      }
      // The proxy answered well; a stream just brought that report first.
      if (alreadyHeld(this.#table, id, outcome.report)) {
        this.#table.probeSucceeded(id);
        return;
      }
      const result = this.#table.ingest(outcome.report, { via, proxy: id });
      // It answered, but not with a usable report (the table logs why).
      if (!result.ok) this.#table.probeFailed(id, `GET /load: ${result.reason}`);
    });
  }
}
