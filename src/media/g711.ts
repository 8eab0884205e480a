// G.711 (ITU-T G.711, 1988): µ-law and A-law companding of 16-bit linear PCM to 8-bit codes.
// Decoding is a 256-entry table and encoding a 65536-entry table built once from the reference
// algorithm (the Sun/CCITT g711.c that G.191's software tools carry), so a 20-ms frame costs
// 160 array look-ups each way.

/** RTP/AVP static payload types (RFC 3551 §6). */
export const PCMU_PAYLOAD_TYPE = 0;
export const PCMA_PAYLOAD_TYPE = 8;

export type G711Law = "pcmu" | "pcma";

const MULAW_BIAS = 0x84;
const MULAW_CLIP = 32635;

function mulawEncodeSample(pcm: number): number {
  let sample = pcm;
  const sign = sample < 0 ? 0x80 : 0;
  if (sign !== 0) sample = -sample;
  if (sample > MULAW_CLIP) sample = MULAW_CLIP;
  sample += MULAW_BIAS;
  let exponent = 7;
  for (let mask = 0x4000; (sample & mask) === 0 && exponent > 0; mask >>= 1) exponent--;
  const mantissa = (sample >> (exponent + 3)) & 0x0f;
  return ~(sign | (exponent << 4) | mantissa) & 0xff;
}

function mulawDecodeSample(code: number): number {
  const u = ~code & 0xff;
  let t = ((u & 0x0f) << 3) + MULAW_BIAS;
  t <<= (u & 0x70) >> 4;
  return (u & 0x80) !== 0 ? MULAW_BIAS - t : t - MULAW_BIAS;
}

const ALAW_SEGMENT_ENDS = [0x1f, 0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff];

function alawEncodeSample(pcm: number): number {
  // A-law works on 13 bits; even bits are inverted on the line (the 0x55 mask).
  let value = pcm >> 3;
  let mask: number;
  if (value >= 0) {
    mask = 0xd5;
  } else {
    mask = 0x55;
    value = -value - 1;
  }
  let segment = 0;
  while (segment < 8 && value > ALAW_SEGMENT_ENDS[segment]!) segment++;
  if (segment >= 8) return 0x7f ^ mask;
  let code = segment << 4;
  code |= segment < 2 ? (value >> 1) & 0x0f : (value >> segment) & 0x0f;
  return code ^ mask;
}

function alawDecodeSample(code: number): number {
  const a = code ^ 0x55;
  let t = (a & 0x0f) << 4;
  const segment = (a & 0x70) >> 4;
  if (segment === 0) t += 8;
  else if (segment === 1) t += 0x108;
  else t = (t + 0x108) << (segment - 1);
  return (a & 0x80) !== 0 ? t : -t;
}

function buildTables(
  encode: (pcm: number) => number,
  decode: (code: number) => number,
): { encode: Uint8Array; decode: Int16Array } {
  const enc = new Uint8Array(65536);
  for (let i = 0; i < 65536; i++) enc[i] = encode((i << 16) >> 16);
  const dec = new Int16Array(256);
  for (let i = 0; i < 256; i++) dec[i] = decode(i);
  return { encode: enc, decode: dec };
}

const MULAW = buildTables(mulawEncodeSample, mulawDecodeSample);
const ALAW = buildTables(alawEncodeSample, alawDecodeSample);

function tables(law: G711Law): { encode: Uint8Array; decode: Int16Array } {
  return law === "pcmu" ? MULAW : ALAW;
}

/** Encodes 16-bit PCM samples to G.711 codes, one byte per sample. */
export function g711Encode(law: G711Law, samples: Int16Array): Buffer {
  const table = tables(law).encode;
  const out = Buffer.allocUnsafe(samples.length);
  for (let i = 0; i < samples.length; i++) out[i] = table[samples[i]! & 0xffff]!;
  return out;
}

/** Decodes G.711 codes to 16-bit PCM samples. */
export function g711Decode(law: G711Law, codes: Uint8Array): Int16Array {
  const table = tables(law).decode;
  const out = new Int16Array(codes.length);
  for (let i = 0; i < codes.length; i++) out[i] = table[codes[i]!]!;
  return out;
}

/** The code of one sample (for tests and tables of known values). */
export function g711EncodeSample(law: G711Law, sample: number): number {
  return tables(law).encode[sample & 0xffff]!;
}

/** The linear value of one code. */
export function g711DecodeSample(law: G711Law, code: number): number {
  return tables(law).decode[code & 0xff]!;
}

/** The G.711 law of a static payload type, or undefined for any other. */
export function g711LawOf(payloadType: number): G711Law | undefined {
  if (payloadType === PCMU_PAYLOAD_TYPE) return "pcmu";
  if (payloadType === PCMA_PAYLOAD_TYPE) return "pcma";
  return undefined;
}

/** The code of silence: what a zero sample encodes to (µ-law 0xFF, A-law 0xD5). */
export function g711Silence(law: G711Law): number {
  return law === "pcmu" ? 0xff : 0xd5;
}
