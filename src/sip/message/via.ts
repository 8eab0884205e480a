import { SipParseError } from "../errors.js";
import {
  COLON,
  COMMA,
  HOST,
  LBRACKET,
  SLASH,
  TOKEN,
  allOfClass,
  isDigit,
  skipClass,
  skipWs,
} from "./chars.js";
import { isIPv4, isIPv6, isIPv6Reference } from "./ip.js";
import { Params, readHeaderParams } from "./params.js";
import { isValidHostname } from "./uri.js";

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

function readToken(s: string, i: number, end: number, what: string): [string, number] {
  const e = skipClass(s, i, TOKEN, end);
  if (e === i) fail(`missing ${what}`);
  return [s.slice(i, e), e];
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
  const [protocol, protocolEnd] = readToken(s, skipWs(s, start, end), end, "protocol name");
  const [version, versionEnd] = readToken(s, expectSlash(s, protocolEnd, end), end, "version");
  const [transport, transportEnd] = readToken(s, expectSlash(s, versionEnd, end), end, "transport");
  let i = skipWs(s, transportEnd, end);
  if (i === transportEnd) fail("missing whitespace before sent-by");

  let host: string;
  if (s.charCodeAt(i) === LBRACKET) {
    const close = s.indexOf("]", i);
    if (close < 0 || close >= end || !isIPv6(s.slice(i + 1, close))) fail("invalid IPv6 sent-by");
    host = s.slice(i, close + 1);
    i = close + 1;
  } else {
    const hostEnd = skipClass(s, i, HOST, end);
    host = s.slice(i, hostEnd);
    if (!isValidHostname(host)) fail("invalid sent-by host");
    i = hostEnd;
  }
  let port: number | undefined;
  const beforeColon = skipWs(s, i, end);
  if (s.charCodeAt(beforeColon) === COLON) {
    const portStart = skipWs(s, beforeColon + 1, end);
    let portEnd = portStart;
    while (portEnd < end && isDigit(s.charCodeAt(portEnd))) portEnd++;
    if (portEnd === portStart || portEnd - portStart > 5) fail("invalid sent-by port");
    port = Number(s.slice(portStart, portEnd));
    if (port > 65535) fail("sent-by port out of range");
    i = portEnd;
  }

  const { params, next } = readHeaderParams(s, i, end, maxParams);
  const branch = params.get("branch");
  if (branch === null || (branch !== undefined && !allOfClass(branch, TOKEN))) {
    fail("invalid branch");
  }
  const received = params.get("received");
  if (received !== undefined && !(received !== null && isAddress(received))) {
    fail("invalid received");
  }
  const rportText = params.get("rport");
  let rport: number | null | undefined = rportText === null ? null : undefined;
  if (typeof rportText === "string") {
    if (!/^\d{1,5}$/.test(rportText) || Number(rportText) > 65535) fail("invalid rport");
    rport = Number(rportText);
  }
  const ttlText = params.get("ttl");
  let ttl: number | undefined;
  if (ttlText !== undefined) {
    if (ttlText === null || !/^\d{1,3}$/.test(ttlText) || Number(ttlText) > 255) {
      fail("invalid ttl");
    }
    ttl = Number(ttlText);
  }
  const maddr = params.get("maddr");
  if (maddr === null || (maddr !== undefined && !isHost(maddr))) fail("invalid maddr");

  return {
    value: {
      protocol,
      version,
      transport: transport.toUpperCase(),
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
