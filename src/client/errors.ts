/**
 * The typed errors of the client SDK. Each names what failed (which monitor, which proxy,
 * which step) and carries a code from the table below, so that an application (and the CLI)
 * can tell "no proxy eligible" from "monitor down" from "wrong password".
 */

/** Every code a {@link DiscoveryError} can carry; the README keeps the table. */
export const DISCOVERY_ERROR_CODES = {
  CLIENT_ERR_BAD_MONITOR:
    "a --monitor value is none of http://…, dns:HOST:PORT/ZONE, sip:HOST:PORT",
  CLIENT_ERR_MONITOR_UNREACHABLE: "the monitor refused the connection or could not be sent to",
  CLIENT_ERR_MONITOR_TIMEOUT: "the monitor did not answer within the discovery timeout",
  CLIENT_ERR_NO_PROXY: "the monitor answered that no proxy is eligible (HTTP/SIP 503, SERVFAIL)",
  CLIENT_ERR_BAD_ANSWER: "the monitor's answer does not follow its contract",
  CLIENT_ERR_DNS_RCODE: "the DNS server answered with an error code (NXDOMAIN, REFUSED …)",
  CLIENT_ERR_NO_RECORDS: "the DNS answer held no usable SRV target or address",
  CLIENT_ERR_REDIRECT_STATUS: "the SIP front answered something other than 302",
  CLIENT_ERR_ALL_MONITORS_FAILED: "every monitor in the list failed (see `failures`)",
} as const;

export type DiscoveryErrorCode = keyof typeof DISCOVERY_ERROR_CODES;

/** Asking a monitor where to go failed. */
export class DiscoveryError extends Error {
  override readonly name = "DiscoveryError";
  readonly code: DiscoveryErrorCode;
  /** The monitor asked, as given (absent for the all-failed summary). */
  readonly monitor: string | undefined;
  /** Seconds the monitor asked us to wait (HTTP Retry-After, SIP Retry-After). */
  readonly retryAfterS: number | undefined;
  /** For CLIENT_ERR_ALL_MONITORS_FAILED: what each monitor's failure was, in order. */
  readonly failures: readonly DiscoveryError[];

  constructor(
    code: DiscoveryErrorCode,
    message: string,
    options: {
      monitor?: string;
      retryAfterS?: number;
      failures?: readonly DiscoveryError[];
      cause?: unknown;
    } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.monitor = options.monitor;
    this.retryAfterS = options.retryAfterS;
    this.failures = options.failures ?? [];
  }
}

/** A registration could not be made at any proxy (or was refused for good: 403, bad password). */
export class RegistrationError extends Error {
  override readonly name = "RegistrationError";
  /** The last SIP status seen (408 timeout, 503 transport failure, 401/403 …). */
  readonly status: number | undefined;
  /** The proxy URI of the last attempt. */
  readonly proxy: string | undefined;

  constructor(message: string, options: { status?: number; proxy?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.status = options.status;
    this.proxy = options.proxy;
  }
}

/**
 * What a {@link MediaSession} throws when it cannot take an offer or answer (no common codec,
 * bad SDP): the call answers `488 Not Acceptable Here` (RFC 3261 §13.3.1.3), or ends.
 */
export class MediaRejectedError extends Error {
  override readonly name = "MediaRejectedError";
  /** The status the call answers with: 488 unless the session says otherwise. */
  readonly status: number;

  constructor(message: string, options: { status?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.status = options.status ?? 488;
  }
}

/** A call could not be placed or answered (a bug in the caller's use, or a state clash). */
export class CallStateError extends Error {
  override readonly name = "CallStateError";
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
  }
}

/** How a call ended (see Call's `ended` event). */
export interface CallEnd {
  /**
   * - `hangup`: we ended it (BYE sent, or a CANCEL/decline of our own);
   * - `remote-hangup`: the peer's BYE;
   * - `cancelled`: the caller cancelled before an answer (either side sees this);
   * - `rejected`: a final non-2xx answer (its `status`: 486, 488, 603 …);
   * - `failed`: no answer (timeout, transport failure, no proxy) — `status` 408 or 503;
   * - `no-ack`: we answered and no ACK came within 64 × T1 (RFC 3261 §13.3.1.4);
   * - `stopped`: the user agent stopped.
   */
  readonly reason:
    "hangup" | "remote-hangup" | "cancelled" | "rejected" | "failed" | "no-ack" | "stopped";
  readonly status?: number;
  readonly message: string;
}

/** A call ended before it was answered (Call.whenAnswered rejects with it). */
export class CallEndedError extends Error {
  override readonly name = "CallEndedError";
  readonly end: CallEnd;

  constructor(end: CallEnd) {
    super(
      `call ended before an answer: ${end.reason}${end.status === undefined ? "" : ` ${end.status}`} (${end.message})`,
    );
    this.end = end;
  }
}
