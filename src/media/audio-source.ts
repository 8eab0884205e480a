// Where sent audio comes from: one interface that yields 20-ms frames of 160 samples at 8 kHz,
// and the sources a softphone plays — a WAV file, a tone (`tone:HZ`), silence, or several in turn.
import { SilenceSource, ToneSource } from "./tone.js";
import { readWavFile } from "./wav.js";

export const AUDIO_SAMPLE_RATE = 8000;
export const FRAME_MS = 20;
export const FRAME_SAMPLES = (AUDIO_SAMPLE_RATE * FRAME_MS) / 1000;

/** A source of 20-ms frames. */
export interface AudioSource {
  /** The next 160 samples, or undefined once the source has ended (it then stays ended). */
  nextFrame(): Int16Array | undefined;
}

/** Plays samples held in memory (a WAV file read whole), optionally looping. */
export class SamplesSource implements AudioSource {
  readonly #samples: Int16Array;
  readonly #loop: boolean;
  #position = 0;

  constructor(options: { samples: Int16Array; loop?: boolean }) {
    this.#samples = options.samples;
    this.#loop = options.loop ?? false;
  }

  nextFrame(): Int16Array | undefined {
    const total = this.#samples.length;
    if (total === 0 || (!this.#loop && this.#position >= total)) return undefined;
    const frame = new Int16Array(FRAME_SAMPLES);
    for (let i = 0; i < FRAME_SAMPLES; i++) {
      if (this.#position >= total) {
        if (!this.#loop) break; // the last frame is padded with silence
        this.#position = 0;
      }
      frame[i] = this.#samples[this.#position++]!;
    }
    return frame;
  }
}

/** Plays each source until it ends, then the next. */
export class SequenceSource implements AudioSource {
  readonly #sources: readonly AudioSource[];
  #index = 0;

  constructor(sources: readonly AudioSource[]) {
    this.#sources = sources;
  }

  nextFrame(): Int16Array | undefined {
    while (this.#index < this.#sources.length) {
      const frame = this.#sources[this.#index]!.nextFrame();
      if (frame !== undefined) return frame;
      this.#index++;
    }
    return undefined;
  }
}

/** A `--play` value that names no usable source. */
export class AudioSourceError extends Error {
  override readonly name = "AudioSourceError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/**
 * Opens what `--play` names: `tone:HZ` (a sine of HZ hertz, endless), `silence`, or a WAV file
 * path (played once, or looped with `loop`). `durationMs` ends a tone or silence.
 */
export async function openAudioSource(
  spec: string,
  options: { loop?: boolean; durationMs?: number } = {},
): Promise<AudioSource> {
  const tone = /^tone:(\d+(?:\.\d+)?)$/.exec(spec);
  if (tone !== null) {
    const frequency = Number(tone[1]);
    if (!(frequency > 0 && frequency < AUDIO_SAMPLE_RATE / 2)) {
      throw new AudioSourceError(`${spec}: the frequency must be between 0 and 4000 Hz`);
    }
    return new ToneSource({ frequency, durationMs: options.durationMs });
  }
  if (spec === "silence") return new SilenceSource({ durationMs: options.durationMs });
  if (spec.startsWith("tone:")) throw new AudioSourceError(`${spec}: expected tone:HZ`);
  try {
    return new SamplesSource({ samples: await readWavFile(spec), loop: options.loop });
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new AudioSourceError(`cannot play ${spec}: ${reason}`, { cause: error });
  }
}
