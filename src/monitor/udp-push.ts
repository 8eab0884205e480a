import { createSocket, type Socket } from "node:dgram";
import { isIP } from "node:net";
import { parseSignedDatagram } from "../contracts/index.js";
import type { Logger } from "../sip/index.js";
import type { PushIntake } from "./push-intake.js";

export interface UdpPushEndpointOptions {
  readonly address: string;
  readonly port: number;
  readonly intake: PushIntake;
  readonly log: Logger;
}

/**
 * The UDP push endpoint (DESIGN.md): datagrams `<keyid> <hex>\n<body>`. Nothing is sent back
 * (a reply would make the endpoint an amplifier for spoofed sources); refusals are counted.
 */
export class UdpPushEndpoint {
  readonly #options: UdpPushEndpointOptions;
  #socket: Socket | undefined;

  constructor(options: UdpPushEndpointOptions) {
    this.#options = options;
  }

  /** Where it is bound (after start). */
  get address(): { address: string; port: number } {
    if (this.#socket === undefined) throw new Error("UDP push endpoint not started");
    const { address, port } = this.#socket.address();
    return { address, port };
  }

  async start(): Promise<void> {
    const { address, port, intake, log } = this.#options;
    const socket = createSocket(isIP(address) === 6 ? "udp6" : "udp4");
    this.#socket = socket;
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      // Exclusive: a second monitor on the same port fails instead of sharing its reports.
      socket.bind({ address, port, exclusive: true }, () => {
        socket.off("error", reject);
        resolve();
      });
    });
    socket.on("error", (e) => log.warn({ err: e }, "UDP push socket error"));
    socket.on("message", (datagram) => {
      const signed = parseSignedDatagram(datagram);
      if (signed === undefined) {
        intake.refuseUnsigned("udp", `${datagram.length}-byte datagram without a signature line`);
        return;
      }
      intake.take(signed.body, signed.keyId, signed.sig, "udp");
    });
  }

  async stop(): Promise<void> {
    const socket = this.#socket;
    this.#socket = undefined;
    if (socket === undefined) return;
    await new Promise<void>((resolve) => {
      try {
        socket.close(() => resolve());
      } catch {
        // Never bound: nothing to close.
        resolve();
      }
    });
  }
}
