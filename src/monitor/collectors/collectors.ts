import type { Clock, ClockTimer, Logger, TransactionOptionsInput } from "../../sip/index.js";
import {
  DEFAULT_ALLOWED_DESTINATIONS,
  hostAllowed,
  optionsTargetOf,
  type ConfiguredProxy,
  type KamailioProxyConfig,
  type OptionsProxyConfig,
  type SipsteerProxyConfig,
} from "../monitor-config.js";
import type { ProxyTable } from "../proxy-table.js";
import { KamailioCollector, type KamailioCounters } from "./kamailio-collector.js";
import { LoadPoller } from "./load-poller.js";
import { LoadStream } from "./load-stream.js";
import { OptionsProber, type OptionsCounters } from "./options-prober.js";

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
  /** Transaction timers of the OPTIONS pings (tests shorten T1). */
  readonly sipTimers?: TransactionOptionsInput;
}

/** What the collectors have done, for tests and diagnostics. */
export interface CollectorCounters {
  /** GET /load requests made (interval polls and on-query). */
  readonly polls: number;
  /** Per streamed proxy: connections opened again, and reports taken. */
  readonly streams: Readonly<Record<string, { reconnects: number; reports: number }>>;
  /**
   * Proxies never contacted: their `http` (sipsteer), `rpc` (kamailio) or `sip` (options) host
   * is outside `allowedDestinations`.
   */
  readonly refusedDestinations: readonly string[];
  /** Per Kamailio proxy: JSON-RPC rounds made and failed. */
  readonly kamailio: Readonly<Record<string, KamailioCounters>>;
  /** Per options proxy: pings made and failed, the newest status. */
  readonly options: Readonly<Record<string, OptionsCounters>>;
}

/**
 * The monitor's own collection (issue 5, collection modes other than push), per the configured
 * proxies' `adapter` and `modes`: sipsteer proxies polled at GET /load, streamed, refreshed on
 * query; Kamailios polled over JSON-RPC; other SIP servers pinged with OPTIONS.
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
  readonly #kamailios = new Map<string, KamailioCollector>();
  readonly #prober: OptionsProber;
  readonly #options: CollectorsOptions;
  readonly #allowed: readonly string[];
  readonly #log: Logger;
  #running = false;

  constructor(options: CollectorsOptions) {
    const log = options.log.child({ component: "collectors" });
    const allowed = options.allowedDestinations ?? DEFAULT_ALLOWED_DESTINATIONS;
    this.#table = options.table;
    this.#clock = options.clock;
    this.#waitMs = options.onQueryWaitMs;
    this.#poller = new LoadPoller({ table: options.table, clock: options.clock, log: options.log });
    this.#prober = new OptionsProber({
      table: options.table,
      clock: options.clock,
      log: options.log,
      allowedDestinations: allowed,
      ...(options.sipTimers === undefined ? {} : { timers: options.sipTimers }),
    });
    this.#options = options;
    this.#allowed = allowed;
    this.#log = log;
    for (const proxy of options.proxies) this.#place(proxy);
  }

  /**
   * Collects a proxy added at run time (admin add) as if it had been configured: its poller,
   * stream or pings start now. A push-only proxy (an id) needs nothing. Throws a RangeError
   * when it cannot be collected (an options target the pinging socket cannot reach).
   */
  async add(proxy: ConfiguredProxy): Promise<void> {
    if (typeof proxy === "string") return;
    if (!this.#place(proxy)) return;
    if (!this.#running) return;
    if (proxy.adapter === "options") await this.#prober.start();
    this.#streams.get(proxy.id)?.start();
  }

  /** Stops collecting `id` (admin remove): no more polls, stream, pings or on-query. */
  remove(id: string): void {
    this.#poller.remove(id);
    const stream = this.#streams.get(id);
    stream?.stop();
    this.#streams.delete(id);
    const at = this.#onQuery.findIndex((q) => q.id === id);
    if (at >= 0) this.#onQuery.splice(at, 1);
    this.#kamailios.delete(id);
    this.#prober.remove(id);
    const refused = this.#refused.indexOf(id);
    if (refused >= 0) this.#refused.splice(refused, 1);
  }

  /** Sets up a proxy's collection; false when it is push only or refused by destination. */
  #place(proxy: ConfiguredProxy): boolean {
    if (typeof proxy === "string") return false;
    const host = contactedHost(proxy);
    if (host === undefined) return false;
    // Decided once here, so that a refused proxy gets no poller or stream at all (its
    // address never changes): one warning and one count per proxy, and it stays stale.
    if (!hostAllowed(host, this.#allowed)) {
      this.#refused.push(proxy.id);
      this.#log.warn(
        { proxy: proxy.id, adapter: proxy.adapter, host },
        "proxy's host not in allowedDestinations; never contacted",
      );
      return false;
    }
    const options = this.#options;
    if (proxy.adapter === "sipsteer") this.#addSipsteer(proxy, proxy.http!, options);
    else if (proxy.adapter === "kamailio") this.#addKamailio(proxy, options);
    else this.#addOptions(proxy);
    return true;
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
    const kamailio: Record<string, KamailioCounters> = {};
    for (const [id, k] of this.#kamailios) kamailio[id] = k.counters();
    return {
      polls: this.#poller.polls,
      streams,
      refusedDestinations: [...this.#refused],
      kamailio,
      options: this.#prober.counters(),
    };
  }

  /** Opens the OPTIONS prober's sockets (if any proxy is pinged), then starts collecting. */
  async start(): Promise<void> {
    await this.#prober.start();
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
    await this.#prober.stop();
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

  #addSipsteer(proxy: SipsteerProxyConfig, http: string, options: CollectorsOptions): void {
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

  #addKamailio(proxy: KamailioProxyConfig, options: CollectorsOptions): void {
    const polled = proxy.modes.includes("poll");
    const collector = new KamailioCollector({
      id: proxy.id,
      rpc: proxy.rpc,
      capacityCalls: proxy.capacity.calls,
      uris: proxy.uris,
      intervalMs: polled ? proxy.pollIntervalMs : proxy.onQueryMaxAgeMs,
      timeoutMs: proxy.pollTimeoutMs,
      table: options.table,
      clock: options.clock,
      log: options.log,
    });
    this.#kamailios.set(proxy.id, collector);
    this.#poller.add({
      id: proxy.id,
      intervalMs: polled ? proxy.pollIntervalMs : undefined,
      collect: (via, signal) => collector.collect(via, signal),
    });
    if (proxy.modes.includes("on-query")) {
      this.#onQuery.push({ id: proxy.id, maxAgeMs: proxy.onQueryMaxAgeMs });
    }
  }

  #addOptions(proxy: OptionsProxyConfig): void {
    const parsed = optionsTargetOf(proxy.sip);
    // The config schema checked it; a hand-made config object may not have been.
    if (!parsed.ok) throw new RangeError(`proxies: ${proxy.id}: sip: ${parsed.message}`);
    const polled = proxy.modes.includes("poll");
    this.#prober.add({
      id: proxy.id,
      sip: proxy.sip,
      target: parsed.target,
      uris: proxy.uris ?? { [parsed.target.protocol]: proxy.sip },
      capacityCalls: proxy.capacity.calls,
      assumedWorkload: proxy.assumedWorkload,
      intervalMs: polled ? proxy.pollIntervalMs : proxy.onQueryMaxAgeMs,
      timeoutMs: proxy.pollTimeoutMs,
    });
    this.#poller.add({
      id: proxy.id,
      intervalMs: polled ? proxy.pollIntervalMs : undefined,
      collect: (via, signal) => this.#prober.ping(proxy.id, via, signal),
    });
    if (proxy.modes.includes("on-query")) {
      this.#onQuery.push({ id: proxy.id, maxAgeMs: proxy.onQueryMaxAgeMs });
    }
  }
}

/** The host a configured proxy is contacted at; undefined when it is never contacted (push). */
function contactedHost(proxy: Exclude<ConfiguredProxy, string>): string | undefined {
  const bare = (url: string): string => new URL(url).hostname.replace(/^\[(.*)\]$/, "$1");
  if (proxy.adapter === "sipsteer") return proxy.http === undefined ? undefined : bare(proxy.http);
  if (proxy.adapter === "kamailio") return bare(proxy.rpc);
  const parsed = optionsTargetOf(proxy.sip);
  return parsed.ok ? parsed.target.host : proxy.sip;
}
