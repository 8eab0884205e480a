// One 20-ms timer for every audio stream on a clock. A timer per stream costs a timer callback
// per frame per stream, and a stream that fell behind caught up one frame per turn of the event
// loop, so with hundreds of calls in a process the senders drifted behind and skipped time. The
// pacer serves all its streams in one callback per frame and, when that callback is late, gives
// every stream the frames it missed (up to MAX_CATCH_UP_FRAMES) before waiting again.
import type { Clock, ClockTimer } from "../sip/index.js";
import { FRAME_MS } from "./audio-source.js";

/** Further behind than this, the pacer starts a new schedule instead of bursting. */
export const MAX_CATCH_UP_FRAMES = 10;

/** What the pacer drives: one frame sent and one played out per call. */
export interface PacedStream {
  onFrame(): void;
}

const pacers = new WeakMap<Clock, FramePacer>();

export class FramePacer {
  readonly #clock: Clock;
  readonly #members = new Set<PacedStream>();
  #timer: ClockTimer | undefined;
  #scheduleStart = 0;
  #frames = 0;
  #skipped = 0;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** The pacer every stream on this clock shares. */
  static of(clock: Clock): FramePacer {
    let pacer = pacers.get(clock);
    if (pacer === undefined) {
      pacer = new FramePacer(clock);
      pacers.set(clock, pacer);
    }
    return pacer;
  }

  get size(): number {
    return this.#members.size;
  }

  /** Frames not sent because the pacer fell too far behind and started a new schedule. */
  get skippedFrames(): number {
    return this.#skipped;
  }

  /** Starts pacing a stream; its first frame comes at the pacer's next tick (≤ 20 ms). */
  add(stream: PacedStream): void {
    this.#members.add(stream);
    if (this.#timer === undefined) {
      this.#scheduleStart = this.#clock.now();
      this.#frames = 0;
      this.#arm();
    }
  }

  /** Stops pacing a stream; the timer goes when the last one leaves, leaving no handle open. */
  remove(stream: PacedStream): void {
    this.#members.delete(stream);
    if (this.#members.size === 0 && this.#timer !== undefined) {
      this.#clock.clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  }

  #arm(): void {
    const delay = Math.max(
      0,
      this.#scheduleStart + (this.#frames + 1) * FRAME_MS - this.#clock.now(),
    );
    this.#timer = this.#clock.setTimeout(() => this.#onTimer(), delay);
  }

  #onTimer(): void {
    this.#timer = undefined;
    const now = this.#clock.now();
    let due = Math.floor((now - this.#scheduleStart) / FRAME_MS) - this.#frames;
    if (due > MAX_CATCH_UP_FRAMES) {
      this.#skipped += due - 1;
      this.#scheduleStart = now - FRAME_MS;
      this.#frames = 0;
      due = 1;
    }
    const members = [...this.#members];
    for (let frame = 0; frame < Math.max(1, due); frame++) {
      for (const member of members) {
        if (this.#members.has(member)) member.onFrame();
      }
      this.#frames++;
    }
    if (this.#members.size > 0 && this.#timer === undefined) this.#arm();
  }
}
