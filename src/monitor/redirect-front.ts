import {
  SipParseError,
  SipUri,
  TransportError,
  TransportLayer,
  parseTransactionOptions,
  parseUri,
  randomToken,
  reasonPhrase,
  silentLogger,
  systemClock,
  type BoundListener,
  type Clock,
  type FlowInfo,
  type InboundMessage,
  type ListenerOptions,
  type Logger,
  type SipRequest,
  type TransactionOptionsInput,
  type Via,
} from "../sip/index.js";
import { AnswerCache, MIN_ANSWER_CACHE_BYTES } from "./answer-cache.js";
import type { SelectAnswer, Transport } from "./selector.js";

/** Seconds a client waits before asking again when no proxy is eligible. */
export const SIP_NO_PROXY_RETRY_AFTER_S = 1;

/** Methods the front answers itself; every other one is redirected. */
const ALLOW = "INVITE, ACK, CANCEL, OPTIONS, BYE, REGISTER, SUBSCRIBE, NOTIFY, MESSAGE, REFER";
const OPTIONS_HEADERS = `Allow: ${ALLOW}\r\nAccept: application/sdp\r\n`;
const NO_PROXY_HEADERS = `Retry-After: ${SIP_NO_PROXY_RETRY_AFTER_S}\r\n`;
/** Contact q-values by rank (RFC 3261 §20.10): 1.0, 0.9 … 0.1, then 0.0. */
const Q_VALUES = Array.from({ length: 11 }, (_, i) => Math.max(0, 1 - i / 10).toFixed(1));
/** Stands for the user while a proxy URI is split around it; never in a parsed URI. */
const USER_SLOT = "\u0000";
/** Proxy URIs remembered as contact templates; the table holds a handful. */
const MAX_TEMPLATES = 256;

export interface RedirectFrontOptions {
  /** UDP and/or TCP listeners (port 0: a free port). */
  readonly listen: readonly ListenerOptions[];
  /** CIDR blocks responses may be sent to. */
  readonly allowedDestinations: readonly string[];
  /** The ranking (Selector.select): the first choice is recorded as a send. */
  readonly select: (transport: Transport) => SelectAnswer | undefined;
  /**
   * On-query collection before ranking: a promise (bounded by the monitor) to wait for, or
   * undefined when no collection is due, which answers at once.
   */
  readonly freshen?: (transport: Transport) => Promise<void> | undefined;
  /** No eligible proxy: the front answered 503. */
  readonly onNoProxy?: (transport: Transport) => void;
  /** T1 (tests shorten it): answers are kept 64 × T1, as long as a client resends. */
  readonly timers?: TransactionOptionsInput;
  /** Bytes of answers kept for retransmitted requests (default DEFAULT_ANSWER_CACHE_BYTES). */
  readonly answerCacheBytes?: number;
  readonly clock?: Clock;
  readonly logger?: Logger;
}

/** A request waiting for on-query collection before it is answered. */
class PendingRequest {
  cancelled = false;
  constructor(
    readonly request: SipRequest,
    readonly via: Via,
    readonly flowId: string,
    readonly callId: string,
  ) {}
}

/** A proxy URI split where the Request-URI's user goes (`sip:` + user + `@127.0.0.11:5060`). */
interface ContactTemplate {
  readonly bare: string;
  /** Undefined for a URI that takes no user (not sip/sips). */
  readonly beforeUser: string | undefined;
  readonly afterUser: string;
}

/**
 * The monitor's SIP redirect front (DESIGN.md "Client query", RFC 3261 §8.3 and §21.3.3): a
 * request that opens a transaction is answered `302 Moved Temporarily` with the ranked proxies
 * as Contacts (q-values descending), each keeping the Request-URI's user.
 *
 * It is a stateless UAS (RFC 3261 §8.2.7), as Kamailio's redirect servers are: it answers the
 * transport layer's messages at once, without server transactions and their timers, which
 * cost more than the redirect itself. A retransmitted request (same branch, source and
 * Call-ID) gets the very bytes of its first answer again from a cache of recent answers (see
 * AnswerCache: fixed memory, 64 × T1 at most, the longest a client retransmits), so it is not
 * a second send to the selector. Over UDP the 302 is not retransmitted by us: the client's
 * INVITE retransmissions fetch it again, and its ACK is absorbed. CANCEL gets 200 when it
 * matches an answered or pending request, else 481 (§9.2); a request pending while
 * on-query collection is awaited is answered 487 instead when cancelled. Responses go where
 * §18.2.2 and RFC 3581 say (the transport stamps `received` and `rport`).
 */
export class RedirectFront {
  readonly #o: RedirectFrontOptions;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #answerMaxAgeMs: number;
  #transport: TransportLayer | undefined;
  /** Answers sent, for retransmitted requests (while started). */
  #answers: AnswerCache | undefined;
  /** Requests waiting for `freshen`, by branch. */
  readonly #pending = new Map<string, PendingRequest>();
  readonly #templates = new Map<string, ContactTemplate>();

  constructor(options: RedirectFrontOptions) {
    this.#o = options;
    this.#log = (options.logger ?? silentLogger).child({ component: "redirect-front" });
    this.#clock = options.clock ?? systemClock;
    this.#answerMaxAgeMs = 64 * parseTransactionOptions(options.timers).t1Ms;
    const bytes = options.answerCacheBytes;
    if (bytes !== undefined && (!Number.isInteger(bytes) || bytes < MIN_ANSWER_CACHE_BYTES)) {
      throw new RangeError(
        `answerCacheBytes: must be an integer of at least ${MIN_ANSWER_CACHE_BYTES}, got ${bytes}`,
      );
    }
  }

  /** The listeners as bound (after start). */
  get listeners(): readonly BoundListener[] {
    if (this.#transport === undefined) throw new Error("redirect front not started");
    return this.#transport.boundListeners;
  }

  /** Answers kept for retransmitted requests now. */
  get cachedAnswers(): number {
    return this.#answers?.size ?? 0;
  }

  async start(): Promise<void> {
    const answers = new AnswerCache({
      ...(this.#o.answerCacheBytes === undefined ? {} : { bytes: this.#o.answerCacheBytes }),
      maxAgeMs: this.#answerMaxAgeMs,
      clock: this.#clock,
    });
    const transport = new TransportLayer(
      { listen: [...this.#o.listen], allowedDestinations: [...this.#o.allowedDestinations] },
      // ACKs are absorbed (see #onMessage) before they cost a parse: half of what arrives.
      { clock: this.#clock, logger: this.#log, screen: isNotAck },
    );
    this.#transport = transport;
    this.#answers = answers;
    transport.on("message", this.#onMessage);
    try {
      await transport.start();
    } catch (e) {
      this.#transport = undefined;
      this.#answers = undefined;
      throw e;
    }
  }

  async stop(): Promise<void> {
    this.#answers = undefined;
    this.#pending.clear();
    const transport = this.#transport;
    this.#transport = undefined;
    if (transport !== undefined) {
      transport.off("message", this.#onMessage);
      await transport.stop();
    }
  }

  readonly #onMessage = ({ message, flow }: InboundMessage): void => {
    // A stateless UAS sends no request, so a response is nobody's: dropped.
    if (message.type !== "request") return;
    const method = message.method;
    // RFC 3261 §17.2.1: the ACK for a non-2xx final response belongs to the INVITE's
    // transaction and ends it; nothing answers it.
    if (method === "ACK") return;
    const via = message.topVia!;
    const branch = via.branch;
    try {
      if (branch !== undefined && this.#matched(message, via, branch, flow)) return;
      if (method === "CANCEL") {
        // RFC 3261 §9.2: "If the UAS did not find a matching transaction for the CANCEL
        // according to the procedure above, it SHOULD respond to the CANCEL with a 481".
        this.#send(this.#response(message, 481, "", randomToken(6)), via, flow);
        return;
      }
      if (method === "OPTIONS") {
        this.#answer(message, via, branch, flow, 200, OPTIONS_HEADERS);
        return;
      }
      // RFC 3261 §16.3 step 3 / §8.2: a request that cannot go further is refused with 483.
      if (message.maxForwards === 0) {
        this.#answer(message, via, branch, flow, 483, "");
        return;
      }
      const transport: Transport = flow.protocol === "udp" ? "udp" : "tcp";
      const waiting = this.#o.freshen?.(transport);
      if (waiting === undefined) {
        this.#redirect(message, via, branch, flow, transport);
        return;
      }
      const pending = new PendingRequest(message, via, flow.id, message.callId);
      if (branch !== undefined) this.#pending.set(branch, pending);
      waiting.then(
        () => {
          if (branch !== undefined && this.#pending.get(branch) === pending) {
            this.#pending.delete(branch);
          }
          if (pending.cancelled || this.#transport === undefined) return;
          this.#guarded(message, via, flow, () =>
            this.#redirect(message, via, branch, flow, transport),
          );
        },
        (e: unknown) => {
          if (branch !== undefined) this.#pending.delete(branch);
          this.#failed(e, message, via, flow);
        },
      );
    } catch (e) {
      this.#failed(e, message, via, flow);
    }
  };

  /**
   * A request whose branch was seen: a retransmission gets its answer again, a CANCEL its 200
   * (and a pending INVITE its 487). True when it is handled.
   */
  #matched(request: SipRequest, via: Via, branch: string, flow: FlowInfo): boolean {
    const method = request.method;
    const answered = this.#answers?.find(branch, request.callId, flow.id);
    if (answered !== undefined) {
      if (answered.method === method) {
        this.#send(answered.bytes, via, flow);
        return true;
      }
      if (method === "CANCEL") {
        // §9.2: "the To tag of the response to the CANCEL should be the same as the To tag
        // in the response to the original request"; that one is final already, no 487.
        this.#send(this.#response(request, 200, "", toTagOf(answered.bytes)), via, flow);
        return true;
      }
    }
    if (this.#pending.size === 0) return false;
    const pending = this.#pending.get(branch);
    if (pending === undefined || pending.flowId !== flow.id || pending.callId !== request.callId) {
      return false;
    }
    const original = pending.request;
    if (method === original.method) return true; // A retransmission while we wait.
    if (method !== "CANCEL") return false;
    // §9.2: "the UAS SHOULD respond to the INVITE with a 487 (Request Terminated)" (any
    // pending request, here; the original is answered when the CANCEL is).
    const toTag = randomToken(6);
    this.#send(this.#response(request, 200, "", toTag), via, flow);
    pending.cancelled = true;
    this.#pending.delete(branch);
    const terminated = this.#response(original, 487, "", toTag);
    this.#answers?.put(branch, pending.callId, flow.id, original.method, terminated);
    this.#send(terminated, pending.via, flow);
    return true;
  }

  #redirect(
    request: SipRequest,
    via: Via,
    branch: string | undefined,
    flow: FlowInfo,
    transport: Transport,
  ): void {
    const answer = this.#o.select(transport);
    if (answer === undefined) {
      this.#o.onNoProxy?.(transport);
      this.#answer(request, via, branch, flow, 503, NO_PROXY_HEADERS);
      return;
    }
    const uri = request.uri;
    const user = uri instanceof SipUri ? uri.user : undefined;
    let contacts = this.#contact(answer.uri, user, 0);
    const alternates = answer.alternates;
    for (let i = 0; i < alternates.length; i++) {
      contacts += this.#contact(alternates[i]!.uri, user, i + 1);
    }
    if (this.#log.isLevelEnabled("debug")) {
      this.#log.debug({ callId: request.callId, proxy: answer.proxy }, "redirected");
    }
    this.#answer(request, via, branch, flow, 302, contacts);
  }

  /** One Contact line: the proxy's URI with the Request-URI's user, q by rank. */
  #contact(proxyUri: string, user: string | undefined, rank: number): string {
    let template = this.#templates.get(proxyUri);
    if (template === undefined) {
      if (this.#templates.size >= MAX_TEMPLATES) this.#templates.clear();
      template = contactTemplate(proxyUri);
      this.#templates.set(proxyUri, template);
    }
    const target =
      user === undefined || template.beforeUser === undefined
        ? template.bare
        : template.beforeUser + user + template.afterUser;
    return `Contact: <${target}>;q=${Q_VALUES[Math.min(rank, 10)]!}\r\n`;
  }

  /** Sends a final answer with a new To tag and keeps it for the request's retransmissions. */
  #answer(
    request: SipRequest,
    via: Via,
    branch: string | undefined,
    flow: FlowInfo,
    status: number,
    headers: string,
  ): void {
    const toTag = randomToken(6);
    const bytes = this.#response(request, status, headers, toTag);
    if (branch !== undefined) {
      this.#answers?.put(branch, request.callId, flow.id, request.method, bytes);
    }
    this.#send(bytes, via, flow);
  }

  /**
   * A response to `request` (RFC 3261 §8.2.6.2): its Vias, From, To (with `toTag` when it has
   * none), Call-ID and CSeq, then `headers` (whole lines), and no body. Built as one string:
   * the values are byte strings already, copied as received (the top Via as stamped).
   */
  #response(
    request: SipRequest,
    status: number,
    headers: string,
    toTag: string | undefined,
  ): Buffer {
    let head = `SIP/2.0 ${status} ${reasonPhrase(status)}\r\n`;
    let rest = "";
    for (const f of request.fields) {
      switch (f.key) {
        case "via":
          head += `Via: ${f.value}\r\n`;
          break;
        case "from":
          rest += `From: ${f.value}\r\n`;
          break;
        case "to":
          rest +=
            toTag === undefined || request.to.tag !== undefined
              ? `To: ${f.value}\r\n`
              : `To: ${f.value};tag=${toTag}\r\n`;
          break;
        case "call-id":
          rest += `Call-ID: ${f.value}\r\n`;
          break;
        case "cseq":
          rest += `CSeq: ${f.value}\r\n`;
          break;
      }
    }
    return Buffer.from(`${head}${rest}${headers}Content-Length: 0\r\n\r\n`, "latin1");
  }

  #send(bytes: Buffer, via: Via, flow: FlowInfo): void {
    const transport = this.#transport;
    if (transport === undefined) return;
    if (transport.sendResponseBytesNow(bytes, via, flow) !== undefined) return;
    // A TCP connection closed before its answer: §18.2.2 opens one to the client.
    transport.sendResponseBytes(bytes, via, flow).catch((e: unknown) => {
      this.#log.debug({ err: e, flow: flow.id }, "answer not sent");
    });
  }

  #guarded(request: SipRequest, via: Via, flow: FlowInfo, answer: () => void): void {
    try {
      answer();
    } catch (e) {
      this.#failed(e, request, via, flow);
    }
  }

  /**
   * A refused destination or a malformed header is the peer's doing (dropped, as the transport
   * drops what a listener finds malformed); anything else is ours, answered 500.
   */
  #failed(e: unknown, request: SipRequest, via: Via, flow: FlowInfo): void {
    if (e instanceof TransportError || e instanceof SipParseError) {
      this.#log.debug({ err: e, flow: flow.id }, "answer not sent");
      return;
    }
    this.#log.error({ err: e }, "redirect failed");
    try {
      this.#send(this.#response(request, 500, "", randomToken(6)), via, flow);
    } catch (again) {
      this.#log.debug({ err: again, flow: flow.id }, "500 not sent");
    }
  }
}

/** The To tag in an answer we built (our own "To: " line), if any. */
function toTagOf(bytes: Buffer): string | undefined {
  const text = bytes.toString("latin1");
  const start = text.indexOf("\r\nTo: ");
  if (start < 0) return undefined;
  const line = text.slice(start + 2, text.indexOf("\r\n", start + 2));
  return /;\s*tag\s*=\s*([^;\s]+)/i.exec(line)?.[1];
}

/** False for a message starting "ACK ": the transport drops it unparsed. */
function isNotAck(bytes: Buffer): boolean {
  return !(bytes[0] === 0x41 && bytes[1] === 0x43 && bytes[2] === 0x4b && bytes[3] === 0x20);
}

function contactTemplate(proxyUri: string): ContactTemplate {
  const target = parseUri(proxyUri);
  const bare = target.toString();
  if (!(target instanceof SipUri)) return { bare, beforeUser: undefined, afterUser: "" };
  const marked = target.with({ user: USER_SLOT }).toString();
  const at = marked.indexOf(USER_SLOT);
  return { bare, beforeUser: marked.slice(0, at), afterUser: marked.slice(at + 1) };
}
