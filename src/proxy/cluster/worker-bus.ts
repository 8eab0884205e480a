import { timingSafeEqual } from "node:crypto";
import { createSocket, type Socket } from "node:dgram";
import type { FlowInfo, Logger, Protocol, SendTarget } from "../../sip/index.js";

/** What a handed-over datagram asks of its receiver. */
export type BusDelivery =
  | { readonly kind: "inbound"; readonly flow: FlowInfo; readonly bytes: Buffer }
  | { readonly kind: "send"; readonly target: SendTarget; readonly bytes: Buffer };

const SECRET_BYTES = 16;
const INBOUND = 0x49; // "I"
const SEND = 0x53; // "S"

/**
 * How the processes of one proxy hand messages to each other: a UDP socket each on
 * 127.0.0.1. A datagram is the shared secret, a one-line header of space-separated fields (what it is, the flow it
 * came on or the peer to send to) and the SIP message as received. Loopback only, and the
 * secret keeps other local programs from injecting.
 */
export class WorkerBus {
  readonly #secret: Buffer;
  readonly #log: Logger;
  readonly #deliver: (delivery: BusDelivery) => void;
  #socket: Socket | undefined;
  #peers: readonly number[] = [];
  /** Handovers that could not be sent (no peer yet, too big): counted for the logs. */
  dropped = 0;

  constructor(secret: Buffer, log: Logger, deliver: (delivery: BusDelivery) => void) {
    if (secret.length !== SECRET_BYTES)
      throw new RangeError(`bus secret must be ${SECRET_BYTES} bytes`);
    this.#secret = secret;
    this.#log = log;
    this.#deliver = deliver;
  }

  /** Binds 127.0.0.1 on a free port; resolves with it. */
  async start(): Promise<number> {
    const socket = createSocket({ type: "udp4" });
    this.#socket = socket;
    socket.on("message", (data, rinfo) => {
      if (rinfo.address !== "127.0.0.1") return;
      this.#receive(data);
    });
    socket.on("error", (e) => this.#log.warn({ err: e }, "worker bus socket error"));
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      // Exclusive: in a cluster worker a plain bind would share one socket among all workers.
      socket.bind({ port: 0, address: "127.0.0.1", exclusive: true }, () => {
        socket.off("error", reject);
        resolve();
      });
    });
    // Bursts of handovers queue here rather than being dropped.
    socket.setRecvBufferSize(4 * 1_048_576);
    socket.setSendBufferSize(4 * 1_048_576);
    return socket.address().port;
  }

  async stop(): Promise<void> {
    const socket = this.#socket;
    this.#socket = undefined;
    if (socket !== undefined) await new Promise<void>((resolve) => socket.close(() => resolve()));
  }

  /** The bus ports of every process, by index (0 where not known yet). */
  set peers(ports: readonly number[]) {
    this.#peers = ports;
  }

  /** True when process `index` can be handed messages. */
  reaches(index: number): boolean {
    return (this.#peers[index] ?? 0) > 0 && this.#socket !== undefined;
  }

  /** Hands a received message to the process that owns it. */
  handInbound(index: number, flow: FlowInfo, bytes: Buffer): void {
    const l = flow as FlowInfo & { listenerIndex?: number };
    const header =
      `${flow.id} ${flow.protocol} ${flow.local.address} ${flow.local.port} ` +
      `${flow.remote.address} ${flow.remote.port} ${flow.reliable ? 1 : 0} ${flow.secure ? 1 : 0} ` +
      `${l.listenerIndex ?? "-"}`;
    this.#send(index, INBOUND, header, bytes);
  }

  /** Asks process `index` (which owns stream connections) to send bytes to a stream peer. */
  handSend(index: number, target: SendTarget, bytes: Buffer): void {
    const header = `${target.protocol} ${target.address} ${target.port} ${target.flowId ?? "-"}`;
    this.#send(index, SEND, header, bytes);
  }

  #send(index: number, kind: number, header: string, bytes: Buffer): void {
    const port = this.#peers[index];
    const socket = this.#socket;
    const headerBytes = Buffer.from(header, "latin1");
    const size = SECRET_BYTES + 1 + headerBytes.length + 1 + bytes.length;
    if (port === undefined || port === 0 || socket === undefined || size > 65_507) {
      this.dropped++;
      this.#log.warn(
        { to: index, size },
        "hand-over between proxy processes not possible; message dropped",
      );
      return;
    }
    const datagram = Buffer.allocUnsafe(size);
    this.#secret.copy(datagram, 0);
    datagram[SECRET_BYTES] = kind;
    headerBytes.copy(datagram, SECRET_BYTES + 1);
    datagram[SECRET_BYTES + 1 + headerBytes.length] = 0x0a;
    bytes.copy(datagram, SECRET_BYTES + 2 + headerBytes.length);
    socket.send(datagram, port, "127.0.0.1");
  }

  #receive(data: Buffer): void {
    if (data.length < SECRET_BYTES + 2) return;
    if (!timingSafeEqual(data.subarray(0, SECRET_BYTES), this.#secret)) return;
    const kind = data[SECRET_BYTES];
    const newline = data.indexOf(0x0a, SECRET_BYTES + 1);
    if (newline < 0) return;
    const fields = data.toString("latin1", SECRET_BYTES + 1, newline).split(" ");
    const bytes = data.subarray(newline + 1);
    if (kind === INBOUND && fields.length === 9) {
      const [id, protocol, la, lp, ra, rp, reliable, secure, index] = fields as [
        string,
        string,
        string,
        string,
        string,
        string,
        string,
        string,
        string,
      ];
      const flow: FlowInfo & { listenerIndex?: number } = {
        id,
        protocol: protocol as Protocol,
        local: { address: la, port: Number(lp) },
        remote: { address: ra, port: Number(rp) },
        reliable: reliable === "1",
        secure: secure === "1",
        ...(index === "-" ? {} : { listenerIndex: Number(index) }),
      };
      this.#deliver({ kind: "inbound", flow, bytes });
    } else if (kind === SEND && fields.length === 4) {
      const [protocol, address, port, flowId] = fields as [string, string, string, string];
      this.#deliver({
        kind: "send",
        target: {
          protocol: protocol as Protocol,
          address,
          port: Number(port),
          ...(flowId === "-" ? {} : { flowId }),
        },
        bytes,
      });
    }
  }
}
