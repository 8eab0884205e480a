import { SipParseError, SipUri, parseUri, type SipRequest } from "../sip/index.js";
import type { Binding } from "./location-store/types.js";

/**
 * How a user agent carries media: `webrtc` (ICE and DTLS-SRTP, RFC 8827/8834; a browser) or
 * `plain` (RTP/AVP, a SIP phone). The two meet only through a media relay (rtpengine).
 */
export type MediaProfile = "webrtc" | "plain";

/** Why a call that needs the media relay is refused when no relay takes it. */
export const MEDIA_RELAY_MISSING = "the call needs a media relay and none is available";

/** The reason phrase of the 488 such a call gets. */
export const MEDIA_RELAY_MISSING_REASON = `Not Acceptable Here (${MEDIA_RELAY_MISSING})`;

/**
 * RFC 3261 §20.43 warn-code 302 "Incompatible transport protocol: One or more transport
 * protocols described in the session description are not available."
 */
export const INCOMPATIBLE_TRANSPORT_WARNING = 302;

/** SDP transport protocols (RFC 4566 §5.14 `<proto>`) of each profile. */
const WEBRTC_PROTOS = new Set([
  "UDP/TLS/RTP/SAVPF", // RFC 5764 §8, what browsers offer
  "TCP/TLS/RTP/SAVPF",
  "UDP/TLS/RTP/SAVP",
  "RTP/SAVPF", // RFC 5124, older WebRTC stacks
]);
const PLAIN_PROTOS = new Set(["RTP/AVP", "RTP/AVPF", "RTP/SAVP"]);

/**
 * The profile of an SDP from its first active RTP m-line (`m=<media> <port> <proto> …`, port
 * not 0); undefined when it has none (no media, or only data channels).
 */
export function sdpProfile(sdp: string): MediaProfile | undefined {
  for (const line of sdp.split(/\r?\n/)) {
    const m = /^m=\S+ (\d+)(?:\/\d+)? (\S+) /.exec(line);
    if (m === null || m[1] === "0") continue;
    const proto = m[2]!.toUpperCase();
    if (WEBRTC_PROTOS.has(proto)) return "webrtc";
    if (PLAIN_PROTOS.has(proto)) return "plain";
  }
  return undefined;
}

/**
 * The profile of the offer in a request's body: undefined without an `application/sdp` body
 * (an INVITE without offer gets its offer in the 2xx, which a proxy cannot refuse ahead).
 */
export function offerProfile(request: SipRequest): MediaProfile | undefined {
  let type;
  try {
    type = request.contentType;
  } catch (e) {
    if (e instanceof SipParseError) return undefined;
    throw e;
  }
  if (type === undefined || type.type !== "application" || type.subtype !== "sdp") return undefined;
  return sdpProfile(request.body.toString("utf8"));
}

/**
 * What a binding's contact speaks: a client registered over SIP on WebSocket (its Contact's
 * `transport=ws` or `wss`, as RFC 7118 §5 and JsSIP and SIP.js write it) is a browser,
 * anything else a plain phone.
 */
export function bindingProfile(binding: Pick<Binding, "contact">): MediaProfile {
  let uri;
  try {
    uri = parseUri(binding.contact);
  } catch (e) {
    if (e instanceof SipParseError) return "plain";
    throw e;
  }
  const transport = uri instanceof SipUri ? uri.transport : undefined;
  return transport === "ws" || transport === "wss" ? "webrtc" : "plain";
}

/** True when an offer of `offer` cannot reach `binding` without a media relay. */
export function needsMediaRelay(
  offer: MediaProfile | undefined,
  binding: Pick<Binding, "contact">,
): boolean {
  return offer !== undefined && bindingProfile(binding) !== offer;
}
