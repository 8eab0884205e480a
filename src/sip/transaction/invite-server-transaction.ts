import { createResponse, type SipRequest, type SipResponse } from "../message/index.js";
import type { FlowInfo } from "../transport/types.js";
import { ServerTransaction } from "./server-transaction.js";
import type { TransactionContext } from "./transaction-context.js";

const MOVES = {
  proceeding: ["completed", "accepted", "terminated"],
  completed: ["confirmed", "terminated"],
  accepted: ["terminated"],
  confirmed: ["terminated"],
} as const;

/**
 * RFC 3261 §17.2.1 with RFC 6026: the INVITE server transaction (Proceeding, Completed,
 * Confirmed, Accepted). It sends 100 Trying when the TU is slow, retransmits non-2xx finals
 * until the ACK (timers G, H), and absorbs INVITE retransmissions after a 2xx (timer L).
 */
export class InviteServerTransaction extends ServerTransaction {
  #intervalG = 0;
  #responded = false;
  /** Set by the TU to hear of a CANCEL that matched this transaction (RFC 3261 §9.2). */
  onCancel: ((cancel: SipRequest) => void) | undefined;

  constructor(ctx: TransactionContext, request: SipRequest, flow: FlowInfo, key: string) {
    super(ctx, request, flow, key, "proceeding", MOVES);
    // "The server transaction MUST generate a 100 (Trying) response unless it knows that the
    // TU will generate a provisional or final response within 200 ms"
    const delay = ctx.options.tryingDelayMs;
    if (delay === 0) this.sendTrying();
    else
      this.startTimer(
        "Trying",
        ctx.timers.schedule(delay, () => this.sendTrying()),
      );
  }

  /** Sends 100 Trying now unless something went out already (a proxy forwarding, §16.2). */
  sendTrying(): void {
    if (this.#responded || this.state !== "proceeding") return;
    this.#responded = true;
    this.send(createResponse(this.request, 100));
  }

  /** An INVITE retransmission, or an ACK with this transaction's branch. */
  receiveRequest(request: SipRequest): void {
    if (request.method === "ACK") {
      // "If an ACK is received while the server transaction is in the Completed state, the
      // server transaction MUST transition to the Confirmed state."
      if (this.state === "completed") {
        this.transition("confirmed");
        this.stopTimer("G");
        this.stopTimer("H");
        // "Timer I is set to fire in T4 seconds for unreliable transports, and zero seconds
        // for reliable transports."
        if (this.unreliable) {
          this.startTimer(
            "I",
            this.ctx.timers.schedule(this.ctx.options.t4Ms, () => this.terminate("normal")),
          );
        } else {
          this.terminate("normal");
        }
      }
      return;
    }
    // "If a request retransmission is received while in the Proceeding state, the most
    // recent provisional response ... MUST be passed to the transport layer"; in Completed
    // the final response is; in Accepted and Confirmed retransmissions are absorbed.
    if (this.state === "proceeding" || this.state === "completed") this.resendLast();
  }

  respond(response: SipResponse): void {
    const status = response.status;
    const state = this.state;
    this.#responded = true;
    this.stopTimer("Trying");
    if (state === "accepted" && status >= 200 && status < 300) {
      // RFC 6026 §8.5: a proxy forwards further 2xx (forks) while in Accepted.
      this.send(response);
      return;
    }
    if (state !== "proceeding") {
      this.ctx.log.error({ key: this.key, state, status }, "response not allowed now; not sent");
      return;
    }
    if (status < 200) {
      this.send(response);
      return;
    }
    if (status < 300) {
      // RFC 6026 §8.5: "the server transaction MUST transition to the Accepted state" and
      // start Timer L (64*T1); 2xx retransmissions are the TU's (UA core's) job.
      this.transition("accepted");
      this.send(response);
      this.releaseRequest();
      this.startTimer(
        "L",
        this.ctx.timers.schedule(64 * this.ctx.options.t1Ms, () => this.terminate("normal")),
      );
      return;
    }
    this.transition("completed");
    this.send(response);
    this.releaseRequest();
    const { t1Ms } = this.ctx.options;
    // "For unreliable transports, timer G is set to fire in T1 seconds"; "timer H MUST be
    // set to fire in 64*T1 seconds for all transports"
    if (this.unreliable) {
      this.#intervalG = t1Ms;
      this.startTimer("G", this.ctx.timers.schedule(this.#intervalG, this.#onTimerG));
    }
    this.startTimer("H", this.ctx.timers.schedule(64 * t1Ms, this.#onTimerH));
  }

  #onTimerG = (): void => {
    if (this.state !== "completed") return;
    // "the response is passed to the transport layer once more for retransmission, and
    // timer G is set to fire in MIN(2*T1, T2) seconds"
    this.resendLast();
    this.#intervalG = Math.min(2 * this.#intervalG, this.ctx.options.t2Ms);
    if (!this.terminated)
      this.startTimer("G", this.ctx.timers.schedule(this.#intervalG, this.#onTimerG));
  };

  #onTimerH = (): void => {
    // "If timer H fires while in the Completed state, it implies that the ACK was never
    // received. In this case, the server transaction MUST transition to the Terminated
    // state, and MUST indicate to the TU that a transaction failure has occurred."
    if (this.state === "completed") this.terminate("timeout");
  };
}
