/**
 * A registration binding (RFC 3261 §10): an address-of-record and one contact where it can
 * be reached, until `expiresAt`, through `path` — the Path (RFC 3327) to the proxy that holds
 * the client's flow, nearest to the registrar first.
 */
export interface Binding {
  /** Canonical AOR: "sip:alice@sipsteer.test". */
  readonly aor: string;
  /** Identity of the contact within the AOR (see contactKey). */
  readonly key: string;
  /** The Contact URI as the client wrote it. */
  readonly contact: string;
  /** The Contact's header parameters other than expires and q, as written (";+sip.instance=…"). */
  readonly params: string;
  readonly callId: string;
  readonly cseq: number;
  /** Epoch milliseconds. */
  readonly expiresAt: number;
  readonly q: number | undefined;
  /** Route set to reach the contact (RFC 3327 Path values), may be empty. */
  readonly path: readonly string[];
  /** Id of the proxy holding the client's flow. */
  readonly proxy: string;
  readonly userAgent: string | undefined;
  readonly updatedAt: number;
}

/** One contact of a REGISTER: to add or refresh (expires > 0) or remove (expires 0). */
export interface ContactChange {
  readonly binding: Binding;
  /** Seconds; 0 removes. */
  readonly expires: number;
}

/** What a REGISTER asks (RFC 3261 §10.3 steps 6 and 7), applied atomically. */
export interface RegistrationUpdate {
  readonly aor: string;
  readonly callId: string;
  readonly cseq: number;
  readonly now: number;
  readonly changes: readonly ContactChange[];
  /** "Contact: *" with Expires: 0: remove every binding of the AOR. */
  readonly removeAll?: boolean;
}

export type RegistrationOutcome =
  | { readonly ok: true; readonly bindings: Binding[] }
  /**
   * "If the Call-ID is the same [and] the CSeq in the request is [not] higher than the value
   * stored for that binding ... the update MUST be aborted and the request fails."
   */
  | { readonly ok: false; readonly reason: "out-of-order" };

export type StoreHealth = "ok" | "degraded" | "down";

/**
 * Where bindings live: SQLite (one file, shared by the proxies of one host) or Redis (proxies
 * on several hosts). Every method is atomic on its own.
 */
export interface LocationStore {
  readonly kind: "sqlite" | "redis";
  start(): Promise<void>;
  stop(): Promise<void>;
  health(): StoreHealth;
  /** The unexpired bindings of an AOR, highest q first. */
  lookup(aor: string, now: number): Promise<Binding[]>;
  apply(update: RegistrationUpdate): Promise<RegistrationOutcome>;
  /** Unexpired bindings in the store (the load report's `registrations`). */
  count(now: number): Promise<number>;
  /** Deletes expired bindings; returns how many. */
  purgeExpired(now: number): Promise<number>;
}

/** Orders bindings as a registrar returns them: highest q first, then most recent. */
export function byPreference(a: Binding, b: Binding): number {
  return (b.q ?? 1) - (a.q ?? 1) || b.updatedAt - a.updatedAt;
}
