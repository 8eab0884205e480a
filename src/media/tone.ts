// Generated sources: a sine tone and silence, in 20-ms frames at 8 kHz.
import type { AudioSource } from "./audio-source.js";

const SAMPLE_RATE = 8000;
const FRAME_SAMPLES = 160;
/** -6 dBFS: loud enough to find, far from G.711's clipping. */
export const DEFAULT_TONE_AMPLITUDE = 16384;

/** A sine of `frequency` Hz; endless unless `durationMs` is given. */
export class ToneSource implements AudioSource {
  readonly frequency: number;
  readonly #amplitude: number;
  readonly #frames: number;
  #sample = 0;
  #frame = 0;

  constructor(options: { frequency: number; amplitude?: number; durationMs?: number }) {
    this.frequency = options.frequency;
    this.#amplitude = options.amplitude ?? DEFAULT_TONE_AMPLITUDE;
    this.#frames = options.durationMs === undefined ? Infinity : Math.ceil(options.durationMs / 20);
  }

  nextFrame(): Int16Array | undefined {
    if (this.#frame >= this.#frames) return undefined;
    this.#frame++;
    const frame = new Int16Array(FRAME_SAMPLES);
    const step = (2 * Math.PI * this.frequency) / SAMPLE_RATE;
    for (let i = 0; i < FRAME_SAMPLES; i++) {
      frame[i] = Math.round(this.#amplitude * Math.sin(step * this.#sample++));
    }
    // Keep the phase index small so that long calls do not lose precision.
    if (this.#sample >= SAMPLE_RATE * 1000) this.#sample -= SAMPLE_RATE * 1000;
    return frame;
  }
}

/** Zero samples; endless unless `durationMs` is given. */
export class SilenceSource implements AudioSource {
  readonly #frames: number;
  #frame = 0;

  constructor(options: { durationMs?: number } = {}) {
    this.#frames = options.durationMs === undefined ? Infinity : Math.ceil(options.durationMs / 20);
  }

  nextFrame(): Int16Array | undefined {
    if (this.#frame >= this.#frames) return undefined;
    this.#frame++;
    return new Int16Array(FRAME_SAMPLES);
  }
}
