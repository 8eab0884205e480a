import { SipUri, defaultPort, parseUri, type Uri } from "../sip/index.js";
import { protocolOfUri } from "./self.js";

export interface FleetMemberConfig {
  readonly id: string;
  readonly uri: string;
  readonly addresses?: readonly string[];
}

interface Member {
  readonly id: string;
  readonly uri: SipUri;
  readonly addresses: ReadonlySet<string>;
}

function bare(host: string): string {
  return (host.startsWith("[") ? host.slice(1, -1) : host).toLowerCase();
}

/**
 * The other members of the fleet (proxies and the gateway): requests from their addresses are
 * trusted (not challenged again), and a Route or Path that names one of them is followed
 * (DESIGN.md, "Location store and the fleet").
 */
export class Fleet {
  readonly #members: Member[];
  readonly #addresses = new Set<string>();

  constructor(members: readonly FleetMemberConfig[]) {
    this.#members = members.map((m) => {
      const uri = parseUri(m.uri);
      if (!(uri instanceof SipUri))
        throw new RangeError(`fleet member ${m.id}: ${m.uri} is not a SIP URI`);
      const addresses = new Set((m.addresses ?? [uri.host]).map(bare));
      for (const a of addresses) this.#addresses.add(a);
      return { id: m.id, uri, addresses };
    });
  }

  get size(): number {
    return this.#members.length;
  }

  /** True when a packet from `address` comes from a fleet member. */
  isMemberAddress(address: string): boolean {
    return this.#addresses.has(bare(address));
  }

  /** The member a URI points at (its host and port), if any. */
  memberAt(uri: Uri): string | undefined {
    if (!(uri instanceof SipUri)) return undefined;
    const host = bare(uri.host);
    const port = uri.port ?? defaultPort(protocolOfUri(uri));
    for (const m of this.#members) {
      const memberPort = m.uri.port ?? defaultPort(protocolOfUri(m.uri));
      if ((bare(m.uri.host) === host || m.addresses.has(host)) && memberPort === port) return m.id;
    }
    return undefined;
  }
}
