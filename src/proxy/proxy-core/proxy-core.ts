import { isIP } from "node:net";
import {
  SipUri,
  TelUri,
  TransportError,
  createResponse,
  defaultPort,
  randomToken,
  protocolOfVia,
  parseUri,
  type ClientTransaction,
  type FlowInfo,
  type InboundMessage,
  InviteServerTransaction,
  type Logger,
  type NameAddr,
  type SendTarget,
  type ServerTransaction,
  type SipRequest,
  type SipResponse,
  type TimerQueue,
  type TransactionLayer,
  type TransportLayer,
  type Uri,
  type Via,
} from "../../sip/index.js";
import { DestinationPolicy } from "../../sip/transport/destination-policy.js";
import type { AuthGuard } from "../auth-guard.js";
import type { DialogTracker } from "../dialogs.js";
import type { Fleet } from "../fleet.js";
import type { Binding, LocationStore } from "../location-store/types.js";
import {
  INCOMPATIBLE_TRANSPORT_WARNING,
  MEDIA_RELAY_MISSING,
  MEDIA_RELAY_MISSING_REASON,
  bindingProfile,
  sdpProfile,
  type MediaProfile,
} from "../media-profile.js";
import type { MediaRelayer } from "../media-relay/media-relayer.js";
import type { Relay } from "../media-relay/relay-pool.js";
import { familyOf, relayReason, sdpConnectionAddress } from "../media-relay/relay-policy.js";
import { aorOf, type Registrar } from "../registrar/registrar.js";
import { contactNeedsFlow } from "../nat.js";
import { protocolOfUri, type Self } from "../self.js";
import { ResponseContext } from "./response-context.js";
import type { Upstream, UpstreamHop, UpstreamKind } from "./upstream.js";

export interface ProxyCoreOptions {
  readonly self: Self;
  readonly fleet: Fleet;
  readonly transport: TransportLayer;
  readonly transactions: TransactionLayer;
  /** The location store and registrar; undefined for the gateway (upstream instead). */
  readonly store: LocationStore | undefined;
  readonly registrar: Registrar | undefined;
  /** Undefined when authentication is off. */
  readonly auth: AuthGuard | undefined;
  readonly dialogs: DialogTracker;
  readonly timers: TimerQueue;
  readonly timerCMs: number;
  readonly relayDomains: readonly string[];
  readonly log: Logger;
  readonly now: () => number;
  /** True while draining: new REGISTERs and INVITEs get 503. */
  readonly draining: () => boolean;
  /** The workload for Sipsteer-Load (0…1). */
  readonly workload: () => number;
  /**
   * Written into our branches after the loop fingerprint ("w1."): the process of a
   * multi-process proxy that sent a request, which its responses are steered back to.
   */
  readonly branchTag: string;
  /** The media relay; undefined when the proxy never relays media. */
  readonly media: MediaRelayer | undefined;
  /**
   * The gateway: new registrations and dialogs of clients go to the proxies it names (with
   * serial retry) instead of the location store's targets.
   */
  readonly upstream?: Upstream;
  /** The gateway's Path entry for a client's REGISTER (with its flow's token when needed). */
  readonly pathFor?: (flow: FlowInfo, contacts: readonly NameAddr[]) => string | undefined;
}

/** Our Record-Route URI parameters that pin a dialog to its media relay. */
const RELAY_PARAM = "relay";
/** …and say what the two sides speak: `wp` (a browser and a plain phone), `pp`, `ww`. */
const PROFILES_PARAM = "media";

/** Methods that create dialogs: the proxy stays in their path (Record-Route). */
const DIALOG_CREATING = new Set(["INVITE", "SUBSCRIBE", "REFER", "NOTIFY"]);
/** Initial requests from users that must be authenticated (besides REGISTER). */
const CHALLENGED = new Set(["INVITE", "MESSAGE", "SUBSCRIBE", "REFER", "PUBLISH", "OPTIONS"]);
/** Where a response is never forwarded, whatever allowedDestinations says. */
const NOT_A_HOP = new DestinationPolicy([
  "0.0.0.0/8",
  "224.0.0.0/4",
  "255.255.255.255/32",
  "ff00::/8",
]);
/** Retry-After for 503 while draining. */
const DRAIN_RETRY_AFTER_S = 30;
/** Retry-After for the gateway's 503 when no proxy is available. */
const NO_PROXY_RETRY_AFTER_S = 5;

/** Where a forwarded request goes: the new Request-URI, Routes to add, the next hop. */
interface Target {
  readonly uri: Uri;
  readonly routes: readonly string[];
  readonly hop: SendTarget;
  /** The branch to use, when chosen before forwarding (the relay's offer names it). */
  readonly branch?: string;
  /** The call's media goes through a relay on this branch. */
  readonly relayed?: RelayedBranch;
}

/** A request the gateway places upstream: the proxies to try, one after another. */
interface Serial {
  readonly upstream: Upstream;
  readonly hops: readonly UpstreamHop[];
  readonly kind: UpstreamKind;
  readonly key: string;
}

/** How a forwarded request's media goes through the relay, and what its responses need. */
interface RelayedBranch {
  readonly relay: Relay;
  /** What the request's sender speaks, and the side it goes to. */
  readonly sender: MediaProfile;
  readonly receiver: MediaProfile;
  /** The request's rewritten SDP; undefined when it carries none (the offer is in the 2xx). */
  readonly body: string | undefined;
  /** The receiving side's address when it is a client (not a fleet member): rtpengine's received-from. */
  readonly receiverAddress: string | undefined;
  /** The IP families each side reaches: the relay bridges IPv4 and IPv6. */
  readonly senderFamily: 4 | 6 | undefined;
  readonly receiverFamily: 4 | 6 | undefined;
}

/** What our popped Route said about the dialog's media relay. */
interface DialogMedia {
  readonly ng: string;
  readonly profiles: string;
}

/**
 * The stateful proxy of RFC 3261 §16: validates requests (§16.3), follows and pops Route
 * (§16.4, loose routing), finds targets in the location store (§16.5), forwards to all of them
 * at once with Record-Route on both sides (§16.6, RFC 5658) and keeps a response context for
 * the best response (§16.7), relays CANCEL (§16.10) and forwards 2xx ACKs and in-dialog
 * requests along their Route. Requests for users registered on another proxy of the fleet go
 * through that proxy, by the binding's Path.
 */
export class ProxyCore {
  readonly #contexts = new Map<ServerTransaction, ResponseContext>();
  #counter = 0;

  constructor(private readonly o: ProxyCoreOptions) {}

  /** Responses still pending (the proxy is stopping): stop their timers. */
  close(): void {
    for (const ctx of this.#contexts.values()) ctx.close();
    this.#contexts.clear();
  }

  /** A new request in its server transaction. */
  async onRequest(tx: ServerTransaction): Promise<void> {
    const request = tx.request;
    try {
      const response = await this.#route(tx, request);
      if (response !== undefined) tx.respond(response);
    } catch (e) {
      if (e instanceof TransportError) {
        this.o.log.debug({ err: e, callId: request.callId }, "no way to the target");
        tx.respond(
          createResponse(request, e.code === "DESTINATION_NOT_ALLOWED" ? 403 : 503, {
            toTag: this.#tag(),
          }),
        );
        return;
      }
      this.o.log.error({ err: e, callId: request.callId }, "proxy failed on a request");
      tx.respond(createResponse(request, 500, { toTag: this.#tag() }));
    }
  }

  /** An ACK outside a transaction (for a 2xx) or one we cannot match: forward statelessly. */
  async onAck(inbound: InboundMessage): Promise<void> {
    const request = inbound.message as SipRequest;
    try {
      if ((request.maxForwards ?? 70) <= 0) return;
      const { tokenFlow, media } = this.#popOurRoutes(request, inbound.flow.id);
      const hop = await this.#nextHop(request, tokenFlow);
      if (hop === undefined) return;
      // An ACK with SDP answers an offer its 2xx carried (a late offer).
      if (media !== undefined) await this.#relayAckAnswer(request, media, inbound.flow, hop);
      request.setHeader("Max-Forwards", String((request.maxForwards ?? 70) - 1));
      // A stateless branch: the same for every retransmission of this ACK (RFC 3261 §16.11).
      const branch = `z9hG4bK-ack-${fnv(FNV_OFFSET, request.topVia?.branch ?? request.callId).toString(36)}`;
      await this.o.transport.send(request, hop, { viaBranch: branch });
    } catch (e) {
      this.o.log.debug({ err: e, callId: request.callId }, "ACK not forwarded");
    }
  }

  /**
   * A response no client transaction took (a 2xx retransmitted after its transaction ended,
   * or one for a branch we forgot): forwarded statelessly by the next Via (RFC 3261 §16.7
   * step 1, §16.11), when the top Via is ours.
   */
  async onStrayResponse(inbound: InboundMessage): Promise<void> {
    const response = inbound.message as SipResponse;
    const ours = response.topVia;
    if (ours === undefined || !this.o.self.isUsAt(ours.host, ours.port ?? viaDefaultPort(ours)))
      return;
    response.removeFirstValue("via");
    const next = response.topVia;
    if (next === undefined) return;
    // A retransmitted 2xx of a relayed call carries the SDP the relay gave its first copy.
    if (this.o.media !== undefined && response.status < 300 && response.body.length > 0) {
      const body = this.o.media.rememberedAnswer(answerKey(response));
      if (body !== undefined) response.setBody(body);
    }
    const protocol = protocolOfVia(next.transport);
    if (protocol === undefined) return;
    const address = stripIpv6Brackets(next.received ?? next.host);
    // RFC 4475 §3.3.10: a broadcast or multicast sent-by is an attack, not a hop.
    if (isIP(address) === 0 || NOT_A_HOP.allows(address)) return;
    const port = typeof next.rport === "number" ? next.rport : (next.port ?? viaDefaultPort(next));
    try {
      await this.o.transport.send(response, { protocol, address, port });
    } catch (e) {
      this.o.log.debug({ err: e, callId: response.callId }, "stray response not forwarded");
    }
  }

  async #route(tx: ServerTransaction, request: SipRequest): Promise<SipResponse | undefined> {
    const o = this.o;
    const reply = (status: number, reason?: string) =>
      createResponse(request, status, {
        toTag: this.#tag(),
        ...(reason === undefined ? {} : { reason }),
      });

    // §16.3 step 2: a URI scheme we do not know.
    if (!(request.uri instanceof SipUri) && !(request.uri instanceof TelUri)) return reply(416);
    if (request.method === "CANCEL") return this.#cancel(request, reply);

    // §16.4: Routes that name us are ours to remove; a token in one names a client's flow.
    const { popped, tokenFlow, media } = this.#popOurRoutes(request, tx.flow.id);
    const inDialog = request.to.tag !== undefined;

    // §16.3 step 3: Max-Forwards.
    const mf = request.maxForwards;
    if (mf === 0) {
      // "If the request is an OPTIONS ... the proxy MAY act as the final recipient."
      if (request.method === "OPTIONS" && this.#forUs(request)) return this.#optionsReply(request);
      return reply(483);
    }
    // §16.3 step 4: our own Via with this request's loop hash means it came back to us.
    if (this.#looped(request)) return reply(482);
    // §16.3 step 5: we support no Proxy-Require extension.
    const proxyRequire = request.proxyRequire;
    if (proxyRequire.length > 0) {
      const r = reply(420);
      r.appendHeader("Unsupported", proxyRequire.join(", "));
      return r;
    }

    const draining = o.draining();
    const routeLeft = request.field("route") !== undefined;
    if (!routeLeft && tokenFlow === undefined && this.#forUs(request)) {
      if (request.method === "OPTIONS") return this.#optionsReply(request);
      const userAtUs = request.uri instanceof SipUri && request.uri.user !== undefined;
      if (request.method !== "REGISTER" && !userAtUs) return reply(404, "Nothing Here");
    }
    if (request.method === "REGISTER" && !routeLeft && tokenFlow === undefined) {
      const host = request.uri instanceof SipUri ? request.uri.hostname : "";
      if (o.self.servesDomain(host) || this.#forUs(request)) {
        if (draining) return this.#draining(request);
        // A fleet member (the gateway) authenticated its clients already.
        const user = o.fleet.isMemberAddress(tx.flow.remote.address)
          ? undefined
          : await this.#authenticate(
              tx,
              request,
              host === "" ? o.self.defaultDomain : this.#realmOf(host),
            );
        if (user === null) return undefined;
        if (o.upstream !== undefined) return this.#registerUpstream(tx, request, user, reply);
        return o.registrar!.handle(request, tx.flow, user);
      }
    }
    if (draining && request.method === "INVITE" && !inDialog) return this.#draining(request);

    // In-dialog requests follow their Route set; dialog accounting sees them go by.
    if (inDialog && (popped || routeLeft || tokenFlow !== undefined)) {
      if (request.from.tag !== undefined) {
        o.dialogs.inDialog(request.method, request.callId, request.from.tag, request.to.tag!);
      }
      const target = await this.#directTarget(request, tokenFlow);
      if (media === undefined) return this.#forward(tx, request, [target]);
      return this.#forward(tx, request, [await this.#relayInDialog(tx, request, media, target)]);
    }

    // A Route left that names another hop: only fleet members (or relay domains) are followed.
    if (routeLeft) {
      const next = request.routes[0]!.uri;
      const fromFleet = o.fleet.isMemberAddress(tx.flow.remote.address);
      if (o.fleet.memberAt(next) === undefined && !this.#relayable(next) && !fromFleet) {
        return reply(403, "Route Not Allowed");
      }
      if (!fromFleet && CHALLENGED.has(request.method) && !inDialog) {
        const user = await this.#authenticate(tx, request, this.#realmFor(request));
        if (user === null) return undefined;
      }
      return this.#forward(tx, request, [await this.#directTarget(request, tokenFlow)]);
    }

    // A request that came back to us by a flow token (a Path or Record-Route of ours).
    if (tokenFlow !== undefined)
      return this.#forward(tx, request, [await this.#directTarget(request, tokenFlow)]);

    // §16.5: target determination.
    const asked = request.uri;
    if (!(asked instanceof SipUri)) return reply(404, "No Route for tel URIs");
    // A user at our own address (`sip:bob@127.0.0.11:5060`, as the monitor's 302 Contacts
    // name us, DESIGN.md "Client query") is that user of our default domain.
    const uri =
      asked.user !== undefined && o.self.isUs(asked)
        ? asked.with({ host: o.self.defaultDomain, port: undefined })
        : asked;
    const fromFleet = o.fleet.isMemberAddress(tx.flow.remote.address);
    if (!o.self.servesDomain(uri.hostname)) {
      // Not our domain: forward only for the fleet or to a relay domain (not an open relay).
      if (!fromFleet && !this.#relayable(uri)) return reply(403, "Relaying Denied");
      return this.#forward(tx, request, [await this.#directTarget(request, undefined)]);
    }
    let user: string | undefined;
    if (!fromFleet && CHALLENGED.has(request.method)) {
      const authenticated = await this.#authenticate(tx, request, this.#realmOf(uri.hostname));
      if (authenticated === null) return undefined;
      user = authenticated;
      // The caller is who it says: From names the authenticated user.
      const from = request.from.uri;
      if (user !== undefined && (!(from instanceof SipUri) || from.unescapedUser !== user)) {
        return reply(403, "From Is Not You");
      }
    }
    if (o.upstream !== undefined) {
      // Requests for our clients come from proxies by our Path, with a flow token.
      if (fromFleet) return reply(404);
      if (user !== undefined && isInitialInvite(request)) {
        const refusal = o.upstream.admitCall(request, user);
        if (refusal !== undefined) return refusal;
      }
      return this.#forwardUpstream(tx, request, "dialog", request.callId, user);
    }
    const aor = aorOf(uri);
    if (aor === undefined) return reply(404);
    const bindings = await o.store!.lookup(aor, o.now());
    if (bindings.length === 0) {
      const known = o.auth?.knows(uri.unescapedUser ?? "", this.#realmOf(uri.hostname)) ?? false;
      return known ? reply(480) : reply(404);
    }
    const targets: Target[] = [];
    let relayMissing = 0;
    const relaying = isInitialInvite(request) && !fromFleet;
    const offer = relaying ? sdpOf(request) : undefined;
    for (const b of bindings) {
      const target = await this.#bindingTarget(b);
      if (target === undefined) continue;
      if (!relaying) {
        targets.push(target);
        continue;
      }
      // Every branch of a call on one relay (the one the first branch got).
      const prefer = targets.find((t) => t.relayed !== undefined)?.relayed?.relay;
      const relayed = await this.#relayTarget(tx, request, offer, b, target, prefer);
      if (relayed === "missing") relayMissing++;
      else targets.push(relayed);
    }
    if (targets.length === 0 && relayMissing > 0) {
      const r = reply(488, MEDIA_RELAY_MISSING_REASON);
      r.appendHeader(
        "Warning",
        `${INCOMPATIBLE_TRANSPORT_WARNING} ${o.self.id} "${MEDIA_RELAY_MISSING}"`,
      );
      return r;
    }
    if (targets.length === 0) return reply(480);
    return this.#forward(tx, request, targets);
  }

  // ---- §16.6 forwarding ---------------------------------------------------------------------

  /**
   * The gateway's REGISTER: the client registers only its own AOR, through us (our Path
   * names its flow) at the proxy the upstream names.
   */
  async #registerUpstream(
    tx: ServerTransaction,
    request: SipRequest,
    user: string | undefined,
    reply: (status: number, reason?: string) => SipResponse,
  ): Promise<SipResponse | undefined> {
    const to = request.to.uri;
    const aor = aorOf(to);
    if (aor === undefined) return reply(400, "To Is Not a SIP AOR");
    if (user !== undefined && (to as SipUri).unescapedUser !== user)
      return reply(403, "Not Your AOR");
    const path = this.o.pathFor?.(tx.flow, request.contacts);
    if (path !== undefined) request.prependHeader("Path", path);
    return this.#forwardUpstream(tx, request, "register", aor, user);
  }

  /** A new registration or dialog to the upstream's proxies, the next on timeout or 503. */
  async #forwardUpstream(
    tx: ServerTransaction,
    request: SipRequest,
    kind: UpstreamKind,
    key: string,
    user: string | undefined,
  ): Promise<SipResponse | undefined> {
    const upstream = this.o.upstream!;
    const hops = await upstream.candidates(kind, key, request.method);
    if (hops.length === 0) {
      upstream.exhausted();
      const r = createResponse(request, 503, { toTag: this.#tag(), reason: "No Proxy Available" });
      r.appendHeader("Retry-After", String(NO_PROXY_RETRY_AFTER_S));
      return r;
    }
    // Our credentials are consumed here (RFC 3261 §22.3): the proxies never see them.
    request.removeHeader("Authorization");
    request.removeHeader("Proxy-Authorization");
    if (user !== undefined && isInitialInvite(request)) upstream.callStarted(user, request.callId);
    return this.#forward(tx, request, [hopTarget(request, hops[0]!)], {
      upstream,
      hops,
      kind,
      key,
    });
  }

  #forward(
    tx: ServerTransaction,
    request: SipRequest,
    targets: Target[],
    serial?: Serial,
  ): undefined {
    const o = this.o;
    // The context outlives the request (2xx from forks come for 64*T1): its callbacks hold
    // only what they need, not the message.
    const initialInvite = isInitialInvite(request);
    const callId = initialInvite || o.media !== undefined ? detach(request.callId) : "";
    const fromTag = initialInvite ? detach(request.from.tag ?? "") : "";
    const relays = new Set<Relay>();
    for (const t of targets) if (t.relayed !== undefined) relays.add(t.relayed.relay);
    const ctx = new ResponseContext({
      serverTx: tx,
      request,
      timers: o.timers,
      timerCMs: o.timerCMs,
      onFinal: (response) => {
        this.#contexts.delete(tx);
        if (tx instanceof InviteServerTransaction) tx.onCancel = undefined;
        if (initialInvite) {
          o.dialogs.inviteEnded(
            callId,
            fromTag,
            response.status < 300 ? response.to.tag : undefined,
          );
          // A call that failed or was cancelled leaves its relays.
          if (response.status >= 300) for (const r of relays) void o.media?.end(r, callId);
        }
      },
      on2xx: () => undefined,
      ...(serial === undefined
        ? {}
        : {
            firstResponseMs: serial.upstream.attemptTimeoutMs,
            retry: (status: number) => {
              serial.upstream.failed(serial.hops[attempt]!, status);
              attempt++;
              const hop = serial.hops[attempt];
              if (hop === undefined) {
                serial.upstream.exhausted();
                return false;
              }
              send(hopTarget(request, hop), hop);
              return true;
            },
          }),
    });
    let attempt = 0;
    this.#contexts.set(tx, ctx);
    if (request.method === "INVITE") {
      // 100 Trying comes from the server transaction if no provisional is back in 200 ms.
      (tx as InviteServerTransaction).onCancel = () => ctx.cancelAll();
      if (initialInvite) o.dialogs.inviteStarted(callId, fromTag);
    }
    const loop = loopHash(request);
    const exchange = {
      callId,
      fromTag: request.from.tag ?? "",
      toTag: request.to.tag,
      hadOffer: sdpOf(request) !== undefined,
    };
    const send = (target: Target, hop: UpstreamHop | undefined) => {
      const copy = request.clone();
      copy.uri = target.uri;
      for (let i = target.routes.length - 1; i >= 0; i--)
        copy.prependHeader("Route", target.routes[i]!);
      // §16.6 step 3: Max-Forwards decremented, or set to 70 when absent.
      copy.setHeader("Max-Forwards", String((request.maxForwards ?? 71) - 1));
      const relayed = target.relayed;
      if (relayed?.body !== undefined) copy.setBody(relayed.body);
      if (DIALOG_CREATING.has(request.method) && request.to.tag === undefined) {
        this.#recordRoute(copy, tx.flow, target.hop, relayed);
      }
      const branch = target.branch ?? `z9hG4bK-${loop}-${o.branchTag}${randomToken(9)}`;
      // Responses of a relayed branch wait for the relay's rewrite, in the order they came.
      let chain = Promise.resolve();
      // The upstream hears a branch's first final only (2xx retransmissions come here too).
      let told = false;
      const answered =
        hop === undefined
          ? undefined
          : (response: SipResponse) => {
              if (told || response.status < 200 || response.status === 503) return;
              told = true;
              serial!.upstream.answered(hop, serial!.kind, serial!.key, response);
            };
      const client: ClientTransaction = o.transactions.sendRequest(copy, target.hop, {
        branch,
        finalPromise: false,
        onResponse:
          relayed === undefined
            ? (response) => {
                answered?.(response);
                ctx.response(client, response);
              }
            : (response) => {
                chain = chain
                  .then(() => this.#relayResponse(relayed, exchange, branch, response))
                  .catch((e: unknown) =>
                    o.log.error({ err: e, callId }, "relaying a response's SDP failed"),
                  )
                  .then(() => ctx.response(client, response));
              },
        onFailure: (status) => ctx.failed(client, status),
      });
      ctx.add(client);
    };
    for (const target of targets) send(target, serial?.hops[0]);
    return undefined;
  }

  // ---- the media relay ------------------------------------------------------------------------

  /**
   * A binding as the target of a new call, through the relay when the policy says its media
   * needs one: the offer rewritten for the callee (or, without an offer in the INVITE, the
   * relay kept for the offer its 2xx brings). "missing" when it needs a relay and none took it.
   */
  async #relayTarget(
    tx: ServerTransaction,
    request: SipRequest,
    offer: string | undefined,
    binding: Binding,
    target: Target,
    prefer: Relay | undefined,
  ): Promise<Target | "missing"> {
    const media = this.o.media;
    const receiver = bindingProfile(binding);
    const sender: MediaProfile =
      (offer === undefined ? undefined : sdpProfile(offer)) ?? flowProfile(tx.flow);
    const policy = media?.policy ?? "never";
    const contactHost = hostOf(binding.contact);
    const reason =
      offer === undefined
        ? policy === "always" || (policy === "auto" && sender !== receiver)
          ? "late"
          : undefined
        : relayReason(
            policy,
            { sdp: offer, signalledFrom: tx.flow.remote.address },
            { profile: receiver, address: contactHost },
          );
    if (reason === undefined) {
      // Never relayed: a browser and a plain phone cannot meet.
      return offer !== undefined && sdpProfile(offer) !== undefined && sender !== receiver
        ? "missing"
        : target;
    }
    if (media === undefined || !media.available)
      return reason === "sdp-address" ? target : "missing";
    const branch = `z9hG4bK-${loopHash(request)}-${this.o.branchTag}${randomToken(9)}`;
    const receiverAddress = this.o.fleet.isMemberAddress(target.hop.address)
      ? undefined
      : target.hop.address;
    const senderFamily =
      familyOf(offer === undefined ? undefined : sdpConnectionAddress(offer)) ??
      familyOf(tx.flow.remote.address);
    const receiverFamily = familyOf(contactHost) ?? familyOf(target.hop.address);
    let relay: Relay | undefined;
    let body: string | undefined;
    if (offer === undefined) {
      relay = prefer ?? (await media.pick());
    } else {
      const placed = await media.offer(
        {
          callId: request.callId,
          fromTag: request.from.tag ?? "",
          viaBranch: branch,
          sdp: offer,
          receiver,
          receivedFrom: tx.flow.remote.address,
          ...(receiverFamily === undefined ? {} : { receiverFamily }),
        },
        prefer,
      );
      relay = placed?.relay;
      body = placed?.sdp;
    }
    if (relay === undefined) {
      this.o.log.warn({ callId: request.callId, reason }, "no media relay took the call");
      // A phone's odd SDP address may still work directly; the other reasons cannot.
      return reason === "sdp-address" ? target : "missing";
    }
    return {
      ...target,
      branch,
      relayed: { relay, sender, receiver, body, receiverAddress, senderFamily, receiverFamily },
    };
  }

  /**
   * An in-dialog request of a relayed call: BYE deletes the call from its relay; a re-offer
   * (re-INVITE, UPDATE) goes to the same relay, and its answer comes back through it.
   */
  async #relayInDialog(
    tx: ServerTransaction,
    request: SipRequest,
    dialog: DialogMedia,
    target: Target,
  ): Promise<Target> {
    const media = this.o.media;
    const relay = media === undefined ? undefined : await media.relayAt(dialog.ng);
    if (media === undefined || relay === undefined) return target;
    const callId = request.callId;
    if (request.method === "BYE" || request.method === "CANCEL") {
      void media.end(relay, callId);
      return target;
    }
    media.touch(callId);
    if (request.method !== "INVITE" && request.method !== "UPDATE") return target;
    const sdp = sdpOf(request);
    const [sender, receiver] = sides(dialog.profiles, sdp, tx.flow);
    const fromFleet = this.o.fleet.isMemberAddress(tx.flow.remote.address);
    const receiverAddress = this.o.fleet.isMemberAddress(target.hop.address)
      ? undefined
      : target.hop.address;
    const senderFamily =
      familyOf(sdp === undefined ? undefined : sdpConnectionAddress(sdp)) ??
      familyOf(tx.flow.remote.address);
    const receiverFamily = familyOf(target.hop.address);
    let body: string | undefined;
    if (sdp !== undefined) {
      body = await media.reoffer(relay, {
        callId,
        fromTag: request.from.tag ?? "",
        toTag: request.to.tag!,
        sdp,
        receiver,
        receivedFrom: fromFleet ? undefined : tx.flow.remote.address,
        ...(receiverFamily === undefined ? {} : { receiverFamily }),
      });
    }
    return {
      ...target,
      relayed: { relay, sender, receiver, body, receiverAddress, senderFamily, receiverFamily },
    };
  }

  /** A response's SDP on a relayed branch: an answer (or, after a request without, an offer). */
  async #relayResponse(
    relayed: RelayedBranch,
    x: { callId: string; fromTag: string; toTag: string | undefined; hadOffer: boolean },
    branch: string,
    response: SipResponse,
  ): Promise<void> {
    const media = this.o.media;
    if (media === undefined || response.status < 101 || response.status >= 300) return;
    const sdp = sdpOf(response);
    const toTag = response.to.tag;
    if (sdp === undefined || toTag === undefined) return;
    // A 2xx retransmission gets the SDP its first copy got, without asking the relay again
    // (which may have deleted the call since, on a BYE overtaking the retransmissions).
    const remembered =
      response.status >= 200 ? media.rememberedAnswer(answerKey(response)) : undefined;
    if (remembered !== undefined) {
      response.setBody(remembered);
      return;
    }
    const initial = x.toTag === undefined;
    const rewritten = x.hadOffer
      ? await media.answer(relayed.relay, {
          callId: x.callId,
          fromTag: x.fromTag,
          toTag,
          ...(initial ? { viaBranch: branch } : {}),
          sdp,
          receiver: relayed.sender,
          receivedFrom: relayed.receiverAddress,
          ...(relayed.senderFamily === undefined ? {} : { receiverFamily: relayed.senderFamily }),
        })
      : // The request had no SDP: this is the responder's offer, answered in the ACK.
        await media.reoffer(relayed.relay, {
          callId: x.callId,
          fromTag: toTag,
          toTag: x.fromTag,
          sdp,
          receiver: relayed.sender,
          receivedFrom: relayed.receiverAddress,
          ...(relayed.senderFamily === undefined ? {} : { receiverFamily: relayed.senderFamily }),
        });
    if (rewritten === undefined) return;
    response.setBody(rewritten);
    if (response.status >= 200) media.rememberAnswer(answerKey(response), rewritten);
  }

  /** The SDP answer an ACK carries (to a 2xx's offer) goes through the dialog's relay. */
  async #relayAckAnswer(
    request: SipRequest,
    dialog: DialogMedia,
    flow: FlowInfo,
    hop: SendTarget,
  ): Promise<void> {
    const media = this.o.media;
    const sdp = sdpOf(request);
    if (media === undefined || sdp === undefined || request.to.tag === undefined) return;
    const relay = await media.relayAt(dialog.ng);
    if (relay === undefined) return;
    const [, receiver] = sides(dialog.profiles, sdp, flow);
    const fromFleet = this.o.fleet.isMemberAddress(flow.remote.address);
    const rewritten = await media.answer(relay, {
      callId: request.callId,
      fromTag: request.to.tag,
      toTag: request.from.tag ?? "",
      sdp,
      receiver,
      receivedFrom: fromFleet ? undefined : flow.remote.address,
      ...(familyOf(hop.address) === undefined ? {} : { receiverFamily: familyOf(hop.address)! }),
    });
    if (rewritten !== undefined) request.setBody(rewritten);
  }

  /**
   * RFC 5658 double Record-Route: our URI on the side of the incoming flow (with its token)
   * and on the side of the next hop, so that in-dialog requests from either end reach us on
   * the right transport and go down the right flow.
   */
  #recordRoute(
    request: SipRequest,
    inbound: FlowInfo,
    hop: SendTarget,
    relayed: RelayedBranch | undefined,
  ): void {
    const self = this.o.self;
    const flowId = contactNeedsFlow(request.contacts[0], inbound) ? inbound.id : undefined;
    // A relayed dialog's in-dialog requests find its relay in our Record-Route.
    const params =
      relayed === undefined
        ? ""
        : `;${RELAY_PARAM}=${relayed.relay.ng};${PROFILES_PARAM}=${letter(relayed.sender)}${letter(relayed.receiver)}`;
    const withParams = (uri: string | undefined) =>
      uri === undefined ? undefined : uri.replace(/;lr>$/, `;lr${params}>`);
    const inSide = withParams(self.routeUri(inbound.protocol, inbound.remote.address, flowId));
    const outSide = withParams(self.routeUri(hop.protocol, hop.address, hop.flowId));
    if (inSide !== undefined) request.prependHeader("Record-Route", inSide);
    // One entry serves both sides when they are the same URI (no transport change, no token).
    if (outSide !== undefined && outSide !== inSide) request.prependHeader("Record-Route", outSide);
  }

  // ---- targets and next hops ------------------------------------------------------------------

  /** The target of a request routed by Route, flow token or Request-URI as it stands. */
  async #directTarget(request: SipRequest, tokenFlow: string | undefined): Promise<Target> {
    const hop = await this.#nextHop(request, tokenFlow);
    if (hop === undefined) throw new TransportError("no next hop", "NO_LISTENER");
    return { uri: request.uri, routes: [], hop };
  }

  /** A binding as a target: its contact, reached along its Path (RFC 3327). */
  async #bindingTarget(b: Binding): Promise<Target | undefined> {
    const uri = parseUri(b.contact);
    const routes = [...b.path];
    let tokenFlow: string | undefined;
    // The first Path entry is often ours: its token is the client's flow here.
    while (routes.length > 0) {
      const top = parseUri(stripBrackets(routes[0]!));
      if (!this.o.self.isUs(top)) break;
      routes.shift();
      if (top instanceof SipUri && top.user !== undefined) {
        tokenFlow = this.o.self.tokens.decode(top.user) ?? tokenFlow;
      }
    }
    const next = routes.length > 0 ? parseUri(stripBrackets(routes[0]!)) : uri;
    if (!(next instanceof SipUri)) return undefined;
    // A Path is followed only to fleet members (DESIGN.md): a stored Path naming anyone else
    // must not make us relay there.
    if (routes.length > 0 && this.o.fleet.memberAt(next) === undefined && !this.#relayable(next)) {
      this.o.log.warn(
        { aor: b.aor, path: b.path },
        "Path names a host outside the fleet; binding not used",
      );
      return undefined;
    }
    const hop =
      routes.length === 0 && tokenFlow !== undefined
        ? this.#hopOverFlow(tokenFlow, next)
        : await this.#hopFor(next);
    return hop === undefined ? undefined : { uri, routes, hop };
  }

  /** Next hop: the top Route, else the flow a token named, else the Request-URI. */
  async #nextHop(
    request: SipRequest,
    tokenFlow: string | undefined,
  ): Promise<SendTarget | undefined> {
    const route = request.routes[0];
    if (route !== undefined) {
      return route.uri instanceof SipUri ? this.#hopFor(route.uri) : undefined;
    }
    const uri = request.uri;
    if (!(uri instanceof SipUri)) return undefined;
    return tokenFlow !== undefined ? this.#hopOverFlow(tokenFlow, uri) : this.#hopFor(uri);
  }

  /** Down a client's own flow (its connection, or its NAT binding for UDP). */
  #hopOverFlow(flowId: string, uri: SipUri): SendTarget {
    const udp = /^udp\|\d+\|(.+)\|(\d+)$/.exec(flowId);
    if (udp !== null) return { protocol: "udp", address: udp[1]!, port: Number(udp[2]), flowId };
    const protocol = flowId.slice(0, flowId.indexOf("#")) as SendTarget["protocol"];
    return { protocol, address: uri.hostname, port: uri.port ?? 5060, flowId };
  }

  /** RFC 3263 reduced to what a fleet on addresses needs: IP literals (names are refused). */
  async #hopFor(uri: SipUri): Promise<SendTarget | undefined> {
    const address = uri.params.get("maddr") ?? uri.hostname;
    if (isIP(address.replace(/^\[|\]$/g, "")) === 0) return undefined;
    const protocol = protocolOfUri(uri);
    return {
      protocol,
      address: address.replace(/^\[|\]$/g, ""),
      port: uri.port ?? (protocol === "tls" || protocol === "wss" ? 5061 : 5060),
    };
  }

  /**
   * Removes the Routes that name us (§16.4), keeping the flow token of the last that names
   * another flow than the one the request `arrivedOn`.
   */
  #popOurRoutes(
    request: SipRequest,
    arrivedOn: string,
  ): { popped: boolean; tokenFlow: string | undefined; media: DialogMedia | undefined } {
    let popped = false;
    let tokenFlow: string | undefined;
    let media: DialogMedia | undefined;
    for (;;) {
      const top = request.routes[0];
      if (top === undefined || !this.o.self.isUs(top.uri)) break;
      request.removeFirstValue("route");
      popped = true;
      const ng = (top.uri as SipUri).params.get(RELAY_PARAM);
      if (ng !== undefined && ng !== null && ng !== "") {
        media = { ng, profiles: (top.uri as SipUri).params.get(PROFILES_PARAM) ?? "pp" };
      }
      const user = (top.uri as SipUri).user;
      const flow = user === undefined ? undefined : this.o.self.tokens.decode(user);
      // RFC 5626 §5.3: a token naming the flow the request came on is the sender's own (it
      // is calling out along its route set); the request goes the other way.
      if (flow !== undefined && flow !== arrivedOn) tokenFlow = flow;
    }
    return { popped, tokenFlow, media };
  }

  // ---- policies -------------------------------------------------------------------------------

  /** A Request-URI that names this proxy itself (an address of ours, or a domain without user). */
  #forUs(request: SipRequest): boolean {
    const uri = request.uri;
    if (!(uri instanceof SipUri)) return false;
    return (
      this.o.self.isUs(uri) || (uri.user === undefined && this.o.self.servesDomain(uri.hostname))
    );
  }

  #relayable(uri: Uri): boolean {
    return uri instanceof SipUri && this.o.relayDomains.includes(uri.hostname);
  }

  #realmOf(host: string): string {
    return this.o.self.servesDomain(host) ? host.toLowerCase() : this.o.self.defaultDomain;
  }

  #realmFor(request: SipRequest): string {
    const from = request.from.uri;
    return from instanceof SipUri ? this.#realmOf(from.hostname) : this.o.self.defaultDomain;
  }

  /**
   * The authenticated user, undefined when authentication is off, or null when a challenge
   * or refusal was sent (after a delay when someone keeps guessing).
   */
  async #authenticate(
    tx: ServerTransaction,
    request: SipRequest,
    realm: string,
  ): Promise<string | undefined | null> {
    const auth = this.o.auth;
    if (auth === undefined) return undefined;
    const outcome = auth.check(request, tx.flow.remote.address, realm);
    if (outcome.ok) return outcome.user;
    if (outcome.delayMs === 0) tx.respond(outcome.response);
    else this.o.timers.schedule(outcome.delayMs, () => tx.respond(outcome.response));
    return null;
  }

  #optionsReply(request: SipRequest): SipResponse {
    if (this.o.draining()) return this.#draining(request);
    const ok = createResponse(request, 200, { toTag: this.#tag() });
    ok.appendHeader("Sipsteer-Load", this.o.workload().toFixed(2));
    ok.appendHeader(
      "Allow",
      "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, MESSAGE, SUBSCRIBE, NOTIFY, REFER, INFO, UPDATE, PRACK",
    );
    return ok;
  }

  #draining(request: SipRequest): SipResponse {
    const r = createResponse(request, 503, { toTag: this.#tag(), reason: "Draining" });
    r.appendHeader("Retry-After", String(DRAIN_RETRY_AFTER_S));
    return r;
  }

  /** §16.10: a CANCEL that matches an INVITE we are forwarding cancels its branches. */
  #cancel(request: SipRequest, reply: (status: number) => SipResponse): SipResponse {
    const invite = this.o.transactions.matchCancel(request);
    if (invite === undefined) return reply(481);
    // The transaction layer told the INVITE's context (onCancel) already; answer the CANCEL.
    return reply(200);
  }

  #looped(request: SipRequest): boolean {
    const vias = request.vias;
    if (vias.length < 2) return false;
    const prefix = `z9hG4bK-${loopHash(request)}-`;
    // Every Via, the top one too: a peer that sends our request straight back adds none.
    for (let i = 0; i < vias.length; i++) {
      const v = vias[i]!;
      if (v.branch?.startsWith(prefix) && this.o.self.isUsAt(v.host, v.port ?? viaDefaultPort(v))) {
        return true;
      }
    }
    return false;
  }

  #tag(): string {
    return `px${(this.#counter++).toString(36)}${Math.random().toString(36).slice(2, 8)}`;
  }
}

/** The gateway's forward to one proxy: the request as it stands, sent to that proxy. */
function hopTarget(request: SipRequest, hop: UpstreamHop): Target {
  return { uri: request.uri, routes: [], hop: hop.target };
}

function viaDefaultPort(via: Via): number {
  const protocol = protocolOfVia(via.transport);
  return protocol === undefined ? 5060 : defaultPort(protocol);
}

function stripIpv6Brackets(host: string): string {
  return host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
}

/** A copy that does not keep the message's text alive (V8 sliced strings pin their parent). */
function detach(s: string): string {
  return (" " + s).slice(1);
}

function isInitialInvite(request: SipRequest): boolean {
  return request.method === "INVITE" && request.to.tag === undefined;
}

/** An `application/sdp` body as text; undefined without one (or with a broken Content-Type). */
function sdpOf(message: SipRequest | SipResponse): string | undefined {
  if (message.body.length === 0) return undefined;
  let type;
  try {
    type = message.contentType;
  } catch {
    return undefined;
  }
  if (type === undefined || type.type !== "application" || type.subtype !== "sdp") return undefined;
  return message.body.toString("utf8");
}

/** What a 2xx's retransmissions share: the rewritten SDP is kept under it. */
function answerKey(response: SipResponse): string {
  return `${response.callId}|${response.cseq.seq}|${response.to.tag ?? ""}`;
}

/** A side that sent no SDP: a browser when it came over WebSocket. */
function flowProfile(flow: FlowInfo): MediaProfile {
  return flow.protocol === "ws" || flow.protocol === "wss" ? "webrtc" : "plain";
}

function letter(profile: MediaProfile): string {
  return profile === "webrtc" ? "w" : "p";
}

/**
 * The sender's and the receiver's profile of an in-dialog SDP, from the dialog's pair (`wp`):
 * the sender is the one its SDP (or its flow) says, the receiver the other.
 */
function sides(
  profiles: string,
  sdp: string | undefined,
  flow: FlowInfo,
): [MediaProfile, MediaProfile] {
  const a: MediaProfile = profiles[0] === "w" ? "webrtc" : "plain";
  const b: MediaProfile = profiles[1] === "w" ? "webrtc" : "plain";
  if (a === b) return [a, b];
  const sender = (sdp === undefined ? undefined : sdpProfile(sdp)) ?? flowProfile(flow);
  return sender === a ? [a, b] : [b, a];
}

/** The IP literal a Contact names, if it names one. */
function hostOf(contact: string): string | undefined {
  try {
    const uri = parseUri(contact);
    if (!(uri instanceof SipUri)) return undefined;
    const host = uri.hostname.replace(/^\[|\]$/g, "");
    return isIP(host) === 0 ? undefined : host;
  } catch {
    return undefined;
  }
}

function stripBrackets(value: string): string {
  const open = value.indexOf("<");
  const close = value.indexOf(">");
  return open >= 0 && close > open ? value.slice(open + 1, close) : value;
}

/**
 * RFC 3261 §16.6 step 8 / §16.3 step 4: what makes a request the same request for loop
 * detection (Request-URI, tags, Call-ID, CSeq number, Route, Proxy-Require,
 * Proxy-Authorization) — a spiral to a new Request-URI hashes differently.
 */
function loopHash(request: SipRequest): string {
  let h = FNV_OFFSET;
  h = fnv(h, request.uri.toString());
  h = fnv(h, request.from.tag ?? "");
  h = fnv(h, request.to.tag ?? "");
  h = fnv(h, request.callId);
  h = fnv(h, String(request.cseq.seq));
  for (const name of ["route", "proxy-require", "proxy-authorization"]) {
    for (const value of request.getHeaders(name)) h = fnv(h, value);
  }
  return h.toString(36);
}

const FNV_OFFSET = 0x811c9dc5;

/**
 * 32-bit FNV-1a over a string's UTF-16 code units, with a separator mixed in after it. Loop
 * detection needs a fingerprint, not a cryptographic hash: a collision can only make a
 * sender's own request look like a loop.
 */
function fnv(hash: number, text: string): number {
  let h = hash;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= 0x0a;
  return Math.imul(h, 0x01000193) >>> 0;
}
