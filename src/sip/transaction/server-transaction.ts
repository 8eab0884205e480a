import type { SipRequest, SipResponse } from "../message/index.js";
import type { SentMessage } from "../transport/transport-layer.js";
import type { FlowInfo } from "../transport/types.js";
import { Transaction, type TransactionState } from "./transaction.js";
import type { TransactionContext } from "./transaction-context.js";

/**
 * What the two server transactions share: the request and the flow it came on, and sending
 * responses where RFC 3261 §18.2.2 says (keeping the bytes for retransmission).
 */
export abstract class ServerTransaction extends Transaction {
  /** The last response sent, for retransmission. */
  protected lastSent: SentMessage | undefined;
  /** The send in progress, so that the next one waits for it (order kept over a connect). */
  #sending: Promise<void> | undefined;

  #request: SipRequest | undefined;
  /** The request's method ("INVITE", "OPTIONS" …). */
  readonly method: string;

  protected constructor(
    protected readonly ctx: TransactionContext,
    request: SipRequest,
    readonly flow: FlowInfo,
    key: string,
    initial: TransactionState,
    moves: Readonly<Partial<Record<TransactionState, readonly TransactionState[]>>>,
  ) {
    super(key, initial, moves, ctx.registry);
    this.#request = request;
    this.method = request.method;
  }

  /**
   * The request that made the transaction. It is let go once the final response is sent:
   * over UDP the transaction lives on for 64*T1 to answer retransmissions, and holding every
   * request that long would cost far more memory than the response bytes it needs. A TU that
   * wants the request later keeps its own reference.
   */
  get request(): SipRequest {
    if (this.#request === undefined) {
      throw new Error(`transaction ${this.key}: the request is released after the final response`);
    }
    return this.#request;
  }

  /** Drops the request (see `request`); the transaction keeps only its response bytes. */
  protected releaseRequest(): void {
    this.#request = undefined;
  }

  /**
   * The TU's response. It is sent (asynchronously when a connection must be opened); a
   * transport failure ends the transaction with reason "transport-error".
   */
  abstract respond(response: SipResponse): void;

  /** A retransmission of the request (or, for INVITE, its ACK) matched this transaction. */
  abstract receiveRequest(request: SipRequest): void;

  protected get unreliable(): boolean {
    return !this.flow.reliable;
  }

  /**
   * Sends at once when the flow is open (the common case, no promise made), else after a
   * connection is opened, keeping the order of responses. A final response over a reliable
   * transport terminates the transaction at once; its send still goes out.
   */
  protected send(response: SipResponse): void {
    if (this.#sending === undefined) {
      try {
        const sent = this.ctx.transport.sendResponseNow(response, this.flow);
        if (sent !== undefined) {
          this.#keep(sent);
          return;
        }
      } catch (e) {
        this.#failed(e);
        return;
      }
    }
    const start = (): Promise<void> =>
      this.ctx.transport.sendResponse(response, this.flow).then(
        (sent) => this.#keep(sent),
        (e: unknown) => this.#failed(e),
      );
    const sending = this.#sending === undefined ? start() : this.#sending.then(start);
    this.#sending = sending;
    void sending.then(() => {
      if (this.#sending === sending) this.#sending = undefined;
    });
  }

  /**
   * Keeps what was sent for retransmission, except in Accepted (RFC 6026), where 2xx
   * retransmissions are the TU's and the transaction only absorbs the INVITE's: holding the
   * bytes for 64*T1 would only cost memory.
   */
  #keep(sent: SentMessage): void {
    this.lastSent = this.state === "accepted" ? undefined : sent;
  }

  #failed(e: unknown): void {
    this.ctx.log.debug({ err: e, key: this.key }, "response could not be sent");
    this.terminate("transport-error");
  }

  /** Sends the last response again (a retransmitted request asked for it). */
  protected resendLast(): void {
    const sent = this.lastSent;
    if (sent === undefined) return;
    try {
      this.ctx.transport.resend(sent.bytes, sent.flow);
    } catch (e) {
      this.ctx.log.debug({ err: e, key: this.key }, "response resend failed");
      this.terminate("transport-error");
    }
  }

  /** Ends the transaction when its layer stops. */
  abort(): void {
    this.terminate("stopped");
  }
}
