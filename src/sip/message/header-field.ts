/**
 * One header field line of a message, after unfolding. Immutable but for the cache of its
 * parsed value, so clones of a message share fields safely.
 *
 * A field read from the wire slices its name and value out of the message text only when they
 * are first asked for: most fields of a forwarded message are never read.
 */
export class HeaderField {
  /** The parsed value, or the SipParseError parsing raised; filled on first use. */
  parsed: unknown = undefined;
  /** Lower-case long form: "via" for "v", "Via" and "VIA". */
  readonly key: string;
  /** Where the whole line (with its CRLF) sits in the message source; -1 when made here. */
  readonly start: number;
  readonly end: number;
  #name: string | undefined;
  #value: string | undefined;
  readonly #text: string;
  readonly #nameEnd: number;
  readonly #valueStart: number;
  readonly #valueEnd: number;

  /**
   * A field made in code: `name` as it will be written, `value` as a byte string. (The
   * parser passes the other arguments: where name and value sit in the message text.)
   */
  constructor(
    name: string | undefined,
    key: string,
    value: string | undefined,
    start = -1,
    end = -1,
    text = "",
    nameEnd = 0,
    valueStart = 0,
    valueEnd = 0,
  ) {
    this.key = key;
    this.#name = name;
    this.#value = value;
    this.start = start;
    this.end = end;
    this.#text = text;
    this.#nameEnd = nameEnd;
    this.#valueStart = valueStart;
    this.#valueEnd = valueEnd;
  }

  /**
   * True when this field's bytes sit at [start, end) of the message read from `headText`:
   * a field copied in from another message is written out as text instead.
   */
  isSpanOf(headText: string): boolean {
    return this.start >= 0 && this.#text === headText;
  }

  /** The name as written on the wire, or as given when the field was made. */
  get name(): string {
    return (this.#name ??= this.#text.slice(this.start, this.#nameEnd));
  }

  /**
   * The value as a byte string (one char per octet), unfolded, without surrounding
   * whitespace.
   */
  get value(): string {
    return (this.#value ??= this.#text.slice(this.#valueStart, this.#valueEnd));
  }
}
