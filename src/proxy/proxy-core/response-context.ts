import {
  createResponse,
  type ClientTransaction,
  type InviteClientTransaction,
  type ServerTransaction,
  type SipRequest,
  type SipResponse,
  type Timer,
  type TimerQueue,
} from "../../sip/index.js";

/** One forwarded copy of a request (RFC 3261 §16.6), and what came of it. */
interface Branch {
  readonly tx: ClientTransaction;
  /** A final response came (kept in `final` until the best one went upstream). */
  finished: boolean;
  final: SipResponse | undefined;
  /** Synthesized outcome when no response came: 408 (timeout), 503 (transport). */
  failed: number | undefined;
  provisional: boolean;
  /** Any response came (a 100 too). */
  heard: boolean;
  /** Given up for the next branch (serial retry): ignored when choosing. */
  superseded: boolean;
  timerC: Timer | undefined;
  silence: Timer | undefined;
}

export interface ResponseContextOptions {
  readonly serverTx: ServerTransaction;
  /** The request as received (the server transaction lets go of its own after the final). */
  readonly request: SipRequest;
  readonly timers: TimerQueue;
  /** RFC 3261 §16.6 step 11, for INVITE. */
  readonly timerCMs: number;
  /** Called once, with the final response sent upstream. */
  readonly onFinal: (response: SipResponse) => void;
  /** Called for each 2xx forwarded upstream (a fork may send several). */
  readonly on2xx: (response: SipResponse) => void;
  /**
   * Serial retry (the gateway): a branch that timed out (408), failed in transport (503) or
   * answered 503 before any provisional is offered here; returning true means the caller
   * add()ed the next branch, and the failed one takes no part in choosing the best response.
   */
  readonly retry?: (status: number) => boolean;
  /**
   * A branch that has no response at all after this long counts as timed out (408), so that
   * a retry does not wait for Timer B or F; undefined: the transaction's own timers decide.
   */
  readonly firstResponseMs?: number;
}

/** Responses a 4xx best choice prefers: they tell the client how to retry (§16.7 step 6). */
const INFORMATIVE = new Set([401, 407, 415, 420, 484]);

/**
 * The response context of RFC 3261 §16.7 for one request the proxy forwarded to one or more
 * targets (parallel forking): provisionals and 2xx go upstream at once, other finals wait for
 * the best one; a 2xx or 6xx to an INVITE cancels the other branches (§16.7 step 10); a
 * branch without a final after Timer C is cancelled.
 */
export class ResponseContext {
  readonly #branches: Branch[] = [];
  readonly #invite: boolean;
  /** Let go once the final went upstream (a context lives on while 2xx from forks may come). */
  #request: SipRequest | undefined;
  #done = false;
  #sent2xx = false;
  #closed = false;

  private readonly options: Omit<ResponseContextOptions, "request">;

  constructor(options: ResponseContextOptions) {
    const { request, ...rest } = options;
    this.options = rest;
    this.#invite = request.method === "INVITE";
    this.#request = request;
  }

  /** True once the final response went upstream. */
  get done(): boolean {
    return this.#done;
  }

  /** Adds a branch (call before its first response can arrive). */
  add(tx: ClientTransaction): void {
    const branch: Branch = {
      tx,
      finished: false,
      final: undefined,
      failed: undefined,
      provisional: false,
      heard: false,
      superseded: false,
      timerC: undefined,
      silence: undefined,
    };
    this.#branches.push(branch);
    if (this.#invite) this.#armTimerC(branch);
    const silenceMs = this.options.firstResponseMs;
    if (silenceMs !== undefined) {
      branch.silence = this.options.timers.schedule(silenceMs, () => {
        if (!branch.heard && !this.#closed) this.#branchFailed(branch, 408);
      });
    }
  }

  /** A branch got no final response: 408 (timeout) or 503 (transport failure). */
  failed(tx: ClientTransaction, status: number): void {
    const branch = this.#branches.find((b) => b.tx === tx);
    if (branch !== undefined) this.#branchFailed(branch, status);
  }

  /** A response on a branch (from the client transaction's onResponse). */
  response(tx: ClientTransaction, response: SipResponse): void {
    const branch = this.#branches.find((b) => b.tx === tx);
    if (branch === undefined) return;
    const status = response.status;
    branch.heard = true;
    branch.silence?.cancel();
    // A branch given up for the next keeps only its 2xx (a call that connected after all).
    if (branch.superseded && status >= 200 && status < 300) {
      this.#forward(response);
      this.options.on2xx(response);
      return;
    }
    if (branch.superseded) return;
    if (status < 200) {
      branch.provisional = true;
      if (this.#invite) this.#armTimerC(branch);
      // "100 (Trying) ... MUST NOT be forwarded"; other provisionals go at once.
      if (status > 100 && !this.#done) this.#forward(response);
      return;
    }
    branch.timerC?.cancel();
    if (status < 300) {
      branch.finished = true;
      // "Any 2xx responses ... MUST be forwarded immediately", every one of them.
      this.#sent2xx = true;
      this.#forward(response);
      this.options.on2xx(response);
      this.cancelOthers(branch, 'SIP;cause=200;text="Call completed elsewhere"');
      if (!this.#done) this.#finished(response);
      return;
    }
    if (branch.finished) return;
    branch.finished = true;
    if (status === 503 && this.#retried(branch, 503)) return;
    branch.final = response;
    if (this.#invite && status >= 600) this.cancelOthers(branch, undefined);
    this.#maybeFinish();
  }

  /** Cancels every branch still waiting, but `except` (RFC 3261 §16.10 and §16.7 step 10). */
  cancelOthers(except: Branch | undefined, reason: string | undefined): void {
    if (!this.#invite) return;
    for (const b of this.#branches) {
      if (b === except || b.finished || b.failed !== undefined || b.superseded) continue;
      (b.tx as InviteClientTransaction).cancel(reason);
    }
  }

  /** The client cancelled (§16.10): cancel every pending branch. */
  cancelAll(): void {
    this.cancelOthers(undefined, undefined);
  }

  /** Stops Timer C everywhere (the proxy is stopping). */
  close(): void {
    this.#closed = true;
    for (const b of this.#branches) {
      b.timerC?.cancel();
      b.silence?.cancel();
    }
  }

  #armTimerC(branch: Branch): void {
    branch.timerC?.cancel();
    // "If timer C fires, the proxy MUST either reset the timer ... or terminate the client
    // transaction": with a provisional, cancel it; without, treat it as 408.
    branch.timerC = this.options.timers.schedule(this.options.timerCMs, () => {
      if (branch.finished || this.#closed) return;
      if (branch.provisional) (branch.tx as InviteClientTransaction).cancel();
      else this.#branchFailed(branch, 408);
    });
  }

  #branchFailed(branch: Branch, status: number): void {
    branch.timerC?.cancel();
    branch.silence?.cancel();
    if (branch.finished || branch.failed !== undefined || this.#closed) return;
    branch.failed = status;
    if (this.#retried(branch, status)) return;
    this.#maybeFinish();
  }

  /** Offers a failed branch for serial retry; true when the next branch took its place. */
  #retried(branch: Branch, status: number): boolean {
    if (this.#done || this.#sent2xx || branch.provisional || this.options.retry === undefined)
      return false;
    if (!this.options.retry(status)) return false;
    branch.superseded = true;
    branch.final = undefined;
    return true;
  }

  /** When every branch has an outcome and no 2xx went up: send the best (§16.7 step 6). */
  #maybeFinish(): void {
    if (this.#done || this.#sent2xx) return;
    if (!this.#branches.every((b) => b.finished || b.failed !== undefined || b.superseded)) return;
    const request = this.#request!;
    const live = this.#branches.filter((b) => !b.superseded);
    const finals = live.map((b) => b.final).filter((r): r is SipResponse => r !== undefined);
    const best = chooseBest(finals);
    let response: SipResponse;
    if (best === undefined) {
      // Only timeouts and transport failures: a timeout is a 408 (§16.7 step 6), a
      // transport failure a 503 that we must not pass on as such.
      const timedOut = live.some((b) => b.failed === 408);
      response = createResponse(request, timedOut ? 408 : 500, { toTag: proxyTag() });
    } else if (best.status === 503) {
      // "If the proxy ... selected a 503 ... it MUST generate a 500 ... instead."
      response = createResponse(request, 500, { toTag: best.to.tag ?? proxyTag() });
    } else {
      response = best;
      if (best.status === 401 || best.status === 407) mergeChallenges(best, finals);
      response.removeFirstValue("via");
    }
    this.options.serverTx.respond(response);
    this.#finished(response);
  }

  /** The final went upstream: tell the proxy, and let go of what only choosing it needed. */
  #finished(response: SipResponse): void {
    this.#done = true;
    this.options.onFinal(response);
    this.#request = undefined;
    for (const b of this.#branches) b.final = undefined;
  }

  /** Pops our Via and sends a downstream response upstream. */
  #forward(response: SipResponse): void {
    response.removeFirstValue("via");
    if (response.field("via") === undefined) return; // it was addressed to us: nothing above
    this.options.serverTx.respond(response);
  }
}

/** RFC 3261 §16.7 step 6: a 6xx if any, else the lowest class, informative 4xx first. */
function chooseBest(finals: SipResponse[]): SipResponse | undefined {
  const six = finals.find((r) => r.status >= 600);
  if (six !== undefined) return six;
  let best: SipResponse | undefined;
  for (const r of finals) {
    if (best === undefined) {
      best = r;
      continue;
    }
    const rc = Math.floor(r.status / 100);
    const bc = Math.floor(best.status / 100);
    if (
      rc < bc ||
      (rc === bc && rc === 4 && INFORMATIVE.has(r.status) && !INFORMATIVE.has(best.status))
    ) {
      best = r;
    }
  }
  return best;
}

/** §16.7 step 7: a 401/407 upstream carries the challenges of every 401/407 downstream. */
function mergeChallenges(best: SipResponse, finals: SipResponse[]): void {
  for (const r of finals) {
    if (r === best || (r.status !== 401 && r.status !== 407)) continue;
    for (const name of ["WWW-Authenticate", "Proxy-Authenticate"]) {
      for (const value of r.getHeaders(name)) best.appendHeader(name, value);
    }
  }
}

let tagCounter = 0;
function proxyTag(): string {
  return `px${Date.now().toString(36)}${(tagCounter++).toString(36)}`;
}
