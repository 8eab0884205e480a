import { SipParseError } from "../errors.js";
import { DEFAULT_PARSE_LIMITS, type ParseLimits } from "./limits.js";
import type { SipMessage } from "./message.js";
import { finishFramedMessage, scanHead, type HeadScan } from "./parse.js";

/** What a stream framer yields, in the order the bytes arrived. */
export type FramedItem =
  | { readonly kind: "message"; readonly message: SipMessage }
  /**
   * A framed message that failed its checks. The stream goes on unless `error.fatal`: then
   * the framing is lost and the connection must be closed. `bytes` are what was received of
   * it, for building the error response.
   */
  | { readonly kind: "error"; readonly error: SipParseError; readonly bytes: Buffer }
  /** RFC 5626 §4.4.1: a double CRLF from a client; the server answers with one CRLF. */
  | { readonly kind: "ping" }
  /** RFC 5626 §4.4.1: a single CRLF, the server's answer to a ping (client framers). */
  | { readonly kind: "pong" };

export interface StreamFramerOptions {
  readonly limits?: ParseLimits;
  /**
   * "server" for a connection the peer opened (it pings us), "client" for one we opened
   * (we get pongs). RFC 5626 §4.4.1.
   */
  readonly role?: "server" | "client";
}

const INITIAL_CAPACITY = 4096;
const CRLFCRLF = Buffer.from("\r\n\r\n", "latin1");

/**
 * Splits a byte stream (TCP, TLS) into SIP messages by Content-Length (RFC 3261 §18.3), for
 * chunks of any size: several messages in one chunk, one message over many chunks, one byte
 * at a time. Buffering is bounded by `limits.maxMessageBytes`, and each byte is scanned a
 * bounded number of times however the stream is cut.
 */
export class StreamFramer {
  readonly #limits: ParseLimits;
  #buf = Buffer.allocUnsafe(INITIAL_CAPACITY);
  #len = 0;
  /** Where the search for the empty line resumes. */
  #scanFrom = 0;
  #pending: { scan: HeadScan; total: number } | undefined;
  #failed: SipParseError | undefined;
  readonly #role: "server" | "client";
  /** A lone CRLF is buffered until the next byte says whether it starts a ping. */
  #waitingForCrlf = false;

  constructor(options: StreamFramerOptions = {}) {
    this.#limits = options.limits ?? DEFAULT_PARSE_LIMITS;
    this.#role = options.role ?? "server";
  }

  /** Bytes received but not yet part of a whole message. */
  get buffered(): number {
    return this.#len;
  }

  /** Part of a message (not a keep-alive CRLF) waits for the rest. */
  get inMessage(): boolean {
    return this.#len > 0 && !this.#waitingForCrlf;
  }

  /** The fatal error that stopped this stream, if any. */
  get failure(): SipParseError | undefined {
    return this.#failed;
  }

  /** Feeds a chunk; returns what became whole. After a fatal error, returns nothing. */
  push(chunk: Uint8Array): FramedItem[] {
    const items: FramedItem[] = [];
    if (this.#failed !== undefined) return items;
    this.#append(chunk);
    for (;;) {
      if (this.#pending === undefined) {
        if (this.#takeKeepAlive(items)) continue;
        if (this.#len === 0 || this.#waitingForCrlf) break;
        const head = this.#frameHead(items);
        if (head === "wait" || head === "failed") break;
      }
      const pending = this.#pending!;
      if (this.#len < pending.total) break;
      const bytes = Buffer.allocUnsafe(pending.total);
      this.#buf.copy(bytes, 0, 0, pending.total);
      this.#consume(pending.total);
      this.#pending = undefined;
      try {
        items.push({
          kind: "message",
          message: finishFramedMessage(pending.scan, bytes, this.#limits),
        });
      } catch (e) {
        if (!(e instanceof SipParseError)) throw e;
        items.push({ kind: "error", error: e, bytes });
      }
    }
    return items;
  }

  /**
   * RFC 3261 §7.5: CRLFs between messages are not messages. RFC 5626 §4.4.1: the side that
   * opened the connection sends double-CRLF pings and the other answers with single-CRLF
   * pongs. A server framer reports each double CRLF as a ping and skips a lone CRLF (waiting
   * for the next byte to tell which it is); a client framer reports each CRLF as a pong.
   */
  #takeKeepAlive(items: FramedItem[]): boolean {
    const b = this.#buf;
    this.#waitingForCrlf = false;
    if (this.#len < 2 || b[0] !== 0x0d || b[1] !== 0x0a) return false;
    if (this.#role === "client") {
      items.push({ kind: "pong" });
      this.#consume(2);
      return true;
    }
    if (this.#len < 4 && (this.#len === 2 || b[2] === 0x0d)) {
      // Not yet known whether a second CRLF follows: wait for more bytes.
      this.#waitingForCrlf = true;
      return false;
    }
    if (b[2] === 0x0d && b[3] === 0x0a) {
      items.push({ kind: "ping" });
      this.#consume(4);
    } else {
      this.#consume(2);
    }
    return true;
  }

  #frameHead(items: FramedItem[]): "ready" | "wait" | "failed" {
    const view = this.#buf.subarray(0, this.#len);
    const blank = view.indexOf(CRLFCRLF, this.#scanFrom);
    if (blank < 0) {
      this.#scanFrom = Math.max(0, this.#len - 3);
      if (this.#len > this.#limits.maxMessageBytes) {
        this.#fail(items, "SIP_ERR_MESSAGE_TOO_LARGE", "Message Too Large", 513);
        return "failed";
      }
      return "wait";
    }
    let scan: HeadScan;
    try {
      scan = scanHead(view, blank + 2, this.#limits);
    } catch (e) {
      if (!(e instanceof SipParseError)) throw e;
      this.#failWith(items, e.asFatal());
      return "failed";
    }
    const fields = scan.fields.filter((f) => f.key === "content-length");
    const status = scan.request ? 400 : undefined;
    if (fields.length !== 1 || !/^\d{1,10}$/.test(fields[0]!.value)) {
      this.#fail(
        items,
        "SIP_ERR_CONTENT_LENGTH",
        fields.length === 0
          ? "Content-Length is required on a stream"
          : fields.length > 1
            ? "Multiple Content-Length header fields"
            : "Malformed Content-Length",
        status,
      );
      return "failed";
    }
    const total = blank + 4 + Number(fields[0]!.value);
    if (total > this.#limits.maxMessageBytes) {
      this.#fail(
        items,
        "SIP_ERR_MESSAGE_TOO_LARGE",
        "Message Too Large",
        scan.request ? 513 : undefined,
      );
      return "failed";
    }
    this.#pending = { scan, total };
    return "ready";
  }

  #fail(
    items: FramedItem[],
    code: "SIP_ERR_CONTENT_LENGTH" | "SIP_ERR_MESSAGE_TOO_LARGE",
    message: string,
    status: number | undefined,
  ): void {
    this.#failWith(items, new SipParseError(code, message, { status, fatal: true }));
  }

  #failWith(items: FramedItem[], error: SipParseError): void {
    this.#failed = error;
    items.push({ kind: "error", error, bytes: Buffer.from(this.#buf.subarray(0, this.#len)) });
    this.#len = 0;
    this.#buf = Buffer.allocUnsafe(0);
  }

  #append(chunk: Uint8Array): void {
    const needed = this.#len + chunk.length;
    if (needed > this.#buf.length) {
      let capacity = Math.max(this.#buf.length, INITIAL_CAPACITY);
      while (capacity < needed) capacity *= 2;
      const grown = Buffer.allocUnsafe(capacity);
      this.#buf.copy(grown, 0, 0, this.#len);
      this.#buf = grown;
    }
    this.#buf.set(chunk, this.#len);
    this.#len = needed;
  }

  #consume(n: number): void {
    this.#buf.copy(this.#buf, 0, n, this.#len);
    this.#len -= n;
    this.#scanFrom = 0;
    if (this.#len === 0 && this.#buf.length > 4 * INITIAL_CAPACITY) {
      this.#buf = Buffer.allocUnsafe(INITIAL_CAPACITY);
    }
  }
}
