import { writeFileSync } from "node:fs";
import { stringify } from "yaml";
import { parseMonitorConfig, type MonitorConfigInput } from "../../monitor/index.js";
import { parseProxyConfig, type ProxyConfigInput } from "../../proxy/index.js";
import type { PreparedData } from "./data-folder.js";
import { ngEndpoint, type ProxyPlan, type UpPlan } from "./plan.js";
import { parseRelaysConfig, type RelaysConfigInput } from "./relay-keeper.js";
import type { LOG_LEVELS, UpConfig } from "./up-config.js";

/*
 * The relays in the children's configs (issue 8). The monitor's `relays` and the proxy's
 * `media` are being added to their schemas; both schemas are plain `z.object`s, which strip
 * keys they do not know, so today's monitor and proxy read these configs and ignore the new
 * keys, and once the schemas have them they are read and checked (writeMonitorConfig and
 * writeProxyConfig parse with the children's own parsers). No switch is needed; were either
 * schema strict, the key would have to wait for it.
 */

/** The monitor's entry for a relay: polled over ng (`statistics`, `ping`). */
export interface MonitorRelayEntry {
  readonly id: string;
  readonly adapter: "rtpengine";
  readonly ng: string;
  readonly capacity: { readonly sessions: number };
}

/** The proxy's media section: engage a relay when the two sides cannot talk directly. */
export interface ProxyMediaSection {
  readonly relay: "auto";
  /** Its own relay first; none when up runs without relays. */
  readonly relays: readonly { readonly id: string; readonly ng: string }[];
  /** Where to ask `GET /v1/select?kind=media` for the least-loaded relay. */
  readonly monitors: readonly string[];
}

/**
 * The monitor's config: HTTP, the SIP redirect front on UDP and TCP, the report key, the
 * admin token, the planned proxies (known up front, so that they show as stale until their
 * first push), and its DNS front.
 */
export function monitorConfigOf(
  plan: UpPlan,
  data: PreparedData,
  config: Readonly<UpConfig>,
): MonitorConfigInput & { dns: unknown; relays: readonly MonitorRelayEntry[] } {
  const m = plan.monitor;
  return {
    http: { address: m.address, port: m.httpPort },
    sip: {
      listen: [
        { protocol: "udp", address: m.address, port: m.sipPort },
        { protocol: "tcp", address: m.address, port: m.sipPort },
      ],
    },
    // The DNS front's config (issue 5): today's monitor strips the key; once it has the front,
    // it serves the zone here.
    dns: {
      zone: plan.domain,
      listen: [
        { protocol: "udp", address: m.address, port: m.dnsPort },
        { protocol: "tcp", address: m.address, port: m.dnsPort },
      ],
    },
    keys: [data.secrets.reportKey],
    adminToken: data.secrets.adminToken,
    allowedDestinations: [...config.allowedDestinations],
    proxies: plan.proxies.map((p) => p.id),
    relays: plan.relays.map((r) => ({
      id: r.id,
      adapter: "rtpengine" as const,
      ng: ngEndpoint(r),
      capacity: { sessions: r.sessions },
    })),
  };
}

/**
 * Proxy n's config: SIP on UDP and TCP (and TLS with a certificate) and WS on its own
 * address, HTTP, digest auth against the shared credentials file, the shared SQLite store,
 * the other proxies as its fleet, signed pushes to the monitor, and its media relay (the one
 * beside it, and the monitor to ask for the least-loaded one).
 */
export function proxyConfigOf(
  plan: UpPlan,
  proxy: ProxyPlan,
  data: PreparedData,
  config: Readonly<UpConfig>,
  monitorHttp: string,
): ProxyConfigInput & { media: ProxyMediaSection } {
  const { address } = proxy;
  const tls = config.proxy.tls;
  return {
    id: proxy.id,
    domains: [plan.domain],
    listen: [
      { protocol: "udp", address, port: proxy.sipPort },
      { protocol: "tcp", address, port: proxy.sipPort },
      ...(tls === undefined || proxy.tlsPort === undefined
        ? []
        : [{ protocol: "tls" as const, address, port: proxy.tlsPort, tls: { ...tls } }]),
      { protocol: "ws", address, port: proxy.wsPort },
    ],
    allowedDestinations: [...config.allowedDestinations],
    fleet: plan.proxies
      .filter((other) => other.id !== proxy.id)
      .map((other) => ({ id: other.id, uri: `sip:${other.address}:${other.sipPort}` })),
    auth: {
      enabled: true,
      credentialsFile: data.files.credentials,
      algorithms: [...config.proxy.authAlgorithms],
    },
    store: { kind: "sqlite", file: data.files.store },
    http: { address, port: proxy.httpPort },
    report: { push: [`${monitorHttp}/v1/reports`], key: { ...data.secrets.reportKey } },
    adminToken: data.secrets.adminToken,
    drainTimeoutMs: config.proxy.drainTimeoutMs,
    flowTokenSecret: data.secrets.flowTokenSecret,
    media: {
      relay: "auto",
      relays: plan.relays
        .filter((r) => r.proxy === proxy.id)
        .map((r) => ({ id: r.id, ng: ngEndpoint(r) })),
      monitors: [monitorHttp],
    },
  };
}

/** rtpengine's syslog level for up's log level (notice at info: its info is per ng command). */
const RTPENGINE_LOG_LEVELS: Record<(typeof LOG_LEVELS)[number], number> = {
  fatal: 2,
  error: 3,
  warn: 4,
  info: 5,
  debug: 7,
  trace: 7,
  silent: 0,
};

/** The relay keeper's config: every relay of the plan, each logging to DATA/logs/r<n>.log. */
export function relaysConfigOf(
  plan: UpPlan,
  data: PreparedData,
  config: Readonly<UpConfig>,
  binary: string,
): RelaysConfigInput {
  return {
    binary,
    logLevel: RTPENGINE_LOG_LEVELS[config.logLevel],
    relays: plan.relays.map((r) => ({
      id: r.id,
      ngAddress: r.ngAddress,
      ngPort: r.ngPort,
      interfaces: [r.rtpAddress],
      portMin: r.rtpMin,
      portMax: r.rtpMax,
      ...(r.sessions === 0 ? {} : { maxSessions: r.sessions }),
      logFile: data.files.log(r.id),
    })),
  };
}

/** Validates a child's config as the child will (a bug here stops up, naming the field). */
export function writeMonitorConfig(
  file: string,
  config: MonitorConfigInput & { dns: unknown; relays: unknown },
): void {
  parseMonitorConfig(config);
  writeFileSync(file, stringify(config), { mode: 0o600 });
}

export function writeProxyConfig(
  file: string,
  config: ProxyConfigInput & { media: unknown },
): void {
  parseProxyConfig(config);
  writeFileSync(file, stringify(config), { mode: 0o600 });
}

export function writeRelaysConfig(file: string, config: RelaysConfigInput): void {
  parseRelaysConfig(config);
  writeFileSync(file, stringify(config), { mode: 0o600 });
}
