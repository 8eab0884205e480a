// WAV files (RIFF, Microsoft "Multimedia Programming Interface and Data Specifications 1.0"):
// 16-bit PCM read at any rate and channel count and brought to the 8 kHz mono that G.711
// carries, written as 16-bit PCM mono; and a recorder that writes frames as they arrive.
import { open, readFile, type FileHandle } from "node:fs/promises";

export const WAV_HEADER_BYTES = 44;
const FORMAT_PCM = 1;
const FORMAT_EXTENSIBLE = 0xfffe;

/** A WAV file that cannot be used, with what about it is unsupported or damaged. */
export class WavFormatError extends Error {
  override readonly name = "WavFormatError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export interface WavAudio {
  readonly sampleRate: number;
  readonly channels: number;
  /** Interleaved when channels > 1. */
  readonly samples: Int16Array;
}

/** Parses a WAV file's bytes (16-bit PCM only). */
export function parseWav(bytes: Buffer): WavAudio {
  if (bytes.length < 12 || bytes.toString("latin1", 0, 4) !== "RIFF") {
    throw new WavFormatError("not a WAV file: no RIFF header");
  }
  if (bytes.toString("latin1", 8, 12) !== "WAVE") {
    throw new WavFormatError("not a WAV file: the RIFF form is not WAVE");
  }
  let format: { tag: number; channels: number; rate: number; bits: number } | undefined;
  let offset = 12;
  while (offset + 8 <= bytes.length) {
    const id = bytes.toString("latin1", offset, offset + 4);
    const declared = bytes.readUInt32LE(offset + 4);
    const body = offset + 8;
    // A streaming writer that never closed leaves 0 or 0xFFFFFFFF: take what is there.
    const available = bytes.length - body;
    const size = id === "data" && declared === 0 ? available : Math.min(declared, available);
    if (id === "fmt ") {
      if (size < 16) throw new WavFormatError("WAV fmt chunk is shorter than 16 bytes");
      let tag = bytes.readUInt16LE(body);
      if (tag === FORMAT_EXTENSIBLE && size >= 26) tag = bytes.readUInt16LE(body + 24);
      format = {
        tag,
        channels: bytes.readUInt16LE(body + 2),
        rate: bytes.readUInt32LE(body + 4),
        bits: bytes.readUInt16LE(body + 14),
      };
    } else if (id === "data") {
      if (format === undefined) throw new WavFormatError("WAV data chunk before its fmt chunk");
      if (format.tag !== FORMAT_PCM) {
        throw new WavFormatError(`WAV format tag ${format.tag} is unsupported (only PCM, 1)`);
      }
      if (format.bits !== 16) {
        throw new WavFormatError(`WAV with ${format.bits}-bit samples is unsupported (only 16)`);
      }
      if (format.channels < 1) throw new WavFormatError("WAV with 0 channels");
      if (format.rate < 1000 || format.rate > 384000) {
        throw new WavFormatError(`WAV sample rate ${format.rate} Hz is unsupported`);
      }
      const usable = size - (size % (2 * format.channels));
      const samples = new Int16Array(usable / 2);
      for (let i = 0; i < samples.length; i++) samples[i] = bytes.readInt16LE(body + i * 2);
      return { sampleRate: format.rate, channels: format.channels, samples };
    }
    offset = body + size + (size % 2); // chunks are word-aligned
  }
  throw new WavFormatError(
    format === undefined ? "WAV file has no fmt chunk" : "WAV file has no data chunk",
  );
}

/** Reads a WAV file and converts it to 8 kHz mono (see {@link toMono8k}). */
export async function readWavFile(path: string): Promise<Int16Array> {
  const audio = parseWav(await readFile(path));
  return toMono8k(audio);
}

/**
 * Averages the channels, then resamples to 8000 Hz by linear interpolation. Going down, each
 * output sample first averages the input samples it spans (a box filter), which keeps most of
 * what would alias out of the telephone band; good enough for test tones and speech prompts.
 */
export function toMono8k(audio: WavAudio, targetRate = 8000): Int16Array {
  const { channels, sampleRate } = audio;
  const frames = Math.floor(audio.samples.length / channels);
  const mono = new Float64Array(frames);
  for (let i = 0; i < frames; i++) {
    let sum = 0;
    for (let c = 0; c < channels; c++) sum += audio.samples[i * channels + c]!;
    mono[i] = sum / channels;
  }
  if (sampleRate === targetRate) return Int16Array.from(mono, (v) => Math.round(v));
  const ratio = sampleRate / targetRate;
  const outLength = Math.floor(frames / ratio);
  const out = new Int16Array(outLength);
  const span = ratio > 1 ? ratio : 1;
  for (let i = 0; i < outLength; i++) {
    const centre = i * ratio;
    let value: number;
    if (span > 1) {
      const from = Math.max(0, Math.floor(centre - span / 2));
      const to = Math.min(frames, Math.ceil(centre + span / 2));
      let sum = 0;
      for (let j = from; j < to; j++) sum += mono[j]!;
      value = sum / Math.max(1, to - from);
    } else {
      const j = Math.floor(centre);
      const frac = centre - j;
      value = mono[j]! * (1 - frac) + (mono[Math.min(j + 1, frames - 1)] ?? 0) * frac;
    }
    out[i] = Math.max(-32768, Math.min(32767, Math.round(value)));
  }
  return out;
}

function wavHeader(dataBytes: number, sampleRate: number): Buffer {
  const header = Buffer.alloc(WAV_HEADER_BYTES);
  header.write("RIFF", 0, "latin1");
  header.writeUInt32LE(36 + dataBytes, 4);
  header.write("WAVE", 8, "latin1");
  header.write("fmt ", 12, "latin1");
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(FORMAT_PCM, 20);
  header.writeUInt16LE(1, 22);
  header.writeUInt32LE(sampleRate, 24);
  header.writeUInt32LE(sampleRate * 2, 28);
  header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34);
  header.write("data", 36, "latin1");
  header.writeUInt32LE(dataBytes, 40);
  return header;
}

function samplesToBytes(samples: Int16Array): Buffer {
  const out = Buffer.allocUnsafe(samples.length * 2);
  for (let i = 0; i < samples.length; i++) out.writeInt16LE(samples[i]!, i * 2);
  return out;
}

/** A whole 16-bit PCM mono WAV file. */
export function encodeWav(samples: Int16Array, sampleRate = 8000): Buffer {
  return Buffer.concat([wavHeader(samples.length * 2, sampleRate), samplesToBytes(samples)]);
}

/** Where received audio goes: 20-ms frames of 16-bit PCM at 8 kHz. */
export interface AudioSink {
  write(samples: Int16Array): void;
}

/**
 * Records to a WAV file as frames arrive: the header goes first with sizes of 0, the frames
 * are appended in order, and close() writes the real sizes. write() never blocks the caller;
 * a failed write is kept and reported by close().
 */
export class WavRecorder implements AudioSink {
  readonly path: string;
  readonly sampleRate: number;
  #file: FileHandle | undefined;
  #chain: Promise<void> = Promise.resolve();
  #dataBytes = 0;
  #failure: unknown;
  #closed = false;

  constructor(options: { path: string; sampleRate?: number }) {
    this.path = options.path;
    this.sampleRate = options.sampleRate ?? 8000;
  }

  /** Creates (or truncates) the file and writes the header. */
  async start(): Promise<void> {
    this.#file = await open(this.path, "w");
    await this.#file.write(wavHeader(0, this.sampleRate), 0, WAV_HEADER_BYTES, 0);
  }

  /** Samples recorded so far. */
  get samplesWritten(): number {
    return this.#dataBytes / 2;
  }

  write(samples: Int16Array): void {
    const file = this.#file;
    if (file === undefined || this.#closed || samples.length === 0) return;
    const bytes = samplesToBytes(samples);
    const position = WAV_HEADER_BYTES + this.#dataBytes;
    this.#dataBytes += bytes.length;
    this.#chain = this.#chain.then(async () => {
      if (this.#failure !== undefined) return;
      try {
        await file.write(bytes, 0, bytes.length, position);
      } catch (error) {
        this.#failure = error;
      }
    });
  }

  /** Waits for pending writes, fixes the header's sizes and closes the file. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const file = this.#file;
    if (file === undefined) return;
    await this.#chain;
    try {
      if (this.#failure === undefined) {
        const header = wavHeader(this.#dataBytes, this.sampleRate);
        await file.write(header, 0, WAV_HEADER_BYTES, 0);
      }
    } finally {
      await file.close();
    }
    if (this.#failure !== undefined) {
      throw new WavFormatError(`recording ${this.path} failed`, { cause: this.#failure });
    }
  }
}
