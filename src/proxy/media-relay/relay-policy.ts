import { isIP } from "node:net";
import type { NgMediaOptions } from "../../media/rtpengine/index.js";
import { sdpProfile, type MediaProfile } from "../media-profile.js";

/** When a call's media goes through the relay (proxy config `media.relay`). */
export type RelayPolicy = "auto" | "always" | "never";

/** Why `auto` puts a call on the relay. */
export type RelayReason =
  /** Policy `always`. */
  | "always"
  /** A browser (ICE, DTLS-SRTP) and a plain RTP phone: only a relay speaks both. */
  | "profiles"
  /** The offer names an IPv4 address and the callee is on IPv6, or the other way round. */
  | "address-family"
  /** A plain phone's SDP names another address than its SIP comes from (NAT, or wrong). */
  | "sdp-address";

export interface OfferSide {
  readonly sdp: string;
  /** The address the offer's SIP came from; undefined when a fleet member forwarded it. */
  readonly signalledFrom: string | undefined;
}

export interface AnswerSide {
  readonly profile: MediaProfile;
  /** An IP literal the callee is known by (its Contact's host), if any. */
  readonly address: string | undefined;
}

/** Whether the call of `offer` to `answerer` needs the relay under `policy`, and why. */
export function relayReason(
  policy: RelayPolicy,
  offer: OfferSide,
  answerer: AnswerSide,
): RelayReason | undefined {
  if (policy === "never") return undefined;
  if (policy === "always") return "always";
  const profile = sdpProfile(offer.sdp);
  if (profile === undefined) return undefined;
  if (profile !== answerer.profile) return "profiles";
  const connection = sdpConnectionAddress(offer.sdp);
  if (connection === undefined) return undefined;
  const calleeFamily = answerer.address === undefined ? 0 : isIP(answerer.address);
  if (calleeFamily !== 0 && calleeFamily !== isIP(connection)) return "address-family";
  // ICE finds its own way (a browser's c= is often 0.0.0.0); a plain phone's SDP is believed
  // only when it names where its SIP comes from.
  if (
    profile === "plain" &&
    offer.signalledFrom !== undefined &&
    !sameAddress(connection, offer.signalledFrom)
  ) {
    return "sdp-address";
  }
  return undefined;
}

/** The session-level (else first media-level) `c=` address; undefined for 0.0.0.0 (hold). */
export function sdpConnectionAddress(sdp: string): string | undefined {
  const m = /^c=IN IP[46] ([^\s/]+)/m.exec(sdp);
  if (m === null) return undefined;
  const address = m[1]!;
  if (address === "0.0.0.0" || address === "::" || isIP(address) === 0) return undefined;
  return address;
}

/** Active media streams of an SDP (m-lines with a port other than 0): the load report's `media`. */
export function sdpStreamCount(sdp: string): number {
  let n = 0;
  for (const m of sdp.matchAll(/^m=\S+ (\d+)/gm)) if (m[1] !== "0") n++;
  return n;
}

type NgSideOptions = Omit<NgMediaOptions, "callId" | "fromTag" | "toTag" | "viaBranch">;

/**
 * The ng flags that give the receiving side of an SDP what it speaks
 * (https://rtpengine.readthedocs.io/en/latest/ng_control_protocol.html): a browser gets
 * rtpengine's ICE candidates, DTLS-SRTP and RTP/RTCP on one port; a plain phone gets RTP/AVP
 * without ICE. Both get the relay's address in place of the sender's.
 */
export function ngOptionsFor(
  receiver: MediaProfile,
  kind: "offer" | "answer",
  receivedFrom: string | undefined,
  receiverFamily?: 4 | 6,
): NgSideOptions {
  // Without trust-address rtpengine takes the sender's address from received-from (or from
  // the ng packet's source, the proxy); either way it latches onto where RTP really comes from.
  // port-latching: a re-offer keeps the relay's ports even when the sender's changed (the same
  // media session for the call's life, whatever re-INVITEs and UPDATEs bring).
  const flags = receivedFrom === undefined ? ["trust-address", "port-latching"] : ["port-latching"];
  const common = {
    replace: ["origin", "session-connection"] as const,
    ...(receivedFrom === undefined ? {} : { receivedFrom }),
    ...(receiverFamily === undefined
      ? {}
      : { addressFamily: receiverFamily === 6 ? ("IP6" as const) : ("IP4" as const) }),
  };
  if (receiver === "webrtc") {
    return {
      ...common,
      flags: kind === "offer" ? [...flags, "generate-mid"] : flags,
      ice: "force",
      transportProtocol: "UDP/TLS/RTP/SAVPF",
      rtcpMux: kind === "offer" ? ["offer"] : ["require"],
      // DTLS roles as rtpengine picks them: active towards a browser's actpass offer (it
      // starts the handshake as soon as ICE is up; forcing passive then resets it mid-way).
      sdes: ["off"],
    };
  }
  return {
    ...common,
    flags,
    ice: "remove",
    transportProtocol: "RTP/AVP",
    rtcpMux: ["demux"],
    dtls: "off",
  };
}

/** The IP family of an address, or undefined for a name. */
export function familyOf(address: string | undefined): 4 | 6 | undefined {
  const f = address === undefined ? 0 : isIP(address.replace(/^\[|\]$/g, ""));
  return f === 4 ? 4 : f === 6 ? 6 : undefined;
}

function sameAddress(a: string, b: string): boolean {
  const strip = (s: string) => s.replace(/^::ffff:/, "");
  return strip(a) === strip(b);
}
