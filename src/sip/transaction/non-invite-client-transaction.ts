import type { SipRequest, SipResponse } from "../message/index.js";
import type { SendTarget } from "../transport/types.js";
import { ClientTransaction, type ClientTransactionOptions } from "./client-transaction.js";
import type { TransactionContext } from "./transaction-context.js";

const MOVES = {
  trying: ["proceeding", "completed", "terminated"],
  proceeding: ["completed", "terminated"],
  completed: ["terminated"],
} as const;

/** RFC 3261 §17.1.2: the non-INVITE client transaction (Trying, Proceeding, Completed). */
export class NonInviteClientTransaction extends ClientTransaction {
  #intervalE = 0;

  constructor(
    ctx: TransactionContext,
    request: SipRequest,
    target: SendTarget,
    branch: string,
    key: string,
    options: ClientTransactionOptions,
  ) {
    super(ctx, request, target, branch, key, "trying", MOVES, options);
  }

  protected onStarting(): void {
    // "the client transaction MUST set timer F to fire in 64*T1 seconds"
    this.startTimer("F", this.ctx.timers.schedule(64 * this.ctx.options.t1Ms, this.#onTimerF));
  }

  protected onSent(): void {
    // "If an unreliable transport is in use, the client transaction MUST set timer E to fire
    // in T1 seconds."
    if (this.unreliable) {
      this.#intervalE = this.ctx.options.t1Ms;
      this.startTimer("E", this.ctx.timers.schedule(this.#intervalE, this.#onTimerE));
    }
  }

  #onTimerE = (): void => {
    const { t2Ms } = this.ctx.options;
    // "If timer E fires while still in this state, the timer is reset, but this time with a
    // value of MIN(2*T1, T2)"; in Proceeding, "reset with a value of T2 seconds".
    if (this.state === "trying") this.#intervalE = Math.min(2 * this.#intervalE, t2Ms);
    else if (this.state === "proceeding") this.#intervalE = t2Ms;
    else return;
    this.retransmit();
    if (!this.terminated) {
      this.startTimer("E", this.ctx.timers.schedule(this.#intervalE, this.#onTimerE));
    }
  };

  #onTimerF = (): void => {
    // "If Timer F fires while the client transaction is still in the Trying or Proceeding
    // state, the client transaction SHOULD inform the TU about the timeout"
    if (this.state === "trying" || this.state === "proceeding") this.fail(408);
  };

  receiveResponse(response: SipResponse): void {
    const state = this.state;
    if (state === "completed" || state === "terminated") return; // retransmissions absorbed
    if (response.status < 200) {
      if (state === "trying") this.transition("proceeding");
      this.passUp(response);
      return;
    }
    this.transition("completed");
    this.stopTimer("E");
    this.stopTimer("F");
    this.passUp(response);
    this.settle(response);
    this.release();
    // "Timer K ... T4 seconds for unreliable transports, and zero seconds for reliable"
    if (this.unreliable) {
      this.startTimer(
        "K",
        this.ctx.timers.schedule(this.ctx.options.t4Ms, () => this.terminate("normal")),
      );
    } else {
      this.terminate("normal");
    }
  }
}
