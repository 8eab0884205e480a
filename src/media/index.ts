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

// Video: VP8 over RTP (RFC 7741) from and into IVF files (issue 6).
export {
  IVF_ERROR_CODES,
  IvfFormatError,
  IvfWriter,
  parseIvf,
  parseIvfHeader,
  readIvfFile,
  writeIvf,
  writeIvfFrame,
  writeIvfHeader,
  type IvfErrorCode,
  type IvfFile,
  type IvfFrame,
  type IvfHeader,
} from "./video/ivf.js";
export {
  Vp8Depacketizer,
  Vp8Packetizer,
  isVp8Keyframe,
  readVp8Descriptor,
  vp8KeyframeSize,
  writeVp8Descriptor,
  type Vp8Descriptor,
  type Vp8DescriptorFailure,
  type Vp8DepacketizerOptions,
  type Vp8DepacketizerStats,
  type Vp8Frame,
  type Vp8PacketizerOptions,
  type Vp8RtpPayload,
} from "./video/vp8-payload.js";
export {
  readPictureLossIndications,
  writePictureLossRequest,
  type PictureLossIndication,
} from "./video/rtcp-feedback.js";
export { RtpReceiveCounter } from "./video/rtp-receive-counter.js";
export {
  DEFAULT_VIDEO_MTU_BYTES,
  DEFAULT_VP8_PAYLOAD_TYPE,
  VP8_CLOCK_RATE,
  VideoStream,
  parseVideoStreamOptions,
  videoStreamOptionsSchema,
  type VideoRemote,
  type VideoStreamDeps,
  type VideoStreamOptions,
  type VideoStreamOptionsInput,
  type VideoStreamStats,
} from "./video/video-stream.js";
