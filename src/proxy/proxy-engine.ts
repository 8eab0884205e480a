import { readFile } from "node:fs/promises";
import {
  Credentials,
  DestinationPolicy,
  TimerQueue,
  TransactionLayer,
  TransportLayer,
  type TransactionLayerTransport,
  silentLogger,
  systemClock,
  type BoundListener,
  type Clock,
  type FlowInfo,
  type InboundMessage,
  type Logger,
  type NameAddr,
  type SharedTransportHooks,
} from "../sip/index.js";
import { AuthGuard, type AuthStats } from "./auth-guard.js";
import { DialogTracker } from "./dialogs.js";
import { Fleet } from "./fleet.js";
import { RedisLocationStore } from "./location-store/redis-store.js";
import { SqliteLocationStore } from "./location-store/sqlite-store.js";
import type { LocationStore, StoreHealth } from "./location-store/types.js";
import { contactNeedsFlow } from "./nat.js";
import { MediaRelayer } from "./media-relay/media-relayer.js";
import { RelayPool } from "./media-relay/relay-pool.js";
import { ProxyCore } from "./proxy-core/proxy-core.js";
import type { ProxyConfig } from "./proxy-config.js";
import type { Upstream } from "./proxy-core/upstream.js";
import { Registrar } from "./registrar/registrar.js";
import { FlowTokens, Self } from "./self.js";

export interface ProxyEngineDeps {
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Credentials given directly (tests, `sipsteer up`) instead of `auth.credentialsFile`. */
  readonly credentials?: Credentials;
  /** Told whenever the call count may have moved (load reports push on a marked change). */
  readonly onCallsChanged?: () => void;
  /** The workload (0…1) that OPTIONS answers carry in Sipsteer-Load. */
  readonly workload?: () => number;
  /** One process of several on the same listeners (see ProxyCluster). */
  readonly shared?: SharedEngine;
  /**
   * The gateway (src/gateway): no location store or registrar; new registrations and dialogs
   * go to the proxies this names.
   */
  readonly upstream?: Upstream;
  /**
   * Sees every inbound message before the transaction layer; false drops it (the gateway's
   * access rules, which answer refusals themselves).
   */
  readonly admit?: (inbound: InboundMessage) => boolean;
  /** Told the Call-ID of each call that ended. */
  readonly onCallEnded?: (callId: string) => void;
}

/** What a process of a proxy run on several cores adds to its engine. */
export interface SharedEngine {
  readonly transport: SharedTransportHooks;
  /** Marks our branches, so that responses find the process that sent the request. */
  readonly branchTag: string;
  /** The digest nonce key shared by the processes (a nonce one made, another checks). */
  readonly nonceSecret: Buffer;
  /** The other processes' own UDP ports (a Route or Via naming one names this proxy). */
  readonly otherPorts: readonly number[];
}

/** Counters and gauges of one engine, summed across processes by the cluster. */
export interface EngineStats {
  readonly calls: number;
  /** Streams on the media relay. */
  readonly media: number;
  readonly cps: number;
  readonly transactions: number;
  readonly connections: number;
  readonly received: number;
  readonly sent: number;
  readonly parseErrors: number;
  readonly refusedDestinations: number;
  readonly connectionsRefused: number;
  readonly auth: AuthStats | undefined;
}

/**
 * The SIP side of a proxy: transport, transactions, location store, registrar, digest
 * authentication and the proxy core (src/proxy/proxy-core), with dialog accounting. The
 * single-process Proxy and each process of a ProxyCluster run one; load reports and HTTP
 * are theirs, not the engine's.
 */
export class ProxyEngine {
  readonly #config: Readonly<ProxyConfig>;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #deps: ProxyEngineDeps;
  #draining = false;
  #store: LocationStore | undefined;
  #transport: TransportLayer | undefined;
  #transactions: TransactionLayer | undefined;
  #timers: TimerQueue | undefined;
  #dialogs: DialogTracker | undefined;
  #core: ProxyCore | undefined;
  #auth: AuthGuard | undefined;
  #media: MediaRelayer | undefined;

  constructor(config: Readonly<ProxyConfig>, deps: ProxyEngineDeps = {}) {
    this.#config = config;
    this.#clock = deps.clock ?? systemClock;
    this.#log = deps.logger ?? silentLogger;
    this.#deps = deps;
  }

  get listeners(): readonly BoundListener[] {
    return this.#transport?.boundListeners ?? [];
  }

  get transport(): TransportLayer {
    if (this.#transport === undefined) throw new Error("proxy not started");
    return this.#transport;
  }

  /** The location store (the proxy counts registrations in it). */
  get store(): LocationStore {
    if (this.#store === undefined) throw new Error("proxy not started");
    return this.#store;
  }

  get storeHealth(): StoreHealth {
    return this.#store?.health() ?? "down";
  }

  get calls(): number {
    return this.#dialogs?.calls ?? 0;
  }

  get draining(): boolean {
    return this.#draining;
  }

  set draining(on: boolean) {
    this.#draining = on;
  }

  stats(): EngineStats {
    const size = this.#transactions?.size;
    const t = this.#transport?.stats;
    return {
      calls: this.calls,
      media: this.#media?.streams ?? 0,
      cps: this.#dialogs?.cps ?? 0,
      transactions: size === undefined ? 0 : size.client + size.server,
      connections: this.#transport?.flows.length ?? 0,
      received: t?.received ?? 0,
      sent: t?.sent ?? 0,
      parseErrors: t?.parseErrors ?? 0,
      refusedDestinations: t?.refusedDestinations ?? 0,
      connectionsRefused: t?.connectionsRefused ?? 0,
      auth: this.#auth === undefined ? undefined : { ...this.#auth.stats },
    };
  }

  async start(): Promise<void> {
    const c = this.#config;
    const credentials = await this.#credentials();
    const upstream = this.#deps.upstream;
    if (upstream === undefined) {
      this.#store =
        c.store.kind === "sqlite"
          ? new SqliteLocationStore(c.store.file)
          : new RedisLocationStore({ url: c.store.url, prefix: c.store.prefix });
      await this.#store.start();
    }

    const shared = this.#deps.shared;
    this.#transport = new TransportLayer(
      { ...c.transport, listen: c.listen, allowedDestinations: c.allowedDestinations },
      {
        clock: this.#clock,
        logger: this.#log,
        ...(shared === undefined ? {} : { shared: shared.transport }),
      },
    );
    await this.#transport.start();
    const admit = this.#deps.admit;
    this.#transactions = new TransactionLayer({
      transport: admit === undefined ? this.#transport : admitting(this.#transport, admit),
      timers: c.timers,
      clock: this.#clock,
      logger: this.#log,
    });
    this.#timers = new TimerQueue(this.#clock);
    this.#dialogs = new DialogTracker(
      this.#clock,
      c.dialogSafetyTimeoutMs,
      () => this.#deps.onCallsChanged?.(),
      (callId) => this.#deps.onCallEnded?.(callId),
    );

    const listeners = this.#transport.boundListeners;
    const own = this.#transport.ownListeners;
    const pinned = new Map(
      listeners.filter((l) => l.protocol === "udp").map((l, i) => [l, own[i]?.port ?? l.port]),
    );
    const self = new Self(
      c.id,
      c.domains,
      listeners,
      new FlowTokens(c.flowTokenSecret),
      own.length === 0 ? new Map() : pinned,
      shared?.otherPorts ?? [],
    );
    const fleet = new Fleet(c.fleet);
    const now = () => Date.now();
    this.#auth =
      credentials === undefined
        ? undefined
        : new AuthGuard({
            credentials,
            clock: this.#clock,
            log: this.#log,
            ...c.auth,
            ...(shared === undefined ? {} : { nonceSecret: shared.nonceSecret }),
          });
    const registrar =
      this.#store === undefined
        ? undefined
        : new Registrar({
            store: this.#store,
            proxyId: c.id,
            ...c.registrar,
            log: this.#log,
            now,
            pathFor: (flow, contacts) => this.#pathFor(self, flow, contacts),
            servesDomain: (host) => self.servesDomain(host),
            trustsPath: (flow) => fleet.isMemberAddress(flow.remote.address),
          });
    const m = c.media;
    this.#media =
      m.relay === "never"
        ? undefined
        : new MediaRelayer({
            policy: m.relay,
            pool: new RelayPool({
              relays: m.relays,
              monitors: m.monitors,
              timeoutMs: m.timeoutMs,
              holdOffMs: m.holdOffMs,
              allowed: new DestinationPolicy(c.allowedDestinations),
              clock: this.#clock,
              log: this.#log,
            }),
            clock: this.#clock,
            log: this.#log,
            safetyTimeoutMs: c.dialogSafetyTimeoutMs,
            onChange: () => this.#deps.onCallsChanged?.(),
          });
    this.#media?.start();
    const core = new ProxyCore({
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
      workload: () => this.#deps.workload?.() ?? 0,
      branchTag: shared?.branchTag ?? "",
      media: this.#media,
      ...(upstream === undefined
        ? {}
        : {
            upstream,
            pathFor: (flow: FlowInfo, contacts: readonly NameAddr[]) =>
              this.#pathFor(self, flow, contacts),
          }),
    });
    this.#core = core;
    this.#transactions.on("request", (tx) => void core.onRequest(tx));
    this.#transactions.on("ack", (inbound) => void core.onAck(inbound));
    this.#transactions.on("response", (inbound) => void core.onStrayResponse(inbound));
    this.#transactions.start();
    this.#dialogs.start();
  }

  async stop(): Promise<void> {
    this.#dialogs?.stop();
    this.#core?.close();
    this.#timers?.dispose();
    await this.#media?.stop();
    this.#transactions?.stop();
    await this.#transport?.stop();
    await this.#store?.stop();
  }

  async #credentials(): Promise<Credentials | undefined> {
    const auth = this.#config.auth;
    if (!auth.enabled) return undefined;
    if (this.#deps.credentials !== undefined) return this.#deps.credentials;
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
    // Not pinned to this process: a later request for the client may start anywhere.
    if (fleetSide === undefined)
      return self.routeUri(flow.protocol, flow.remote.address, flowId, false);
    return self.routeUri(fleetSide.protocol, fleetSide.address, flowId, false);
  }
}

/**
 * The transport as the transaction layer sees it, with inbound messages `admit` refuses
 * taken out before they make a transaction.
 */
function admitting(
  transport: TransportLayer,
  admit: (inbound: InboundMessage) => boolean,
): TransactionLayerTransport {
  const wrapped = new Map<(m: InboundMessage) => void, (m: InboundMessage) => void>();
  return {
    send: (message, target, options) => transport.send(message, target, options),
    resend: (bytes, flow) => transport.resend(bytes, flow),
    sendResponse: (response, flow) => transport.sendResponse(response, flow),
    sendResponseNow: (response, flow) => transport.sendResponseNow(response, flow),
    on(event, listener) {
      const filtered = (m: InboundMessage) => {
        if (admit(m)) listener(m);
      };
      wrapped.set(listener, filtered);
      return transport.on(event, filtered);
    },
    off(event, listener) {
      const filtered = wrapped.get(listener);
      if (filtered === undefined) return transport;
      wrapped.delete(listener);
      return transport.off(event, filtered);
    },
  };
}
