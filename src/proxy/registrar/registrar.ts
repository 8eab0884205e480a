import {
  SipUri,
  createResponse,
  formatSipDate,
  type FlowInfo,
  type Logger,
  type NameAddr,
  type SipRequest,
  type SipResponse,
  type Uri,
} from "../../sip/index.js";
import type { Binding, ContactChange, LocationStore } from "../location-store/types.js";

export interface RegistrarOptions {
  readonly store: LocationStore;
  readonly proxyId: string;
  readonly defaultExpires: number;
  readonly minExpires: number;
  readonly maxExpires: number;
  readonly log: Logger;
  readonly now: () => number;
  /** Our Path entry for a client's flow: where other proxies send to reach it. */
  readonly pathFor: (flow: FlowInfo, contacts: readonly NameAddr[]) => string | undefined;
  /** True when `host` is one of our domains. */
  readonly servesDomain: (host: string) => boolean;
  /**
   * True when a REGISTER on this flow comes from a fleet member (the gateway, a proxy), whose
   * Path headers are kept; anyone else's are ignored (a client cannot choose its own route).
   */
  readonly trustsPath: (flow: FlowInfo) => boolean;
}

/** Option tags the registrar understands in Require (RFC 3327 Path, RFC 5626 outbound). */
const SUPPORTED = new Set(["path", "outbound", "gruu"]);

/**
 * The canonical address-of-record of a URI (RFC 3261 §10.3 step 5): scheme, user with
 * escapes undone, host lower-cased; no port or parameters.
 */
export function aorOf(uri: Uri): string | undefined {
  if (!(uri instanceof SipUri) || uri.user === undefined) return undefined;
  return `${uri.scheme}:${uri.unescapedUser}@${uri.hostname}`;
}

/**
 * The identity of a contact within its AOR: the instance and reg-id of RFC 5626 when present,
 * else the URI compared as RFC 3261 §19.1.4 would (user, host, port, transport).
 */
export function contactKey(contact: NameAddr): string {
  const instance = contact.params.get("+sip.instance");
  if (instance !== undefined && instance !== null) {
    return `instance:${instance}|${contact.params.get("reg-id") ?? ""}`;
  }
  const uri = contact.uri;
  if (!(uri instanceof SipUri)) return uri.toString();
  return `${uri.scheme}:${uri.unescapedUser ?? ""}@${uri.hostname}:${uri.port ?? ""};${uri.transport ?? ""}`;
}

/** The header parameters of a Contact other than expires and q, as written. */
function otherParams(contact: NameAddr): string {
  return contact.params.without("expires").without("q").toString();
}

/**
 * The registrar of RFC 3261 §10.3: adds, refreshes, removes (Expires 0, "*") and lists the
 * bindings of an AOR, refuses intervals below Min-Expires with 423, and records for each
 * binding the Path to the client's flow (RFC 3327).
 */
export class Registrar {
  constructor(private readonly options: RegistrarOptions) {}

  /**
   * Answers a REGISTER (already authenticated as `user` when auth is on) whose
   * Request-URI names one of our domains.
   */
  async handle(
    request: SipRequest,
    flow: FlowInfo,
    user: string | undefined,
  ): Promise<SipResponse> {
    const o = this.options;
    const tag = `reg${Math.random().toString(36).slice(2, 10)}`;
    const reply = (status: number, reason?: string) =>
      createResponse(request, status, { toTag: tag, ...(reason === undefined ? {} : { reason }) });

    // Step 2: Require with extensions we do not know: 420 listing them.
    const unknown = request.require.filter((t) => !SUPPORTED.has(t.toLowerCase()));
    if (unknown.length > 0) {
      const r = reply(420);
      r.appendHeader("Unsupported", unknown.join(", "));
      return r;
    }
    // Step 3/5: the AOR is the To URI; it must be SIP and in our domain.
    const to = request.to.uri;
    const aor = aorOf(to);
    if (aor === undefined) return reply(400, "To Is Not a SIP AOR");
    if (!o.servesDomain((to as SipUri).hostname)) return reply(404, "Not Our Domain");
    // Step 4: an authenticated user registers only its own AOR.
    if (user !== undefined && (to as SipUri).unescapedUser !== user)
      return reply(403, "Not Your AOR");

    const now = o.now();
    const wildcard = request.contactWildcard;
    const contacts = request.contacts;
    const headerExpires = request.expires;
    if (wildcard) {
      // Step 6: "*" only alone and only with Expires: 0.
      if (contacts.length > 0 || headerExpires !== 0) return reply(400, "Wildcard Needs Expires 0");
    }
    const changes: ContactChange[] = [];
    const ours = o.pathFor(flow, contacts);
    const theirs = o.trustsPath(flow) ? request.getHeaders("path") : [];
    const path = [...(ours === undefined ? [] : [ours]), ...theirs];
    for (const contact of contacts) {
      let expires = contact.expires ?? headerExpires ?? o.defaultExpires;
      if (expires > 0 && expires < o.minExpires) {
        const r = reply(423);
        r.appendHeader("Min-Expires", String(o.minExpires));
        return r;
      }
      expires = Math.min(expires, o.maxExpires);
      const binding: Binding = {
        aor,
        key: contactKey(contact),
        contact: contact.uri.toString(),
        params: otherParams(contact),
        callId: request.callId,
        cseq: request.cseq.seq,
        expiresAt: 0,
        q: contact.q,
        path,
        proxy: o.proxyId,
        userAgent: request.getHeader("user-agent"),
        updatedAt: now,
      };
      changes.push({ binding, expires });
    }

    const outcome =
      changes.length === 0 && !wildcard
        ? { ok: true as const, bindings: await o.store.lookup(aor, now) }
        : await o.store.apply({
            aor,
            callId: request.callId,
            cseq: request.cseq.seq,
            now,
            changes,
            removeAll: wildcard,
          });
    if (!outcome.ok) return reply(500, "Out of Order CSeq");

    const ok = reply(200);
    for (const b of outcome.bindings) {
      const remaining = Math.max(0, Math.round((b.expiresAt - now) / 1000));
      ok.appendHeader("Contact", `<${b.contact}>;expires=${remaining}${b.params}`);
    }
    if (request.supported.some((t) => t.toLowerCase() === "path")) {
      for (const p of theirs) ok.appendHeader("Path", p);
    }
    ok.appendHeader("Date", formatSipDate(new Date()));
    o.log.debug({ aor, bindings: outcome.bindings.length }, "registration");
    return ok;
  }
}
