import { SipParseError } from "../errors.js";
import { SLASH, TOKEN, skipClass, skipWs } from "./chars.js";
import { readHeaderParams, type Params } from "./params.js";

/** A Content-Type value (RFC 3261 §20.15): `m-type SLASH m-subtype *(SEMI m-parameter)`. */
export interface MediaType {
  /** Lower-cased, e.g. "application". */
  readonly type: string;
  /** Lower-cased, e.g. "sdp". */
  readonly subtype: string;
  readonly params: Params;
}

export function parseMediaType(s: string, maxParams: number): MediaType {
  const typeEnd = skipClass(s, 0, TOKEN);
  let i = skipWs(s, typeEnd);
  if (typeEnd === 0 || s.charCodeAt(i) !== SLASH) {
    throw new SipParseError("SIP_ERR_HEADER_SYNTAX", "expected type/subtype");
  }
  i = skipWs(s, i + 1);
  const subEnd = skipClass(s, i, TOKEN);
  if (subEnd === i) throw new SipParseError("SIP_ERR_HEADER_SYNTAX", "missing media subtype");
  const { params, next } = readHeaderParams(s, subEnd, s.length, maxParams);
  if (next !== s.length) throw new SipParseError("SIP_ERR_HEADER_SYNTAX", "more than one type");
  return {
    type: s.slice(0, typeEnd).toLowerCase(),
    subtype: s.slice(i, subEnd).toLowerCase(),
    params,
  };
}
