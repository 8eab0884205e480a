import type { SendTarget, SipRequest, SipResponse } from "../../sip/index.js";

/** One proxy the gateway may forward to. */
export interface UpstreamHop {
  readonly id: string;
  readonly target: SendTarget;
}

/** What the gateway places upstream: a registration (keyed by AOR) or a dialog (by Call-ID). */
export type UpstreamKind = "register" | "dialog";

/**
 * How the proxy core runs as the gateway (issue 9): instead of the location store, new
 * registrations and dialogs go to proxies the upstream names, tried one after another when
 * one times out or answers 503 before any provisional. src/gateway implements it.
 */
export interface Upstream {
  /** The proxies to try, in order; empty: none is available (the request gets 503). */
  candidates(kind: UpstreamKind, key: string, method: string): Promise<readonly UpstreamHop[]>;
  /** A final response from `hop` (a REGISTER's 2xx pins the registration there). */
  answered(hop: UpstreamHop, kind: UpstreamKind, key: string, response: SipResponse): void;
  /** `hop` timed out (408), failed in transport or answered 503: the next is tried. */
  failed(hop: UpstreamHop, status: number): void;
  /** A proxy that sends nothing at all for this long counts as timed out. */
  readonly attemptTimeoutMs: number;
  /** A new INVITE of an authenticated `user`: undefined to go on, else the refusal to send. */
  admitCall(request: SipRequest, user: string): SipResponse | undefined;
  /** A call admitted by admitCall went forward; it is counted until the dialog ends. */
  callStarted(user: string, callId: string): void;
  /** No proxy to try (candidates() was empty or every one failed). */
  exhausted(): void;
}
