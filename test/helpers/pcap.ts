// Reads the UDP datagrams out of a libpcap capture (the classic format SIPp's bundled RTP
// files use: microsecond or nanosecond timestamps, either byte order; Ethernet with or without
// an 802.1Q tag, Linux cooked, or raw IP; IPv4 and IPv6). For tests that replay real captures.

export interface CapturedDatagram {
  /** Capture time in µs. */
  readonly timeUs: number;
  readonly sourcePort: number;
  readonly destinationPort: number;
  readonly payload: Buffer;
}

const LINK_ETHERNET = 1;
const LINK_RAW = 101;
const LINK_RAW_ALT = 12;
const LINK_LINUX_SLL = 113;

function udpFromIp(packet: Buffer, offset: number): Omit<CapturedDatagram, "timeUs"> | undefined {
  if (offset >= packet.length) return undefined;
  const version = packet[offset]! >> 4;
  let udp: number;
  if (version === 4) {
    const headerBytes = (packet[offset]! & 0x0f) * 4;
    if (packet[offset + 9] !== 17) return undefined;
    udp = offset + headerBytes;
  } else if (version === 6) {
    if (packet[offset + 6] !== 17) return undefined; // no extension headers in these captures
    udp = offset + 40;
  } else {
    return undefined;
  }
  if (udp + 8 > packet.length) return undefined;
  const length = packet.readUInt16BE(udp + 4);
  return {
    sourcePort: packet.readUInt16BE(udp),
    destinationPort: packet.readUInt16BE(udp + 2),
    payload: packet.subarray(udp + 8, Math.min(packet.length, udp + length)),
  };
}

/** Every UDP datagram of the capture, in order; throws naming what is unsupported. */
export function readPcapUdp(file: Buffer): CapturedDatagram[] {
  if (file.length < 24) throw new Error("pcap: shorter than its global header");
  const magic = file.readUInt32LE(0);
  let little: boolean;
  let nanos = false;
  if (magic === 0xa1b2c3d4 || magic === 0xa1b23c4d) little = true;
  else if (magic === 0xd4c3b2a1 || magic === 0x4d3cb2a1) little = false;
  else
    throw new Error(`pcap: magic 0x${magic.toString(16)} is not libpcap's (pcapng is unsupported)`);
  if (magic === 0xa1b23c4d || magic === 0x4d3cb2a1) nanos = true;
  const u32 = (at: number): number => (little ? file.readUInt32LE(at) : file.readUInt32BE(at));
  const link = u32(20);
  const out: CapturedDatagram[] = [];
  for (let at = 24; at + 16 <= file.length;) {
    const seconds = u32(at);
    const fraction = u32(at + 4);
    const captured = u32(at + 8);
    const packet = file.subarray(at + 16, at + 16 + captured);
    at += 16 + captured;
    let ip: number;
    if (link === LINK_ETHERNET) {
      let type = packet.readUInt16BE(12);
      ip = 14;
      if (type === 0x8100) {
        type = packet.readUInt16BE(16);
        ip = 18;
      }
      if (type !== 0x0800 && type !== 0x86dd) continue;
    } else if (link === LINK_LINUX_SLL) {
      ip = 16;
    } else if (link === LINK_RAW || link === LINK_RAW_ALT) {
      ip = 0;
    } else {
      throw new Error(`pcap: link type ${link} is unsupported`);
    }
    const udp = udpFromIp(packet, ip);
    if (udp !== undefined) {
      out.push({ timeUs: seconds * 1e6 + (nanos ? fraction / 1000 : fraction), ...udp });
    }
  }
  return out;
}
