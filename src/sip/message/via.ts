import { SipParseError } from "../errors.js";
import {
  COLON,
  COMMA,
  SLASH,
  TOKEN,
  equalsIgnoreCase,
  isDigit,
  skipClass,
  skipWs,
} from "./chars.js";
import { isIPv4, isIPv6, isIPv6Reference, isValidHostname, skipHost } from "./host.js";
import { Params, readHeaderParams } from "./params.js";

/** RFC 3261 §8.1.1.7: a branch starting with this cookie was made by an RFC 3261 element. */
export const BRANCH_MAGIC_COOKIE = "z9hG4bK";

/** One Via header field value (RFC 3261 §20.42, RFC 3581 rport). */
export interface Via {
  /** "SIP" as written. */
  readonly protocol: string;
  /** "2.0" as written. */
  readonly version: string;
  /** Upper-cased: "UDP", "TCP", "TLS", "WS", "WSS", "SCTP" or an extension. */
  readonly transport: string;
  /** sent-by host: hostname, IPv4 address or IPv6 reference (with brackets). */
  readonly host: string;
  readonly port: number | undefined;
  readonly params: Params;
  readonly branch: string | undefined;
  readonly received: string | undefined;
  /** RFC 3581: undefined when absent, null when present without a value. */
  readonly rport: number | null | undefined;
  readonly maddr: string | undefined;
  readonly ttl: number | undefined;
}

function fail(message: string): never {
  throw new SipParseError("SIP_ERR_HEADER_SYNTAX", message);
}

/** SLASH = SWS "/" SWS */
function expectSlash(s: string, i: number, end: number): number {
  i = skipWs(s, i, end);
  if (s.charCodeAt(i) !== SLASH) fail("sent-protocol needs SIP/2.0/transport");
  return skipWs(s, i + 1, end);
}

/** The transport upper-cased, without a new string when it already is ("UDP"). */
function upperCaseToken(t: string): string {
  for (let i = 0; i < t.length; i++) {
    const c = t.charCodeAt(i);
    if (c >= 0x61 && c <= 0x7a) return t.toUpperCase();
  }
  return t;
}

/** "SIP/2.0/" at `i`, compared char by char (cheaper than startsWith for 8 chars). */
function isSip20Slash(s: string, i: number): boolean {
  return (
    s.charCodeAt(i) === 0x53 &&
    s.charCodeAt(i + 1) === 0x49 &&
    s.charCodeAt(i + 2) === 0x50 &&
    s.charCodeAt(i + 3) === 0x2f &&
    s.charCodeAt(i + 4) === 0x32 &&
    s.charCodeAt(i + 5) === 0x2e &&
    s.charCodeAt(i + 6) === 0x30 &&
    s.charCodeAt(i + 7) === 0x2f
  );
}

/** Index past the token at `i`; fails when there is none. */
function tokenEnd(s: string, i: number, end: number, what: string): number {
  const e = skipClass(s, i, TOKEN, end);
  if (e === i) fail(`missing ${what}`);
  return e;
}

/**
 * Reads one via-parm at `start`, up to a comma or `end`:
 *
 *     via-parm      = sent-protocol LWS sent-by *( SEMI via-params )
 *     sent-protocol = protocol-name SLASH protocol-version SLASH transport
 *     sent-by       = host [ COLON port ]
 */
export function readVia(
  s: string,
  start: number,
  end: number,
  maxParams: number,
): { value: Via; next: number } {
  let i = skipWs(s, start, end);
  let protocol: string;
  let version: string;
  if (isSip20Slash(s, i)) {
    // The form every element sends; the general branch below takes LWS around the slashes.
    protocol = "SIP";
    version = "2.0";
    i += 8;
  } else {
    const protocolEnd = tokenEnd(s, i, end, "protocol name");
    const versionStart = expectSlash(s, protocolEnd, end);
    const versionEnd = tokenEnd(s, versionStart, end, "protocol version");
    protocol = s.slice(i, protocolEnd);
    version = s.slice(versionStart, versionEnd);
    i = expectSlash(s, versionEnd, end);
  }
  const transportEnd = tokenEnd(s, i, end, "transport");
  const transport = upperCaseToken(s.slice(i, transportEnd));
  i = skipWs(s, transportEnd, end);
  if (i === transportEnd) fail("missing whitespace before sent-by");

  const hostEnd = skipHost(s, i, end);
  if (hostEnd < 0) fail("invalid sent-by host");
  const host = s.slice(i, hostEnd);
  i = hostEnd;
  let port: number | undefined;
  const beforeColon = skipWs(s, i, end);
  if (s.charCodeAt(beforeColon) === COLON) {
    const portStart = skipWs(s, beforeColon + 1, end);
    let portEnd = portStart;
    let value = 0;
    while (portEnd < end && portEnd - portStart < 6 && isDigit(s.charCodeAt(portEnd))) {
      value = value * 10 + (s.charCodeAt(portEnd) - 0x30);
      portEnd++;
    }
    if (portEnd === portStart || portEnd - portStart > 5 || value > 65535) {
      fail("invalid sent-by port");
    }
    port = value;
    i = portEnd;
  }

  const { params, next } = readHeaderParams(s, i, end, maxParams);
  let branch: string | undefined;
  let received: string | undefined;
  let rport: number | null | undefined;
  let maddr: string | undefined;
  let ttl: number | undefined;
  // One pass over the parameters for the five that mean something.
  for (const [name, value] of params.entries) {
    switch (name.length) {
      case 6:
        if (equalsIgnoreCase(name, "branch")) {
          if (value === null || !isTokenGenValue(value)) fail("invalid branch");
          branch ??= value;
        }
        break;
      case 8:
        if (equalsIgnoreCase(name, "received")) {
          if (value === null || !isAddress(value)) fail("invalid received");
          received ??= value;
        }
        break;
      case 5:
        if (equalsIgnoreCase(name, "rport")) {
          if (value === null) rport ??= null;
          else {
            if (!/^\d{1,5}$/.test(value) || Number(value) > 65535) fail("invalid rport");
            rport ??= Number(value);
          }
        } else if (equalsIgnoreCase(name, "maddr")) {
          if (value === null || !isHost(value)) fail("invalid maddr");
          maddr ??= value;
        }
        break;
      case 3:
        if (equalsIgnoreCase(name, "ttl")) {
          if (value === null || !/^\d{1,3}$/.test(value) || Number(value) > 255)
            fail("invalid ttl");
          ttl ??= Number(value);
        }
        break;
    }
  }

  return {
    value: {
      protocol,
      version,
      transport,
      host,
      port,
      params,
      branch,
      received,
      rport,
      maddr,
      ttl,
    },
    next,
  };
}

/**
 * A gen-value read by readHeaderParams is a token unless quoted or holding ":", "[" or "]":
 * three native searches instead of a loop over every char of a long branch.
 */
function isTokenGenValue(v: string): boolean {
  return v.charCodeAt(0) !== 0x22 && v.indexOf(":") < 0 && v.indexOf("[") < 0 && v.indexOf("]") < 0;
}

function isAddress(s: string): boolean {
  // RFC 3261 writes an IPv6 received without brackets; RFC 5118 §4.5 notes both forms.
  return isIPv4(s) || isIPv6(s) || isIPv6Reference(s);
}

function isHost(s: string): boolean {
  return isIPv6Reference(s) || isValidHostname(s);
}

/** Parses a Via header field value: one or more comma-separated via-parms. */
export function parseViaList(s: string, maxParams: number): Via[] {
  const out: Via[] = [];
  let i = 0;
  for (;;) {
    const { value, next } = readVia(s, i, s.length, maxParams);
    out.push(value);
    if (next >= s.length) return out;
    if (s.charCodeAt(next) !== COMMA) fail("unexpected text after Via value");
    i = next + 1;
  }
}

/** Formats a Via value: `SIP/2.0/UDP host:port;params`. */
export function formatVia(via: {
  transport: string;
  host: string;
  port?: number | undefined;
  params?: Params;
}): string {
  const port = via.port === undefined ? "" : `:${via.port}`;
  return `SIP/2.0/${via.transport.toUpperCase()} ${via.host}${port}${(via.params ?? Params.EMPTY).toString()}`;
}
