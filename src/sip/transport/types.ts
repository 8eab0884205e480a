import type { SipMessage } from "../message/index.js";

/** The transports of RFC 3261 §18 and RFC 7118. */
export type Protocol = "udp" | "tcp" | "tls" | "ws" | "wss";

export const PROTOCOLS: readonly Protocol[] = ["udp", "tcp", "tls", "ws", "wss"];

/** An IP address (v4, or v6 without brackets) and a port. */
export interface Endpoint {
  readonly address: string;
  readonly port: number;
}

/**
 * The path a message came on or goes out on: a connection for TCP, TLS and WebSocket, or
 * for UDP the pair of our socket and the peer (so that a response leaves from the socket the
 * request reached, RFC 3581).
 */
export interface FlowInfo {
  /** Stable for the life of the connection; for UDP, one id per (our socket, peer). */
  readonly id: string;
  readonly protocol: Protocol;
  readonly local: Endpoint;
  readonly remote: Endpoint;
  /** True for the connection-oriented transports (no retransmission timers). */
  readonly reliable: boolean;
  readonly secure: boolean;
}

/** A message received, with the flow it came on. */
export interface InboundMessage {
  readonly message: SipMessage;
  readonly flow: FlowInfo;
}

/** Where to send a request (the caller resolved names to addresses, RFC 3263). */
export interface SendTarget {
  readonly protocol: Protocol;
  readonly address: string;
  readonly port: number;
  /** Send on this flow when it is still open (a response path, RFC 5626 flows). */
  readonly flowId?: string;
  /** TLS server name (SNI and certificate check) for tls and wss; defaults to `address`. */
  readonly serverName?: string;
}

/** True when the protocol runs over a connection (RFC 3261 §18: "reliable"). */
export function isReliable(protocol: Protocol): boolean {
  return protocol !== "udp";
}

/** True for TLS and secure WebSocket. */
export function isSecure(protocol: Protocol): boolean {
  return protocol === "tls" || protocol === "wss";
}

/** Default ports of RFC 3261 §19.1.2 and RFC 7118 (80/443 are theirs for ws/wss). */
export function defaultPort(protocol: Protocol): number {
  return isSecure(protocol) ? 5061 : 5060;
}

/** The Via transport token for a protocol (RFC 3261 §20.42, RFC 7118 §5.2). */
export function viaTransport(protocol: Protocol): string {
  return protocol.toUpperCase();
}

/** The protocol a Via transport token names, if it is one we speak. */
export function protocolOfVia(transport: string): Protocol | undefined {
  const lower = transport.toLowerCase();
  return (PROTOCOLS as readonly string[]).includes(lower) ? (lower as Protocol) : undefined;
}

/** A send that could not happen: RFC 3261 §8.1.3.1 makes it a 503 for the TU. */
export class TransportError extends Error {
  override readonly name = "TransportError";
  constructor(
    message: string,
    readonly code:
      | "DESTINATION_NOT_ALLOWED"
      | "CONNECT_FAILED"
      | "FLOW_CLOSED"
      | "NO_LISTENER"
      | "TOO_LARGE"
      | "SEND_FAILED"
      | "STOPPED",
    options: { cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
  }
}
