import { isDigit, isHex } from "./chars.js";

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
