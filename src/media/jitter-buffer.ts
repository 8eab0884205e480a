// An adaptive jitter buffer for 20-ms audio frames. Packets are put in order by sequence; one
// frame is taken out per 20-ms playout tick. The playout delay follows the measured jitter
// (RFC 3550 A.8's estimator, in ms) within bounds: it grows by holding playout when the buffer
// runs dry and shrinks by dropping a frame when more is buffered than the target. A missing
// frame is concealed by repeating the last one once, then by silence.
import type { Clock } from "../sip/index.js";
import { sequenceDelta } from "./rtp-packet.js";

export const DEFAULT_JITTER_MIN_DELAY_MS = 40;
export const DEFAULT_JITTER_MAX_DELAY_MS = 200;
/** The target covers this many times the smoothed jitter (its spread is about ±2 J). */
const JITTER_FACTOR = 3;
/** Ticks in a row over the target before a frame is dropped to shrink the delay. */
const SHRINK_AFTER_TICKS = 5;
/** A sequence this far ahead of playout (2 s of 20-ms frames) is a jump, not a gap. */
const RESYNC_FRAMES = 100;

export interface JitterBufferOptions {
  readonly clock: Clock;
  /** Timestamp units per second (8000 for G.711). */
  readonly clockRate?: number;
  readonly frameMs?: number;
  readonly minDelayMs?: number;
  readonly maxDelayMs?: number;
}

export interface BufferedFrame {
  readonly sequence: number;
  readonly timestamp: number;
  readonly payload: Uint8Array;
  /**
   * A stand-in that holds a sequence number's place (silence while a telephone event takes
   * the audio's turn): played like a frame, left out of the jitter estimate because its
   * timestamp is the event's, not the frame's.
   */
  readonly filler?: boolean;
}

/** What one playout tick yields. */
export type PlayoutFrame =
  | { readonly kind: "frame"; readonly frame: BufferedFrame }
  /** A lost frame: `payload` is the previous frame repeated, or undefined for silence. */
  | { readonly kind: "concealed"; readonly payload: Uint8Array | undefined }
  /** Nothing to play: before the first packet has waited out the delay, or the buffer ran dry. */
  | { readonly kind: "silence"; readonly reason: "buffering" | "underrun" };

export interface JitterBufferStats {
  readonly pushed: number;
  readonly played: number;
  readonly late: number;
  readonly duplicates: number;
  readonly concealed: number;
  readonly underruns: number;
  /** Frames dropped to bring the delay down to the target, or because the buffer was full. */
  readonly dropped: number;
  /** Times the sequence jumped too far and playout restarted from the new number. */
  readonly resyncs: number;
  readonly jitterMs: number;
  readonly targetDelayMs: number;
  /** Frames held now, times the frame length. */
  readonly bufferedMs: number;
}

export class JitterBuffer {
  readonly #clock: Clock;
  readonly #clockRate: number;
  readonly #frameMs: number;
  readonly #minDelayMs: number;
  readonly #maxDelayMs: number;
  readonly #capacity: number;
  /** Frames by extended sequence number. */
  readonly #frames = new Map<number, BufferedFrame>();
  /** The extended sequence of the next frame to play. */
  #next: number | undefined;
  #highest: number | undefined;
  #firstArrivalMs = 0;
  #started = false;
  #lastPayload: Uint8Array | undefined;
  #concealedRun = 0;
  #overTarget = 0;
  #underrunRun = 0;
  #transit: number | undefined;
  #jitterMs = 0;
  #targetMs: number;
  #pushed = 0;
  #played = 0;
  #late = 0;
  #duplicates = 0;
  #concealed = 0;
  #underruns = 0;
  #dropped = 0;
  #resyncs = 0;

  constructor(options: JitterBufferOptions) {
    this.#clock = options.clock;
    this.#clockRate = options.clockRate ?? 8000;
    this.#frameMs = options.frameMs ?? 20;
    this.#minDelayMs = options.minDelayMs ?? DEFAULT_JITTER_MIN_DELAY_MS;
    this.#maxDelayMs = options.maxDelayMs ?? DEFAULT_JITTER_MAX_DELAY_MS;
    if (!(this.#minDelayMs >= 0 && this.#maxDelayMs >= this.#minDelayMs)) {
      throw new RangeError("jitter buffer: need 0 <= minDelayMs <= maxDelayMs");
    }
    this.#targetMs = this.#minDelayMs;
    // Room for the largest delay plus a burst arriving at once.
    this.#capacity = Math.ceil(this.#maxDelayMs / this.#frameMs) * 2 + 10;
  }

  /** Takes an arriving packet; returns false when it was late, a duplicate or did not fit. */
  push(frame: BufferedFrame): boolean {
    const now = this.#clock.now();
    const reference = this.#highest ?? this.#next;
    const extended =
      reference === undefined
        ? frame.sequence
        : reference + sequenceDelta(reference & 0xffff, frame.sequence);
    if (this.#next !== undefined && this.#started && extended < this.#next) {
      this.#late++;
      return false;
    }
    if (this.#next !== undefined && extended - this.#next >= RESYNC_FRAMES) {
      // Far beyond anything the buffer could hold: the sender jumped (restarted its
      // numbering). Concealing the gap frame by frame would take as long as the jump; resync.
      this.#resyncs++;
      this.#frames.clear();
      this.#next = extended;
      this.#highest = extended;
      this.#underrunRun = 0;
    }
    if (this.#frames.has(extended)) {
      this.#duplicates++;
      return false;
    }
    if (this.#frames.size >= this.#capacity) {
      this.#dropped++;
      return false;
    }
    if (frame.filler !== true) this.#measure(frame.timestamp, now);
    this.#frames.set(extended, frame);
    this.#pushed++;
    if (this.#highest === undefined || extended > this.#highest) this.#highest = extended;
    if (this.#next === undefined) {
      this.#next = extended;
      this.#firstArrivalMs = now;
    } else if (!this.#started && extended < this.#next) {
      this.#next = extended; // reordered before playout began
    }
    return true;
  }

  #measure(timestamp: number, nowMs: number): void {
    const transit = nowMs - ((timestamp >>> 0) * 1000) / this.#clockRate;
    if (this.#transit !== undefined) {
      let d = Math.abs(transit - this.#transit);
      const wrapMs = (0x100000000 * 1000) / this.#clockRate;
      if (d > wrapMs / 2) d = Math.abs(d - wrapMs);
      this.#jitterMs += (d - this.#jitterMs) / 16;
    }
    this.#transit = transit;
    const wanted = Math.ceil((JITTER_FACTOR * this.#jitterMs) / this.#frameMs) * this.#frameMs;
    this.#targetMs = Math.min(this.#maxDelayMs, Math.max(this.#minDelayMs, wanted + this.#frameMs));
  }

  /** The frame for this playout tick. Call once per frame interval. */
  pull(): PlayoutFrame {
    if (this.#next === undefined) return { kind: "silence", reason: "buffering" };
    if (!this.#started) {
      if (this.#clock.now() - this.#firstArrivalMs < this.#targetMs - this.#frameMs) {
        return { kind: "silence", reason: "buffering" };
      }
      this.#started = true;
    }
    if (this.#frames.size === 0) {
      this.#underruns++;
      this.#underrunRun++;
      return { kind: "silence", reason: "underrun" };
    }
    if (this.#underrunRun > 0) {
      // The buffer ran dry and frames resume after a gap: the ticks spent dry stand in for
      // the missing frames (they were lost), so the delay does not grow by them. After a pause
      // without a gap (the sender stopped) nothing is skipped.
      let first = Infinity;
      for (const sequence of this.#frames.keys()) first = Math.min(first, sequence);
      const skip = Math.min(this.#underrunRun, first - this.#next);
      this.#next += skip;
      this.#concealed += skip;
      this.#underrunRun = 0;
    }
    // Shrink: more frames held than the target (with a frame of hysteresis) for a while drops
    // the oldest; a single early arrival ahead of a gap is not excess.
    if (this.#frames.size * this.#frameMs > this.#targetMs + this.#frameMs) {
      this.#overTarget++;
    } else {
      this.#overTarget = 0;
    }
    if (this.#overTarget >= SHRINK_AFTER_TICKS && this.#frames.has(this.#next)) {
      this.#frames.delete(this.#next);
      this.#next++;
      this.#dropped++;
      this.#overTarget = 0;
    }
    const frame = this.#frames.get(this.#next);
    this.#next++;
    if (frame !== undefined) {
      this.#frames.delete(this.#next - 1);
      this.#played++;
      this.#lastPayload = frame.payload;
      this.#concealedRun = 0;
      return { kind: "frame", frame };
    }
    // Frames wait beyond a gap: the frame at the gap was lost (or is later than the delay).
    this.#concealed++;
    this.#concealedRun++;
    return { kind: "concealed", payload: this.#concealedRun === 1 ? this.#lastPayload : undefined };
  }

  #bufferedMs(): number {
    return this.#frames.size * this.#frameMs;
  }

  get stats(): JitterBufferStats {
    return {
      pushed: this.#pushed,
      played: this.#played,
      late: this.#late,
      duplicates: this.#duplicates,
      concealed: this.#concealed,
      underruns: this.#underruns,
      dropped: this.#dropped,
      resyncs: this.#resyncs,
      jitterMs: this.#jitterMs,
      targetDelayMs: this.#targetMs,
      bufferedMs: this.#bufferedMs(),
    };
  }

  /** Forgets every frame and starts over (a new source). */
  reset(): void {
    this.#frames.clear();
    this.#next = undefined;
    this.#highest = undefined;
    this.#started = false;
    this.#transit = undefined;
    this.#lastPayload = undefined;
    this.#concealedRun = 0;
    this.#underrunRun = 0;
    this.#overTarget = 0;
  }
}
