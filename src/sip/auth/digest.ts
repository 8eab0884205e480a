import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { systemClock, type Clock } from "../clock.js";
import { formatAuthHeader, type AuthHeader, type SipRequest } from "../message/index.js";
import { DIGEST_ALGORITHMS, digestHash, type DigestAlgorithm } from "./credentials.js";

/** How long a nonce we issued stays good. */
export const DEFAULT_NONCE_TTL_MS = 300_000;

export interface DigestServerOptions {
  /** Key for the nonces' MAC; random per process when absent. */
  readonly secret?: Buffer;
  readonly nonceTtlMs?: number;
  /** Offered in this order (RFC 8760 §2.3: the preferred first). */
  readonly algorithms?: readonly DigestAlgorithm[];
  /**
   * Require the digest-uri to be the Request-URI (RFC 2617 §3.2.2.5 "SHOULD"); default true.
   * Off, the response is still checked against the uri the client hashed, as Kamailio's auth
   * module does: clients such as SIPp hash the address they send to, and a proxy on the path
   * may have rewritten the Request-URI.
   */
  readonly checkUri?: boolean;
  readonly clock?: Clock;
}

/** Why credentials were not accepted. */
export type DigestFailure =
  | "malformed" // not Digest, or a parameter missing
  | "wrong-realm"
  | "unknown-user"
  | "bad-nonce" // not one of ours
  | "stale" // ours, but expired: the client may retry with a new nonce (stale=true)
  | "replay" // a nonce count already used
  | "uri-mismatch"
  | "bad-response";

export type DigestVerdict =
  | { readonly ok: true; readonly user: string; readonly algorithm: DigestAlgorithm }
  | { readonly ok: false; readonly reason: DigestFailure; readonly user?: string };

/** Looks a user's HA1 up; undefined when the user does not exist. */
export type Ha1Lookup = (
  user: string,
  realm: string,
  algorithm: DigestAlgorithm,
) => string | undefined;

const QOP = "auth";

/**
 * The server side of SIP digest authentication: RFC 3261 §22 with MD5 and RFC 8760 SHA-256,
 * qop=auth, nonces that carry their time and a MAC (no table of issued nonces), `stale=true`
 * for an expired nonce with otherwise good credentials, and a nonce-count check against
 * replays (RFC 7616 §3.3).
 */
export class DigestServer {
  readonly #secret: Buffer;
  readonly #ttl: number;
  readonly #algorithms: readonly DigestAlgorithm[];
  readonly #clock: Clock;
  readonly #opaque: string;
  readonly #checkUri: boolean;
  /** Highest nonce count seen per nonce (only for credentials that verified). */
  readonly #counts = new Map<string, { nc: number; expires: number }>();

  constructor(options: DigestServerOptions = {}) {
    this.#secret = options.secret ?? randomBytes(32);
    this.#ttl = options.nonceTtlMs ?? DEFAULT_NONCE_TTL_MS;
    this.#algorithms = options.algorithms ?? DIGEST_ALGORITHMS;
    this.#clock = options.clock ?? systemClock;
    this.#opaque = randomBytes(8).toString("hex");
    this.#checkUri = options.checkUri ?? true;
  }

  /**
   * The challenge header values for `realm`, one per algorithm, for WWW-Authenticate (401)
   * or Proxy-Authenticate (407).
   */
  challenge(realm: string, stale = false): string[] {
    const nonce = this.#newNonce(realm);
    return this.#algorithms.map((algorithm) =>
      formatAuthHeader("Digest", [
        ["realm", realm, true],
        ["nonce", nonce, true],
        ["opaque", this.#opaque, true],
        ["algorithm", algorithm, false],
        ["qop", QOP, true],
        ...(stale ? ([["stale", "true", false]] as const) : []),
      ]),
    );
  }

  /** Checks credentials (an Authorization or Proxy-Authorization value) for `request`. */
  verify(
    request: SipRequest,
    credentials: AuthHeader,
    realm: string,
    lookup: Ha1Lookup,
  ): DigestVerdict {
    const p = credentials.params;
    if (credentials.scheme.toLowerCase() !== "digest") return { ok: false, reason: "malformed" };
    const user = p.get("username");
    const nonce = p.get("nonce");
    const uri = p.get("uri");
    const response = p.get("response");
    if (user === undefined || nonce === undefined || uri === undefined || response === undefined) {
      return { ok: false, reason: "malformed" };
    }
    if (p.get("realm") !== realm) return { ok: false, reason: "wrong-realm", user };
    const algorithmName = (p.get("algorithm") ?? "MD5").toUpperCase();
    const algorithm = this.#algorithms.find((a) => a === algorithmName);
    if (algorithm === undefined) return { ok: false, reason: "malformed", user };
    const qop = p.get("qop");
    const nc = p.get("nc");
    const cnonce = p.get("cnonce");
    if (qop !== undefined && (qop !== QOP || nc === undefined || cnonce === undefined)) {
      return { ok: false, reason: "malformed", user };
    }
    if (nc !== undefined && !/^[0-9a-fA-F]{8}$/.test(nc))
      return { ok: false, reason: "malformed", user };

    const age = this.#nonceAge(nonce, realm);
    if (age === undefined) return { ok: false, reason: "bad-nonce", user };
    // RFC 3261 §22.4: the digest-uri must be the Request-URI.
    if (this.#checkUri && uri !== request.uri.toString())
      return { ok: false, reason: "uri-mismatch", user };
    const secret = lookup(user, realm, algorithm);
    if (secret === undefined) return { ok: false, reason: "unknown-user", user };
    const ha2 = digestHash(algorithm, `${request.method}:${uri}`);
    const expected =
      qop === undefined
        ? digestHash(algorithm, `${secret}:${nonce}:${ha2}`)
        : digestHash(algorithm, `${secret}:${nonce}:${nc}:${cnonce}:${qop}:${ha2}`);
    if (!sameHex(expected, response)) return { ok: false, reason: "bad-response", user };
    // Good credentials on an expired nonce: the client retries with a fresh one (stale=true).
    if (age > this.#ttl) return { ok: false, reason: "stale", user };
    if (nc !== undefined && !this.#countIsNew(nonce, parseInt(nc, 16))) {
      return { ok: false, reason: "replay", user };
    }
    return { ok: true, user, algorithm };
  }

  #newNonce(realm: string): string {
    const ts = Math.floor(this.#clock.now()).toString(36);
    const salt = randomBytes(6).toString("base64url");
    return `${ts}.${salt}.${this.#mac(ts, salt, realm)}`;
  }

  #mac(ts: string, salt: string, realm: string): string {
    return createHmac("sha256", this.#secret)
      .update(`${ts}.${salt}.${realm}`)
      .digest("base64url")
      .slice(0, 22);
  }

  /** Milliseconds since we issued `nonce` for `realm`, or undefined if we did not. */
  #nonceAge(nonce: string, realm: string): number | undefined {
    const [ts, salt, mac] = nonce.split(".");
    if (ts === undefined || salt === undefined || mac === undefined || nonce.length > 80) {
      return undefined;
    }
    const expected = this.#mac(ts, salt, realm);
    if (
      mac.length !== expected.length ||
      !timingSafeEqual(Buffer.from(mac), Buffer.from(expected))
    ) {
      return undefined;
    }
    const issued = parseInt(ts, 36);
    const age = this.#clock.now() - issued;
    return Number.isFinite(age) && age >= 0 ? age : undefined;
  }

  /** RFC 7616 §3.3: each nonce count is used once, growing. */
  #countIsNew(nonce: string, nc: number): boolean {
    const now = this.#clock.now();
    if (this.#counts.size > 100_000) {
      for (const [key, entry] of this.#counts) if (entry.expires <= now) this.#counts.delete(key);
    }
    const seen = this.#counts.get(nonce);
    if (seen !== undefined && nc <= seen.nc) return false;
    this.#counts.set(nonce, { nc, expires: now + this.#ttl });
    return true;
  }
}

function sameHex(expected: string, given: string): boolean {
  const a = Buffer.from(expected, "latin1");
  const b = Buffer.from(given.toLowerCase(), "latin1");
  return a.length === b.length && timingSafeEqual(a, b);
}

/** What a client needs to answer a challenge. */
export interface DigestChallenge {
  readonly realm: string;
  readonly nonce: string;
  readonly opaque?: string;
  readonly algorithm: DigestAlgorithm;
  readonly qop?: string;
}

/** Reads a WWW-Authenticate / Proxy-Authenticate value we can answer, if it is one. */
export function readChallenge(header: AuthHeader): DigestChallenge | undefined {
  if (header.scheme.toLowerCase() !== "digest") return undefined;
  const realm = header.params.get("realm");
  const nonce = header.params.get("nonce");
  const algorithm = (header.params.get("algorithm") ?? "MD5").toUpperCase();
  if (realm === undefined || nonce === undefined) return undefined;
  if (algorithm !== "MD5" && algorithm !== "SHA-256") return undefined;
  const qops = header.params
    .get("qop")
    ?.split(",")
    .map((q) => q.trim());
  return {
    realm,
    nonce,
    opaque: header.params.get("opaque"),
    algorithm,
    qop: qops === undefined ? undefined : qops.includes(QOP) ? QOP : undefined,
  };
}

/**
 * The Authorization / Proxy-Authorization value answering `challenge` (the client side, for
 * the SDK and for tests).
 */
export function answerChallenge(
  challenge: DigestChallenge,
  request: { method: string; uri: string },
  credentials: { user: string; password: string },
  nc = 1,
  cnonce = randomBytes(8).toString("hex"),
): string {
  const { algorithm, realm, nonce, qop } = challenge;
  const secret = digestHash(algorithm, `${credentials.user}:${realm}:${credentials.password}`);
  const ha2 = digestHash(algorithm, `${request.method}:${request.uri}`);
  const ncText = nc.toString(16).padStart(8, "0");
  const response =
    qop === undefined
      ? digestHash(algorithm, `${secret}:${nonce}:${ha2}`)
      : digestHash(algorithm, `${secret}:${nonce}:${ncText}:${cnonce}:${qop}:${ha2}`);
  return formatAuthHeader("Digest", [
    ["username", credentials.user, true],
    ["realm", realm, true],
    ["nonce", nonce, true],
    ["uri", request.uri, true],
    ["response", response, true],
    ["algorithm", algorithm, false],
    ...(challenge.opaque === undefined ? [] : ([["opaque", challenge.opaque, true]] as const)),
    ...(qop === undefined
      ? []
      : ([
          ["qop", qop, false],
          ["nc", ncText, false],
          ["cnonce", cnonce, true],
        ] as const)),
  ]);
}
