// The `allowedDestinations` CIDR list (DESIGN.md) for media: a stream sends RTP and RTCP only
// to addresses inside it. src/sip's DestinationPolicy is not part of its public surface, so
// media keeps this small check of its own on the same node:net BlockList.
import { BlockList, isIP } from "node:net";

export class AllowedDestinations {
  readonly #blocks = new BlockList();

  /** Throws RangeError naming a CIDR block that does not parse. */
  constructor(cidrs: readonly string[]) {
    for (const cidr of cidrs) {
      const [address = "", bits] = cidr.split("/");
      const family = isIP(address);
      const max = family === 6 ? 128 : 32;
      const prefix = bits === undefined ? max : Number(bits);
      if (family === 0 || !Number.isInteger(prefix) || prefix < 0 || prefix > max) {
        throw new RangeError(`allowedDestinations: ${JSON.stringify(cidr)} is not a CIDR block`);
      }
      this.#blocks.addSubnet(address, prefix, family === 6 ? "ipv6" : "ipv4");
    }
  }

  allows(address: string): boolean {
    const family = isIP(address);
    return family !== 0 && this.#blocks.check(address, family === 6 ? "ipv6" : "ipv4");
  }
}
