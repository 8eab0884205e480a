import {
  TransactionLayer,
  TransportLayer,
  createResponse,
  type Clock,
  type InviteServerTransaction,
  type ListenerOptions,
  type Logger,
  type ServerTransaction,
  type TerminationReason,
  type TransactionOptionsInput,
} from "../../src/sip/index.js";

export interface SmallUasOptions {
  readonly listen: ListenerOptions[];
  readonly allowedDestinations?: string[];
  /** How to answer an INVITE: a final status (486 …) or 200 after a 180. */
  readonly inviteStatus?: number;
  readonly timers?: TransactionOptionsInput;
  readonly clock?: Clock;
  readonly logger?: Logger;
}

/**
 * A small user agent server on the SIP stack (transport + transaction layers): 200 to
 * OPTIONS, REGISTER (echoing the Contacts), BYE and the like; INVITE per `inviteStatus`;
 * CANCEL terminates the INVITE with 487. What the SIPp tests and bench:udp talk to.
 */
export class SmallUas {
  readonly transport: TransportLayer;
  readonly transactions: TransactionLayer;
  readonly answered = new Map<string, number>();
  readonly terminations: TerminationReason[] = [];
  readonly #inviteStatus: number;

  constructor(options: SmallUasOptions) {
    this.transport = new TransportLayer(
      {
        listen: options.listen,
        allowedDestinations: options.allowedDestinations ?? ["127.0.0.0/8", "::1/128"],
      },
      { clock: options.clock, logger: options.logger },
    );
    this.transactions = new TransactionLayer({
      transport: this.transport,
      timers: options.timers,
      clock: options.clock,
      logger: options.logger,
    });
    this.#inviteStatus = options.inviteStatus ?? 486;
    this.transactions.on("request", (tx) => this.#answer(tx));
  }

  async start(): Promise<void> {
    await this.transport.start();
    this.transactions.start();
  }

  async stop(): Promise<void> {
    this.transactions.stop();
    await this.transport.stop();
  }

  port(protocol: ListenerOptions["protocol"] = "udp"): number {
    return this.transport.boundListeners.find((l) => l.protocol === protocol)!.port;
  }

  /** Records how the transaction ended (in its own closure: it must not hold the request). */
  #watch(tx: ServerTransaction): void {
    const hook = tx.onTerminated;
    tx.onTerminated = (reason) => {
      this.terminations.push(reason);
      hook?.(reason);
    };
  }

  #answer(tx: ServerTransaction): void {
    const method = tx.method;
    this.answered.set(method, (this.answered.get(method) ?? 0) + 1);
    this.#watch(tx);
    const toTag = `uas${this.answered.get(method)}`;
    const request = tx.request;
    if (method === "INVITE") {
      const invite = tx as InviteServerTransaction;
      // Called only while the INVITE waits for its final response.
      invite.onCancel = () => invite.respond(createResponse(invite.request, 487, { toTag }));
      if (this.#inviteStatus === 200) {
        tx.respond(createResponse(request, 180, { toTag }));
        const ok = createResponse(request, 200, { toTag });
        ok.appendHeader("Contact", `<sip:uas@${tx.flow.local.address}:${tx.flow.local.port}>`);
        tx.respond(ok);
      } else if (this.#inviteStatus > 0) {
        tx.respond(createResponse(request, this.#inviteStatus, { toTag }));
      }
      return;
    }
    const response = createResponse(tx.request, 200, { toTag });
    if (method === "REGISTER") {
      for (const contact of tx.request.getHeaders("contact"))
        response.appendHeader("Contact", contact);
    }
    tx.respond(response);
  }
}
