import { isIP } from "node:net";
import {
  DNS_RCODE_SERVFAIL,
  DnsQueryError,
  lookupSrv,
  rcodeName,
  srvName,
  type DnsServer,
  type Protocol,
  type SrvLookup,
} from "../sip/index.js";
import { DiscoveryError } from "./errors.js";
import type { ProxyCandidate } from "./proxy-candidate.js";
import { orderSrv } from "./srv-order.js";

export type { DnsServer } from "../sip/index.js";

/** The SIP stack's DNS failures as the client's codes. */
function discoveryErrorOf(e: DnsQueryError, server: DnsServer): DiscoveryError {
  return new DiscoveryError(
    e.reason === "network" ? "CLIENT_ERR_MONITOR_UNREACHABLE" : "CLIENT_ERR_BAD_ANSWER",
    e.message,
    { monitor: server.text, cause: e },
  );
}

/**
 * RFC 3263 §4.2 against one DNS server (the monitor's front): SRV of `_sip._udp.ZONE`
 * (`_sip._tcp`, `_sips._tcp` by transport), ordered per RFC 2782, then each target's A and
 * AAAA — from the additional section when the answer carries them (the monitor's does), else
 * asked (lookupSrv, shared with the gateway). SERVFAIL is CLIENT_ERR_NO_PROXY (the monitor
 * says so when no proxy is eligible).
 */
export async function resolveOverDns(
  server: DnsServer,
  zone: string,
  transport: Protocol,
  signal: AbortSignal,
  random: () => number,
): Promise<ProxyCandidate[]> {
  const name = srvName(transport, zone);
  if (name === undefined) {
    throw new DiscoveryError(
      "CLIENT_ERR_BAD_MONITOR",
      `${server.text}: DNS discovery has no SRV name for ${transport}`,
      { monitor: server.text },
    );
  }
  let found: SrvLookup;
  try {
    found = await lookupSrv({ server, name, signal, random });
  } catch (e) {
    // An abort is the deadline's (it has rejected already) or the caller's own.
    if (e instanceof DnsQueryError && e.reason !== "aborted") throw discoveryErrorOf(e, server);
    throw e;
  }
  if (found.rcode === DNS_RCODE_SERVFAIL) {
    throw new DiscoveryError("CLIENT_ERR_NO_PROXY", `${server.text}: SERVFAIL for ${name}`, {
      monitor: server.text,
    });
  }
  if (found.rcode !== 0) {
    throw new DiscoveryError(
      "CLIENT_ERR_DNS_RCODE",
      `${server.text}: ${rcodeName(found.rcode)} for ${name} SRV`,
      { monitor: server.text },
    );
  }
  const candidates: ProxyCandidate[] = [];
  for (const record of orderSrv(found.targets, random)) {
    const label = record.target.split(".")[0]!;
    for (const host of record.addresses) {
      const literal = isIP(host) === 6 ? `[${host}]` : host;
      const param = transport === "udp" || transport === "tls" ? "" : `;transport=${transport}`;
      candidates.push({
        id: label,
        uri: `${transport === "tls" ? "sips" : "sip"}:${literal}:${record.port}${param}`,
        host,
        port: record.port,
        transport,
      });
    }
  }
  if (candidates.length === 0) {
    throw new DiscoveryError(
      "CLIENT_ERR_NO_RECORDS",
      `${server.text}: no SRV target with an address for ${name}`,
      { monitor: server.text },
    );
  }
  return candidates;
}
