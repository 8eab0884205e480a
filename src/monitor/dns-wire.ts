import { encode, type Answer } from "dns-packet";

/**
 * DNS wire format on the DNS front's per-query path (RFC 1035 §4, RFC 6891): a query is read
 * only as far as the answer needs (header, question, OPT) without decoding it into objects, and
 * a response is assembled from the query's own question bytes and record bytes prepared once by
 * dns-packet ({@link encodeRecords}). dns-packet does the encoding; this file only avoids
 * re-encoding the same records for every query.
 */

/** RFC 1035 §4.1.1 response codes, and RFC 6891's extended BADVERS. */
export const RCODES = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
  BADVERS: 16,
} as const;
export type RcodeName = keyof typeof RCODES;

/** The record types the front answers or must recognise (RFC 1035, 2782, 3403, 3596, 6891). */
export const QTYPES = {
  A: 1,
  NS: 2,
  SOA: 6,
  AAAA: 28,
  SRV: 33,
  NAPTR: 35,
  OPT: 41,
  IXFR: 251,
  AXFR: 252,
  ANY: 255,
} as const;

export const CLASS_IN = 1;
export const CLASS_ANY = 255;
export const OPCODE_QUERY = 0;
export const HEADER_BYTES = 12;
/** RFC 1035 §4.2.1: "Messages carried by UDP are restricted to 512 bytes" without EDNS. */
export const CLASSIC_UDP_BYTES = 512;
/**
 * The UDP payload size we advertise and the most we send over UDP, whatever a client offers:
 * DNS Flag Day 2020's 1232 bytes, which no IPv6 path fragments.
 */
export const EDNS_UDP_PAYLOAD_BYTES = 1232;
/** A DNS message over TCP is prefixed by its length in two bytes (RFC 1035 §4.2.2). */
export const MAX_TCP_MESSAGE_BYTES = 65_535;

/** RFC 1035 §2.3.4: names are at most 255 bytes on the wire, labels 63. */
const MAX_NAME_BYTES = 255;
const MAX_LABEL_BYTES = 63;
const OPT_RR_BYTES = 11;

const QR = 0x8000;
const AA = 0x0400;
const TC = 0x0200;
const RD = 0x0100;

/** What a query's OPT record says (RFC 6891 §6.1.2). */
export interface Edns {
  /** The requestor's UDP payload size (values under 512 are treated as 512). */
  readonly udpSize: number;
  readonly version: number;
}

/** A message whose header could be read. */
export interface DnsHeader {
  readonly id: number;
  readonly opcode: number;
  /** Recursion Desired, copied into the response (RFC 1035 §4.1.1). */
  readonly rd: boolean;
}

/** A query that could be read, or a header whose question could not (`malformed`). */
export interface DnsQuery extends DnsHeader {
  readonly malformed: boolean;
  /** Offset where the question ends: a response copies bytes [12, questionEnd) as they came. */
  readonly questionEnd: number;
  readonly qtype: number;
  readonly qclass: number;
  /**
   * The labels below the zone, lower-cased (ASCII, RFC 4343) and joined by dots: "" for the
   * apex, "_sip._udp" for `_sip._udp.<zone>`; {@link ODD_NAME} when a label below the zone holds
   * a byte no name of the zone has (a dot, a space …); undefined for a name outside the zone.
   */
  readonly relative: string | undefined;
  readonly edns: Edns | undefined;
}

/** `relative` of a name in the zone that cannot be one of its names. */
export const ODD_NAME = "\u0000";

/** Record bytes ready to be copied into responses, with their counts. */
export interface PreparedReply {
  readonly rcode: number;
  readonly authoritative: boolean;
  readonly answer: Buffer;
  readonly answerCount: number;
  readonly authority: Buffer;
  readonly authorityCount: number;
  /** Optional data (addresses of targets): left out, without TC, when it does not fit. */
  readonly additional: Buffer;
  readonly additionalCount: number;
}

const EMPTY = Buffer.alloc(0);

/** The zone as the parser compares it: its wire form, lower-cased, and its label count. */
export interface WireZone {
  readonly wire: Buffer;
  readonly labels: number;
}

/** `sipsteer.test` → `\x08sipsteer\x04test\x00` (the name must be valid, see isDnsName). */
export function wireZone(zone: string): WireZone {
  const labels = zone.toLowerCase().split(".");
  const parts: Buffer[] = [];
  for (const label of labels) parts.push(Buffer.from([label.length]), Buffer.from(label, "ascii"));
  parts.push(Buffer.from([0]));
  return { wire: Buffer.concat(parts), labels: labels.length };
}

const LDH_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/i;

/** A host name label: letters, digits and inner hyphens, 1–63 (RFC 1123 §2.1). */
export function isDnsLabel(text: string): boolean {
  return LDH_LABEL.test(text);
}

/** A host name of one or more labels, at most 253 characters, without the final dot. */
export function isDnsName(text: string): boolean {
  return text.length > 0 && text.length <= 253 && text.split(".").every(isDnsLabel);
}

/** Label starts of the name being parsed (a name has at most 127 labels); reused per query. */
const labelStarts = new Int32Array(128);

/** Bytes a label below the zone may hold for it to be one of the zone's names. */
function nameByte(c: number): boolean {
  return (
    (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x5f // a-z 0-9 - _
  );
}

/** Skips a name that may end in a compression pointer; -1 when it runs past the end. */
function skipName(buf: Buffer, offset: number): number {
  let at = offset;
  for (let guard = 0; guard < 128; guard++) {
    const len = buf[at];
    if (len === undefined) return -1;
    if (len === 0) return at + 1;
    if ((len & 0xc0) === 0xc0) return at + 2 <= buf.length ? at + 2 : -1;
    if ((len & 0xc0) !== 0) return -1;
    at += 1 + len;
  }
  return -1;
}

/**
 * Reads a DNS message as far as answering it needs. Undefined when it must be dropped: shorter
 * than a header, or a response (answering responses would let two servers loop). A readable
 * header with an unreadable question, extra questions or a bad OPT is `malformed` (FORMERR).
 */
export function parseQuery(buf: Buffer, zone: WireZone): DnsQuery | undefined {
  if (buf.length < HEADER_BYTES) return undefined;
  const id = buf.readUInt16BE(0);
  const flags = buf.readUInt16BE(2);
  if ((flags & QR) !== 0) return undefined;
  const opcode = (flags >> 11) & 0xf;
  const rd = (flags & RD) !== 0;
  const malformed: DnsQuery = {
    id,
    opcode,
    rd,
    malformed: true,
    questionEnd: HEADER_BYTES,
    qtype: 0,
    qclass: 0,
    relative: undefined,
    edns: undefined,
  };
  // RFC 1035 §4.1.2 allows several questions, but no server answers more than one.
  if (buf.readUInt16BE(4) !== 1) return malformed;

  let at = HEADER_BYTES;
  let labels = 0;
  for (;;) {
    const len = buf[at];
    if (len === undefined || (len & 0xc0) !== 0) return malformed; // A pointer has nothing before it to point at.
    if (len === 0) break;
    if (len > MAX_LABEL_BYTES || labels === labelStarts.length) return malformed;
    labelStarts[labels++] = at;
    at += 1 + len;
    if (at - HEADER_BYTES >= MAX_NAME_BYTES) return malformed;
  }
  const nameEnd = at + 1;
  if (nameEnd + 4 > buf.length) return malformed;
  const qtype = buf.readUInt16BE(nameEnd);
  const qclass = buf.readUInt16BE(nameEnd + 2);
  const questionEnd = nameEnd + 4;

  let edns: Edns | undefined;
  let rr = questionEnd;
  const records = buf.readUInt16BE(6) + buf.readUInt16BE(8) + buf.readUInt16BE(10);
  for (let i = 0; i < records; i++) {
    const owner = rr;
    const typeAt = skipName(buf, rr);
    if (typeAt < 0 || typeAt + 10 > buf.length) return malformed;
    const rdlength = buf.readUInt16BE(typeAt + 8);
    rr = typeAt + 10 + rdlength;
    if (rr > buf.length) return malformed;
    if (buf.readUInt16BE(typeAt) !== QTYPES.OPT) continue;
    // RFC 6891 §6.1.1: "If a query message with more than one OPT RR is received, a FORMERR
    // (RCODE=1) MUST be returned." The OPT's owner is the root.
    if (edns !== undefined || buf[owner] !== 0) return malformed;
    edns = {
      udpSize: Math.max(CLASSIC_UDP_BYTES, buf.readUInt16BE(typeAt + 2)),
      version: buf[typeAt + 5]!,
    };
  }

  return {
    id,
    opcode,
    rd,
    malformed: false,
    questionEnd,
    qtype,
    qclass,
    relative: relativeName(buf, labels, nameEnd, zone),
    edns,
  };
}

/** The labels of the question's name below `zone` (see DnsQuery.relative). */
function relativeName(
  buf: Buffer,
  labels: number,
  nameEnd: number,
  zone: WireZone,
): string | undefined {
  if (labels < zone.labels) return undefined;
  const zoneStart = labelStarts[labels - zone.labels]!;
  if (nameEnd - zoneStart !== zone.wire.length) return undefined;
  for (let i = 0; i < zone.wire.length; i++) {
    let c = buf[zoneStart + i]!;
    if (c >= 0x41 && c <= 0x5a) c += 0x20;
    if (c !== zone.wire[i]) return undefined;
  }
  let relative = "";
  for (let l = 0; l < labels - zone.labels; l++) {
    const start = labelStarts[l]! + 1;
    const end = start + buf[start - 1]!;
    let upper = false;
    for (let i = start; i < end; i++) {
      const c = buf[i]!;
      if (c >= 0x41 && c <= 0x5a) upper = true;
      else if (!nameByte(c)) return ODD_NAME;
    }
    // Only letters, digits, '-' and '_' are left, so toLowerCase folds ASCII alone.
    const text = buf.toString("latin1", start, end);
    const label = upper ? text.toLowerCase() : text;
    relative = l === 0 ? label : `${relative}.${label}`;
  }
  return relative;
}

/**
 * Encodes resource records with dns-packet, without a header: the bytes that go into a section
 * of any response (no name compression, so they can be copied anywhere).
 */
export function encodeRecords(records: readonly Answer[]): Buffer {
  if (records.length === 0) return EMPTY;
  return encode({ type: "response", answers: [...records] }).subarray(HEADER_BYTES);
}

/** A reply with only a response code (REFUSED, SERVFAIL …), no records. */
export function bareReply(rcode: number, authoritative: boolean): PreparedReply {
  return {
    rcode,
    authoritative,
    answer: EMPTY,
    answerCount: 0,
    authority: EMPTY,
    authorityCount: 0,
    additional: EMPTY,
    additionalCount: 0,
  };
}

/**
 * The most a response to `query` may be: 65,535 over TCP; over UDP the requestor's EDNS size
 * (at most ours), else 512 (RFC 1035 §4.2.1, RFC 6891 §6.2.3).
 */
export function responseLimit(query: DnsQuery, tcp: boolean): number {
  if (tcp) return MAX_TCP_MESSAGE_BYTES;
  if (query.edns === undefined) return CLASSIC_UDP_BYTES;
  return Math.min(query.edns.udpSize, EDNS_UDP_PAYLOAD_BYTES);
}

/**
 * The response to `query` from `reply`, within `limit` bytes. When it does not fit, the
 * additional records go first (RFC 2181 §9: TC is set only when required data is missing);
 * when the answer still does not fit, TC is set and every section left empty, so that the
 * client asks again over TCP. `framed`: prefixed with its length for TCP.
 */
export function assembleResponse(
  message: Buffer,
  query: DnsQuery,
  reply: PreparedReply,
  limit: number,
  framed: boolean,
): Buffer {
  const question = query.malformed ? 0 : query.questionEnd - HEADER_BYTES;
  const opt = query.edns === undefined || query.malformed ? 0 : OPT_RR_BYTES;
  const base = HEADER_BYTES + question + opt;
  let sections = reply.answer.length + reply.authority.length;
  let additional = true;
  let truncated = false;
  if (base + sections + reply.additional.length > limit) {
    additional = false;
    if (base + sections > limit) {
      truncated = true;
      sections = 0;
    }
  }
  const size = base + sections + (additional ? reply.additional.length : 0);
  const prefix = framed ? 2 : 0;
  const out = Buffer.allocUnsafe(prefix + size);
  if (framed) out.writeUInt16BE(size, 0);
  let at = prefix;
  out.writeUInt16BE(query.id, at);
  out.writeUInt16BE(
    QR |
      (query.opcode << 11) |
      (reply.authoritative ? AA : 0) |
      (truncated ? TC : 0) |
      (query.rd ? RD : 0) |
      (reply.rcode & 0xf),
    at + 2,
  );
  out.writeUInt16BE(question === 0 ? 0 : 1, at + 4);
  out.writeUInt16BE(truncated ? 0 : reply.answerCount, at + 6);
  out.writeUInt16BE(truncated ? 0 : reply.authorityCount, at + 8);
  out.writeUInt16BE((additional ? reply.additionalCount : 0) + (opt === 0 ? 0 : 1), at + 10);
  at += HEADER_BYTES;
  // The question as it came: its letters' case too, which some resolvers check (0x20 bits).
  if (question > 0) at += message.copy(out, at, HEADER_BYTES, query.questionEnd);
  if (!truncated) {
    at += reply.answer.copy(out, at);
    at += reply.authority.copy(out, at);
  }
  if (additional) at += reply.additional.copy(out, at);
  if (opt !== 0) {
    // RFC 6891 §6.1.2/§6.1.3: root owner, our payload size, the upper 8 bits of the rcode,
    // version 0, no flags (no DNSSEC here, so DO is clear), no options.
    out[at] = 0;
    out.writeUInt16BE(QTYPES.OPT, at + 1);
    out.writeUInt16BE(EDNS_UDP_PAYLOAD_BYTES, at + 3);
    out[at + 5] = reply.rcode >> 4;
    out[at + 6] = 0;
    out.writeUInt16BE(0, at + 7);
    out.writeUInt16BE(0, at + 9);
  }
  return out;
}
