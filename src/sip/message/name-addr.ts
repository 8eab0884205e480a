import { SipParseError } from "../errors.js";
import { COMMA, DQUOTE, LAQUOT, SEMI, TOKEN, decodeText, hasClass, isWs, skipWs } from "./chars.js";
import { Params, readHeaderParams } from "./params.js";
import { quote, readQuotedString, unquote } from "./quoted-string.js";
import { SipUri, parseUri, type Uri, type UriLimits } from "./uri.js";

/**
 * A name-addr or addr-spec with its header parameters (RFC 3261 §20.10, §20.20, §20.39 …):
 * the value of From, To, Contact, Route, Record-Route, Path and their kin.
 */
export class NameAddr {
  constructor(
    readonly uri: Uri,
    readonly params: Params = Params.EMPTY,
    /** The display name as text (quotes and quoted-pairs undone, UTF-8 decoded). */
    readonly displayName?: string,
  ) {}

  /** The `tag` parameter of From and To. */
  get tag(): string | undefined {
    return this.params.get("tag") ?? undefined;
  }

  /** The `q` parameter of a Contact, 0…1; undefined when absent or malformed. */
  get q(): number | undefined {
    const q = this.params.get("q");
    // qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )
    if (q === null || q === undefined || !/^(0(\.\d{0,3})?|1(\.0{0,3})?)$/.test(q)) {
      return undefined;
    }
    return Number(q);
  }

  /** The `expires` parameter of a Contact in seconds; undefined when absent or malformed. */
  get expires(): number | undefined {
    const e = this.params.get("expires");
    if (e === null || e === undefined || !/^\d{1,20}$/.test(e)) return undefined;
    return Number(e);
  }

  /** The URI when it is sip: or sips:. */
  get sipUri(): SipUri | undefined {
    return this.uri instanceof SipUri ? this.uri : undefined;
  }

  withParams(params: Params): NameAddr {
    return new NameAddr(this.uri, params, this.displayName);
  }

  /** Always in name-addr form (`"Name" <uri>;params`), which is valid for every header. */
  toString(): string {
    const name = this.displayName === undefined ? "" : `${quote(this.displayName)} `;
    return `${name}<${this.uri.toString()}>${this.params.toString()}`;
  }
}

/** What a Contact list holds for its "*" value (RFC 3261 §10.2.2). */
export const WILDCARD = "*";

/**
 * Reads one name-addr or addr-spec with its parameters from `s` at `start`, up to a comma
 * or `end`:
 *
 *     ( name-addr / addr-spec ) *( SEMI generic-param )
 *     name-addr    = [ display-name ] LAQUOT addr-spec RAQUOT
 *     display-name = *(token LWS) / quoted-string
 *
 * RFC 3261 §20: in addr-spec form a semicolon, comma or question mark cannot belong to the
 * URI, so parameters there are header parameters, and a URI with headers is an error.
 */
export function readNameAddr(
  s: string,
  start: number,
  end: number,
  limits: UriLimits,
): { value: NameAddr; next: number } {
  let i = skipWs(s, start, end);
  let displayName: string | undefined;
  let uriText: string;

  const c = s.charCodeAt(i);
  if (c === DQUOTE) {
    const close = readQuotedString(s, i, end);
    displayName = unquote(s.slice(i, close));
    i = skipWs(s, close, end);
    if (s.charCodeAt(i) !== LAQUOT) fail("a quoted display name must be followed by <");
  } else if (c !== LAQUOT) {
    // A run of tokens and whitespace followed by "<" is a display name; else an addr-spec.
    let j = i;
    while (j < end) {
      const d = s.charCodeAt(j);
      if (!hasClass(d, TOKEN) && !isWs(d)) break;
      j++;
    }
    if (j > i && s.charCodeAt(j) === LAQUOT) {
      displayName = decodeText(s.slice(i, j).trimEnd());
      i = j;
    }
  }

  const bracketed = s.charCodeAt(i) === LAQUOT;
  if (bracketed) {
    const close = s.indexOf(">", i + 1);
    if (close < 0 || close >= end) fail("missing > after the URI");
    uriText = s.slice(i + 1, close);
    i = close + 1;
  } else {
    let j = i;
    while (j < end) {
      const d = s.charCodeAt(j);
      if (d === SEMI || d === COMMA || isWs(d)) break;
      j++;
    }
    uriText = s.slice(i, j);
    i = j;
  }

  const uri = parseUri(uriText, limits);
  if (!bracketed && uri instanceof SipUri && uri.headers.length > 0) {
    fail("a URI with headers must be enclosed in <>");
  }
  const { params, next } = readHeaderParams(s, i, end, limits.maxParams);
  return { value: new NameAddr(uri, params, displayName), next };
}

/** Parses a header value that holds exactly one name-addr / addr-spec (From, To). */
export function parseNameAddr(s: string, limits: UriLimits): NameAddr {
  const { value, next } = readNameAddr(s, 0, s.length, limits);
  if (next !== s.length) fail("more than one value");
  return value;
}

/**
 * Parses a comma-separated list of name-addr / addr-spec (Contact, Route, Record-Route,
 * Path). For Contact, a lone "*" yields the WILDCARD marker.
 */
export function parseNameAddrList(
  s: string,
  limits: UriLimits,
  allowWildcard = false,
): (NameAddr | typeof WILDCARD)[] {
  const out: (NameAddr | typeof WILDCARD)[] = [];
  let i = 0;
  for (;;) {
    i = skipWs(s, i);
    if (allowWildcard && s.charCodeAt(i) === 0x2a) {
      const after = skipWs(s, i + 1);
      if (after === s.length || s.charCodeAt(after) === COMMA) {
        out.push(WILDCARD);
        i = after;
        if (i === s.length) return out;
        i++;
        continue;
      }
    }
    const { value, next } = readNameAddr(s, i, s.length, limits);
    out.push(value);
    if (next === s.length) return out;
    i = next + 1; // past the comma
    if (skipWs(s, i) === s.length) fail("empty value after a comma");
  }
}

function fail(message: string): never {
  throw new SipParseError("SIP_ERR_HEADER_SYNTAX", message);
}
