import type { Timer } from "../timer-queue.js";

/** The states of RFC 3261 §17 and RFC 6026 ("Accepted"). */
export type TransactionState =
  "calling" | "trying" | "proceeding" | "completed" | "accepted" | "confirmed" | "terminated";

/** Told when a transaction ends, so that its layer forgets it. */
export interface TransactionRegistry {
  forget(tx: Transaction): void;
}

/** Why a transaction ended, as its TU learns it. */
export type TerminationReason = "normal" | "timeout" | "transport-error" | "stopped";

/**
 * What every transaction shares: one state, moved only by `transition()` along an
 * allowed-moves table (a wrong move is a bug), and named timers that `dispose()` clears.
 */
export abstract class Transaction {
  #state: TransactionState;
  /** Running timers by the RFC's letter; a plain object is far lighter than a Map here. */
  #timers: Record<string, Timer | undefined> = {};
  #terminated = false;

  protected constructor(
    readonly key: string,
    initial: TransactionState,
    private readonly moves: Readonly<
      Partial<Record<TransactionState, readonly TransactionState[]>>
    >,
    private readonly registry: TransactionRegistry,
  ) {
    this.#state = initial;
  }

  get state(): TransactionState {
    return this.#state;
  }

  /** For the TU: called once when the transaction reaches Terminated. */
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
    this.#timers[name]?.cancel();
    this.#timers[name] = timer;
  }

  protected stopTimer(name: string): void {
    this.#timers[name]?.cancel();
    this.#timers[name] = undefined;
  }

  /** Moves to Terminated, clears every timer and tells the layer. Idempotent. */
  protected terminate(reason: TerminationReason): void {
    if (this.#terminated) return;
    this.#terminated = true;
    this.#state = "terminated";
    this.dispose();
    this.registry.forget(this);
    this.onTerminated?.(reason);
  }

  /** Clears every timer. Idempotent. */
  dispose(): void {
    for (const timer of Object.values(this.#timers)) timer?.cancel();
    this.#timers = {};
  }

  get terminated(): boolean {
    return this.#terminated;
  }
}
