import { SipParseError } from "../errors.js";
import { COMMA, TOKEN, WORD, allOfClass, isDigit, skipClass, skipWs } from "./chars.js";

function fail(message: string): never {
  throw new SipParseError("SIP_ERR_HEADER_SYNTAX", message);
}

/** 2**32 - 1: the largest CSeq number (RFC 3261 §8.1.1.5) and delta-seconds we read. */
export const MAX_UINT32 = 4_294_967_295;

/**
 * An unsigned decimal (1*DIGIT, leading zeros allowed as in RFC 4475's "0068") no larger than
 * `max`. Long strings of digits are refused before they are converted.
 */
export function parseUnsigned(s: string, max: number, what: string): number {
  const n = readUnsigned(s, 0, s.length);
  if (n === -1) fail(`${what} is not a number`);
  if (n === -2 || n > max) fail(`${what} out of range`);
  return n;
}

/**
 * The decimal in s[start, end): -1 when it is not 1*DIGIT, -2 when it has more than ten
 * significant digits (so never more than 2**34 is computed).
 */
function readUnsigned(s: string, start: number, end: number): number {
  if (end <= start) return -1;
  let n = 0;
  let significant = 0;
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return -1;
    if (n > 0 || c !== 0x30) significant++;
    n = n * 10 + (c - 0x30);
  }
  return significant > 10 ? -2 : n;
}

export interface CSeq {
  readonly seq: number;
  /** The method as written (methods are case-sensitive). */
  readonly method: string;
}

/** CSeq = 1*DIGIT LWS Method (RFC 3261 §20.16); the number must fit 32 bits. */
export function parseCSeq(s: string): CSeq {
  let digitsEnd = 0;
  while (digitsEnd < s.length && isDigit(s.charCodeAt(digitsEnd))) digitsEnd++;
  if (digitsEnd === 0) fail("CSeq has no number");
  const methodStart = skipWs(s, digitsEnd);
  if (methodStart === digitsEnd) fail("CSeq needs whitespace before the method");
  if (!allOfClass(s, TOKEN, methodStart)) fail("CSeq method is not a token");
  const seq = readUnsigned(s, 0, digitsEnd);
  if (seq < 0 || seq > MAX_UINT32) fail("CSeq number out of range");
  return { seq, method: s.slice(methodStart) };
}

/** callid = word [ "@" word ] (RFC 3261 §25.1) */
export function parseCallId(s: string): string {
  const at = s.indexOf("@");
  const ok =
    at < 0
      ? allOfClass(s, WORD)
      : allOfClass(s, WORD, 0, at) && allOfClass(s, WORD, at + 1) && s.indexOf("@", at + 1) < 0;
  if (!ok) fail("Call-ID is not word [@ word]");
  return s;
}

/**
 * A comma-separated list of tokens (Supported, Require, Proxy-Require, Unsupported, Allow).
 * An empty value is an empty list.
 */
export function parseTokenList(s: string): string[] {
  const out: string[] = [];
  let i = skipWs(s, 0);
  if (i === s.length) return out;
  for (;;) {
    const end = skipClass(s, i, TOKEN);
    if (end === i) fail("expected a token");
    out.push(s.slice(i, end));
    i = skipWs(s, end);
    if (i === s.length) return out;
    if (s.charCodeAt(i) !== COMMA) fail("expected a comma between tokens");
    i = skipWs(s, i + 1);
  }
}

const WKDAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/**
 * SIP-date = rfc1123-date (RFC 3261 §20.17, §25.1), always in "GMT":
 * `wkday "," SP 2DIGIT SP month SP 4DIGIT SP 2DIGIT ":" 2DIGIT ":" 2DIGIT SP "GMT"`.
 */
export function parseSipDate(s: string): Date {
  const m = /^([A-Z][a-z]{2}), (\d{2}) ([A-Z][a-z]{2}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT$/.exec(
    s,
  );
  if (m === null) fail("Date is not an RFC 1123 date in GMT");
  const [, wkday, day, month, year, hh, mm, ss] = m as unknown as string[];
  const monthIndex = MONTHS.indexOf(month!);
  if (!WKDAYS.includes(wkday!) || monthIndex < 0) fail("Date has an unknown day or month name");
  const ms = Date.UTC(Number(year), monthIndex, Number(day), Number(hh), Number(mm), Number(ss));
  const date = new Date(ms);
  if (Number.isNaN(ms) || date.getUTCDate() !== Number(day) || Number(hh) > 23) {
    fail("Date is not a valid time");
  }
  return date;
}

/** Formats a Date as a SIP-date. */
export function formatSipDate(date: Date): string {
  return date.toUTCString();
}
