import { isIP } from "node:net";
import { SipUri, parseUri, type SendTarget } from "../sip/index.js";

/** The proxies' transports the gateway forwards over. */
export const UPSTREAM_TRANSPORTS = ["udp", "tcp"] as const;
export type UpstreamTransport = (typeof UPSTREAM_TRANSPORTS)[number];

/**
 * Where a proxy's SIP URI sends to (`sip:127.0.0.11:5060`, `;transport=tcp`): RFC 3263 §4.1
 * without DNS — the `transport` parameter, else `transport`; the port, else 5060. The host must
 * be an IP address: the gateway resolves no names (what it may send to is a CIDR list), and the
 * monitor hands out the addresses its proxies listen on. `problem` says why a URI is not one.
 */
export function readProxyUri(
  text: string,
  transport: UpstreamTransport,
): { readonly target: SendTarget } | { readonly problem: string } {
  let uri;
  try {
    uri = parseUri(text);
  } catch {
    return { problem: "not a SIP URI" };
  }
  if (!(uri instanceof SipUri) || uri.scheme !== "sip") return { problem: "must be a sip: URI" };
  const address = uri.hostname;
  if (isIP(address) === 0) return { problem: "the host must be an IP address" };
  const param = uri.transport ?? transport;
  if (param !== "udp" && param !== "tcp") {
    return { problem: `transport=${param}: the gateway forwards over udp or tcp` };
  }
  return { target: Object.freeze({ protocol: param, address, port: uri.port ?? 5060 }) };
}
