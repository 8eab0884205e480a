import { isIPv4 } from "node:net";

/**
 * The address a source is counted under: an IPv4-mapped IPv6 address (`::ffff:192.0.2.1`, as a
 * dual-stack socket reports IPv4 peers) as its IPv4 address, an IPv6 address as its prefix of
 * `ipv6PrefixBits` (`2001:db8:1:2::/64`: one host commonly holds a whole /64, so counting
 * single addresses would let it pick a fresh one per request), anything else as it is.
 */
export function sourceKey(address: string, ipv6PrefixBits: number): string {
  if (!address.includes(":")) return address;
  const mapped = unmapIPv4(address);
  if (mapped !== address) return mapped;
  const groups = expandIPv6(address);
  if (groups === undefined) return address;
  if (ipv6PrefixBits >= 128) return groups.map((g) => g.toString(16)).join(":");
  const out: string[] = [];
  for (let i = 0; i < 8; i++) {
    const bits = Math.max(0, Math.min(16, ipv6PrefixBits - i * 16));
    if (bits === 0) break;
    const mask = bits === 16 ? 0xffff : (0xffff << (16 - bits)) & 0xffff;
    out.push((groups[i]! & mask).toString(16));
  }
  return `${out.join(":")}::/${ipv6PrefixBits}`;
}

/** `::ffff:192.0.2.1` → `192.0.2.1`; anything else unchanged. */
export function unmapIPv4(address: string): string {
  if (address.length > 7 && address.slice(0, 7).toLowerCase() === "::ffff:") {
    const tail = address.slice(7);
    if (isIPv4(tail)) return tail;
  }
  return address;
}

/** The eight 16-bit groups of an IPv6 literal (zone id dropped), or undefined. */
function expandIPv6(address: string): number[] | undefined {
  const zone = address.indexOf("%");
  let text = zone === -1 ? address : address.slice(0, zone);
  const tail: number[] = [];
  if (text.includes(".")) {
    // An IPv4 tail ("64:ff9b::192.0.2.1") stands for the last two groups.
    const lastColon = text.lastIndexOf(":");
    const dotted = text.slice(lastColon + 1);
    if (!isIPv4(dotted)) return undefined;
    const [a, b, c, d] = dotted.split(".").map(Number) as [number, number, number, number];
    tail.push((a << 8) | b, (c << 8) | d);
    text = text.slice(0, lastColon + 1);
    if (!text.endsWith("::")) text = text.slice(0, -1);
  }
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const parse = (part: string): number[] | undefined => {
    if (part === "") return [];
    const out: number[] = [];
    for (const g of part.split(":")) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const head = parse(halves[0]!);
  const rest = halves.length === 2 ? parse(halves[1]!) : [];
  if (head === undefined || rest === undefined) return undefined;
  const given = head.length + rest.length + tail.length;
  if (halves.length === 1 ? given !== 8 : given > 7) return undefined;
  const zeros = new Array<number>(8 - given).fill(0);
  return [...head, ...zeros, ...rest, ...tail];
}
