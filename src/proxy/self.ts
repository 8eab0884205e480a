import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { isIP } from "node:net";
import {
  SipUri,
  defaultPort,
  type BoundListener,
  type FlowInfo,
  type Protocol,
  type Uri,
} from "../sip/index.js";

/**
 * Flow tokens: the user part of the URIs we put in Path and Record-Route names the client's
 * flow at this proxy (RFC 5626 §5.2), so that a request routed back through us goes down that
 * very connection or to that NAT binding. A MAC keeps anyone from making us send to a flow of
 * their choosing.
 */
export class FlowTokens {
  readonly #secret: Buffer;

  constructor(secret?: string) {
    this.#secret = secret === undefined ? randomBytes(32) : Buffer.from(secret, "utf8");
  }

  encode(flowId: string): string {
    const id = Buffer.from(flowId, "utf8").toString("base64url");
    return `${id}.${this.#mac(id)}`;
  }

  /** The flow id in a token we made, or undefined. */
  decode(token: string): string | undefined {
    const dot = token.lastIndexOf(".");
    if (dot <= 0) return undefined;
    const id = token.slice(0, dot);
    const mac = Buffer.from(token.slice(dot + 1));
    const expected = Buffer.from(this.#mac(id));
    if (mac.length !== expected.length || !timingSafeEqual(mac, expected)) return undefined;
    return Buffer.from(id, "base64url").toString("utf8");
  }

  #mac(id: string): string {
    return createHmac("sha256", this.#secret).update(id).digest("base64url").slice(0, 16);
  }
}

function bare(host: string): string {
  return (host.startsWith("[") ? host.slice(1, -1) : host).toLowerCase();
}

/** The protocol a SIP URI asks for (RFC 3263 §4.1 without DNS: transport param, sips). */
export function protocolOfUri(uri: SipUri): Protocol {
  const transport = uri.transport;
  if (transport === "tcp" || transport === "tls" || transport === "ws" || transport === "wss") {
    return uri.scheme === "sips" && transport === "tcp" ? "tls" : transport;
  }
  if (transport === "udp") return "udp";
  return uri.scheme === "sips" ? "tls" : "udp";
}

/**
 * Who this proxy is: its listeners (what URIs point at it), the domains it serves, and the
 * URIs it writes into Record-Route and Path.
 */
export class Self {
  readonly #hosts = new Set<string>();
  readonly #ports = new Set<number>();
  readonly #domains: Set<string>;

  readonly #pinned: ReadonlyMap<BoundListener, number>;

  /**
   * `pinned`: in a proxy run as several processes, this process's own UDP port beside each
   * shared UDP listener, which our Record-Route names so that a dialog's requests come
   * straight to the process that handled its INVITE; `otherPorts`: the other processes'.
   */
  constructor(
    readonly id: string,
    domains: readonly string[],
    readonly listeners: readonly BoundListener[],
    readonly tokens: FlowTokens,
    pinned: ReadonlyMap<BoundListener, number> = new Map(),
    otherPorts: readonly number[] = [],
  ) {
    this.#domains = new Set(domains.map((d) => d.toLowerCase()));
    this.#pinned = pinned;
    for (const l of listeners) {
      this.#hosts.add(bare(l.address));
      this.#hosts.add(bare(l.advertise));
      this.#ports.add(l.port);
    }
    for (const port of [...pinned.values(), ...otherPorts]) this.#ports.add(port);
  }

  /** True when `host` is one of the domains we serve. */
  servesDomain(host: string): boolean {
    return this.#domains.has(bare(host));
  }

  /** The first served domain: the default realm. */
  get defaultDomain(): string {
    return this.#domains.values().next().value!;
  }

  /** True when a URI points at this proxy (one of our addresses and ports). */
  isUs(uri: Uri): boolean {
    if (!(uri instanceof SipUri)) return false;
    if (!this.#hosts.has(bare(uri.host))) return false;
    return this.#ports.has(uri.port ?? defaultPort(protocolOfUri(uri)));
  }

  /** True when a host and port (a Via sent-by) are one of our listeners. */
  isUsAt(host: string, port: number): boolean {
    return this.#hosts.has(bare(host)) && this.#ports.has(port);
  }

  /** The listener that faces a flow's peer (same protocol and address family). */
  listenerFacing(protocol: Protocol, remoteAddress: string): BoundListener | undefined {
    const family = isIP(remoteAddress) === 6 ? 6 : 4;
    const same = this.listeners.filter((l) => l.protocol === protocol);
    return same.find((l) => (isIP(l.address) === 6 ? 6 : 4) === family) ?? same[0];
  }

  /**
   * Our URI for a Record-Route or Path entry on the side of `flow` (RFC 5658 for the two
   * sides of a transport change), carrying a token of that flow when we know it.
   */
  routeUri(
    protocol: Protocol,
    remoteAddress: string,
    flowId?: string,
    pin = true,
  ): string | undefined {
    const l = this.listenerFacing(protocol, remoteAddress);
    if (l === undefined) return undefined;
    const host = isIP(l.advertise) === 6 ? `[${l.advertise}]` : l.advertise;
    const user = flowId === undefined ? "" : `${this.tokens.encode(flowId)}@`;
    const scheme = protocol === "tls" || protocol === "wss" ? "sips" : "sip";
    const transport = protocol === "udp" ? "" : `;transport=${protocol}`;
    const port = (pin ? this.#pinned.get(l) : undefined) ?? l.port;
    return `<${scheme}:${user}${host}:${port}${transport};lr>`;
  }

  /** Our route URI facing a flow we received on. */
  routeUriFor(flow: FlowInfo): string | undefined {
    return this.routeUri(flow.protocol, flow.remote.address, flow.id);
  }
}
