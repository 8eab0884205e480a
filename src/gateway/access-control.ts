import {
  DestinationPolicy,
  SipParseError,
  silentLogger,
  systemClock,
  type Clock,
  type Logger,
  type SipRequest,
} from "../sip/index.js";
import { parseAccessConfig, type AccessConfig } from "./access-config.js";
import { SourceRateLimiter } from "./rate-limiter.js";
import { RefusalLog } from "./refusal-log.js";
import { ScannerAgents } from "./scanner-agents.js";
import { sourceKey, unmapIPv4 } from "./source-key.js";

/** Why a request was refused: a fixed set, used as metric labels. */
export const REFUSAL_REASONS = [
  "denied-address",
  "not-allowed-address",
  "scanner",
  "rate",
  "flood",
  "calls-per-user",
] as const;
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

/**
 * What the gateway does with a request: pass it on, drop it without a word, or answer it
 * with `status` (and `Retry-After: retryAfterS` when given).
 */
export type Verdict =
  | { readonly admit: true }
  | { readonly admit: false; readonly action: "drop"; readonly reason: RefusalReason }
  | {
      readonly admit: false;
      readonly action: "respond";
      readonly status: number;
      readonly reasonPhrase: string;
      readonly retryAfterS?: number;
      readonly reason: RefusalReason;
    };

/** Where a request came from (the transport's view, not its Via). */
export interface RequestSource {
  readonly address: string;
  readonly port: number;
}

export interface AccessControlOptions {
  /** The `access` section, as given (it is validated here) or from parseAccessConfig. */
  readonly config?: unknown;
  readonly clock?: Clock;
  /** Refusals are logged at warn, a line per source and reason per `log.intervalMs`. */
  readonly logger?: Logger;
}

/** Counters for the gateway's `/status` and Prometheus metrics. */
export interface AccessStats {
  /** Requests that passed check() (calls-per-user refusals come after, and are not taken off). */
  readonly admitted: number;
  readonly refused: Readonly<Record<RefusalReason, number>>;
  /** Sources whose request rate is being tracked. */
  readonly trackedSources: number;
  /** Dialogs counted against maxCallsPerUser, over all users. */
  readonly activeCalls: number;
  /** The users with the most dialogs, most first. */
  readonly topCallers: readonly { readonly user: string; readonly calls: number }[];
}

const MAX_LOGGED_AGENT = 120;

function drop(reason: RefusalReason): Verdict {
  return Object.freeze({ admit: false, action: "drop", reason });
}

const ADMIT: Verdict = Object.freeze({ admit: true });
const FORBIDDEN = {
  admit: false,
  action: "respond",
  status: 403,
  reasonPhrase: "Forbidden",
} as const;
const DENIED: Verdict = Object.freeze({ ...FORBIDDEN, reason: "denied-address" });
const NOT_ALLOWED: Verdict = Object.freeze({ ...FORBIDDEN, reason: "not-allowed-address" });
const DROP_DENIED = drop("denied-address");
const DROP_NOT_ALLOWED = drop("not-allowed-address");
const DROP_SCANNER = drop("scanner");
const DROP_FLOOD = drop("flood");
const TOO_MANY_CALLS: Verdict = Object.freeze({
  ...FORBIDDEN,
  reasonPhrase: "Too Many Calls",
  reason: "calls-per-user",
});

/**
 * The gateway's access rules (issue 9), independent of sockets: the gateway core asks
 * `check()` for each request as it arrives, before anything else (authentication included),
 * and `checkCall()` for each new INVITE once it knows the authenticated user.
 *
 * check() applies, in this order:
 * 1. flood — every request counts against its source's flood meter (floodFactor × the rate);
 *    a source above it is dropped, whatever it sends, so a flood gets no answers to amplify.
 * 2. scanner — a User-Agent holding one of `scanners`: dropped (a scanner learns nothing,
 *    not even that a SIP server listens here).
 * 3. denied-address — the source is in `deny` (deny wins over allow);
 * 4. not-allowed-address — `allow` is not empty and the source is not in it. Both answer
 *    INVITE and REGISTER with 403 Forbidden (RFC 3261 §21.4.4: "Authorization will not help,
 *    and the request SHOULD NOT be repeated"), so that a phone set up in the wrong network
 *    shows why it fails, and drop every other method: an OPTIONS probe from outside the lists
 *    gets no sign of us, and an ACK is never answered anyway.
 * 5. rate — a new request (no To tag; not ACK or CANCEL) takes a token from its source's
 *    bucket (`rate.requestsPerSecond`, `rate.burst`); without one it gets 503 with
 *    Retry-After (RFC 3261 §21.5.4). In-dialog requests, ACK and CANCEL pass this rule (a
 *    client over its rate can still hang up or cancel), but they count towards the flood.
 */
export class AccessControl {
  readonly config: Readonly<AccessConfig>;
  readonly #clock: Clock;
  readonly #allow: DestinationPolicy | undefined;
  readonly #deny: DestinationPolicy | undefined;
  readonly #scanners: ScannerAgents;
  readonly #limiter: SourceRateLimiter | undefined;
  readonly #log: RefusalLog;
  readonly #refused: Record<RefusalReason, number>;
  #admitted = 0;
  /** dialogKey → user, and calls per user, for maxCallsPerUser. */
  readonly #callUser = new Map<string, string>();
  readonly #userCalls = new Map<string, number>();

  readonly #overRate: Verdict;

  constructor(options: AccessControlOptions = {}) {
    this.config = parseAccessConfig(options.config ?? {});
    const c = this.config;
    this.#clock = options.clock ?? systemClock;
    this.#allow = c.allow.length > 0 ? new DestinationPolicy(c.allow) : undefined;
    this.#deny = c.deny.length > 0 ? new DestinationPolicy(c.deny) : undefined;
    this.#scanners = new ScannerAgents(c.scanners);
    this.#limiter =
      c.rate.requestsPerSecond > 0
        ? new SourceRateLimiter({
            requestsPerSecond: c.rate.requestsPerSecond,
            burst: c.rate.burst,
            floodFactor: c.rate.floodFactor,
            maxSources: c.maxTrackedSources,
            clock: this.#clock,
          })
        : undefined;
    this.#log = new RefusalLog({
      log: (options.logger ?? silentLogger).child({ component: "gateway-access" }),
      clock: this.#clock,
      intervalMs: c.log.intervalMs,
      maxSubjects: c.log.maxSources,
    });
    this.#refused = Object.fromEntries(REFUSAL_REASONS.map((r) => [r, 0])) as Record<
      RefusalReason,
      number
    >;
    this.#overRate = Object.freeze({
      admit: false,
      action: "respond",
      status: 503,
      reasonPhrase: "Service Unavailable",
      retryAfterS: c.retryAfterS,
      reason: "rate",
    });
  }

  /** The verdict on one request from `source`, by the rules above, counted and logged. */
  check(request: SipRequest, source: RequestSource): Verdict {
    const address = unmapIPv4(source.address);
    const key = sourceKey(address, this.config.rate.ipv6PrefixBits);
    const limiter = this.#limiter;
    if (limiter !== undefined && limiter.flooding(key)) {
      return this.#refuse(DROP_FLOOD, request, source, key);
    }
    if (this.#scanners.match(request) !== undefined) {
      return this.#refuse(DROP_SCANNER, request, source, key);
    }
    const answerable = request.method === "INVITE" || request.method === "REGISTER";
    if (this.#deny !== undefined && this.#deny.allows(address)) {
      return this.#refuse(answerable ? DENIED : DROP_DENIED, request, source, key);
    }
    if (this.#allow !== undefined && !this.#allow.allows(address)) {
      return this.#refuse(answerable ? NOT_ALLOWED : DROP_NOT_ALLOWED, request, source, key);
    }
    if (limiter !== undefined && isRateLimited(request) && !limiter.take(key)) {
      return this.#refuse(this.#overRate, request, source, key);
    }
    this.#admitted++;
    return ADMIT;
  }

  /**
   * For a new INVITE (no To tag) once `user` is authenticated: refused when the user already
   * has maxCallsPerUser dialogs. The answer is 403 "Too Many Calls", not 503: a 503 tells the
   * client and every proxy on the way that this server is overloaded and that they "SHOULD
   * attempt to forward the request to an alternate server" (RFC 3261 §21.5.4), so it would
   * send the user's next call hunting round the fleet for a limit that holds everywhere; 403
   * says that "Authorization will not help, and the request SHOULD NOT be repeated" (§21.4.4),
   * which is the truth until one of the user's calls ends. No Retry-After: §20.33 does not
   * give it to 403, and no one knows when a call will end. Call callStarted() in the same
   * tick when this admits, so that parallel INVITEs of one user are all counted.
   */
  checkCall(request: SipRequest, user: string): Verdict {
    const max = this.config.maxCallsPerUser;
    if (max === 0 || request.method !== "INVITE" || hasToTag(request)) return ADMIT;
    const calls = this.#userCalls.get(user) ?? 0;
    if (calls < max) return ADMIT;
    this.#refused["calls-per-user"]++;
    this.#log.note(
      "calls-per-user",
      user,
      { user },
      { calls, max, callId: safeCallId(request), status: 403 },
    );
    return TOO_MANY_CALLS;
  }

  /** Counts a dialog of `user` (from its INVITE on) until callEnded(dialogKey); idempotent. */
  callStarted(user: string, dialogKey: string): void {
    const had = this.#callUser.get(dialogKey);
    if (had === user) return;
    if (had !== undefined) this.#uncount(had);
    this.#callUser.set(dialogKey, user);
    this.#userCalls.set(user, (this.#userCalls.get(user) ?? 0) + 1);
  }

  /** The dialog is over (BYE, a failed INVITE, a timeout); unknown keys are ignored. */
  callEnded(dialogKey: string): void {
    const user = this.#callUser.get(dialogKey);
    if (user === undefined) return;
    this.#callUser.delete(dialogKey);
    this.#uncount(user);
  }

  /** Dialogs counted for `user`. */
  callsOf(user: string): number {
    return this.#userCalls.get(user) ?? 0;
  }

  stats(top = 10): AccessStats {
    const topCallers = [...this.#userCalls]
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
      .slice(0, top)
      .map(([user, calls]) => ({ user, calls }));
    return {
      admitted: this.#admitted,
      refused: { ...this.#refused },
      trackedSources: this.#limiter?.size ?? 0,
      activeCalls: this.#callUser.size,
      topCallers,
    };
  }

  /** Writes the pending log summaries and stops the log's timer (idempotent). */
  dispose(): void {
    this.#log.dispose();
  }

  #uncount(user: string): void {
    const n = (this.#userCalls.get(user) ?? 1) - 1;
    if (n <= 0) this.#userCalls.delete(user);
    else this.#userCalls.set(user, n);
  }

  #refuse(verdict: Verdict, request: SipRequest, source: RequestSource, key: string): Verdict {
    if (verdict.admit) return verdict;
    this.#refused[verdict.reason]++;
    const agent = request.getHeader("User-Agent");
    this.#log.note(
      verdict.reason,
      key,
      { source: key },
      {
        address: source.address,
        port: source.port,
        method: request.method,
        ...(agent === undefined ? {} : { userAgent: agent.slice(0, MAX_LOGGED_AGENT) }),
        ...(verdict.action === "respond" ? { status: verdict.status } : { action: "drop" }),
      },
    );
    return verdict;
  }
}

/** A new request that a 503 could answer (RFC 3261 §17: ACK gets no response). */
function isRateLimited(request: SipRequest): boolean {
  return request.method !== "ACK" && request.method !== "CANCEL" && !hasToTag(request);
}

function hasToTag(request: SipRequest): boolean {
  try {
    return request.to.tag !== undefined;
  } catch (err) {
    if (err instanceof SipParseError) return false;
    throw err;
  }
}

function safeCallId(request: SipRequest): string | undefined {
  try {
    return request.callId;
  } catch (err) {
    if (err instanceof SipParseError) return undefined;
    throw err;
  }
}
