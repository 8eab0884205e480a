import { CHAR_CLASS, HOST, LBRACKET, isDigit, isHex } from "./chars.js";

/** IPv4address = 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT, each at most 255. */
export function isIPv4(s: string): boolean {
  let octets = 0;
  let digits = 0;
  let value = 0;
  for (let i = 0; i <= s.length; i++) {
    const c = i < s.length ? s.charCodeAt(i) : 0x2e;
    if (c === 0x2e) {
      if (digits === 0 || value > 255) return false;
      octets++;
      digits = 0;
      value = 0;
    } else if (isDigit(c)) {
      if (++digits > 3) return false;
      value = value * 10 + (c - 0x30);
    } else {
      return false;
    }
  }
  return octets === 4;
}

/** IPv6address of RFC 3261 §25.1 / RFC 4291 §2.2, without brackets; may end in IPv4. */
export function isIPv6(s: string): boolean {
  if (s.length < 2 || s.length > 45) return false;
  const double = s.indexOf("::");
  if (double >= 0 && s.indexOf("::", double + 1) >= 0) return false;
  const groupsOf = (part: string): number => {
    if (part === "") return 0;
    const groups = part.split(":");
    let count = 0;
    for (let g = 0; g < groups.length; g++) {
      const group = groups[g]!;
      if (g === groups.length - 1 && group.includes(".")) {
        if (!isIPv4(group)) return -1;
        count += 2;
        continue;
      }
      if (group.length < 1 || group.length > 4) return -1;
      for (let i = 0; i < group.length; i++) if (!isHex(group.charCodeAt(i))) return -1;
      count++;
    }
    return count;
  };
  if (double < 0) return groupsOf(s) === 8;
  const head = groupsOf(s.slice(0, double));
  const tail = groupsOf(s.slice(double + 2));
  if (head < 0 || tail < 0) return false;
  if (s.slice(0, double).includes(".")) return false;
  return head + tail <= 7;
}

/** IPv6reference = "[" IPv6address "]" */
export function isIPv6Reference(s: string): boolean {
  return s.length > 2 && s.startsWith("[") && s.endsWith("]") && isIPv6(s.slice(1, -1));
}

/**
 * Index past a host at `i` (RFC 3261 §25.1: hostname, IPv4address or IPv6reference), or -1
 * when what is there is not a valid host. A hostname's labels are 1-63 chars, do not start or
 * end with "-", and a name of digits and dots must be an IPv4 address.
 */
export function skipHost(s: string, i: number, end = s.length): number {
  const start = i;
  if (s.charCodeAt(i) === LBRACKET) {
    const close = s.indexOf("]", i);
    if (close < 0 || close >= end || !isIPv6(s.slice(i + 1, close))) return -1;
    return close + 1;
  }
  // One pass checks both readings: hostname labels, and IPv4 octets while all are digits.
  const table = CHAR_CLASS;
  let numeric = true;
  let labels = 1;
  let labelLength = 0;
  let octet = 0;
  let octetsOk = true;
  let prev = 0x2e;
  for (; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x2e) {
      if (labelLength === 0 || prev === 0x2d) return -1;
      labelLength = 0;
      octet = 0;
      labels++;
    } else if (c >= 0x30 && c <= 0x39) {
      if (++labelLength > 63) return -1;
      octet = octet * 10 + (c - 0x30);
      if (labelLength > 3 || octet > 255) octetsOk = false;
    } else if (c < 256 && (table[c]! & HOST) !== 0) {
      if (c === 0x2d && labelLength === 0) return -1;
      numeric = false;
      if (++labelLength > 63) return -1;
    } else {
      break;
    }
    prev = c;
  }
  if (i === start || i - start > 255 || prev === 0x2d) return -1;
  // A name of digits and dots must be an IPv4address: four octets, no trailing dot.
  if (numeric && (!octetsOk || labels !== 4 || labelLength === 0)) return -1;
  return i;
}

/**
 * hostname = *( domainlabel "." ) toplabel [ "." ], or an IPv4address (a name made of digits
 * and dots must be one).
 */
export function isValidHostname(host: string): boolean {
  return host.charCodeAt(0) !== LBRACKET && skipHost(host, 0) === host.length;
}
