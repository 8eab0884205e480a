// The RTCP a video receiver needs to ask for a key frame: Picture Loss Indication (RFC 4585
// §6.3.1), sent in a compound packet behind an empty receiver report and the CNAME, as
// RFC 4585 §3.1 and RFC 3550 §6.1 want every RTCP packet to be.
import { RTP_VERSION } from "../rtp-packet.js";

const RTCP_RR = 201;
const RTCP_SDES = 202;
/** RFC 4585 §6.1: payload-specific feedback. */
const RTCP_PSFB = 206;
/** RFC 4585 §6.3: FMT 1 of PSFB is PLI. */
const PSFB_PLI = 1;
const SDES_CNAME = 1;

export interface PictureLossIndication {
  /** Who asks. */
  readonly senderSsrc: number;
  /** Whose stream lost a picture. */
  readonly mediaSsrc: number;
}

/**
 * A compound RTCP packet asking `mediaSsrc` for a key frame: RR (no report blocks), SDES with
 * the CNAME, PLI. RFC 4585 §6.3.1.1: "The PLI FB message is identified by PT=PSFB and FMT=1.
 * There MUST be exactly one PLI contained in the FCI field." — its FCI is empty.
 */
export function writePictureLossRequest(pli: PictureLossIndication & { cname: string }): Buffer {
  const rr = Buffer.alloc(8);
  rr[0] = RTP_VERSION << 6;
  rr[1] = RTCP_RR;
  rr.writeUInt16BE(1, 2);
  rr.writeUInt32BE(pli.senderSsrc >>> 0, 4);

  const cname = Buffer.from(pli.cname, "utf8").subarray(0, 255);
  // SSRC, item type, length, text, then at least one null octet ending the item list, to a
  // 32-bit boundary (RFC 3550 §6.5).
  const chunk = 4 + 2 + cname.length;
  const sdesBody = chunk + (4 - (chunk % 4));
  const sdes = Buffer.alloc(4 + sdesBody);
  sdes[0] = (RTP_VERSION << 6) | 1;
  sdes[1] = RTCP_SDES;
  sdes.writeUInt16BE(sdes.length / 4 - 1, 2);
  sdes.writeUInt32BE(pli.senderSsrc >>> 0, 4);
  sdes[8] = SDES_CNAME;
  sdes[9] = cname.length;
  cname.copy(sdes, 10);

  const fb = Buffer.alloc(12);
  fb[0] = (RTP_VERSION << 6) | PSFB_PLI;
  fb[1] = RTCP_PSFB;
  fb.writeUInt16BE(2, 2);
  fb.writeUInt32BE(pli.senderSsrc >>> 0, 4);
  fb.writeUInt32BE(pli.mediaSsrc >>> 0, 8);
  return Buffer.concat([rr, sdes, fb]);
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
