import { EventEmitter } from "node:events";
import {
  SipRequest,
  SipResponseError,
  TransactionLayer,
  TransportLayer,
  answerChallenge,
  createResponse,
  parseTransactionOptions,
  randomToken,
  readChallenge,
  silentLogger,
  systemClock,
  type Clock,
  type ClockTimer,
  type FlowInfo,
  type InboundMessage,
  type InviteServerTransaction,
  type Logger,
  type SendTarget,
  type ServerTransaction,
  type SipResponse,
  type TransactionOptions,
} from "../sip/index.js";
import { Call, type CallHost, type CallOptions } from "./call.js";
import { withDeadline } from "./deadline.js";
import { Discovery } from "./discovery.js";
import { CallStateError, RegistrationError } from "./errors.js";
import { candidateName, sameProxy, type ProxyCandidate } from "./proxy-candidate.js";
import {
  REFRESH_AT_FRACTION,
  parseUserAgentConfig,
  type UserAgentConfig,
  type UserAgentConfigInput,
} from "./user-agent-config.js";

/** How long stop() waits for the un-REGISTER and each call's BYE. */
const STOP_WAIT_MS = 2_000;
const ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS";

export interface UserAgentDeps {
  /** Refresh and retransmission timers (tests pass a fake clock). */
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Uniform in [0, 1): RFC 2782 weighted order, DNS ids. */
  readonly random?: () => number;
}

export interface UserAgentEvents {
  /** Registered at a proxy (the first time, and after each move). */
  registered: [proxy: ProxyCandidate];
  /** A refresh succeeded at the same proxy. */
  refreshed: [proxy: ProxyCandidate];
  /** Moved from one proxy to another, and why ("REGISTER refresh at p1 got 408 …"). */
  moved: [from: ProxyCandidate, to: ProxyCandidate, reason: string];
  /** A call arrived: answer(), reject() or leave it ringing. */
  incoming: [call: Call];
  /** Something failed that the agent keeps trying to recover from (no proxy reachable …). */
  error: [error: Error];
}

/** A registration binding held at one proxy (RFC 3261 §10.2.4: one Call-ID per registrar). */
interface Registration {
  readonly proxy: ProxyCandidate;
  readonly target: SendTarget;
  readonly callId: string;
  cseq: number;
  /** Seconds the registrar granted. */
  expiresS: number;
  /** The flow the REGISTER went on: a closed TCP flow means the proxy is gone. */
  flowId: string | undefined;
}

/** Whether a REGISTER outcome says "this proxy failed" (move) or "you are refused" (stop). */
type RegisterOutcome =
  | { readonly ok: true; readonly expiresS: number; readonly flowId: string | undefined }
  | {
      readonly ok: false;
      readonly proxyFailed: boolean;
      readonly status: number;
      readonly why: string;
    };

/** The registrar's grant for our Contact (§10.2.4: its expires param, else Expires). */
function grantedExpires(response: SipResponse, contact: string, asked: number): number {
  for (const c of response.contacts) {
    if (c.uri.toString() === contact && c.expires !== undefined) return c.expires;
  }
  return response.expires ?? asked;
}

/**
 * The SDK's user agent (issue 6): it asks the monitors where to go, registers there with
 * digest auth, refreshes before expiry, moves to another proxy when its own fails (a timeout,
 * 503, a closed flow) — and with `rebalance` at a refresh when another is markedly less
 * loaded — and places and receives calls through it. It owns its transport and transaction
 * layers: start() opens them, stop() un-registers, ends calls and closes everything.
 */
export class UserAgent extends EventEmitter<UserAgentEvents> {
  readonly config: Readonly<UserAgentConfig>;
  readonly transport: TransportLayer;
  readonly transactions: TransactionLayer;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #random: () => number;
  readonly #timers: Readonly<TransactionOptions>;
  readonly #discovery: Discovery;
  readonly #calls = new Set<Call>();
  readonly #host: CallHost;
  #registration: Registration | undefined;
  #refresh: ClockTimer | undefined;
  /** Registration work runs one piece at a time (register, refresh, failover, stop). */
  #queue: Promise<unknown> = Promise.resolve();
  #state: "new" | "started" | "stopping" | "stopped" = "new";

  constructor(config: UserAgentConfigInput, deps: UserAgentDeps = {}) {
    super();
    this.config = parseUserAgentConfig(config);
    this.#clock = deps.clock ?? systemClock;
    this.#log = (deps.logger ?? silentLogger).child({
      component: "user-agent",
      user: this.config.user,
    });
    this.#random = deps.random ?? Math.random;
    this.#timers = parseTransactionOptions(this.config.timers);
    const c = this.config;
    this.transport = new TransportLayer(
      {
        listen: [{ protocol: c.transport, address: c.address, port: c.port }],
        allowedDestinations: [...c.allowedDestinations],
      },
      { clock: this.#clock, logger: this.#log },
    );
    this.transactions = new TransactionLayer({
      transport: this.transport,
      timers: this.#timers,
      clock: this.#clock,
      logger: this.#log,
    });
    this.#discovery = new Discovery(
      {
        monitors: c.monitors,
        transport: c.transport,
        timeoutMs: c.discoveryTimeoutMs,
        sip: { transactions: this.transactions, user: c.user, domain: c.domain },
      },
      { clock: this.#clock, logger: this.#log, random: this.#random },
    );
    this.#host = {
      transactions: this.transactions,
      transport: this.transport,
      clock: this.#clock,
      log: this.#log,
      t1Ms: this.#timers.t1Ms,
      t2Ms: this.#timers.t2Ms,
      user: c.user,
      password: c.password,
      domain: c.domain,
      userAgentName: c.userAgentName,
      protocol: c.transport,
      contact: () => this.contactUri,
      proxy: () => this.#proxyTarget(),
      failover: (reason) =>
        this.#enqueue(() => this.#failover(reason)).then(() => this.#proxyTarget()),
      forget: (call) => this.#calls.delete(call),
    };
  }

  /** The proxy we are registered at. */
  get proxy(): ProxyCandidate | undefined {
    return this.#registration?.proxy;
  }

  /** Calls not yet ended. */
  get calls(): readonly Call[] {
    return [...this.#calls];
  }

  /** Our Contact URI (after start). */
  get contactUri(): string {
    const l = this.transport.boundListeners[0];
    if (l === undefined) throw new Error("UserAgent not started");
    const param = l.protocol === "udp" ? "" : `;transport=${l.protocol}`;
    const host = l.advertise.includes(":") ? `[${l.advertise}]` : l.advertise;
    return `sip:${this.config.user}@${host}:${l.port}${param}`;
  }

  /** Our address of record. */
  get aor(): string {
    return `sip:${this.config.user}@${this.config.domain}`;
  }

  async start(): Promise<void> {
    if (this.#state !== "new") throw new Error("UserAgent.start() called twice");
    this.#state = "started";
    await this.transport.start();
    this.transactions.start();
    this.transactions.on("request", this.#onRequest);
    this.transactions.on("ack", this.#onAck);
    this.transport.on("flowClosed", this.#onFlowClosed);
    this.#log.info({ contact: this.contactUri }, "user agent started");
  }

  /** Ends calls (BYE/CANCEL), un-registers (bounded waits), closes sockets and timers. */
  async stop(): Promise<void> {
    if (this.#state !== "started") {
      this.#state = "stopped";
      return;
    }
    this.#state = "stopping";
    this.#clearRefresh();
    await Promise.allSettled(
      [...this.#calls].map((call) =>
        withDeadline(call.shutdown(), STOP_WAIT_MS, this.#clock, () => new Error("BYE timed out")),
      ),
    );
    await this.#queue.catch(() => undefined);
    const registration = this.#registration;
    if (registration !== undefined) {
      await withDeadline(
        this.#sendRegister(registration, 0),
        STOP_WAIT_MS,
        this.#clock,
        () => new Error("un-REGISTER timed out"),
      ).catch((e: unknown) => this.#log.debug({ err: e }, "un-REGISTER failed"));
      this.#registration = undefined;
    }
    this.transport.off("flowClosed", this.#onFlowClosed);
    this.transactions.off("request", this.#onRequest);
    this.transactions.off("ack", this.#onAck);
    this.transactions.stop();
    await this.transport.stop();
    this.#state = "stopped";
    this.#log.info("user agent stopped");
  }

  /**
   * Asks the monitors, registers at the first proxy that takes us (the next on a timeout,
   * 503 or transport failure) and keeps the registration refreshed. Rejects with
   * DiscoveryError (no monitor answered) or RegistrationError (no proxy took us, or one
   * refused us: 403, a wrong password).
   */
  register(): Promise<ProxyCandidate> {
    this.#assertStarted();
    return this.#enqueue(async () => {
      const { proxy } = await this.#registerSomewhere(undefined);
      this.emit("registered", proxy);
      return proxy;
    });
  }

  /**
   * Places a call to `target` through our proxy: a user name (`bob` → sip:bob@domain) or a
   * full SIP URI, taken as is. The call is under way when this returns; await
   * `call.whenAnswered()` or listen to its events.
   */
  call(target: string, options: CallOptions = {}): Call {
    this.#assertStarted();
    if (this.#registration === undefined) throw new CallStateError("register() before calling");
    const uri = /^sips?:/i.test(target) ? target : `sip:${target}@${this.config.domain}`;
    const call = new Call(this.#host, { direction: "outgoing", target: uri, options });
    this.#calls.add(call);
    void call.place(options.headers);
    return call;
  }

  // ---- registration ----------------------------------------------------------------------

  #assertStarted(): void {
    if (this.#state !== "started") throw new Error("UserAgent is not started");
  }

  #enqueue<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(work, work);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  #proxyTarget(): { target: SendTarget; name: string } | undefined {
    const r = this.#registration;
    return r === undefined ? undefined : { target: r.target, name: candidateName(r.proxy) };
  }

  /**
   * Discovers, then registers at the candidates in order; `avoid` (a proxy that just failed)
   * is tried last. Sets the registration and its refresh timer.
   */
  async #registerSomewhere(
    avoid: ProxyCandidate | undefined,
    known?: readonly ProxyCandidate[],
  ): Promise<{ proxy: ProxyCandidate; monitor: string | undefined }> {
    let candidates: readonly ProxyCandidate[];
    let monitor: string | undefined;
    if (known !== undefined) {
      candidates = known;
    } else {
      const found = await this.#discovery.discover();
      candidates = found.candidates;
      monitor = found.monitor;
    }
    const ordered =
      avoid === undefined
        ? candidates
        : [
            ...candidates.filter((c) => !sameProxy(c, avoid)),
            ...candidates.filter((c) => sameProxy(c, avoid)),
          ];
    const failures: string[] = [];
    let last: { status: number; proxy: string } | undefined;
    for (const proxy of ordered) {
      const registration: Registration = {
        proxy,
        target: { protocol: proxy.transport, address: proxy.host, port: proxy.port },
        callId: `${randomToken(16)}@sipsteer-client`,
        cseq: 0,
        expiresS: this.config.registerExpiresS,
        flowId: undefined,
      };
      const outcome = await this.#sendRegister(registration, this.config.registerExpiresS);
      if (outcome.ok) {
        registration.expiresS = outcome.expiresS;
        registration.flowId = outcome.flowId;
        this.#registration = registration;
        this.#scheduleRefresh(outcome.expiresS);
        this.#log.info(
          { proxy: candidateName(proxy), uri: proxy.uri, expires: outcome.expiresS, monitor },
          "registered",
        );
        return { proxy, monitor };
      }
      last = { status: outcome.status, proxy: proxy.uri };
      failures.push(`${candidateName(proxy)}: ${outcome.why}`);
      if (!outcome.proxyFailed) {
        throw new RegistrationError(`REGISTER at ${candidateName(proxy)} refused: ${outcome.why}`, {
          status: outcome.status,
          proxy: proxy.uri,
        });
      }
      this.#log.warn(
        { proxy: candidateName(proxy), why: outcome.why },
        "REGISTER failed; next proxy",
      );
    }
    throw new RegistrationError(`no proxy took the REGISTER (${failures.join("; ")})`, {
      ...(last === undefined ? {} : { status: last.status, proxy: last.proxy }),
    });
  }

  /** One REGISTER (answering one digest challenge, and 423 once) for `expiresS` seconds. */
  async #sendRegister(registration: Registration, expiresS: number): Promise<RegisterOutcome> {
    const contact = this.contactUri;
    const domainUri = `sip:${this.config.domain}`;
    let authorization: [string, string] | undefined;
    let asked = expiresS;
    let challenged = false;
    let briefed = false;
    for (;;) {
      registration.cseq++;
      const request = new SipRequest({
        method: "REGISTER",
        uri: domainUri,
        headers: [
          ["Max-Forwards", "70"],
          ["From", `<${this.aor}>;tag=${randomToken(8)}`],
          ["To", `<${this.aor}>`],
          ["Call-ID", registration.callId],
          ["CSeq", `${registration.cseq} REGISTER`],
          ["Contact", `<${contact}>`],
          ["Expires", String(asked)],
          ["User-Agent", this.config.userAgentName],
          ...(authorization === undefined ? [] : [authorization]),
          ["Content-Length", "0"],
        ],
      });
      let response: SipResponse;
      let flowId: string | undefined;
      try {
        const tx = this.transactions.sendRequest(request, registration.target);
        response = await tx.final;
        flowId = this.#flowOf(registration.target);
      } catch (e) {
        const status = e instanceof SipResponseError ? e.status : 503;
        const why = status === 408 ? "no answer (408 timeout)" : `transport failure (${String(e)})`;
        return { ok: false, proxyFailed: true, status, why };
      }
      const status = response.status;
      if (status >= 200 && status < 300) {
        return { ok: true, expiresS: grantedExpires(response, contact, asked), flowId };
      }
      if ((status === 401 || status === 407) && !challenged) {
        challenged = true;
        authorization = this.#authorize(response, "REGISTER", domainUri);
        if (authorization !== undefined) continue;
      }
      if (status === 423 && !briefed) {
        // §10.2.8: "the UA MAY retry … with an expiration interval … not less than" Min-Expires.
        briefed = true;
        const min = Number(response.getHeader("min-expires"));
        if (Number.isInteger(min) && min > 0) {
          asked = min;
          continue;
        }
      }
      const why = `${status} ${response.reason}`;
      return { ok: false, proxyFailed: status === 408 || status >= 500, status, why };
    }
  }

  /** The open connection to `target`, if the transport is a connection one. */
  #flowOf(target: SendTarget): string | undefined {
    if (target.protocol === "udp") return undefined;
    return this.transport.flows.find(
      (f) =>
        f.protocol === target.protocol &&
        f.remote.address === target.address &&
        f.remote.port === target.port,
    )?.id;
  }

  #authorize(response: SipResponse, method: string, uri: string): [string, string] | undefined {
    const proxy = response.status === 407;
    for (const header of proxy ? response.proxyAuthenticates : response.wwwAuthenticates) {
      const challenge = readChallenge(header);
      if (challenge === undefined) continue;
      const value = answerChallenge(
        challenge,
        { method, uri },
        { user: this.config.user, password: this.config.password },
      );
      return [proxy ? "Proxy-Authorization" : "Authorization", value];
    }
    return undefined;
  }

  #scheduleRefresh(expiresS: number): void {
    this.#clearRefresh();
    if (this.#state !== "started") return;
    const ms = Math.max(1, Math.floor(expiresS * 1000 * REFRESH_AT_FRACTION));
    this.#refresh = this.#clock.setTimeout(() => {
      this.#refresh = undefined;
      void this.#enqueue(() => this.#onRefresh()).catch((e: unknown) => this.#report(e));
    }, ms);
  }

  #clearRefresh(): void {
    if (this.#refresh !== undefined) this.#clock.clearTimeout(this.#refresh);
    this.#refresh = undefined;
  }

  /** The refresh timer fired: rebalance when asked to, else refresh where we are. */
  async #onRefresh(): Promise<void> {
    const registration = this.#registration;
    if (registration === undefined || this.#state !== "started") return;
    if (this.config.rebalance && (await this.#rebalance(registration))) return;
    const outcome = await this.#sendRegister(registration, this.config.registerExpiresS);
    if (outcome.ok) {
      registration.expiresS = outcome.expiresS;
      registration.flowId = outcome.flowId;
      this.#scheduleRefresh(outcome.expiresS);
      this.emit("refreshed", registration.proxy);
      return;
    }
    await this.#failover(
      `REGISTER refresh at ${candidateName(registration.proxy)}: ${outcome.why}`,
    );
  }

  /**
   * Rebalancing (DESIGN.md): asks the monitor again and moves when the proxy it ranks first
   * is markedly less loaded than ours — by `rebalanceThreshold` when the answer carries
   * workloads (HTTP), or when ours is no longer in the answer at all (DNS and SIP carry no
   * workloads). True when we moved.
   */
  async #rebalance(registration: Registration): Promise<boolean> {
    let candidates: readonly ProxyCandidate[];
    try {
      candidates = (await this.#discovery.discover()).candidates;
    } catch (e) {
      this.#log.warn({ err: e }, "rebalance: no monitor answered; staying");
      return false;
    }
    const best = candidates[0]!;
    if (sameProxy(best, registration.proxy)) return false;
    const ours = candidates.find((c) => sameProxy(c, registration.proxy));
    let reason: string;
    if (ours === undefined) {
      reason = `rebalance: ${candidateName(registration.proxy)} is no longer among the monitor's proxies`;
    } else if (ours.workload !== undefined && best.workload !== undefined) {
      const gap = ours.workload - best.workload;
      if (gap < this.config.rebalanceThreshold) return false;
      reason =
        `rebalance: ${candidateName(best)} at workload ${best.workload} is markedly below ` +
        `${candidateName(ours)} at ${ours.workload} (threshold ${this.config.rebalanceThreshold})`;
    } else {
      return false;
    }
    const others = candidates.filter((c) => !sameProxy(c, registration.proxy));
    try {
      const { proxy } = await this.#registerSomewhere(undefined, others);
      await this.#unregisterAt(registration);
      this.#log.info({ from: candidateName(registration.proxy), to: candidateName(proxy) }, reason);
      this.emit("moved", registration.proxy, proxy, reason);
      return true;
    } catch (e) {
      this.#registration = registration;
      this.#log.warn({ err: e }, "rebalance: could not register elsewhere; staying");
      return false;
    }
  }

  /** Removes our binding at a proxy we leave (best effort, bounded). */
  async #unregisterAt(registration: Registration): Promise<void> {
    await withDeadline(
      this.#sendRegister(registration, 0),
      STOP_WAIT_MS,
      this.#clock,
      () => new Error("un-REGISTER timed out"),
    ).catch((e: unknown) => this.#log.debug({ err: e }, "un-REGISTER at the old proxy failed"));
  }

  /**
   * Our proxy failed (`reason`): ask again and register elsewhere (the failed proxy last),
   * then say so (`moved`). When nothing can be reached, `error` is emitted and the agent
   * tries again after `retryAfterFailureMs`.
   */
  async #failover(reason: string, lost?: ProxyCandidate): Promise<void> {
    // On a retry after a failed move the registration is gone; `lost` is where it was.
    const from = this.#registration?.proxy ?? lost;
    if (this.#state !== "started") return;
    this.#clearRefresh();
    this.#log.warn(
      { proxy: from === undefined ? undefined : candidateName(from), reason },
      "proxy failed; moving",
    );
    try {
      const { proxy } = await this.#registerSomewhere(from);
      if (from === undefined) this.emit("registered", proxy);
      else if (sameProxy(from, proxy)) this.emit("refreshed", proxy);
      else this.emit("moved", from, proxy, reason);
    } catch (e) {
      this.#registration = undefined;
      this.#report(e);
      if (this.#state !== "started") return;
      this.#refresh = this.#clock.setTimeout(() => {
        this.#refresh = undefined;
        void this.#enqueue(() => this.#failover(`retry after: ${reason}`, from)).catch(
          (err: unknown) => this.#report(err),
        );
      }, this.config.retryAfterFailureMs);
    }
  }

  #report(e: unknown): void {
    const error = e instanceof Error ? e : new Error(String(e));
    this.#log.warn({ err: error }, "registration problem");
    // An EventEmitter throws an unheard "error": the agent goes on regardless.
    if (this.listenerCount("error") > 0) this.emit("error", error);
  }

  readonly #onFlowClosed = (flow: FlowInfo): void => {
    const registration = this.#registration;
    if (registration?.flowId === undefined || registration.flowId !== flow.id) return;
    if (this.#state !== "started") return;
    void this.#enqueue(() =>
      this.#registration === registration
        ? this.#failover(`the connection to ${candidateName(registration.proxy)} closed`)
        : Promise.resolve(),
    ).catch((e: unknown) => this.#report(e));
  };

  // ---- requests from the network ---------------------------------------------------------

  #callFor(request: SipRequest): Call | undefined {
    for (const call of this.#calls) {
      if (call.callId !== request.callId) continue;
      const dialog = call.dialog;
      if (dialog === undefined || dialog.matches(request)) return call;
    }
    return undefined;
  }

  readonly #onRequest = (tx: ServerTransaction): void => {
    const request = tx.request;
    try {
      switch (request.method) {
        case "INVITE":
          this.#onInvite(tx as InviteServerTransaction, request);
          return;
        case "BYE": {
          const call = this.#callFor(request);
          if (call === undefined) tx.respond(createResponse(request, 481));
          else call.receiveBye(tx, request);
          return;
        }
        case "CANCEL":
          // §9.2: the INVITE's transaction heard it (Call.ring's onCancel answers 487).
          tx.respond(
            createResponse(
              request,
              this.transactions.matchCancel(request) === undefined ? 481 : 200,
            ),
          );
          return;
        case "OPTIONS": {
          const ok = createResponse(request, 200);
          ok.appendHeader("Allow", ALLOW);
          ok.appendHeader("Accept", "application/sdp");
          tx.respond(ok);
          return;
        }
        default: {
          const refused = createResponse(request, 405);
          refused.appendHeader("Allow", ALLOW);
          tx.respond(refused);
        }
      }
    } catch (e) {
      this.#log.error({ err: e, method: request.method }, "request handling failed");
    }
  };

  #onInvite(tx: InviteServerTransaction, request: SipRequest): void {
    if (request.to.tag !== undefined) {
      // TODO: re-INVITEs (session refresh, hold) are not taken yet; the dialog goes on.
      const known = this.#callFor(request) !== undefined;
      tx.respond(createResponse(request, known ? 488 : 481));
      return;
    }
    if (request.from.tag === undefined || request.contacts[0] === undefined) {
      // §12.1.1 needs both to make the dialog: without them there is no call to answer.
      tx.respond(
        createResponse(request, 400, {
          reason: "Missing From tag or Contact",
          toTag: randomToken(8),
        }),
      );
      return;
    }
    if (this.#state !== "started" || this.listenerCount("incoming") === 0) {
      tx.respond(createResponse(request, 480, { toTag: randomToken(8) }));
      return;
    }
    const call = new Call(this.#host, { direction: "incoming", tx, request });
    this.#calls.add(call);
    call.ring();
    this.emit("incoming", call);
  }

  readonly #onAck = ({ message }: InboundMessage): void => {
    if (message.type !== "request") return;
    this.#callFor(message)?.receiveAck(message);
  };
}
