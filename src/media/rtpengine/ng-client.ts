import { randomBytes } from "node:crypto";
import { createSocket, type RemoteInfo, type Socket } from "node:dgram";
import { isIP } from "node:net";
import {
  silentLogger,
  systemClock,
  type Clock,
  type ClockTimer,
  type Logger,
} from "../../sip/index.js";
import { BencodeError, bdecode, bencode, type BencodeValue } from "./bencode.js";
import {
  toNgMediaParams,
  type NgDictionary,
  type NgMediaOptions,
  type NgSdpResult,
  type NgStatistics,
  readStatistics,
  readQuery,
  type NgQueryResult,
} from "./ng-types.js";

/** Per attempt: rtpengine answers on loopback in well under a millisecond. */
export const DEFAULT_NG_TIMEOUT_MS = 500;
/** Attempts before a request fails (the same cookie each time: rtpengine caches its reply). */
export const DEFAULT_NG_ATTEMPTS = 3;

/** rtpengine's reasons for refusing a call over its limits ("Parallel session limit reached"). */
const LIMIT_REASON = /limit (reached|exceeded)|load limit/i;

export type NgErrorCode =
  /** No reply after every attempt. */
  | "NG_TIMEOUT"
  /** rtpengine answered `result: error` (its `error-reason` is the message). */
  | "NG_ERROR"
  /** rtpengine refused for its configured load limits: try another relay. */
  | "NG_LOAD_LIMIT"
  /** The client was stopped with the request pending, or is not started. */
  | "NG_CLOSED"
  /** A reply that is not a bencoded dictionary with a result. */
  | "NG_BAD_REPLY";

/** A request rtpengine refused or did not answer. */
export class NgError extends Error {
  override readonly name = "NgError";
  constructor(
    readonly code: NgErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface NgClientOptions {
  /** The relay's ng control address (an IP literal) and UDP port. */
  readonly address: string;
  readonly port: number;
  readonly timeoutMs?: number;
  readonly attempts?: number;
  readonly clock?: Clock;
  readonly logger?: Logger;
}

interface Pending {
  readonly command: string;
  readonly datagram: Buffer;
  readonly resolve: (reply: NgDictionary) => void;
  readonly reject: (e: NgError) => void;
  attemptsLeft: number;
  timer: ClockTimer | undefined;
}

/**
 * A client of rtpengine's `ng` control protocol
 * (https://rtpengine.readthedocs.io/en/latest/ng_control_protocol.html): each request is
 * `<cookie> <bencoded dictionary>` in one UDP datagram, answered by `<cookie> <dictionary>`;
 * a request without reply is sent again with the same cookie until the attempts run out.
 */
export class NgClient {
  readonly address: string;
  readonly port: number;
  readonly #timeoutMs: number;
  readonly #attempts: number;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #pending = new Map<string, Pending>();
  readonly #cookiePrefix = randomBytes(6).toString("hex");
  #counter = 0;
  #socket: Socket | undefined;

  constructor(options: NgClientOptions) {
    const family = isIP(options.address);
    if (family === 0)
      throw new RangeError(`rtpengine address ${options.address}: not an IP address`);
    if (!Number.isInteger(options.port) || options.port < 1 || options.port > 65535)
      throw new RangeError(`rtpengine port ${options.port}: not a port`);
    this.address = options.address;
    this.port = options.port;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_NG_TIMEOUT_MS;
    this.#attempts = options.attempts ?? DEFAULT_NG_ATTEMPTS;
    this.#clock = options.clock ?? systemClock;
    this.#log = options.logger ?? silentLogger;
  }

  /** `address:port`, how logs and the monitor name the relay. */
  get endpoint(): string {
    return isIP(this.address) === 6
      ? `[${this.address}]:${this.port}`
      : `${this.address}:${this.port}`;
  }

  get pending(): number {
    return this.#pending.size;
  }

  async start(): Promise<void> {
    if (this.#socket !== undefined) return;
    const socket = createSocket(isIP(this.address) === 6 ? "udp6" : "udp4");
    socket.on("message", (msg, rinfo) => this.#onReply(msg, rinfo));
    socket.on("error", (e) => this.#log.warn({ err: e, relay: this.endpoint }, "ng socket error"));
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      // exclusive: in a node:cluster worker a shared socket would hand rtpengine's replies to
      // whichever worker the primary picks, and the one that asked would time out.
      const address = isIP(this.address) === 6 ? "::" : undefined;
      socket.bind(
        { port: 0, ...(address === undefined ? {} : { address }), exclusive: true },
        () => {
          socket.off("error", reject);
          resolve();
        },
      );
    });
    this.#socket = socket;
  }

  async stop(): Promise<void> {
    const socket = this.#socket;
    this.#socket = undefined;
    for (const [cookie, p] of this.#pending) {
      if (p.timer !== undefined) this.#clock.clearTimeout(p.timer);
      this.#pending.delete(cookie);
      p.reject(new NgError("NG_CLOSED", `${p.command}: the ng client stopped`));
    }
    if (socket !== undefined) await new Promise<void>((resolve) => socket.close(() => resolve()));
  }

  /** Any command with its parameters; resolves with the reply when `result` is ok (or pong). */
  request(
    command: string,
    params: Readonly<Record<string, BencodeValue | undefined>> = {},
  ): Promise<NgDictionary> {
    const socket = this.#socket;
    if (socket === undefined)
      return Promise.reject(new NgError("NG_CLOSED", `${command}: the ng client is not started`));
    const cookie = `${this.#cookiePrefix}${(this.#counter++).toString(36)}`;
    const body = bencode({ ...params, command } as Record<string, BencodeValue>);
    const datagram = Buffer.concat([Buffer.from(`${cookie} `, "latin1"), body]);
    return new Promise<NgDictionary>((resolve, reject) => {
      const p: Pending = {
        command,
        datagram,
        resolve,
        reject,
        attemptsLeft: this.#attempts,
        timer: undefined,
      };
      this.#pending.set(cookie, p);
      this.#transmit(cookie, p);
    });
  }

  async ping(): Promise<void> {
    await this.request("ping");
  }

  /** The offer's SDP rewritten to go through the relay. */
  async offer(options: NgMediaOptions & { readonly sdp: string }): Promise<NgSdpResult> {
    return sdpResult(await this.request("offer", toNgMediaParams(options)));
  }

  /** The answer's SDP rewritten; `toTag` names the answering side. */
  async answer(
    options: NgMediaOptions & { readonly sdp: string; readonly toTag: string },
  ): Promise<NgSdpResult> {
    return sdpResult(await this.request("answer", toNgMediaParams(options)));
  }

  /** Ends a call's media (or one side of it, with `toTag`). */
  async delete(options: {
    readonly callId: string;
    readonly fromTag?: string;
    readonly toTag?: string;
    /** Seconds rtpengine keeps the call after the delete (0: at once). */
    readonly deleteDelayS?: number;
  }): Promise<NgDictionary> {
    return this.request("delete", {
      "call-id": options.callId,
      "from-tag": options.fromTag,
      "to-tag": options.toTag,
      "delete delay": options.deleteDelayS,
    });
  }

  async query(options: {
    readonly callId: string;
    readonly fromTag?: string;
  }): Promise<NgQueryResult> {
    return readQuery(
      await this.request("query", { "call-id": options.callId, "from-tag": options.fromTag }),
    );
  }

  async statistics(): Promise<NgStatistics> {
    return readStatistics(await this.request("statistics"));
  }

  /** The Call-IDs rtpengine holds (at most `limit`). */
  async list(limit = 32): Promise<string[]> {
    const reply = await this.request("list", { limit });
    const calls = reply["calls"];
    if (!Array.isArray(calls)) throw new NgError("NG_BAD_REPLY", "list: no calls in the reply");
    return calls.filter((c): c is string => typeof c === "string");
  }

  #transmit(cookie: string, p: Pending): void {
    const socket = this.#socket;
    if (socket === undefined) return;
    p.attemptsLeft--;
    socket.send(p.datagram, this.port, this.address, (e) => {
      if (e !== null && e !== undefined)
        this.#log.warn({ err: e, relay: this.endpoint, command: p.command }, "ng send failed");
    });
    p.timer = this.#clock.setTimeout(() => {
      p.timer = undefined;
      if (!this.#pending.has(cookie)) return;
      if (p.attemptsLeft > 0) {
        this.#log.debug({ relay: this.endpoint, command: p.command }, "ng retransmission");
        this.#transmit(cookie, p);
        return;
      }
      this.#pending.delete(cookie);
      p.reject(
        new NgError(
          "NG_TIMEOUT",
          `${p.command}: no reply from rtpengine at ${this.endpoint} after ${this.#attempts} attempts`,
        ),
      );
    }, this.#timeoutMs);
  }

  #onReply(msg: Buffer, rinfo: RemoteInfo): void {
    if (rinfo.port !== this.port || !sameAddress(rinfo.address, this.address)) return;
    const space = msg.indexOf(0x20);
    if (space <= 0) return;
    const cookie = msg.toString("latin1", 0, space);
    const p = this.#pending.get(cookie);
    if (p === undefined) return; // a late reply to a retransmission
    this.#pending.delete(cookie);
    if (p.timer !== undefined) this.#clock.clearTimeout(p.timer);
    let reply: BencodeValue;
    try {
      reply = bdecode(msg.subarray(space + 1));
    } catch (e) {
      const why = e instanceof BencodeError ? e.message : String(e);
      p.reject(
        new NgError("NG_BAD_REPLY", `${p.command}: reply is not bencoding (${why})`, { cause: e }),
      );
      return;
    }
    if (reply === null || typeof reply !== "object" || Array.isArray(reply)) {
      p.reject(new NgError("NG_BAD_REPLY", `${p.command}: reply is not a dictionary`));
      return;
    }
    const result = reply["result"];
    if (result === "ok" || result === "pong") {
      if (typeof reply["warning"] === "string")
        this.#log.warn(
          { relay: this.endpoint, command: p.command, warning: reply["warning"] },
          "rtpengine warning",
        );
      p.resolve(reply);
    } else if (result === "load limit") {
      const message = reply["message"];
      const text = typeof message === "string" ? message : "load limit";
      p.reject(
        new NgError("NG_LOAD_LIMIT", `${p.command}: rtpengine at ${this.endpoint}: ${text}`),
      );
    } else if (result === "error") {
      const reason = reply["error-reason"];
      const text = typeof reason === "string" ? reason : "rtpengine refused";
      // rtpengine 10.5 reports its session and load limits as errors; later versions as
      // `load limit`. Either way the call belongs on another relay.
      const code = LIMIT_REASON.test(text) ? "NG_LOAD_LIMIT" : "NG_ERROR";
      p.reject(new NgError(code, `${p.command}: ${text}`));
    } else {
      p.reject(new NgError("NG_BAD_REPLY", `${p.command}: reply has no known result`));
    }
  }
}

function sdpResult(reply: NgDictionary): NgSdpResult {
  const sdp = reply["sdp"];
  if (typeof sdp !== "string") throw new NgError("NG_BAD_REPLY", "reply without sdp");
  const warning = reply["warning"];
  return { sdp, ...(typeof warning === "string" ? { warning } : {}) };
}

function sameAddress(a: string, b: string): boolean {
  return a === b || a === `::ffff:${b}` || b === `::ffff:${a}`;
}
