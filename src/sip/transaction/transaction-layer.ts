import { EventEmitter } from "node:events";
import { systemClock, type Clock } from "../clock.js";
import { silentLogger, type Logger } from "../logger.js";
import type { SipRequest, SipResponse } from "../message/index.js";
import { TimerQueue } from "../timer-queue.js";
import type { InboundMessage, SendTarget } from "../transport/types.js";
import { createCancel } from "./ack-cancel.js";
import { ClientTransaction, type ClientTransactionOptions } from "./client-transaction.js";
import { InviteClientTransaction } from "./invite-client-transaction.js";
import { InviteServerTransaction } from "./invite-server-transaction.js";
import { NonInviteClientTransaction } from "./non-invite-client-transaction.js";
import { NonInviteServerTransaction } from "./non-invite-server-transaction.js";
import type { ServerTransaction } from "./server-transaction.js";
import type { Transaction } from "./transaction.js";
import type { TransactionContext, TransactionTransport } from "./transaction-context.js";
import {
  clientKey,
  clientKeyOfResponse,
  inviteKeyForCancel,
  newBranch,
  serverKey,
} from "./transaction-keys.js";
import {
  parseTransactionOptions,
  type TransactionOptions,
  type TransactionOptionsInput,
} from "./transaction-timers.js";

/** A transport the layer can listen to and send through (TransportLayer is one). */
export interface TransactionLayerTransport extends TransactionTransport {
  on(event: "message", listener: (inbound: InboundMessage) => void): unknown;
  off(event: "message", listener: (inbound: InboundMessage) => void): unknown;
}

export interface TransactionLayerOptions {
  readonly transport: TransactionLayerTransport;
  readonly timers?: TransactionOptionsInput;
  readonly clock?: Clock;
  readonly logger?: Logger;
}

export interface TransactionLayerEvents {
  /** A new request (not a retransmission, not an ACK): the TU answers on the transaction. */
  request: [ServerTransaction];
  /** An ACK no transaction took: the ACK for a 2xx (RFC 3261 §17.1.1.3), for the TU. */
  ack: [InboundMessage];
  /** A response no client transaction matched (a proxy forwards it statelessly, §16.7). */
  response: [InboundMessage];
}

export interface SendRequestOptions extends ClientTransactionOptions {
  /** The branch for our Via; a new random one when absent. */
  readonly branch?: string;
}

/**
 * The transaction layer of RFC 3261 §17 (with RFC 6026): matches what the transport delivers
 * to client and server transactions, makes server transactions for new requests, and runs
 * every timer of every transaction on one timer queue.
 */
export class TransactionLayer extends EventEmitter<TransactionLayerEvents> {
  readonly options: Readonly<TransactionOptions>;
  readonly #transport: TransactionLayerTransport;
  readonly #timers: TimerQueue;
  readonly #log: Logger;
  readonly #ctx: TransactionContext;
  readonly #clients = new Map<string, ClientTransaction>();
  readonly #servers = new Map<string, ServerTransaction>();
  #running = false;

  constructor(options: TransactionLayerOptions) {
    super();
    this.options = parseTransactionOptions(options.timers);
    this.#transport = options.transport;
    this.#timers = new TimerQueue(options.clock ?? systemClock);
    this.#log = (options.logger ?? silentLogger).child({ component: "transactions" });
    this.#ctx = {
      timers: this.#timers,
      options: this.options,
      transport: this.#transport,
      log: this.#log,
      registry: this,
      sendCancel: (invite, target, reason) => {
        const cancel = createCancel(invite, reason);
        this.sendRequest(cancel, target, { keepVia: true });
      },
    };
  }

  /** Live transactions, for load reports (DESIGN.md `transactions`). */
  get size(): { client: number; server: number } {
    return { client: this.#clients.size, server: this.#servers.size };
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#transport.on("message", this.#onMessage);
  }

  /** Stops listening, ends every transaction (pending `final`s reject with 503). */
  stop(): void {
    if (!this.#running) return;
    this.#running = false;
    this.#transport.off("message", this.#onMessage);
    for (const tx of [...this.#clients.values()]) tx.abort();
    for (const tx of [...this.#servers.values()]) tx.abort();
    this.#clients.clear();
    this.#servers.clear();
    this.#timers.dispose();
  }

  /**
   * Sends a request in a new client transaction (INVITE or non-INVITE by method). Our Via,
   * with a new branch, is pushed by the transport on send. ACK is not sent this way: the
   * ACK for a 2xx is the TU's own request (send it with TransportLayer.send).
   */
  sendRequest(
    request: SipRequest,
    target: SendTarget,
    options: SendRequestOptions = {},
  ): ClientTransaction {
    if (!this.#running) throw new Error("TransactionLayer is not started");
    if (request.method === "ACK") throw new Error("ACK is sent by the TU, not in a transaction");
    const branch =
      options.keepVia === true ? request.topVia!.branch! : (options.branch ?? newBranch());
    const key = clientKey(branch, request.method);
    const tx =
      request.method === "INVITE"
        ? new InviteClientTransaction(this.#ctx, request, target, branch, key, options)
        : new NonInviteClientTransaction(this.#ctx, request, target, branch, key, options);
    this.#clients.set(key, tx);
    void tx.start();
    return tx;
  }

  /** @internal A transaction ended: forget it (the registry of TransactionContext). */
  forget(tx: Transaction): void {
    const table = tx instanceof ClientTransaction ? this.#clients : this.#servers;
    if (table.get(tx.key) === tx) table.delete(tx.key);
  }

  /** The INVITE server transaction a CANCEL matches (RFC 3261 §9.2), if any. */
  matchCancel(cancel: SipRequest): InviteServerTransaction | undefined {
    const tx = this.#servers.get(inviteKeyForCancel(cancel));
    return tx instanceof InviteServerTransaction ? tx : undefined;
  }

  #onMessage = (inbound: InboundMessage): void => {
    const { message } = inbound;
    if (message.type === "response") {
      const key = clientKeyOfResponse(message);
      const tx = key === undefined ? undefined : this.#clients.get(key);
      if (tx !== undefined) tx.receiveResponse(message as SipResponse);
      else this.emit("response", inbound);
      return;
    }
    const request = message;
    const key = serverKey(request);
    const existing = this.#servers.get(key);
    if (existing !== undefined) {
      existing.receiveRequest(request);
      // RFC 6026 §7.1: an ACK in Accepted (a 2xx ACK reusing the branch) goes to the TU.
      if (request.method === "ACK" && existing.state === "accepted") this.emit("ack", inbound);
      return;
    }
    if (request.method === "ACK") {
      this.emit("ack", inbound);
      return;
    }
    const tx =
      request.method === "INVITE"
        ? new InviteServerTransaction(this.#ctx, request, inbound.flow, key)
        : new NonInviteServerTransaction(this.#ctx, request, inbound.flow, key);
    this.#servers.set(key, tx);
    if (request.method === "CANCEL") {
      // RFC 3261 §9.2: a CANCEL only matters while no final response has gone out.
      const invite = this.matchCancel(request);
      if (invite?.state === "proceeding") invite.onCancel?.(request);
    }
    this.emit("request", tx);
  };
}
