import { Counter, Gauge, Registry } from "prom-client";
import { REFUSAL_REASONS, type RefusalReason } from "./access-control.js";
import type { GatewayStatus } from "./gateway-status.js";

/**
 * Refusals that digest authentication makes (RFC 3261 §22), named beside the access rules'
 * reasons: `unauthenticated` counts the 401/407 challenges (the first leg of every
 * handshake among them), `auth-failed` wrong credentials, `auth-refused` requests refused
 * while their source or user was banned for guessing.
 */
export const AUTH_REFUSAL_REASONS = ["unauthenticated", "auth-failed", "auth-refused"] as const;
export type AuthRefusalReason = (typeof AUTH_REFUSAL_REASONS)[number];

/** Every reason the gateway refuses a request for, access rules first. */
export type GatewayRefusalReason = RefusalReason | AuthRefusalReason;

/** The `refused` summary of `GET /status` and `requests_refused_total`: every reason, 0 or more. */
export function refusalsOf(status: GatewayStatus): Readonly<Record<GatewayRefusalReason, number>> {
  const auth = status.auth;
  const access = Object.fromEntries(
    REFUSAL_REASONS.map((r) => [r, status.access.refused[r] ?? 0]),
  ) as Record<RefusalReason, number>;
  return {
    ...access,
    unauthenticated: auth?.challenges ?? 0,
    "auth-failed": auth?.failures ?? 0,
    "auth-refused": auth?.refused ?? 0,
  };
}

const FORWARD_KINDS = ["register", "dialog", "other"] as const;
const FORWARDED: Record<(typeof FORWARD_KINDS)[number], (f: GatewayStatus["forwarded"]) => number> =
  {
    register: (f) => f.registers,
    dialog: (f) => f.dialogs,
    other: (f) => f.other,
  };

/**
 * The gateway's Prometheus metrics (`sipsteer_gateway_*`, labelled `gateway: id`), read from
 * one `status()` snapshot per scrape.
 */
export class GatewayMetrics {
  readonly #registry = new Registry();
  readonly #status: () => GatewayStatus;
  #snapshot: GatewayStatus | undefined;

  constructor(id: string, status: () => GatewayStatus) {
    this.#status = status;
    this.#registry.setDefaultLabels({ gateway: id });
    const registers = [this.#registry];
    const s = (): GatewayStatus => (this.#snapshot ??= this.#status());
    const name = (n: string) => `sipsteer_gateway_${n}`;
    const gauge = (n: string, help: string, read: (s: GatewayStatus) => number) =>
      new Gauge({
        name: name(n),
        help,
        registers,
        collect() {
          this.set(read(s()));
        },
      });
    const counter = (n: string, help: string, read: (s: GatewayStatus) => number) =>
      new Counter({
        name: name(n),
        help,
        registers,
        collect() {
          this.reset();
          this.inc(read(s()));
        },
      });

    counter(
      "requests_admitted_total",
      "Requests that passed the access rules",
      (s) => s.access.admitted,
    );
    new Counter({
      name: name("requests_refused_total"),
      help: "Requests refused, by reason (access rules and authentication)",
      labelNames: ["reason"],
      registers,
      collect() {
        this.reset();
        for (const [reason, n] of Object.entries(refusalsOf(s()))) this.inc({ reason }, n);
      },
    });
    gauge(
      "registrations",
      "Registrations through the gateway, pinned to a proxy",
      (s) => s.registrations,
    );
    gauge("dialogs", "Early and confirmed dialogs through the gateway", (s) => s.dialogs);
    new Counter({
      name: name("forwarded_total"),
      help: "Requests sent to a proxy, by kind (each attempt counts)",
      labelNames: ["kind"],
      registers,
      collect() {
        this.reset();
        for (const kind of FORWARD_KINDS) this.inc({ kind }, FORWARDED[kind](s().forwarded));
      },
    });
    counter(
      "retries_total",
      "Attempts moved on to the next proxy (timeout or 503)",
      (s) => s.forwarded.retries,
    );
    counter(
      "no_proxy_total",
      "Requests answered 503: no proxy left to try",
      (s) => s.forwarded.noProxy,
    );
    gauge("upstream_pins", "Registrations pinned to a proxy", (s) => s.upstream.pins);
    gauge("upstream_held_off", "Proxies held off new work now", (s) => s.upstream.heldOff.length);
    new Counter({
      name: name("upstream_failures_total"),
      help: "Failures (timeout, 503, closed flow) seen per proxy",
      labelNames: ["proxy"],
      registers,
      collect() {
        this.reset();
        for (const [proxy, n] of Object.entries(s().upstream.failuresByProxy))
          this.inc({ proxy }, n);
      },
    });
    new Counter({
      name: name("calls_total"),
      help: "Calls (initial INVITEs) answered 2xx, per proxy that carried them",
      labelNames: ["proxy"],
      registers,
      collect() {
        this.reset();
        for (const [proxy, n] of Object.entries(s().forwarded.callsByProxy)) this.inc({ proxy }, n);
      },
    });
    new Gauge({
      name: name("monitor_up"),
      help: "1 when the monitor answered its last query",
      labelNames: ["monitor"],
      registers,
      collect() {
        this.reset();
        for (const m of s().upstream.monitors) this.set({ monitor: m.url }, m.up ? 1 : 0);
      },
    });
    counter(
      "monitor_queries_total",
      "Queries sent to the load monitors",
      (s) => s.upstream.monitorQueries,
    );
    counter(
      "monitor_failures_total",
      "Monitor queries without a usable answer",
      (s) => s.upstream.monitorFailures,
    );
    gauge(
      "tracked_sources",
      "Sources whose request rate is tracked",
      (s) => s.access.trackedSources,
    );
    counter("sip_received_total", "SIP messages received", (s) => s.transport.received);
    counter("sip_sent_total", "SIP messages sent", (s) => s.transport.sent);
    counter(
      "sip_parse_errors_total",
      "Messages that did not parse",
      (s) => s.transport.parseErrors,
    );
    gauge("connections", "Open SIP connections", (s) => s.transport.connections);
  }

  get contentType(): string {
    return this.#registry.contentType;
  }

  /** The Prometheus text, every metric read from one `status()` taken now. */
  async scrape(): Promise<string> {
    this.#snapshot = this.#status();
    try {
      return await this.#registry.metrics();
    } finally {
      this.#snapshot = undefined;
    }
  }
}
