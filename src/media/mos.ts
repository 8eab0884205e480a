// Call quality as the ITU-T G.107 E-model rates it: R = Ro − Is − Id − Ie,eff + A, mapped to an
// estimated MOS (G.107 Annex B). Ro − Is is 93.2 with G.107's default parameters. Ie,eff follows
// G.107 §7.6 with Ie and Bpl from G.113 Appendix I; the delay impairment Id uses the widely used
// simplification of Cole and Rosenbluth (2001) of G.107's Id for echo-free handsets.

/** G.107 default Ro − Is. */
export const DEFAULT_R_BASE = 93.2;

export interface CodecImpairment {
  /** Equipment impairment factor Ie (G.113 Appendix I). */
  readonly ie: number;
  /** Packet-loss robustness factor Bpl. */
  readonly bpl: number;
}

/** G.113 Appendix I, Table I.3: G.711 with packet loss concealment (Appendix I of G.711). */
export const G711_PLC: CodecImpairment = { ie: 0, bpl: 25.1 };
/** G.113 Appendix I: G.711 without concealment (silence inserted for lost packets). */
export const G711_NO_PLC: CodecImpairment = { ie: 0, bpl: 4.3 };

export interface EModelInput {
  /** Packets lost, in percent (0–100). */
  readonly packetLossPercent: number;
  /** Mouth-to-ear delay in ms: network one way, plus the jitter buffer, plus packetisation. */
  readonly oneWayDelayMs: number;
  readonly codec?: CodecImpairment;
  /** BurstR (G.107 §7.6): 1 for random loss. */
  readonly burstRatio?: number;
  /** Advantage factor A (0 for wired phones). */
  readonly advantage?: number;
}

/** Ie,eff (G.107 eq. 7-29). */
export function effectiveEquipmentImpairment(
  codec: CodecImpairment,
  lossPercent: number,
  burstRatio = 1,
): number {
  const ppl = Math.max(0, Math.min(100, lossPercent));
  return codec.ie + ((95 - codec.ie) * ppl) / (ppl / burstRatio + codec.bpl);
}

/** The delay impairment Id for a one-way delay in ms (Cole & Rosenbluth). */
export function delayImpairment(oneWayDelayMs: number): number {
  const d = Math.max(0, oneWayDelayMs);
  return 0.024 * d + (d > 177.3 ? 0.11 * (d - 177.3) : 0);
}

/** The transmission rating R, 0–100. */
export function rFactor(input: EModelInput): number {
  const codec = input.codec ?? G711_PLC;
  const r =
    DEFAULT_R_BASE -
    delayImpairment(input.oneWayDelayMs) -
    effectiveEquipmentImpairment(codec, input.packetLossPercent, input.burstRatio ?? 1) +
    (input.advantage ?? 0);
  return Math.max(0, Math.min(100, r));
}

/** G.107 Annex B: MOS_CQE from R. */
export function mosFromR(r: number): number {
  if (r <= 0) return 1;
  if (r >= 100) return 4.5;
  return Math.max(1, 1 + 0.035 * r + r * (r - 60) * (100 - r) * 7e-6);
}

/** MOS estimated from loss and delay. */
export function estimateMos(input: EModelInput): number {
  return mosFromR(rFactor(input));
}
