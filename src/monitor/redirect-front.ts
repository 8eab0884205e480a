import {
  SipUri,
  TransactionLayer,
  TransportLayer,
  createResponse,
  parseUri,
  randomToken,
  silentLogger,
  systemClock,
  type BoundListener,
  type Clock,
  type ListenerOptions,
  type Logger,
  type ServerTransaction,
  type TransactionOptionsInput,
} from "../sip/index.js";
import type { SelectAnswer, Transport } from "./selector.js";

/** Seconds a client waits before asking again when no proxy is eligible. */
export const SIP_NO_PROXY_RETRY_AFTER_S = 1;

/** Methods the front answers itself; every other one is redirected. */
const ALLOW = "INVITE, ACK, CANCEL, OPTIONS, BYE, REGISTER, SUBSCRIBE, NOTIFY, MESSAGE, REFER";

export interface RedirectFrontOptions {
  /** UDP and/or TCP listeners (port 0: a free port). */
  readonly listen: readonly ListenerOptions[];
  /** CIDR blocks responses may be sent to. */
  readonly allowedDestinations: readonly string[];
  /** The ranking (Selector.select): the first choice is recorded as a send. */
  readonly select: (transport: Transport) => SelectAnswer | undefined;
  /** On-query collection, awaited (bounded by the monitor) before ranking. */
  readonly freshen?: (transport: Transport) => Promise<void>;
  /** No eligible proxy: the front answered 503. */
  readonly onNoProxy?: (transport: Transport) => void;
  /** Transaction timers (tests shorten T1). */
  readonly timers?: TransactionOptionsInput;
  readonly clock?: Clock;
  readonly logger?: Logger;
}

/**
 * The monitor's SIP redirect front (DESIGN.md "Client query", RFC 3261 §8.3 and §21.3.3): a
 * request that opens a transaction is answered `302 Moved Temporarily` with the ranked proxies
 * as Contacts (q-values descending), each keeping the Request-URI's user. Server transactions
 * absorb retransmissions and the ACK for the 302 and retransmit the 302 until ACK over UDP
 * (RFC 3261 §17.2.1).
 */
export class RedirectFront {
  readonly #o: RedirectFrontOptions;
  readonly #log: Logger;
  #transport: TransportLayer | undefined;
  #transactions: TransactionLayer | undefined;

  constructor(options: RedirectFrontOptions) {
    this.#o = options;
    this.#log = (options.logger ?? silentLogger).child({ component: "redirect-front" });
  }

  /** The listeners as bound (after start). */
  get listeners(): readonly BoundListener[] {
    if (this.#transport === undefined) throw new Error("redirect front not started");
    return this.#transport.boundListeners;
  }

  async start(): Promise<void> {
    const clock = this.#o.clock ?? systemClock;
    const transport = new TransportLayer(
      { listen: [...this.#o.listen], allowedDestinations: [...this.#o.allowedDestinations] },
      { clock, logger: this.#log },
    );
    this.#transport = transport;
    await transport.start();
    const transactions = new TransactionLayer({
      transport,
      clock,
      logger: this.#log,
      ...(this.#o.timers === undefined ? {} : { timers: this.#o.timers }),
    });
    this.#transactions = transactions;
    transactions.on("request", this.#onRequest);
    transactions.start();
  }

  async stop(): Promise<void> {
    const transactions = this.#transactions;
    this.#transactions = undefined;
    if (transactions !== undefined) {
      transactions.off("request", this.#onRequest);
      transactions.stop();
    }
    const transport = this.#transport;
    this.#transport = undefined;
    await transport?.stop();
  }

  readonly #onRequest = (tx: ServerTransaction): void => {
    this.#answer(tx).catch((e: unknown) => {
      this.#log.error({ err: e }, "redirect failed");
      this.#reply(tx, 500);
    });
  };

  #reply(tx: ServerTransaction, status: number, headers: [string, string][] = []): void {
    let request;
    try {
      request = tx.request;
    } catch {
      return; // Already answered.
    }
    const response = createResponse(request, status, {
      ...(status > 100 && request.method !== "CANCEL" ? { toTag: randomToken(6) } : {}),
    });
    for (const [name, value] of headers) response.appendHeader(name, value);
    tx.respond(response);
  }

  async #answer(tx: ServerTransaction): Promise<void> {
    const request = tx.request;
    const method = request.method;
    if (method === "CANCEL") {
      // RFC 3261 §9.2: "If the UAS did not find a matching transaction for the CANCEL
      // according to the procedure above, it SHOULD respond to the CANCEL with a 481".
      const invite = this.#transactions?.matchCancel(request);
      this.#reply(tx, invite === undefined ? 481 : 200);
      // "the UAS SHOULD respond to the INVITE with a 487 (Request Terminated)": an INVITE is
      // pending only while on-query collection is awaited; its 302 is then not sent.
      if (invite?.state === "proceeding") this.#reply(invite, 487);
      return;
    }
    if (method === "OPTIONS") {
      this.#reply(tx, 200, [
        ["Allow", ALLOW],
        ["Accept", "application/sdp"],
      ]);
      return;
    }
    // RFC 3261 §16.3 step 3 / §8.2: a request that cannot go further is refused with 483.
    if (request.maxForwards === 0) {
      this.#reply(tx, 483);
      return;
    }
    const transport: Transport = tx.flow.protocol === "udp" ? "udp" : "tcp";
    await this.#o.freshen?.(transport);
    const answer = this.#o.select(transport);
    if (answer === undefined) {
      this.#o.onNoProxy?.(transport);
      this.#reply(tx, 503, [["Retry-After", String(SIP_NO_PROXY_RETRY_AFTER_S)]]);
      return;
    }
    const uri = request.uri;
    const user = uri instanceof SipUri ? uri.user : undefined;
    const ranked = [answer.uri, ...answer.alternates.map((a) => a.uri)];
    const contacts: [string, string][] = [];
    ranked.forEach((proxyUri, i) => {
      const target = parseUri(proxyUri);
      const contact =
        target instanceof SipUri && user !== undefined ? target.with({ user }) : target;
      const q = Math.max(0, 1 - i / 10).toFixed(1);
      contacts.push(["Contact", `<${contact.toString()}>;q=${q}`]);
    });
    this.#log.debug({ callId: request.callId, proxy: answer.proxy }, "redirected");
    this.#reply(tx, 302, contacts);
  }
}
