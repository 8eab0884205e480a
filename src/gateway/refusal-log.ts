import type { Clock, ClockTimer, Logger } from "../sip/index.js";

export interface RefusalLogOptions {
  readonly log: Logger;
  readonly clock: Clock;
  /** One line per subject and reason per interval. */
  readonly intervalMs: number;
  /** Subjects logged one by one per interval; the rest are summed per reason. */
  readonly maxSubjects: number;
}

interface Pending {
  readonly reason: string;
  readonly subject: Record<string, string | number>;
  /** Refusals since the last line. */
  count: number;
}

/**
 * Refusal lines at warn, limited so that a flood cannot flood the log. The first refusal of a
 * subject (a source address, a user) for a reason is logged at once, with the request's
 * details; those that follow are counted, and each interval ends with one line per subject
 * and reason that had more (`count`); a subject that stayed quiet for a whole interval is
 * forgotten, and logged at once again. At most `maxSubjects` subjects are followed per
 * interval; refusals of further subjects (a scan from many addresses) are summed per reason
 * into one line at the interval's end. So an interval writes at most 2 × maxSubjects + one
 * line per reason, whatever comes in. The timer runs only while something is pending.
 */
export class RefusalLog {
  readonly #o: RefusalLogOptions;
  readonly #pending = new Map<string, Pending>();
  /** Refusals of subjects beyond maxSubjects in this interval, by reason. */
  readonly #overflow = new Map<string, number>();
  #timer: ClockTimer | undefined;

  constructor(options: RefusalLogOptions) {
    this.#o = options;
  }

  /** Notes one refusal of `subject` for `reason`; `details` go into the immediate line only. */
  note(
    reason: string,
    subjectKey: string,
    subject: Record<string, string | number>,
    details: Record<string, unknown>,
  ): void {
    const key = `${reason}\u0000${subjectKey}`;
    const p = this.#pending.get(key);
    if (p !== undefined) {
      p.count++;
    } else if (this.#pending.size < this.#o.maxSubjects) {
      this.#pending.set(key, { reason, subject, count: 0 });
      this.#o.log.warn({ reason, ...subject, ...details }, `refused: ${reason}`);
    } else {
      this.#overflow.set(reason, (this.#overflow.get(reason) ?? 0) + 1);
    }
    this.#timer ??= this.#o.clock.setTimeout(() => this.#flush(), this.#o.intervalMs);
  }

  /** Writes what is pending now and stops the timer (idempotent). */
  dispose(): void {
    if (this.#timer !== undefined) this.#o.clock.clearTimeout(this.#timer);
    this.#flush(false);
    this.#pending.clear();
  }

  #flush(again = true): void {
    this.#timer = undefined;
    const intervalMs = this.#o.intervalMs;
    for (const [key, p] of this.#pending) {
      if (p.count === 0) {
        this.#pending.delete(key);
        continue;
      }
      this.#o.log.warn(
        { reason: p.reason, ...p.subject, count: p.count, intervalMs },
        `refused again: ${p.reason}`,
      );
      p.count = 0;
    }
    for (const [reason, count] of this.#overflow) {
      this.#o.log.warn(
        { reason, count, intervalMs },
        `refused: ${reason} (further sources, not logged one by one)`,
      );
    }
    this.#overflow.clear();
    if (again && this.#pending.size > 0) {
      this.#timer = this.#o.clock.setTimeout(() => this.#flush(), intervalMs);
    }
  }
}
