// RFC 3261 §17.2 server transactions (with RFC 6026) and the matching rules of §17.2.3 and
// §9.2, driven by a fake clock: no sleeps.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { InviteServerTransaction } from "../../../src/sip/index.js";
import {
  TransactionLayer,
  createResponse,
  type InboundMessage,
  type ServerTransaction,
  type SipRequest,
  type TerminationReason,
} from "../../../src/sip/index.js";
import { FakeClock } from "../../helpers/fake-clock.js";
import { FakeTransport, tcpFlow, udpFlow } from "../../helpers/fake-transport.js";

function setup(tryingDelayMs = 200) {
  const clock = new FakeClock();
  const transport = new FakeTransport();
  const layer = new TransactionLayer({ transport, clock, timers: { tryingDelayMs } });
  const requests: ServerTransaction[] = [];
  const acks: InboundMessage[] = [];
  const strays: InboundMessage[] = [];
  layer.on("request", (tx) => {
    requestOf.set(tx, tx.request);
    requests.push(tx);
  });
  layer.on("ack", (m) => acks.push(m));
  layer.on("response", (m) => strays.push(m));
  layer.start();
  return { clock, transport, layer, requests, acks, strays };
}

function incoming(
  method: string,
  branch = "z9hG4bKs1",
  extra: string[] = [],
  cseqMethod = method,
): string {
  return [
    `${method} sip:bob@127.0.0.1 SIP/2.0`,
    `Via: SIP/2.0/UDP 127.0.0.1:5070;branch=${branch}`,
    "Max-Forwards: 70",
    "From: <sip:alice@sipsteer.test>;tag=a1",
    "To: <sip:bob@sipsteer.test>",
    "Call-ID: server-call-1",
    `CSeq: 7 ${cseqMethod}`,
    ...extra,
    "Content-Length: 0",
    "",
    "",
  ].join("\r\n");
}

// The TU keeps its own reference to each request: a transaction lets go of its request
// once the final response is out.
const requestOf = new WeakMap<ServerTransaction, SipRequest>();

function answer(tx: ServerTransaction, status: number): void {
  tx.respond(createResponse(requestOf.get(tx) ?? tx.request, status, { toTag: "uas" }));
}

async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

describe("non-INVITE server transaction (RFC 3261 §17.2.2)", () => {
  test("retransmissions are absorbed in Trying and answered from Completed; Timer J", async () => {
    const { clock, transport, layer, requests } = setup();
    transport.deliver(incoming("OPTIONS"));
    transport.deliver(incoming("OPTIONS"));
    assert.equal(requests.length, 1, "the TU sees the request once");
    assert.equal(transport.wire.length, 0, "nothing answers a retransmission in Trying");
    answer(requests[0]!, 200);
    await flush();
    assert.deepEqual(transport.lines("response"), ["SIP/2.0 200 OK"]);
    transport.deliver(incoming("OPTIONS"));
    assert.deepEqual(transport.lines("resend"), ["SIP/2.0 200 OK"]);
    assert.equal(requests[0]!.state, "completed");
    clock.tick(32_000);
    assert.equal(requests[0]!.state, "terminated");
    assert.equal(layer.size.server, 0);
    transport.deliver(incoming("OPTIONS"));
    assert.equal(requests.length, 2, "after Timer J the same branch is a new request");
  });

  test("a retransmission in Proceeding gets the last provisional", async () => {
    const { transport, requests } = setup();
    transport.deliver(incoming("SUBSCRIBE"));
    answer(requests[0]!, 100);
    await flush();
    transport.deliver(incoming("SUBSCRIBE"));
    assert.deepEqual(transport.lines("resend"), ["SIP/2.0 100 Trying"]);
  });

  test("over TCP, Completed ends at once (J = 0)", async () => {
    const { transport, requests, layer } = setup();
    transport.deliver(incoming("OPTIONS").replace("SIP/2.0/UDP", "SIP/2.0/TCP"), tcpFlow());
    answer(requests[0]!, 200);
    assert.equal(requests[0]!.state, "terminated");
    assert.equal(layer.size.server, 0);
    await flush();
    assert.deepEqual(transport.lines("response"), ["SIP/2.0 200 OK"], "and the 200 still went out");
  });

  test("a failure to send the response ends the transaction and tells the TU", async () => {
    const { transport, requests } = setup();
    transport.deliver(incoming("OPTIONS"));
    const reasons: TerminationReason[] = [];
    const tx = requests[0]!;
    const layerHook = tx.onTerminated;
    tx.onTerminated = (reason) => {
      reasons.push(reason);
      layerHook?.(reason);
    };
    transport.failSends = true;
    answer(tx, 200);
    await flush();
    assert.deepEqual(reasons, ["transport-error"]);
  });
});

describe("INVITE server transaction (RFC 3261 §17.2.1, RFC 6026)", () => {
  test("100 Trying goes out when the TU is silent for 200 ms, and not when it is quick", async () => {
    const slow = setup();
    slow.transport.deliver(incoming("INVITE"));
    slow.clock.tick(199);
    assert.equal(slow.transport.wire.length, 0);
    slow.clock.tick(1);
    await flush();
    assert.deepEqual(slow.transport.lines("response"), ["SIP/2.0 100 Trying"]);

    const quick = setup();
    quick.transport.deliver(incoming("INVITE"));
    answer(quick.requests[0]!, 180);
    quick.clock.tick(1000);
    await flush();
    assert.deepEqual(quick.transport.lines("response"), ["SIP/2.0 180 Ringing"]);
  });

  test("a retransmitted INVITE in Proceeding gets the last provisional again", async () => {
    const { transport, requests } = setup(0);
    transport.deliver(incoming("INVITE"));
    await flush();
    answer(requests[0]!, 180);
    await flush();
    transport.deliver(incoming("INVITE"));
    assert.deepEqual(transport.lines("resend"), ["SIP/2.0 180 Ringing"]);
  });

  test("a non-2xx final is retransmitted on Timer G until the ACK; then Confirmed and Timer I", async () => {
    const { clock, transport, requests, acks } = setup();
    transport.deliver(incoming("INVITE"));
    const tx = requests[0]!;
    answer(tx, 486);
    await flush();
    const resends: number[] = [];
    for (let t = 0; t < 12_000; t += 100) {
      const before = transport.lines("resend").length;
      clock.tick(100);
      if (transport.lines("resend").length > before) resends.push(clock.now());
    }
    assert.deepEqual(resends, [500, 1500, 3500, 7500, 11500], "G: T1, 2T1, 4T1, then T2");
    transport.deliver(
      incoming("ACK", "z9hG4bKs1", [], "ACK").replace("CSeq: 7 ACK", "CSeq: 7 ACK"),
    );
    assert.equal(tx.state, "confirmed");
    assert.equal(acks.length, 0, "the ACK of a non-2xx stays in the transaction");
    transport.deliver(incoming("ACK", "z9hG4bKs1", [], "ACK"));
    assert.equal(tx.state, "confirmed", "ACK retransmissions absorbed");
    const resent = transport.lines("resend").length;
    clock.tick(4999);
    assert.equal(transport.lines("resend").length, resent, "no G after the ACK");
    clock.tick(1);
    assert.equal(tx.state, "terminated", "Timer I = T4");
  });

  test("Timer H: no ACK within 64*T1 ends the transaction as a timeout", async () => {
    const { clock, transport, requests } = setup();
    transport.deliver(incoming("INVITE"));
    const tx = requests[0]!;
    const reasons: TerminationReason[] = [];
    const hook = tx.onTerminated;
    tx.onTerminated = (r) => {
      reasons.push(r);
      hook?.(r);
    };
    answer(tx, 603);
    await flush();
    clock.tick(32_000);
    assert.deepEqual(reasons, ["timeout"]);
  });

  test("a 2xx moves to Accepted: INVITE retransmissions absorbed, Timer L ends it", async () => {
    const { clock, transport, requests, acks, layer } = setup();
    transport.deliver(incoming("INVITE"));
    const tx = requests[0]!;
    answer(tx, 200);
    await flush();
    assert.equal(tx.state, "accepted");
    transport.deliver(incoming("INVITE"));
    assert.equal(
      transport.lines("resend").length,
      0,
      "the UA core, not the transaction, resends 2xx",
    );
    // A 2xx ACK with the same branch (RFC 6026 §7.1) goes to the TU.
    transport.deliver(incoming("ACK", "z9hG4bKs1", [], "ACK"));
    assert.equal(acks.length, 1);
    answer(tx, 200);
    await flush();
    assert.equal(transport.lines("response").length, 2, "a proxy may forward another 2xx");
    clock.tick(32_000);
    assert.equal(tx.state, "terminated");
    assert.equal(layer.size.server, 0);
  });

  test("over TCP the ACK ends Confirmed at once (I = 0) and there is no Timer G", async () => {
    const { clock, transport, requests } = setup();
    const tcp = tcpFlow();
    transport.deliver(incoming("INVITE").replace("SIP/2.0/UDP", "SIP/2.0/TCP"), tcp);
    const tx = requests[0]!;
    answer(tx, 486);
    await flush();
    clock.tick(10_000);
    assert.equal(transport.lines("resend").length, 0);
    transport.deliver(
      incoming("ACK", "z9hG4bKs1", [], "ACK").replace("SIP/2.0/UDP", "SIP/2.0/TCP"),
      tcp,
    );
    assert.equal(tx.state, "terminated");
    assert.deepEqual(transport.lines("response"), ["SIP/2.0 486 Busy Here"]);
  });
});

describe("matching (RFC 3261 §17.2.3, §9.2)", () => {
  test("a CANCEL makes its own transaction and is matched to its INVITE", async () => {
    const { transport, requests, layer } = setup();
    transport.deliver(incoming("INVITE"));
    const invite = requests[0] as InviteServerTransaction;
    const cancels: string[] = [];
    invite.onCancel = (c) => cancels.push(c.method);
    transport.deliver(incoming("CANCEL"));
    assert.equal(requests.length, 2);
    assert.equal(requests[1]!.method, "CANCEL");
    assert.deepEqual(cancels, ["CANCEL"]);
    assert.equal(layer.matchCancel(requests[1]!.request), invite);
  });

  test("a CANCEL after the final response does not reach the INVITE's TU (§9.2)", async () => {
    const { transport, requests } = setup();
    transport.deliver(incoming("INVITE"));
    const invite = requests[0] as InviteServerTransaction;
    let cancelled = 0;
    invite.onCancel = () => cancelled++;
    answer(invite, 486);
    await flush();
    transport.deliver(incoming("CANCEL"));
    assert.equal(cancelled, 0);
    assert.throws(() => invite.request, /released/, "the request was let go with the final");
  });

  test("the same branch from another sent-by is another transaction", () => {
    const { transport, requests } = setup();
    transport.deliver(incoming("OPTIONS"));
    transport.deliver(
      incoming("OPTIONS").replace("127.0.0.1:5070", "127.0.0.1:5071"),
      udpFlow(5071),
    );
    assert.equal(requests.length, 2);
  });

  test("RFC 2543 requests (no magic cookie) match by Request-URI, tags, Call-ID, CSeq, Via", async () => {
    const { transport, requests } = setup();
    const old = incoming("INVITE").replace(";branch=z9hG4bKs1", "");
    transport.deliver(old);
    transport.deliver(old);
    assert.equal(requests.length, 1);
    answer(requests[0]!, 486);
    await flush();
    transport.deliver(
      incoming("ACK", "", [], "ACK")
        .replace(";branch=", "")
        .replace("To: <sip:bob@sipsteer.test>", "To: <sip:bob@sipsteer.test>;tag=uas"),
    );
    assert.equal(requests[0]!.state, "confirmed");
  });

  test("an ACK outside any transaction and an unmatched response go to the TU", () => {
    const { transport, acks, strays } = setup();
    transport.deliver(incoming("ACK", "z9hG4bKother", [], "ACK"));
    transport.deliver(
      "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKnobody\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
    );
    assert.equal(acks.length, 1);
    assert.equal(strays.length, 1);
  });

  test("ten thousand live transactions hold one clock timer", async () => {
    const { clock, transport, requests, layer } = setup();
    for (let i = 0; i < 10_000; i++) transport.deliver(incoming("OPTIONS", `z9hG4bKmany${i}`));
    for (const tx of requests) answer(tx, 200);
    await flush();
    assert.equal(layer.size.server, 10_000);
    assert.equal(clock.pending, 1);
    clock.tick(32_000);
    assert.equal(layer.size.server, 0);
    assert.equal(clock.pending, 0);
  });
});
