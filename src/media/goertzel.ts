// The Goertzel algorithm (G. Goertzel, 1958): the power of one frequency in a block of samples,
// used to find a test tone in a recording and to tell that the stretch before it is silent.

/** The squared magnitude of the DFT bin nearest `frequency` over `samples`. */
export function goertzelPower(
  samples: ArrayLike<number>,
  frequency: number,
  sampleRate: number,
): number {
  const n = samples.length;
  if (n === 0) return 0;
  const k = Math.round((n * frequency) / sampleRate);
  const coefficient = 2 * Math.cos((2 * Math.PI * k) / n);
  let s1 = 0;
  let s2 = 0;
  for (let i = 0; i < n; i++) {
    const s0 = samples[i]! + coefficient * s1 - s2;
    s2 = s1;
    s1 = s0;
  }
  return s1 * s1 + s2 * s2 - coefficient * s1 * s2;
}

/**
 * The share of the block's power at `frequency`, 0…1: 1 for a pure tone on the bin, near 0
 * for other tones, noise or silence (0 for an all-zero block).
 */
export function toneRatio(
  samples: ArrayLike<number>,
  frequency: number,
  sampleRate: number,
): number {
  let energy = 0;
  for (let i = 0; i < samples.length; i++) energy += samples[i]! * samples[i]!;
  if (energy === 0) return 0;
  // A sine of amplitude A on the bin gives power (A·N/2)² and energy A²·N/2.
  return Math.min(
    1,
    (2 * goertzelPower(samples, frequency, sampleRate)) / (samples.length * energy),
  );
}

/** The RMS level of a block in dBFS (full scale 32768); -Infinity for digital silence. */
export function levelDbfs(samples: ArrayLike<number>): number {
  if (samples.length === 0) return -Infinity;
  let energy = 0;
  for (let i = 0; i < samples.length; i++) energy += samples[i]! * samples[i]!;
  const rms = Math.sqrt(energy / samples.length);
  return rms === 0 ? -Infinity : 20 * Math.log10(rms / 32768);
}

export interface ToneScan {
  /** Index of the first sample of the first block holding the tone, or -1. */
  readonly firstToneSample: number;
  /** Blocks in which the tone was found. */
  readonly toneBlocks: number;
  readonly blocks: number;
  /** The loudest block before the tone, in dBFS (-Infinity when digitally silent). */
  readonly maxLevelBeforeDbfs: number;
}

/**
 * Scans a recording block by block (default 20 ms at 8 kHz) for a tone: a block holds it when
 * its ratio reaches `minRatio` (default 0.8) and its level `minLevelDbfs` (default -40).
 */
export function scanForTone(
  samples: ArrayLike<number>,
  options: {
    frequency: number;
    sampleRate?: number;
    blockSize?: number;
    minRatio?: number;
    minLevelDbfs?: number;
  },
): ToneScan {
  const rate = options.sampleRate ?? 8000;
  const size = options.blockSize ?? Math.round(rate / 50);
  const minRatio = options.minRatio ?? 0.8;
  const minLevel = options.minLevelDbfs ?? -40;
  let first = -1;
  let toneBlocks = 0;
  let blocks = 0;
  let maxBefore = -Infinity;
  for (let start = 0; start + size <= samples.length; start += size) {
    const block = Array.prototype.slice.call(samples, start, start + size) as number[];
    blocks++;
    const level = levelDbfs(block);
    const hasTone = level >= minLevel && toneRatio(block, options.frequency, rate) >= minRatio;
    if (hasTone) {
      toneBlocks++;
      if (first < 0) first = start;
    } else if (first < 0) {
      maxBefore = Math.max(maxBefore, level);
    }
  }
  return { firstToneSample: first, toneBlocks, blocks, maxLevelBeforeDbfs: maxBefore };
}
