export { DEFAULT_PARSE_LIMITS, parseLimits, type ParseLimits } from "./limits.js";
export {
  DEFAULT_MAX_HEADERS,
  DEFAULT_MAX_HEADER_BYTES,
  DEFAULT_MAX_MESSAGE_BYTES,
  DEFAULT_MAX_PARAMS,
  DEFAULT_MAX_URI_BYTES,
} from "./limits.js";
export { HeaderField } from "./header-field.js";
export { headerDisplayName, headerKey } from "./header-names.js";
export {
  SipMessageBase,
  SipRequest,
  SipResponse,
  reasonPhrase,
  type SipMessage,
  type SipMessageInit,
  type SipRequestInit,
  type SipResponseInit,
} from "./message.js";
export { KNOWN_METHODS, parseDatagram, parseWebSocketMessage, type ParseOptions } from "./parse.js";
export { StreamFramer, type FramedItem } from "./stream-framer.js";
export { serializeMessage } from "./serialize.js";
export { createResponse } from "./create-response.js";
export { buildParseErrorResponse } from "./error-response.js";
export { Params, type Param } from "./params.js";
export {
  AbsoluteUri,
  SipUri,
  TelUri,
  isSipUri,
  parseUri,
  type SipUriParts,
  type Uri,
} from "./uri.js";
export { NameAddr, parseNameAddr, parseNameAddrList } from "./name-addr.js";
export { BRANCH_MAGIC_COOKIE, formatVia, parseViaList, type Via } from "./via.js";
export {
  MAX_UINT32,
  formatSipDate,
  parseCSeq,
  parseCallId,
  parseSipDate,
  parseTokenList,
  type CSeq,
} from "./scalar-headers.js";
export {
  formatAuthHeader,
  parseAuthHeader,
  type AuthHeader,
  type AuthParam,
} from "./auth-header.js";
export { parseMediaType, type MediaType } from "./media-type.js";
export { quote, unquote } from "./quoted-string.js";
export { isIPv4, isIPv6, isIPv6Reference } from "./host.js";
