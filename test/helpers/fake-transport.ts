import { EventEmitter } from "node:events";
import {
  TransportError,
  parseDatagram,
  type FlowInfo,
  type InboundMessage,
  type SendOptions,
  type SendTarget,
  type SentMessage,
  type SipMessage,
  type SipResponse,
  type TransactionLayerTransport,
} from "../../src/sip/index.js";

export function udpFlow(port = 5070): FlowInfo {
  return {
    id: `udp|0|127.0.0.1|${port}`,
    protocol: "udp",
    local: { address: "127.0.0.1", port: 5060 },
    remote: { address: "127.0.0.1", port },
    reliable: false,
    secure: false,
  };
}

export function tcpFlow(): FlowInfo {
  return {
    id: "tcp#1",
    protocol: "tcp",
    local: { address: "127.0.0.1", port: 5060 },
    remote: { address: "127.0.0.1", port: 40000 },
    reliable: true,
    secure: false,
  };
}

export interface Wire {
  readonly kind: "send" | "resend" | "response";
  readonly bytes: Buffer;
  readonly flow: FlowInfo;
}

/**
 * The transaction layer's view of a transport, in memory: what was put on the wire is
 * recorded (as it would be serialized), and tests inject what arrives. The transaction
 * timers are what is under test, so no real socket is needed here; the real transport has
 * its own tests.
 */
export class FakeTransport
  extends EventEmitter<{ message: [InboundMessage] }>
  implements TransactionLayerTransport
{
  readonly wire: Wire[] = [];
  failSends = false;

  async send(
    message: SipMessage,
    target: SendTarget,
    options: SendOptions = {},
  ): Promise<SentMessage> {
    if (this.failSends) throw new TransportError("connect failed", "CONNECT_FAILED");
    if (options.viaBranch !== undefined) {
      message.prependHeader(
        "Via",
        `SIP/2.0/${target.protocol.toUpperCase()} 127.0.0.1:5060;branch=${options.viaBranch}`,
      );
    }
    const flow = target.protocol === "udp" ? udpFlow(target.port) : tcpFlow();
    const bytes = message.toBuffer();
    this.wire.push({ kind: "send", bytes, flow });
    return { flow, bytes };
  }

  resend(bytes: Buffer, flow: FlowInfo): void {
    this.wire.push({ kind: "resend", bytes, flow });
  }

  async sendResponse(response: SipResponse, requestFlow: FlowInfo): Promise<SentMessage> {
    return this.sendResponseNow(response, requestFlow);
  }

  sendResponseNow(response: SipResponse, requestFlow: FlowInfo): SentMessage {
    if (this.failSends) throw new TransportError("flow closed", "FLOW_CLOSED");
    const bytes = response.toBuffer();
    this.wire.push({ kind: "response", bytes, flow: requestFlow });
    return { flow: requestFlow, bytes };
  }

  /** Delivers raw text as if it arrived on `flow`. */
  deliver(text: string | Buffer, flow: FlowInfo = udpFlow()): void {
    const message = parseDatagram(typeof text === "string" ? Buffer.from(text) : text)!;
    this.emit("message", { message, flow });
  }

  /** What went on the wire, as start lines ("OPTIONS sip:…", "SIP/2.0 200 OK"). */
  lines(kind?: Wire["kind"]): string[] {
    return this.wire
      .filter((w) => kind === undefined || w.kind === kind)
      .map((w) => w.bytes.toString("latin1").split("\r\n")[0]!);
  }

  /** The last message put on the wire, parsed. */
  last(): SipMessage {
    return parseDatagram(this.wire[this.wire.length - 1]!.bytes)!;
  }

  clear(): void {
    this.wire.length = 0;
  }
}
