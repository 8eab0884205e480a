// The RTCP a video receiver needs to ask for a key frame: Picture Loss Indication (RFC 4585
// §6.3.1), sent in a compound packet behind an empty receiver report and the CNAME, as
// RFC 4585 §3.1 and RFC 3550 §6.1 want every RTCP packet to be.
import { writeRtcpCompound, type ReceiverReport, type SenderReport } from "../rtcp.js";
import { RTP_VERSION } from "../rtp-packet.js";

/** RFC 4585 §6.1: payload-specific feedback. */
const RTCP_PSFB = 206;
/** RFC 4585 §6.3: FMT 1 of PSFB is PLI. */
const PSFB_PLI = 1;

export interface PictureLossIndication {
  /** Who asks. */
  readonly senderSsrc: number;
  /** Whose stream lost a picture. */
  readonly mediaSsrc: number;
}

/** The 12-byte PLI alone (RFC 4585 §6.1 common header, FMT 1, no FCI). */
export function writePictureLossIndication(pli: PictureLossIndication): Buffer {
  const fb = Buffer.alloc(12);
  fb[0] = (RTP_VERSION << 6) | PSFB_PLI;
  fb[1] = RTCP_PSFB;
  fb.writeUInt16BE(2, 2);
  fb.writeUInt32BE(pli.senderSsrc >>> 0, 4);
  fb.writeUInt32BE(pli.mediaSsrc >>> 0, 8);
  return fb;
}

/**
 * A compound RTCP packet asking `mediaSsrc` for a key frame: the report (`reports`, an RR
 * without blocks by default), SDES with the CNAME, then the PLI. RFC 4585 §6.3.1.1: "The PLI
 * FB message is identified by PT=PSFB and FMT=1. There MUST be exactly one PLI contained in
 * the FCI field." — its FCI is empty.
 */
export function writePictureLossRequest(
  pli: PictureLossIndication & { cname: string; report?: SenderReport | ReceiverReport },
): Buffer {
  return Buffer.concat([
    writeRtcpCompound([
      pli.report ?? { type: "rr", ssrc: pli.senderSsrc, reports: [] },
      { type: "sdes", chunks: [{ ssrc: pli.senderSsrc, cname: pli.cname }] },
    ]),
    writePictureLossIndication(pli),
  ]);
}

/**
 * The PLIs in an RTCP datagram (compound or alone). A damaged length ends the walk: what was
 * read before it is kept, nothing is thrown.
 */
export function readPictureLossIndications(datagram: Buffer): PictureLossIndication[] {
  const found: PictureLossIndication[] = [];
  let offset = 0;
  while (datagram.length - offset >= 4) {
    const first = datagram[offset]!;
    if (first >> 6 !== RTP_VERSION) break;
    const bytes = (datagram.readUInt16BE(offset + 2) + 1) * 4;
    if (bytes > datagram.length - offset) break;
    if (datagram[offset + 1] === RTCP_PSFB && (first & 0x1f) === PSFB_PLI && bytes >= 12) {
      found.push({
        senderSsrc: datagram.readUInt32BE(offset + 4),
        mediaSsrc: datagram.readUInt32BE(offset + 8),
      });
    }
    offset += bytes;
  }
  return found;
}
