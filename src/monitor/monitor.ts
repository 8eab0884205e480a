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
import { loadWebPages, type WebPage } from "./web-pages.js";
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
import { DnsFront, type DnsListener } from "./dns-front.js";
import type { LoadReport } from "../contracts/index.js";
import { Collectors, type CollectorCounters } from "./collectors/index.js";
import { compileWorkload } from "./workload.js";
import { Relays } from "./relays.js";

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
 * answering clients over HTTP, SIP redirect and DNS. `start()` opens every socket;
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
  readonly #relays: Relays;
  readonly #countNoRelay: Counter;
  /** The adapter of each proxy configured or added with one (push-only ids have none). */
  readonly #adapters = new Map<string, ProxyAdapter>();
  #http: FastifyInstance | undefined;
  #udp: UdpPushEndpoint | undefined;
  #sip: RedirectFront | undefined;
  #dns: DnsFront | undefined;
  /** Proxy ids with capitals by their lower-case DNS label (DNS names ignore case). */
  readonly #mixedCaseIds = new Map<string, string>();
  readonly #sipTimers: TransactionOptionsInput | undefined;
  #httpUrl: string | undefined;
  #webPages: ReadonlySet<WebPage> = new Set();
  #state: "new" | "started" | "stopping" | "stopped" = "new";

  readonly #onReport = (e: ReportSummaryEvent): void => this.#countAccepted.inc({ via: e.via });
  readonly #onTableRefused = (e: ReportRefusedEvent): void =>
    this.#countRefused.inc({ reason: e.reason, via: e.via });
  readonly #onState = (e: ProxyStateEvent): void => {
    this.#countChanges.inc({ kind: e.kind });
    if (e.kind === "removed") this.#intake.forget(e.proxy);
    if (e.kind === "joined") this.#noteId(e.proxy);
    if (e.kind === "removed" && this.#mixedCaseIds.get(e.proxy.toLowerCase()) === e.proxy) {
      this.#mixedCaseIds.delete(e.proxy.toLowerCase());
    }
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
    this.#relays = new Relays({
      relays: c.relays,
      table: c.table,
      select: c.select,
      allowedDestinations: c.allowedDestinations,
      clock: this.#clock,
      ...(deps.wallNow === undefined ? {} : { wallNow: deps.wallNow }),
      ...(deps.random === undefined ? {} : { random: deps.random }),
      log: this.#log,
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
      help: "Selects with no eligible proxy (HTTP and SIP 503, DNS SERVFAIL)",
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
    const dnsCounters = () => this.#dns?.counters();
    new Counter({
      name: "sipsteer_monitor_dns_queries_total",
      help: "DNS queries answered, by response code",
      labelNames: ["rcode"],
      registers,
      collect() {
        this.reset();
        const answered: Readonly<Record<string, number>> = dnsCounters()?.answered ?? {};
        for (const [rcode, n] of Object.entries(answered)) if (n > 0) this.inc({ rcode }, n);
      },
    });
    new Counter({
      name: "sipsteer_monitor_dns_dropped_total",
      help: "DNS messages dropped unanswered: no readable header, or a response",
      registers,
      collect() {
        this.reset();
        const dropped = dnsCounters()?.dropped ?? 0;
        if (dropped > 0) this.inc(dropped);
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
    const relays = this.#relays;
    this.#countNoRelay = new Counter({
      name: "sipsteer_monitor_relay_selects_unanswered_total",
      help: "Media selects (kind=media) with no eligible relay (HTTP 503)",
      registers,
    });
    new Counter({
      name: "sipsteer_monitor_relay_selects_total",
      help: "Calls sent to each media relay",
      labelNames: ["relay"],
      registers,
      collect() {
        this.reset();
        for (const [relay, n] of relays.selector.chosenCounts()) this.inc({ relay }, n);
      },
    });
    new Gauge({
      name: "sipsteer_monitor_relays_known",
      help: "Media relays configured",
      registers,
      collect() {
        this.set(relays.size);
      },
    });
    new Gauge({
      name: "sipsteer_monitor_relays_eligible",
      help: "Media relays a new call may be sent to now",
      registers,
      collect() {
        this.set(relays.table.eligible().length);
      },
    });
    new Gauge({
      name: "sipsteer_monitor_relay_sessions",
      help: "Sessions each media relay reported at its newest poll",
      labelNames: ["relay"],
      registers,
      collect() {
        this.reset();
        for (const relay of relays.list()) {
          if (relay.sessions !== null) this.set({ relay: relay.id }, relay.sessions);
        }
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
      this.#noteId(configuredProxyId(proxy));
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
    this.#noteId(id);
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

  #noteId(id: string): void {
    const label = id.toLowerCase();
    if (label !== id) this.#mixedCaseIds.set(label, id);
  }

  /** The SIP URIs of the proxy a DNS label names (`{}` before its first report). */
  #proxyUrisByLabel(label: string): LoadReport["uris"] | undefined {
    const status =
      this.#table.status(label) ?? this.#table.status(this.#mixedCaseIds.get(label) ?? "");
    if (status === undefined) return undefined;
    return status.report?.uris ?? {};
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

  /** The media relays (issue 8): their own table and selector, apart from the proxies'. */
  get relays(): Relays {
    return this.#relays;
  }

  /** The HTTP API's base URL (after start). */
  get httpUrl(): string {
    if (this.#httpUrl === undefined) throw new Error("monitor not started");
    return this.#httpUrl;
  }

  /** The dashboard's URL (after start); undefined when `web` is off or the pages are not built. */
  get dashboardUrl(): string | undefined {
    return this.#webPages.has("dashboard") ? `${this.httpUrl}/dashboard/` : undefined;
  }

  /** The browser phone's URL (after start), like dashboardUrl. */
  get phoneUrl(): string | undefined {
    return this.#webPages.has("phone") ? `${this.httpUrl}/phone/` : undefined;
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

  /** The DNS front's listeners as bound (after start); empty when there is none. */
  get dnsListeners(): readonly DnsListener[] {
    if (this.#state !== "started") throw new Error("monitor not started");
    return this.#dns?.listeners ?? [];
  }

  /** The zone the DNS front is authoritative for, when there is one. */
  get dnsZone(): string | undefined {
    return this.config.dns?.zone;
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
      const webPages = c.web ? loadWebPages() : undefined;
      if (c.web && webPages!.size === 0) {
        this.#log.warn("no dashboard or phone pages in dist/web (npm run build makes them)");
      }
      this.#webPages = new Set(webPages?.keys());
      this.#http = monitorHttpApi({
        ...(webPages === undefined ? {} : { webPages }),
        table: this.#table,
        selector: this.#selector,
        intake: this.#intake,
        metrics: this.#metrics,
        adminToken: c.adminToken,
        reportBodyLimitBytes: c.reportBodyLimitBytes,
        maxEventStreams: c.maxEventStreams,
        started: () => this.#state === "started",
        freshen: (transport: Transport) => this.freshen(transport),
        needsFreshening: () => this.#collectors.needsFreshening(),
        onNoProxy: (transport: Transport) => this.#countNoProxy.inc({ transport }),
        relays: this.#relays,
        onNoRelay: () => this.#countNoRelay.inc(),
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
      if (c.dns !== undefined) {
        this.#dns = new DnsFront({
          listen: c.dns.listen,
          zone: c.dns.zone,
          ...(c.dns.nameServer?.address === undefined
            ? {}
            : { nameServerAddress: c.dns.nameServer.address }),
          select: (transport: Transport) => this.#selector.select(transport),
          ranked: (transport: Transport) => this.#selector.ranked(transport),
          proxyUris: (label: string) => this.#proxyUrisByLabel(label),
          // The DNS front's hot path waits (and makes a promise) only when a poll is due.
          freshen: (transport?: Transport) =>
            this.#collectors.needsFreshening() ? this.freshen(transport) : undefined,
          onNoProxy: (transport: Transport) => this.#countNoProxy.inc({ transport }),
          maxSrvRecords: 1 + c.select.maxAlternates,
          clock: this.#clock,
          logger: this.#log,
        });
        await this.#dns.start();
      }
      await this.#collectors.start();
      await this.#relays.start();
      this.#log.info(
        {
          http: this.#httpUrl,
          udpPush: this.#udp?.address,
          sip: this.#sip?.listeners,
          dns: this.#dns?.listeners,
          relays: this.#relays.size,
        },
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
    await this.#relays.stop();
    await this.#dns?.stop();
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
