import { SipParseError } from "../errors.js";
import {
  CHAR_CLASS,
  COMMA,
  DQUOTE,
  EQUAL,
  GEN_VALUE,
  SEMI,
  TOKEN,
  equalsIgnoreCase,
  skipWs,
} from "./chars.js";
import { readQuotedString } from "./quoted-string.js";

/** One `;name[=value]` parameter; `value` is null for a parameter without "=". */
export type Param = readonly [name: string, value: string | null];

/**
 * The parameters of a URI or a header value, in order, names as they were written.
 * Lookups ignore the case of names (RFC 3261 §7.3.1, §19.1.4). Values are kept as written
 * (escapes and quotes included), so `toString()` reproduces them exactly.
 */
export class Params {
  static readonly EMPTY = new Params([]);

  constructor(readonly entries: readonly Param[]) {}

  get size(): number {
    return this.entries.length;
  }

  /** The value of `name`: undefined when absent, null when present without a value. */
  get(name: string): string | null | undefined {
    for (const [n, v] of this.entries) if (equalsIgnoreCase(n, name)) return v;
    return undefined;
  }

  has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  /** A copy with `name` set to `value` (replacing the first occurrence, or appended). */
  with(name: string, value: string | null = null): Params {
    const entries = [...this.entries];
    const at = entries.findIndex(([n]) => equalsIgnoreCase(n, name));
    if (at >= 0) entries[at] = [entries[at]![0], value];
    else entries.push([name, value]);
    return new Params(entries);
  }

  /** A copy without any parameter called `name`. */
  without(name: string): Params {
    return new Params(this.entries.filter(([n]) => !equalsIgnoreCase(n, name)));
  }

  /** `;a=b;c` — empty when there are no parameters. */
  toString(): string {
    let out = "";
    for (const [n, v] of this.entries) out += v === null ? `;${n}` : `;${n}=${v}`;
    return out;
  }
}

/**
 * Reads `*( SEMI generic-param )` (RFC 3261 §25.1) from `s` at `start`, stopping before a
 * comma or at `end`. generic-param = token [ EQUAL gen-value ]; SEMI and EQUAL admit LWS.
 * Returns the parameters and the index where reading stopped.
 */
export function readHeaderParams(
  s: string,
  start: number,
  end: number,
  maxParams: number,
): { params: Params; next: number } {
  const table = CHAR_CLASS;
  let i = skipWs(s, start, end);
  if (i >= end || s.charCodeAt(i) !== SEMI) return { params: Params.EMPTY, next: i };
  const entries: Param[] = [];
  while (i < end && s.charCodeAt(i) === SEMI) {
    i = skipWs(s, i + 1, end);
    // Inline class loops: this runs for every Via, From, To and Contact.
    let nameEnd = i;
    while (nameEnd < end) {
      const c = s.charCodeAt(nameEnd);
      if (c > 255 || (table[c]! & TOKEN) === 0) break;
      nameEnd++;
    }
    if (nameEnd === i) throw new SipParseError("SIP_ERR_HEADER_SYNTAX", "empty parameter");
    const name = s.slice(i, nameEnd);
    i = skipWs(s, nameEnd, end);
    let value: string | null = null;
    if (i < end && s.charCodeAt(i) === EQUAL) {
      i = skipWs(s, i + 1, end);
      let valueEnd = i;
      if (s.charCodeAt(i) === DQUOTE) {
        valueEnd = readQuotedString(s, i, end);
      } else {
        while (valueEnd < end) {
          const c = s.charCodeAt(valueEnd);
          if (c > 255 || (table[c]! & GEN_VALUE) === 0) break;
          valueEnd++;
        }
      }
      if (valueEnd === i) {
        throw new SipParseError("SIP_ERR_HEADER_SYNTAX", `parameter ${name} has an empty value`);
      }
      value = s.slice(i, valueEnd);
      i = skipWs(s, valueEnd, end);
    }
    if (entries.length >= maxParams) {
      throw new SipParseError("SIP_ERR_TOO_MANY_PARAMS", `more than ${maxParams} parameters`, {
        status: 400,
      });
    }
    entries.push([name, value]);
  }
  if (i < end && s.charCodeAt(i) !== COMMA) {
    throw new SipParseError(
      "SIP_ERR_HEADER_SYNTAX",
      `unexpected ${JSON.stringify(s[i])} after parameters`,
    );
  }
  return { params: new Params(entries), next: i };
}
