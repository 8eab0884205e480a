/**
 * One header field line of a message, after unfolding. Immutable but for the cache of its
 * parsed value, so clones of a message share fields safely.
 */
export class HeaderField {
  /** The parsed value, or the SipParseError parsing raised; filled on first use. */
  parsed: unknown = undefined;

  constructor(
    /** The name as written on the wire, or as given when we made the field. */
    readonly name: string,
    /** Lower-case long form: "via" for "v", "Via" and "VIA". */
    readonly key: string,
    /**
     * The value as a byte string (one char per octet), unfolded, without surrounding
     * whitespace.
     */
    readonly value: string,
    /** Where the whole line (with its CRLF) sits in the message source; -1 when made here. */
    readonly start = -1,
    readonly end = -1,
  ) {}
}
