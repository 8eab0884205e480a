import type { SipRequest, SipResponse } from "../message/index.js";
import type { FlowInfo } from "../transport/types.js";
import { ServerTransaction } from "./server-transaction.js";
import type { TransactionContext } from "./transaction-context.js";

const MOVES = {
  trying: ["proceeding", "completed", "terminated"],
  proceeding: ["completed", "terminated"],
  completed: ["terminated"],
} as const;

/** RFC 3261 §17.2.2: the non-INVITE server transaction (Trying, Proceeding, Completed). */
export class NonInviteServerTransaction extends ServerTransaction {
  constructor(ctx: TransactionContext, request: SipRequest, flow: FlowInfo, key: string) {
    super(ctx, request, flow, key, "trying", MOVES);
  }

  receiveRequest(): void {
    switch (this.state) {
      // "Once in the Trying state, any further request retransmissions are discarded."
      case "trying":
        return;
      // In Proceeding and Completed, "the most recently sent provisional response" or "the
      // final response" MUST be passed to the transport layer for retransmission.
      case "proceeding":
      case "completed":
        this.resendLast();
        return;
      default:
        return;
    }
  }

  respond(response: SipResponse): void {
    const state = this.state;
    if (state !== "trying" && state !== "proceeding") {
      this.ctx.log.error({ key: this.key, state }, "response after the final one; not sent");
      return;
    }
    if (response.status < 200) {
      if (state === "trying") this.transition("proceeding");
      this.send(response);
      return;
    }
    this.transition("completed");
    this.send(response);
    this.releaseRequest();
    // "Timer J to fire in 64*T1 seconds for unreliable transports, and zero seconds for
    // reliable transports"
    if (this.unreliable) {
      this.startTimer(
        "J",
        this.ctx.timers.schedule(64 * this.ctx.options.t1Ms, () => this.terminate("normal")),
      );
    } else {
      this.terminate("normal");
    }
  }
}
