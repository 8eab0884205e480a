import { MEDIA_KIND, type RelaySelectAnswer } from "../contracts/index.js";
import type { NgStatistics } from "../media/rtpengine/index.js";
import type { Clock, Logger } from "../sip/index.js";
import { LoadPoller } from "./collectors/load-poller.js";
import { RtpengineCollector, type RtpengineCounters } from "./collectors/rtpengine-collector.js";
import {
  DEFAULT_ALLOWED_DESTINATIONS,
  hostAllowed,
  ngEndpointOf,
  type RelayAdapter,
  type RelayConfig,
} from "./monitor-config.js";
import { ProxyTable, type ProxyTableConfigInput, type ProxyView } from "./proxy-table.js";
import { MIN_TTL_S, Selector, type SelectorConfigInput } from "./selector.js";

/** What a relay selection is keyed by: the one kind of relay there is. */
export type MediaKind = typeof MEDIA_KIND;

export interface RelaysOptions {
  /** The config's `relays`, validated. */
  readonly relays: readonly RelayConfig[];
  /** The proxies' table settings (staleness, probe threshold …), which relays share. */
  readonly table?: Omit<ProxyTableConfigInput, "proxies" | "allowJoin">;
  /** The proxies' policy and correction, which relays share. */
  readonly select?: SelectorConfigInput;
  /** CIDR blocks an ng host must be inside (the config checked it; this is the last guard). */
  readonly allowedDestinations?: readonly string[];
  readonly clock: Clock;
  readonly wallNow?: () => number;
  readonly random?: () => number;
  readonly log: Logger;
}

/** One relay as `GET /v1/relays` shows it. */
export interface RelayListing {
  readonly id: string;
  readonly adapter: RelayAdapter;
  readonly ng: string;
  /** `eligible`, or the first reason it is not (down, stale). */
  readonly state: ProxyView["state"];
  readonly eligible: boolean;
  readonly health: ProxyView["health"];
  readonly workload: number | null;
  /** rtpengine's own sessions now. */
  readonly sessions: number | null;
  readonly capacity: { readonly sessions: number };
  /** Packets and bytes relayed per second. */
  readonly packet_rate: number | null;
  readonly byte_rate: number | null;
  /** Its RTP ports over every interface. */
  readonly ports: NgStatistics["ports"] | null;
  /** Since its newest statistics were taken. */
  readonly report_age_ms: number | null;
  /** Round trip of its newest answered ping. */
  readonly latency_ms: number | null;
  readonly times_chosen: number;
  /** Rounds of ping + statistics made, and failed; the newest failure's reason. */
  readonly polls: number;
  readonly failures: number;
  readonly last_failure: string | null;
  /** Its start as the monitor sees it (a new one when it restarted). */
  readonly boot: string | null;
}

const round4 = (x: number): number => Math.round(x * 10_000) / 10_000;

/**
 * The media relays (issue 8), kept apart from the proxies in a table of their own so that no
 * SIP front (HTTP transport selects, DNS, the redirect) can ever name one: each polled by its
 * adapter, eligible while it answers, chosen for a call by the proxies' own policy and
 * correction of sends. `start()` opens each relay's ng socket and starts polling; `stop()`
 * ends every poll, closes the sockets and clears every timer.
 */
export class Relays {
  readonly #table: ProxyTable;
  readonly #selector: Selector<MediaKind>;
  readonly #poller: LoadPoller;
  readonly #configs = new Map<string, RelayConfig>();
  readonly #collectors = new Map<string, RtpengineCollector>();
  readonly #refused: string[] = [];
  readonly #log: Logger;
  #state: "new" | "started" | "stopped" = "new";

  constructor(options: RelaysOptions) {
    this.#log = options.log.child({ component: "relays" });
    this.#table = new ProxyTable({
      config: {
        ...options.table,
        proxies: options.relays.map((r) => r.id),
        allowJoin: false,
      },
      clock: options.clock,
      ...(options.wallNow === undefined ? {} : { wallNow: options.wallNow }),
      log: options.log,
      holds: "relay",
    });
    this.#selector = new Selector<MediaKind>({
      table: this.#table,
      ...(options.select === undefined ? {} : { config: options.select }),
      ...(options.random === undefined ? {} : { random: options.random }),
      endpoint: (relay) => this.#configs.get(relay.id)?.ng,
    });
    this.#poller = new LoadPoller({ table: this.#table, clock: options.clock, log: options.log });
    const allowed = options.allowedDestinations ?? DEFAULT_ALLOWED_DESTINATIONS;
    for (const relay of options.relays) {
      this.#configs.set(relay.id, relay);
      const parsed = ngEndpointOf(relay.ng);
      if (!parsed.ok) throw new RangeError(`relays: ${relay.id}: ng: ${parsed.message}`);
      if (!hostAllowed(parsed.endpoint.address, allowed)) {
        this.#refused.push(relay.id);
        this.#log.warn(
          { relay: relay.id, ng: relay.ng },
          "relay's ng host not in allowedDestinations; never contacted",
        );
        continue;
      }
      const collector = new RtpengineCollector({
        id: relay.id,
        ng: parsed.endpoint,
        capacitySessions: relay.capacity.sessions,
        intervalMs: relay.pollIntervalMs,
        timeoutMs: relay.pollTimeoutMs,
        table: this.#table,
        clock: options.clock,
        log: options.log,
      });
      this.#collectors.set(relay.id, collector);
      this.#poller.add({
        id: relay.id,
        intervalMs: relay.pollIntervalMs,
        collect: (via, signal) => collector.collect(via, signal),
      });
    }
  }

  /** The relays' own table (not the proxies'). */
  get table(): ProxyTable {
    return this.#table;
  }

  get selector(): Selector<MediaKind> {
    return this.#selector;
  }

  /** Relays configured. */
  get size(): number {
    return this.#configs.size;
  }

  /** Relays never contacted: their ng host is outside allowedDestinations. */
  get refusedDestinations(): readonly string[] {
    return [...this.#refused];
  }

  async start(): Promise<void> {
    if (this.#state !== "new") throw new Error("Relays.start() called twice");
    this.#state = "started";
    for (const collector of this.#collectors.values()) await collector.start();
    this.#poller.start();
  }

  /** Idempotent; safe before start. */
  async stop(): Promise<void> {
    if (this.#state === "stopped") return;
    this.#state = "stopped";
    await this.#poller.stop();
    for (const collector of this.#collectors.values()) await collector.stop();
    this.#selector.dispose();
    this.#table.dispose();
  }

  /**
   * The relay for one new call, with the others ranked; undefined when none is eligible.
   * Recorded as a send, so that a burst of calls is spread before the statistics show it.
   * Its TTL is always the least: each call asks again.
   */
  select(): RelaySelectAnswer | undefined {
    const answer = this.#selector.select(MEDIA_KIND);
    if (answer === undefined) return undefined;
    return {
      kind: MEDIA_KIND,
      relay: answer.proxy,
      ng: answer.uri,
      workload: answer.workload,
      age_ms: answer.age_ms,
      ttl: MIN_TTL_S,
      alternates: answer.alternates.map((a) => ({
        relay: a.proxy,
        ng: a.uri,
        workload: a.workload,
      })),
    };
  }

  /** Every configured relay, in config order. */
  list(): RelayListing[] {
    return this.#table.list().map((view) => {
      const config = this.#configs.get(view.id)!;
      const collector = this.#collectors.get(view.id);
      const stats = collector?.statistics;
      const counters: RtpengineCounters = collector?.counters() ?? {
        polls: 0,
        failures: 0,
        lastFailure: undefined,
      };
      return {
        id: view.id,
        adapter: config.adapter,
        ng: config.ng,
        state: view.state,
        eligible: view.eligible,
        health: view.health,
        workload: view.workload === undefined ? null : round4(view.workload),
        sessions: stats?.sessions ?? null,
        capacity: { sessions: config.capacity.sessions },
        packet_rate: stats?.packetRate ?? null,
        byte_rate: stats?.byteRate ?? null,
        ports: stats === undefined ? null : { ...stats.ports },
        report_age_ms: view.ageMs === undefined ? null : Math.round(view.ageMs),
        latency_ms: view.latencyMs === undefined ? null : Math.round(view.latencyMs * 10) / 10,
        times_chosen: this.#selector.timesChosen(view.id),
        polls: counters.polls,
        failures: counters.failures,
        last_failure: counters.lastFailure ?? null,
        boot: view.report?.boot ?? null,
      };
    });
  }
}
