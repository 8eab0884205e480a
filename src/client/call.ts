import { EventEmitter } from "node:events";
import {
  SipRequest,
  SipResponseError,
  answerChallenge,
  createCancel,
  createResponse,
  newBranch,
  randomToken,
  readChallenge,
  type Clock,
  type ClockTimer,
  type FlowInfo,
  type InviteServerTransaction,
  type Logger,
  type Protocol,
  type SendTarget,
  type SentMessage,
  type ServerTransaction,
  type SipResponse,
  type TransactionLayer,
  type TransportLayer,
} from "../sip/index.js";
import { Dialog } from "./dialog.js";
import { CallEndedError, CallStateError, MediaRejectedError, type CallEnd } from "./errors.js";
import type { MediaSession } from "./media-session.js";

const SDP = "application/sdp";

/** What a call needs from its user agent (the UserAgent implements it). */
export interface CallHost {
  readonly transactions: TransactionLayer;
  readonly transport: TransportLayer;
  readonly clock: Clock;
  readonly log: Logger;
  readonly t1Ms: number;
  readonly t2Ms: number;
  readonly user: string;
  readonly password: string;
  readonly domain: string;
  readonly userAgentName: string;
  /** The transport out-of-dialog requests use (and URIs without a transport parameter). */
  readonly protocol: Protocol;
  /** Our Contact URI. */
  contact(): string;
  /** The proxy out-of-dialog requests go to (the registered one), with its name. */
  proxy(): { target: SendTarget; name: string } | undefined;
  /**
   * The proxy failed an INVITE (timeout, 503): move to another; the new proxy, or undefined
   * when none could be reached.
   */
  failover(reason: string): Promise<{ target: SendTarget; name: string } | undefined>;
  /** The call ended: forget it. */
  forget(call: Call): void;
}

export type CallDirection = "outgoing" | "incoming";
/**
 * `calling` (INVITE sent, nothing back), `ringing` (180, or an incoming call not yet
 * answered), `early` (early media: 183 with SDP), `answered` (2xx), `ended`.
 */
export type CallState = "calling" | "ringing" | "early" | "answered" | "ended";

export interface CallEvents {
  /** 180 (outgoing), or the 180 we sent (incoming). */
  ringing: [];
  /** Early media: a 183 carried the answer, given to the media session. */
  early: [];
  answered: [];
  ended: [CallEnd];
}

export interface CallOptions {
  /** The call's media; an incoming call gets it in answer(). */
  readonly media?: MediaSession;
  /** Extra headers for the INVITE. */
  readonly headers?: readonly [string, string][];
}

/** RFC 3261 §8.1.3.4 / §21.5.4: what means "this proxy failed", not "the callee said no". */
function proxyFailed(status: number): boolean {
  return status === 408 || status === 503;
}

/**
 * One call (RFC 3261 §13–§15): placed by UserAgent.call (outgoing) or arriving in its
 * `incoming` event. Outgoing: INVITE through the registered proxy, digest on 401/407,
 * provisionals, early media (183 with SDP), 2xx → ACK and the dialog; on a timeout or 503 of
 * the proxy the agent moves to another proxy and the INVITE is tried there once more.
 * Incoming: 180 at once, then answer() (200 with the media's answer, retransmitted until the
 * ACK, §13.3.1.4) or reject(). Either side: hangup() (BYE, or CANCEL/decline before an
 * answer); a BYE from the peer ends it.
 */
export class Call extends EventEmitter<CallEvents> {
  readonly direction: CallDirection;
  readonly callId: string;
  /** The peer's URI (outgoing: the Request-URI; incoming: the From URI). */
  readonly remoteUri: string;
  /** The proxy the call went through (its id or host:port). */
  proxyName: string | undefined;
  /** INVITE sent → 2xx received, ms (outgoing calls). */
  setupMs: number | undefined;
  #state: CallState;
  #media: MediaSession | undefined;
  readonly #host: CallHost;
  #dialog: Dialog | undefined;
  #end: CallEnd | undefined;
  readonly #ended: Promise<CallEnd>;
  #resolveEnded!: (end: CallEnd) => void;
  readonly #answered: Promise<void>;
  #resolveAnswered!: () => void;
  #rejectAnswered!: (e: CallEndedError) => void;
  #mediaStopped = false;

  // ---- outgoing state ----
  #invite: SipRequest | undefined;
  #inviteTarget: SendTarget | undefined;
  #startedAt = 0;
  /** Any 1xx came (a CANCEL may go now, §9.1). */
  #provisional = false;
  /** A 1xx other than 100 came: the callee was reached, so a failure is not the proxy's. */
  #reached = false;
  #cancelWanted = false;
  #cancelSent = false;
  #answerTaken = false;
  #ack: SentMessage | undefined;
  #authorization: [string, string] | undefined;
  readonly #fromTag = randomToken(8);
  #cseq = 1;

  // ---- incoming state ----
  #serverTx: InviteServerTransaction | undefined;
  #request: SipRequest | undefined;
  #localTag: string | undefined;
  #ok: SipResponse | undefined;
  #retransmit: ClockTimer | undefined;
  #giveUp: ClockTimer | undefined;
  #offerInOk = false;

  /** @internal Made by UserAgent (call(), or an incoming INVITE). */
  constructor(
    host: CallHost,
    init:
      | { direction: "outgoing"; target: string; options: CallOptions }
      | { direction: "incoming"; tx: InviteServerTransaction; request: SipRequest },
  ) {
    super();
    this.#host = host;
    this.direction = init.direction;
    this.#ended = new Promise((resolve) => (this.#resolveEnded = resolve));
    this.#answered = new Promise((resolve, reject) => {
      this.#resolveAnswered = resolve;
      this.#rejectAnswered = reject;
    });
    // Whoever does not await it must not see an unhandled rejection.
    this.#answered.catch(() => undefined);
    if (init.direction === "outgoing") {
      this.callId = `${randomToken(16)}@sipsteer-client`;
      this.remoteUri = init.target;
      this.#media = init.options.media;
      this.#state = "calling";
    } else {
      this.#serverTx = init.tx;
      this.#request = init.request;
      this.callId = init.request.callId;
      this.remoteUri = init.request.from.uri.toString();
      this.#localTag = randomToken(8);
      this.#state = "ringing";
    }
  }

  get state(): CallState {
    return this.#state;
  }

  /** The dialog once answered (Call-ID, tags, route set, remote target). */
  get dialog(): Dialog | undefined {
    return this.#dialog;
  }

  /** The peer's SDP offer of an incoming call (empty when the INVITE had none). */
  get remoteOffer(): string {
    return this.#request?.body.toString("utf8") ?? "";
  }

  /** True once ended (a method, so that checks after an await are not narrowed away). */
  #over(): boolean {
    return this.#state === "ended";
  }

  /** Resolves when the call is answered; rejects with CallEndedError when it ends first. */
  whenAnswered(): Promise<void> {
    return this.#answered;
  }

  /** Resolves with how the call ended. */
  whenEnded(): Promise<CallEnd> {
    return this.#ended;
  }

  // ---- outgoing --------------------------------------------------------------------------

  /** @internal Sends the INVITE (UserAgent.call starts it). */
  async place(extraHeaders: readonly [string, string][] = []): Promise<void> {
    try {
      const proxy = this.#host.proxy();
      if (proxy === undefined) {
        this.#finish({ reason: "failed", status: 503, message: "not registered at any proxy" });
        return;
      }
      const offer = this.#media === undefined ? "" : await this.#media.localOffer();
      if (this.#over()) return;
      let target = proxy;
      let failedOver = false;
      let challenged = false;
      for (;;) {
        this.proxyName = target.name;
        const response = await this.#sendInvite(target.target, offer, extraHeaders);
        if (this.#over() || response === undefined) return;
        const status = response.status;
        if (status < 300) return; // The 2xx went through #onResponse.
        if ((status === 401 || status === 407) && !challenged && !this.#cancelWanted) {
          const authorization = this.#authorize(response, "INVITE", this.#invite!.uri.toString());
          if (authorization !== undefined) {
            challenged = true;
            this.#authorization = authorization;
            continue;
          }
        }
        if (this.#cancelWanted) {
          this.#finish({ reason: "cancelled", status, message: `cancelled (${status})` });
          return;
        }
        if (proxyFailed(status) && !failedOver && !this.#reached) {
          failedOver = true;
          this.#host.log.warn(
            { callId: this.callId, proxy: target.name, status },
            "INVITE failed at the proxy; moving",
          );
          const next = await this.#host.failover(
            `INVITE to ${target.name} got ${status} ${response.reason}`,
          );
          if (this.#over()) return;
          if (next !== undefined) {
            target = next;
            // Credentials are per proxy nonce: the next proxy challenges afresh.
            this.#authorization = undefined;
            challenged = false;
            continue;
          }
        }
        if (status === 487) {
          this.#finish({ reason: "cancelled", status, message: "cancelled before an answer" });
        } else if (proxyFailed(status)) {
          const message = response.reason.replace(/^local:/, "");
          this.#finish({ reason: "failed", status, message: `${target.name}: ${message}` });
        } else {
          this.#finish({ reason: "rejected", status, message: `${status} ${response.reason}` });
        }
        return;
      }
    } catch (e) {
      this.#host.log.error({ err: e, callId: this.callId }, "call failed");
      this.#finish({ reason: "failed", message: e instanceof Error ? e.message : String(e) });
    }
  }

  /**
   * One INVITE in a client transaction; its final response (a timeout or transport failure
   * as a response with a reason starting "local:"), undefined when the call ended meanwhile.
   */
  async #sendInvite(
    target: SendTarget,
    offer: string,
    extraHeaders: readonly [string, string][],
  ): Promise<SipResponse | undefined> {
    const host = this.#host;
    const uri = this.remoteUri;
    const invite = new SipRequest({
      method: "INVITE",
      uri,
      headers: [
        ["Max-Forwards", "70"],
        ["From", `<sip:${host.user}@${host.domain}>;tag=${this.#fromTag}`],
        ["To", `<${uri}>`],
        ["Call-ID", this.callId],
        ["CSeq", `${this.#cseq} INVITE`],
        ["Contact", `<${host.contact()}>`],
        ["Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS"],
        ["User-Agent", host.userAgentName],
        ...(this.#authorization === undefined ? [] : [this.#authorization]),
        ...extraHeaders,
        ["Content-Length", "0"],
      ],
    });
    if (offer !== "") invite.setBody(offer, SDP);
    this.#cseq++;
    this.#invite = invite;
    this.#inviteTarget = target;
    this.#provisional = false;
    this.#reached = false;
    this.#startedAt = host.clock.now();
    const tx = host.transactions.sendRequest(invite, target, {
      onResponse: (r) => this.#onResponse(invite, r),
    });
    try {
      return await tx.final;
    } catch (e) {
      if (e instanceof SipResponseError) {
        const what = e.status === 408 ? "no answer (timeout)" : "transport failure";
        const local = createResponse(invite, e.status, { reason: `local:${what}` });
        return local;
      }
      throw e;
    }
  }

  #onResponse(invite: SipRequest, response: SipResponse): void {
    if (invite !== this.#invite) return; // An earlier attempt's late response.
    const status = response.status;
    if (status < 200) {
      // §9.1: "If no provisional response has been received, the CANCEL request MUST NOT be
      // sent"; 100 Trying is one.
      this.#provisional = true;
      if (this.#cancelWanted && !this.#cancelSent) this.#sendCancel();
      if (status === 100) return;
      this.#reached = true;
      if (this.#state === "ended" || this.#state === "answered") return;
      const sdp = response.body.length > 0 ? response.body.toString("utf8") : "";
      if (sdp !== "" && !this.#answerTaken) {
        // RFC 3261 §13.2.1 / RFC 3264: the answer in a reliable-or-not 183 is the answer;
        // a later 2xx carries the same one, and is not taken twice.
        this.#answerTaken = true;
        this.#state = "early";
        void this.#acceptAnswer(sdp).then(() => {
          if (this.#state === "early") this.emit("early");
        });
        return;
      }
      if (this.#state === "calling") {
        this.#state = "ringing";
        this.emit("ringing");
      }
      return;
    }
    if (status >= 300) return; // Final non-2xx: place() handles it.
    this.#on2xx(invite, response);
  }

  /** A 2xx (the first, a retransmission, or a fork's): ACK it, and the first makes the dialog. */
  #on2xx(invite: SipRequest, response: SipResponse): void {
    const dialog = Dialog.asCaller(invite, response);
    if (dialog === undefined) {
      this.#host.log.warn({ callId: this.callId }, "2xx without Contact or To tag; ignored");
      return;
    }
    if (this.#dialog !== undefined) {
      if (this.#dialog.remoteTag === dialog.remoteTag) {
        // §13.2.2.4: a retransmitted 2xx gets the same ACK again.
        if (this.#ack !== undefined) {
          try {
            this.#host.transport.resend(this.#ack.bytes, this.#ack.flow);
          } catch (e) {
            this.#host.log.debug({ err: e }, "ACK resend failed");
          }
        }
        return;
      }
      // §13.2.2.4: a 2xx of another fork: "the UAC core MUST generate an ACK" and then BYE.
      void this.#sendAck(dialog).then(() => this.#bye(dialog));
      return;
    }
    this.#dialog = dialog;
    this.setupMs = this.#host.clock.now() - this.#startedAt;
    void this.#sendAck(dialog, true);
    if (this.#cancelWanted || this.#state === "ended") {
      // §9.1: the CANCEL lost the race with the 2xx: the call is up, so BYE ends it.
      void this.#bye(dialog).then(() =>
        this.#finish({ reason: "cancelled", message: "answered as we cancelled; BYE sent" }),
      );
      return;
    }
    const sdp = response.body.length > 0 ? response.body.toString("utf8") : "";
    const accepted = sdp !== "" && !this.#answerTaken ? this.#acceptAnswer(sdp) : undefined;
    this.#answerTaken ||= sdp !== "";
    this.#state = "answered";
    void (accepted ?? Promise.resolve()).then(() => {
      if (this.#state !== "answered") return;
      this.#resolveAnswered();
      this.emit("answered");
    });
  }

  async #acceptAnswer(sdp: string): Promise<void> {
    try {
      await this.#media?.acceptAnswer(sdp);
    } catch (e) {
      // RFC 3261 §13.2.2.4 leaves an unusable answer to the UAC: it ends the call.
      this.#host.log.warn({ err: e, callId: this.callId }, "the answer was not accepted");
      if (this.#dialog !== undefined) await this.hangup();
      else this.cancel();
    }
  }

  /** The ACK of a 2xx (§13.2.2.4): a request of its own, with the INVITE's credentials. */
  async #sendAck(dialog: Dialog, keep = false): Promise<void> {
    const invite = this.#invite!;
    const credentials = this.#authorization === undefined ? [] : [this.#authorization];
    const ack = dialog.request("ACK", { cseq: invite.cseq.seq, headers: credentials });
    const target = dialog.nextHop(this.#host.protocol);
    if (target === undefined) return;
    try {
      const sent = await this.#host.transport.send(ack, target, { viaBranch: newBranch() });
      if (keep) this.#ack = sent;
    } catch (e) {
      this.#host.log.warn({ err: e, callId: this.callId }, "ACK could not be sent");
    }
  }

  /**
   * Cancels an outgoing call before its final answer (RFC 3261 §9.1: "If no provisional
   * response has been received, the CANCEL request MUST NOT be sent; rather, the client MUST
   * wait for the arrival of a provisional response"). No-op once answered or ended.
   */
  cancel(): void {
    if (this.direction !== "outgoing") throw new CallStateError("cancel() is for outgoing calls");
    if (this.#state === "answered" || this.#state === "ended" || this.#cancelWanted) return;
    this.#cancelWanted = true;
    if (this.#provisional) this.#sendCancel();
  }

  #sendCancel(): void {
    const invite = this.#invite;
    const target = this.#inviteTarget;
    if (invite === undefined || target === undefined || this.#cancelSent) return;
    this.#cancelSent = true;
    const cancel = createCancel(invite);
    this.#host.transactions
      .sendRequest(cancel, target, { keepVia: true })
      .final.catch((e: unknown) => this.#host.log.debug({ err: e }, "CANCEL got no answer"));
  }

  // ---- incoming --------------------------------------------------------------------------

  /** @internal Sends 180 and arms the CANCEL hook (UserAgent, on a new INVITE). */
  ring(): void {
    const tx = this.#serverTx!;
    tx.onCancel = () => {
      if (this.#state !== "ringing") return;
      this.#respond(487);
      this.#finish({ reason: "cancelled", status: 487, message: "the caller cancelled" });
    };
    this.#respond(180);
    this.emit("ringing");
  }

  /** A response to the incoming INVITE with our To tag (and Contact and Record-Route on 2xx). */
  #respond(status: number, body?: string): SipResponse {
    const request = this.#request!;
    const response = createResponse(request, status, { toTag: this.#localTag! });
    if (status > 100 && status < 300) {
      for (const rr of request.getHeaders("record-route")) {
        response.appendHeader("Record-Route", rr);
      }
      response.appendHeader("Contact", `<${this.#host.contact()}>`);
    }
    if (body !== undefined && body !== "") response.setBody(body, SDP);
    this.#serverTx!.respond(response);
    return response;
  }

  /**
   * Answers an incoming call: 200 with the media's answer to the offer (or with its offer
   * when the INVITE had none; the answer then comes in the ACK). A MediaRejectedError from
   * the session answers its status (488) and ends the call; the promise then rejects.
   */
  async answer(options: { media: MediaSession }): Promise<void> {
    if (this.direction !== "incoming") throw new CallStateError("answer() is for incoming calls");
    if (this.#state !== "ringing") throw new CallStateError(`cannot answer a call ${this.#state}`);
    this.#media = options.media;
    const offer = this.remoteOffer;
    let sdp: string;
    try {
      this.#offerInOk = offer === "";
      sdp = offer === "" ? await options.media.localOffer() : await options.media.answerFor(offer);
    } catch (e) {
      if (this.#state === "ringing") {
        const status = e instanceof MediaRejectedError ? e.status : 500;
        this.#respond(status);
        this.#finish({ reason: "rejected", status, message: `media: ${String(e)}` });
      }
      throw e;
    }
    if (this.#state !== "ringing") {
      throw new CallStateError(`the call ended while its answer was made (${this.#end?.reason})`);
    }
    const request = this.#request!;
    const ok = this.#respond(200, sdp);
    this.#ok = ok;
    this.#dialog = Dialog.asCallee(request, ok.getHeader("to")!, this.#localTag!);
    this.#state = "answered";
    this.#retransmitOk(this.#host.t1Ms);
    // §13.3.1.4: "If the server retransmits the 2xx response for 64*T1 seconds without
    // receiving an ACK, the dialog is confirmed, but the session SHOULD be terminated."
    this.#giveUp = this.#host.clock.setTimeout(() => {
      this.#giveUp = undefined;
      this.#stopRetransmit();
      void this.hangup("no-ack");
    }, 64 * this.#host.t1Ms);
    this.#resolveAnswered();
    this.emit("answered");
  }

  /**
   * §13.3.1.4: "The 2xx response is passed to the transport with an interval that starts at
   * T1 seconds and doubles for each retransmission until it reaches T2 seconds." The INVITE
   * server transaction (RFC 6026 Accepted) sends each copy it is given.
   */
  #retransmitOk(intervalMs: number): void {
    this.#retransmit = this.#host.clock.setTimeout(() => {
      this.#retransmit = undefined;
      const tx = this.#serverTx;
      if (this.#ok === undefined || tx === undefined || tx.state !== "accepted") return;
      tx.respond(this.#ok);
      this.#retransmitOk(Math.min(2 * intervalMs, this.#host.t2Ms));
    }, intervalMs);
  }

  #stopRetransmit(): void {
    if (this.#retransmit !== undefined) this.#host.clock.clearTimeout(this.#retransmit);
    this.#retransmit = undefined;
    if (this.#giveUp !== undefined) this.#host.clock.clearTimeout(this.#giveUp);
    this.#giveUp = undefined;
    this.#ok = undefined;
  }

  /** @internal The ACK of our 2xx arrived (UserAgent matched it to this call). */
  receiveAck(ack: SipRequest): void {
    if (this.#ok === undefined) return;
    this.#stopRetransmit();
    if (this.#offerInOk && ack.body.length > 0) void this.#acceptAnswer(ack.body.toString("utf8"));
  }

  /** Rejects an incoming call before it is answered (486 Busy Here by default). */
  reject(status = 486): void {
    if (this.direction !== "incoming") throw new CallStateError("reject() is for incoming calls");
    if (!Number.isInteger(status) || status < 300 || status > 699) {
      throw new RangeError(`reject: status must be 300-699, got ${status}`);
    }
    if (this.#state !== "ringing") return;
    this.#respond(status);
    this.#finish({ reason: "rejected", status, message: `rejected with ${status}` });
  }

  // ---- both ------------------------------------------------------------------------------

  /**
   * Ends the call: BYE once answered; before that CANCEL (outgoing) or 603 Decline
   * (incoming). Resolves when the BYE is answered (or failed); no-op once ended.
   */
  async hangup(reason: "hangup" | "no-ack" = "hangup"): Promise<void> {
    if (this.#state === "ended") return;
    if (this.#state !== "answered") {
      if (this.direction === "outgoing") this.cancel();
      else this.reject(603);
      return;
    }
    const dialog = this.#dialog!;
    this.#stopRetransmit();
    const status = await this.#bye(dialog);
    this.#finish({
      reason,
      ...(status === undefined ? {} : { status }),
      message: reason === "no-ack" ? "no ACK for our 2xx; BYE sent" : "BYE sent",
    });
  }

  /** A BYE along the dialog, answering one challenge; the final status (undefined: none). */
  async #bye(dialog: Dialog): Promise<number | undefined> {
    const target = dialog.nextHop(this.#host.protocol);
    if (target === undefined) return undefined;
    let headers: [string, string][] = [];
    for (let attempt = 0; attempt < 2; attempt++) {
      const bye = dialog.request("BYE", { headers });
      try {
        const response = await this.#host.transactions.sendRequest(bye, target).final;
        if ((response.status === 401 || response.status === 407) && attempt === 0) {
          const authorization = this.#authorize(response, "BYE", dialog.remoteTarget);
          if (authorization !== undefined) {
            headers = [authorization];
            continue;
          }
        }
        return response.status;
      } catch (e) {
        return e instanceof SipResponseError ? e.status : undefined;
      }
    }
    return undefined;
  }

  /** @internal A BYE for this call (§15.1.2): 200, and the call is over. */
  receiveBye(tx: ServerTransaction, request: SipRequest): void {
    tx.respond(createResponse(request, 200));
    this.#stopRetransmit();
    this.#finish({ reason: "remote-hangup", message: "the peer sent BYE" });
  }

  /** @internal The user agent stops: end the call on the wire as well as we can, bounded. */
  async shutdown(): Promise<void> {
    if (this.#state === "ended") return;
    if (this.#state === "answered") {
      await this.hangup();
    } else if (this.direction === "incoming") {
      this.reject(480);
    } else {
      this.cancel();
    }
    this.#finish({ reason: "stopped", message: "the user agent stopped" });
  }

  /** The Authorization or Proxy-Authorization answering a 401/407, if we can answer it. */
  #authorize(response: SipResponse, method: string, uri: string): [string, string] | undefined {
    const proxy = response.status === 407;
    const headers = proxy ? response.proxyAuthenticates : response.wwwAuthenticates;
    for (const header of headers) {
      const challenge = readChallenge(header);
      if (challenge === undefined) continue;
      const value = answerChallenge(
        challenge,
        { method, uri },
        { user: this.#host.user, password: this.#host.password },
      );
      return [proxy ? "Proxy-Authorization" : "Authorization", value];
    }
    return undefined;
  }

  #finish(end: CallEnd): void {
    if (this.#state === "ended") return;
    this.#state = "ended";
    this.#end = end;
    this.#stopRetransmit();
    this.#host.forget(this);
    this.#rejectAnswered(new CallEndedError(end));
    const media = this.#media;
    if (media !== undefined && !this.#mediaStopped) {
      this.#mediaStopped = true;
      media
        .stop()
        .catch((e: unknown) => this.#host.log.warn({ err: e }, "media did not stop cleanly"));
    }
    this.#host.log.info({ callId: this.callId, ...end }, "call ended");
    this.#resolveEnded(end);
    this.emit("ended", end);
  }

  /** @internal For the agent's lookups: the flow the incoming INVITE came on. */
  get flow(): FlowInfo | undefined {
    return this.#serverTx?.flow;
  }
}
