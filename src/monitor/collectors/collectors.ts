import type { Clock, ClockTimer, Logger } from "../../sip/index.js";
import {
  DEFAULT_ALLOWED_DESTINATIONS,
  destinationAllowed,
  type CollectedProxyConfig,
  type ConfiguredProxy,
} from "../monitor-config.js";
import type { ProxyTable } from "../proxy-table.js";
import { LoadPoller } from "./load-poller.js";
import { LoadStream } from "./load-stream.js";

export interface CollectorsOptions {
  readonly proxies: readonly ConfiguredProxy[];
  readonly table: ProxyTable;
  readonly clock: Clock;
  readonly log: Logger;
  /** On-query: the longest `freshen` waits. */
  readonly onQueryWaitMs: number;
  readonly streamRetryMs: number;
  readonly streamRetryMaxMs: number;
  /**
   * CIDR blocks (already validated) a proxy's `http` host must be inside to be contacted;
   * everywhere (`DEFAULT_ALLOWED_DESTINATIONS`) when absent.
   */
  readonly allowedDestinations?: readonly string[];
}

/** What the collectors have done, for tests and diagnostics. */
export interface CollectorCounters {
  /** GET /load requests made (interval polls and on-query). */
  readonly polls: number;
  /** Per streamed proxy: connections opened again, and reports taken. */
  readonly streams: Readonly<Record<string, { reconnects: number; reports: number }>>;
  /** Proxies never contacted: their `http` host is outside `allowedDestinations`. */
  readonly refusedDestinations: readonly string[];
}

/**
 * The monitor's own collection from sipsteer proxies (issue 5, collection modes other than
 * push): polls, held streams, and on-query refreshes, per the configured proxies' `modes`.
 */
export class Collectors {
  readonly #table: ProxyTable;
  readonly #clock: Clock;
  readonly #waitMs: number;
  readonly #poller: LoadPoller;
  readonly #streams = new Map<string, LoadStream>();
  /** Proxies refreshed on query, with their age limit. */
  readonly #onQuery: { readonly id: string; readonly maxAgeMs: number }[] = [];
  /** Timers of `freshen` waits still running (cleared on stop). */
  readonly #waits = new Set<{ timer: ClockTimer; release: () => void }>();
  readonly #refused: string[] = [];
  #running = false;

  constructor(options: CollectorsOptions) {
    const log = options.log.child({ component: "collectors" });
    const allowed = options.allowedDestinations ?? DEFAULT_ALLOWED_DESTINATIONS;
    this.#table = options.table;
    this.#clock = options.clock;
    this.#waitMs = options.onQueryWaitMs;
    this.#poller = new LoadPoller({ table: options.table, clock: options.clock, log: options.log });
    for (const proxy of options.proxies) {
      if (typeof proxy === "string" || proxy.http === undefined) continue;
      // Decided once here, so that a refused proxy gets no poller or stream at all (its URL
      // never changes): one warning and one count per proxy, and it stays stale.
      if (!destinationAllowed(proxy.http, allowed)) {
        this.#refused.push(proxy.id);
        log.warn(
          { proxy: proxy.id, http: proxy.http },
          "proxy's http host not in allowedDestinations; not polled or streamed",
        );
        continue;
      }
      this.#add(proxy, proxy.http, options);
    }
  }

  /** Any proxy is collected by the monitor itself (not only pushes). */
  get active(): boolean {
    return this.#poller.size > 0 || this.#streams.size > 0;
  }

  counters(): CollectorCounters {
    const streams: Record<string, { reconnects: number; reports: number }> = {};
    for (const [id, s] of this.#streams) {
      streams[id] = { reconnects: s.reconnects, reports: s.reports };
    }
    return { polls: this.#poller.polls, streams, refusedDestinations: [...this.#refused] };
  }

  start(): void {
    this.#running = true;
    this.#poller.start();
    for (const stream of this.#streams.values()) stream.start();
  }

  async stop(): Promise<void> {
    this.#running = false;
    for (const wait of this.#waits) {
      this.#clock.clearTimeout(wait.timer);
      wait.release();
    }
    this.#waits.clear();
    for (const stream of this.#streams.values()) stream.stop();
    await this.#poller.stop();
  }

  /**
   * Whether `freshen` would poll anything now: an on-query proxy's report is missing or older
   * than its limit. Lets a hot path skip the wait (and its promise) when nothing is due.
   */
  needsFreshening(): boolean {
    if (!this.#running || this.#onQuery.length === 0) return false;
    const now = this.#table.now();
    for (const { id, maxAgeMs } of this.#onQuery) {
      const receivedAt = this.#table.status(id)?.receivedAt;
      if (receivedAt === undefined || now - receivedAt > maxAgeMs) return true;
    }
    return false;
  }

  /**
   * On-query: polls every on-query proxy whose newest report is older than its limit (or
   * missing), and resolves when those polls are in or `onQueryWaitMs` has passed, whichever
   * comes first, so that a client is never held by a dead proxy. Never rejects.
   */
  async freshen(): Promise<void> {
    if (!this.#running || this.#onQuery.length === 0) return;
    const now = this.#table.now();
    const polls: Promise<void>[] = [];
    for (const { id, maxAgeMs } of this.#onQuery) {
      const receivedAt = this.#table.status(id)?.receivedAt;
      if (receivedAt !== undefined && now - receivedAt <= maxAgeMs) continue;
      polls.push(this.#poller.pollNow(id, "on-query"));
    }
    if (polls.length === 0) return;
    let wait: { timer: ClockTimer; release: () => void } | undefined;
    const timeout = new Promise<void>((release) => {
      wait = { timer: this.#clock.setTimeout(release, this.#waitMs), release };
      this.#waits.add(wait);
    });
    await Promise.race([Promise.all(polls), timeout]);
    if (wait !== undefined) {
      this.#clock.clearTimeout(wait.timer);
      this.#waits.delete(wait);
    }
  }

  #add(proxy: CollectedProxyConfig, http: string, options: CollectorsOptions): void {
    const polled = proxy.modes.includes("poll");
    const onQuery = proxy.modes.includes("on-query");
    if (polled || onQuery) {
      this.#poller.add({
        id: proxy.id,
        http,
        intervalMs: polled ? proxy.pollIntervalMs : undefined,
        timeoutMs: proxy.pollTimeoutMs,
      });
    }
    if (onQuery) this.#onQuery.push({ id: proxy.id, maxAgeMs: proxy.onQueryMaxAgeMs });
    if (proxy.modes.includes("stream")) {
      this.#streams.set(
        proxy.id,
        new LoadStream({
          id: proxy.id,
          http,
          table: options.table,
          clock: options.clock,
          log: options.log,
          retryMs: options.streamRetryMs,
          retryMaxMs: options.streamRetryMaxMs,
        }),
      );
    }
  }
}
