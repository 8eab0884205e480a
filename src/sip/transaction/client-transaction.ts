import { SipResponseError } from "../errors.js";
import { reasonPhrase, type SipRequest, type SipResponse } from "../message/index.js";
import type { SentMessage } from "../transport/transport-layer.js";
import type { SendTarget } from "../transport/types.js";
import { Transaction, type TransactionState } from "./transaction.js";

const EMPTY = Buffer.alloc(0);
import type { TransactionContext } from "./transaction-context.js";

export interface ClientTransactionOptions {
  /**
   * Called for every response the transaction passes up, in order: provisionals, the
   * final, and (INVITE) later 2xx from forks or retransmissions (RFC 6026 Accepted).
   */
  readonly onResponse?: (response: SipResponse) => void;
  /** Keep the request's own top Via (a CANCEL must reuse its INVITE's branch, §9.1). */
  readonly keepVia?: boolean;
  /** Called when no final response came: 408 (timeout) or 503 (transport failure). */
  readonly onFailure?: (status: 408 | 503) => void;
  /**
   * False: no `final` promise. A proxy learns everything through onResponse and onFailure,
   * and a settled promise would hold the final response for the transaction's 64*T1.
   */
  readonly finalPromise?: boolean;
}

/**
 * What the two client transactions share: sending the request, the `final` promise (the
 * first final response; 408 on timeout, 503 on a transport failure, RFC 3261 §8.1.3.1), and
 * retransmission of the request's bytes.
 */
export abstract class ClientTransaction extends Transaction {
  /** Where the request went (its flow), once sent. */
  protected sent: SentMessage | undefined;
  #final: Promise<SipResponse> | undefined;
  #request: SipRequest | undefined;
  #resolve: ((response: SipResponse) => void) | undefined;
  #reject: ((error: SipResponseError) => void) | undefined;
  #settled = false;

  protected constructor(
    protected readonly ctx: TransactionContext,
    request: SipRequest,
    readonly target: SendTarget,
    readonly branch: string,
    key: string,
    initial: TransactionState,
    moves: Readonly<Partial<Record<TransactionState, readonly TransactionState[]>>>,
    protected readonly options: ClientTransactionOptions,
  ) {
    super(key, initial, moves, ctx.registry);
    this.#request = request;
    if (options.finalPromise !== false) {
      this.#final = new Promise<SipResponse>((resolve, reject) => {
        this.#resolve = resolve;
        this.#reject = reject;
      });
      // A TU that does not await `final` must not bring the process down on a timeout.
      this.#final.catch(() => undefined);
    }
  }

  /** The first final response (or 408/503 as a SipResponseError). */
  get final(): Promise<SipResponse> {
    if (this.#final === undefined) {
      throw new Error(`transaction ${this.key}: made without a final promise`);
    }
    return this.#final;
  }

  /**
   * The request being sent. It is let go once a final response has come: over UDP the
   * transaction lives on for 64*T1 to absorb retransmissions, and holding every request that
   * long would cost far more memory than the transaction itself.
   */
  get request(): SipRequest {
    if (this.#request === undefined) {
      throw new Error(`transaction ${this.key}: the request is released after the final response`);
    }
    return this.#request;
  }

  /** Lets the request and its bytes go (a final response came; nothing to resend). */
  protected release(): void {
    this.#request = undefined;
    if (this.sent !== undefined) this.sent = { flow: this.sent.flow, bytes: EMPTY };
  }

  /** True when retransmission timers run (unreliable transport, RFC 3261 §17.1.1.2). */
  protected get unreliable(): boolean {
    return (this.sent?.flow.reliable ?? this.target.protocol !== "udp") === false;
  }

  /** Sends the request; the layer registered the transaction before, so replies match. */
  async start(): Promise<void> {
    this.onStarting();
    try {
      this.sent = await this.ctx.transport.send(
        this.request,
        this.target,
        this.options.keepVia === true ? {} : { viaBranch: this.branch },
      );
    } catch (e) {
      this.ctx.log.debug({ err: e, key: this.key }, "request could not be sent");
      this.fail(503, e);
      return;
    }
    if (!this.terminated) this.onSent();
  }

  /** Arms the timers that run whatever the transport (B, F). */
  protected abstract onStarting(): void;
  /** Arms the retransmission timers once the transport is known (A, E). */
  protected abstract onSent(): void;

  /** A response whose branch and CSeq method match this transaction (RFC 3261 §17.1.3). */
  abstract receiveResponse(response: SipResponse): void;

  protected passUp(response: SipResponse): void {
    this.options.onResponse?.(response);
  }

  protected settle(response: SipResponse): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#resolve?.(response);
  }

  /** Timeout (408) or transport failure (503): the TU learns it as RFC 3261 says. */
  protected fail(status: 408 | 503, cause?: unknown): void {
    if (!this.#settled) {
      this.#settled = true;
      this.#reject?.(new SipResponseError(status, reasonPhrase(status), { cause }));
      this.options.onFailure?.(status);
    }
    this.terminate(status === 408 ? "timeout" : "transport-error");
  }

  protected retransmit(): void {
    if (this.sent === undefined) return;
    try {
      this.ctx.transport.resend(this.sent.bytes, this.sent.flow);
    } catch (e) {
      this.fail(503, e);
    }
  }

  /** Ends the transaction when its layer stops. */
  abort(): void {
    if (!this.#settled) {
      this.#settled = true;
      this.#reject?.(new SipResponseError(503, "Service Unavailable"));
      this.options.onFailure?.(503);
    }
    this.terminate("stopped");
  }
}
