import { isIP } from "node:net";
import type { FastifyInstance } from "fastify";
import { Counter, Gauge, Registry } from "prom-client";
import {
  silentLogger,
  systemClock,
  type BoundListener,
  type Clock,
  type Logger,
  type TransactionOptionsInput,
} from "../sip/index.js";
import { monitorHttpApi } from "./http-front.js";
import {
  configuredProxyId,
  parseConfiguredProxy,
  parseMonitorConfig,
  type MonitorConfig,
  type MonitorConfigInput,
  type ProxyAdapter,
} from "./monitor-config.js";
import {
  ProxyTable,
  type ProxyStateEvent,
  type ReportRefusedEvent,
  type ReportSummaryEvent,
} from "./proxy-table.js";
import { PushIntake, type PushChannel, type PushRefusalReason } from "./push-intake.js";
import { Selector, type Transport } from "./selector.js";
import { UdpPushEndpoint } from "./udp-push.js";
import { RedirectFront } from "./redirect-front.js";
import { Collectors, type CollectorCounters } from "./collectors/index.js";
import { compileWorkload } from "./workload.js";

export interface MonitorDeps {
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Epoch ms, for the reports' clock window; Date.now by default. */
  readonly wallNow?: () => number;
  /** Uniform in [0, 1), for the random policies; Math.random by default. */
  readonly random?: () => number;
  /**
   * SIP timers (tests shorten T1): of the OPTIONS pings' transactions; the SIP redirect front
   * keeps its answers 64 × T1.
   */
  readonly sipTimers?: TransactionOptionsInput;
}

/**
 * The load monitor role (issue 5): the proxy table and selector, fed by signed pushes over
 * HTTP (`POST /v1/reports`) and UDP and by its own collectors (poll, stream, on-query),
 * answering clients over HTTP. `start()` opens every socket;
 * `stop()` closes them, ends held event streams and clears every timer.
 */
export class Monitor {
  readonly config: Readonly<MonitorConfig>;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #table: ProxyTable;
  readonly #selector: Selector;
  readonly #intake: PushIntake;
  readonly #metrics: Registry;
  readonly #countAccepted: Counter<"via">;
  readonly #countRefused: Counter<"reason" | "via">;
  readonly #countChanges: Counter<"kind">;
  readonly #countNoProxy: Counter<"transport">;
  readonly #collectors: Collectors;
  /** The adapter of each proxy configured or added with one (push-only ids have none). */
  readonly #adapters = new Map<string, ProxyAdapter>();
  #http: FastifyInstance | undefined;
  #udp: UdpPushEndpoint | undefined;
  #sip: RedirectFront | undefined;
  readonly #sipTimers: TransactionOptionsInput | undefined;
  #httpUrl: string | undefined;
  #state: "new" | "started" | "stopping" | "stopped" = "new";

  readonly #onReport = (e: ReportSummaryEvent): void => this.#countAccepted.inc({ via: e.via });
  readonly #onTableRefused = (e: ReportRefusedEvent): void =>
    this.#countRefused.inc({ reason: e.reason, via: e.via });
  readonly #onState = (e: ProxyStateEvent): void => {
    this.#countChanges.inc({ kind: e.kind });
    if (e.kind === "removed") this.#intake.forget(e.proxy);
  };

  constructor(config: MonitorConfigInput | Readonly<MonitorConfig>, deps: MonitorDeps = {}) {
    this.config = parseMonitorConfig(config);
    this.#clock = deps.clock ?? systemClock;
    this.#sipTimers = deps.sipTimers;
    this.#log = (deps.logger ?? silentLogger).child({ role: "monitor" });
    const c = this.config;
    this.#table = new ProxyTable({
      config: { ...c.table, proxies: c.proxies.map(configuredProxyId), allowJoin: c.allowJoin },
      clock: this.#clock,
      wallNow: deps.wallNow,
      workload: compileWorkload(c.workload),
      log: this.#log,
    });
    this.#selector = new Selector({
      table: this.#table,
      config: c.select,
      random: deps.random,
    });
    this.#metrics = new Registry();
    const registers = [this.#metrics];
    this.#countAccepted = new Counter({
      name: "sipsteer_monitor_reports_accepted_total",
      help: "Load reports accepted, by how they arrived",
      labelNames: ["via"],
      registers,
    });
    this.#countRefused = new Counter({
      name: "sipsteer_monitor_reports_refused_total",
      help: "Load reports refused, by reason and channel",
      labelNames: ["reason", "via"],
      registers,
    });
    this.#countChanges = new Counter({
      name: "sipsteer_monitor_state_changes_total",
      help: "Changes of a proxy's state, by kind",
      labelNames: ["kind"],
      registers,
    });
    this.#countNoProxy = new Counter({
      name: "sipsteer_monitor_selects_unanswered_total",
      help: "Selects answered 503: no eligible proxy",
      labelNames: ["transport"],
      registers,
    });
    const selector = this.#selector;
    const table = this.#table;
    new Counter({
      name: "sipsteer_monitor_selects_total",
      help: "Clients sent to each proxy",
      labelNames: ["proxy"],
      registers,
      collect() {
        this.reset();
        for (const [proxy, n] of selector.chosenCounts()) this.inc({ proxy }, n);
      },
    });
    new Gauge({
      name: "sipsteer_monitor_proxies_eligible",
      help: "Proxies a client may be sent to now",
      registers,
      collect() {
        this.set(table.eligible().length);
      },
    });
    const collectors = (): Collectors => this.#collectors;
    new Gauge({
      name: "sipsteer_monitor_destinations_refused",
      help: "Configured proxies never contacted: their http host is outside allowedDestinations",
      registers,
      collect() {
        this.set(collectors().counters().refusedDestinations.length);
      },
    });
    new Gauge({
      name: "sipsteer_monitor_proxies_known",
      help: "Proxies in the table",
      registers,
      collect() {
        this.set(table.size);
      },
    });
    this.#intake = new PushIntake({
      table: this.#table,
      keys: c.keys,
      clock: this.#clock,
      log: this.#log,
      onRefused: (reason: PushRefusalReason, channel: PushChannel) =>
        this.#countRefused.inc({ reason, via: `push-${channel}` }),
    });
    this.#collectors = new Collectors({
      proxies: c.proxies,
      table: this.#table,
      clock: this.#clock,
      log: this.#log,
      onQueryWaitMs: c.onQueryWaitMs,
      streamRetryMs: c.streamRetryMs,
      streamRetryMaxMs: c.streamRetryMaxMs,
      allowedDestinations: c.allowedDestinations,
      ...(deps.sipTimers === undefined ? {} : { sipTimers: deps.sipTimers }),
    });
    for (const proxy of c.proxies) {
      if (typeof proxy !== "string") this.#adapters.set(proxy.id, proxy.adapter);
    }
    this.#table.on("report", this.#onReport);
    this.#table.on("refused", this.#onTableRefused);
    this.#table.on("state", this.#onState);
  }

  /**
   * Admin add: a proxy as the config's `proxies` list takes it (an id for a pushing proxy, or
   * `{ id, adapter, http | rpc | sip, modes, … }`), known from now on and collected at once.
   * "known" when the id is in the table already; a bad field throws a RangeError naming it.
   */
  async addProxy(input: unknown): Promise<"added" | "known"> {
    const proxy = parseConfiguredProxy(input);
    const id = configuredProxyId(proxy);
    if (!this.#table.add(id)) return "known";
    try {
      await this.#collectors.add(proxy);
    } catch (e) {
      this.#table.remove(id);
      throw e;
    }
    if (typeof proxy !== "string") this.#adapters.set(id, proxy.adapter);
    return "added";
  }

  /** Admin remove: forgets the proxy and stops collecting it. False when it was not known. */
  removeProxy(id: string): boolean {
    this.#collectors.remove(id);
    this.#adapters.delete(id);
    if (!this.#table.remove(id)) return false;
    this.#intake.forget(id);
    return true;
  }

  /** What the poll, stream and on-query collectors have done. */
  collectorCounters(): CollectorCounters {
    return this.#collectors.counters();
  }

  /**
   * On-query collection: refreshes on-query proxies whose newest report is too old, waiting at
   * most `onQueryWaitMs`; the selects of every front call it before choosing. Never rejects.
   */
  freshen(_transport?: Transport): Promise<void> {
    if (this.#state !== "started") return Promise.resolve();
    return this.#collectors.freshen();
  }

  get table(): ProxyTable {
    return this.#table;
  }

  get selector(): Selector {
    return this.#selector;
  }

  /** The HTTP API's base URL (after start). */
  get httpUrl(): string {
    if (this.#httpUrl === undefined) throw new Error("monitor not started");
    return this.#httpUrl;
  }

  /** Where the UDP push endpoint is bound (after start), or undefined when there is none. */
  get udpPushAddress(): { address: string; port: number } | undefined {
    if (this.#state !== "started") throw new Error("monitor not started");
    return this.#udp?.address;
  }

  /** The push target a proxy names for the UDP endpoint (`udp://host:port`), if any. */
  get udpPushUrl(): string | undefined {
    const bound = this.udpPushAddress;
    if (bound === undefined) return undefined;
    const host = isIP(bound.address) === 6 ? `[${bound.address}]` : bound.address;
    return `udp://${host}:${bound.port}`;
  }

  /** The SIP redirect front's listeners as bound (after start); empty when there is none. */
  get sipListeners(): readonly BoundListener[] {
    if (this.#state !== "started") throw new Error("monitor not started");
    return this.#sip?.listeners ?? [];
  }

  async start(): Promise<void> {
    if (this.#state !== "new") throw new Error("Monitor.start() called twice");
    this.#state = "started";
    const c = this.config;
    try {
      if (c.udpPush !== undefined) {
        this.#udp = new UdpPushEndpoint({
          address: c.udpPush.address,
          port: c.udpPush.port,
          intake: this.#intake,
          log: this.#log,
        });
        await this.#udp.start();
      }
      this.#http = monitorHttpApi({
        table: this.#table,
        selector: this.#selector,
        intake: this.#intake,
        metrics: this.#metrics,
        adminToken: c.adminToken,
        reportBodyLimitBytes: c.reportBodyLimitBytes,
        maxEventStreams: c.maxEventStreams,
        started: () => this.#state === "started",
        freshen: (transport: Transport) => this.freshen(transport),
        onNoProxy: (transport: Transport) => this.#countNoProxy.inc({ transport }),
        adapterOf: (id: string) => this.#adapters.get(id),
        addProxy: (input: unknown) => this.addProxy(input),
        removeProxy: (id: string) => this.removeProxy(id),
        log: this.#log,
      });
      await this.#http.listen({ host: c.http.address, port: c.http.port });
      const bound = this.#http.server.address();
      if (bound === null || typeof bound === "string") throw new Error("HTTP server did not bind");
      this.#httpUrl = `http://${isIP(bound.address) === 6 ? `[${bound.address}]` : bound.address}:${bound.port}`;
      if (c.sip !== undefined) {
        this.#sip = new RedirectFront({
          listen: c.sip.listen,
          allowedDestinations: c.allowedDestinations,
          select: (transport: Transport) => this.#selector.select(transport),
          // Its hot path waits (and makes a promise) only when an on-query poll is due.
          freshen: (transport: Transport) =>
            this.#collectors.needsFreshening() ? this.freshen(transport) : undefined,
          onNoProxy: (transport: Transport) => this.#countNoProxy.inc({ transport }),
          clock: this.#clock,
          logger: this.#log,
          ...(this.#sipTimers === undefined ? {} : { timers: this.#sipTimers }),
        });
        await this.#sip.start();
      }
      await this.#collectors.start();
      this.#log.info(
        { http: this.#httpUrl, udpPush: this.#udp?.address, sip: this.#sip?.listeners },
        "monitor started",
      );
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  async stop(): Promise<void> {
    if (this.#state === "stopped" || this.#state === "stopping") return;
    const wasStarted = this.#state === "started";
    this.#state = "stopping";
    await this.#collectors.stop();
    await this.#sip?.stop();
    await this.#udp?.stop();
    await this.#http?.close();
    this.#table.off("report", this.#onReport);
    this.#table.off("refused", this.#onTableRefused);
    this.#table.off("state", this.#onState);
    this.#selector.dispose();
    this.#table.dispose();
    this.#state = "stopped";
    if (wasStarted) this.#log.info("monitor stopped");
  }
}
