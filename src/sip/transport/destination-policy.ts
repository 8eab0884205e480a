import { BlockList, isIP } from "node:net";

const SEEN_LIMIT = 4096;

/**
 * The `allowedDestinations` CIDR list (DESIGN.md): every send checks it, so that a role never
 * sends where it was not told it may (tests keep all traffic on loopback; RFC 4475's
 * 192.0.2.x and example.com must never leave the machine).
 */
export class DestinationPolicy {
  readonly #allowed = new BlockList();
  /** Verdicts by address: BlockList.check builds objects per call, and peers repeat. */
  readonly #seen = new Map<string, boolean>();

  constructor(cidrs: readonly string[]) {
    for (const cidr of cidrs) {
      const [address, bits] = cidr.split("/");
      const family = isIP(address ?? "");
      const prefix = bits === undefined ? (family === 6 ? 128 : 32) : Number(bits);
      if (
        family === 0 ||
        !Number.isInteger(prefix) ||
        prefix < 0 ||
        prefix > (family === 6 ? 128 : 32)
      ) {
        throw new RangeError(`allowedDestinations: ${JSON.stringify(cidr)} is not a CIDR block`);
      }
      this.#allowed.addSubnet(address!, prefix, family === 6 ? "ipv6" : "ipv4");
    }
  }

  /** True when `address` (an IP literal) is inside one of the blocks. */
  allows(address: string): boolean {
    const known = this.#seen.get(address);
    if (known !== undefined) return known;
    const family = isIP(address);
    const verdict = family !== 0 && this.#allowed.check(address, family === 6 ? "ipv6" : "ipv4");
    if (this.#seen.size >= SEEN_LIMIT) this.#seen.clear();
    this.#seen.set(address, verdict);
    return verdict;
  }
}
