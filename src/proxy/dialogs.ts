import type { Clock, ClockTimer } from "../sip/index.js";

/** Calls-started-per-second is averaged over this many seconds (DESIGN.md `cps`). */
const CPS_WINDOW_S = 5;

/**
 * Dialog accounting, the `calls` of the load report: an INVITE in progress is an early call
 * until its final response; a 2xx makes a confirmed dialog, counted until its BYE, or until a
 * safety timeout without in-dialog traffic (a BYE lost, a client gone).
 */
export class DialogTracker {
  readonly #early = new Map<string, number>();
  /** The sum of #early's counts, kept as it changes (calls is read on every INVITE). */
  #earlyCount = 0;
  /** Confirmed dialogs by Call-ID and both tags, with the last time we saw traffic. */
  readonly #confirmed = new Map<string, number>();
  readonly #startedPerSecond = new Array<number>(CPS_WINDOW_S + 1).fill(0);
  #lastSecond = 0;
  #sweep: ClockTimer | undefined;

  constructor(
    private readonly clock: Clock,
    private readonly safetyTimeoutMs: number,
    /** Told whenever the call count may have moved (the load reporter pushes on a marked change). */
    private readonly onChange: () => void = () => undefined,
    /** Told the Call-ID of each call that ended (failed, cancelled, hung up or timed out). */
    private readonly onEnded: (callId: string) => void = () => undefined,
  ) {}

  start(): void {
    const every = Math.min(60_000, this.safetyTimeoutMs / 4);
    const sweep = () => {
      const cutoff = this.clock.now() - this.safetyTimeoutMs;
      const before = this.#confirmed.size;
      for (const [id, seen] of this.#confirmed) {
        if (seen > cutoff) continue;
        this.#confirmed.delete(id);
        this.onEnded(callIdOf(id));
      }
      if (this.#confirmed.size !== before) this.onChange();
      this.#sweep = this.clock.setTimeout(sweep, every);
    };
    this.#sweep = this.clock.setTimeout(sweep, every);
  }

  stop(): void {
    if (this.#sweep !== undefined) this.clock.clearTimeout(this.#sweep);
    this.#sweep = undefined;
  }

  /** Early and confirmed dialogs. */
  get calls(): number {
    return this.#earlyCount + this.#confirmed.size;
  }

  /** Calls started per second over the last 5 s. */
  get cps(): number {
    this.#advance();
    let sum = 0;
    for (let i = 1; i <= CPS_WINDOW_S; i++)
      sum +=
        this.#startedPerSecond[(this.#lastSecond - i + 6 * CPS_WINDOW_S) % (CPS_WINDOW_S + 1)]!;
    return sum / CPS_WINDOW_S;
  }

  /** An initial INVITE goes forward. */
  inviteStarted(callId: string, fromTag: string): void {
    const key = `${callId}|${fromTag}`;
    this.#early.set(key, (this.#early.get(key) ?? 0) + 1);
    this.#earlyCount++;
    this.#advance();
    this.#startedPerSecond[this.#lastSecond % (CPS_WINDOW_S + 1)]!++;
    this.onChange();
  }

  /** That INVITE got its final response; a 2xx confirms the dialog with `toTag`. */
  inviteEnded(callId: string, fromTag: string, toTag: string | undefined): void {
    const key = `${callId}|${fromTag}`;
    const had = this.#early.get(key);
    if (had !== undefined) {
      this.#earlyCount--;
      if (had <= 1) this.#early.delete(key);
      else this.#early.set(key, had - 1);
    }
    if (toTag !== undefined)
      this.#confirmed.set(dialogId(callId, fromTag, toTag), this.clock.now());
    else if (had !== undefined && had <= 1) this.onEnded(callId);
    this.onChange();
  }

  /** An in-dialog request went through: a BYE ends the dialog; others keep it fresh. */
  inDialog(method: string, callId: string, fromTag: string, toTag: string): void {
    const id = dialogId(callId, fromTag, toTag);
    if (method === "BYE") {
      if (this.#confirmed.delete(id)) {
        this.onEnded(callId);
        this.onChange();
      }
    } else if (this.#confirmed.has(id)) this.#confirmed.set(id, this.clock.now());
  }

  #advance(): void {
    const second = Math.floor(this.clock.now() / 1000);
    if (second === this.#lastSecond) return;
    // Zero the buckets of the seconds that passed without a call.
    const gap = Math.min(second - this.#lastSecond, CPS_WINDOW_S + 1);
    for (let i = 1; i <= gap; i++)
      this.#startedPerSecond[(this.#lastSecond + i) % (CPS_WINDOW_S + 1)] = 0;
    this.#lastSecond = second;
  }
}

/** The same id for requests in either direction: the two tags in a fixed order. */
function dialogId(callId: string, a: string, b: string): string {
  return a < b ? `${callId}|${a}|${b}` : `${callId}|${b}|${a}`;
}

/** The Call-ID of a dialogId (tags hold no "|"). */
function callIdOf(id: string): string {
  return id.slice(0, id.lastIndexOf("|", id.lastIndexOf("|") - 1));
}
