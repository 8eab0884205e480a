import { writeFileSync } from "node:fs";
import { stringify } from "yaml";
import { parseMonitorConfig, type MonitorConfigInput } from "../../monitor/index.js";
import { parseProxyConfig, type ProxyConfigInput } from "../../proxy/index.js";
import type { PreparedData } from "./data-folder.js";
import type { ProxyPlan, UpPlan } from "./plan.js";
import type { UpConfig } from "./up-config.js";

/**
 * The monitor's config: HTTP, the SIP redirect front on UDP and TCP, the report key, the
 * admin token, the planned proxies (known up front, so that they show as stale until their
 * first push), and its DNS front.
 */
export function monitorConfigOf(
  plan: UpPlan,
  data: PreparedData,
  config: Readonly<UpConfig>,
): MonitorConfigInput & { dns: unknown } {
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
  };
}

/**
 * Proxy n's config: SIP on UDP and TCP (and TLS with a certificate) and WS on its own
 * address, HTTP, digest auth against the shared credentials file, the shared SQLite store,
 * the other proxies as its fleet, and signed pushes to the monitor.
 */
export function proxyConfigOf(
  plan: UpPlan,
  proxy: ProxyPlan,
  data: PreparedData,
  config: Readonly<UpConfig>,
  monitorHttp: string,
): ProxyConfigInput {
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
  };
}

/** Validates a child's config as the child will (a bug here stops up, naming the field). */
export function writeMonitorConfig(
  file: string,
  config: MonitorConfigInput & { dns: unknown },
): void {
  parseMonitorConfig(config);
  writeFileSync(file, stringify(config), { mode: 0o600 });
}

export function writeProxyConfig(file: string, config: ProxyConfigInput): void {
  parseProxyConfig(config);
  writeFileSync(file, stringify(config), { mode: 0o600 });
}
