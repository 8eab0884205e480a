import { readFile } from "node:fs/promises";
import { isIP } from "node:net";
import type { FastifyInstance } from "fastify";
import { Gauge, Counter, Registry } from "prom-client";
import {
  Credentials,
  TimerQueue,
  TransactionLayer,
  TransportLayer,
  silentLogger,
  systemClock,
  type BoundListener,
  type Clock,
  type ClockTimer,
  type FlowInfo,
  type Logger,
  type NameAddr,
} from "../sip/index.js";
import { DestinationPolicy } from "../sip/transport/destination-policy.js";
import type { LoadReport } from "../contracts/index.js";
import { AuthGuard } from "./auth-guard.js";
import { DialogTracker } from "./dialogs.js";
import { Fleet } from "./fleet.js";
import { proxyHttpApi } from "./load/http-api.js";
import { LoadReporter, workloadOf } from "./load/load-reporter.js";
import { RedisLocationStore } from "./location-store/redis-store.js";
import { SqliteLocationStore } from "./location-store/sqlite-store.js";
import type { LocationStore } from "./location-store/types.js";
import { ProxyCore } from "./proxy-core/proxy-core.js";
import { parseProxyConfig, type ProxyConfig, type ProxyConfigInput } from "./proxy-config.js";
import { Registrar } from "./registrar/registrar.js";
import { contactNeedsFlow } from "./nat.js";
import { FlowTokens, Self } from "./self.js";

export interface ProxyDeps {
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Credentials given directly (tests, `sipsteer up`) instead of `auth.credentialsFile`. */
  readonly credentials?: Credentials;
}

/** Expired bindings are deleted, and the registration count refreshed, this often. */
const STORE_UPKEEP_MS = 1000;
const PURGE_EVERY_TICKS = 30;
/** How often a draining proxy looks whether its dialogs are over. */
const DRAIN_POLL_MS = 250;

/**
 * The proxy role: a stateful SIP proxy and registrar (src/proxy/proxy-core, registrar) on the
 * SIP stack, with its location store, dialog accounting, load reports (pushed, polled at
 * GET /load, streamed at /load/stream) and admin. `start()` opens every socket and timer;
 * `stop()` closes them all.
 */
export class Proxy {
  readonly config: Readonly<ProxyConfig>;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #givenCredentials: Credentials | undefined;
  #state: "new" | "starting" | "started" | "stopping" | "stopped" = "new";
  #draining = false;
  #registrations = 0;
  #upkeepTicks = 0;
  #upkeep: ClockTimer | undefined;

  #store: LocationStore | undefined;
  #transport: TransportLayer | undefined;
  #transactions: TransactionLayer | undefined;
  #timers: TimerQueue | undefined;
  #dialogs: DialogTracker | undefined;
  #core: ProxyCore | undefined;
  #auth: AuthGuard | undefined;
  #reporter: LoadReporter | undefined;
  #http: FastifyInstance | undefined;
  #httpAddress: { address: string; port: number } | undefined;
  #metrics: Registry | undefined;

  constructor(config: ProxyConfigInput | Readonly<ProxyConfig>, deps: ProxyDeps = {}) {
    this.config = parseProxyConfig(config);
    this.#clock = deps.clock ?? systemClock;
    this.#log = (deps.logger ?? silentLogger).child({ role: "proxy", proxy: this.config.id });
    this.#givenCredentials = deps.credentials;
  }

  /** The SIP listeners as bound (after start). */
  get listeners(): readonly BoundListener[] {
    return this.#transport?.boundListeners ?? [];
  }

  /** The HTTP API's base URL (after start). */
  get httpUrl(): string {
    const a = this.#httpAddress;
    if (a === undefined) throw new Error("proxy not started");
    return `http://${isIP(a.address) === 6 ? `[${a.address}]` : a.address}:${a.port}`;
  }

  get draining(): boolean {
    return this.#draining;
  }

  /** The transport, for tests and the CLI (SIGHUP reloads TLS credentials through it). */
  get transport(): TransportLayer {
    if (this.#transport === undefined) throw new Error("proxy not started");
    return this.#transport;
  }

  /** Early and confirmed dialogs now. */
  get calls(): number {
    return this.#dialogs?.calls ?? 0;
  }

  /** A load report made now. */
  report(): LoadReport {
    if (this.#reporter === undefined) throw new Error("proxy not started");
    return this.#reporter.make();
  }

  async start(): Promise<void> {
    if (this.#state !== "new") throw new Error("Proxy.start() called twice");
    this.#state = "starting";
    try {
      await this.#start();
      this.#state = "started";
      this.#log.info({ listeners: this.listeners, http: this.httpUrl }, "proxy started");
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  async #start(): Promise<void> {
    const c = this.config;
    const credentials = await this.#credentials();

    this.#store =
      c.store.kind === "sqlite"
        ? new SqliteLocationStore(c.store.file)
        : new RedisLocationStore({ url: c.store.url, prefix: c.store.prefix });
    await this.#store.start();

    this.#transport = new TransportLayer(
      { ...c.transport, listen: c.listen, allowedDestinations: c.allowedDestinations },
      { clock: this.#clock, logger: this.#log },
    );
    await this.#transport.start();
    this.#transactions = new TransactionLayer({
      transport: this.#transport,
      timers: c.timers,
      clock: this.#clock,
      logger: this.#log,
    });
    this.#timers = new TimerQueue(this.#clock);
    this.#dialogs = new DialogTracker(this.#clock, c.dialogSafetyTimeoutMs, () =>
      this.#reporter?.changed(),
    );

    const self = new Self(
      c.id,
      c.domains,
      this.#transport.boundListeners,
      new FlowTokens(c.flowTokenSecret),
    );
    const fleet = new Fleet(c.fleet);
    const now = () => Date.now();
    this.#auth =
      credentials === undefined
        ? undefined
        : new AuthGuard({ credentials, clock: this.#clock, log: this.#log, ...c.auth });
    const registrar = new Registrar({
      store: this.#store,
      proxyId: c.id,
      ...c.registrar,
      log: this.#log,
      now,
      pathFor: (flow, contacts) => this.#pathFor(self, flow, contacts),
      servesDomain: (host) => self.servesDomain(host),
      trustsPath: (flow) => fleet.isMemberAddress(flow.remote.address),
    });
    this.#core = new ProxyCore({
      self,
      fleet,
      transport: this.#transport,
      transactions: this.#transactions,
      store: this.#store,
      registrar,
      auth: this.#auth,
      dialogs: this.#dialogs,
      timers: this.#timers,
      timerCMs: c.timerCMs,
      relayDomains: c.relayDomains,
      log: this.#log,
      now,
      draining: () => this.#draining,
      workload: () => this.#workload(),
    });
    const core = this.#core;
    this.#transactions.on("request", (tx) => void core.onRequest(tx));
    this.#transactions.on("ack", (inbound) => void core.onAck(inbound));
    this.#transactions.on("response", (inbound) => void core.onStrayResponse(inbound));
    this.#transactions.start();
    this.#dialogs.start();

    const policy = new DestinationPolicy(c.allowedDestinations);
    this.#reporter = new LoadReporter(
      {
        proxyId: c.id,
        intervalMs: c.report.intervalMs,
        push: c.report.push,
        key: c.report.key,
        clock: this.#clock,
        log: this.#log,
        allowed: (address) => policy.allows(address),
      },
      {
        state: () => (this.#draining ? "draining" : "active"),
        calls: () => this.#dialogs?.calls ?? 0,
        registrations: () => this.#registrations,
        transactions: () => {
          const size = this.#transactions?.size;
          return size === undefined ? 0 : size.client + size.server;
        },
        media: () => 0,
        cps: () => this.#dialogs?.cps ?? 0,
        store: () => this.#store?.health() ?? "down",
        capacity: c.capacity,
        uris: urisOf(this.#transport.boundListeners),
      },
    );
    await this.#refreshRegistrations(false);
    this.#scheduleUpkeep();
    this.#reporter.start();

    this.#metrics = this.#makeMetrics();
    this.#http = proxyHttpApi({
      reporter: this.#reporter,
      metrics: this.#metrics,
      adminToken: c.adminToken,
      drain: () => this.drain(),
      undrain: () => this.undrain(),
      ready: () => this.#state === "started" && !this.#draining && this.#store?.health() !== "down",
      log: this.#log,
    });
    await this.#http.listen({ host: c.http.address, port: c.http.port });
    const bound = this.#http.server.address();
    if (bound === null || typeof bound === "string") throw new Error("HTTP server did not bind");
    this.#httpAddress = { address: bound.address, port: bound.port };
  }

  /** New REGISTERs, INVITEs and OPTIONS get 503 + Retry-After; dialogs go on. */
  drain(): void {
    if (this.#draining) return;
    this.#draining = true;
    this.#log.info({ calls: this.calls }, "draining");
    this.#reporter?.changed();
  }

  undrain(): void {
    if (!this.#draining) return;
    this.#draining = false;
    this.#log.info("serving again");
    this.#reporter?.changed();
  }

  /**
   * SIGTERM: drains, waits until the dialogs are over or `timeoutMs` passed, then stops.
   * Resolves with the dialogs still up when it gave up waiting.
   */
  async drainAndStop(timeoutMs = this.config.drainTimeoutMs): Promise<number> {
    this.drain();
    const deadline = this.#clock.now() + timeoutMs;
    while (this.calls > 0 && this.#clock.now() < deadline && this.#state === "started") {
      await new Promise<void>((resolve) => this.#clock.setTimeout(resolve, DRAIN_POLL_MS));
    }
    const left = this.calls;
    await this.stop();
    return left;
  }

  async stop(): Promise<void> {
    if (this.#state === "stopped" || this.#state === "stopping") return;
    this.#state = "stopping";
    if (this.#upkeep !== undefined) this.#clock.clearTimeout(this.#upkeep);
    this.#upkeep = undefined;
    this.#reporter?.stop();
    await this.#http?.close();
    this.#dialogs?.stop();
    this.#core?.close();
    this.#timers?.dispose();
    this.#transactions?.stop();
    await this.#transport?.stop();
    await this.#store?.stop();
    this.#state = "stopped";
    this.#log.info("proxy stopped");
  }

  async #credentials(): Promise<Credentials | undefined> {
    const auth = this.config.auth;
    if (!auth.enabled) return undefined;
    if (this.#givenCredentials !== undefined) return this.#givenCredentials;
    if (auth.credentialsFile === undefined) {
      throw new RangeError("proxy.auth.credentialsFile: required while auth.enabled is true");
    }
    let text: string;
    try {
      text = await readFile(auth.credentialsFile, "utf8");
    } catch (e) {
      throw new RangeError(
        `proxy.auth.credentialsFile: cannot read ${auth.credentialsFile}: ${(e as Error).message}`,
        { cause: e },
      );
    }
    return Credentials.parse(text, auth.credentialsFile);
  }

  /**
   * Our Path entry for a client's registration: a URI the other fleet members reach us on
   * (UDP, else TCP), so that requests for the client come through us; with the token of the
   * client's flow when they must go down that flow (a connection, a client behind NAT).
   */
  #pathFor(self: Self, flow: FlowInfo, contacts: readonly NameAddr[]): string | undefined {
    const flowId = contacts.some((c) => contactNeedsFlow(c, flow)) ? flow.id : undefined;
    const fleetSide =
      this.listeners.find((l) => l.protocol === "udp") ??
      this.listeners.find((l) => l.protocol === "tcp");
    if (fleetSide === undefined) return self.routeUri(flow.protocol, flow.remote.address, flowId);
    return self.routeUri(fleetSide.protocol, fleetSide.address, flowId);
  }

  #workload(): number {
    const last = this.#reporter?.last;
    if (last === undefined) return 0;
    return workloadOf({ ...last, calls: this.calls });
  }

  #scheduleUpkeep(): void {
    this.#upkeep = this.#clock.setTimeout(() => {
      this.#upkeepTicks++;
      void this.#refreshRegistrations(this.#upkeepTicks % PURGE_EVERY_TICKS === 0).finally(() => {
        if (this.#state === "started" || this.#state === "starting") this.#scheduleUpkeep();
      });
    }, STORE_UPKEEP_MS);
  }

  async #refreshRegistrations(purge: boolean): Promise<void> {
    const store = this.#store;
    if (store === undefined) return;
    try {
      const now = Date.now();
      if (purge) await store.purgeExpired(now);
      this.#registrations = await store.count(now);
    } catch (e) {
      this.#log.warn({ err: e }, "location store upkeep failed");
    }
  }

  #makeMetrics(): Registry {
    const registry = new Registry();
    registry.setDefaultLabels({ proxy: this.config.id });
    const gauge = (name: string, help: string, read: () => number) =>
      new Gauge({
        name,
        help,
        registers: [registry],
        collect() {
          this.set(read());
        },
      });
    gauge("sipsteer_proxy_calls", "Early and confirmed dialogs", () => this.calls);
    gauge(
      "sipsteer_proxy_cps",
      "Calls started per second over the last 5 s",
      () => this.#dialogs?.cps ?? 0,
    );
    gauge(
      "sipsteer_proxy_registrations",
      "Unexpired bindings in the location store",
      () => this.#registrations,
    );
    gauge("sipsteer_proxy_transactions", "Live SIP transactions", () => {
      const size = this.#transactions?.size;
      return size === undefined ? 0 : size.client + size.server;
    });
    gauge("sipsteer_proxy_draining", "1 while draining", () => (this.#draining ? 1 : 0));
    gauge("sipsteer_proxy_workload", "Workload, 0 idle to 1 at capacity", () => this.#workload());
    gauge(
      "sipsteer_proxy_connections",
      "Open SIP connections",
      () => this.#transport?.flows.length ?? 0,
    );
    const transport = this.#transport!;
    const counter = (name: string, help: string, read: () => number) =>
      new Counter({
        name,
        help,
        registers: [registry],
        collect() {
          this.reset();
          this.inc(read());
        },
      });
    counter(
      "sipsteer_proxy_sip_received_total",
      "SIP messages received",
      () => transport.stats.received,
    );
    counter("sipsteer_proxy_sip_sent_total", "SIP messages sent", () => transport.stats.sent);
    counter(
      "sipsteer_proxy_sip_parse_errors_total",
      "Messages that did not parse",
      () => transport.stats.parseErrors,
    );
    counter(
      "sipsteer_proxy_refused_destinations_total",
      "Sends refused by allowedDestinations",
      () => transport.stats.refusedDestinations,
    );
    counter(
      "sipsteer_proxy_connections_refused_total",
      "Connections refused by the connection limits",
      () => transport.stats.connectionsRefused,
    );
    const auth = this.#auth;
    if (auth !== undefined) {
      counter(
        "sipsteer_proxy_auth_challenges_total",
        "Digest challenges sent",
        () => auth.stats.challenges,
      );
      counter(
        "sipsteer_proxy_auth_accepted_total",
        "Requests authenticated",
        () => auth.stats.accepted,
      );
      counter(
        "sipsteer_proxy_auth_failures_total",
        "Failed authentications",
        () => auth.stats.failures,
      );
      counter(
        "sipsteer_proxy_auth_slowed_total",
        "Answers delayed for repeated failures",
        () => auth.stats.slowed,
      );
      counter(
        "sipsteer_proxy_auth_refused_total",
        "Requests refused while banned",
        () => auth.stats.refused,
      );
    }
    return registry;
  }
}

/** The load report's `uris`: how clients reach this proxy on each transport. */
function urisOf(listeners: readonly BoundListener[]): LoadReport["uris"] {
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
