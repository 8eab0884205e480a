import { isIP } from "node:net";
import { pino } from "pino";
import { Monitor, parseMonitorConfig } from "../monitor/index.js";
import { readConfigFile } from "./proxy-command.js";
import { stopOnSignals } from "./stop-on-signals.js";

export interface MonitorCommandOptions {
  readonly config: string;
  readonly json?: boolean;
  readonly logLevel?: string;
}

/**
 * `sipsteer monitor --config monitor.yaml`: runs the load monitor until SIGTERM or SIGINT,
 * then stops it (closing its sockets and held streams) and exits 0. With --json, prints one
 * line when serving: its HTTP URL and, when configured, its UDP push target, SIP redirect
 * address and DNS address (`HOST:PORT`, UDP first) with its zone.
 */
export async function runMonitorCommand(options: MonitorCommandOptions): Promise<void> {
  const logger = pino({ level: options.logLevel ?? "info" }, pino.destination(2));
  const config = parseMonitorConfig(readConfigFile(options.config));
  const monitor = new Monitor(config, { logger });
  await monitor.start();
  const udpPush = monitor.udpPushUrl;
  const redirect = redirectUri(monitor);
  const dns = dnsAddress(monitor);
  const info = {
    monitor: {
      http: monitor.httpUrl,
      ...(udpPush === undefined ? {} : { udpPush }),
      ...(redirect === undefined ? {} : { redirect }),
      ...(dns === undefined ? {} : { dns, zone: monitor.dnsZone }),
      ...(monitor.dashboardUrl === undefined ? {} : { dashboard: monitor.dashboardUrl }),
      ...(monitor.phoneUrl === undefined ? {} : { phone: monitor.phoneUrl }),
    },
    pid: process.pid,
  };
  if (options.json === true) process.stdout.write(`${JSON.stringify(info)}\n`);
  else logger.info(info, "monitor serving");

  stopOnSignals(logger, () => monitor.stop(), { secondSignalExits: true });
}

/** The SIP redirect front's address (`sip:127.0.0.1:5060`, UDP first), when configured. */
function redirectUri(monitor: Monitor): string | undefined {
  const listeners = monitor.sipListeners;
  const l = listeners.find((x) => x.protocol === "udp") ?? listeners[0];
  if (l === undefined) return undefined;
  const host = isIP(l.advertise) === 6 ? `[${l.advertise}]` : l.advertise;
  return `sip:${host}:${l.port}${l.protocol === "udp" ? "" : `;transport=${l.protocol}`}`;
}

/** The DNS front's address (`127.0.0.1:5300`, UDP first), when configured. */
function dnsAddress(monitor: Monitor): string | undefined {
  const listeners = monitor.dnsListeners;
  const l = listeners.find((x) => x.protocol === "udp") ?? listeners[0];
  if (l === undefined) return undefined;
  return `${isIP(l.address) === 6 ? `[${l.address}]` : l.address}:${l.port}`;
}
