import { SipUri, parseUri, type Protocol } from "../sip/index.js";

/** A proxy a monitor named, in the order to try them. */
export interface ProxyCandidate {
  /** The proxy's id when the answer names it (HTTP: `proxy`; DNS: the target's first label). */
  readonly id?: string;
  /** Its SIP URI (`sip:127.0.0.11:5060`, `;transport=tcp` for TCP). */
  readonly uri: string;
  /** An IP address. */
  readonly host: string;
  readonly port: number;
  readonly transport: Protocol;
  /** Its workload (0 idle … 1 full) when the answer says (HTTP only). */
  readonly workload?: number;
}

/** The short name of a candidate for logs and events: its id, else host:port. */
export function candidateName(c: ProxyCandidate): string {
  return c.id ?? `${c.host}:${c.port}`;
}

/**
 * A candidate from a SIP URI with an IP-literal host (HTTP select answers and 302 Contacts),
 * or undefined when the URI is not one we can send to. The user part (a 302 Contact keeps the
 * Request-URI's) is dropped: it names us, not the proxy.
 */
export function candidateFromUri(
  text: string,
  transport: Protocol,
  extra: { id?: string; workload?: number } = {},
): ProxyCandidate | undefined {
  let uri;
  try {
    uri = parseUri(text);
  } catch {
    return undefined;
  }
  if (!(uri instanceof SipUri)) return undefined;
  const host = uri.hostname;
  const bare = uri.with({ user: undefined, password: undefined });
  const secure = uri.scheme === "sips" || transport === "tls";
  return {
    ...(extra.id === undefined ? {} : { id: extra.id }),
    uri: bare.toString(),
    host,
    port: uri.port ?? (secure ? 5061 : 5060),
    transport,
    ...(extra.workload === undefined ? {} : { workload: extra.workload }),
  };
}

/** Two candidates name the same proxy (same address, port and transport). */
export function sameProxy(a: ProxyCandidate, b: ProxyCandidate): boolean {
  return a.host === b.host && a.port === b.port && a.transport === b.transport;
}
