// RTCP (RFC 3550 §6): sender and receiver reports with their report blocks, SDES CNAME and BYE,
// written as compound packets and read back. Reading never throws: a damaged compound packet is
// refused whole with the reason, as §6.1 and A.2's validity checks ask.

export const RTCP_SR = 200;
export const RTCP_RR = 201;
export const RTCP_SDES = 202;
export const RTCP_BYE = 203;
const SDES_CNAME = 1;

/** One report block (§6.4.1): what a receiver saw of one source. */
export interface ReportBlock {
  readonly ssrc: number;
  /** Lost since the previous report, as a fixed-point fraction ×256 (0–255). */
  readonly fractionLost: number;
  /** Cumulative packets lost, signed 24-bit (duplicates can make it negative). */
  readonly cumulativeLost: number;
  readonly extendedHighestSequence: number;
  /** Interarrival jitter in timestamp units. */
  readonly jitter: number;
  /** The middle 32 bits of the NTP timestamp of the last SR from this source, 0 if none. */
  readonly lastSr: number;
  /** Delay since that SR in units of 1/65536 s. */
  readonly delaySinceLastSr: number;
}

export interface SenderReport {
  readonly type: "sr";
  readonly ssrc: number;
  readonly ntpSeconds: number;
  readonly ntpFraction: number;
  readonly rtpTimestamp: number;
  readonly packetCount: number;
  readonly octetCount: number;
  readonly reports: readonly ReportBlock[];
}

export interface ReceiverReport {
  readonly type: "rr";
  readonly ssrc: number;
  readonly reports: readonly ReportBlock[];
}

export interface SourceDescription {
  readonly type: "sdes";
  /** Each chunk's SSRC with its CNAME (other items are skipped). */
  readonly chunks: readonly { readonly ssrc: number; readonly cname?: string }[];
}

export interface Goodbye {
  readonly type: "bye";
  readonly ssrcs: readonly number[];
  readonly reason?: string;
}

/** A packet type this module does not interpret (APP, feedback, XR …), kept by type. */
export interface OtherRtcpPacket {
  readonly type: "other";
  readonly packetType: number;
  readonly body: Buffer;
}

export type RtcpPacket =
  SenderReport | ReceiverReport | SourceDescription | Goodbye | OtherRtcpPacket;

export type RtcpReadResult =
  | { readonly ok: true; readonly packets: readonly RtcpPacket[] }
  | { readonly ok: false; readonly reason: string };

function writeHeader(
  out: Buffer,
  offset: number,
  count: number,
  type: number,
  bytes: number,
): void {
  out[offset] = 0x80 | count;
  out[offset + 1] = type;
  out.writeUInt16BE(bytes / 4 - 1, offset + 2);
}

function writeReportBlocks(out: Buffer, offset: number, reports: readonly ReportBlock[]): void {
  reports.forEach((r, i) => {
    const at = offset + i * 24;
    out.writeUInt32BE(r.ssrc >>> 0, at);
    out[at + 4] = Math.max(0, Math.min(255, Math.round(r.fractionLost)));
    // Clamped to what 24 signed bits hold (§6.4.1), then written as two's complement.
    const lost = Math.max(-0x800000, Math.min(0x7fffff, Math.trunc(r.cumulativeLost)));
    out.writeUIntBE(lost & 0xffffff, at + 5, 3);
    out.writeUInt32BE(r.extendedHighestSequence >>> 0, at + 8);
    out.writeUInt32BE(Math.max(0, Math.trunc(r.jitter)) >>> 0, at + 12);
    out.writeUInt32BE(r.lastSr >>> 0, at + 16);
    out.writeUInt32BE(Math.max(0, Math.trunc(r.delaySinceLastSr)) >>> 0, at + 20);
  });
}

function writePacket(packet: RtcpPacket): Buffer {
  switch (packet.type) {
    case "sr":
    case "rr": {
      if (packet.reports.length > 31)
        throw new RangeError("an RTCP report holds at most 31 blocks");
      const head = packet.type === "sr" ? 28 : 8;
      const out = Buffer.alloc(head + packet.reports.length * 24);
      writeHeader(
        out,
        0,
        packet.reports.length,
        packet.type === "sr" ? RTCP_SR : RTCP_RR,
        out.length,
      );
      out.writeUInt32BE(packet.ssrc >>> 0, 4);
      if (packet.type === "sr") {
        out.writeUInt32BE(packet.ntpSeconds >>> 0, 8);
        out.writeUInt32BE(packet.ntpFraction >>> 0, 12);
        out.writeUInt32BE(packet.rtpTimestamp >>> 0, 16);
        out.writeUInt32BE(packet.packetCount >>> 0, 20);
        out.writeUInt32BE(packet.octetCount >>> 0, 24);
      }
      writeReportBlocks(out, head, packet.reports);
      return out;
    }
    case "sdes": {
      if (packet.chunks.length > 31) throw new RangeError("an SDES packet holds at most 31 chunks");
      const chunks = packet.chunks.map((chunk) => {
        const cname = Buffer.from(chunk.cname ?? "", "utf8").subarray(0, 255);
        // SSRC, the CNAME item, then a null item and padding to a 32-bit boundary (§6.5).
        const items = chunk.cname === undefined ? 0 : 2 + cname.length;
        const length = Math.ceil((4 + items + 1) / 4) * 4;
        const out = Buffer.alloc(length);
        out.writeUInt32BE(chunk.ssrc >>> 0, 0);
        if (chunk.cname !== undefined) {
          out[4] = SDES_CNAME;
          out[5] = cname.length;
          cname.copy(out, 6);
        }
        return out;
      });
      const body = Buffer.concat(chunks);
      const out = Buffer.alloc(4 + body.length);
      writeHeader(out, 0, packet.chunks.length, RTCP_SDES, out.length);
      body.copy(out, 4);
      return out;
    }
    case "bye": {
      if (packet.ssrcs.length > 31) throw new RangeError("a BYE names at most 31 sources");
      const reason = Buffer.from(packet.reason ?? "", "utf8").subarray(0, 255);
      const reasonBytes = packet.reason === undefined ? 0 : 1 + reason.length;
      const length = Math.ceil((4 + packet.ssrcs.length * 4 + reasonBytes) / 4) * 4;
      const out = Buffer.alloc(length);
      writeHeader(out, 0, packet.ssrcs.length, RTCP_BYE, length);
      packet.ssrcs.forEach((ssrc, i) => out.writeUInt32BE(ssrc >>> 0, 4 + i * 4));
      if (packet.reason !== undefined) {
        const at = 4 + packet.ssrcs.length * 4;
        out[at] = reason.length;
        reason.copy(out, at + 1);
      }
      return out;
    }
    case "other": {
      const length = Math.ceil(packet.body.length / 4) * 4;
      const out = Buffer.alloc(4 + length);
      writeHeader(out, 0, 0, packet.packetType, out.length);
      packet.body.copy(out, 4);
      return out;
    }
  }
}

/**
 * Writes a compound packet. §6.1: it starts with an SR or RR (an empty RR when the first packet
 * given is something else) — callers pass the report first, then SDES, then BYE.
 */
export function writeRtcpCompound(packets: readonly RtcpPacket[]): Buffer {
  const parts = packets.map(writePacket);
  const first = packets[0]?.type;
  if (first !== "sr" && first !== "rr") {
    parts.unshift(writePacket({ type: "rr", ssrc: 0, reports: [] }));
  }
  return Buffer.concat(parts);
}

function readReportBlocks(bytes: Buffer, offset: number, count: number): ReportBlock[] {
  const reports: ReportBlock[] = [];
  for (let i = 0; i < count; i++) {
    const at = offset + i * 24;
    reports.push({
      ssrc: bytes.readUInt32BE(at),
      fractionLost: bytes[at + 4]!,
      cumulativeLost: bytes.readIntBE(at + 5, 3),
      extendedHighestSequence: bytes.readUInt32BE(at + 8),
      jitter: bytes.readUInt32BE(at + 12),
      lastSr: bytes.readUInt32BE(at + 16),
      delaySinceLastSr: bytes.readUInt32BE(at + 20),
    });
  }
  return reports;
}

function readSdes(body: Buffer, count: number): SourceDescription | string {
  const chunks: { ssrc: number; cname?: string }[] = [];
  let at = 0;
  for (let c = 0; c < count; c++) {
    if (at + 4 > body.length) return "SDES chunk is cut short";
    const ssrc = body.readUInt32BE(at);
    at += 4;
    let cname: string | undefined;
    for (;;) {
      if (at >= body.length) return "SDES items run past the packet";
      const item = body[at]!;
      if (item === 0) break;
      if (at + 2 > body.length || at + 2 + body[at + 1]! > body.length) {
        return "SDES item runs past the packet";
      }
      const length = body[at + 1]!;
      if (item === SDES_CNAME) cname = body.toString("utf8", at + 2, at + 2 + length);
      at += 2 + length;
    }
    at = (Math.floor(at / 4) + 1) * 4; // the null item(s) pad the chunk to 32 bits
    chunks.push(cname === undefined ? { ssrc } : { ssrc, cname });
  }
  return { type: "sdes", chunks };
}

/** Reads a compound RTCP packet (§6.1, A.2), refusing damaged input with the reason. */
export function readRtcpCompound(datagram: Buffer): RtcpReadResult {
  const packets: RtcpPacket[] = [];
  let offset = 0;
  if (datagram.length < 4) return { ok: false, reason: "shorter than an RTCP header" };
  while (offset < datagram.length) {
    if (datagram.length - offset < 4)
      return { ok: false, reason: "trailing bytes after the last packet" };
    const first = datagram[offset]!;
    if (first >> 6 !== 2) return { ok: false, reason: `version ${first >> 6}, not 2` };
    const count = first & 0x1f;
    const packetType = datagram[offset + 1]!;
    const bytes = (datagram.readUInt16BE(offset + 2) + 1) * 4;
    const end = offset + bytes;
    if (end > datagram.length)
      return { ok: false, reason: `packet type ${packetType} runs past the datagram` };
    const padded = (first & 0x20) !== 0;
    if (padded && end !== datagram.length) {
      return { ok: false, reason: "padding on a packet that is not the last" };
    }
    let bodyEnd = end;
    if (padded) {
      const padding = datagram[end - 1]!;
      if (padding === 0 || padding > bytes - 4) return { ok: false, reason: "bad padding length" };
      bodyEnd -= padding;
    }
    if (offset === 0 && packetType !== RTCP_SR && packetType !== RTCP_RR) {
      return { ok: false, reason: `compound packet starts with type ${packetType}, not SR or RR` };
    }
    const body = datagram.subarray(offset + 4, bodyEnd);
    if (packetType === RTCP_SR || packetType === RTCP_RR) {
      const head = packetType === RTCP_SR ? 24 : 4;
      if (body.length < head + count * 24) {
        return {
          ok: false,
          reason: `${packetType === RTCP_SR ? "SR" : "RR"} shorter than its ${count} report blocks`,
        };
      }
      const reports = readReportBlocks(body, head, count);
      const ssrc = body.readUInt32BE(0);
      packets.push(
        packetType === RTCP_SR
          ? {
              type: "sr",
              ssrc,
              ntpSeconds: body.readUInt32BE(4),
              ntpFraction: body.readUInt32BE(8),
              rtpTimestamp: body.readUInt32BE(12),
              packetCount: body.readUInt32BE(16),
              octetCount: body.readUInt32BE(20),
              reports,
            }
          : { type: "rr", ssrc, reports },
      );
    } else if (packetType === RTCP_SDES) {
      const sdes = readSdes(body, count);
      if (typeof sdes === "string") return { ok: false, reason: sdes };
      packets.push(sdes);
    } else if (packetType === RTCP_BYE) {
      if (body.length < count * 4)
        return { ok: false, reason: `BYE shorter than its ${count} sources` };
      const ssrcs: number[] = [];
      for (let i = 0; i < count; i++) ssrcs.push(body.readUInt32BE(i * 4));
      const at = count * 4;
      if (at < body.length && body[at]! > 0) {
        const length = body[at]!;
        if (at + 1 + length > body.length)
          return { ok: false, reason: "BYE reason runs past the packet" };
        packets.push({
          type: "bye",
          ssrcs,
          reason: body.toString("utf8", at + 1, at + 1 + length),
        });
      } else {
        packets.push({ type: "bye", ssrcs });
      }
    } else {
      packets.push({ type: "other", packetType, body: Buffer.from(body) });
    }
    offset = end;
  }
  return { ok: true, packets };
}

/** NTP seconds between 1900 and the Unix epoch. */
const NTP_EPOCH_OFFSET_S = 2208988800;

/** An NTP timestamp (§4) of a wall-clock time in ms since the Unix epoch. */
export function ntpTimestamp(epochMs: number): { seconds: number; fraction: number } {
  const seconds = Math.floor(epochMs / 1000);
  const fraction = Math.floor(((epochMs - seconds * 1000) / 1000) * 0x100000000);
  return { seconds: (seconds + NTP_EPOCH_OFFSET_S) >>> 0, fraction: fraction >>> 0 };
}

/** The middle 32 bits of an NTP timestamp, as LSR carries it (§6.4.1). */
export function ntpMiddle32(seconds: number, fraction: number): number {
  return (((seconds & 0xffff) << 16) | (fraction >>> 16)) >>> 0;
}
