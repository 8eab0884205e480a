import { isIP } from "node:net";
import type { BencodeValue } from "./bencode.js";

/** A decoded ng reply. */
export type NgDictionary = { readonly [key: string]: BencodeValue };

/**
 * What an `offer` or `answer` asks of rtpengine for one side of a call (the side whose SDP it
 * carries is rewritten for the other side). Names follow the ng protocol's keys
 * (https://rtpengine.readthedocs.io/en/latest/ng_control_protocol.html).
 */
export interface NgMediaOptions {
  readonly callId: string;
  readonly fromTag: string;
  readonly toTag?: string;
  readonly viaBranch?: string;
  /** `ICE`: remove it (a plain phone) or force rtpengine's own candidates (a browser). */
  readonly ice?: "remove" | "force" | "default" | "optional" | "force-relay";
  /** `DTLS`: `passive`/`active` for a WebRTC side, `off` for a plain one. */
  readonly dtls?: "off" | "passive" | "active";
  /** `transport-protocol`: what the receiving side speaks (RTP/AVP, UDP/TLS/RTP/SAVPF). */
  readonly transportProtocol?: string;
  readonly rtcpMux?: readonly ("offer" | "demux" | "accept" | "reject" | "require")[];
  readonly replace?: readonly ("origin" | "session-connection")[];
  /** `flags`: e.g. `trust-address`, `symmetric`, `port-latching`, `strict-source`. */
  readonly flags?: readonly string[];
  /** The SDP's sender as seen on the wire (`received-from`), for latching and NAT. */
  readonly receivedFrom?: string;
  /** `address family`: the family the rewritten SDP names (IPv4 ↔ IPv6 bridging). */
  readonly addressFamily?: "IP4" | "IP6";
  readonly sdes?: readonly string[];
  /** Anything else, passed as is. */
  readonly extra?: Readonly<Record<string, BencodeValue>>;
}

export interface NgSdpResult {
  readonly sdp: string;
  readonly warning?: string;
}

/** rtpengine's `statistics` reply, the parts a balancer reads. */
export interface NgStatistics {
  /** Sessions this instance runs now (`sessionsown`). */
  readonly sessions: number;
  /** Packets relayed per second, user space and kernel. */
  readonly packetRate: number;
  readonly byteRate: number;
  readonly errorRate: number;
  readonly uptimeS: number;
  readonly managedSessions: number;
  readonly rejectedSessions: number;
  /** RTP ports over every interface. */
  readonly ports: { readonly used: number; readonly free: number; readonly total: number };
}

/** rtpengine's `query` reply: per call, what went through. */
export interface NgQueryResult {
  readonly created: number;
  /** Tags (call legs) rtpengine knows for the call. */
  readonly tags: readonly string[];
  readonly rtp: NgPacketTotals;
  readonly rtcp: NgPacketTotals;
  readonly raw: NgDictionary;
}

export interface NgPacketTotals {
  readonly packets: number;
  readonly bytes: number;
  readonly errors: number;
}

export function toNgMediaParams(
  o: NgMediaOptions & { readonly sdp: string },
): Record<string, BencodeValue | undefined> {
  const family = o.receivedFrom === undefined ? 0 : isIP(o.receivedFrom);
  return {
    ...o.extra,
    "call-id": o.callId,
    "from-tag": o.fromTag,
    "to-tag": o.toTag,
    "via-branch": o.viaBranch,
    sdp: o.sdp,
    ICE: o.ice,
    DTLS: o.dtls,
    "transport-protocol": o.transportProtocol,
    "rtcp-mux": o.rtcpMux === undefined ? undefined : [...o.rtcpMux],
    replace: o.replace === undefined ? undefined : [...o.replace],
    flags: o.flags === undefined ? undefined : [...o.flags],
    SDES: o.sdes === undefined ? undefined : [...o.sdes],
    "address family": o.addressFamily,
    "received-from":
      family === 0 ? undefined : [family === 6 ? "IP6" : "IP4", o.receivedFrom as string],
  };
}

export function readStatistics(reply: NgDictionary): NgStatistics {
  const stats = dict(reply["statistics"]);
  const current = dict(stats["currentstatistics"]);
  const total = dict(stats["totalstatistics"]);
  let used = 0;
  let free = 0;
  let all = 0;
  for (const i of list(stats["interfaces"])) {
    const ports = dict(dict(i)["ports"]);
    used += num(ports["used"]);
    free += num(ports["free"]);
    all += num(ports["totals"]);
  }
  return {
    sessions: num(current["sessionsown"]),
    packetRate: num(current["packetrate"]),
    byteRate: num(current["byterate"]),
    errorRate: num(current["errorrate"]),
    uptimeS: num(total["uptime"]),
    managedSessions: num(total["managedsessions"]),
    rejectedSessions: num(total["rejectedsessions"]),
    ports: { used, free, total: all },
  };
}

export function readQuery(reply: NgDictionary): NgQueryResult {
  const totals = dict(reply["totals"]);
  return {
    created: num(reply["created"]),
    tags: Object.keys(dict(reply["tags"])),
    rtp: packetTotals(totals["RTP"]),
    rtcp: packetTotals(totals["RTCP"]),
    raw: reply,
  };
}

function packetTotals(v: BencodeValue | undefined): NgPacketTotals {
  const d = dict(v);
  return { packets: num(d["packets"]), bytes: num(d["bytes"]), errors: num(d["errors"]) };
}

function dict(v: BencodeValue | undefined): NgDictionary {
  return v !== undefined && typeof v === "object" && !Array.isArray(v) ? v : {};
}

function list(v: BencodeValue | undefined): readonly BencodeValue[] {
  return Array.isArray(v) ? v : [];
}

/** rtpengine writes some figures as integers and some as decimal strings ("0.000000"). */
function num(v: BencodeValue | undefined): number {
  if (typeof v === "number") return v;
  if (typeof v === "string") {
    const n = Number(v);
    return Number.isFinite(n) ? n : 0;
  }
  return 0;
}
