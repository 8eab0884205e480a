// The RTP fixed header (RFC 3550 §5.1): what every media stream in sipsteer reads and writes.
// Header extensions (§5.3.1) are skipped over on reading and never written; CSRCs are kept.

export const RTP_VERSION = 2;
/** The fixed header without CSRCs or extension. */
export const RTP_HEADER_BYTES = 12;

export interface RtpPacket {
  readonly payloadType: number;
  readonly sequence: number;
  readonly timestamp: number;
  readonly ssrc: number;
  readonly marker: boolean;
  readonly csrcs: readonly number[];
  /** A view into the datagram it was read from (no copy). */
  readonly payload: Buffer;
}

export interface RtpPacketInput {
  readonly payloadType: number;
  readonly sequence: number;
  readonly timestamp: number;
  readonly ssrc: number;
  readonly marker?: boolean;
  readonly csrcs?: readonly number[];
  readonly payload: Uint8Array;
}

/** Why a datagram is not RTP, for the stream's counters. */
export type RtpReadFailure = "short" | "version" | "padding" | "extension" | "csrc";

/**
 * Reads an RTP packet, or says why the datagram is none. On a port that RTCP shares (RFC 5761)
 * callers check {@link isRtcp} first: an RTCP packet would read as RTP with the marker set.
 */
export function readRtpPacket(datagram: Buffer): RtpPacket | RtpReadFailure {
  if (datagram.length < RTP_HEADER_BYTES) return "short";
  const first = datagram[0]!;
  if (first >> 6 !== RTP_VERSION) return "version";
  const csrcCount = first & 0x0f;
  let offset = RTP_HEADER_BYTES + csrcCount * 4;
  if (datagram.length < offset) return "csrc";
  if ((first & 0x10) !== 0) {
    // §5.3.1: a 4-byte extension header whose second half is the length in 32-bit words.
    if (datagram.length < offset + 4) return "extension";
    offset += 4 + datagram.readUInt16BE(offset + 2) * 4;
    if (datagram.length < offset) return "extension";
  }
  let end = datagram.length;
  if ((first & 0x20) !== 0) {
    // §5.1: the last byte counts the padding, itself included.
    const padding = datagram[end - 1]!;
    if (padding === 0 || end - padding < offset) return "padding";
    end -= padding;
  }
  const second = datagram[1]!;
  const csrcs: number[] = [];
  for (let i = 0; i < csrcCount; i++) csrcs.push(datagram.readUInt32BE(RTP_HEADER_BYTES + i * 4));
  return {
    payloadType: second & 0x7f,
    marker: (second & 0x80) !== 0,
    sequence: datagram.readUInt16BE(2),
    timestamp: datagram.readUInt32BE(4),
    ssrc: datagram.readUInt32BE(8),
    csrcs,
    payload: datagram.subarray(offset, end),
  };
}

/** Writes an RTP packet (no padding, no extension). */
export function writeRtpPacket(packet: RtpPacketInput): Buffer {
  const csrcs = packet.csrcs ?? [];
  if (csrcs.length > 15) throw new RangeError("RTP carries at most 15 CSRCs");
  if (!Number.isInteger(packet.payloadType) || packet.payloadType < 0 || packet.payloadType > 127) {
    throw new RangeError(`RTP payload type ${packet.payloadType} is not 0–127`);
  }
  const header = RTP_HEADER_BYTES + csrcs.length * 4;
  const out = Buffer.allocUnsafe(header + packet.payload.length);
  out[0] = (RTP_VERSION << 6) | csrcs.length;
  out[1] = (packet.marker === true ? 0x80 : 0) | packet.payloadType;
  out.writeUInt16BE(packet.sequence & 0xffff, 2);
  out.writeUInt32BE(packet.timestamp >>> 0, 4);
  out.writeUInt32BE(packet.ssrc >>> 0, 8);
  csrcs.forEach((csrc, i) => out.writeUInt32BE(csrc >>> 0, RTP_HEADER_BYTES + i * 4));
  out.set(packet.payload, header);
  return out;
}

/**
 * Whether a datagram on an RTP port is RTCP (RFC 5761 §4): RTCP packet types 192–223 fall where
 * RTP would have the marker bit and payload types 64–95, which RTP/AVP leaves unassigned.
 */
export function isRtcp(datagram: Buffer): boolean {
  if (datagram.length < 2 || datagram[0]! >> 6 !== RTP_VERSION) return false;
  const type = datagram[1]!;
  return type >= 192 && type <= 223;
}

/** The signed distance from sequence `a` to `b` modulo 2^16 (RFC 3550 A.1's arithmetic). */
export function sequenceDelta(a: number, b: number): number {
  const d = (b - a) & 0xffff;
  return d >= 0x8000 ? d - 0x10000 : d;
}
