export * from "./message/index.js";
export {
  SIP_PARSE_ERROR_CODES,
  SipParseError,
  SipResponseError,
  type SipParseErrorCode,
  type SipParseErrorOptions,
} from "./errors.js";
