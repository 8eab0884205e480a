import type { Clock, ClockTimer } from "../../src/sip/clock.js";

interface Pending {
  at: number;
  seq: number;
  callback: () => void;
}

/** A clock that moves only when a test says so: `tick(ms)` fires what falls due, in order. */
export class FakeClock implements Clock {
  #now = 0;
  #seq = 0;
  #pending = new Map<ClockTimer, Pending>();

  now(): number {
    return this.#now;
  }

  setTimeout(callback: () => void, ms: number): ClockTimer {
    const handle = { __clockTimer: true } as const;
    this.#pending.set(handle, { at: this.#now + Math.max(0, ms), seq: this.#seq++, callback });
    return handle;
  }

  clearTimeout(timer: ClockTimer): void {
    this.#pending.delete(timer);
  }

  /** Timers not yet fired. */
  get pending(): number {
    return this.#pending.size;
  }

  /** Advances time by `ms`, firing every timer that falls due (and those they schedule). */
  tick(ms: number): void {
    const end = this.#now + ms;
    for (;;) {
      let next: [ClockTimer, Pending] | undefined;
      for (const entry of this.#pending) {
        const [, p] = entry;
        if (p.at > end) continue;
        if (
          next === undefined ||
          p.at < next[1].at ||
          (p.at === next[1].at && p.seq < next[1].seq)
        ) {
          next = entry;
        }
      }
      if (next === undefined) break;
      this.#pending.delete(next[0]);
      this.#now = next[1].at;
      next[1].callback();
    }
    this.#now = end;
  }
}
