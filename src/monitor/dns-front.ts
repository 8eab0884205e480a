import { createSocket, type RemoteInfo, type Socket as UdpSocket } from "node:dgram";
import type { lookup as dnsLookup } from "node:dns";
import { createServer, isIP, type Server, type Socket } from "node:net";
import type { Answer } from "dns-packet";
import type { LoadReport } from "../contracts/index.js";
import {
  SipUri,
  parseUri,
  silentLogger,
  systemClock,
  type Clock,
  type Logger,
} from "../sip/index.js";
import {
  CLASS_ANY,
  CLASS_IN,
  ODD_NAME,
  OPCODE_QUERY,
  QTYPES,
  RCODES,
  assembleResponse,
  bareReply,
  encodeRecords,
  isDnsLabel,
  parseQuery,
  responseLimit,
  wireZone,
  type DnsQuery,
  type PreparedReply,
  type RcodeName,
  type WireZone,
} from "./dns-wire.js";
import {
  MAX_TTL_S,
  ttlFor,
  type RankedProxy,
  type SelectAnswer,
  type Transport,
} from "./selector.js";
import { DnsTcpConnection } from "./dns-tcp.js";

export { DNS_MAX_TCP_QUERY_BYTES, DNS_MAX_TCP_WRITE_BACKLOG_BYTES } from "./dns-tcp.js";

/** DESIGN.md: one name serves as DNS zone, SIP domain and digest realm. */
export const DEFAULT_DNS_ZONE = "sipsteer.test";
/** SOA, NS and the name server's address do not steer anyone: they may be kept a minute. */
export const DNS_ZONE_TTL_S = 60;
/**
 * The SOA minimum, so the longest a resolver keeps an NXDOMAIN or NODATA (RFC 2308 §5): as short
 * as a steering answer, so that a proxy that joins is found within seconds.
 */
export const DNS_NEGATIVE_TTL_S = MAX_TTL_S;
/** SRV records in one answer by default: the chosen proxy and four alternates, as selects give. */
export const DEFAULT_DNS_MAX_SRV_RECORDS = 5;
/** Bad input: TCP clients held at once; more are closed on arrival. */
export const DEFAULT_DNS_MAX_TCP_CONNECTIONS = 256;
/** RFC 7766 §6.2.3: a server closes idle connections; seconds are plenty for a resolver. */
export const DEFAULT_DNS_TCP_IDLE_MS = 10_000;
/** Kernel receive buffer of a UDP listener, so that a burst queues instead of being dropped. */
export const DNS_UDP_RECEIVE_BUFFER_BYTES = 4 * 1_048_576;
/** UDP socket errors are warned about at most this often. */
const SOCKET_WARN_EVERY_MS = 10_000;
/** A bound UDP listener and the port its config asked for (0: any). */
interface UdpListener {
  socket: UdpSocket;
  bound: DnsListener;
  requestedPort: number;
}

/** Tries at a UDP and TCP listener pair on one ephemeral port before TCP takes any port. */
const TWIN_PORT_ATTEMPTS = 8;
/** Prepared replies kept (keyed by what they say); the cache is emptied when it fills up. */
const MAX_PREPARED_REPLIES = 4096;

/**
 * SRV priorities (RFC 2782: the lowest is tried first). The proxy the selector chose (and
 * recorded as a send) gets the first; every other eligible one shares the second, listed by
 * rank, so that a client that fails over spreads by the weights instead of herding onto the
 * runner-up.
 */
export const SRV_PRIORITY_CHOSEN = 10;
export const SRV_PRIORITY_OTHERS = 20;
/**
 * SRV weights: each proxy's share of the listed proxies' spare capacity in percent, at least 1
 * while it has any spare; 0 when full (RFC 2782: "records with weight 0 should have a very
 * small chance of being selected").
 */
export function srvWeight(spare: number, totalSpare: number): number {
  if (spare <= 0 || totalSpare <= 0) return 0;
  return Math.max(1, Math.round((100 * spare) / totalSpare));
}

/**
 * RFC 3263 §4.1 NAPTR services for the transports that have eligible proxies, in the RFC's
 * example order: TLS before TCP before UDP (a client uses the lowest order it supports).
 */
const NAPTR_SERVICES = [
  { transport: "tls", services: "SIPS+D2T", srv: "_sips._tcp", order: 50 },
  { transport: "tcp", services: "SIP+D2T", srv: "_sip._tcp", order: 90 },
  { transport: "udp", services: "SIP+D2U", srv: "_sip._udp", order: 100 },
] as const satisfies readonly {
  transport: Transport;
  services: string;
  srv: string;
  order: number;
}[];
const NAPTR_PREFERENCE = 50;

/** The SRV names of the zone (RFC 3263 §4.2) and the transport each asks for. */
const SRV_NAMES: ReadonlyMap<string, Transport> = new Map([
  ["_sip._udp", "udp"],
  ["_sip._tcp", "tcp"],
  ["_sips._tcp", "tls"],
]);
/** Empty non-terminals above the SRV names: they exist, with no records (RFC 8020). */
const EMPTY_NON_TERMINALS = new Set(["_udp", "_tcp"]);
const NAME_SERVER_LABEL = "ns";
/** The SIP URIs whose hosts give a proxy's addresses. */
const ADDRESS_TRANSPORTS = ["udp", "tcp", "tls"] as const;

export interface DnsListenerOptions {
  readonly protocol: "udp" | "tcp";
  readonly address: string;
  /** 0: a free port (a TCP listener on a UDP listener's address takes that port when it can). */
  readonly port: number;
}

/** A listener as bound. */
export interface DnsListener {
  readonly protocol: "udp" | "tcp";
  readonly address: string;
  readonly port: number;
}

export interface DnsFrontOptions {
  readonly listen: readonly DnsListenerOptions[];
  /** A valid DNS name (see isDnsName); DEFAULT_DNS_ZONE when absent. */
  readonly zone?: string;
  /**
   * The address of `ns.<zone>` (its A or AAAA glue); by default the first listener's address,
   * 127.0.0.1 (or ::1) when that is a wildcard.
   */
  readonly nameServerAddress?: string;
  /** The choice for an SRV answer (Selector.select): recorded as a send. */
  readonly select: (transport: Transport) => SelectAnswer | undefined;
  /** Every eligible proxy for a transport, least loaded first, without recording a send. */
  readonly ranked: (transport: Transport) => readonly RankedProxy[];
  /**
   * The SIP URIs of the proxy named by a lower-case DNS label: undefined for no such proxy,
   * `{}` for one known without a report yet.
   */
  readonly proxyUris: (label: string) => LoadReport["uris"] | undefined;
  /**
   * On-query collection, awaited before an SRV or NAPTR answer (bounded, never rejects);
   * undefined when nothing is due, and the answer is made at once.
   */
  readonly freshen?: (transport?: Transport) => Promise<void> | undefined;
  /** No eligible proxy for an SRV name: the front answered SERVFAIL. */
  readonly onNoProxy?: (transport: Transport) => void;
  /** SRV records in one answer, at most (the chosen proxy and the next ranked ones). */
  readonly maxSrvRecords?: number;
  readonly maxTcpConnections?: number;
  readonly tcpIdleMs?: number;
  /** The SOA serial; the start time in seconds by default. */
  readonly serial?: number;
  readonly clock?: Clock;
  readonly logger?: Logger;
}

/** Queries answered, per response code, and messages dropped unanswered. */
export interface DnsFrontCounters {
  readonly answered: Readonly<Record<RcodeName, number>>;
  /** Shorter than a header, or not a query (a response). */
  readonly dropped: number;
  /** TCP clients closed: over the connection cap, idle, oversized or not reading. */
  readonly tcpClosed: number;
}

/** A SIP URI's host as SRV targets and address records need it. */
interface UriTarget {
  readonly hostname: string;
  readonly port: number;
  /** 4 or 6 for an IP literal, 0 for a host name. */
  readonly family: 0 | 4 | 6;
}

/** One SRV record of an answer being made. */
interface SrvEntry {
  readonly target: string;
  readonly port: number;
  readonly priority: number;
  readonly weight: number;
  readonly addresses: AddressSet | undefined;
}

/** A proxy's DNS label and name (`<label>.<zone>`, undefined when the id is no DNS label). */
interface ProxyNaming {
  readonly label: string;
  readonly name: string | undefined;
}

/** A proxy's A and AAAA records, encoded. */
interface AddressSet {
  /** Stands for this set (its name and addresses) in keys of prepared replies. */
  readonly serial: number;
  readonly key: string;
  readonly v4: Buffer;
  readonly v4Count: number;
  readonly v6: Buffer;
  readonly v6Count: number;
}

const RCODE_NAMES = Object.keys(RCODES) as RcodeName[];

/**
 * Answers go back to the address a query came from, always an IP literal: handing it back at
 * once spares dgram's default lookup its deferral to the next tick for every datagram (about a
 * tenth of a bare responder's CPU per query).
 */
const literalLookup = ((
  address: string,
  family: number,
  callback: (err: Error | null, address: string, family: number) => void,
): void => {
  callback(null, address, isIP(address) || family);
}) as unknown as typeof dnsLookup;

/** A wildcard listen address stands for this one in `ns.<zone>`'s glue. */
function nameServerFor(address: string): string {
  if (address === "0.0.0.0") return "127.0.0.1";
  if (address === "::" || address === "::0") return "::1";
  return address;
}

/**
 * The monitor's DNS front (DESIGN.md "Client query"; RFC 1035, RFC 2782, RFC 3263): it is
 * authoritative for its zone and tells stock resolvers and phones where to connect.
 *
 * - apex: SOA, NS (`ns.<zone>`, whose A/AAAA is the advertised address), and NAPTR
 *   (SIPS+D2T / SIP+D2T / SIP+D2U → the SRV names) for the transports with eligible proxies;
 * - `_sip._udp`, `_sip._tcp`, `_sips._tcp`: SRV to the eligible proxies, the selector's choice
 *   first (SRV_PRIORITY_CHOSEN), the others by rank, weights from spare capacity (srvWeight),
 *   targets `<proxyId>.<zone>` with their addresses as additional records, the TTL the
 *   selector gave (1–5 s). With no eligible proxy: SERVFAIL, not an empty answer that a
 *   resolver would keep for the negative TTL, so that a client asks again (or asks another
 *   monitor) and finds a proxy as soon as one is back;
 * - `<proxyId>.<zone>` (ids that are DNS labels): A/AAAA from the IP literals in its SIP URIs;
 * - NODATA (SOA in authority) for names that exist without the asked type, NXDOMAIN for other
 *   names in the zone, REFUSED outside it; FORMERR for a message whose header can be read and
 *   nothing else, NOTIMP for opcodes other than QUERY, BADVERS for EDNS versions above 0.
 *
 * UDP answers honour the requestor's EDNS payload size (at most EDNS_UDP_PAYLOAD_BYTES) and
 * are cut to 512 bytes with TC set without EDNS; TCP is framed by RFC 1035 §4.2.2's length with
 * pipelining (RFC 7766), bounded buffers, an idle timeout and a connection cap.
 */
export class DnsFront {
  readonly #o: DnsFrontOptions;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly zone: string;
  readonly #wireZone: WireZone;
  readonly #maxSrv: number;
  readonly #maxTcp: number;
  readonly #tcpIdleMs: number;
  readonly #udp: UdpListener[] = [];
  readonly #tcp: { server: Server; bound: DnsListener }[] = [];
  readonly #connections = new Set<DnsTcpConnection>();
  /** Answers per rcode value (0…16). */
  readonly #answered = new Array<number>(RCODES.BADVERS + 1).fill(0);
  #dropped = 0;
  #socketErrors = 0;
  #lastSocketWarnAt = -Infinity;
  #tcpClosed = 0;
  #running = false;

  /** The name server's address, and the replies that never change, prepared once. */
  readonly #nsAddress: string;
  readonly #z: ZoneReplies;
  readonly #refused = bareReply(RCODES.REFUSED, false);
  readonly #servFail = bareReply(RCODES.SERVFAIL, false);
  readonly #formErr = bareReply(RCODES.FORMERR, false);
  readonly #notImp = bareReply(RCODES.NOTIMP, false);
  readonly #badVers = bareReply(RCODES.BADVERS, false);

  /** SRV, NAPTR and address replies by what they say; correct whatever the send correction did. */
  readonly #prepared = new Map<string, PreparedReply>();
  /** Parsed hosts of the proxies' URIs (a few per proxy). */
  readonly #targets = new Map<string, UriTarget | null>();
  /** A proxy's address records, per report's `uris` object (a new report, a new object). */
  #addressSets = new WeakMap<object, AddressSet>();
  readonly #addressSetsByKey = new Map<string, AddressSet>();
  #addressSerial = 0;
  /** Each proxy id's DNS label and name, worked out once. */
  readonly #namings = new Map<string, ProxyNaming>();

  constructor(options: DnsFrontOptions) {
    if (options.listen.length === 0) throw new RangeError("listen: at least one listener");
    this.#o = options;
    this.#log = (options.logger ?? silentLogger).child({ component: "dns-front" });
    this.#clock = options.clock ?? systemClock;
    this.zone = (options.zone ?? DEFAULT_DNS_ZONE).toLowerCase().replace(/\.$/, "");
    this.#wireZone = wireZone(this.zone);
    this.#maxSrv = options.maxSrvRecords ?? DEFAULT_DNS_MAX_SRV_RECORDS;
    this.#maxTcp = options.maxTcpConnections ?? DEFAULT_DNS_MAX_TCP_CONNECTIONS;
    this.#tcpIdleMs = options.tcpIdleMs ?? DEFAULT_DNS_TCP_IDLE_MS;
    const first =
      options.listen.find((l) => l.protocol === "udp") ?? (options.listen[0] as DnsListenerOptions);
    this.#nsAddress = options.nameServerAddress ?? nameServerFor(first.address);
    this.#z = zoneReplies(
      this.zone,
      this.#nsAddress,
      (options.serial ?? Math.floor(Date.now() / 1000)) >>> 0,
    );
  }

  /** The listeners as bound (after start). */
  get listeners(): readonly DnsListener[] {
    if (!this.#running) throw new Error("DNS front not started");
    return [...this.#udp.map((u) => u.bound), ...this.#tcp.map((t) => t.bound)];
  }

  /** The address `ns.<zone>` resolves to. */
  get nameServerAddress(): string {
    return this.#nsAddress;
  }

  counters(): DnsFrontCounters {
    const answered = Object.fromEntries(RCODE_NAMES.map((n) => [n, 0])) as Record<
      RcodeName,
      number
    >;
    for (const name of RCODE_NAMES) answered[name] = this.#answered[RCODES[name]] ?? 0;
    return { answered, dropped: this.#dropped, tcpClosed: this.#tcpClosed };
  }

  async start(): Promise<void> {
    if (this.#running) throw new Error("DnsFront.start() called twice");
    this.#running = true;
    try {
      const udpFirst = [...this.#o.listen].sort(
        (a, b) => (a.protocol === "udp" ? 0 : 1) - (b.protocol === "udp" ? 0 : 1),
      );
      for (const listener of udpFirst) {
        if (listener.protocol === "udp") await this.#bindUdp(listener);
        else await this.#bindTcp(listener);
      }
      this.#log.info({ zone: this.zone, listeners: this.listeners }, "DNS front started");
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  async stop(): Promise<void> {
    this.#running = false;
    for (const connection of [...this.#connections]) connection.close();
    this.#connections.clear();
    const closing: Promise<void>[] = [];
    for (const { socket } of this.#udp.splice(0)) {
      closing.push(
        new Promise<void>((resolve) => {
          try {
            socket.close(() => resolve());
          } catch {
            resolve(); // Closed already (after a socket error).
          }
        }),
      );
    }
    for (const { server } of this.#tcp.splice(0)) {
      closing.push(new Promise<void>((resolve) => server.close(() => resolve())));
    }
    await Promise.all(closing);
    this.#prepared.clear();
    this.#targets.clear();
    this.#namings.clear();
    this.#addressSetsByKey.clear();
    this.#addressSets = new WeakMap();
  }

  async #bindUdp(listener: DnsListenerOptions): Promise<void> {
    const socket = createSocket({
      type: isIP(listener.address) === 6 ? "udp6" : "udp4",
      recvBufferSize: DNS_UDP_RECEIVE_BUFFER_BYTES,
      lookup: literalLookup,
    });
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      // Exclusive: a second monitor on the same port fails instead of sharing the queries.
      socket.bind({ address: listener.address, port: listener.port, exclusive: true }, () => {
        socket.off("error", reject);
        resolve();
      });
    }).catch((e: unknown) => {
      socket.close();
      throw e;
    });
    socket.on("error", (e) => this.#onSocketError(e));
    socket.on("message", (message: Buffer, peer: RemoteInfo) =>
      this.#onDatagram(socket, message, peer),
    );
    const { address, port } = socket.address();
    this.#udp.push({
      socket,
      bound: { protocol: "udp", address, port },
      requestedPort: listener.port,
    });
  }

  async #closeUdp(entry: UdpListener): Promise<void> {
    this.#udp.splice(this.#udp.indexOf(entry), 1);
    await new Promise<void>((resolve) => entry.socket.close(() => resolve()));
  }

  async #bindTcp(listener: DnsListenerOptions): Promise<void> {
    // A client that got TC over UDP asks again over TCP at the same address and port. With both
    // on port 0 the pair is picked together: when another process holds the UDP port's TCP twin,
    // the UDP socket moves to another ephemeral port (a few tries), and only then does TCP take
    // any free port (logged: such a front answers truncated clients at another port).
    if (listener.port !== 0) {
      await this.#listenTcp(listener.address, listener.port);
      return;
    }
    for (let attempt = 0; attempt < TWIN_PORT_ATTEMPTS; attempt++) {
      const udp = this.#udp.find((u) => u.bound.address === listener.address);
      if (udp === undefined) break;
      try {
        await this.#listenTcp(listener.address, udp.bound.port);
        return;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EADDRINUSE") throw e;
        if (udp.requestedPort !== 0) break;
        await this.#closeUdp(udp);
        await this.#bindUdp({ protocol: "udp", address: listener.address, port: 0 });
      }
    }
    await this.#listenTcp(listener.address, 0);
    if (this.#udp.some((u) => u.bound.address === listener.address)) {
      this.#log.warn(
        { address: listener.address, tcp: this.#tcp.at(-1)?.bound.port },
        "DNS TCP could not share the UDP port; truncated answers must be retried at the TCP port",
      );
    }
  }

  async #listenTcp(address: string, port: number): Promise<void> {
    const server = createServer({ allowHalfOpen: true }, (socket) => this.#onConnection(socket));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen({ host: address, port, exclusive: true }, () => {
        server.off("error", reject);
        resolve();
      });
    });
    server.on("error", (e) => this.#log.warn({ err: e }, "DNS TCP server error"));
    const bound = server.address();
    if (bound === null || typeof bound === "string") throw new Error("DNS TCP did not bind");
    this.#tcp.push({
      server,
      bound: { protocol: "tcp", address: bound.address, port: bound.port },
    });
  }

  /**
   * Send errors (a peer's ICMP, a full buffer) come back as socket errors: warned about at most
   * once per SOCKET_WARN_EVERY_MS with the count since, so that a flood cannot flood the log.
   */
  #onSocketError(e: Error): void {
    this.#socketErrors++;
    const now = this.#clock.now();
    if (now - this.#lastSocketWarnAt < SOCKET_WARN_EVERY_MS) return;
    this.#lastSocketWarnAt = now;
    this.#log.warn({ err: e, errors: this.#socketErrors }, "DNS UDP socket error");
    this.#socketErrors = 0;
  }

  #onDatagram(socket: UdpSocket, message: Buffer, peer: RemoteInfo): void {
    const response = this.answer(message, false);
    if (response === undefined) return;
    if (!(response instanceof Promise)) {
      socket.send(response, peer.port, peer.address);
      return;
    }
    void response.then((r) => {
      if (this.#running) socket.send(r, peer.port, peer.address);
    });
  }

  #onConnection(socket: Socket): void {
    if (!this.#running || this.#connections.size >= this.#maxTcp) {
      this.#tcpClosed++;
      socket.destroy();
      return;
    }
    const connection = new DnsTcpConnection(socket, this.#clock, this.#tcpIdleMs, {
      answer: (message) => this.answer(message, true),
      closed: (why) => {
        if (this.#connections.delete(connection) && why !== "ended") this.#tcpClosed++;
      },
    });
    this.#connections.add(connection);
  }

  /**
   * The response to one DNS message (TCP: with its length prefix), a promise of it when
   * on-query collection must be awaited first, or undefined to drop the message. Never throws.
   */
  answer(message: Buffer, tcp: boolean): Buffer | Promise<Buffer> | undefined {
    let query: DnsQuery | undefined;
    try {
      query = parseQuery(message, this.#wireZone);
    } catch (e) {
      this.#log.error({ err: e }, "DNS query parse failed");
      query = undefined;
    }
    if (query === undefined) {
      this.#dropped++;
      return undefined;
    }
    const q = query;
    const reply = this.#reply(q);
    if (reply instanceof Promise) {
      return reply.then((r) => this.#respond(message, q, r, tcp));
    }
    return this.#respond(message, q, reply, tcp);
  }

  #respond(message: Buffer, query: DnsQuery, reply: PreparedReply, tcp: boolean): Buffer {
    this.#answered[reply.rcode]! += 1;
    return assembleResponse(message, query, reply, responseLimit(query, tcp), tcp);
  }

  #reply(q: DnsQuery): PreparedReply | Promise<PreparedReply> {
    if (q.malformed) return q.opcode === OPCODE_QUERY ? this.#formErr : this.#notImp;
    if (q.opcode !== OPCODE_QUERY) return this.#notImp;
    // RFC 6891 §6.1.3: "If a responder does not implement the VERSION level of the request,
    // then it MUST respond with RCODE=BADVERS."
    if (q.edns !== undefined && q.edns.version > 0) return this.#badVers;
    if (q.qtype === QTYPES.OPT) return this.#formErr;
    const relative = q.relative;
    if (relative === undefined || (q.qclass !== CLASS_IN && q.qclass !== CLASS_ANY)) {
      return this.#refused;
    }
    // Zone transfers are not offered: the zone is made afresh for every query.
    if (q.qtype === QTYPES.AXFR || q.qtype === QTYPES.IXFR) return this.#refused;
    try {
      return this.#lookup(relative, q.qtype);
    } catch (e) {
      this.#log.error({ err: e, name: relative, qtype: q.qtype }, "DNS answer failed");
      return this.#servFail;
    }
  }

  #lookup(relative: string, qtype: number): PreparedReply | Promise<PreparedReply> {
    const transport = SRV_NAMES.get(relative);
    if (transport !== undefined) {
      if (qtype !== QTYPES.SRV && qtype !== QTYPES.ANY) return this.#z.noData;
      const record = qtype === QTYPES.SRV;
      const build = (): PreparedReply => this.#srvGuarded(relative, transport, record);
      const waiting = this.#o.freshen?.(transport);
      return waiting === undefined ? build() : waiting.then(build, build);
    }
    if (relative === "") return this.#apex(qtype);
    if (relative === NAME_SERVER_LABEL) {
      return qtype === this.#z.nsGlueType || qtype === QTYPES.ANY ? this.#z.nsGlue : this.#z.noData;
    }
    if (EMPTY_NON_TERMINALS.has(relative)) return this.#z.noData;
    if (relative === ODD_NAME || !isDnsLabel(relative)) return this.#z.nxDomain;
    return this.#proxyName(relative, qtype);
  }

  #apex(qtype: number): PreparedReply | Promise<PreparedReply> {
    switch (qtype) {
      case QTYPES.SOA:
        return this.#z.apexSoa;
      case QTYPES.NS:
        return this.#z.apexNs;
      case QTYPES.ANY:
        return this.#z.apexAny;
      case QTYPES.NAPTR: {
        const build = (): PreparedReply => this.#guarded(() => this.#naptr());
        const waiting = this.#o.freshen?.();
        return waiting === undefined ? build() : waiting.then(build, build);
      }
      default:
        return this.#z.noData;
    }
  }

  /** Errors after an await are bugs too, but the client still gets an answer. */
  #guarded(build: () => PreparedReply): PreparedReply {
    try {
      return build();
    } catch (e) {
      this.#log.error({ err: e }, "DNS answer failed");
      return this.#servFail;
    }
  }

  #srvGuarded(relative: string, transport: Transport, record: boolean): PreparedReply {
    return this.#guarded(() => this.#srv(relative, transport, record));
  }

  /** SRV for `transport`: with `record`, the selector's choice first, recorded as a send. */
  #srv(relative: string, transport: Transport, record: boolean): PreparedReply {
    const chosen = record ? this.#o.select(transport) : undefined;
    const ranked = this.#o.ranked(transport);
    const first = chosen?.proxy ?? ranked[0]?.proxy;
    if (first === undefined) {
      this.#o.onNoProxy?.(transport);
      return this.#servFail;
    }
    const ttl = chosen?.ttl ?? ttlFor(ranked[0]!.workload);
    // The chosen proxy, then the others by rank (after the send the choice was counted in).
    const listed: { proxy: string; uri: string; spare: number }[] = [];
    let totalSpare = 0;
    const chosenRank = ranked.find((r) => r.proxy === first);
    const firstEntry = {
      proxy: first,
      uri: chosen?.uri ?? chosenRank!.uri,
      spare: chosenRank?.spare ?? 0,
    };
    listed.push(firstEntry);
    totalSpare += firstEntry.spare;
    for (const r of ranked) {
      if (listed.length >= this.#maxSrv) break;
      if (r.proxy === first) continue;
      listed.push(r);
      totalSpare += r.spare;
    }

    // The key names what the records say (short serials stand for names and address sets),
    // so that a prepared reply is reused only where it is exactly right.
    let key = `${relative}|${ttl}`;
    const entries: SrvEntry[] = [];
    for (const entry of listed) {
      const target = this.#target(entry.uri);
      if (target === null) continue;
      const naming = this.#naming(entry.proxy);
      const uris =
        target.family !== 0 && naming.name !== undefined
          ? this.#o.proxyUris(naming.label)
          : undefined;
      let name: string;
      let addresses: AddressSet | undefined;
      if (uris !== undefined) {
        name = naming.name!;
        addresses = this.#addresses(naming.label, uris);
      } else if (target.family === 0) {
        name = target.hostname; // A host name of its own: the client resolves it.
      } else {
        continue; // An IP literal with no name of ours to give it.
      }
      const priority = entries.length === 0 ? SRV_PRIORITY_CHOSEN : SRV_PRIORITY_OTHERS;
      const weight = srvWeight(entry.spare, totalSpare);
      entries.push({ target: name, port: target.port, priority, weight, addresses });
      key += `|${addresses === undefined ? name : addresses.serial}:${target.port}:${weight}`;
    }
    if (entries.length === 0) {
      this.#o.onNoProxy?.(transport);
      return this.#servFail;
    }
    const cached = this.#prepared.get(key);
    if (cached !== undefined) return cached;

    const owner = `${relative}.${this.zone}`;
    const answers: Answer[] = entries.map((e) => ({
      name: owner,
      type: "SRV",
      ttl,
      data: { priority: e.priority, weight: e.weight, port: e.port, target: e.target },
    }));
    const glue: Buffer[] = [];
    let glueCount = 0;
    const glued = new Set<string>();
    for (const e of entries) {
      if (e.addresses === undefined || glued.has(e.target)) continue;
      glued.add(e.target);
      glue.push(e.addresses.v4, e.addresses.v6);
      glueCount += e.addresses.v4Count + e.addresses.v6Count;
    }
    return this.#keep(key, {
      rcode: RCODES.NOERROR,
      authoritative: true,
      answer: encodeRecords(answers),
      answerCount: answers.length,
      authority: Buffer.alloc(0),
      authorityCount: 0,
      additional: Buffer.concat(glue),
      additionalCount: glueCount,
    });
  }

  /** NAPTR at the apex for the transports that have an eligible proxy now. */
  #naptr(): PreparedReply {
    const present = NAPTR_SERVICES.filter((s) => this.#o.ranked(s.transport).length > 0);
    if (present.length === 0) return this.#z.noData;
    const key = `naptr|${present.map((s) => s.transport).join(",")}`;
    const cached = this.#prepared.get(key);
    if (cached !== undefined) return cached;
    const answers: Answer[] = present.map((s) => ({
      name: this.zone,
      type: "NAPTR",
      ttl: MAX_TTL_S,
      data: {
        order: s.order,
        preference: NAPTR_PREFERENCE,
        flags: "s",
        services: s.services,
        regexp: "",
        replacement: `${s.srv}.${this.zone}`,
      },
    }));
    return this.#keep(key, positive(encodeRecords(answers), answers.length));
  }

  /** A or AAAA of `<label>.<zone>`, a proxy's name. */
  #proxyName(label: string, qtype: number): PreparedReply {
    const uris = this.#o.proxyUris(label);
    if (uris === undefined) return this.#z.nxDomain;
    const set = this.#addresses(label, uris);
    const v4 = qtype === QTYPES.A || qtype === QTYPES.ANY;
    const v6 = qtype === QTYPES.AAAA || qtype === QTYPES.ANY;
    const count = (v4 ? set.v4Count : 0) + (v6 ? set.v6Count : 0);
    if (count === 0) return this.#z.noData;
    const key = `${v4 ? "a" : ""}${v6 ? "aaaa" : ""}|${set.key}`;
    const cached = this.#prepared.get(key);
    if (cached !== undefined) return cached;
    const answer = Buffer.concat([v4 ? set.v4 : Buffer.alloc(0), v6 ? set.v6 : Buffer.alloc(0)]);
    return this.#keep(key, positive(answer, count));
  }

  /** The A and AAAA records of a proxy's name: each distinct IP literal of its SIP URIs. */
  #addresses(label: string, uris: LoadReport["uris"]): AddressSet {
    const known = this.#addressSets.get(uris);
    if (known !== undefined) return known;
    const v4: string[] = [];
    const v6: string[] = [];
    for (const transport of ADDRESS_TRANSPORTS) {
      const uri = uris[transport];
      const target = uri === undefined ? null : this.#target(uri);
      if (target === null || target.family === 0) continue;
      const list = target.family === 4 ? v4 : v6;
      if (!list.includes(target.hostname)) list.push(target.hostname);
    }
    // A new report brings a new `uris` object, mostly with the same addresses: the same set
    // (and serial) then, so that prepared SRV replies stay valid across reports.
    const key = `${label} ${v4.join(",")} ${v6.join(",")}`;
    let set = this.#addressSetsByKey.get(key);
    if (set === undefined) {
      const name = `${label}.${this.zone}`;
      const encode = (type: "A" | "AAAA", list: string[]): Buffer =>
        encodeRecords(list.map((data) => ({ name, type, ttl: MAX_TTL_S, data })));
      set = {
        serial: this.#addressSerial++,
        key,
        v4: encode("A", v4),
        v4Count: v4.length,
        v6: encode("AAAA", v6),
        v6Count: v6.length,
      };
      if (this.#addressSetsByKey.size >= MAX_PREPARED_REPLIES) this.#addressSetsByKey.clear();
      this.#addressSetsByKey.set(key, set);
    }
    this.#addressSets.set(uris, set);
    return set;
  }

  #naming(proxy: string): ProxyNaming {
    const known = this.#namings.get(proxy);
    if (known !== undefined) return known;
    const label = proxy.toLowerCase();
    const name =
      isDnsLabel(label) && label !== NAME_SERVER_LABEL ? `${label}.${this.zone}` : undefined;
    const naming = { label, name };
    if (this.#namings.size >= MAX_PREPARED_REPLIES) this.#namings.clear();
    this.#namings.set(proxy, naming);
    return naming;
  }

  /** The host and port of a proxy's SIP URI (parsed once); null when it is not a SIP URI. */
  #target(uri: string): UriTarget | null {
    const known = this.#targets.get(uri);
    if (known !== undefined) return known;
    let target: UriTarget | null = null;
    try {
      const parsed = parseUri(uri);
      if (parsed instanceof SipUri) {
        const family = isIP(parsed.hostname);
        target = {
          hostname: parsed.hostname,
          port: parsed.port ?? (parsed.scheme === "sips" ? 5061 : 5060),
          family: family === 4 ? 4 : family === 6 ? 6 : 0,
        };
      }
    } catch {
      // A proxy's report with a URI we cannot read: that proxy gets no record for it.
    }
    if (target === null) this.#log.warn({ uri }, "proxy URI is not a SIP URI; left out of DNS");
    if (this.#targets.size >= MAX_PREPARED_REPLIES) this.#targets.clear();
    this.#targets.set(uri, target);
    return target;
  }

  #keep(key: string, reply: PreparedReply): PreparedReply {
    if (this.#prepared.size >= MAX_PREPARED_REPLIES) this.#prepared.clear();
    this.#prepared.set(key, reply);
    return reply;
  }
}

/** The zone's records that never change while the front runs. */
interface ZoneReplies {
  readonly apexSoa: PreparedReply;
  readonly apexNs: PreparedReply;
  readonly apexAny: PreparedReply;
  /** `ns.<zone>`'s A or AAAA, and which of the two. */
  readonly nsGlue: PreparedReply;
  readonly nsGlueType: number;
  readonly noData: PreparedReply;
  readonly nxDomain: PreparedReply;
}

function positive(
  answer: Buffer,
  answerCount: number,
  additional: Buffer = Buffer.alloc(0),
  additionalCount = 0,
): PreparedReply {
  return {
    rcode: RCODES.NOERROR,
    authoritative: true,
    answer,
    answerCount,
    authority: Buffer.alloc(0),
    authorityCount: 0,
    additional,
    additionalCount,
  };
}

function zoneReplies(zone: string, nsAddress: string, serial: number): ZoneReplies {
  const nsName = `${NAME_SERVER_LABEL}.${zone}`;
  const soa = (ttl: number): Answer => ({
    name: zone,
    type: "SOA",
    ttl,
    data: {
      mname: nsName,
      rname: `hostmaster.${zone}`,
      serial,
      refresh: 3600,
      retry: 600,
      expire: 86_400,
      minimum: DNS_NEGATIVE_TTL_S,
    },
  });
  const v6 = isIP(nsAddress) === 6;
  const glue = encodeRecords([
    { name: nsName, type: v6 ? "AAAA" : "A", ttl: DNS_ZONE_TTL_S, data: nsAddress },
  ]);
  const ns = encodeRecords([{ name: zone, type: "NS", ttl: DNS_ZONE_TTL_S, data: nsName }]);
  const soaRecord = encodeRecords([soa(DNS_ZONE_TTL_S)]);
  // RFC 2308 §3: the SOA of a negative answer carries the negative TTL as its own TTL.
  const negative = encodeRecords([soa(DNS_NEGATIVE_TTL_S)]);
  const withSoa = (rcode: number): PreparedReply => ({
    ...bareReply(rcode, true),
    authority: negative,
    authorityCount: 1,
  });
  return {
    apexSoa: positive(soaRecord, 1),
    apexNs: positive(ns, 1, glue, 1),
    apexAny: positive(Buffer.concat([soaRecord, ns]), 2, glue, 1),
    nsGlue: positive(glue, 1),
    nsGlueType: v6 ? QTYPES.AAAA : QTYPES.A,
    noData: withSoa(RCODES.NOERROR),
    nxDomain: withSoa(RCODES.NXDOMAIN),
  };
}
