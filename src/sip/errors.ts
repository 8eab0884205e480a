/**
 * The typed errors of the SIP stack.
 *
 * Wire errors ({@link SipParseError}) come from bytes a peer sent: they are caught per datagram
 * or per stream, answered with `status` when a response can be formed (or dropped when not),
 * logged and counted, never fatal to the process. Outcomes ({@link SipResponseError}) reject
 * the promises of the transaction user with the SIP status that ended a request. Anything else
 * thrown inside the stack is a bug.
 */

/** Every code a {@link SipParseError} can carry; the README keeps the table. */
export const SIP_PARSE_ERROR_CODES = {
  SIP_ERR_MESSAGE_TOO_LARGE: "the message is longer than the configured limit",
  SIP_ERR_NO_HEADER_END: "no empty line ends the header section",
  SIP_ERR_START_LINE: "the Request-Line or Status-Line does not follow the grammar",
  SIP_ERR_VERSION: "the SIP version is not 2.0",
  SIP_ERR_STATUS_CODE: "a response carries a status code outside 100-699",
  SIP_ERR_REQUEST_URI: "the Request-URI is malformed or carries headers",
  SIP_ERR_URI_TOO_LONG: "a URI is longer than the configured limit",
  SIP_ERR_HEADER_LINE: "a header line has no colon or its name is not a token",
  SIP_ERR_TOO_MANY_HEADERS: "more header fields than the configured limit",
  SIP_ERR_HEADER_TOO_LONG: "a header field is longer than the configured limit",
  SIP_ERR_TOO_MANY_PARAMS: "a URI or header value has more parameters than the configured limit",
  SIP_ERR_HEADER_SYNTAX: "a header field value does not follow its grammar",
  SIP_ERR_MISSING_HEADER: "a mandatory header field is absent",
  SIP_ERR_DUPLICATE_HEADER: "a header field that takes one value appears more than once",
  SIP_ERR_CONTENT_LENGTH: "Content-Length is missing on a stream, not a number, or conflicting",
  SIP_ERR_BODY_TRUNCATED: "Content-Length promises more bytes than the datagram holds",
  SIP_ERR_CSEQ_MISMATCH: "the CSeq method differs from the request method",
} as const;

export type SipParseErrorCode = keyof typeof SIP_PARSE_ERROR_CODES;

export interface SipParseErrorOptions {
  /** Status of the response to send; absent when the message must be dropped silently. */
  status?: number;
  /** Reason phrase to send with `status`; defaults to the error's message. */
  reason?: string;
  /** The header field the error is about, by its canonical lower-case name. */
  header?: string;
  /**
   * On a byte stream: the framing is lost, so the connection must be closed after the
   * response (if any) is sent.
   */
  fatal?: boolean;
  cause?: unknown;
}

/** A message (or a part of one) that breaks the grammar or a limit. */
export class SipParseError extends Error {
  override readonly name = "SipParseError";
  readonly code: SipParseErrorCode;
  readonly status: number | undefined;
  readonly reason: string;
  readonly header: string | undefined;
  readonly fatal: boolean;

  constructor(code: SipParseErrorCode, message: string, options: SipParseErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = options.status;
    this.reason = options.reason ?? message;
    this.header = options.header;
    this.fatal = options.fatal ?? false;
  }

  /** A copy that tells the caller to drop instead of answering (used for responses). */
  withoutResponse(): SipParseError {
    return new SipParseError(this.code, this.message, {
      header: this.header,
      fatal: this.fatal,
      cause: this.cause,
    });
  }

  /** A copy marked fatal for a byte stream (its framing is lost). */
  asFatal(): SipParseError {
    return new SipParseError(this.code, this.message, {
      status: this.status,
      reason: this.reason,
      header: this.header,
      fatal: true,
      cause: this.cause,
    });
  }
}

/**
 * The outcome of a request that ended with a final non-2xx status. RFC 3261 §8.1.3.1 and
 * §17: a transaction timeout is reported as 408, a transport failure as 503.
 */
export class SipResponseError extends Error {
  override readonly name = "SipResponseError";
  readonly status: number;
  readonly reason: string;

  constructor(status: number, reason: string, options: { cause?: unknown } = {}) {
    super(
      `${status} ${reason}`,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.status = status;
    this.reason = reason;
  }
}
