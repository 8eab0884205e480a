// SIP peers for proxy tests: a phone on our own stack (transport + transaction layers) that
// calls, answers, registers, CANCELs and sends in-dialog requests along the Record-Route set
// (RFC 3261 §12, §13), a raw UDP socket for peers that misbehave, and an inbox to await what
// arrives on them.
import assert from "node:assert/strict";
import { createSocket, type RemoteInfo, type Socket } from "node:dgram";
import {
  SipRequest,
  SipUri,
  TransactionLayer,
  TransportLayer,
  answerChallenge,
  createCancel,
  createResponse,
  newBranch,
  parseDatagram,
  parseUri,
  readChallenge,
  type ClientTransaction,
  type FlowInfo,
  type InboundMessage,
  type InviteServerTransaction,
  type SendTarget,
  type ServerTransaction,
  type SipMessage,
  type SipResponse,
  type TransactionOptionsInput,
} from "../../src/sip/index.js";

export const DOMAIN = "sipsteer.test";
export const LOOPBACK = ["127.0.0.0/8", "::1/128"];
/** Transaction timers of the test phones: short, yet far above loopback round trips. */
export const PHONE_TIMERS: TransactionOptionsInput = {
  t1Ms: 100,
  t2Ms: 800,
  t4Ms: 1000,
  tryingDelayMs: 0,
};

let sequence = 0;
/** A number unique in this process, for tags, Call-IDs and users. */
export function nextId(): number {
  return ++sequence;
}

// ---- waiting for what arrives -----------------------------------------------------------------

/** Things that arrive, and a way to await a condition on them. */
export class Inbox<T> {
  readonly items: T[] = [];
  readonly #wake = new Set<() => void>();

  push(item: T): void {
    this.items.push(item);
    for (const wake of [...this.#wake]) wake();
  }

  /** Resolves once `ready(items)` holds; rejects after `timeoutMs`, naming `what`. */
  until(ready: (items: readonly T[]) => boolean, timeoutMs: number, what: string): Promise<void> {
    if (ready(this.items)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        this.#wake.delete(check);
      };
      const check = () => {
        if (!ready(this.items)) return;
        done();
        resolve();
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      this.#wake.add(check);
    });
  }

  /** The first item (from index `from` on) that matches. */
  async first(match: (item: T) => boolean, timeoutMs: number, what: string, from = 0): Promise<T> {
    await this.until((items) => items.slice(from).some(match), timeoutMs, what);
    return this.items.slice(from).find(match)!;
  }

  count(match: (item: T) => boolean): number {
    return this.items.filter(match).length;
  }
}

/** Polls `check` every 20 ms until it holds; fails after `timeoutMs` (no event to await). */
export async function until(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// ---- addressing -------------------------------------------------------------------------------

/** Where a SIP URI with an IP-literal host sends to (RFC 3263 without DNS). */
export function targetOf(uri: string): SendTarget {
  const parsed = parseUri(uri.replace(/^<|>$/g, ""));
  assert.ok(parsed instanceof SipUri, `${uri} is a SIP URI`);
  const protocol = parsed.transport === "tcp" ? "tcp" : "udp";
  return { protocol, address: parsed.hostname, port: parsed.port ?? 5060 };
}

/** The route set and remote target of a dialog, and what its requests carry (RFC 3261 §12). */
export interface Dialog {
  readonly callId: string;
  /** Our From value, with our tag. */
  readonly local: string;
  /** The peer's value, with its tag. */
  readonly remote: string;
  /** The remote target (the peer's Contact URI). */
  readonly target: string;
  /** Route values ("<uri>"), in the order they are sent. */
  readonly routes: readonly string[];
  cseq: number;
}

/**
 * The caller's dialog from its INVITE and the 2xx: the route set is the Record-Route list in
 * reverse (RFC 3261 §12.1.2).
 */
export function callerDialog(invite: SipRequest, ok: SipResponse): Dialog {
  const contact = ok.contacts[0];
  assert.ok(contact !== undefined, "the 2xx has a Contact");
  return {
    callId: invite.callId,
    local: invite.getHeader("from")!,
    remote: ok.getHeader("to")!,
    target: contact.uri.toString(),
    routes: ok.recordRoutes.map((rr) => `<${rr.uri.toString()}>`).reverse(),
    cseq: invite.cseq.seq,
  };
}

/** The callee's dialog from the INVITE it answered with `ok`: Record-Route in order (§12.1.1). */
export function calleeDialog(invite: SipRequest, ok: SipResponse): Dialog {
  const contact = invite.contacts[0];
  assert.ok(contact !== undefined, "the INVITE has a Contact");
  return {
    callId: invite.callId,
    local: ok.getHeader("to")!,
    remote: invite.getHeader("from")!,
    target: contact.uri.toString(),
    routes: invite.recordRoutes.map((rr) => `<${rr.uri.toString()}>`),
    cseq: 100,
  };
}

/** A new request with the mandatory headers (RFC 3261 §8.1.1); `headers` come after them. */
export function newRequest(
  method: string,
  uri: string,
  init: {
    from?: string;
    to?: string;
    callId?: string;
    cseq?: number;
    maxForwards?: number;
    headers?: readonly [string, string][];
  } = {},
): SipRequest {
  const n = nextId();
  return new SipRequest({
    method,
    uri,
    headers: [
      ["Max-Forwards", String(init.maxForwards ?? 70)],
      ["From", init.from ?? `<sip:alice@${DOMAIN}>;tag=f${n}`],
      ["To", init.to ?? `<${uri}>`],
      ["Call-ID", init.callId ?? `call-${n}-${process.pid}@test`],
      ["CSeq", `${init.cseq ?? 1} ${method}`],
      ...(init.headers ?? []),
      ["Content-Length", "0"],
    ],
  });
}

// ---- a phone on our stack ---------------------------------------------------------------------

/** A request that arrived at a phone, with its server transaction. */
export interface Incoming {
  readonly tx: ServerTransaction;
  /** Kept here: the transaction lets go of its request after the final response. */
  readonly request: SipRequest;
  readonly flow: FlowInfo;
}

/** A request a phone sent, and every response its client transaction passed up. */
export interface Outgoing {
  readonly request: SipRequest;
  readonly tx: ClientTransaction;
  readonly target: SendTarget;
  readonly responses: Inbox<SipResponse>;
  readonly final: Promise<SipResponse>;
}

export interface PhoneOptions {
  readonly address?: string;
  readonly protocols?: readonly ("udp" | "tcp")[];
  readonly timers?: TransactionOptionsInput;
  /** The user part of its Contact and From. */
  readonly user?: string;
  /** The Contact URI it writes (registers, answers with), when not its own address. */
  readonly contact?: string;
}

/**
 * A SIP phone on our stack. It answers every request but INVITE with 200; an INVITE is
 * answered by `onInvite` (by default 180, then 200 with the Record-Route echoed and a
 * Contact, RFC 3261 §12.1.1). Everything its transport delivers is in `received`, every new
 * request in `requests`.
 */
export class SipPhone {
  readonly transport: TransportLayer;
  readonly transactions: TransactionLayer;
  readonly address: string;
  readonly user: string;
  readonly received = new Inbox<InboundMessage>();
  readonly requests = new Inbox<Incoming>();
  onInvite: (incoming: Incoming) => void = (incoming) => {
    this.respond(incoming, 180);
    this.respond(incoming, 200);
  };
  readonly #protocols: readonly ("udp" | "tcp")[];
  readonly #contact: string | undefined;
  readonly #tags = new Map<string, string>();

  constructor(options: PhoneOptions = {}) {
    this.address = options.address ?? "127.0.0.1";
    this.user = options.user ?? "alice";
    this.#protocols = options.protocols ?? ["udp"];
    this.#contact = options.contact;
    this.transport = new TransportLayer({
      listen: this.#protocols.map((protocol) => ({ protocol, address: this.address, port: 0 })),
      allowedDestinations: LOOPBACK,
    });
    this.transactions = new TransactionLayer({
      transport: this.transport,
      timers: options.timers ?? PHONE_TIMERS,
    });
    this.transport.on("message", (inbound) => this.received.push(inbound));
    this.transactions.on("request", (tx) => {
      const incoming = { tx, request: tx.request, flow: tx.flow };
      this.requests.push(incoming);
      if (tx.method === "INVITE") {
        // RFC 3261 §9.2: a CANCEL before the final response ends the INVITE with 487.
        (tx as InviteServerTransaction).onCancel = () => this.respond(incoming, 487);
        this.onInvite(incoming);
      } else if (tx.method === "CANCEL") {
        this.respond(incoming, this.transactions.matchCancel(tx.request) ? 200 : 481);
      } else {
        this.respond(incoming, 200);
      }
    });
  }

  static async start(options: PhoneOptions = {}): Promise<SipPhone> {
    const phone = new SipPhone(options);
    await phone.transport.start();
    phone.transactions.start();
    return phone;
  }

  async stop(): Promise<void> {
    this.transactions.stop();
    await this.transport.stop();
  }

  port(protocol: "udp" | "tcp" = this.#protocols[0]!): number {
    return this.transport.boundListeners.find((l) => l.protocol === protocol)!.port;
  }

  /** Our Contact URI on `protocol` (or the one given in the options). */
  contactUri(protocol: "udp" | "tcp" = this.#protocols[0]!): string {
    if (this.#contact !== undefined) return this.#contact;
    const transport = protocol === "udp" ? "" : `;transport=${protocol}`;
    const host = this.address.includes(":") ? `[${this.address}]` : this.address;
    return `sip:${this.user}@${host}:${this.port(protocol)}${transport}`;
  }

  /**
   * Answers an incoming request (one To tag per request); a 2xx to INVITE echoes the
   * Record-Route and carries our Contact on the transport it came by.
   */
  respond(
    incoming: Incoming,
    status: number,
    extra: readonly [string, string][] = [],
  ): SipResponse {
    const { request, tx } = incoming;
    const key = `${request.callId}|${request.cseq.seq}|${request.method}`;
    let toTag = this.#tags.get(key);
    if (toTag === undefined) {
      toTag = request.to.tag ?? `${this.user}${nextId()}`;
      this.#tags.set(key, toTag);
    }
    const response = createResponse(request, status, { toTag });
    if (request.method === "INVITE" && status >= 200 && status < 300) {
      for (const rr of request.getHeaders("record-route"))
        response.appendHeader("Record-Route", rr);
      const protocol = incoming.flow.protocol === "tcp" ? "tcp" : "udp";
      response.appendHeader("Contact", `<${this.contactUri(protocol)}>`);
    }
    for (const [name, value] of extra) response.appendHeader(name, value);
    tx.respond(response);
    return response;
  }

  /** Sends a request in a client transaction, collecting its responses. */
  send(request: SipRequest, target: SendTarget): Outgoing {
    const responses = new Inbox<SipResponse>();
    const tx = this.transactions.sendRequest(request, target, {
      onResponse: (r) => responses.push(r),
    });
    return { request, tx, target, responses, final: tx.final };
  }

  /** REGISTER of `user` (default: ours) at `proxy`, answering one digest challenge. */
  async register(
    proxy: SendTarget,
    options: { user?: string; contact?: string; expires?: number; password?: string } = {},
  ): Promise<SipResponse> {
    const user = options.user ?? this.user;
    const contact = options.contact ?? this.contactUri(proxy.protocol as "udp" | "tcp");
    const callId = `reg-${nextId()}-${process.pid}@test`;
    const make = (cseq: number, authorization?: string) =>
      newRequest("REGISTER", `sip:${DOMAIN}`, {
        from: `<sip:${user}@${DOMAIN}>;tag=r${nextId()}`,
        to: `<sip:${user}@${DOMAIN}>`,
        callId,
        cseq,
        headers: [
          ["Contact", `<${contact}>`],
          ["Expires", String(options.expires ?? 600)],
          ...(authorization === undefined
            ? []
            : [["Authorization", authorization] as [string, string]]),
        ],
      });
    const first = await this.send(make(1), proxy).final;
    if (first.status !== 401 || options.password === undefined) return first;
    const challenge = readChallenge(first.wwwAuthenticates[0]!);
    assert.ok(challenge !== undefined, "a digest challenge we can answer");
    const authorization = answerChallenge(
      challenge,
      { method: "REGISTER", uri: `sip:${DOMAIN}` },
      { user, password: options.password },
    );
    return this.send(make(2, authorization), proxy).final;
  }

  /** An INVITE to `uri` sent to `proxy` (no challenge answered: see `call`). */
  invite(
    proxy: SendTarget,
    uri: string,
    options: {
      maxForwards?: number;
      headers?: readonly [string, string][];
      callId?: string;
      from?: string;
      cseq?: number;
    } = {},
  ): Outgoing {
    const protocol = this.#protocols.includes("udp") ? "udp" : this.#protocols[0]!;
    const request = newRequest("INVITE", uri, {
      from: options.from ?? `<sip:${this.user}@${DOMAIN}>;tag=c${nextId()}`,
      to: `<${uri}>`,
      ...(options.callId === undefined ? {} : { callId: options.callId }),
      cseq: options.cseq ?? 1,
      ...(options.maxForwards === undefined ? {} : { maxForwards: options.maxForwards }),
      headers: [["Contact", `<${this.contactUri(protocol)}>`], ...(options.headers ?? [])],
    });
    return this.send(request, proxy);
  }

  /**
   * An INVITE that answers a 407 (or 401) challenge once when a password is given; the
   * attempt that got the final response.
   */
  async call(
    proxy: SendTarget,
    uri: string,
    options: { password?: string; headers?: readonly [string, string][] } = {},
  ): Promise<{ outgoing: Outgoing; response: SipResponse }> {
    const first = this.invite(proxy, uri, options);
    const response = await first.final;
    if ((response.status !== 407 && response.status !== 401) || options.password === undefined) {
      return { outgoing: first, response };
    }
    const header =
      response.status === 407 ? response.proxyAuthenticates[0] : response.wwwAuthenticates[0];
    const challenge = header === undefined ? undefined : readChallenge(header);
    assert.ok(challenge !== undefined, "a digest challenge we can answer");
    const authorization = answerChallenge(
      challenge,
      { method: "INVITE", uri },
      { user: this.user, password: options.password },
    );
    const second = this.invite(proxy, uri, {
      ...options,
      callId: first.request.callId,
      from: first.request.getHeader("from")!,
      cseq: 2,
      headers: [
        ...(options.headers ?? []),
        [response.status === 407 ? "Proxy-Authorization" : "Authorization", authorization],
      ],
    });
    return { outgoing: second, response: await second.final };
  }

  /** CANCEL of a pending INVITE (RFC 3261 §9.1), to where the INVITE went; its final. */
  cancel(invite: Outgoing): Promise<SipResponse> {
    const cancel = createCancel(invite.request);
    return this.transactions.sendRequest(cancel, invite.target, { keepVia: true }).final;
  }

  /** Where an in-dialog request goes: the first Route, else the remote target. */
  #dialogTarget(dialog: Dialog): SendTarget {
    return targetOf(dialog.routes[0] ?? dialog.target);
  }

  /** The ACK for a 2xx, along the route set (a request of its own, RFC 3261 §13.2.2.4). */
  async ack(dialog: Dialog): Promise<void> {
    const ack = newRequest("ACK", dialog.target, {
      from: dialog.local,
      to: dialog.remote,
      callId: dialog.callId,
      cseq: dialog.cseq,
      headers: dialog.routes.map((r): [string, string] => ["Route", r]),
    });
    await this.transport.send(ack, this.#dialogTarget(dialog), { viaBranch: newBranch() });
  }

  /**
   * An in-dialog request (BYE …) along the route set; with `sdp`, a re-offer (re-INVITE,
   * UPDATE) carrying it and our Contact.
   */
  inDialog(dialog: Dialog, method: string, sdp?: string): Outgoing {
    dialog.cseq++;
    const request = newRequest(method, dialog.target, {
      from: dialog.local,
      to: dialog.remote,
      callId: dialog.callId,
      cseq: dialog.cseq,
      headers: [
        ...dialog.routes.map((r): [string, string] => ["Route", r]),
        ...(sdp === undefined ? [] : [["Contact", `<${this.contactUri()}>`] as [string, string]]),
      ],
    });
    if (sdp !== undefined) request.setBody(sdp, "application/sdp");
    return this.send(request, this.#dialogTarget(dialog));
  }

  /** The phone's requests of `method` so far. */
  requestsOf(method: string): Incoming[] {
    return this.requests.items.filter((i) => i.request.method === method);
  }
}

// ---- a raw UDP peer ---------------------------------------------------------------------------

export interface Datagram {
  readonly bytes: Buffer;
  /** Parsed, or null for what does not parse. */
  readonly message: SipMessage | null;
  readonly from: RemoteInfo;
}

/** A bare UDP socket: whatever it receives goes to `received` and then to `onDatagram`. */
export class RawUdp {
  readonly received = new Inbox<Datagram>();
  onDatagram: (d: Datagram) => void = () => undefined;

  private constructor(readonly socket: Socket) {
    socket.on("message", (bytes, from) => {
      let message: SipMessage | null;
      try {
        message = parseDatagram(bytes);
      } catch {
        message = null;
      }
      const d = { bytes, message, from };
      this.received.push(d);
      this.onDatagram(d);
    });
  }

  static async bind(address = "127.0.0.1"): Promise<RawUdp> {
    const socket = createSocket("udp4");
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      socket.bind(0, address, () => {
        socket.off("error", reject);
        resolve();
      });
    });
    return new RawUdp(socket);
  }

  get address(): string {
    return this.socket.address().address;
  }

  get port(): number {
    return this.socket.address().port;
  }

  send(data: Buffer | string, port: number, address = "127.0.0.1"): Promise<void> {
    return new Promise((resolve, reject) =>
      this.socket.send(data, port, address, (e) => (e ? reject(e) : resolve())),
    );
  }

  /** Requests received with `method`. */
  requests(method: string): SipRequest[] {
    return this.received.items
      .map((d) => d.message)
      .filter((m): m is SipRequest => m?.type === "request" && m.method === method);
  }

  close(): Promise<void> {
    return new Promise((r) => this.socket.close(() => r()));
  }
}
