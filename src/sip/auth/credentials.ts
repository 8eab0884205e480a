import { createHash } from "node:crypto";

/** The digest algorithms of RFC 3261 (MD5) and RFC 8760 (SHA-256). */
export type DigestAlgorithm = "MD5" | "SHA-256";

export const DIGEST_ALGORITHMS: readonly DigestAlgorithm[] = ["SHA-256", "MD5"];

/** H(data) for a digest algorithm, as lower-case hex. */
export function digestHash(algorithm: DigestAlgorithm, data: string): string {
  return createHash(algorithm === "MD5" ? "md5" : "sha256")
    .update(data, "utf8")
    .digest("hex");
}

/** HA1 = H(username ":" realm ":" password) (RFC 2617 §3.2.2.2, RFC 7616 §3.4.2). */
export function ha1(
  algorithm: DigestAlgorithm,
  user: string,
  realm: string,
  password: string,
): string {
  return digestHash(algorithm, `${user}:${realm}:${password}`);
}

/** One user of one realm with both HA1 values, so that both algorithms work. */
export interface Credential {
  readonly user: string;
  readonly realm: string;
  readonly ha1Md5: string;
  readonly ha1Sha256: string;
}

/**
 * The credentials file of DESIGN.md, read by proxies and the gateway: a line per user and
 * realm, `user:realm:ha1-md5:ha1-sha256`; `#` starts a comment. Passwords are never stored.
 */
export class Credentials {
  readonly #byKey = new Map<string, Credential>();

  constructor(entries: Iterable<Credential> = []) {
    for (const c of entries) this.#byKey.set(`${c.realm}\u0000${c.user}`, c);
  }

  get size(): number {
    return this.#byKey.size;
  }

  get(user: string, realm: string): Credential | undefined {
    return this.#byKey.get(`${realm}\u0000${user}`);
  }

  /** HA1 for an algorithm, or undefined for an unknown user. */
  ha1(user: string, realm: string, algorithm: DigestAlgorithm): string | undefined {
    const c = this.get(user, realm);
    if (c === undefined) return undefined;
    return algorithm === "MD5" ? c.ha1Md5 : c.ha1Sha256;
  }

  /** True when `user` exists in `realm`. */
  has(user: string, realm: string): boolean {
    return this.get(user, realm) !== undefined;
  }

  /** Every credential, for writing the file back. */
  entries(): Credential[] {
    return [...this.#byKey.values()];
  }

  /**
   * Reads the file's text. A malformed line throws naming the line (start-up must stop
   * with a message that points at the problem).
   */
  static parse(text: string, source = "credentials"): Credentials {
    const entries: Credential[] = [];
    text.split(/\r?\n/).forEach((raw, index) => {
      const line = raw.trim();
      if (line === "" || line.startsWith("#")) return;
      const parts = line.split(":");
      const [user, realm, md5, sha256] = parts;
      if (
        parts.length !== 4 ||
        !user ||
        !realm ||
        !/^[0-9a-f]{32}$/.test(md5 ?? "") ||
        !/^[0-9a-f]{64}$/.test(sha256 ?? "")
      ) {
        throw new RangeError(
          `${source}:${index + 1}: expected user:realm:<32 hex md5 HA1>:<64 hex sha-256 HA1>`,
        );
      }
      entries.push({ user, realm, ha1Md5: md5!, ha1Sha256: sha256! });
    });
    return new Credentials(entries);
  }

  /** A file line for a user, from a password (the password itself is not kept). */
  static line(user: string, realm: string, password: string): string {
    return `${user}:${realm}:${ha1("MD5", user, realm, password)}:${ha1("SHA-256", user, realm, password)}`;
  }
}
