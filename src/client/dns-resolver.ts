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
import type { Protocol } from "../sip/index.js";
import { DiscoveryError } from "./errors.js";
import type { ProxyCandidate } from "./proxy-candidate.js";
import { orderSrv } from "./srv-order.js";

/** The SRV name prefix for each transport (RFC 3263 §4.1, RFC 3261 §26.2.1 for sips). */
const SRV_PREFIX: Partial<Record<Protocol, string>> = {
  udp: "_sip._udp",
  tcp: "_sip._tcp",
  tls: "_sips._tcp",
};

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
const SERVFAIL = 2;
/** The largest DNS message over TCP (a 16-bit length). */
const MAX_TCP_MESSAGE = 65_535;

export interface DnsServer {
  readonly host: string;
  readonly port: number;
  /** The monitor address as given, for errors. */
  readonly text: string;
}

/**
 * One DNS exchange with one server: over UDP, and again over TCP when the answer is truncated
 * (RFC 1035 §4.2.1, RFC 7766). The sockets live for this exchange only; `signal` closes them.
 */
export class DnsExchange {
  readonly #server: DnsServer;
  readonly #signal: AbortSignal;
  readonly #random: () => number;

  constructor(server: DnsServer, signal: AbortSignal, random: () => number) {
    this.#server = server;
    this.#signal = signal;
    this.#random = random;
  }

  /** The response to one question; rejects on a socket error, the abort, or a bad answer. */
  async query(name: string, type: RecordType): Promise<DecodedPacket> {
    const id = Math.floor(this.#random() * 0x10000) & 0xffff;
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

  #unreachable(e: Error): DiscoveryError {
    return new DiscoveryError(
      "CLIENT_ERR_MONITOR_UNREACHABLE",
      `${this.#server.text}: ${e.message}`,
      { monitor: this.#server.text, cause: e },
    );
  }

  #udp(query: Buffer, id: number): Promise<DecodedPacket> {
    const family = isIP(this.#server.host) === 6 ? "udp6" : "udp4";
    const socket: UdpSocket = createSocket(family);
    return new Promise<DecodedPacket>((resolve, reject) => {
      const done = (): void => {
        this.#signal.removeEventListener("abort", onAbort);
        socket.close();
      };
      const onAbort = (): void => {
        done();
        reject(new Error("aborted"));
      };
      if (this.#signal.aborted) {
        socket.close();
        reject(new Error("aborted"));
        return;
      }
      this.#signal.addEventListener("abort", onAbort);
      socket.on("error", (e) => {
        done();
        reject(this.#unreachable(e));
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
    const socket: Socket = connect({ host: this.#server.host, port: this.#server.port });
    return new Promise<DecodedPacket>((resolve, reject) => {
      let buffered = Buffer.alloc(0);
      const done = (): void => {
        this.#signal.removeEventListener("abort", onAbort);
        socket.destroy();
      };
      const onAbort = (): void => {
        done();
        reject(new Error("aborted"));
      };
      this.#signal.addEventListener("abort", onAbort);
      socket.on("error", (e) => {
        done();
        reject(this.#unreachable(e));
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

  #bad(what: string): DiscoveryError {
    return new DiscoveryError("CLIENT_ERR_BAD_ANSWER", `${this.#server.text}: ${what}`, {
      monitor: this.#server.text,
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
 * RFC 3263 §4.2 against one DNS server (the monitor's front): SRV of `_sip._udp.ZONE`
 * (`_sip._tcp`, `_sips._tcp` by transport), ordered per RFC 2782, then each target's A and
 * AAAA — from the additional section when the answer carries them (the monitor's does), else
 * asked. SERVFAIL is CLIENT_ERR_NO_PROXY (the monitor says so when no proxy is eligible).
 */
export async function resolveOverDns(
  server: DnsServer,
  zone: string,
  transport: Protocol,
  signal: AbortSignal,
  random: () => number,
): Promise<ProxyCandidate[]> {
  const prefix = SRV_PREFIX[transport];
  if (prefix === undefined) {
    throw new DiscoveryError(
      "CLIENT_ERR_BAD_MONITOR",
      `${server.text}: DNS discovery has no SRV name for ${transport}`,
      { monitor: server.text },
    );
  }
  const exchange = new DnsExchange(server, signal, random);
  const name = `${prefix}.${zone}`;
  const answer = await exchange.query(name, "SRV");
  const rcode = rcodeOf(answer);
  if (rcode === SERVFAIL) {
    throw new DiscoveryError("CLIENT_ERR_NO_PROXY", `${server.text}: SERVFAIL for ${name}`, {
      monitor: server.text,
    });
  }
  if (rcode !== 0) {
    throw new DiscoveryError(
      "CLIENT_ERR_DNS_RCODE",
      `${server.text}: ${RCODE_NAMES[rcode] ?? `rcode ${rcode}`} for ${name} SRV`,
      { monitor: server.text },
    );
  }
  const srv = (answer.answers ?? []).filter(
    (r): r is SrvAnswer => r.type === "SRV" && r.name.toLowerCase() === name.toLowerCase(),
  );
  const records = srv
    .map((r) => ({ ...r.data, weight: r.data.weight ?? 0, priority: r.data.priority ?? 0 }))
    // RFC 2782: a target of "." means the service is decidedly not available there.
    .filter((r) => r.target !== "" && r.target !== ".");
  const candidates: ProxyCandidate[] = [];
  for (const record of orderSrv(records, random)) {
    let addresses = addressesIn(answer.additionals, record.target);
    if (addresses.length === 0) {
      for (const type of ["A", "AAAA"] as const) {
        const reply = await exchange.query(record.target, type);
        if (rcodeOf(reply) === 0)
          addresses = addresses.concat(addressesIn(reply.answers, record.target));
      }
    }
    const label = record.target.split(".")[0]!;
    for (const host of addresses) {
      const literal = isIP(host) === 6 ? `[${host}]` : host;
      const param = transport === "udp" || transport === "tls" ? "" : `;transport=${transport}`;
      candidates.push({
        id: label,
        uri: `${transport === "tls" ? "sips" : "sip"}:${literal}:${record.port}${param}`,
        host,
        port: record.port,
        transport,
      });
    }
  }
  if (candidates.length === 0) {
    throw new DiscoveryError(
      "CLIENT_ERR_NO_RECORDS",
      `${server.text}: no SRV target with an address for ${name}`,
      { monitor: server.text },
    );
  }
  return candidates;
}
