import {
  SipRequest,
  SipUri,
  parseUri,
  type Protocol,
  type SendTarget,
  type SipResponse,
} from "../sip/index.js";

/**
 * A dialog's state (RFC 3261 §12): Call-ID, the local and remote From/To values with their
 * tags, the remote target, the route set and the CSeq numbers, and the requests it sends.
 * Only loose routing (`;lr`, RFC 3261 §16.12) is followed; every proxy we meet is one.
 */
export class Dialog {
  readonly callId: string;
  /** Our From (or To) value, with our tag. */
  readonly local: string;
  /** The peer's value, with its tag. */
  readonly remote: string;
  readonly localTag: string;
  readonly remoteTag: string;
  /** The peer's Contact URI. */
  readonly remoteTarget: string;
  /** Route URIs in the order they are sent. */
  readonly routes: readonly string[];
  /** The last CSeq number we sent. */
  localSeq: number;
  /** The last CSeq number the peer sent (undefined: none yet). */
  remoteSeq: number | undefined;

  constructor(init: {
    callId: string;
    local: string;
    remote: string;
    localTag: string;
    remoteTag: string;
    remoteTarget: string;
    routes: readonly string[];
    localSeq: number;
    remoteSeq?: number;
  }) {
    this.callId = init.callId;
    this.local = init.local;
    this.remote = init.remote;
    this.localTag = init.localTag;
    this.remoteTag = init.remoteTag;
    this.remoteTarget = init.remoteTarget;
    this.routes = init.routes;
    this.localSeq = init.localSeq;
    this.remoteSeq = init.remoteSeq;
  }

  /**
   * The caller's dialog from its INVITE and a 2xx (§12.1.2): "The route set MUST be set to
   * the list of URIs in the Record-Route header field from the response, taken in reverse
   * order"; "The remote target MUST be set to the URI from the Contact header field".
   */
  static asCaller(invite: SipRequest, response: SipResponse): Dialog | undefined {
    const contact = response.contacts[0];
    const remoteTag = response.to.tag;
    const localTag = invite.from.tag;
    if (contact === undefined || remoteTag === undefined || localTag === undefined) {
      return undefined;
    }
    return new Dialog({
      callId: invite.callId,
      local: invite.getHeader("from")!,
      remote: response.getHeader("to")!,
      localTag,
      remoteTag,
      remoteTarget: contact.uri.toString(),
      routes: response.recordRoutes.map((rr) => rr.uri.toString()).reverse(),
      localSeq: invite.cseq.seq,
    });
  }

  /**
   * The callee's dialog from the INVITE it answered (§12.1.1): the route set is the INVITE's
   * Record-Route in order, the remote target its Contact, the remote CSeq its CSeq.
   */
  static asCallee(invite: SipRequest, localTo: string, localTag: string): Dialog | undefined {
    const contact = invite.contacts[0];
    const remoteTag = invite.from.tag;
    if (contact === undefined || remoteTag === undefined) return undefined;
    return new Dialog({
      callId: invite.callId,
      local: localTo,
      remote: invite.getHeader("from")!,
      localTag,
      remoteTag,
      remoteTarget: contact.uri.toString(),
      routes: invite.recordRoutes.map((rr) => rr.uri.toString()),
      // §12.1.1: "The local sequence number MUST be empty"; our first request picks it.
      localSeq: Math.floor(Math.random() * 10_000) + 1,
      remoteSeq: invite.cseq.seq,
    });
  }

  /**
   * A request within the dialog (§12.2.1.1): Request-URI the remote target, Route the route
   * set, To the peer with its tag, From us with ours, CSeq the next number (ACK takes the
   * INVITE's, given as `cseq`).
   */
  request(
    method: string,
    options: { cseq?: number; headers?: readonly [string, string][] } = {},
  ): SipRequest {
    let seq = options.cseq;
    if (seq === undefined) {
      this.localSeq++;
      seq = this.localSeq;
    }
    return new SipRequest({
      method,
      uri: this.remoteTarget,
      headers: [
        ["Max-Forwards", "70"],
        ["From", this.local],
        ["To", this.remote],
        ["Call-ID", this.callId],
        ["CSeq", `${seq} ${method}`],
        ...this.routes.map((r): [string, string] => ["Route", `<${r}>`]),
        ...(options.headers ?? []),
        ["Content-Length", "0"],
      ],
    });
  }

  /** Where in-dialog requests go: the first Route, else the remote target (§8.1.2). */
  nextHop(defaultProtocol: Protocol): SendTarget | undefined {
    return targetOfUri(this.routes[0] ?? this.remoteTarget, defaultProtocol);
  }

  /** True when `request` belongs to this dialog (Call-ID, its From tag ours remote, To tag ours). */
  matches(request: SipRequest): boolean {
    return (
      request.callId === this.callId &&
      request.from.tag === this.remoteTag &&
      request.to.tag === this.localTag
    );
  }
}

/**
 * Where a SIP URI with an IP-literal host sends to (RFC 3263 §4.1 without DNS: the transport
 * parameter, else `defaultProtocol`; sips means TLS); undefined for a URI we cannot reach.
 */
export function targetOfUri(text: string, defaultProtocol: Protocol): SendTarget | undefined {
  let uri;
  try {
    uri = parseUri(text);
  } catch {
    return undefined;
  }
  if (!(uri instanceof SipUri)) return undefined;
  const param = uri.transport;
  const protocol: Protocol =
    uri.scheme === "sips"
      ? "tls"
      : param === "udp" || param === "tcp" || param === "tls" || param === "ws" || param === "wss"
        ? param
        : defaultProtocol;
  const address = uri.params.get("maddr") ?? uri.hostname;
  return { protocol, address, port: uri.port ?? (protocol === "tls" ? 5061 : 5060) };
}
