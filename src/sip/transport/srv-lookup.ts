import { randomInt } from "node:crypto";
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { connect, isIP, type Socket } from "node:net";
import {
  RECURSION_DESIRED,
  decode,
  encode,
  type Answer,
  type DecodedPacket,
  type RecordType,
  type SrvAnswer,
  type StringAnswer,
} from "dns-packet";
import type { Protocol } from "./types.js";

/** The SRV name prefix for each transport (RFC 3263 §4.1, RFC 3261 §26.2.1 for sips). */
const SRV_PREFIX: Partial<Record<Protocol, string>> = {
  udp: "_sip._udp",
  tcp: "_sip._tcp",
  tls: "_sips._tcp",
};

/** RFC 1035 §4.1.1 and RFC 2136 §2.2: the response codes by value. */
const RCODE_NAMES = [
  "NOERROR",
  "FORMERR",
  "SERVFAIL",
  "NXDOMAIN",
  "NOTIMP",
  "REFUSED",
  "YXDOMAIN",
  "YXRRSET",
  "NXRRSET",
  "NOTAUTH",
  "NOTZONE",
];
/** RCODE 2: the sipsteer monitor answers it for an SRV name when no proxy is eligible. */
export const DNS_RCODE_SERVFAIL = 2;
/** The largest DNS message over TCP (a 16-bit length). */
const MAX_TCP_MESSAGE = 65_535;

/** Why a DNS exchange brought no answer: a socket error, a broken answer, stopped. */
export type DnsQueryFailure = "network" | "bad-answer" | "aborted";

/** A DNS exchange that brought no usable response; `reason` says why. */
export class DnsQueryError extends Error {
  override readonly name = "DnsQueryError";
  readonly reason: DnsQueryFailure;

  constructor(reason: DnsQueryFailure, message: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.reason = reason;
  }
}

export interface DnsServer {
  /** An IP address. */
  readonly host: string;
  readonly port: number;
  /** The server as configured (`dns:127.0.0.1:5300/sipsteer.test`), for messages. */
  readonly text: string;
}

/** The SRV owner name RFC 3263 §4.2 asks for `transport` in `zone`; undefined for ws/wss. */
export function srvName(transport: Protocol, zone: string): string | undefined {
  const prefix = SRV_PREFIX[transport];
  return prefix === undefined ? undefined : `${prefix}.${zone}`;
}

/** The mnemonic of a response code (`REFUSED`), or `rcode N`. */
export function rcodeName(rcode: number): string {
  return RCODE_NAMES[rcode] ?? `rcode ${rcode}`;
}

/** A query id: random, so that an off-path spoofer has to guess it (RFC 5452 §4.3). */
function randomId(): number {
  return randomInt(0x10000);
}

/**
 * One DNS exchange with one server: over UDP, and again over TCP when the answer is truncated
 * (RFC 1035 §4.2.1, RFC 7766). The sockets live for one query only; `signal` closes them and
 * rejects with DnsQueryError `aborted` (the caller's deadline aborts through it). Answers whose
 * id or source do not match are ignored (the UDP socket is connected to the server).
 */
export class DnsExchange {
  readonly #server: DnsServer;
  readonly #signal: AbortSignal;
  readonly #id: () => number;

  /** `random`, uniform in [0, 1), draws the query ids (crypto-random ids by default). */
  constructor(server: DnsServer, signal: AbortSignal, random?: () => number) {
    this.#server = server;
    this.#signal = signal;
    this.#id = random === undefined ? randomId : () => Math.floor(random() * 0x10000) & 0xffff;
  }

  /** The response to one question; rejects with DnsQueryError. */
  async query(name: string, type: RecordType): Promise<DecodedPacket> {
    const id = this.#id();
    const query = encode({
      type: "query",
      id,
      flags: RECURSION_DESIRED,
      questions: [{ type, name, class: "IN" }],
    });
    const udp = await this.#udp(query, id);
    if (!udp.flag_tc) return udp;
    return this.#tcp(query, id);
  }

  #aborted(): DnsQueryError {
    return new DnsQueryError("aborted", `${this.#server.text}: aborted`);
  }

  #network(e: Error): DnsQueryError {
    return new DnsQueryError("network", `${this.#server.text}: ${e.message}`, { cause: e });
  }

  #bad(what: string): DnsQueryError {
    return new DnsQueryError("bad-answer", `${this.#server.text}: ${what}`);
  }

  #udp(query: Buffer, id: number): Promise<DecodedPacket> {
    return new Promise<DecodedPacket>((resolve, reject) => {
      if (this.#signal.aborted) {
        reject(this.#aborted());
        return;
      }
      const family = isIP(this.#server.host) === 6 ? "udp6" : "udp4";
      const socket: UdpSocket = createSocket(family);
      const done = (): void => {
        this.#signal.removeEventListener("abort", onAbort);
        socket.close();
      };
      const onAbort = (): void => {
        done();
        reject(this.#aborted());
      };
      this.#signal.addEventListener("abort", onAbort);
      socket.on("error", (e) => {
        done();
        reject(this.#network(e));
      });
      socket.on("message", (bytes) => {
        const packet = this.#decode(bytes, id);
        if (packet === undefined) return; // Not our answer: keep waiting (until the deadline).
        done();
        resolve(packet);
      });
      // Connected, so that an ICMP port unreachable comes back as ECONNREFUSED at once.
      socket.connect(this.#server.port, this.#server.host, () => {
        socket.send(query);
      });
    });
  }

  #tcp(query: Buffer, id: number): Promise<DecodedPacket> {
    return new Promise<DecodedPacket>((resolve, reject) => {
      if (this.#signal.aborted) {
        reject(this.#aborted());
        return;
      }
      const socket: Socket = connect({ host: this.#server.host, port: this.#server.port });
      let buffered = Buffer.alloc(0);
      const done = (): void => {
        this.#signal.removeEventListener("abort", onAbort);
        socket.destroy();
      };
      const onAbort = (): void => {
        done();
        reject(this.#aborted());
      };
      this.#signal.addEventListener("abort", onAbort);
      socket.on("error", (e) => {
        done();
        reject(this.#network(e));
      });
      socket.on("connect", () => {
        const length = Buffer.alloc(2);
        length.writeUInt16BE(query.length);
        socket.write(Buffer.concat([length, query]));
      });
      socket.on("data", (chunk: Buffer) => {
        buffered = Buffer.concat([buffered, chunk]);
        if (buffered.length > MAX_TCP_MESSAGE + 2) {
          done();
          reject(this.#bad("TCP answer longer than 64 KiB"));
          return;
        }
        if (buffered.length < 2) return;
        const size = buffered.readUInt16BE(0);
        if (buffered.length < 2 + size) return;
        const packet = this.#decode(buffered.subarray(2, 2 + size), id);
        done();
        if (packet === undefined) reject(this.#bad("the TCP answer does not match the query"));
        else resolve(packet);
      });
      socket.on("end", () => {
        done();
        reject(this.#bad("the server closed the TCP connection before answering"));
      });
    });
  }

  /** The response with our id, or undefined for anything else (spoofed, stray, malformed). */
  #decode(bytes: Buffer, id: number): DecodedPacket | undefined {
    try {
      const packet = decode(bytes);
      return packet.type === "response" && packet.id === id ? packet : undefined;
    } catch {
      return undefined;
    }
  }
}

/** One SRV record of an answer, with its target's addresses. */
export interface SrvTarget {
  /** The target's name as the answer gave it (`p1.sipsteer.test`). */
  readonly target: string;
  readonly port: number;
  readonly priority: number;
  readonly weight: number;
  /** Its A then AAAA addresses: from the additional section when there, else asked. */
  readonly addresses: readonly string[];
}

/** What one server said about one SRV name. */
export interface SrvLookup {
  /** The SRV owner name asked. */
  readonly name: string;
  /** The response code (0 NOERROR, DNS_RCODE_SERVFAIL …); targets are read only for 0. */
  readonly rcode: number;
  /** The SRV records in the answer's order (not RFC 2782's: the caller orders them). */
  readonly targets: readonly SrvTarget[];
}

export interface LookupSrvOptions {
  readonly server: DnsServer;
  /** The SRV owner name (srvName). */
  readonly name: string;
  /** Closes the sockets and rejects with DnsQueryError `aborted` (deadlines abort through it). */
  readonly signal: AbortSignal;
  /** Uniform in [0, 1): the query ids (crypto-random by default). */
  readonly random?: () => number;
}

function rcodeOf(packet: DecodedPacket): number {
  return (packet.flags ?? 0) & 0xf;
}

function addressesIn(records: readonly Answer[] | undefined, name: string): string[] {
  const lower = name.toLowerCase();
  return (records ?? [])
    .filter(
      (r): r is StringAnswer =>
        (r.type === "A" || r.type === "AAAA") && r.name.toLowerCase() === lower,
    )
    .map((r) => r.data);
}

/**
 * RFC 3263 §4.2 against one DNS server (the monitor's DNS front): the SRV records of `name`,
 * each with its target's A and AAAA addresses — from the additional section when the answer
 * carries them (the monitor's does), else asked of the same server. Records whose target is
 * "." (RFC 2782: "decidedly not available") are left out; a target without an address keeps
 * an empty list. Rejects with DnsQueryError; a response code is the caller's to judge.
 */
export async function lookupSrv(options: LookupSrvOptions): Promise<SrvLookup> {
  const { server, name, signal } = options;
  const exchange = new DnsExchange(server, signal, options.random);
  const answer = await exchange.query(name, "SRV");
  const rcode = rcodeOf(answer);
  if (rcode !== 0) return { name, rcode, targets: [] };
  const records = (answer.answers ?? [])
    .filter((r): r is SrvAnswer => r.type === "SRV" && r.name.toLowerCase() === name.toLowerCase())
    .map((r) => ({ ...r.data, weight: r.data.weight ?? 0, priority: r.data.priority ?? 0 }))
    .filter((r) => r.target !== "" && r.target !== ".");
  const asked = new Map<string, string[]>();
  const targets: SrvTarget[] = [];
  for (const record of records) {
    const key = record.target.toLowerCase();
    let addresses = asked.get(key) ?? addressesIn(answer.additionals, record.target);
    if (addresses.length === 0 && !asked.has(key)) {
      for (const type of ["A", "AAAA"] as const) {
        const reply = await exchange.query(record.target, type);
        if (rcodeOf(reply) === 0)
          addresses = addresses.concat(addressesIn(reply.answers, record.target));
      }
      asked.set(key, addresses);
    }
    targets.push({
      target: record.target,
      port: record.port,
      priority: record.priority,
      weight: record.weight,
      addresses,
    });
  }
  return { name, rcode, targets };
}
