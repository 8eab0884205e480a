import { ProxyEngine } from "../proxy/proxy-engine.js";
import { Fleet } from "../proxy/fleet.js";
import { waitForCallsToEnd } from "../proxy/proxy-front.js";
import {
  createResponse,
  silentLogger,
  systemClock,
  type BoundListener,
  type Clock,
  type Credentials,
  type InboundMessage,
  type Logger,
  type SipRequest,
  type TransportLayer,
} from "../sip/index.js";
import { AccessControl } from "./access-control.js";
import {
  parseGatewayConfig,
  type GatewayConfig,
  type GatewayConfigInput,
} from "./gateway-config.js";
import { GatewayFront } from "./gateway-front.js";
import type { GatewayStatus } from "./gateway-status.js";
import { GatewayUpstream } from "./gateway-upstream.js";
import { ProxyChooser } from "./proxy-chooser.js";

export interface GatewayDeps {
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Credentials given directly (tests, `sipsteer up`) instead of `auth.credentialsFile`. */
  readonly credentials?: Credentials;
}

/**
 * The gateway role (issue 9, claims 5 and 6): the access-controlled edge in front of clients.
 * Every request from a client passes AccessControl first (refused ones are answered or
 * dropped before they make a transaction), then digest authentication with the gateway's own
 * credentials; new registrations and dialogs go to the least-loaded proxy the monitor names
 * (ProxyChooser), the next one when a proxy times out or answers 503. It is the proxy core
 * (ProxyEngine) with an upstream instead of a location store; Path and Record-Route keep it
 * in every request to and from its clients, and the proxies trust it as a fleet member.
 */
export class Gateway {
  readonly config: Readonly<GatewayConfig>;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #access: AccessControl;
  readonly #chooser: ProxyChooser;
  readonly #upstream: GatewayUpstream;
  readonly #fleet: Fleet;
  readonly #engine: ProxyEngine;
  #front: GatewayFront | undefined;
  #state: "new" | "started" | "stopping" | "stopped" = "new";

  constructor(config: GatewayConfigInput | Readonly<GatewayConfig>, deps: GatewayDeps = {}) {
    this.config = isParsed(config) ? config : parseGatewayConfig(config);
    this.#clock = deps.clock ?? systemClock;
    this.#log = (deps.logger ?? silentLogger).child({ role: "gateway", gateway: this.config.id });
    this.#access = new AccessControl({
      config: this.config.access,
      clock: this.#clock,
      logger: this.#log,
    });
    this.#chooser = new ProxyChooser({
      config: this.config.upstream,
      clock: this.#clock,
      logger: this.#log,
    });
    this.#upstream = new GatewayUpstream(
      this.#chooser,
      this.#access,
      this.config.attemptTimeoutMs,
      this.#log,
    );
    this.#fleet = new Fleet(this.config.sip.fleet);
    this.#engine = new ProxyEngine(this.config.sip, {
      clock: this.#clock,
      logger: this.#log,
      ...(deps.credentials === undefined ? {} : { credentials: deps.credentials }),
      upstream: this.#upstream,
      admit: (inbound) => this.#admit(inbound),
      onCallEnded: (callId) => this.#access.callEnded(callId),
    });
  }

  /** The SIP listeners as bound (after start). */
  get listeners(): readonly BoundListener[] {
    return this.#engine.listeners;
  }

  /** The HTTP side's base URL (after start). */
  get httpUrl(): string {
    if (this.#front === undefined) throw new Error("gateway not started");
    return this.#front.httpUrl;
  }

  get transport(): TransportLayer {
    return this.#engine.transport;
  }

  /** Early and confirmed dialogs through the gateway now. */
  get calls(): number {
    return this.#engine.calls;
  }

  /** The `GET /status` body. */
  status(): GatewayStatus {
    const engine = this.#engine.stats();
    const upstream = this.#chooser.stats();
    return {
      id: this.config.id,
      ready:
        this.#state === "started" &&
        !this.#engine.draining &&
        (upstream.monitors.some((m) => m.up) || this.config.upstream.fallback.length > 0),
      access: this.#access.stats(),
      auth: engine.auth,
      upstream,
      forwarded: this.#upstream.forwarded,
      registrations: upstream.pins,
      dialogs: engine.calls,
      transport: {
        received: engine.received,
        sent: engine.sent,
        parseErrors: engine.parseErrors,
        connections: engine.connections,
      },
    };
  }

  async start(): Promise<void> {
    if (this.#state !== "new") throw new Error("Gateway.start() called twice");
    this.#state = "started";
    try {
      await this.#engine.start();
      this.#front = new GatewayFront({
        id: this.config.id,
        listen: { host: this.config.http.address, port: this.config.http.port },
        status: () => this.status(),
        log: this.#log,
      });
      await this.#front.start();
      this.#log.info({ listeners: this.listeners, http: this.httpUrl }, "gateway started");
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  /** Re-reads TLS and WSS certificates (SIGHUP). */
  async reloadTlsCredentials(): Promise<void> {
    await this.#engine.transport.reloadTlsCredentials();
  }

  /**
   * SIGTERM: new registrations and dialogs get 503, the dialogs under way go on until they
   * end or `timeoutMs` passed; then stops. Resolves with the dialogs still up at the end.
   */
  async drainAndStop(timeoutMs = this.config.drainTimeoutMs): Promise<number> {
    this.#engine.draining = true;
    const left = await waitForCallsToEnd(
      this.#clock,
      timeoutMs,
      () => this.calls,
      () => this.#state === "started",
    );
    await this.stop();
    return left;
  }

  async stop(): Promise<void> {
    if (this.#state === "stopped" || this.#state === "stopping") return;
    this.#state = "stopping";
    await this.#front?.stop();
    await this.#engine.stop();
    await this.#chooser.stop();
    this.#access.dispose();
    this.#state = "stopped";
    this.#log.info("gateway stopped");
  }

  /**
   * The access rules, before anything else: requests from clients that AccessControl refuses
   * are answered here, statelessly, or dropped. Fleet members (the proxies) and responses pass.
   */
  #admit(inbound: InboundMessage): boolean {
    const message = inbound.message;
    if (message.type === "response") return true;
    const remote = inbound.flow.remote;
    if (this.#fleet.isMemberAddress(remote.address)) return true;
    const request = message as SipRequest;
    const verdict = this.#access.check(request, remote);
    if (verdict.admit) return true;
    if (verdict.action === "respond" && request.method !== "ACK") {
      const response = createResponse(request, verdict.status, {
        toTag: `gw${Math.random().toString(36).slice(2, 10)}`,
        reason: verdict.reasonPhrase,
      });
      if (verdict.retryAfterS !== undefined)
        response.appendHeader("Retry-After", String(verdict.retryAfterS));
      this.#engine.transport.sendResponse(response, inbound.flow).catch((e: unknown) => {
        this.#log.debug({ err: e }, "refusal not sent");
      });
    }
    return false;
  }
}

function isParsed(c: GatewayConfigInput | Readonly<GatewayConfig>): c is Readonly<GatewayConfig> {
  return "sip" in c && typeof (c as GatewayConfig).sip === "object";
}
