import { SipParseError } from "../errors.js";
import { COMMA, DQUOTE, EQUAL, TOKEN, isWs, skipClass, skipWs } from "./chars.js";
import { quote, readQuotedString, unquote } from "./quoted-string.js";

/**
 * A challenge (WWW-Authenticate, Proxy-Authenticate) or credentials (Authorization,
 * Proxy-Authorization), RFC 3261 §20.7, §20.27, §20.28, §20.44, §25.1:
 *
 *     credentials  = ("Digest" LWS digest-response) / other-response
 *     other-response = auth-scheme LWS auth-param *(COMMA auth-param)
 *     auth-param   = auth-param-name EQUAL ( token / quoted-string )
 */
export interface AuthHeader {
  /** As written ("Digest"); compare case-insensitively. */
  readonly scheme: string;
  /** Parameter names lower-cased; values with quotes and quoted-pairs undone. */
  readonly params: ReadonlyMap<string, string>;
}

function fail(message: string): never {
  throw new SipParseError("SIP_ERR_HEADER_SYNTAX", message);
}

export function parseAuthHeader(s: string, maxParams: number): AuthHeader {
  const schemeEnd = skipClass(s, 0, TOKEN);
  if (schemeEnd === 0) fail("missing auth scheme");
  const scheme = s.slice(0, schemeEnd);
  const params = new Map<string, string>();
  let i = skipWs(s, schemeEnd);
  if (i === schemeEnd && i < s.length) fail("missing whitespace after the auth scheme");
  while (i < s.length) {
    const nameEnd = skipClass(s, i, TOKEN);
    if (nameEnd === i) fail("expected an auth parameter name");
    const name = s.slice(i, nameEnd).toLowerCase();
    i = skipWs(s, nameEnd);
    if (s.charCodeAt(i) !== EQUAL) fail(`auth parameter ${name} has no value`);
    i = skipWs(s, i + 1);
    let value: string;
    if (s.charCodeAt(i) === DQUOTE) {
      const close = readQuotedString(s, i, s.length);
      value = unquote(s.slice(i, close));
      i = close;
    } else {
      // token per the grammar; peers also send bare URIs and such, which we take up to a
      // comma or whitespace.
      let end = i;
      while (end < s.length && s.charCodeAt(end) !== COMMA && !isWs(s.charCodeAt(end))) end++;
      if (end === i) fail(`auth parameter ${name} has an empty value`);
      value = s.slice(i, end);
      i = end;
    }
    if (params.has(name)) fail(`auth parameter ${name} appears twice`);
    if (params.size >= maxParams) {
      throw new SipParseError("SIP_ERR_TOO_MANY_PARAMS", "too many auth parameters");
    }
    params.set(name, value);
    i = skipWs(s, i);
    if (i === s.length) break;
    if (s.charCodeAt(i) !== COMMA) fail("expected a comma between auth parameters");
    i = skipWs(s, i + 1);
  }
  return { scheme, params };
}

/** One parameter to format: name, value, and whether it is written as a quoted-string. */
export type AuthParam = readonly [name: string, value: string, quoted: boolean];

/** `Digest realm="x", nonce="y", algorithm=MD5` */
export function formatAuthHeader(scheme: string, params: readonly AuthParam[]): string {
  return `${scheme} ${params.map(([n, v, q]) => `${n}=${q ? quote(v) : v}`).join(", ")}`;
}
