// A receiver's loss and jitter figures by RFC 3550 (A.3 for loss, A.8 for jitter), kept small
// for the video stream. TODO: use the audio streams' stream-stats.ts once it is merged.
import { sequenceDelta } from "../rtp-packet.js";

/** A.1's MAX_DROPOUT: a jump this far ahead is a restart of the sender, not loss. */
const MAX_DROPOUT = 3000;

export class RtpReceiveCounter {
  readonly #clockRate: number;
  #received = 0;
  #baseSequence = 0;
  /** Highest sequence seen, extended by the wrap count (A.1's cycles + max_seq). */
  #highest = -1;
  #jitter = 0;
  #lastTransit: number | undefined;

  /** `clockRate` in Hz: 90000 for video (RFC 7741 §6.1). */
  constructor(clockRate: number) {
    this.#clockRate = clockRate;
  }

  /** Counts one packet that arrived at `arrivalMs` (a monotonic clock). */
  packet(sequence: number, timestamp: number, arrivalMs: number): void {
    this.#received++;
    if (this.#highest < 0) {
      this.#baseSequence = sequence;
      this.#highest = sequence;
    } else {
      const delta = sequenceDelta(this.#highest & 0xffff, sequence);
      if (delta > 0 && delta < MAX_DROPOUT) this.#highest += delta;
      else if (delta >= MAX_DROPOUT) this.#restart(sequence);
    }
    // A.8: J += (|D(i-1,i)| - J) / 16, with D from the transit times in timestamp units.
    const transit = (arrivalMs * this.#clockRate) / 1000 - timestamp;
    if (this.#lastTransit !== undefined) {
      let d = Math.abs(transit - this.#lastTransit);
      // A timestamp that wrapped makes a 2^32 step that is no jitter.
      if (d > 0x80000000) d = Math.abs(d - 0x100000000);
      this.#jitter += (d - this.#jitter) / 16;
    }
    this.#lastTransit = transit;
  }

  get received(): number {
    return this.#received;
  }

  /** A.3: expected minus received; duplicates can make it negative, shown as 0. */
  get lost(): number {
    if (this.#highest < 0) return 0;
    return Math.max(0, this.#highest - this.#baseSequence + 1 - this.#received);
  }

  get jitterMs(): number {
    return (this.#jitter * 1000) / this.#clockRate;
  }

  #restart(sequence: number): void {
    this.#baseSequence = sequence;
    this.#highest = sequence;
    this.#received = 1;
  }
}
