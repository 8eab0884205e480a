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
export {
  PCMA_PAYLOAD_TYPE,
  PCMU_PAYLOAD_TYPE,
  g711Decode,
  g711DecodeSample,
  g711Encode,
  g711EncodeSample,
  g711LawOf,
  g711Silence,
  type G711Law,
} from "./g711.js";
export {
  WAV_HEADER_BYTES,
  WavFormatError,
  WavRecorder,
  encodeWav,
  parseWav,
  readWavFile,
  toMono8k,
  type AudioSink,
  type WavAudio,
} from "./wav.js";
export {
  AUDIO_SAMPLE_RATE,
  AudioSourceError,
  FRAME_MS,
  FRAME_SAMPLES,
  SamplesSource,
  SequenceSource,
  openAudioSource,
  type AudioSource,
} from "./audio-source.js";
export { DEFAULT_TONE_AMPLITUDE, SilenceSource, ToneSource } from "./tone.js";
export { goertzelPower, levelDbfs, scanForTone, toneRatio, type ToneScan } from "./goertzel.js";
export {
  RTCP_BYE,
  RTCP_RR,
  RTCP_SDES,
  RTCP_SR,
  ntpMiddle32,
  ntpTimestamp,
  readRtcpCompound,
  writeRtcpCompound,
  type Goodbye,
  type OtherRtcpPacket,
  type ReceiverReport,
  type ReportBlock,
  type RtcpPacket,
  type RtcpReadResult,
  type SenderReport,
  type SourceDescription,
} from "./rtcp.js";
export {
  ReceiverStats,
  SenderStats,
  roundTripMs,
  type ReceivedPacket,
  type ReceiverSnapshot,
} from "./stream-stats.js";
export {
  DEFAULT_JITTER_MAX_DELAY_MS,
  DEFAULT_JITTER_MIN_DELAY_MS,
  JitterBuffer,
  type BufferedFrame,
  type JitterBufferOptions,
  type JitterBufferStats,
  type PlayoutFrame,
} from "./jitter-buffer.js";
export {
  DEFAULT_DTMF_DURATION_MS,
  DtmfReceiver,
  DtmfSender,
  dtmfEvent,
  dtmfKey,
  readTelephoneEvent,
  writeTelephoneEvent,
  type DtmfPacket,
  type ReceivedDigit,
  type TelephoneEvent,
} from "./dtmf.js";
export {
  DEFAULT_R_BASE,
  G711_NO_PLC,
  G711_PLC,
  delayImpairment,
  effectiveEquipmentImpairment,
  estimateMos,
  mosFromR,
  rFactor,
  type CodecImpairment,
  type EModelInput,
} from "./mos.js";
export {
  AUDIO_PTIME_MS,
  DEFAULT_TELEPHONE_EVENT_PT,
  DEFAULT_VP8_PT,
  SdpError,
  answerOffer,
  buildOffer,
  readAnswer,
  readDescription,
  type Answer,
  type AudioCodecName,
  type LocalMedia,
  type MediaDirection,
  type NegotiatedStream,
  type RemoteCodec,
  type RemoteDescription,
  type RemoteStream,
  type SdpErrorCode,
} from "./sdp.js";
export {
  AudioStream,
  DEFAULT_RTCP_INTERVAL_MS,
  type AudioStreamEvents,
  type AudioStreamOptions,
  type AudioStreamStats,
  type AudioStreamSummary,
  type RemoteEndpoint,
  type RemoteReceptionReport,
} from "./audio-stream.js";
export { FramePacer, MAX_CATCH_UP_FRAMES, type PacedStream } from "./frame-pacer.js";

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
  writePictureLossIndication,
  writePictureLossRequest,
  type PictureLossIndication,
} from "./video/rtcp-feedback.js";
export {
  DEFAULT_PLI_INTERVAL_MS,
  DEFAULT_VIDEO_MTU_BYTES,
  DEFAULT_VIDEO_RTCP_INTERVAL_MS,
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

// The media relay (rtpengine) and its ng control protocol (issue 8).
export * from "./rtpengine/index.js";
