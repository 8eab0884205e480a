// Calls of the client SDK against real peers (issue 6): early media from a 183 with SDP
// (a phone on our stack registered at a real proxy), the 2xx retransmitted until the ACK and
// a BYE when none comes (RFC 3261 §13.3.1.4, the caller being a phone that withholds its
// ACK), and SIPp as the callee answering a call placed through the proxy the monitor named.
import assert from "node:assert/strict";
import { once } from "node:events";
import { after, before, describe, test } from "node:test";
import { UserAgent, type Call } from "../../src/client/index.js";
import { createResponse, type SipResponse } from "../../src/sip/index.js";
import { eventually } from "../helpers/eventually.js";
import { openHandles } from "../helpers/handles.js";
import { SipPhone, callerDialog, type Incoming } from "../helpers/sip-caller.js";
import { freePort, startSipp, waitForBound } from "../helpers/sipp.js";
import { requireTool } from "../helpers/tools.js";
import {
  LOOPBACK,
  PASSWORDS,
  StaticMedia,
  UA_TIMERS,
  ZONE,
  addressOf,
  staticSdp,
  startFleet,
  udpPortOf,
  type TestFleet,
} from "./client-fleet.js";

function agent(user: keyof typeof PASSWORDS, monitors: string[]): UserAgent {
  return new UserAgent({
    user,
    password: PASSWORDS[user],
    domain: ZONE,
    monitors,
    allowedDestinations: LOOPBACK,
    timers: UA_TIMERS,
  });
}

describe("calls with early media, 2xx retransmission and SIPp", () => {
  let fleet: TestFleet;
  let alice: UserAgent;

  before(async () => {
    fleet = await startFleet({ proxies: 1 });
    alice = agent("alice", [fleet.http]);
    await alice.start();
    await alice.register();
  });

  after(async () => {
    await alice?.stop();
    await fleet?.stop();
    assert.deepEqual(await openHandles(), {});
  });

  // RFC 3261 §13.2.1 / RFC 3264: the answer in a 183 is the answer; the 2xx's copy is not
  // taken a second time.
  test("a 183 with SDP gives the answer early; the 200 completes the call once", async () => {
    const carol = await SipPhone.start({ user: "carol" });
    try {
      const proxy = fleet.proxies[0]!;
      const registered = await carol.register(
        { protocol: "udp", address: addressOf(proxy), port: udpPortOf(proxy) },
        { password: PASSWORDS.carol },
      );
      assert.equal(registered.status, 200);
      const carolSdp = staticSdp("carol", 44000);
      const answerWith = (incoming: Incoming, status: number): SipResponse => {
        const response = createResponse(incoming.request, status, { toTag: "carol-early" });
        for (const rr of incoming.request.getHeaders("record-route")) {
          response.appendHeader("Record-Route", rr);
        }
        response.appendHeader("Contact", `<${carol.contactUri()}>`);
        response.setBody(carolSdp, "application/sdp");
        incoming.tx.respond(response);
        return response;
      };
      let answer: (() => void) | undefined;
      carol.onInvite = (incoming) => {
        answerWith(incoming, 183);
        answer = () => answerWith(incoming, 200);
      };
      const media = new StaticMedia(staticSdp("alice", 40000));
      const call = alice.call("carol", { media });
      await once(call, "early");
      assert.equal(call.state, "early");
      assert.deepEqual(media.answers, [carolSdp]);
      answer!();
      await call.whenAnswered();
      assert.deepEqual(media.answers, [carolSdp], "the 2xx's SDP is not taken again");
      await carol.received.until(
        (items) => items.some((m) => m.message.type === "request" && m.message.method === "ACK"),
        5000,
        "carol gets the ACK",
      );
      await call.hangup();
      assert.equal(carol.requestsOf("BYE").length, 1);
    } finally {
      await carol.stop();
    }
  });

  test("SIPp as the callee answers a call through the proxy; our BYE ends its scenario", async (t) => {
    if (!requireTool(t, "sipp", "sip-tester")) return;
    const port = await freePort();
    const sipp = startSipp({
      scenario: "call-uas.xml",
      transport: "u1",
      localPort: port,
      calls: 1,
    });
    const registrar = await SipPhone.start({ user: "carol" });
    try {
      await waitForBound(port, "udp");
      const proxy = fleet.proxies[0]!;
      const registered = await registrar.register(
        { protocol: "udp", address: addressOf(proxy), port: udpPortOf(proxy) },
        { password: PASSWORDS.carol, contact: `sip:carol@127.0.0.1:${port}` },
      );
      assert.equal(registered.status, 200);
      const call = alice.call("carol", { media: new StaticMedia(staticSdp("alice", 40000)) });
      await call.whenAnswered();
      assert.equal(call.proxyName, "p1");
      await call.hangup();
      assert.equal((await call.whenEnded()).status, 200);
      const result = await sipp.result;
      assert.equal(result.successful, 1, result.output);
      assert.equal(result.failed, 0, result.output);
    } finally {
      sipp.kill();
      await registrar.stop();
    }
  });
});

describe("the answered call's 2xx (RFC 3261 §13.3.1.4)", () => {
  test("is retransmitted until the ACK; without one the callee sends BYE after 64 × T1", async () => {
    const bob = agent("bob", ["http://127.0.0.1:9"]);
    await bob.start();
    const phone = await SipPhone.start({ user: "alice" });
    try {
      const calls: Call[] = [];
      bob.on("incoming", (call) => {
        calls.push(call);
        void call.answer({ media: new StaticMedia(staticSdp("bob", 42000)) });
      });
      const port = bob.transport.boundListeners[0]!.port;
      const target = { protocol: "udp" as const, address: "127.0.0.1", port };
      const oks = (r: SipResponse) => r.status === 200;

      // 1. No ACK: copies at T1, 2T1 … up to T2, then BYE at 64 × T1 (3.2 s here).
      const unacked = phone.invite(target, bob.contactUri);
      await unacked.responses.until((r) => r.filter(oks).length >= 4, 5000, "four 200s");
      await phone.requests.until(
        (items) => items.some((i) => i.request.method === "BYE"),
        10_000,
        "bob's BYE",
      );
      assert.equal((await calls[0]!.whenEnded()).reason, "no-ack");

      // 2. ACKed: the copies stop.
      const acked = phone.invite(target, bob.contactUri);
      const ok = await acked.final;
      assert.equal(ok.status, 200);
      // The offer came in our 200 (the INVITE had none): the ACK carries no answer here.
      await phone.ack(callerDialog(acked.request, ok));
      await new Promise((r) => setTimeout(r, 150));
      const counted = acked.responses.count(oks);
      await new Promise((r) => setTimeout(r, 600));
      assert.equal(acked.responses.count(oks), counted, "no 200 after the ACK");
      assert.equal(calls[1]!.state, "answered");
      await calls[1]!.hangup();
      await eventually(
        () => (phone.requestsOf("BYE").length === 2 ? true : undefined),
        5000,
        "the second BYE",
      );
    } finally {
      await bob.stop();
      await phone.stop();
    }
    assert.deepEqual(await openHandles(), {});
  });
});
