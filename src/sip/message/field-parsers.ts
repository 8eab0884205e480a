import { SipParseError } from "../errors.js";
import { parseAuthHeader } from "./auth-header.js";
import type { HeaderField } from "./header-field.js";
import { headerDisplayName } from "./header-names.js";
import type { ParseLimits } from "./limits.js";
import { parseMediaType } from "./media-type.js";
import { parseNameAddr, parseNameAddrList } from "./name-addr.js";
import {
  MAX_UINT32,
  parseCSeq,
  parseCallId,
  parseSipDate,
  parseTokenList,
  parseUnsigned,
} from "./scalar-headers.js";
import { parseViaList } from "./via.js";

/** Reads a header field value (a byte string) into its typed form. */
export type FieldParser<T> = (value: string, limits: ParseLimits) => T;

/**
 * The parsed value of `field`, parsed on first use and cached on the field (errors too). A
 * grammar error becomes a SipParseError that names the header and carries 400.
 */
export function parsedField<T>(field: HeaderField, parser: FieldParser<T>, limits: ParseLimits): T {
  const cached = field.parsed;
  if (cached !== undefined) {
    if (cached instanceof SipParseError) throw cached;
    return cached as T;
  }
  try {
    const value = parser(field.value, limits);
    field.parsed = value;
    return value;
  } catch (e) {
    if (!(e instanceof SipParseError)) throw e;
    const name = headerDisplayName(field.key);
    const err = new SipParseError(
      e.code === "SIP_ERR_URI_TOO_LONG" || e.code === "SIP_ERR_TOO_MANY_PARAMS"
        ? e.code
        : "SIP_ERR_HEADER_SYNTAX",
      `Malformed ${name} header: ${e.message}`,
      { status: 400, reason: `Malformed ${name} header`, header: field.key, cause: e },
    );
    field.parsed = err;
    throw err;
  }
}

// One parser per header kind, hoisted so that they are not closures made per call.
export const viaParser = (v: string, l: ParseLimits) => parseViaList(v, l.maxParams);
export const nameAddrParser = (v: string, l: ParseLimits) => parseNameAddr(v, l);
export const contactParser = (v: string, l: ParseLimits) => parseNameAddrList(v, l, true);
export const nameAddrListParser = (v: string, l: ParseLimits) => parseNameAddrList(v, l);
export const callIdParser = (v: string) => parseCallId(v);
export const cseqParser = (v: string) => parseCSeq(v);
export const maxForwardsParser = (v: string) => parseUnsigned(v, 255, "Max-Forwards");
export const contentLengthParser = (v: string) => parseUnsigned(v, MAX_UINT32, "Content-Length");
export const expiresParser = (v: string) => parseUnsigned(v, MAX_UINT32, "Expires");
export const mediaTypeParser = (v: string, l: ParseLimits) => parseMediaType(v, l.maxParams);
export const tokenListParser = (v: string) => parseTokenList(v);
export const authParser = (v: string, l: ParseLimits) => parseAuthHeader(v, l.maxParams);
export const dateParser = (v: string) => parseSipDate(v);
