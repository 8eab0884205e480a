import type { Socket } from "node:net";
import type { Clock, ClockTimer } from "../sip/index.js";
import { HEADER_BYTES } from "./dns-wire.js";

/** A query is a few dozen bytes; a longer TCP message is no query of ours (the flow is closed). */
export const DNS_MAX_TCP_QUERY_BYTES = 4096;
/** A TCP client that stops reading is closed once this much is waiting to be written to it. */
export const DNS_MAX_TCP_WRITE_BACKLOG_BYTES = 256 * 1024;

export interface TcpHooks {
  readonly answer: (message: Buffer) => Buffer | Promise<Buffer> | undefined;
  readonly closed: (why: "ended" | "closed") => void;
}

/**
 * One DNS client over TCP (RFC 1035 §4.2.2, RFC 7766): messages framed by a two-byte length,
 * several in flight at once (answers may come back in any order, §6.2.1.1), closed when idle,
 * when a message is longer than a query can be, or when the client stops reading.
 */
export class DnsTcpConnection {
  readonly #socket: Socket;
  readonly #clock: Clock;
  readonly #idleMs: number;
  readonly #hooks: TcpHooks;
  #pending: Buffer | undefined;
  #lastActive: number;
  #timer: ClockTimer | undefined;
  #inFlight = 0;
  #readEnded = false;
  #closed = false;

  constructor(socket: Socket, clock: Clock, idleMs: number, hooks: TcpHooks) {
    this.#socket = socket;
    this.#clock = clock;
    this.#idleMs = idleMs;
    this.#hooks = hooks;
    this.#lastActive = clock.now();
    this.#arm(idleMs);
    socket.on("data", (chunk: Buffer) => this.#onData(chunk));
    socket.on("end", () => {
      this.#readEnded = true;
      if (this.#inFlight === 0) this.#finish();
    });
    socket.on("error", () => this.close());
    socket.on("close", () => this.#cleanup("closed"));
  }

  close(): void {
    this.#socket.destroy();
    this.#cleanup("closed");
  }

  #finish(): void {
    this.#socket.end();
    this.#cleanup("ended");
  }

  #cleanup(why: "ended" | "closed"): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#pending = undefined;
    this.#hooks.closed(why);
  }

  #arm(ms: number): void {
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      if (this.#closed) return;
      const idle = this.#clock.now() - this.#lastActive;
      if (idle >= this.#idleMs) this.close();
      else this.#arm(this.#idleMs - idle);
    }, ms);
  }

  #onData(chunk: Buffer): void {
    if (this.#closed) return;
    this.#lastActive = this.#clock.now();
    const buf = this.#pending === undefined ? chunk : Buffer.concat([this.#pending, chunk]);
    let at = 0;
    while (buf.length - at >= 2) {
      const length = buf.readUInt16BE(at);
      if (length < HEADER_BYTES || length > DNS_MAX_TCP_QUERY_BYTES) {
        this.close();
        return;
      }
      if (buf.length - at - 2 < length) break;
      const message = buf.subarray(at + 2, at + 2 + length);
      at += 2 + length;
      this.#send(this.#hooks.answer(message));
      if (this.#closed) return;
    }
    this.#pending = at === buf.length ? undefined : buf.subarray(at);
  }

  #send(response: Buffer | Promise<Buffer> | undefined): void {
    if (response === undefined) return;
    if (!(response instanceof Promise)) {
      this.#write(response);
      return;
    }
    this.#inFlight++;
    void response.then((r) => {
      this.#inFlight--;
      this.#write(r);
      if (this.#readEnded && this.#inFlight === 0) this.#finish();
    });
  }

  #write(response: Buffer): void {
    if (this.#closed) return;
    if (this.#socket.writableLength > DNS_MAX_TCP_WRITE_BACKLOG_BYTES) {
      this.close();
      return;
    }
    this.#socket.write(response);
  }
}
