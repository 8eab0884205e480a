import { SipParseError } from "../errors.js";
import {
  AMP,
  COLON,
  EQUAL,
  HNV,
  PARAM,
  PASSWORD,
  QMARK,
  SEMI,
  USER,
  escapePercent,
  isAlpha,
  isDigit,
  skipEscaped,
  unescapePercent,
} from "./chars.js";
import { skipHost } from "./host.js";
import { Params, type Param } from "./params.js";

/** Bounds a URI parse; see ParseLimits. */
export interface UriLimits {
  readonly maxUriBytes: number;
  readonly maxParams: number;
}

const NO_LIMITS: UriLimits = { maxUriBytes: Infinity, maxParams: Infinity };

export interface SipUriParts {
  readonly scheme: "sip" | "sips";
  /** The user part as written, escapes included. */
  readonly user?: string | undefined;
  readonly password?: string | undefined;
  /** Hostname, IPv4 address or IPv6 reference (with its brackets), as written. */
  readonly host: string;
  readonly port?: number | undefined;
  readonly params?: Params;
  /** URI headers (`?name=value&…`) as written, escapes included. */
  readonly headers?: readonly Param[];
}

/**
 * A SIP or SIPS URI (RFC 3261 §19.1). Immutable: `with()` makes a changed copy. A parsed URI
 * prints exactly as it was received until it is changed.
 */
export class SipUri {
  readonly scheme: "sip" | "sips";
  readonly user: string | undefined;
  readonly password: string | undefined;
  readonly host: string;
  readonly port: number | undefined;
  readonly params: Params;
  readonly headers: readonly Param[];
  #text: string | undefined;

  constructor(parts: SipUriParts, text?: string) {
    this.scheme = parts.scheme;
    this.user = parts.user;
    this.password = parts.password;
    this.host = parts.host;
    this.port = parts.port;
    this.params = parts.params ?? Params.EMPTY;
    this.headers = parts.headers ?? [];
    this.#text = text;
  }

  /** The user part with escapes undone (RFC 3261 §19.1.4 compares this form). */
  get unescapedUser(): string | undefined {
    return this.user === undefined ? undefined : unescapePercent(this.user);
  }

  /** The host without IPv6 brackets, lower-cased, as sockets and DNS want it. */
  get hostname(): string {
    const h = this.host.startsWith("[") ? this.host.slice(1, -1) : this.host;
    return h.toLowerCase();
  }

  /** The `transport` parameter, lower-cased, if any. */
  get transport(): string | undefined {
    return this.params.get("transport")?.toLowerCase();
  }

  /** A copy with some parts changed. */
  with(changes: Partial<SipUriParts>): SipUri {
    return new SipUri({ ...this.#parts(), ...changes });
  }

  /** Builds a URI from a user written as plain text (it is escaped here). */
  static from(parts: SipUriParts): SipUri {
    return new SipUri({
      ...parts,
      user: parts.user === undefined ? undefined : escapeUser(parts.user),
    });
  }

  toString(): string {
    if (this.#text !== undefined) return this.#text;
    let out = `${this.scheme}:`;
    if (this.user !== undefined) {
      out += this.user;
      if (this.password !== undefined) out += `:${this.password}`;
      out += "@";
    }
    out += this.host;
    if (this.port !== undefined) out += `:${this.port}`;
    out += this.params.toString();
    if (this.headers.length > 0) {
      out += "?" + this.headers.map(([n, v]) => `${n}=${v ?? ""}`).join("&");
    }
    this.#text = out;
    return out;
  }

  #parts(): SipUriParts {
    return {
      scheme: this.scheme,
      user: this.user,
      password: this.password,
      host: this.host,
      port: this.port,
      params: this.params,
      headers: this.headers,
    };
  }
}

function escapeUser(plain: string): string {
  // RFC 3261 §19.1.2: the user part escapes what is not unreserved or user-unreserved, and
  // "%" itself.
  return escapePercent(plain, USER);
}

/** A tel URI (RFC 3966): a telephone number and its parameters. */
export class TelUri {
  readonly scheme = "tel" as const;
  constructor(
    /** The number as written, visual separators included. */
    readonly number: string,
    readonly params: Params = Params.EMPTY,
  ) {}

  /** True for a global number (starting with "+"). */
  get isGlobal(): boolean {
    return this.number.startsWith("+");
  }

  toString(): string {
    return `tel:${this.number}${this.params.toString()}`;
  }
}

/** Any other absolute URI (RFC 3261 §25.1 absoluteURI), kept opaque. */
export class AbsoluteUri {
  constructor(
    /** The scheme, lower-cased. */
    readonly scheme: string,
    /** Everything after the colon, as written. */
    readonly opaque: string,
    private readonly text: string,
  ) {}

  toString(): string {
    return this.text;
  }
}

export type Uri = SipUri | TelUri | AbsoluteUri;

export function isSipUri(uri: Uri): uri is SipUri {
  return uri instanceof SipUri;
}

function fail(message: string): never {
  throw new SipParseError("SIP_ERR_HEADER_SYNTAX", message);
}

/** scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ); returns the index of its ":" or -1. */
function schemeEnd(s: string): number {
  if (s.length === 0 || !isAlpha(s.charCodeAt(0))) return -1;
  for (let i = 1; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === COLON) return i;
    if (!isAlpha(c) && !isDigit(c) && c !== 0x2b && c !== 0x2d && c !== 0x2e) return -1;
  }
  return -1;
}

/**
 * Parses a URI from a byte string: sip and sips by RFC 3261 §19.1 and §25.1, tel by
 * RFC 3966, any other scheme as an opaque absoluteURI. Throws SipParseError.
 */
export function parseUri(text: string, limits: UriLimits = NO_LIMITS): Uri {
  if (text.length > limits.maxUriBytes) {
    throw new SipParseError("SIP_ERR_URI_TOO_LONG", `URI longer than ${limits.maxUriBytes} bytes`);
  }
  // "sip:" and "sips:" in any case, by char codes: nearly every URI is one.
  if (
    (text.charCodeAt(0) | 0x20) === 0x73 &&
    (text.charCodeAt(1) | 0x20) === 0x69 &&
    (text.charCodeAt(2) | 0x20) === 0x70
  ) {
    if (text.charCodeAt(3) === COLON) return parseSipUri(text, "sip", 4, limits);
    if ((text.charCodeAt(3) | 0x20) === 0x73 && text.charCodeAt(4) === COLON) {
      return parseSipUri(text, "sips", 5, limits);
    }
  }
  const colon = schemeEnd(text);
  if (colon < 0) fail("URI has no scheme");
  return parseOtherUri(text, colon, limits);
}

function parseOtherUri(text: string, colon: number, limits: UriLimits): Uri {
  const scheme = text.slice(0, colon).toLowerCase();
  if (scheme === "tel") return parseTelUri(text, colon + 1, limits);
  const opaque = text.slice(colon + 1);
  if (!isUricLoose(opaque)) fail("invalid character in URI");
  return new AbsoluteUri(scheme, opaque, text);
}

/**
 * uric = reserved / unreserved / escaped: printable ASCII without space, quotes, angle
 * brackets or backslash, and "%" only as an escape.
 */
function isUricLoose(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f || c === 0x22 || c === 0x3c || c === 0x3e || c === 0x5c) {
      return false;
    }
    if (c === 0x25 && !/^[0-9a-fA-F]{2}$/.test(s.slice(i + 1, i + 3))) return false;
  }
  return true;
}

function parseSipUri(
  text: string,
  scheme: "sip" | "sips",
  start: number,
  limits: UriLimits,
): SipUri {
  const end = text.length;
  let i = start;
  let user: string | undefined;
  let password: string | undefined;
  // No part after userinfo may hold an unescaped "@", so the first one ends userinfo.
  const at = text.indexOf("@", i);
  if (at >= 0) {
    const userEnd = skipEscaped(text, i, USER, at);
    if (userEnd <= i) fail("invalid user part in URI");
    user = text.slice(i, userEnd);
    if (userEnd < at) {
      if (
        text.charCodeAt(userEnd) !== COLON ||
        skipEscaped(text, userEnd + 1, PASSWORD, at) !== at
      ) {
        fail("invalid user part in URI");
      }
      password = text.slice(userEnd + 1, at);
    }
    i = at + 1;
  }

  const hostEnd = skipHost(text, i, end);
  if (hostEnd < 0) fail("invalid host in URI");
  const host = text.slice(i, hostEnd);
  i = hostEnd;

  let port: number | undefined;
  if (text.charCodeAt(i) === COLON) {
    let value = 0;
    let j = i + 1;
    // Up to six digits are read so that a six-digit port is seen and refused.
    for (; j < end && j - i <= 6; j++) {
      const c = text.charCodeAt(j);
      if (c < 0x30 || c > 0x39) break;
      value = value * 10 + (c - 0x30);
    }
    const digits = j - i - 1;
    if (digits === 0 || digits > 5 || value > 65535) fail("invalid port in URI");
    port = value;
    i = j;
  }

  let params = Params.EMPTY;
  if (text.charCodeAt(i) === SEMI) {
    const entries: Param[] = [];
    while (text.charCodeAt(i) === SEMI) {
      const nameStart = i + 1;
      const nameEnd = skipEscaped(text, nameStart, PARAM, end);
      if (nameEnd <= nameStart) fail("invalid URI parameter");
      i = nameEnd;
      let value: string | null = null;
      if (text.charCodeAt(i) === EQUAL) {
        const valueEnd = skipEscaped(text, i + 1, PARAM, end);
        if (valueEnd <= i + 1) fail("invalid URI parameter value");
        value = text.slice(i + 1, valueEnd);
        i = valueEnd;
      }
      if (entries.length >= limits.maxParams) {
        throw new SipParseError("SIP_ERR_TOO_MANY_PARAMS", "too many URI parameters");
      }
      entries.push([text.slice(nameStart, nameEnd), value]);
    }
    params = new Params(entries);
  }

  let headers: Param[] | undefined;
  if (text.charCodeAt(i) === QMARK) {
    headers = [];
    do {
      const nameStart = i + 1;
      const nameEnd = skipEscaped(text, nameStart, HNV, end);
      if (nameEnd <= nameStart || text.charCodeAt(nameEnd) !== EQUAL) fail("invalid URI header");
      const valueEnd = skipEscaped(text, nameEnd + 1, HNV, end);
      if (valueEnd < 0) fail("invalid URI header value");
      if (headers.length >= limits.maxParams) {
        throw new SipParseError("SIP_ERR_TOO_MANY_PARAMS", "too many URI headers");
      }
      headers.push([text.slice(nameStart, nameEnd), text.slice(nameEnd + 1, valueEnd)]);
      i = valueEnd;
    } while (text.charCodeAt(i) === AMP);
  }

  if (i !== end) fail(`unexpected ${JSON.stringify(text[i])} in URI`);
  return new SipUri({ scheme, user, password, host, port, params, headers }, text);
}

function parseTelUri(text: string, start: number, limits: UriLimits): TelUri {
  const semi = text.indexOf(";", start);
  const numberEnd = semi < 0 ? text.length : semi;
  const number = text.slice(start, numberEnd);
  // global-number-digits = "+" *phonedigit DIGIT *phonedigit; local numbers add hex, * and #
  if (!/^\+?[0-9A-Fa-f*#().-]+$/.test(number) || !/[0-9A-Fa-f*#]/.test(number)) {
    fail("invalid telephone number in tel URI");
  }
  const entries: Param[] = [];
  if (semi >= 0) {
    for (const part of text.slice(semi + 1).split(";")) {
      const eq = part.indexOf("=");
      const name = eq < 0 ? part : part.slice(0, eq);
      const value = eq < 0 ? null : part.slice(eq + 1);
      if (!/^[A-Za-z0-9-]+$/.test(name) || (value !== null && !isUricLoose(value))) {
        fail("invalid tel URI parameter");
      }
      if (entries.length >= limits.maxParams) {
        throw new SipParseError("SIP_ERR_TOO_MANY_PARAMS", "too many URI parameters");
      }
      entries.push([name, value]);
    }
  }
  const params = new Params(entries);
  if (!number.startsWith("+") && !params.has("phone-context")) {
    fail("a local tel number needs phone-context");
  }
  return new TelUri(number, params);
}
