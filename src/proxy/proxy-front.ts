import { isIP } from "node:net";
import type { FastifyInstance } from "fastify";
import type { LoadReport } from "../contracts/index.js";
import type { BoundListener, Clock, ClockTimer, Logger } from "../sip/index.js";
import { DestinationPolicy } from "../sip/transport/destination-policy.js";
import { proxyHttpApi } from "./load/http-api.js";
import { LoadReporter, workloadOf } from "./load/load-reporter.js";
import { proxyMetrics } from "./load/proxy-metrics.js";
import type { LocationStore, StoreHealth } from "./location-store/types.js";
import type { EngineStats } from "./proxy-engine.js";
import type { ProxyConfig } from "./proxy-config.js";

/** Expired bindings are deleted, and the registration count refreshed, this often. */
const STORE_UPKEEP_MS = 1000;
const PURGE_EVERY_TICKS = 30;

/** What the front reads from the SIP side (one engine, or a cluster's processes). */
export interface FrontSources {
  readonly stats: () => EngineStats;
  readonly storeHealth: () => StoreHealth;
  /** The SIP side's own figures when it is not this process (a cluster). */
  readonly elu?: () => number;
  readonly cpu?: () => number;
  /** Draining went on or off. */
  readonly onDrainChange: (draining: boolean) => void;
}

export interface ProxyFrontOptions {
  readonly config: Readonly<ProxyConfig>;
  readonly clock: Clock;
  readonly log: Logger;
  /** Where registrations are counted and expired ones purged. */
  readonly store: LocationStore;
  readonly listeners: readonly BoundListener[];
  readonly sources: FrontSources;
}

/**
 * The proxy's face to the monitor and the operator: load reports (pushed, GET /load,
 * /load/stream), /metrics, drain and undrain, health; and the location store's upkeep
 * (registration count, purge of expired bindings).
 */
export class ProxyFront {
  readonly #o: ProxyFrontOptions;
  readonly #reporter: LoadReporter;
  #http: FastifyInstance | undefined;
  #url: string | undefined;
  #draining = false;
  #serving = false;
  #registrations = 0;
  #upkeepTicks = 0;
  #upkeep: ClockTimer | undefined;

  constructor(options: ProxyFrontOptions) {
    this.#o = options;
    const c = options.config;
    const policy = new DestinationPolicy(c.allowedDestinations);
    const s = options.sources;
    this.#reporter = new LoadReporter(
      {
        proxyId: c.id,
        intervalMs: c.report.intervalMs,
        push: c.report.push,
        key: c.report.key,
        clock: options.clock,
        log: options.log,
        allowed: (address) => policy.allows(address),
      },
      {
        state: () => (this.#draining ? "draining" : "active"),
        calls: () => s.stats().calls,
        registrations: () => this.#registrations,
        transactions: () => s.stats().transactions,
        media: () => s.stats().media,
        cps: () => s.stats().cps,
        store: s.storeHealth,
        ...(s.elu === undefined ? {} : { elu: s.elu }),
        ...(s.cpu === undefined ? {} : { cpu: s.cpu }),
        capacity: c.capacity,
        uris: urisOf(options.listeners),
      },
    );
  }

  get httpUrl(): string {
    if (this.#url === undefined) throw new Error("proxy not started");
    return this.#url;
  }

  get draining(): boolean {
    return this.#draining;
  }

  get registrations(): number {
    return this.#registrations;
  }

  /** A load report made now. */
  report(): LoadReport {
    return this.#reporter.make();
  }

  /** The SIP side saw the call count move: push if it moved markedly. */
  changed(): void {
    this.#reporter.changed();
  }

  /** DESIGN.md workload, from the latest report with the current call count. */
  workload(): number {
    const last = this.#reporter.last;
    if (last === undefined) return 0;
    return workloadOf({ ...last, calls: this.#o.sources.stats().calls });
  }

  async start(): Promise<void> {
    const c = this.#o.config;
    await this.#refreshRegistrations(false);
    this.#scheduleUpkeep();
    this.#reporter.start();
    this.#http = proxyHttpApi({
      reporter: this.#reporter,
      metrics: proxyMetrics(c.id, {
        stats: this.#o.sources.stats,
        registrations: () => this.#registrations,
        draining: () => this.#draining,
        workload: () => this.workload(),
      }),
      adminToken: c.adminToken,
      drain: () => this.drain(),
      undrain: () => this.undrain(),
      ready: () => this.#serving && !this.#draining && this.#o.sources.storeHealth() !== "down",
      log: this.#o.log,
    });
    await this.#http.listen({ host: c.http.address, port: c.http.port });
    const bound = this.#http.server.address();
    if (bound === null || typeof bound === "string") throw new Error("HTTP server did not bind");
    this.#url = `http://${isIP(bound.address) === 6 ? `[${bound.address}]` : bound.address}:${bound.port}`;
    this.#serving = true;
  }

  async stop(): Promise<void> {
    this.#serving = false;
    if (this.#upkeep !== undefined) this.#o.clock.clearTimeout(this.#upkeep);
    this.#upkeep = undefined;
    this.#reporter.stop();
    await this.#http?.close();
  }

  drain(): void {
    if (this.#draining) return;
    this.#draining = true;
    this.#o.sources.onDrainChange(true);
    this.#o.log.info({ calls: this.#o.sources.stats().calls }, "draining");
    this.#reporter.changed();
  }

  undrain(): void {
    if (!this.#draining) return;
    this.#draining = false;
    this.#o.sources.onDrainChange(false);
    this.#o.log.info("serving again");
    this.#reporter.changed();
  }

  #scheduleUpkeep(): void {
    this.#upkeep = this.#o.clock.setTimeout(() => {
      this.#upkeepTicks++;
      void this.#refreshRegistrations(this.#upkeepTicks % PURGE_EVERY_TICKS === 0).finally(() => {
        if (this.#upkeep !== undefined) this.#scheduleUpkeep();
      });
    }, STORE_UPKEEP_MS);
  }

  async #refreshRegistrations(purge: boolean): Promise<void> {
    const store = this.#o.store;
    try {
      const now = Date.now();
      if (purge) await store.purgeExpired(now);
      this.#registrations = await store.count(now);
    } catch (e) {
      this.#o.log.warn({ err: e }, "location store upkeep failed");
    }
  }
}

/** How often a draining proxy looks whether its dialogs are over. */
export const DRAIN_POLL_MS = 250;

/**
 * A drain's wait (SIGTERM): until `calls()` is 0, `timeoutMs` has passed or `waiting()` turns
 * false (stopped meanwhile). Resolves with the calls still up.
 */
export async function waitForCallsToEnd(
  clock: Clock,
  timeoutMs: number,
  calls: () => number,
  waiting: () => boolean,
): Promise<number> {
  const deadline = clock.now() + timeoutMs;
  while (calls() > 0 && clock.now() < deadline && waiting()) {
    await new Promise<void>((resolve) => clock.setTimeout(resolve, DRAIN_POLL_MS));
  }
  return calls();
}

/** The load report's `uris`: how clients reach this proxy on each transport. */
export function urisOf(listeners: readonly BoundListener[]): LoadReport["uris"] {
  const uris: Record<string, string> = {};
  for (const l of listeners) {
    if (uris[l.protocol] !== undefined) continue;
    const host = isIP(l.advertise) === 6 ? `[${l.advertise}]` : l.advertise;
    uris[l.protocol] =
      l.protocol === "udp"
        ? `sip:${host}:${l.port}`
        : l.protocol === "tcp"
          ? `sip:${host}:${l.port};transport=tcp`
          : l.protocol === "tls"
            ? `sips:${host}:${l.port}`
            : `${l.protocol}://${host}:${l.port}`;
  }
  return uris;
}
