/**
 * Character classes of RFC 3261 §25.1, as one lookup table of bit flags.
 *
 * The codec works on "byte strings": header text decoded as latin1, so that one char is one
 * octet and offsets in the string are offsets in the datagram. Text meant for people (display
 * names, reason phrases, quoted strings) is decoded from UTF-8 only when it is asked for.
 */

export const ALPHANUM = 1;
/** token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~") */
export const TOKEN = 2;
/** unreserved = alphanum / mark; mark = "-" / "_" / "." / "!" / "~" / "*" / "'" / "(" / ")" */
export const UNRESERVED = 4;
/** user = 1*( unreserved / escaped / user-unreserved ); "%" is checked as an escape */
export const USER = 8;
/** password = *( unreserved / escaped / "&" / "=" / "+" / "$" / "," ) */
export const PASSWORD = 16;
/** paramchar = param-unreserved / unreserved / escaped */
export const PARAM = 32;
/** hname / hvalue = 1*( hnv-unreserved / unreserved / escaped ) */
export const HNV = 64;
/** word = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~" / "(" / ")"
 *  / "<" / ">" / ":" / "\" / DQUOTE / "/" / "[" / "]" / "?" / "{" / "}") */
export const WORD = 128;
/** Characters of a hostname or IPv4 address (plus "_", which real deployments use). */
export const HOST = 256;
/** gen-value = token / host (RFC 3261 §25.1): token chars, ":" and the brackets of IPv6. */
export const GEN_VALUE = 512;

export const CHAR_CLASS = new Uint16Array(256);

function mark(chars: string, flag: number): void {
  for (let i = 0; i < chars.length; i++) CHAR_CLASS[chars.charCodeAt(i)]! |= flag;
}

const ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
mark(ALNUM, ALPHANUM | TOKEN | UNRESERVED | USER | PASSWORD | PARAM | HNV | WORD | HOST);
mark("-.!%*_+`'~", TOKEN);
mark("-_.!~*'()", UNRESERVED | USER | PASSWORD | PARAM | HNV);
mark("&=+$,;?/", USER);
mark("&=+$,", PASSWORD);
mark("[]/:&+$", PARAM);
mark("[]/?:+$", HNV);
mark("%", USER | PASSWORD | PARAM | HNV);
mark("-.!%*_+`'~()<>:\\\"/[]?{}", WORD);
mark("-._", HOST);
mark(ALNUM + "-.!%*_+`'~:[]", GEN_VALUE);

export const SP = 0x20;
export const HTAB = 0x09;
export const CR = 0x0d;
export const LF = 0x0a;
export const DQUOTE = 0x22;
export const BACKSLASH = 0x5c;
export const COLON = 0x3a;
export const SEMI = 0x3b;
export const COMMA = 0x2c;
export const EQUAL = 0x3d;
export const LAQUOT = 0x3c;
export const PERCENT = 0x25;
export const SLASH = 0x2f;
export const QMARK = 0x3f;
export const AMP = 0x26;
export const LBRACKET = 0x5b;

export function isWs(c: number): boolean {
  return c === SP || c === HTAB;
}

export function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

export function isAlpha(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}

export function isHex(c: number): boolean {
  return isDigit(c) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

export function hasClass(c: number, flag: number): boolean {
  return c < 256 && (CHAR_CLASS[c]! & flag) !== 0;
}

/** Index of the first char at or after `i` that is not SP or HTAB. */
export function skipWs(s: string, i: number, end = s.length): number {
  while (i < end && isWs(s.charCodeAt(i))) i++;
  return i;
}

/** Index just past the run of chars of class `flag` starting at `i`. */
export function skipClass(s: string, i: number, flag: number, end = s.length): number {
  while (i < end) {
    const c = s.charCodeAt(i);
    if (c >= 256 || (CHAR_CLASS[c]! & flag) === 0) break;
    i++;
  }
  return i;
}

/** True when every char of s[start, end) is of class `flag` (and there is at least one). */
export function allOfClass(s: string, flag: number, start = 0, end = s.length): boolean {
  return end > start && skipClass(s, start, flag, end) === end;
}

/**
 * Index past the run of class-`flag` chars at `i`, where every "%" must start an escape
 * (`%` HEXDIG HEXDIG); -1 when one does not. One pass: the URI readers call it per part.
 */
export function skipEscaped(s: string, i: number, flag: number, end = s.length): number {
  const table = CHAR_CLASS;
  while (i < end) {
    const c = s.charCodeAt(i);
    if (c >= 256 || (table[c]! & flag) === 0) break;
    if (c === PERCENT) {
      if (i + 2 >= end || !isHex(s.charCodeAt(i + 1)) || !isHex(s.charCodeAt(i + 2))) return -1;
      i += 3;
    } else {
      i++;
    }
  }
  return i;
}

/** Decodes `%XX` escapes (RFC 3261 §19.1.2); the result is still a byte string. */
export function unescapePercent(s: string): string {
  if (s.indexOf("%") < 0) return s;
  let out = "";
  let last = 0;
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) === PERCENT && isHex(s.charCodeAt(i + 1)) && isHex(s.charCodeAt(i + 2))) {
      out += s.slice(last, i) + String.fromCharCode(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
      last = i + 1;
    }
  }
  return out + s.slice(last);
}

const HEX_DIGITS = "0123456789ABCDEF";

/** Escapes every byte of `s` that is not of class `flag` (the inverse of unescapePercent). */
export function escapePercent(s: string, flag: number): string {
  let out = "";
  let last = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === PERCENT || c >= 256 || (CHAR_CLASS[c]! & flag) === 0) {
      out += s.slice(last, i) + "%" + HEX_DIGITS[(c >> 4) & 15]! + HEX_DIGITS[c & 15]!;
      last = i + 1;
    }
  }
  return last === 0 ? s : out + s.slice(last);
}

// eslint-disable-next-line no-control-regex
const NON_ASCII = /[^\x00-\x7f]/;

function isAsciiText(s: string): boolean {
  // A loop beats a regex on the short strings this sees (display names, header values).
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}

/** Byte string (latin1 view of UTF-8 octets) to a JavaScript string. */
export function decodeText(bytes: string): string {
  return isAsciiText(bytes) ? bytes : Buffer.from(bytes, "latin1").toString("utf8");
}

/** JavaScript string to a byte string (latin1 view of its UTF-8 octets). */
export function encodeText(text: string): string {
  return NON_ASCII.test(text) ? Buffer.from(text, "utf8").toString("latin1") : text;
}

/** Case-insensitive equality for ASCII names without allocating. */
export function equalsIgnoreCase(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0x41 && x <= 0x5a) x += 0x20;
    if (y >= 0x41 && y <= 0x5a) y += 0x20;
    if (x !== y) return false;
  }
  return true;
}
