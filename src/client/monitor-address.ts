import { isIP } from "node:net";
import { DiscoveryError } from "./errors.js";

/**
 * Where to ask for a proxy (DESIGN.md "Command line": `--monitor` takes `http://…`,
 * `dns:HOST:PORT/ZONE` or `sip:HOST:PORT`).
 */
export type MonitorAddress =
  | { readonly kind: "http"; readonly text: string; readonly url: URL }
  | {
      readonly kind: "dns";
      readonly text: string;
      /** The DNS server to query (an IP address). */
      readonly host: string;
      readonly port: number;
      /** The zone whose `_sip._udp` (…) SRV names are asked. */
      readonly zone: string;
    }
  | {
      readonly kind: "sip";
      readonly text: string;
      /** The monitor's SIP redirect front (an IP address). */
      readonly host: string;
      readonly port: number;
    };

const DNS_FORM = /^dns:(\[[^\]]+\]|[^:/[\]]+)(?::(\d{1,5}))?\/([A-Za-z0-9.-]+)$/;
const SIP_FORM = /^sip:(\[[^\]]+\]|[^:;[\]]+)(?::(\d{1,5}))?$/;

function hostOf(raw: string, text: string): string {
  const host = raw.startsWith("[") ? raw.slice(1, -1) : raw;
  if (isIP(host) === 0) {
    // The monitor is how we find everything else: its own address comes as a literal.
    throw new DiscoveryError(
      "CLIENT_ERR_BAD_MONITOR",
      `monitor ${text}: the host must be an IP address, got ${host}`,
      { monitor: text },
    );
  }
  return host;
}

function portOf(raw: string | undefined, fallback: number, text: string): number {
  const port = raw === undefined ? fallback : Number(raw);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new DiscoveryError("CLIENT_ERR_BAD_MONITOR", `monitor ${text}: bad port ${raw}`, {
      monitor: text,
    });
  }
  return port;
}

/**
 * Reads one monitor address; throws DiscoveryError CLIENT_ERR_BAD_MONITOR naming the value.
 * Defaults: DNS port 53, SIP port 5060.
 */
export function parseMonitorAddress(text: string): MonitorAddress {
  if (text.startsWith("http://") || text.startsWith("https://")) {
    let url: URL;
    try {
      url = new URL(text);
    } catch (e) {
      throw new DiscoveryError("CLIENT_ERR_BAD_MONITOR", `monitor ${text}: not a URL`, {
        monitor: text,
        cause: e,
      });
    }
    return { kind: "http", text, url };
  }
  const dns = DNS_FORM.exec(text);
  if (dns !== null) {
    return {
      kind: "dns",
      text,
      host: hostOf(dns[1]!, text),
      port: portOf(dns[2], 53, text),
      zone: dns[3]!.toLowerCase().replace(/\.$/, ""),
    };
  }
  const sip = SIP_FORM.exec(text);
  if (sip !== null) {
    return { kind: "sip", text, host: hostOf(sip[1]!, text), port: portOf(sip[2], 5060, text) };
  }
  throw new DiscoveryError(
    "CLIENT_ERR_BAD_MONITOR",
    `monitor ${text}: expected http://HOST:PORT, dns:HOST:PORT/ZONE or sip:HOST:PORT`,
    { monitor: text },
  );
}
