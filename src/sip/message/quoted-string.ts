import { SipParseError } from "../errors.js";
import { BACKSLASH, CR, DQUOTE, HTAB, LF, decodeText } from "./chars.js";

/**
 * Reads a quoted-string starting at the DQUOTE at `start` and returns the index just past the
 * closing DQUOTE (RFC 3261 §25.1):
 *
 *     quoted-string = SWS DQUOTE *(qdtext / quoted-pair ) DQUOTE
 *     qdtext        = LWS / %x21 / %x23-5B / %x5D-7E / UTF8-NONASCII
 *     quoted-pair   = "\" (%x00-09 / %x0B-0C / %x0E-7F)
 */
export function readQuotedString(s: string, start: number, end: number): number {
  for (let i = start + 1; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c === DQUOTE) return i + 1;
    if (c === BACKSLASH) {
      const next = s.charCodeAt(i + 1);
      if (i + 1 >= end || next === CR || next === LF || next > 0x7f) {
        throw new SipParseError("SIP_ERR_HEADER_SYNTAX", "invalid quoted-pair");
      }
      i++;
      continue;
    }
    if ((c < 0x20 && c !== HTAB) || c === 0x7f) {
      throw new SipParseError("SIP_ERR_HEADER_SYNTAX", "control character in quoted-string");
    }
  }
  throw new SipParseError("SIP_ERR_HEADER_SYNTAX", "unterminated quoted-string");
}

/** The text of a quoted-string (with its quotes), quoted-pairs undone, UTF-8 decoded. */
export function unquote(quoted: string): string {
  let inner = quoted.slice(1, -1);
  if (inner.indexOf("\\") >= 0) inner = inner.replace(/\\([\s\S])/g, "$1");
  return decodeText(inner);
}

/** A quoted-string holding `text` (a JavaScript string), with `"` and `\` escaped. */
export function quote(text: string): string {
  return `"${text.replace(/["\\]/g, "\\$&")}"`;
}
