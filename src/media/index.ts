// The media part's public surface (DESIGN.md: RTP/RTCP, G.711, WAV, tones, statistics, SDP).
export {
  RTP_HEADER_BYTES,
  RTP_VERSION,
  isRtcp,
  readRtpPacket,
  sequenceDelta,
  writeRtpPacket,
  type RtpPacket,
  type RtpPacketInput,
  type RtpReadFailure,
} from "./rtp-packet.js";
