import type { Timer } from "../timer-queue.js";

/** The states of RFC 3261 §17 and RFC 6026 ("Accepted"). */
export type TransactionState =
  "calling" | "trying" | "proceeding" | "completed" | "accepted" | "confirmed" | "terminated";

/** Why a transaction ended, as its TU learns it. */
export type TerminationReason = "normal" | "timeout" | "transport-error" | "stopped";

/**
 * What every transaction shares: one state, moved only by `transition()` along an
 * allowed-moves table (a wrong move is a bug), and named timers that `dispose()` clears.
 */
export abstract class Transaction {
  #state: TransactionState;
  readonly #timers = new Map<string, Timer>();
  #terminated = false;

  protected constructor(
    readonly key: string,
    initial: TransactionState,
    private readonly moves: Readonly<
      Partial<Record<TransactionState, readonly TransactionState[]>>
    >,
  ) {
    this.#state = initial;
  }

  get state(): TransactionState {
    return this.#state;
  }

  /** Called once when the transaction reaches Terminated (the layer forgets it). */
  onTerminated: ((reason: TerminationReason) => void) | undefined;

  protected transition(to: TransactionState): void {
    const allowed = this.moves[this.#state];
    if (allowed === undefined || !allowed.includes(to)) {
      throw new Error(`transaction ${this.key}: no move from ${this.#state} to ${to}`);
    }
    this.#state = to;
  }

  /** Starts (or restarts) the timer called `name` (the RFC's letter). */
  protected startTimer(name: string, timer: Timer): void {
    this.#timers.get(name)?.cancel();
    this.#timers.set(name, timer);
  }

  protected stopTimer(name: string): void {
    this.#timers.get(name)?.cancel();
    this.#timers.delete(name);
  }

  /** Moves to Terminated, clears every timer and tells the layer. Idempotent. */
  protected terminate(reason: TerminationReason): void {
    if (this.#terminated) return;
    this.#terminated = true;
    this.#state = "terminated";
    this.dispose();
    this.onTerminated?.(reason);
  }

  /** Clears every timer. Idempotent. */
  dispose(): void {
    for (const timer of this.#timers.values()) timer.cancel();
    this.#timers.clear();
  }

  get terminated(): boolean {
    return this.#terminated;
  }
}
