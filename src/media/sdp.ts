// SDP offer/answer (RFC 3264) for one audio stream and optionally one video stream, read and
// written with sdp-transform. Audio is G.711 (PCMU 0, PCMA 8) with RFC 4733 telephone-event;
// video is VP8 (RFC 7741) on a dynamic payload type, its m-line negotiated here and its RTP
// left to src/media/video.
import { isIP } from "node:net";
import { parse, write, type MediaDescription, type SessionDescription } from "sdp-transform";

export type MediaDirection = "sendrecv" | "sendonly" | "recvonly" | "inactive";
export type AudioCodecName = "PCMU" | "PCMA";

export const DEFAULT_TELEPHONE_EVENT_PT = 101;
export const DEFAULT_VP8_PT = 96;
export const AUDIO_PTIME_MS = 20;

const STATIC_AUDIO: Record<number, { name: string; clockRate: number }> = {
  0: { name: "PCMU", clockRate: 8000 },
  8: { name: "PCMA", clockRate: 8000 },
};
const AUDIO_PT: Record<AudioCodecName, number> = { PCMU: 0, PCMA: 8 };

export type SdpErrorCode = "parse" | "no-media" | "no-connection" | "no-common-codec";

/**
 * An SDP that cannot be used. `no-common-codec` is RFC 3264 §6's case for refusing the offer:
 * the caller answers 488 Not Acceptable Here (see `status`).
 */
export class SdpError extends Error {
  override readonly name = "SdpError";
  readonly code: SdpErrorCode;
  /** The SIP status a UA answers an INVITE with when its offer fails this way. */
  readonly status: number;

  constructor(code: SdpErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.status = code === "no-common-codec" ? 488 : 400;
  }
}

/** What this side offers or answers with. */
export interface LocalMedia {
  /** The address in c= (IPv4 or IPv6 literal). */
  readonly address: string;
  readonly audioPort: number;
  /** Offer m=video VP8 on this port. */
  readonly videoPort?: number;
  readonly audioCodecs?: readonly AudioCodecName[];
  readonly telephoneEventPt?: number;
  readonly vp8Pt?: number;
  readonly direction?: MediaDirection;
  /** Offer (and accept) RTP and RTCP on one port (RFC 5761). */
  readonly rtcpMux?: boolean;
  readonly sessionId?: string;
  readonly sessionVersion?: number;
  readonly username?: string;
}

export interface RemoteCodec {
  readonly payloadType: number;
  readonly name: string;
  readonly clockRate: number;
  readonly channels?: number;
}

/** One m-line of a remote description, as a stream needs it. */
export interface RemoteStream {
  readonly index: number;
  readonly kind: string;
  readonly protocol: string;
  readonly port: number;
  /** Port 0 (RFC 3264 §5.1, §6). */
  readonly rejected: boolean;
  readonly address: string;
  readonly addressFamily: 4 | 6;
  readonly direction: MediaDirection;
  /** sendonly/inactive, or c= 0.0.0.0 (RFC 3264 §8.4's older form of hold). */
  readonly hold: boolean;
  readonly codecs: readonly RemoteCodec[];
  readonly telephoneEventPt?: number;
  readonly rtcpPort: number;
  readonly rtcpAddress: string;
  readonly rtcpMux: boolean;
  readonly ptime?: number;
}

export interface RemoteDescription {
  readonly sessionId: string;
  readonly sessionVersion: number;
  readonly streams: readonly RemoteStream[];
}

/** A stream both sides agreed on. */
export interface NegotiatedStream {
  readonly kind: "audio" | "video";
  readonly remote: RemoteStream;
  readonly payloadType: number;
  readonly codec: string;
  readonly clockRate: number;
  readonly telephoneEventPt?: number;
  /** Our direction for this stream. */
  readonly direction: MediaDirection;
  readonly send: boolean;
  readonly receive: boolean;
  readonly rtcpMux: boolean;
}

function sessionSkeleton(local: LocalMedia): SessionDescription {
  const ipVer = isIP(local.address) === 6 ? 6 : 4;
  return {
    version: 0,
    origin: {
      username: local.username ?? "sipsteer",
      sessionId: local.sessionId ?? String(Math.floor(Math.random() * 2 ** 31)),
      sessionVersion: local.sessionVersion ?? 1,
      netType: "IN",
      ipVer,
      address: local.address,
    },
    name: "sipsteer",
    timing: { start: 0, stop: 0 },
    connection: { version: ipVer, ip: local.address },
    media: [],
  };
}

function audioMedia(
  local: LocalMedia,
  payloadTypes: readonly number[],
  telephoneEventPt: number | undefined,
  direction: MediaDirection,
  rtcpMux: boolean,
  port = local.audioPort,
): MediaDescription {
  const rtp: MediaDescription["rtp"] = payloadTypes.map((pt) => ({
    payload: pt,
    codec: STATIC_AUDIO[pt]!.name,
    rate: 8000,
  }));
  const fmtp: MediaDescription["fmtp"] = [];
  const payloads = [...payloadTypes];
  if (telephoneEventPt !== undefined) {
    rtp.push({ payload: telephoneEventPt, codec: "telephone-event", rate: 8000 });
    fmtp.push({ payload: telephoneEventPt, config: "0-16" });
    payloads.push(telephoneEventPt);
  }
  return {
    type: "audio",
    port,
    protocol: "RTP/AVP",
    payloads: payloads.join(" "),
    rtp,
    fmtp,
    ptime: AUDIO_PTIME_MS,
    direction,
    ...(rtcpMux ? { rtcpMux: "rtcp-mux" as const } : {}),
  };
}

function videoMedia(
  port: number,
  payloadType: number,
  direction: MediaDirection,
  rtcpMux: boolean,
): MediaDescription {
  return {
    type: "video",
    port,
    protocol: "RTP/AVP",
    payloads: String(payloadType),
    rtp: [{ payload: payloadType, codec: "VP8", rate: 90000 }],
    fmtp: [],
    rtcpFb: [
      { payload: payloadType, type: "nack" },
      { payload: payloadType, type: "nack", subtype: "pli" },
      { payload: payloadType, type: "ccm", subtype: "fir" },
    ],
    direction,
    ...(rtcpMux ? { rtcpMux: "rtcp-mux" as const } : {}),
  };
}

/** An offer (RFC 3264 §5): audio PCMU, PCMA and telephone-event, ptime 20; video VP8 if asked. */
export function buildOffer(local: LocalMedia): string {
  const session = sessionSkeleton(local);
  const direction = local.direction ?? "sendrecv";
  const rtcpMux = local.rtcpMux ?? false;
  const codecs = local.audioCodecs ?? ["PCMU", "PCMA"];
  session.media.push(
    audioMedia(
      local,
      codecs.map((c) => AUDIO_PT[c]),
      local.telephoneEventPt ?? DEFAULT_TELEPHONE_EVENT_PT,
      direction,
      rtcpMux,
    ),
  );
  if (local.videoPort !== undefined) {
    session.media.push(
      videoMedia(local.videoPort, local.vp8Pt ?? DEFAULT_VP8_PT, direction, rtcpMux),
    );
  }
  return write(session);
}

function directionOf(media: MediaDescription, session: SessionDescription): MediaDirection {
  return media.direction ?? session.direction ?? "sendrecv";
}

/** Reads every m-line of a remote description (offer or answer). */
export function readDescription(sdp: string): RemoteDescription {
  let session: SessionDescription;
  try {
    session = parse(sdp);
  } catch (error) {
    throw new SdpError("parse", "SDP does not parse", { cause: error });
  }
  if (!Array.isArray(session.media) || session.media.length === 0) {
    throw new SdpError("no-media", "SDP has no m= line");
  }
  const streams = session.media.map((media, index): RemoteStream => {
    const rejected = media.port === 0;
    const ip = media.connection?.ip ?? session.connection?.ip;
    // c= may carry a TTL or count for multicast (224.2.1.1/127): the address is the first part.
    const address = ip?.split("/")[0] ?? "";
    const family = isIP(address);
    if (!rejected && family === 0) {
      throw new SdpError(
        "no-connection",
        `m=${media.type} (line ${index + 1}) has no usable c= address${ip === undefined ? "" : `: ${ip}`}`,
      );
    }
    // sdp-transform gives a lone payload type as a number, a list as a string.
    const payloadTypes = String(media.payloads ?? "")
      .trim()
      .split(/\s+/)
      .filter((token) => token !== "")
      .map(Number)
      .filter((pt) => Number.isInteger(pt) && pt >= 0 && pt <= 127);
    const codecs = payloadTypes.map((pt): RemoteCodec => {
      const map = (media.rtp ?? []).find((r) => r.payload === pt);
      if (map !== undefined) {
        return {
          payloadType: pt,
          name: map.codec,
          clockRate: map.rate ?? 8000,
          ...(map.encoding !== undefined ? { channels: map.encoding } : {}),
        };
      }
      const known = STATIC_AUDIO[pt];
      return {
        payloadType: pt,
        name: known?.name ?? `PT${pt}`,
        clockRate: known?.clockRate ?? 8000,
      };
    });
    const telephone = codecs.find(
      (c) => c.name.toLowerCase() === "telephone-event" && c.clockRate === 8000,
    );
    const direction = directionOf(media, session);
    const rtcpMux = media.rtcpMux === "rtcp-mux";
    return {
      index,
      kind: media.type,
      protocol: media.protocol,
      port: media.port,
      rejected,
      address,
      addressFamily: family === 6 ? 6 : 4,
      direction,
      hold: direction === "sendonly" || direction === "inactive" || address === "0.0.0.0",
      codecs,
      ...(telephone !== undefined ? { telephoneEventPt: telephone.payloadType } : {}),
      // RFC 3605: a=rtcp names the port (and maybe address); otherwise RTP's port + 1.
      rtcpPort: rtcpMux ? media.port : (media.rtcp?.port ?? media.port + 1),
      rtcpAddress: media.rtcp?.address ?? address,
      rtcpMux,
      ...(media.ptime !== undefined ? { ptime: Number(media.ptime) } : {}),
    };
  });
  return {
    sessionId: String(session.origin?.sessionId ?? ""),
    sessionVersion: Number(session.origin?.sessionVersion ?? 0),
    streams,
  };
}

/** RFC 3264 §6.1: the answerer's direction for an offered one. */
function answerDirection(offered: MediaDirection, ours: MediaDirection): MediaDirection {
  const canSend =
    (offered === "sendrecv" || offered === "recvonly") &&
    (ours === "sendrecv" || ours === "sendonly");
  const canReceive =
    (offered === "sendrecv" || offered === "sendonly") &&
    (ours === "sendrecv" || ours === "recvonly");
  if (canSend && canReceive) return "sendrecv";
  if (canSend) return "sendonly";
  if (canReceive) return "recvonly";
  return "inactive";
}

function sends(direction: MediaDirection): boolean {
  return direction === "sendrecv" || direction === "sendonly";
}

function receives(direction: MediaDirection): boolean {
  return direction === "sendrecv" || direction === "recvonly";
}

function chooseAudio(
  stream: RemoteStream,
  ours: readonly AudioCodecName[],
): RemoteCodec | undefined {
  // The offerer's order is its preference (RFC 3264 §6.1); take its first that we support.
  return stream.codecs.find(
    (c) => c.clockRate === 8000 && ours.some((name) => name === c.name.toUpperCase()),
  );
}

function chooseVp8(stream: RemoteStream): RemoteCodec | undefined {
  return stream.codecs.find((c) => c.name.toUpperCase() === "VP8" && c.clockRate === 90000);
}

function negotiated(
  kind: "audio" | "video",
  remote: RemoteStream,
  codec: RemoteCodec,
  direction: MediaDirection,
  rtcpMux: boolean,
): NegotiatedStream {
  const held = remote.address === "0.0.0.0";
  return {
    kind,
    remote,
    payloadType: codec.payloadType,
    codec: codec.name.toUpperCase(),
    clockRate: codec.clockRate,
    ...(kind === "audio" && remote.telephoneEventPt !== undefined
      ? { telephoneEventPt: remote.telephoneEventPt }
      : {}),
    direction,
    send: sends(direction) && !held,
    receive: receives(direction),
    rtcpMux,
  };
}

export interface Answer {
  readonly sdp: string;
  readonly audio?: NegotiatedStream;
  readonly video?: NegotiatedStream;
}

/**
 * Answers a remote offer (RFC 3264 §6): the first audio m-line gets the offer's first common
 * G.711 codec plus its telephone-event, the first video m-line VP8 when `local.videoPort` is
 * set; every other m-line is refused with port 0. Throws SdpError("no-common-codec") when no
 * stream can be accepted (answer 488).
 */
export function answerOffer(offerSdp: string, local: LocalMedia): Answer {
  const offer = readDescription(offerSdp);
  const session = sessionSkeleton(local);
  const ours = local.audioCodecs ?? ["PCMU", "PCMA"];
  const ourDirection = local.direction ?? "sendrecv";
  let audio: NegotiatedStream | undefined;
  let video: NegotiatedStream | undefined;
  for (const stream of offer.streams) {
    const direction = answerDirection(stream.direction, ourDirection);
    // RFC 5761 §5.1.1: mux is used only when both ask for it.
    const rtcpMux = stream.rtcpMux && (local.rtcpMux ?? true);
    if (stream.kind === "audio" && audio === undefined && !stream.rejected) {
      const codec = chooseAudio(stream, ours);
      if (codec !== undefined) {
        audio = negotiated("audio", stream, codec, direction, rtcpMux);
        session.media.push(
          audioMedia(local, [codec.payloadType], stream.telephoneEventPt, direction, rtcpMux),
        );
        continue;
      }
    }
    if (
      stream.kind === "video" &&
      video === undefined &&
      !stream.rejected &&
      local.videoPort !== undefined
    ) {
      const codec = chooseVp8(stream);
      if (codec !== undefined) {
        video = negotiated("video", stream, codec, direction, rtcpMux);
        session.media.push(videoMedia(local.videoPort, codec.payloadType, direction, rtcpMux));
        continue;
      }
    }
    // §6: "An offered stream MAY be rejected in the answer ... by setting the port to zero."
    session.media.push({
      type: stream.kind,
      port: 0,
      protocol: stream.protocol,
      payloads: String(stream.codecs[0]?.payloadType ?? 0),
      rtp: [],
      fmtp: [],
    });
  }
  if (audio === undefined && video === undefined) {
    const offered = offer.streams
      .map((s) => `${s.kind}: ${s.codecs.map((c) => c.name).join(", ") || "none"}`)
      .join("; ");
    throw new SdpError("no-common-codec", `no offered stream has a codec we support (${offered})`);
  }
  return { sdp: write(session), ...(audio ? { audio } : {}), ...(video ? { video } : {}) };
}

/**
 * Reads the answer to our offer: the audio and video streams it accepted, with the codec it
 * chose. Throws SdpError("no-common-codec") when it accepted neither.
 */
export function readAnswer(
  answerSdp: string,
  local: LocalMedia,
): { audio?: NegotiatedStream; video?: NegotiatedStream } {
  const answer = readDescription(answerSdp);
  const ours = local.audioCodecs ?? ["PCMU", "PCMA"];
  const ourDirection = local.direction ?? "sendrecv";
  let audio: NegotiatedStream | undefined;
  let video: NegotiatedStream | undefined;
  for (const stream of answer.streams) {
    if (stream.rejected) continue;
    const direction = answerDirection(stream.direction, ourDirection);
    const rtcpMux = stream.rtcpMux && (local.rtcpMux ?? false);
    if (stream.kind === "audio" && audio === undefined) {
      const codec = chooseAudio(stream, ours);
      if (codec !== undefined) audio = negotiated("audio", stream, codec, direction, rtcpMux);
    } else if (stream.kind === "video" && video === undefined && local.videoPort !== undefined) {
      const codec = chooseVp8(stream);
      if (codec !== undefined) video = negotiated("video", stream, codec, direction, rtcpMux);
    }
  }
  if (audio === undefined && video === undefined) {
    throw new SdpError("no-common-codec", "the answer accepted no stream we offered");
  }
  return { ...(audio ? { audio } : {}), ...(video ? { video } : {}) };
}
