import type { SipRequest, SipResponse } from "../message/index.js";
import type { SendTarget } from "../transport/types.js";
import { ackForNon2xx } from "./ack-cancel.js";
import { ClientTransaction, type ClientTransactionOptions } from "./client-transaction.js";
import type { TransactionContext } from "./transaction-context.js";
import { TIMER_D_MS } from "./transaction-timers.js";

const MOVES = {
  calling: ["proceeding", "completed", "accepted", "terminated"],
  proceeding: ["completed", "accepted", "terminated"],
  completed: ["terminated"],
  accepted: ["terminated"],
} as const;

/**
 * RFC 3261 §17.1.1 with RFC 6026: the INVITE client transaction (Calling, Proceeding,
 * Completed, Accepted). It ACKs non-2xx finals itself; 2xx go up to the TU, which ACKs them.
 */
export class InviteClientTransaction extends ClientTransaction {
  #intervalA = 0;
  #ackBytes: Buffer | undefined;
  #cancel: { reason: string | undefined } | undefined;
  #cancelSent = false;

  constructor(
    ctx: TransactionContext,
    request: SipRequest,
    target: SendTarget,
    branch: string,
    key: string,
    options: ClientTransactionOptions,
  ) {
    super(ctx, request, target, branch, key, "calling", MOVES, options);
  }

  protected onStarting(): void {
    // "the client transaction MUST start timer B with a value of 64*T1 seconds"
    this.startTimer("B", this.ctx.timers.schedule(64 * this.ctx.options.t1Ms, this.#onTimerB));
  }

  protected onSent(): void {
    // "If an unreliable transport is being used, the client transaction MUST start timer A
    // with a value of T1."
    if (this.unreliable) {
      this.#intervalA = this.ctx.options.t1Ms;
      this.startTimer("A", this.ctx.timers.schedule(this.#intervalA, this.#onTimerA));
    }
  }

  #onTimerA = (): void => {
    if (this.state !== "calling") return;
    // "the client transaction MUST retransmit the request ... and reset the timer with a
    // value of 2*T1"
    this.retransmit();
    this.#intervalA *= 2;
    if (!this.terminated) {
      this.startTimer("A", this.ctx.timers.schedule(this.#intervalA, this.#onTimerA));
    }
  };

  #onTimerB = (): void => {
    // "If the client transaction is still in the Calling state when timer B fires, the
    // client transaction SHOULD inform the TU that a timeout has occurred."
    if (this.state === "calling") this.fail(408);
  };

  /**
   * Cancels the INVITE (RFC 3261 §9.1). "a CANCEL request SHOULD NOT be sent to cancel a
   * request until a provisional response is received": before one, the CANCEL waits for it.
   * After a final response there is nothing to cancel.
   */
  cancel(reason?: string): void {
    if (this.#cancel !== undefined) return;
    this.#cancel = { reason };
    if (this.state === "proceeding") this.#sendCancel();
  }

  #sendCancel(): void {
    if (this.#cancelSent || this.#cancel === undefined || this.sent === undefined) return;
    this.#cancelSent = true;
    this.ctx.sendCancel(
      this.request,
      { ...this.target, flowId: this.sent.flow.id },
      this.#cancel.reason,
    );
  }

  receiveResponse(response: SipResponse): void {
    const status = response.status;
    switch (this.state) {
      case "calling":
      case "proceeding":
        if (status < 200) {
          if (this.state === "calling") {
            this.transition("proceeding");
            this.stopTimer("A");
            this.stopTimer("B");
          }
          this.passUp(response);
          this.#sendCancel();
        } else if (status < 300) {
          // RFC 6026 §8.4: a 2xx moves to Accepted; Timer M keeps it to absorb forks' 2xx.
          this.transition("accepted");
          this.stopTimer("A");
          this.stopTimer("B");
          this.passUp(response);
          this.settle(response);
          this.release();
          this.startTimer(
            "M",
            this.ctx.timers.schedule(64 * this.ctx.options.t1Ms, () => this.terminate("normal")),
          );
        } else {
          this.transition("completed");
          this.stopTimer("A");
          this.stopTimer("B");
          this.#ack(response);
          this.passUp(response);
          this.settle(response);
          this.release();
          // "Timer D ... at least 32 seconds for unreliable transports, and ... zero seconds
          // for reliable transports"
          if (this.unreliable) {
            this.startTimer(
              "D",
              this.ctx.timers.schedule(TIMER_D_MS, () => this.terminate("normal")),
            );
          } else {
            this.terminate("normal");
          }
        }
        return;
      case "completed":
        // "Any retransmissions of the final response that are received while in the
        // Completed state MUST cause the ACK to be re-passed to the transport layer"
        if (status >= 300 && this.#ackBytes !== undefined && this.sent !== undefined) {
          try {
            this.ctx.transport.resend(this.#ackBytes, this.sent.flow);
          } catch (e) {
            this.ctx.log.debug({ err: e, key: this.key }, "ACK resend failed");
            this.terminate("transport-error");
          }
        }
        return;
      case "accepted":
        // RFC 6026 §8.4: 2xx responses in Accepted go to the TU (it ACKs each).
        if (status >= 200 && status < 300) this.passUp(response);
        return;
      default:
        return;
    }
  }

  #ack(response: SipResponse): void {
    if (this.sent === undefined) return;
    const ack = ackForNon2xx(this.request, response);
    const flow = this.sent.flow;
    this.ctx.transport
      .send(ack, { ...this.target, flowId: flow.id })
      .then((sent) => {
        this.#ackBytes = sent.bytes;
      })
      .catch((e: unknown) => {
        this.ctx.log.debug({ err: e, key: this.key }, "ACK could not be sent");
      });
  }
}
