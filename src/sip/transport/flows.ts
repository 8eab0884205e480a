import type { Socket as DgramSocket } from "node:dgram";
import type { Socket as NetSocket } from "node:net";
import type { WebSocket } from "ws";
import { TransportError, type Endpoint, type FlowInfo, type Protocol } from "./types.js";

/** A flow the transport layer can write to; UDP flows are made per send, others live. */
export interface Flow {
  readonly info: FlowInfo;
  /** Last time (clock ms) a byte went either way; drives the idle timeout. */
  lastActivity: number;
  /** Since when (clock ms) part of a message has waited for the rest; undefined: none. */
  partialSince?: number | undefined;
  write(bytes: Buffer): void;
  close(): void;
}

/** An IPv4-mapped IPv6 address ("::ffff:192.0.2.1") as the IPv4 address it maps. */
export function plainAddress(address: string): string {
  return address.startsWith("::ffff:") && address.includes(".") ? address.slice(7) : address;
}

let nextFlowId = 1;

/** A UDP flow's info also says which of our sockets it is (saves reading the id back). */
export interface UdpFlowInfo extends FlowInfo {
  readonly listenerIndex: number;
}

/** UDP "flow": our socket and one peer. The id names both, so any send can find them. */
export class UdpFlow implements Flow {
  readonly info: UdpFlowInfo;
  lastActivity = 0;

  constructor(
    private readonly socket: DgramSocket,
    listenerIndex: number,
    local: Endpoint,
    remote: Endpoint,
  ) {
    this.info = {
      id: udpFlowId(listenerIndex, remote),
      protocol: "udp",
      local,
      remote,
      reliable: false,
      secure: false,
      listenerIndex,
    };
  }

  write(bytes: Buffer): void {
    // A failed datagram send is reported asynchronously; UDP promises nothing anyway.
    this.socket.send(bytes, this.info.remote.port, this.info.remote.address);
  }

  close(): void {}
}

export function udpFlowId(listenerIndex: number, remote: Endpoint): string {
  return `udp|${listenerIndex}|${remote.address}|${remote.port}`;
}

/** Reads a UDP flow id back: which listener socket, which peer. */
export function parseUdpFlowId(
  id: string,
): { listenerIndex: number; remote: Endpoint } | undefined {
  const [kind, index, address, port] = id.split("|");
  if (kind !== "udp" || index === undefined || address === undefined || port === undefined) {
    return undefined;
  }
  return { listenerIndex: Number(index), remote: { address, port: Number(port) } };
}

/** A TCP or TLS connection. */
export class StreamFlow implements Flow {
  readonly info: FlowInfo;
  lastActivity = 0;
  partialSince: number | undefined = undefined;

  constructor(
    readonly socket: NetSocket,
    protocol: Protocol,
    private readonly maxWriteBufferBytes: number,
  ) {
    this.info = {
      id: `${protocol}#${nextFlowId++}`,
      protocol,
      local: { address: plainAddress(socket.localAddress ?? ""), port: socket.localPort ?? 0 },
      remote: { address: plainAddress(socket.remoteAddress ?? ""), port: socket.remotePort ?? 0 },
      reliable: true,
      secure: protocol === "tls",
    };
  }

  write(bytes: Buffer): void {
    if (this.socket.destroyed || !this.socket.writable) {
      throw new TransportError(`flow ${this.info.id} is closed`, "FLOW_CLOSED");
    }
    // A peer that does not read what we send is cut off rather than buffered without end.
    if (this.socket.writableLength + bytes.length > this.maxWriteBufferBytes) {
      this.socket.destroy();
      throw new TransportError(`flow ${this.info.id} stopped reading`, "SEND_FAILED");
    }
    this.socket.write(bytes);
  }

  close(): void {
    this.socket.destroy();
  }
}

/** A WebSocket connection carrying SIP (RFC 7118): one SIP message per WebSocket message. */
export class WsFlow implements Flow {
  readonly info: FlowInfo;
  lastActivity = 0;

  constructor(
    readonly ws: WebSocket,
    protocol: "ws" | "wss",
    local: Endpoint,
    remote: Endpoint,
    private readonly maxWriteBufferBytes: number,
  ) {
    this.info = {
      id: `${protocol}#${nextFlowId++}`,
      protocol,
      local,
      remote,
      reliable: true,
      secure: protocol === "wss",
    };
  }

  write(bytes: Buffer): void {
    if (this.ws.readyState !== this.ws.OPEN) {
      throw new TransportError(`flow ${this.info.id} is closed`, "FLOW_CLOSED");
    }
    if (this.ws.bufferedAmount + bytes.length > this.maxWriteBufferBytes) {
      this.ws.terminate();
      throw new TransportError(`flow ${this.info.id} stopped reading`, "SEND_FAILED");
    }
    // SIP is text; browsers' SIP stacks (JsSIP, SIP.js) expect text frames.
    this.ws.send(bytes, { binary: false });
  }

  close(): void {
    this.ws.terminate();
  }
}
