import {
  DigestServer,
  type Credentials,
  type DigestAlgorithm,
  createResponse,
  type Clock,
  type DigestFailure,
  type Logger,
  type SipRequest,
  type SipResponse,
} from "../sip/index.js";

export interface AuthGuardOptions {
  readonly credentials: Credentials;
  readonly clock: Clock;
  readonly log: Logger;
  readonly nonceTtlMs: number;
  /** Key of the nonces' MAC (shared by the processes of one proxy); random when absent. */
  readonly nonceSecret?: Buffer;
  readonly algorithms: readonly DigestAlgorithm[];
  readonly checkDigestUri: boolean;
  readonly slowAfter: number;
  readonly banAfter: number;
  readonly windowMs: number;
  readonly banMs: number;
}

/** What the guard decided: go on as `user`, or answer with `response` (after `delayMs`). */
export type AuthOutcome =
  | { readonly ok: true; readonly user: string }
  | { readonly ok: false; readonly response: SipResponse; readonly delayMs: number };

/** Counters for /metrics. */
export interface AuthStats {
  challenges: number;
  accepted: number;
  failures: number;
  slowed: number;
  refused: number;
}

interface Strikes {
  count: number;
  windowStart: number;
  bannedUntil: number;
}

const MAX_TRACKED = 100_000;
const TO_TAG_SEED = Math.random().toString(36).slice(2, 8);

/**
 * Digest authentication for the proxy and registrar (RFC 3261 §22: 401 with WWW-Authenticate
 * for REGISTER, 407 with Proxy-Authenticate for the rest), and a brake on guessing: failed
 * attempts from one source address or for one user are answered ever more slowly after
 * `slowAfter` in a window, and refused with 403 for `banMs` after `banAfter`.
 */
export class AuthGuard {
  readonly stats: AuthStats = { challenges: 0, accepted: 0, failures: 0, slowed: 0, refused: 0 };
  readonly #digest: DigestServer;
  readonly #strikes = new Map<string, Strikes>();
  #tagCounter = 0;

  constructor(private readonly options: AuthGuardOptions) {
    this.#digest = new DigestServer({
      clock: options.clock,
      nonceTtlMs: options.nonceTtlMs,
      ...(options.nonceSecret === undefined ? {} : { secret: options.nonceSecret }),
      algorithms: options.algorithms,
      checkUri: options.checkDigestUri,
    });
  }

  /** True when `user` exists in `realm` (to tell 480 from 404). */
  knows(user: string, realm: string): boolean {
    return this.options.credentials.has(user, realm);
  }

  check(request: SipRequest, source: string, realm: string): AuthOutcome {
    const registrar = request.method === "REGISTER";
    const now = this.options.clock.now();
    const sourceKey = `src:${source}`;
    if (this.#banned(sourceKey, now)) return this.#refuse(request);
    // Credentials in a scheme we do not know are no answer to our challenge (RFC 4475 §3.3.7).
    const all = (registrar ? request.authorizations : request.proxyAuthorizations).filter(
      (c) => c.scheme.toLowerCase() === "digest",
    );
    const credentials = all.find((c) => c.params.get("realm") === realm) ?? all[0];
    if (credentials === undefined) return this.#challenge(request, realm, false, 0);

    const verdict = this.#digest.verify(request, credentials, realm, (u, r, a) =>
      this.options.credentials.ha1(u, r, a),
    );
    const userKey = `user:${realm}:${verdict.user ?? ""}`;
    if (verdict.user !== undefined && this.#banned(userKey, now)) return this.#refuse(request);
    if (verdict.ok) {
      this.stats.accepted++;
      return { ok: true, user: verdict.user };
    }
    if (verdict.reason === "stale") return this.#challenge(request, realm, true, 0);
    if (verdict.reason === "malformed") {
      return {
        ok: false,
        response: createResponse(request, 400, { reason: "Bad Credentials", toTag: this.#tag() }),
        delayMs: 0,
      };
    }
    return this.#failed(
      request,
      realm,
      verdict.reason,
      [sourceKey, ...(verdict.user === undefined ? [] : [userKey])],
      now,
    );
  }

  #failed(
    request: SipRequest,
    realm: string,
    reason: DigestFailure,
    keys: string[],
    now: number,
  ): AuthOutcome {
    this.stats.failures++;
    let worst = 0;
    for (const key of keys) worst = Math.max(worst, this.#strike(key, now));
    this.options.log.warn(
      { reason, callId: request.callId, strikes: worst },
      "authentication failed",
    );
    if (worst >= this.options.banAfter) {
      for (const key of keys) this.#strikes.get(key)!.bannedUntil = now + this.options.banMs;
      return this.#refuse(request);
    }
    // Doubling delays past the threshold: 0.5 s, 1 s, 2 s … up to 8 s.
    const over = worst - this.options.slowAfter;
    const delayMs = over < 0 ? 0 : Math.min(8000, 500 * 2 ** over);
    if (delayMs > 0) this.stats.slowed++;
    return this.#challenge(request, realm, false, delayMs);
  }

  #challenge(request: SipRequest, realm: string, stale: boolean, delayMs: number): AuthOutcome {
    this.stats.challenges++;
    const registrar = request.method === "REGISTER";
    const response = createResponse(request, registrar ? 401 : 407, { toTag: this.#tag() });
    const header = registrar ? "WWW-Authenticate" : "Proxy-Authenticate";
    for (const value of this.#digest.challenge(realm, stale)) response.appendHeader(header, value);
    return { ok: false, response, delayMs };
  }

  #refuse(request: SipRequest): AuthOutcome {
    this.stats.refused++;
    return {
      ok: false,
      response: createResponse(request, 403, {
        reason: "Too Many Failed Attempts",
        toTag: this.#tag(),
      }),
      delayMs: 0,
    };
  }

  #banned(key: string, now: number): boolean {
    const s = this.#strikes.get(key);
    return s !== undefined && s.bannedUntil > now;
  }

  /** Counts a failure for `key` in its window; returns the count. */
  #strike(key: string, now: number): number {
    let s = this.#strikes.get(key);
    if (s === undefined || now - s.windowStart > this.options.windowMs) {
      if (this.#strikes.size >= MAX_TRACKED) this.#forgetOld(now);
      s = { count: 0, windowStart: now, bannedUntil: s?.bannedUntil ?? 0 };
      this.#strikes.set(key, s);
    }
    return ++s.count;
  }

  #forgetOld(now: number): void {
    for (const [key, s] of this.#strikes) {
      if (s.bannedUntil <= now && now - s.windowStart > this.options.windowMs)
        this.#strikes.delete(key);
    }
    // Under a flood of distinct sources, forget the oldest rather than grow without bound.
    while (this.#strikes.size >= MAX_TRACKED)
      this.#strikes.delete(this.#strikes.keys().next().value!);
  }

  #tag(): string {
    return `${TO_TAG_SEED}${(this.#tagCounter++).toString(36)}`;
  }
}
