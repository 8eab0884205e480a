// The stateful proxy of RFC 3261 §16 between in-process peers on our own SIP stack (phones and
// SmallUas) and raw UDP sockets where a peer must misbehave: parallel forking and the best
// response (§16.7), CANCEL (§16.10), 404/480/408, Max-Forwards and loops (§16.3), the
// open-relay rules, Record-Route on both sides of a transport change (RFC 5658), clients
// reached down their own connection or NAT binding (RFC 5626, RFC 3581), dialog accounting,
// and 2xx retransmissions. One proxy per describe, UDP and TCP on 127.0.0.1, short timers.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Proxy, type ProxyConfigInput, type ProxyDeps } from "../../src/proxy/index.js";
import {
  Credentials,
  SipUri,
  createResponse,
  type InboundMessage,
  type SendTarget,
  type SipRequest,
  type SipResponse,
  type TransactionLayer,
} from "../../src/sip/index.js";
import { openHandles } from "../helpers/handles.js";
import {
  DOMAIN,
  Inbox,
  LOOPBACK,
  PHONE_TIMERS,
  RawUdp,
  SipPhone,
  calleeDialog,
  callerDialog,
  newRequest,
  nextId,
  until,
  type Incoming,
  type PhoneOptions,
} from "../helpers/sip-caller.js";
import { freePort } from "../helpers/sipp.js";
import { SmallUas } from "../helpers/small-uas.js";

/** Proxy timers: Timer B (64·T1) is 1.28 s. */
const PROXY_TIMERS = { t1Ms: 20, t2Ms: 160, t4Ms: 200, tryingDelayMs: 200 };
/** How long to wait for something that takes a loopback round trip or a few. */
const WAIT = 5000;

function proxyConfig(over: Partial<ProxyConfigInput>): ProxyConfigInput {
  return {
    id: "p1",
    domains: [DOMAIN],
    listen: [
      { protocol: "udp", address: "127.0.0.1", port: 0 },
      { protocol: "tcp", address: "127.0.0.1", port: 0 },
    ],
    allowedDestinations: LOOPBACK,
    auth: { enabled: false },
    http: { address: "127.0.0.1", port: 0 },
    timers: PROXY_TIMERS,
    timerCMs: 10_000,
    ...over,
  };
}

interface ProxyFixture {
  readonly proxy: Proxy;
  /** Where peers reach the proxy on `protocol`. */
  target(protocol?: "udp" | "tcp"): SendTarget;
}

/**
 * The describe's proxy: started before its tests, stopped after them, and then nothing of it
 * may be left open (sockets, servers, timers).
 */
function proxyPerDescribe(
  over: Partial<ProxyConfigInput> = {},
  deps: ProxyDeps = {},
): ProxyFixture {
  let proxy: Proxy | undefined;
  let baseline: Record<string, number> = {};
  before(async () => {
    baseline = await openHandles();
    proxy = new Proxy(proxyConfig(over), deps);
    await proxy.start();
  });
  after(async () => {
    await proxy?.stop();
    assert.deepEqual(await openHandles(), baseline, "stop() leaves nothing open");
  });
  return {
    get proxy(): Proxy {
      assert.ok(proxy !== undefined, "proxy started");
      return proxy;
    },
    target(protocol: "udp" | "tcp" = "udp"): SendTarget {
      const l = this.proxy.listeners.find((x) => x.protocol === protocol)!;
      return { protocol, address: l.address, port: l.port };
    },
  };
}

// ---- peers ------------------------------------------------------------------------------------

/** What a SmallUas was sent, and the statuses it answered its INVITEs with. */
interface WatchedUas {
  readonly uas: SmallUas;
  readonly requests: Inbox<SipRequest>;
  readonly acks: Inbox<SipRequest>;
  readonly inviteStatuses: Inbox<number>;
}

/** The peers of one test, all stopped at its end. */
class Peers {
  readonly #stops: (() => Promise<void>)[] = [];

  async phone(options: PhoneOptions = {}): Promise<SipPhone> {
    const phone = await SipPhone.start(options);
    this.#stops.push(() => phone.stop());
    return phone;
  }

  /** A SmallUas on UDP; with `inviteStatus` 0 it never answers an INVITE by itself. */
  async uas(inviteStatus: number, address = "127.0.0.1"): Promise<WatchedUas> {
    const uas = new SmallUas({
      listen: [{ protocol: "udp", address, port: 0 }],
      inviteStatus,
      timers: PHONE_TIMERS,
    });
    const watched: WatchedUas = {
      uas,
      requests: new Inbox(),
      acks: new Inbox(),
      inviteStatuses: new Inbox(),
    };
    // Ahead of SmallUas's own listener: it answers at once, and the request goes with the final.
    uas.transactions.prependListener("request", (tx) => {
      watched.requests.push(tx.request);
      if (tx.method !== "INVITE") return;
      const respond = tx.respond.bind(tx);
      tx.respond = (response: SipResponse) => {
        if (response.status >= 200) watched.inviteStatuses.push(response.status);
        respond(response);
      };
    });
    uas.transactions.on("ack", ({ message }) => watched.acks.push(message as SipRequest));
    await uas.start();
    this.#stops.push(() => uas.stop());
    return watched;
  }

  async raw(address = "127.0.0.1"): Promise<RawUdp> {
    const raw = await RawUdp.bind(address);
    this.#stops.push(() => raw.close());
    return raw;
  }

  async stop(): Promise<void> {
    for (const stop of this.#stops.reverse()) await stop();
  }
}

/** Makes a SmallUas (inviteStatus 0) answer INVITEs 180 then 200, Record-Route echoed. */
function answerWith200(watched: WatchedUas): void {
  const { uas } = watched;
  uas.transactions.on("request", (tx) => {
    if (tx.method !== "INVITE") return;
    const request = tx.request;
    const toTag = `ok${nextId()}`;
    tx.respond(createResponse(request, 180, { toTag }));
    const ok = createResponse(request, 200, { toTag });
    for (const rr of request.getHeaders("record-route")) ok.appendHeader("Record-Route", rr);
    ok.appendHeader("Contact", `<sip:uas@127.0.0.1:${uas.port()}>`);
    tx.respond(ok);
  });
}

/** REGISTER of `user` from `transactions` with `contact`; the final response. */
async function registerFrom(
  transactions: TransactionLayer,
  proxy: SendTarget,
  user: string,
  contact: string,
): Promise<SipResponse> {
  const request = newRequest("REGISTER", `sip:${DOMAIN}`, {
    from: `<sip:${user}@${DOMAIN}>;tag=r${nextId()}`,
    to: `<sip:${user}@${DOMAIN}>`,
    headers: [
      ["Contact", `<${contact}>`],
      ["Expires", "600"],
    ],
  });
  return transactions.sendRequest(request, proxy).final;
}

async function registerUas(watched: WatchedUas, proxy: SendTarget, user: string): Promise<void> {
  const contact = `sip:${user}@127.0.0.1:${watched.uas.port()}`;
  const response = await registerFrom(watched.uas.transactions, proxy, user, contact);
  assert.equal(response.status, 200, `REGISTER ${user} at ${contact}`);
}

async function registerPhone(
  phone: SipPhone,
  proxy: SendTarget,
  options: { user?: string; contact?: string; password?: string } = {},
): Promise<void> {
  const response = await phone.register(proxy, options);
  assert.equal(response.status, 200, `REGISTER ${options.user ?? phone.user}`);
}

/** Responses with `status` the transport of a peer delivered for `callId`. */
function responsesFor(
  received: Inbox<InboundMessage>,
  callId: string,
  match: (r: SipResponse) => boolean,
): SipResponse[] {
  return received.items
    .map((i) => i.message)
    .filter((m): m is SipResponse => m.type === "response" && m.callId === callId && match(m));
}

function uriOf(value: { uri: unknown }): SipUri {
  assert.ok(value.uri instanceof SipUri, "a SIP URI");
  return value.uri;
}

/** Raw request text from a UDP peer with the Via of our choosing. */
function rawRequest(
  method: string,
  uri: string,
  via: string,
  callId: string,
  fromTag: string,
  extra: string[] = [],
): string {
  return [
    `${method} ${uri} SIP/2.0`,
    `Via: ${via}`,
    "Max-Forwards: 70",
    `From: <sip:alice@${DOMAIN}>;tag=${fromTag}`,
    `To: <${uri}>`,
    `Call-ID: ${callId}`,
    `CSeq: 1 ${method}`,
    ...extra,
    "Content-Length: 0",
    "",
    "",
  ].join("\r\n");
}

// ---- 1. parallel forking ----------------------------------------------------------------------

describe("parallel forking and the best response (RFC 3261 §16.7)", () => {
  const f = proxyPerDescribe();

  /** `user` registered at one SmallUas per status; the caller's final response. */
  async function forkTo(statuses: number[]): Promise<SipResponse> {
    const peers = new Peers();
    try {
      const user = `fork${nextId()}`;
      for (const status of statuses) await registerUas(await peers.uas(status), f.target(), user);
      const caller = await peers.phone();
      const { response } = await caller.call(f.target(), `sip:${user}@${DOMAIN}`);
      return response;
    } finally {
      await peers.stop();
    }
  }

  test("two contacts, one ringing forever and one answering: the caller gets the 200, the ringing branch a CANCEL and ends with 487", async () => {
    const peers = new Peers();
    try {
      const user = `fork${nextId()}`;
      const ringing = await peers.uas(0);
      const answering = await peers.uas(0);
      answerWith200(answering);
      await registerUas(ringing, f.target(), user);
      await registerUas(answering, f.target(), user);
      const caller = await peers.phone();

      const { outgoing, response } = await caller.call(f.target(), `sip:${user}@${DOMAIN}`);
      assert.equal(response.status, 200);
      await ringing.inviteStatuses.until((s) => s.includes(487), WAIT, "487 on the ringing branch");
      assert.equal(ringing.uas.answered.get("INVITE"), 1, "both contacts were tried");
      assert.equal(answering.uas.answered.get("INVITE"), 1);
      assert.equal(ringing.uas.answered.get("CANCEL"), 1);
      assert.deepEqual(ringing.inviteStatuses.items, [487]);
      const cancel = ringing.requests.items.find((r) => r.method === "CANCEL")!;
      // §16.7 step 10 with RFC 3326: why the branch was cancelled.
      assert.match(cancel.getHeader("reason") ?? "", /^SIP;cause=200/);
      assert.equal(answering.uas.answered.get("CANCEL"), undefined);

      const dialog = callerDialog(outgoing.request, response);
      await caller.ack(dialog);
      await answering.acks.until((a) => a.length === 1, WAIT, "the ACK at the answering contact");
      assert.equal((await caller.inDialog(dialog, "BYE").final).status, 200);
      assert.equal(answering.uas.answered.get("BYE"), 1);
      assert.equal(ringing.uas.answered.get("BYE"), undefined);
      // The 487 stayed at the proxy: the caller saw no final response but the 200.
      const callId = outgoing.request.callId;
      assert.deepEqual(
        responsesFor(
          caller.received,
          callId,
          (r) => r.cseq.method === "INVITE" && r.status >= 200,
        ).map((r) => r.status),
        [200],
      );
    } finally {
      await peers.stop();
    }
  });

  test("486 and 603: the caller gets the 603 (a 6xx wins)", async () => {
    assert.equal((await forkTo([486, 603])).status, 603);
    assert.equal((await forkTo([603, 486])).status, 603);
  });

  test("486 and 404: the caller gets a 4xx, one of the two", async () => {
    const status = (await forkTo([486, 404])).status;
    assert.ok(status === 486 || status === 404, `got ${status}`);
  });

  test("503 from the only branch becomes 500 (§16.7 step 6)", async () => {
    const response = await forkTo([503]);
    assert.equal(response.status, 500);
  });

  test("a 2xx from one branch beats a 486 from the other", async () => {
    const peers = new Peers();
    try {
      const user = `fork${nextId()}`;
      const busy = await peers.uas(486);
      const answering = await peers.uas(0);
      answerWith200(answering);
      await registerUas(busy, f.target(), user);
      await registerUas(answering, f.target(), user);
      const caller = await peers.phone();
      const { outgoing, response } = await caller.call(f.target(), `sip:${user}@${DOMAIN}`);
      assert.equal(response.status, 200);
      const dialog = callerDialog(outgoing.request, response);
      await caller.ack(dialog);
      assert.equal((await caller.inDialog(dialog, "BYE").final).status, 200);
    } finally {
      await peers.stop();
    }
  });
});

// ---- 2. CANCEL --------------------------------------------------------------------------------

describe("CANCEL (RFC 3261 §16.10)", () => {
  const f = proxyPerDescribe();

  test("the caller CANCELs a call the callee never answers: 200 for the CANCEL, the callee's 487 for the INVITE", async () => {
    const peers = new Peers();
    try {
      const callee = await peers.uas(0);
      await registerUas(callee, f.target(), "carol");
      const caller = await peers.phone();
      const invite = caller.invite(f.target(), `sip:carol@${DOMAIN}`);
      await callee.requests.until((r) => r.length >= 1, WAIT, "the INVITE at the callee");
      assert.equal(f.proxy.calls, 1, "an early call while it rings");

      const cancelled = await caller.cancel(invite);
      assert.equal(cancelled.status, 200);
      const final = await invite.final;
      assert.equal(final.status, 487);
      // Relayed from the callee (its To tag), not made up by the proxy.
      assert.equal(final.to.tag, "uas1");
      assert.equal(callee.uas.answered.get("CANCEL"), 1);
      assert.deepEqual(callee.inviteStatuses.items, [487]);
      assert.equal(f.proxy.calls, 0);
    } finally {
      await peers.stop();
    }
  });

  test("a CANCEL that matches nothing: 481", async () => {
    const peers = new Peers();
    try {
      const caller = await peers.phone();
      const cancel = newRequest("CANCEL", `sip:nobody@${DOMAIN}`);
      const response = await caller.send(cancel, f.target()).final;
      assert.equal(response.status, 481);
    } finally {
      await peers.stop();
    }
  });
});

// ---- 3. no one to reach -----------------------------------------------------------------------

describe("404, 480 and 408 (auth on)", () => {
  const PASSWORDS: Record<string, string> = {
    alice: "alice-Pa55-core",
    erin: "erin-Pa55-core",
    frank: "frank-Pa55-core",
  };
  const credentials = Credentials.parse(
    Object.entries(PASSWORDS)
      .map(([user, password]) => Credentials.line(user, DOMAIN, password))
      .join("\n"),
  );
  const f = proxyPerDescribe({ auth: { enabled: true } }, { credentials });

  test("an unknown user: 404", async () => {
    const peers = new Peers();
    try {
      const caller = await peers.phone({ user: "alice" });
      const { response } = await caller.call(f.target(), `sip:nobody@${DOMAIN}`, {
        password: PASSWORDS.alice!,
      });
      assert.equal(response.status, 404);
    } finally {
      await peers.stop();
    }
  });

  // DESIGN.md "Client query": the monitor's 302 names proxies as `sip:bob@<address>`, and a
  // UAC makes that its Request-URI; the proxy takes it as bob of its domain.
  test("a user at the proxy's own address is that user of its domain: the call reaches the binding", async () => {
    const peers = new Peers();
    try {
      const frank = await peers.phone({ user: "frank" });
      const registered = await frank.register(f.target(), { password: PASSWORDS.frank! });
      assert.equal(registered.status, 200);
      const caller = await peers.phone({ user: "alice" });
      const { address, port } = f.target();
      const { response } = await caller.call(f.target(), `sip:frank@${address}:${port}`, {
        password: PASSWORDS.alice!,
      });
      assert.equal(response.status, 200);
      const invite = frank.requests.items.find((i) => i.request.method === "INVITE");
      assert.ok(invite !== undefined, "frank got the INVITE");
      const unknown = await caller.call(f.target(), `sip:nobody@${address}:${port}`, {
        password: PASSWORDS.alice!,
      });
      assert.equal(unknown.response.status, 404);
    } finally {
      await peers.stop();
    }
  });

  test("a known user without a binding: 480", async () => {
    const peers = new Peers();
    try {
      const caller = await peers.phone({ user: "alice" });
      const { response } = await caller.call(f.target(), `sip:erin@${DOMAIN}`, {
        password: PASSWORDS.alice!,
      });
      assert.equal(response.status, 480);
    } finally {
      await peers.stop();
    }
  });

  test("a callee that never answers, not even 100: Timer B gives the caller 408", async () => {
    const peers = new Peers();
    try {
      const swallower = await peers.raw();
      const contact = `sip:frank@127.0.0.1:${swallower.port}`;
      const frank = await peers.phone({ user: "frank" });
      await registerPhone(frank, f.target(), { contact, password: PASSWORDS.frank! });
      const caller = await peers.phone({ user: "alice" });
      const started = Date.now();
      const { response } = await caller.call(f.target(), `sip:frank@${DOMAIN}`, {
        password: PASSWORDS.alice!,
      });
      const elapsed = Date.now() - started;
      assert.equal(response.status, 408);
      assert.ok(elapsed >= 64 * PROXY_TIMERS.t1Ms - 50, `408 after ${elapsed} ms, at Timer B`);
      const invites = swallower.requests("INVITE");
      assert.ok(invites.length >= 2, `retransmitted over UDP (${invites.length} INVITEs)`);
      assert.equal(invites[0]!.uri.toString(), contact);
      assert.equal(new Set(invites.map((i) => i.topVia!.branch)).size, 1, "one branch");
    } finally {
      await peers.stop();
    }
  });
});

// ---- 4. Max-Forwards and loops ----------------------------------------------------------------

describe("Max-Forwards and loop detection (RFC 3261 §16.3 steps 3 and 4)", () => {
  const f = proxyPerDescribe({ relayDomains: ["127.0.0.5"] });

  test("Max-Forwards 0: 483 and not forwarded; OPTIONS with Max-Forwards 0 to the proxy itself: 200", async () => {
    const peers = new Peers();
    try {
      const callee = await peers.phone({ user: "mf" });
      await registerPhone(callee, f.target());
      const caller = await peers.phone();
      const invite = caller.invite(f.target(), `sip:mf@${DOMAIN}`, { maxForwards: 0 });
      assert.equal((await invite.final).status, 483);
      const optionsToUser = newRequest("OPTIONS", `sip:mf@${DOMAIN}`, { maxForwards: 0 });
      assert.equal((await caller.send(optionsToUser, f.target()).final).status, 483);

      // A MESSAGE sent after them arrives; the INVITE and OPTIONS never did.
      const message = newRequest("MESSAGE", `sip:mf@${DOMAIN}`);
      assert.equal((await caller.send(message, f.target()).final).status, 200);
      assert.deepEqual(
        callee.requests.items.map((i) => i.request.method),
        ["MESSAGE"],
      );
      assert.equal(callee.requests.items[0]!.request.maxForwards, 69, "decremented by one");

      const self = f.target();
      const options = newRequest("OPTIONS", `sip:${self.address}:${self.port}`, {
        maxForwards: 0,
      });
      const answer = await caller.send(options, self).final;
      assert.equal(answer.status, 200);
      assert.ok(answer.getHeader("sipsteer-load") !== undefined, "answered by the proxy itself");
    } finally {
      await peers.stop();
    }
  });

  test("a request that comes back unchanged (a reflector): the looped copy is answered 482, and the caller gets the 482", async () => {
    const peers = new Peers();
    try {
      // Sends every datagram straight back where it came from: the proxy.
      const reflector = await peers.raw("127.0.0.5");
      reflector.onDatagram = (d) => void reflector.send(d.bytes, d.from.port, d.from.address);
      const caller = await peers.phone();
      const { response } = await caller.call(f.target(), `sip:loop@127.0.0.5:${reflector.port}`);
      assert.equal(response.status, 482);
      const answered = reflector.received.items
        .map((d) => d.message)
        .filter((m): m is SipResponse => m?.type === "response" && m.status === 482);
      assert.ok(answered.length >= 1, "the proxy answered the looped copy with 482");
      // The looped copy was not forwarded again: every INVITE the reflector saw is the first.
      const branches = new Set(reflector.requests("INVITE").map((r) => r.topVia!.branch));
      assert.equal(branches.size, 1, `INVITE branches seen: ${[...branches].join(", ")}`);
    } finally {
      await peers.stop();
    }
  });
});

// ---- 5. not an open relay ---------------------------------------------------------------------

describe("not an open relay", () => {
  const f = proxyPerDescribe({ relayDomains: ["127.0.0.5"] });

  test("a domain not served: 403; a Route to a host outside the fleet: 403", async () => {
    const peers = new Peers();
    try {
      const elsewhere = await peers.raw("127.0.0.6");
      const caller = await peers.phone();
      const foreign = caller.invite(f.target(), "sip:someone@elsewhere.test");
      assert.equal((await foreign.final).status, 403);
      const literal = caller.invite(f.target(), `sip:someone@127.0.0.6:${elsewhere.port}`);
      assert.equal((await literal.final).status, 403);
      const routed = caller.invite(f.target(), `sip:bob@${DOMAIN}`, {
        headers: [["Route", `<sip:127.0.0.6:${elsewhere.port};lr>`]],
      });
      assert.equal((await routed.final).status, 403);
      const message = newRequest("MESSAGE", `sip:someone@127.0.0.6:${elsewhere.port}`);
      assert.equal((await caller.send(message, f.target()).final).status, 403);
      assert.equal(elsewhere.received.items.length, 0, "nothing was sent to 127.0.0.6");
    } finally {
      await peers.stop();
    }
  });

  test("relayDomains lets a host through: the INVITE reaches it and its answer comes back", async () => {
    const peers = new Peers();
    try {
      const relayed = await peers.uas(486, "127.0.0.5");
      const caller = await peers.phone();
      const uri = `sip:someone@127.0.0.5:${relayed.uas.port()}`;
      const { response } = await caller.call(f.target(), uri);
      assert.equal(response.status, 486);
      assert.equal(response.to.tag, "uas1", "the relayed host's own answer");
      const invite = relayed.requests.items.find((r) => r.method === "INVITE")!;
      assert.equal(invite.uri.toString(), uri, "Request-URI unchanged");
    } finally {
      await peers.stop();
    }
  });
});

// ---- 6, 7. Record-Route and connections -------------------------------------------------------

describe("Record-Route (RFC 3261 §16.6 step 4, RFC 5658) and clients reached down their own connection", () => {
  const f = proxyPerDescribe();

  test("UDP to UDP: one Record-Route with lr; ACK and BYE follow it to the callee", async () => {
    const peers = new Peers();
    try {
      const callee = await peers.phone({ user: "rr1" });
      await registerPhone(callee, f.target());
      const caller = await peers.phone();
      const { outgoing, response } = await caller.call(f.target(), `sip:rr1@${DOMAIN}`);
      assert.equal(response.status, 200);

      const invite = callee.requestsOf("INVITE")[0]!.request;
      assert.equal(invite.recordRoutes.length, 1);
      const rr = uriOf(invite.recordRoutes[0]!);
      assert.equal(rr.hostname, "127.0.0.1");
      assert.equal(rr.port, f.target("udp").port);
      assert.ok(rr.params.has("lr"), "loose routing");
      assert.equal(rr.transport, undefined);
      assert.equal(invite.maxForwards, 69);
      const top = invite.topVia!;
      assert.equal(top.port, f.target("udp").port, "the proxy's Via on top");
      assert.match(top.branch ?? "", /^z9hG4bK/);
      assert.equal(invite.vias.length, 2);

      const dialog = callerDialog(outgoing.request, response);
      assert.equal(dialog.routes.length, 1);
      await caller.ack(dialog);
      const bye = await caller.inDialog(dialog, "BYE").final;
      assert.equal(bye.status, 200);
      await callee.received.until(
        (m) => m.some((i) => i.message.type === "request" && i.message.method === "ACK"),
        WAIT,
        "the ACK at the callee",
      );
      const byeAtCallee = callee.requestsOf("BYE")[0]!.request;
      assert.equal(byeAtCallee.routes.length, 0, "the proxy took its Route off");
    } finally {
      await peers.stop();
    }
  });

  test("caller on UDP, callee registered over TCP: two Record-Routes, one per transport; in-dialog requests from either end reach the other", async () => {
    const peers = new Peers();
    try {
      const callee = await peers.phone({ user: "rr2", protocols: ["tcp"] });
      await registerPhone(callee, f.target("tcp"));
      const caller = await peers.phone();

      // The caller hangs up.
      const first = await caller.call(f.target(), `sip:rr2@${DOMAIN}`);
      assert.equal(first.response.status, 200);
      const incoming = callee.requestsOf("INVITE")[0]!;
      assert.equal(incoming.flow.protocol, "tcp");
      const rrs = incoming.request.recordRoutes.map(uriOf);
      assert.equal(rrs.length, 2, `Record-Route: ${incoming.request.getHeaders("record-route")}`);
      // Top: the proxy on the callee's side (TCP); below: on the caller's side (UDP).
      assert.equal(rrs[0]!.transport, "tcp");
      assert.equal(rrs[0]!.port, f.target("tcp").port);
      assert.equal(rrs[1]!.transport, undefined);
      assert.equal(rrs[1]!.port, f.target("udp").port);
      for (const rr of rrs) assert.ok(rr.params.has("lr"), `${rr.toString()} has lr`);
      // The caller sees the same two in the 200.
      assert.equal(first.response.recordRoutes.length, 2);

      const dialog = callerDialog(first.outgoing.request, first.response);
      await caller.ack(dialog);
      const bye = await caller.inDialog(dialog, "BYE").final;
      assert.equal(bye.status, 200);
      const byeAtCallee = callee.requestsOf("BYE")[0]!;
      assert.equal(byeAtCallee.flow.protocol, "tcp", "the BYE reached the callee over TCP");
      const ack = await callee.received.first(
        (i) => i.message.type === "request" && i.message.method === "ACK",
        WAIT,
        "the ACK at the callee",
      );
      assert.equal(ack.flow.protocol, "tcp", "the ACK reached the callee over TCP");

      // The callee hangs up: its BYE goes along the Record-Route in order, to the caller.
      const second = await caller.call(f.target(), `sip:rr2@${DOMAIN}`);
      assert.equal(second.response.status, 200);
      await caller.ack(callerDialog(second.outgoing.request, second.response));
      const invite2 = callee.requestsOf("INVITE")[1]!.request;
      const calleeSide = calleeDialog(invite2, second.response);
      const reverse = callee.inDialog(calleeSide, "BYE");
      const byeAtCaller = await caller.requests.first(
        (i) => i.request.method === "BYE" && i.request.callId === invite2.callId,
        WAIT,
        "the callee's BYE at the caller",
      );
      assert.equal(byeAtCaller.flow.protocol, "udp");
      assert.equal((await reverse.final).status, 200);
      assert.equal(
        callee.requestsOf("BYE").length,
        1,
        "the callee's own BYE did not come back to it",
      );
      assert.equal(f.proxy.calls, 0);
    } finally {
      await peers.stop();
    }
  });

  test("a client registered over TCP is reached down its own connection, whatever its Contact says", async () => {
    const peers = new Peers();
    try {
      const deadPort = await freePort();
      const contact = `sip:gina@127.0.0.1:${deadPort};transport=tcp`;
      const callee = await peers.phone({ user: "gina", protocols: ["tcp"], contact });
      await registerPhone(callee, f.target("tcp"));
      assert.equal(callee.transport.flows.length, 1, "one connection to the proxy");
      const connection = callee.transport.flows[0]!;

      const caller = await peers.phone();
      const { outgoing, response } = await caller.call(f.target(), `sip:gina@${DOMAIN}`);
      assert.equal(response.status, 200);
      const invite = callee.requestsOf("INVITE")[0]!;
      assert.equal(invite.flow.id, connection.id, "the INVITE came down the REGISTER's connection");
      assert.equal(invite.request.uri.toString(), contact);

      const dialog = callerDialog(outgoing.request, response);
      await caller.ack(dialog);
      assert.equal((await caller.inDialog(dialog, "BYE").final).status, 200);
      assert.equal(callee.requestsOf("BYE")[0]!.flow.id, connection.id);
      assert.equal(callee.transport.flows.length, 1, "still the one connection");
      assert.ok(
        f.proxy.transport.flows.every((fl) => fl.remote.port !== deadPort),
        "the proxy never connected to the Contact's port",
      );
    } finally {
      await peers.stop();
    }
  });
});

// ---- 8. NAT -----------------------------------------------------------------------------------

describe("NAT: a client's private Contact, rport and received (RFC 3581)", () => {
  const f = proxyPerDescribe();
  const DAVE = "sip:dave@192.168.1.10:5060";

  test("dave registered with a private Contact gets his calls at the address and port he registered from; in-dialog requests both ways", async () => {
    const peers = new Peers();
    try {
      const dave = await peers.phone({ user: "dave", contact: DAVE });
      await registerPhone(dave, f.target());
      const caller = await peers.phone();
      const refusedBefore = f.proxy.transport.stats.refusedDestinations;

      const { outgoing, response } = await caller.call(f.target(), `sip:dave@${DOMAIN}`);
      assert.equal(response.status, 200);
      const invite = dave.requestsOf("INVITE")[0]!;
      assert.equal(invite.request.uri.toString(), DAVE);
      assert.equal(invite.flow.local.port, dave.port("udp"), "delivered to 127.0.0.1:P");

      const dialog = callerDialog(outgoing.request, response);
      assert.equal(dialog.target, DAVE);
      await caller.ack(dialog);
      assert.equal((await caller.inDialog(dialog, "INFO").final).status, 200);
      assert.equal(dave.requestsOf("INFO").length, 1);

      // Dave hangs up: along the Record-Route, to the caller.
      const daveSide = calleeDialog(invite.request, response);
      const bye = dave.inDialog(daveSide, "BYE");
      await caller.requests.first(
        (i) => i.request.method === "BYE",
        WAIT,
        "dave's BYE at the caller",
      );
      assert.equal((await bye.final).status, 200);
      assert.equal(dave.requestsOf("BYE").length, 0, "dave's own BYE did not come back to him");
      assert.equal(
        f.proxy.transport.stats.refusedDestinations,
        refusedBefore,
        "the proxy never tried 192.168.1.10",
      );
    } finally {
      await peers.stop();
    }
  });

  test("a caller whose Via names a private address, with rport: responses go to the packet's source; the callee sees received and rport", async () => {
    const peers = new Peers();
    try {
      const dave = await peers.phone({ user: "dave", contact: DAVE });
      dave.onInvite = (incoming) => {
        dave.respond(incoming, 180);
        dave.respond(incoming, 486);
      };
      await registerPhone(dave, f.target());
      const natted = await peers.raw();
      const refusedBefore = f.proxy.transport.stats.refusedDestinations;

      const n = nextId();
      const branch = `z9hG4bK-nat-${n}`;
      const via = `SIP/2.0/UDP 192.168.1.20:5060;branch=${branch};rport`;
      const callId = `nat-${n}@192.168.1.20`;
      const proxy = f.target();
      await natted.send(
        rawRequest("INVITE", `sip:dave@${DOMAIN}`, via, callId, `nat${n}`, [
          "Contact: <sip:alice@192.168.1.20:5060>",
        ]),
        proxy.port,
      );
      const busy = await natted.received.first(
        (d) => d.message?.type === "response" && d.message.status === 486,
        WAIT,
        "the 486 at the caller's source port",
      );
      assert.ok(
        natted.received.items.some(
          (d) => d.message?.type === "response" && d.message.status === 180,
        ),
        "the 180 came back there too",
      );
      const response = busy.message as SipResponse;
      const top = response.topVia!;
      assert.equal(top.branch, branch, "only the caller's Via is left");
      assert.equal(top.received, "127.0.0.1");
      assert.equal(top.rport, natted.port);

      // What dave saw: the caller's Via under the proxy's, stamped with the packet's source.
      const seen = dave.requestsOf("INVITE")[0]!.request.vias;
      assert.equal(seen.length, 2);
      assert.equal(seen[1]!.host, "192.168.1.20");
      assert.equal(seen[1]!.received, "127.0.0.1");
      assert.equal(seen[1]!.rport, natted.port);

      // ACK for the 486 (hop by hop, the INVITE's branch) so the proxy stops retransmitting.
      const ack = rawRequest("ACK", `sip:dave@${DOMAIN}`, via, callId, `nat${n}`).replace(
        `To: <sip:dave@${DOMAIN}>`,
        `To: <sip:dave@${DOMAIN}>;tag=${response.to.tag}`,
      );
      await natted.send(ack, proxy.port);
      assert.equal(f.proxy.transport.stats.refusedDestinations, refusedBefore);
    } finally {
      await peers.stop();
    }
  });
});

// ---- 9. dialog accounting ---------------------------------------------------------------------

describe("dialog accounting: proxy.calls", () => {
  const f = proxyPerDescribe();

  test("1 while ringing, 1 once answered, 0 after the BYE; 0 after a 486 and after a CANCEL", async () => {
    const peers = new Peers();
    try {
      const callee = await peers.phone({ user: "ivan" });
      const ringing = new Inbox<Incoming>();
      callee.onInvite = (incoming) => {
        callee.respond(incoming, 180);
        ringing.push(incoming);
      };
      await registerPhone(callee, f.target());
      const caller = await peers.phone();
      assert.equal(f.proxy.calls, 0);

      const invite = caller.invite(f.target(), `sip:ivan@${DOMAIN}`);
      await invite.responses.until(
        (r) => r.some((x) => x.status === 180),
        WAIT,
        "180 at the caller",
      );
      assert.equal(f.proxy.calls, 1, "early");
      callee.respond(ringing.items[0]!, 200);
      const ok = await invite.final;
      assert.equal(ok.status, 200);
      assert.equal(f.proxy.calls, 1, "confirmed");
      const dialog = callerDialog(invite.request, ok);
      await caller.ack(dialog);
      assert.equal(f.proxy.calls, 1);
      assert.equal((await caller.inDialog(dialog, "BYE").final).status, 200);
      assert.equal(f.proxy.calls, 0, "after the BYE");

      callee.onInvite = (incoming) => callee.respond(incoming, 486);
      const busy = await caller.call(f.target(), `sip:ivan@${DOMAIN}`);
      assert.equal(busy.response.status, 486);
      assert.equal(f.proxy.calls, 0, "after a failed call");

      callee.onInvite = (incoming) => {
        callee.respond(incoming, 180);
        ringing.push(incoming);
      };
      const third = caller.invite(f.target(), `sip:ivan@${DOMAIN}`);
      await third.responses.until((r) => r.some((x) => x.status === 180), WAIT, "180 again");
      assert.equal(f.proxy.calls, 1);
      assert.equal((await caller.cancel(third)).status, 200);
      assert.equal((await third.final).status, 487);
      assert.equal(f.proxy.calls, 0, "after a cancelled call");
    } finally {
      await peers.stop();
    }
  });
});

describe("dialog accounting: the safety timeout", () => {
  const SAFETY_MS = 400;
  const f = proxyPerDescribe({ dialogSafetyTimeoutMs: SAFETY_MS });

  test("a dialog whose BYE never comes stops being counted after dialogSafetyTimeoutMs", async () => {
    const peers = new Peers();
    try {
      const callee = await peers.phone({ user: "judy" });
      await registerPhone(callee, f.target());
      const caller = await peers.phone();
      const { outgoing, response } = await caller.call(f.target(), `sip:judy@${DOMAIN}`);
      assert.equal(response.status, 200);
      const answeredAt = Date.now();
      assert.equal(f.proxy.calls, 1);
      const dialog = callerDialog(outgoing.request, response);
      await caller.ack(dialog);
      // The sweep runs every min(60 s, timeout / 4).
      await until("the dialog timed out", () => f.proxy.calls === 0, SAFETY_MS * 4 + 2000);
      const after = Date.now() - answeredAt;
      assert.ok(after >= SAFETY_MS - 50, `ended ${after} ms after the 200`);
      // A BYE that comes late still goes through, and nothing goes below zero.
      assert.equal((await caller.inDialog(dialog, "BYE").final).status, 200);
      assert.equal(f.proxy.calls, 0);
    } finally {
      await peers.stop();
    }
  });
});

// ---- 10. 2xx retransmissions ------------------------------------------------------------------

describe("2xx retransmissions (RFC 3261 §16.7 step 5, §16.11; RFC 6026)", () => {
  const f = proxyPerDescribe();

  test("the callee sends its 200 twice: the caller receives both; the ACK goes end to end; a 200 after every transaction ended is forwarded statelessly", async () => {
    const peers = new Peers();
    try {
      const callee = await peers.raw();
      const contact = `sip:henry@127.0.0.1:${callee.port}`;
      let okBytes: Buffer | undefined;
      const answeredBranches = new Set<string>();
      callee.onDatagram = (d) => {
        const m = d.message;
        if (m?.type !== "request") return;
        if (m.method === "INVITE") {
          // The first copy only: the proxy's retransmissions are not answered again.
          const branch = m.topVia!.branch!;
          if (answeredBranches.has(branch)) return;
          answeredBranches.add(branch);
          const ok = createResponse(m, 200, { toTag: "henry1" });
          for (const rr of m.getHeaders("record-route")) ok.appendHeader("Record-Route", rr);
          ok.appendHeader("Contact", `<${contact}>`);
          okBytes = ok.toBuffer();
          void callee.send(okBytes, d.from.port, d.from.address);
          void callee.send(okBytes, d.from.port, d.from.address);
        } else if (m.method === "BYE") {
          void callee.send(createResponse(m, 200).toBuffer(), d.from.port, d.from.address);
        }
      };
      const caller = await peers.phone();
      await registerPhone(caller, f.target(), { user: "henry", contact });

      const invite = caller.invite(f.target(), `sip:henry@${DOMAIN}`);
      const callId = invite.request.callId;
      const ok = await invite.final;
      assert.equal(ok.status, 200);
      const oks = () =>
        responsesFor(
          caller.received,
          callId,
          (r) => r.status === 200 && r.cseq.method === "INVITE",
        );
      await until("both 200s at the caller", () => oks().length === 2);
      assert.equal(
        invite.responses.count((r) => r.status === 200),
        2,
        "passed up in Accepted",
      );

      const dialog = callerDialog(invite.request, ok);
      await caller.ack(dialog);
      await callee.received.until(
        (items) => items.some((d) => d.message?.type === "request" && d.message.method === "ACK"),
        WAIT,
        "the ACK at the callee",
      );
      const ack = callee.requests("ACK")[0]!;
      assert.equal(ack.uri.toString(), contact);
      assert.equal(ack.callId, callId);
      assert.equal(ack.cseq.seq, 1);
      assert.equal(ack.routes.length, 0, "the proxy took its Route off");
      assert.equal(ack.vias.length, 2, "the proxy's Via over the caller's");
      assert.equal(ack.vias[0]!.port, f.target().port);

      // Once the proxy's transactions are over (Timers L and M, 64·T1), a further 200 is no
      // transaction's: it is forwarded by its Via all the same.
      await until(
        "the proxy's transactions ended",
        () => f.proxy.report().transactions === 0,
        64 * PROXY_TIMERS.t1Ms * 3 + 2000,
      );
      await callee.send(okBytes!, f.target().port);
      await until("a third 200 at the caller", () => oks().length === 3);

      assert.equal((await caller.inDialog(dialog, "BYE").final).status, 200);
      assert.equal(f.proxy.calls, 0);
    } finally {
      await peers.stop();
    }
  });
});
