import type { AuthStats } from "../proxy/auth-guard.js";
import type { AccessStats } from "./access-control.js";
import type { ProxyChooserStats } from "./proxy-chooser.js";

/** What the gateway forwarded upstream, since start. */
export interface ForwardStats {
  /** REGISTERs sent to a proxy (each attempt of a retry counts once). */
  readonly registers: number;
  /** New dialogs (initial INVITEs) and other out-of-dialog requests sent to a proxy. */
  readonly dialogs: number;
  readonly other: number;
  /** Attempts at a proxy that timed out or answered 503 (the next was tried, if one was left). */
  readonly retries: number;
  /** Requests answered 503 because no proxy was left to try. */
  readonly noProxy: number;
  /** Calls (initial INVITEs) answered 2xx, by the proxy that carried them. */
  readonly callsByProxy: Readonly<Record<string, number>>;
}

/**
 * The gateway's `GET /status` body (issue 9), and what its Prometheus metrics read at each
 * scrape: admitted and refused requests by reason, registrations and dialogs through it.
 */
export interface GatewayStatus {
  readonly id: string;
  /** Listening, not stopping, and a monitor (or a fallback proxy) to ask. */
  readonly ready: boolean;
  readonly access: AccessStats;
  /** Undefined when authentication is off. */
  readonly auth: AuthStats | undefined;
  readonly upstream: ProxyChooserStats;
  readonly forwarded: ForwardStats;
  /** Registrations through the gateway now (pinned to a proxy). */
  readonly registrations: number;
  /** Early and confirmed dialogs through the gateway now. */
  readonly dialogs: number;
  readonly transport: {
    readonly received: number;
    readonly sent: number;
    readonly parseErrors: number;
    readonly connections: number;
  };
}
