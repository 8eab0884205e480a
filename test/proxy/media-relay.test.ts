// The proxy's use of the media relay with real rtpengine processes (issue 8), with SIP phones
// on our stack that answer with SDP: what each side is given, that a re-INVITE keeps the same
// media session, a late offer (the offer in the 200, the answer in the ACK), a CANCEL and a
// failure deleting the call from the relay, the next relay taken when one does not answer or
// is full, and policy auto leaving a call that needs no relay alone.
import assert from "node:assert/strict";
import { createSocket, type Socket } from "node:dgram";
import { after, before, describe, test } from "node:test";
import { NgClient, type RtpengineProcess } from "../../src/media/index.js";
import { Proxy, type ProxyConfigInput } from "../../src/proxy/index.js";
import { createResponse, type SendTarget, type SipResponse } from "../../src/sip/index.js";
import { openHandles } from "../helpers/handles.js";
import { requireRtpengine, startRtpengine } from "../helpers/rtpengine.js";
import {
  DOMAIN,
  LOOPBACK,
  SipPhone,
  calleeDialog,
  callerDialog,
  newRequest,
  until,
  type Incoming,
} from "../helpers/sip-caller.js";
import { freePort } from "../helpers/sipp.js";

function plainSdp(address: string, port: number, version = 1): string {
  return [
    "v=0",
    `o=phone 1 ${version} IN IP4 ${address}`,
    "s=-",
    `c=IN IP4 ${address}`,
    "t=0 0",
    `m=audio ${port} RTP/AVP 0`,
    "a=rtpmap:0 PCMU/8000",
    "",
  ].join("\r\n");
}

function plainSdp6(address: string, port: number): string {
  return plainSdp(address, port).replace(/IN IP4/g, "IN IP6");
}

function media(sdp: string): { address: string; port: number } {
  const c = /^c=IN IP[46] (\S+)/m.exec(sdp);
  const m = /^m=audio (\d+)/m.exec(sdp);
  assert.ok(c !== null && m !== null, `SDP with c= and m=audio:\n${sdp}`);
  return { address: c[1]!, port: Number(m[1]) };
}

/** A 2xx (or other) answer with an SDP body, the Record-Route echoed (RFC 3261 §12.1.1). */
function answer(phone: SipPhone, incoming: Incoming, status: number, sdp?: string): SipResponse {
  const { request, tx } = incoming;
  const response = createResponse(request, status, { toTag: `${phone.user}-${request.cseq.seq}` });
  if (status >= 200 && status < 300) {
    for (const rr of request.getHeaders("record-route")) response.appendHeader("Record-Route", rr);
    response.appendHeader("Contact", `<${phone.contactUri()}>`);
  }
  if (sdp !== undefined) response.setBody(sdp, "application/sdp");
  tx.respond(response);
  return response;
}

describe("the proxy and the media relay", () => {
  let full: RtpengineProcess | undefined;
  let good: RtpengineProcess | undefined;
  let ng: NgClient;
  let fullNg: NgClient;
  let baseline: Record<string, number>;
  const proxies: Proxy[] = [];
  const phones: SipPhone[] = [];

  before(async (t) => {
    if (!requireRtpengine(t as never)) return;
    baseline = await openHandles();
    full = await startRtpengine({ maxSessions: 1 });
    good = await startRtpengine();
    ng = new NgClient({ address: "127.0.0.1", port: good.options.ngPort });
    fullNg = new NgClient({ address: "127.0.0.1", port: full.options.ngPort });
    await ng.start();
    await fullNg.start();
    // The full relay's one session.
    await fullNg.offer({ callId: "filler", fromTag: "f", sdp: plainSdp("127.0.0.1", 41000) });
  });

  after(async () => {
    for (const p of phones) await p.stop();
    for (const p of proxies) await p.stop();
    await ng?.stop();
    await fullNg?.stop();
    await full?.stop();
    await good?.stop();
    if (baseline !== undefined)
      assert.deepEqual(await openHandles(), baseline, "nothing left open");
  });

  async function proxyWith(
    m: ProxyConfigInput["media"],
    listen: ProxyConfigInput["listen"] = [{ protocol: "udp", address: "127.0.0.1", port: 0 }],
  ): Promise<SendTarget> {
    const proxy = new Proxy({
      id: `p${proxies.length + 1}`,
      domains: [DOMAIN],
      listen,
      allowedDestinations: LOOPBACK,
      auth: { enabled: false },
      http: { address: "127.0.0.1", port: 0 },
      timers: { t1Ms: 50, t2Ms: 400, t4Ms: 500, tryingDelayMs: 0 },
      media: m,
    });
    proxies.push(proxy);
    await proxy.start();
    const l = proxy.listeners[0]!;
    return { protocol: "udp", address: l.address, port: l.port };
  }

  async function phone(user: string, address: string): Promise<SipPhone> {
    const p = await SipPhone.start({ user, address });
    phones.push(p);
    return p;
  }

  function inviteFrom(caller: SipPhone, callee: string, sdp: string | undefined) {
    const request = newRequest("INVITE", `sip:${callee}@${DOMAIN}`, {
      from: `<sip:${caller.user}@${DOMAIN}>;tag=${caller.user}-tag`,
      headers: [["Contact", `<${caller.contactUri()}>`]],
    });
    if (sdp !== undefined) request.setBody(sdp, "application/sdp");
    return request;
  }

  test("policy always: each side sees only the relay; the next relay is taken past a dead and a full one; a re-INVITE keeps the same media session; BYE deletes", async (t) => {
    if (good === undefined) return t.skip("no rtpengine");
    const dead = await freePort();
    const proxy = await proxyWith({
      relay: "always",
      relays: [
        { id: "dead", ng: `127.0.0.1:${dead}` },
        { id: "full", ng: `127.0.0.1:${full!.options.ngPort}` },
        { id: "good", ng: `127.0.0.1:${good.options.ngPort}` },
      ],
      timeoutMs: 50,
    });
    const alice = await phone("alice", "127.0.0.31");
    const bob = await phone("bob", "127.0.0.32");
    assert.equal((await bob.register(proxy)).status, 200);
    let bobInvite: Incoming | undefined;
    bob.onInvite = (incoming) => {
      bobInvite = incoming;
      answer(bob, incoming, 200, plainSdp("127.0.0.32", 42000));
    };

    const invite = inviteFrom(alice, "bob", plainSdp("127.0.0.31", 40000));
    const ok = await alice.send(invite, proxy).final;
    assert.equal(ok.status, 200);
    const toBob = media(bobInvite!.request.body.toString());
    const toAlice = media(ok.body.toString());
    assert.equal(toBob.address, "127.0.0.1");
    assert.equal(toAlice.address, "127.0.0.1");
    for (const side of [toBob, toAlice]) {
      assert.ok(
        side.port >= good.options.portMin && side.port <= good.options.portMax,
        `${side.port} is the good relay's`,
      );
    }
    const callId = invite.callId;
    assert.ok((await ng.list()).includes(callId), "on the good relay");
    assert.ok(!(await fullNg.list()).includes(callId), "not on the full one");
    assert.equal(proxies.at(-1)!.report().media, 1);
    const aliceDialog = callerDialog(invite, ok);
    await alice.ack(aliceDialog);

    // bob's re-INVITE (hold, a new port): alice is offered the same relay port as before.
    const bobDialog = calleeDialog(bobInvite!.request, ok);
    let aliceReinvite: Incoming | undefined;
    alice.onInvite = (incoming) => {
      aliceReinvite = incoming;
      answer(alice, incoming, 200, plainSdp("127.0.0.31", 40000, 2));
    };
    const reOk = await bob.inDialog(bobDialog, "INVITE", plainSdp("127.0.0.32", 42010, 2)).final;
    assert.equal(reOk.status, 200);
    assert.deepEqual(
      media(aliceReinvite!.request.body.toString()),
      toAlice,
      "same relay port for alice",
    );
    assert.deepEqual(media(reOk.body.toString()), toBob, "same relay port for bob");
    assert.equal((await ng.list()).filter((c) => c === callId).length, 1);

    const bye = await alice.inDialog(aliceDialog, "BYE").final;
    assert.equal(bye.status, 200);
    await until("the relay deleted the call", () => proxies.at(-1)!.report().media === 0);
    assert.ok(!(await ng.list()).includes(callId));
  });

  test("a call forked to two phones puts both branches on one relay; the answered one carries on", async (t) => {
    if (good === undefined) return t.skip("no rtpengine");
    const proxy = await proxyWith({
      relay: "always",
      relays: [
        { id: "good", ng: `127.0.0.1:${good.options.ngPort}` },
        { id: "other", ng: `127.0.0.1:${full!.options.ngPort}` },
      ],
    });
    const alice = await phone("alice", "127.0.0.40");
    const desk = await phone("bob", "127.0.0.41");
    const mobile = await phone("bob", "127.0.0.42");
    assert.equal((await desk.register(proxy)).status, 200);
    assert.equal((await mobile.register(proxy)).status, 200);
    const offers: string[] = [];
    desk.onInvite = (incoming) => {
      offers.push(incoming.request.body.toString());
      setTimeout(() => answer(desk, incoming, 200, plainSdp("127.0.0.41", 42400)), 100);
    };
    mobile.onInvite = (incoming) => {
      offers.push(incoming.request.body.toString());
      answer(mobile, incoming, 180);
    };
    const invite = inviteFrom(alice, "bob", plainSdp("127.0.0.40", 40400));
    const ok = await alice.send(invite, proxy).final;
    assert.equal(ok.status, 200);
    assert.equal(offers.length, 2);
    for (const sdp of offers) {
      const m = media(sdp);
      assert.equal(m.address, "127.0.0.1");
      assert.ok(
        m.port >= good.options.portMin && m.port <= good.options.portMax,
        `${m.port}: the same relay`,
      );
    }
    await until("the other branch was cancelled", () => mobile.requestsOf("CANCEL").length === 1);
    const dialog = callerDialog(invite, ok);
    await alice.ack(dialog);
    assert.equal((await alice.inDialog(dialog, "BYE").final).status, 200);
    await until("deleted", () => proxies.at(-1)!.report().media === 0);
    assert.ok(!(await ng.list()).includes(invite.callId));
  });

  test("a late offer: the 200's offer and the ACK's answer go through the relay", async (t) => {
    if (good === undefined) return t.skip("no rtpengine");
    const proxy = await proxyWith({
      relay: "always",
      relays: [{ id: "good", ng: `127.0.0.1:${good.options.ngPort}` }],
    });
    const alice = await phone("alice", "127.0.0.33");
    const bob = await phone("bob", "127.0.0.34");
    assert.equal((await bob.register(proxy)).status, 200);
    bob.onInvite = (incoming) => answer(bob, incoming, 200, plainSdp("127.0.0.34", 42100));
    const invite = inviteFrom(alice, "bob", undefined);
    const ok = await alice.send(invite, proxy).final;
    assert.equal(ok.status, 200);
    const offered = media(ok.body.toString());
    assert.equal(offered.address, "127.0.0.1", "the 200's offer names the relay");

    const dialog = callerDialog(invite, ok);
    const ack = newRequest("ACK", dialog.target, {
      from: dialog.local,
      to: dialog.remote,
      callId: dialog.callId,
      cseq: dialog.cseq,
      headers: dialog.routes.map((r): [string, string] => ["Route", r]),
    });
    ack.setBody(plainSdp("127.0.0.33", 40100), "application/sdp");
    await alice.transport.send(ack, proxy, { viaBranch: `z9hG4bK-ack-${Date.now()}` });
    await until("bob got the ACK", () =>
      bob.received.items.some((m) => "method" in m.message && m.message.method === "ACK"),
    );
    const bobAck = bob.received.items.find(
      (m) => "method" in m.message && m.message.method === "ACK",
    )!;
    const answered = media(bobAck.message.body.toString());
    assert.equal(answered.address, "127.0.0.1", "the ACK's answer names the relay");
    assert.notEqual(answered.port, 40100);
    const query = await ng.query({ callId: invite.callId });
    assert.equal(query.tags.length, 2);
    await alice.inDialog(dialog, "BYE").final;
  });

  test("a cancelled call and a refused call leave the relay", async (t) => {
    if (good === undefined) return t.skip("no rtpengine");
    const proxy = await proxyWith({
      relay: "always",
      relays: [{ id: "good", ng: `127.0.0.1:${good.options.ngPort}` }],
    });
    const alice = await phone("alice", "127.0.0.35");
    const bob = await phone("bob", "127.0.0.36");
    assert.equal((await bob.register(proxy)).status, 200);

    bob.onInvite = (incoming) => answer(bob, incoming, 180);
    const ringing = alice.send(inviteFrom(alice, "bob", plainSdp("127.0.0.35", 40200)), proxy);
    await ringing.responses.until((r) => r.some((x) => x.status === 180), 5000, "180");
    assert.ok((await ng.list()).includes(ringing.request.callId), "on the relay while ringing");
    await alice.cancel(ringing);
    assert.equal((await ringing.final).status, 487);
    await until("cancelled call deleted", () => proxies.at(-1)!.report().media === 0);
    assert.ok(!(await ng.list()).includes(ringing.request.callId));

    bob.onInvite = (incoming) => answer(bob, incoming, 486);
    const busy = alice.send(inviteFrom(alice, "bob", plainSdp("127.0.0.35", 40210)), proxy);
    assert.equal((await busy.final).status, 486);
    await until("refused call deleted", () => proxies.at(-1)!.report().media === 0);
    assert.ok(!(await ng.list()).includes(busy.request.callId));
  });

  test("policy auto leaves alone a call whose SDP names where its SIP comes from", async (t) => {
    if (good === undefined) return t.skip("no rtpengine");
    const proxy = await proxyWith({
      relay: "auto",
      relays: [{ id: "good", ng: `127.0.0.1:${good.options.ngPort}` }],
    });
    const alice = await phone("alice", "127.0.0.37");
    const bob = await phone("bob", "127.0.0.38");
    assert.equal((await bob.register(proxy)).status, 200);
    let bobInvite: Incoming | undefined;
    bob.onInvite = (incoming) => {
      bobInvite = incoming;
      answer(bob, incoming, 200, plainSdp("127.0.0.38", 42300));
    };
    const invite = inviteFrom(alice, "bob", plainSdp("127.0.0.37", 40300));
    const ok = await alice.send(invite, proxy).final;
    assert.equal(ok.status, 200);
    assert.deepEqual(media(bobInvite!.request.body.toString()), {
      address: "127.0.0.37",
      port: 40300,
    });
    assert.deepEqual(media(ok.body.toString()), { address: "127.0.0.38", port: 42300 });
    assert.ok(!(await ng.list()).includes(invite.callId));
    await alice.ack(callerDialog(invite, ok));
    await alice.inDialog(callerDialog(invite, ok), "BYE").final;
  });

  test("IPv6 to IPv4: policy auto bridges the families, and RTP crosses", async (t) => {
    if (good === undefined) return t.skip("no rtpengine");
    const dual = await startRtpengine({ interfaces: ["127.0.0.1", "::1"] });
    const dualNg = new NgClient({ address: "127.0.0.1", port: dual.options.ngPort });
    await dualNg.start();
    const sockets: Socket[] = [];
    try {
      const proxy = await proxyWith(
        { relay: "auto", relays: [{ id: "dual", ng: `127.0.0.1:${dual.options.ngPort}` }] },
        [
          { protocol: "udp", address: "127.0.0.1", port: 0 },
          { protocol: "udp", address: "::1", port: 0 },
        ],
      );
      const six = proxies.at(-1)!.listeners.find((l) => l.address === "::1")!;
      const alice = await phone("alice", "::1");
      const bob = await phone("bob", "127.0.0.39");
      assert.equal((await bob.register(proxy)).status, 200);
      // RTP sockets of both phones, where their SDP says.
      const aliceRtp = await udpSocket("udp6", "::1", sockets);
      const bobRtp = await udpSocket("udp4", "127.0.0.39", sockets);
      let bobInvite: Incoming | undefined;
      bob.onInvite = (incoming) => {
        bobInvite = incoming;
        answer(bob, incoming, 200, plainSdp("127.0.0.39", bobRtp.address().port));
      };
      const invite = inviteFrom(alice, "bob", plainSdp6("::1", aliceRtp.address().port));
      const ok = await alice.send(invite, { protocol: "udp", address: "::1", port: six.port })
        .final;
      assert.equal(ok.status, 200);
      const toBob = bobInvite!.request.body.toString();
      assert.match(toBob, /^c=IN IP4 127\.0\.0\.1/m, toBob);
      assert.match(ok.body.toString(), /^c=IN IP6 ::1/m, ok.body.toString());
      assert.ok((await dualNg.list()).includes(invite.callId));

      // A packet each way through the relay (symmetric: each side sends first to learn).
      const packet = Buffer.from([0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, ...Buffer.alloc(160)]);
      const heard = (s: Socket) => new Promise<void>((r) => s.once("message", () => r()));
      const bobHeard = heard(bobRtp);
      const aliceHeard = heard(aliceRtp);
      const toRelayFromAlice = media(ok.body.toString());
      const toRelayFromBob = media(toBob);
      for (let i = 0; i < 5; i++) {
        aliceRtp.send(packet, toRelayFromAlice.port, "::1");
        bobRtp.send(packet, toRelayFromBob.port, "127.0.0.1");
        await new Promise((r) => setTimeout(r, 40));
      }
      await Promise.all([bobHeard, aliceHeard]);
      await alice.ack(callerDialog(invite, ok));
      assert.equal((await alice.inDialog(callerDialog(invite, ok), "BYE").final).status, 200);
    } finally {
      for (const s of sockets) s.close();
      await dualNg.stop();
      await dual.stop();
    }
  });
});

function udpSocket(type: "udp4" | "udp6", address: string, keep: Socket[]): Promise<Socket> {
  const s = createSocket(type);
  keep.push(s);
  return new Promise((resolve) => s.bind(0, address, () => resolve(s)));
}
