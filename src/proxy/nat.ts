import { isIP } from "node:net";
import { SipUri, defaultPort, type FlowInfo, type NameAddr } from "../sip/index.js";
import { DestinationPolicy } from "../sip/transport/destination-policy.js";

/** Addresses that a client behind NAT writes but no one outside can reach. */
const PRIVATE = new DestinationPolicy([
  "10.0.0.0/8",
  "172.16.0.0/12",
  "192.168.0.0/16",
  "100.64.0.0/10",
  "169.254.0.0/16",
  "fc00::/7",
  "fe80::/10",
]);

/**
 * Whether requests to a client must go down the flow its request came on rather than to its
 * Contact: always for connections (TCP, TLS, WebSocket: nothing else reaches the client); for
 * UDP when the client asked for it (RFC 5626 reg-id or ";ob"), when the Contact is no address
 * (SIP.js and JsSIP write "….invalid"), or when it is a private address other than the one the
 * packet came from — a client behind NAT (what Kamailio's nat_uac_test checks).
 */
export function contactNeedsFlow(contact: NameAddr | undefined, flow: FlowInfo): boolean {
  if (flow.reliable) return true;
  if (contact === undefined) return false;
  const uri = contact.uri;
  if (!(uri instanceof SipUri)) return false;
  if (contact.params.has("reg-id") || uri.params.has("ob")) return true;
  const host = uri.hostname.replace(/^\[|\]$/g, "");
  if (isIP(host) === 0) return true;
  const port = uri.port ?? defaultPort("udp");
  if (host === flow.remote.address && port === flow.remote.port) return false;
  return PRIVATE.allows(host);
}
