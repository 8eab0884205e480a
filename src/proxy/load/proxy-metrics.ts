import { Counter, Gauge, Registry } from "prom-client";
import type { EngineStats } from "../proxy-engine.js";

/** What /metrics reads at each scrape (one engine's, or the sum of a cluster's). */
export interface MetricsSource {
  readonly stats: () => EngineStats;
  readonly registrations: () => number;
  readonly draining: () => boolean;
  readonly workload: () => number;
}

/** The proxy's Prometheus registry: gauges and counters read from `source` at scrape time. */
export function proxyMetrics(proxyId: string, source: MetricsSource): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ proxy: proxyId });
  let snapshot: EngineStats | undefined;
  // One snapshot per scrape: the first collector takes it, the others read it.
  const stats = (): EngineStats => (snapshot ??= source.stats());
  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read());
      },
    });
  const counter = (name: string, help: string, read: () => number) =>
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(read());
      },
    });
  gauge("sipsteer_proxy_calls", "Early and confirmed dialogs", () => {
    snapshot = undefined;
    return stats().calls;
  });
  gauge("sipsteer_proxy_media_streams", "Media streams on the relay", () => stats().media);
  gauge("sipsteer_proxy_cps", "Calls started per second over the last 5 s", () => stats().cps);
  gauge(
    "sipsteer_proxy_registrations",
    "Unexpired bindings in the location store",
    source.registrations,
  );
  gauge("sipsteer_proxy_transactions", "Live SIP transactions", () => stats().transactions);
  gauge("sipsteer_proxy_draining", "1 while draining", () => (source.draining() ? 1 : 0));
  gauge("sipsteer_proxy_workload", "Workload, 0 idle to 1 at capacity", source.workload);
  gauge("sipsteer_proxy_connections", "Open SIP connections", () => stats().connections);
  counter("sipsteer_proxy_sip_received_total", "SIP messages received", () => stats().received);
  counter("sipsteer_proxy_sip_sent_total", "SIP messages sent", () => stats().sent);
  counter(
    "sipsteer_proxy_sip_parse_errors_total",
    "Messages that did not parse",
    () => stats().parseErrors,
  );
  counter(
    "sipsteer_proxy_refused_destinations_total",
    "Sends refused by allowedDestinations",
    () => stats().refusedDestinations,
  );
  counter(
    "sipsteer_proxy_connections_refused_total",
    "Connections refused by the connection limits",
    () => stats().connectionsRefused,
  );
  const auth = (key: keyof NonNullable<EngineStats["auth"]>) => () => stats().auth?.[key] ?? 0;
  counter("sipsteer_proxy_auth_challenges_total", "Digest challenges sent", auth("challenges"));
  counter("sipsteer_proxy_auth_accepted_total", "Requests authenticated", auth("accepted"));
  counter("sipsteer_proxy_auth_failures_total", "Failed authentications", auth("failures"));
  counter(
    "sipsteer_proxy_auth_slowed_total",
    "Answers delayed for repeated failures",
    auth("slowed"),
  );
  counter("sipsteer_proxy_auth_refused_total", "Requests refused while banned", auth("refused"));
  return registry;
}

/** Sums the stats of several engines (the processes of one proxy). */
export function sumStats(all: readonly EngineStats[]): EngineStats {
  const sum = (read: (s: EngineStats) => number) => all.reduce((n, s) => n + read(s), 0);
  const withAuth = all.filter((s) => s.auth !== undefined);
  return {
    calls: sum((s) => s.calls),
    media: sum((s) => s.media),
    cps: sum((s) => s.cps),
    transactions: sum((s) => s.transactions),
    connections: sum((s) => s.connections),
    received: sum((s) => s.received),
    sent: sum((s) => s.sent),
    parseErrors: sum((s) => s.parseErrors),
    refusedDestinations: sum((s) => s.refusedDestinations),
    connectionsRefused: sum((s) => s.connectionsRefused),
    auth:
      withAuth.length === 0
        ? undefined
        : {
            challenges: sum((s) => s.auth?.challenges ?? 0),
            accepted: sum((s) => s.auth?.accepted ?? 0),
            failures: sum((s) => s.auth?.failures ?? 0),
            slowed: sum((s) => s.auth?.slowed ?? 0),
            refused: sum((s) => s.auth?.refused ?? 0),
          },
  };
}
