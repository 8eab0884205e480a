/**
 * Time for every timer-driven state machine, injected so that tests run without sleeping
 * (they pass a fake clock and advance it).
 */
export interface Clock {
  /** Milliseconds on a monotonic scale (not wall-clock time). */
  now(): number;
  setTimeout(callback: () => void, ms: number): ClockTimer;
  clearTimeout(timer: ClockTimer): void;
}

/** An opaque handle from Clock.setTimeout. */
export type ClockTimer = { readonly __clockTimer: true } | NodeJS.Timeout;

/** The real clock: performance.now() and Node's timers. */
export const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (timer) => clearTimeout(timer as NodeJS.Timeout),
};
