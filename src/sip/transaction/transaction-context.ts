import type { Logger } from "../logger.js";
import type { SipMessage, SipRequest, SipResponse } from "../message/index.js";
import type { TimerQueue } from "../timer-queue.js";
import type { SendOptions, SentMessage } from "../transport/transport-layer.js";
import type { FlowInfo, SendTarget } from "../transport/types.js";
import type { TransactionRegistry } from "./transaction.js";
import type { TransactionOptions } from "./transaction-timers.js";

/** What a transaction needs from the transport layer. */
export interface TransactionTransport {
  send(message: SipMessage, target: SendTarget, options?: SendOptions): Promise<SentMessage>;
  resend(bytes: Buffer, flow: FlowInfo): void;
  sendResponse(response: SipResponse, requestFlow: FlowInfo): Promise<SentMessage>;
  /** Sends at once, or undefined when a connection must be opened (see sendResponse). */
  sendResponseNow(response: SipResponse, requestFlow: FlowInfo): SentMessage | undefined;
}

/** Shared by every transaction of one layer. */
export interface TransactionContext {
  readonly timers: TimerQueue;
  readonly options: Readonly<TransactionOptions>;
  readonly transport: TransactionTransport;
  readonly log: Logger;
  /** The layer, told when a transaction ends. */
  readonly registry: TransactionRegistry;
  /** Sends a CANCEL for an INVITE client transaction (RFC 3261 §9.1). */
  sendCancel(invite: SipRequest, target: SendTarget, reason?: string): void;
}
