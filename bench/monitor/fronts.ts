// The monitor whose fronts parts 1–3 (HTTP, DNS, SIP 302) load: a `sipsteer monitor` child
// with its HTTP API, its SIP redirect front over UDP and, where this build has it, its DNS
// front over UDP, fed by three real sipsteer proxies (in this process, so that they do not
// share the monitor's event loop) pushing their signed reports every 250 ms as they do by
// default. Its answers are computed against a real, live table.
import { parseMonitorConfig } from "../../src/monitor/index.js";
import { Proxy } from "../../src/proxy/index.js";
import { freePort } from "../../test/helpers/sipp.js";
import {
  DOMAIN,
  KEY,
  LOOPBACK,
  SERVER_CPU,
  startMonitor,
  waitEligible,
  type MonitorProcess,
} from "./harness.js";

/**
 * Whether this build's monitor has the DNS front (DESIGN.md "Client query"): its config keeps
 * a `dns` section (zod drops keys it does not know).
 */
export function monitorHasDns(): boolean {
  try {
    const parsed = parseMonitorConfig({
      dns: { zone: DOMAIN, listen: [{ protocol: "udp", address: "127.0.0.1", port: 0 }] },
    });
    return "dns" in parsed && (parsed as Record<string, unknown>).dns !== undefined;
  } catch {
    return false;
  }
}

export interface Fronts {
  readonly monitor: MonitorProcess;
  readonly proxies: readonly Proxy[];
  readonly sipPort: number;
  /** Undefined when this build's monitor has no DNS front. */
  readonly dnsPort: number | undefined;
  /** Each proxy's id and UDP SIP port, for the references' static copies of the table. */
  readonly destinations: readonly { id: string; port: number }[];
  stop(): Promise<void>;
}

export const PROXY_COUNT = 3;

export async function startFronts(): Promise<Fronts> {
  const sipPort = await freePort();
  const dnsPort = monitorHasDns() ? await freePort() : undefined;
  const monitor = await startMonitor(
    {
      http: { address: "127.0.0.1", port: 0 },
      keys: [KEY],
      allowedDestinations: LOOPBACK,
      sip: { listen: [{ protocol: "udp", address: "127.0.0.1", port: sipPort }] },
      ...(dnsPort === undefined
        ? {}
        : {
            dns: {
              zone: DOMAIN,
              listen: [{ protocol: "udp", address: "127.0.0.1", port: dnsPort }],
            },
          }),
    },
    SERVER_CPU,
  );
  const proxies: Proxy[] = [];
  const stop = async () => {
    for (const proxy of proxies) await proxy.stop();
    await monitor.stop();
  };
  try {
    for (let i = 1; i <= PROXY_COUNT; i++) {
      const proxy = new Proxy({
        id: `p${i}`,
        domains: [DOMAIN],
        listen: [{ protocol: "udp", address: "127.0.0.1", port: 0 }],
        allowedDestinations: LOOPBACK,
        auth: { enabled: false },
        http: { address: "127.0.0.1", port: 0 },
        report: { push: [`${monitor.http}/v1/reports`], key: KEY },
      });
      proxies.push(proxy);
      await proxy.start();
    }
    await waitEligible(monitor.http, PROXY_COUNT);
  } catch (e) {
    await stop();
    throw e;
  }
  const destinations = proxies.map((p) => ({
    id: p.config.id,
    port: p.listeners.find((l) => l.protocol === "udp")!.port,
  }));
  return { monitor, proxies, sipPort, dnsPort, destinations, stop };
}
