/**
 * Bounds the codec enforces on every message, so that a hostile peer cannot make us hold or
 * scan unbounded input. Each breach is a typed {@link SipParseError}.
 */
export interface ParseLimits {
  /** Whole message, head and body, in bytes. */
  readonly maxMessageBytes: number;
  /** Number of header fields (lines, after unfolding). */
  readonly maxHeaders: number;
  /** One header field, name and value with its folding, in bytes. */
  readonly maxHeaderBytes: number;
  /** One URI, in bytes. */
  readonly maxUriBytes: number;
  /** Parameters of one URI or one header value. */
  readonly maxParams: number;
}

/** 65,535 is the largest UDP payload; no SIP message we accept is bigger on any transport. */
export const DEFAULT_MAX_MESSAGE_BYTES = 65_535;
export const DEFAULT_MAX_HEADERS = 128;
export const DEFAULT_MAX_HEADER_BYTES = 8_192;
export const DEFAULT_MAX_URI_BYTES = 2_048;
export const DEFAULT_MAX_PARAMS = 64;

export const DEFAULT_PARSE_LIMITS: ParseLimits = Object.freeze({
  maxMessageBytes: DEFAULT_MAX_MESSAGE_BYTES,
  maxHeaders: DEFAULT_MAX_HEADERS,
  maxHeaderBytes: DEFAULT_MAX_HEADER_BYTES,
  maxUriBytes: DEFAULT_MAX_URI_BYTES,
  maxParams: DEFAULT_MAX_PARAMS,
});

/** Merges overrides onto the defaults, refusing values that are not positive integers. */
export function parseLimits(overrides: Partial<ParseLimits> = {}): ParseLimits {
  const merged = { ...DEFAULT_PARSE_LIMITS, ...overrides };
  for (const [name, value] of Object.entries(merged)) {
    if (!Number.isSafeInteger(value) || value <= 0) {
      throw new RangeError(`limits.${name} must be a positive integer, got ${String(value)}`);
    }
  }
  return Object.freeze(merged);
}
