import { isIP } from "node:net";

/** The DNS port of a `dns:` monitor given without one. */
export const DEFAULT_DNS_MONITOR_PORT = 53;

/**
 * A monitor the gateway asks (DESIGN.md "Command line": `http://…` or `dns:HOST:PORT/ZONE`;
 * the SIP redirect front answers a phone's request, not a proxy choice, so it is not one).
 */
export type MonitorTarget =
  | { readonly kind: "http"; readonly base: URL }
  | {
      readonly kind: "dns";
      /** The monitor's DNS front: an IP address (the gateway resolves no names). */
      readonly host: string;
      readonly port: number;
      /** Its zone, lower case, without a final dot: `_sip._udp.<zone>` (…) is asked. */
      readonly zone: string;
    };

const DNS_FORM = /^dns:(\[[^\]]*\]|[^:/[\]]*)(?::([^/]*))?\/(.*)$/;
const DNS_LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;

/** A `dns:` monitor, or why it is not one. */
function readDns(text: string): string | MonitorTarget {
  const authority = text.slice("dns:".length).split("/")[0]!;
  if (!authority.startsWith("[") && authority.split(":").length > 2) {
    return "an IPv6 host goes in brackets (dns:[::1]:5300/ZONE)";
  }
  const form = DNS_FORM.exec(text);
  if (form === null) return "not dns:HOST:PORT/ZONE (e.g. dns:127.0.0.1:5300/sipsteer.test)";
  const rawHost = form[1]!;
  const rawPort = form[2];
  const rawZone = form[3]!;
  const host = rawHost.startsWith("[") ? rawHost.slice(1, -1) : rawHost;
  if (isIP(host) === 0) return `the host must be an IP address, got ${JSON.stringify(host)}`;
  if (rawHost.startsWith("[") && isIP(host) !== 6) return "brackets are for an IPv6 host";
  const port = rawPort === undefined ? DEFAULT_DNS_MONITOR_PORT : Number(rawPort);
  if (rawPort !== undefined && (!/^\d{1,5}$/.test(rawPort) || port < 1 || port > 65535)) {
    return `bad port ${JSON.stringify(rawPort)} (1-65535)`;
  }
  const zone = rawZone.toLowerCase().replace(/\.$/, "");
  const labels = zone.split(".");
  if (zone === "" || zone.length > 253 || !labels.every((l) => DNS_LABEL.test(l))) {
    return `the zone ${JSON.stringify(rawZone)} is not a DNS name`;
  }
  return { kind: "dns", host, port, zone };
}

/**
 * Reads one monitor of `gateway.upstream.monitors`; `problem` says why it is not one. The
 * config's schema and the chooser both read monitors through it.
 */
export function readMonitorTarget(
  text: string,
): { readonly target: MonitorTarget } | { readonly problem: string } {
  if (text.startsWith("dns:")) {
    const read = readDns(text);
    return typeof read === "string" ? { problem: read } : { target: read };
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return { problem: "not a URL (e.g. http://127.0.0.1:8080) nor dns:HOST:PORT/ZONE" };
  }
  if (url.protocol !== "http:") return { problem: "must be an http:// URL or dns:HOST:PORT/ZONE" };
  if (url.search !== "" || url.hash !== "") return { problem: "must have no query or fragment" };
  return { target: { kind: "http", base: url } };
}
