// RFC 3261 §17.1 client transactions (with RFC 6026), driven by a fake clock: no sleeps.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { InviteClientTransaction } from "../../../src/sip/index.js";
import {
  SipResponseError,
  TransactionLayer,
  type SipRequest,
  type SipResponse,
} from "../../../src/sip/index.js";
import { FakeClock } from "../../helpers/fake-clock.js";
import { FakeTransport, tcpFlow } from "../../helpers/fake-transport.js";
import { request } from "../../helpers/sip-messages.js";

const UDP = { protocol: "udp" as const, address: "127.0.0.1", port: 5070 };
const TCP = { protocol: "tcp" as const, address: "127.0.0.1", port: 5070 };

function setup() {
  const clock = new FakeClock();
  const transport = new FakeTransport();
  const layer = new TransactionLayer({ transport, clock });
  layer.start();
  return { clock, transport, layer };
}

/** A response to what the transaction sent (its Via and branch), as text. */
function reply(sent: SipRequest, status: number, reason = "Reason", toTag = "t1"): string {
  const via = sent.firstValueText("via")!;
  return [
    `SIP/2.0 ${status} ${reason}`,
    `Via: ${via}`,
    `From: ${sent.getHeader("from")}`,
    `To: ${sent.getHeader("to")}${status > 100 ? `;tag=${toTag}` : ""}`,
    `Call-ID: ${sent.callId}`,
    `CSeq: ${sent.cseq.seq} ${sent.cseq.method}`,
    "Content-Length: 0",
    "",
    "",
  ].join("\r\n");
}

async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

/** Times (clock ms) at which the request went out again. */
function retransmissionTimes(
  clock: FakeClock,
  transport: FakeTransport,
  until: number,
  step = 100,
): number[] {
  const times: number[] = [];
  let seen = transport.lines("resend").length;
  while (clock.now() < until) {
    clock.tick(step);
    const now = transport.lines("resend").length;
    if (now > seen) times.push(clock.now());
    seen = now;
  }
  return times;
}

describe("non-INVITE client transaction (RFC 3261 §17.1.2)", () => {
  test("over UDP, Timer E retransmits at T1, 2T1, 4T1, then every T2; Timer F gives 408", async () => {
    const { clock, transport, layer } = setup();
    const tx = layer.sendRequest(request("OPTIONS"), UDP);
    await flush();
    assert.deepEqual(transport.lines("send"), ["OPTIONS sip:bob@127.0.0.1 SIP/2.0"]);
    const times = retransmissionTimes(clock, transport, 31_900);
    assert.deepEqual(times, [500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]);
    const outcome = tx.final.then(
      () => "resolved",
      (e: unknown) => (e instanceof SipResponseError ? e.status : e),
    );
    clock.tick(100);
    assert.equal(await outcome, 408);
    assert.equal(tx.state, "terminated");
    assert.equal(layer.size.client, 0);
    assert.equal(clock.pending, 0);
  });

  test("a provisional response moves to Proceeding, where Timer E is T2", async () => {
    const { clock, transport, layer } = setup();
    const seen: number[] = [];
    const tx = layer.sendRequest(request("REGISTER"), UDP, {
      onResponse: (r) => seen.push(r.status),
    });
    await flush();
    const sent = transport.last() as SipRequest;
    clock.tick(500); // first retransmission
    transport.deliver(reply(sent, 100, "Trying"));
    assert.equal(tx.state, "proceeding");
    // The E armed in Trying still fires (at 1500); from then on it is reset to T2.
    assert.deepEqual(retransmissionTimes(clock, transport, 9000), [1500, 5500]);
    transport.deliver(reply(sent, 200, "OK"));
    assert.deepEqual(seen, [100, 200]);
    assert.equal((await tx.final).status, 200);
  });

  test("a final response completes; its retransmissions are absorbed; Timer K is T4", async () => {
    const { clock, transport, layer } = setup();
    let passedUp = 0;
    const tx = layer.sendRequest(request("OPTIONS"), UDP, { onResponse: () => passedUp++ });
    await flush();
    const sent = transport.last() as SipRequest;
    transport.deliver(reply(sent, 404, "Not Found"));
    transport.deliver(reply(sent, 404, "Not Found"));
    assert.equal(passedUp, 1);
    assert.equal((await tx.final).status, 404);
    assert.equal(tx.state, "completed");
    clock.tick(4999);
    assert.equal(tx.state, "completed");
    clock.tick(1);
    assert.equal(tx.state, "terminated");
    assert.equal(transport.lines("resend").length, 0, "no retransmission after the final");
  });

  test("over TCP there are no retransmissions and Completed ends at once (K = 0)", async () => {
    const { clock, transport, layer } = setup();
    const tx = layer.sendRequest(request("OPTIONS"), TCP);
    await flush();
    clock.tick(20_000);
    assert.equal(transport.lines("resend").length, 0);
    transport.deliver(reply(transport.last() as SipRequest, 200, "OK"), tcpFlow());
    assert.equal(tx.state, "terminated");
    clock.tick(12_000);
    assert.equal(tx.state, "terminated");
  });

  test("Timer F runs over TCP too: no answer in 64*T1 is a 408", async () => {
    const { clock, layer } = setup();
    const tx = layer.sendRequest(request("OPTIONS"), TCP);
    await flush();
    clock.tick(32_000);
    await assert.rejects(
      tx.final,
      (e: unknown) => e instanceof SipResponseError && e.status === 408,
    );
  });

  test("a transport failure is a 503 for the TU", async () => {
    const { transport, layer } = setup();
    transport.failSends = true;
    const tx = layer.sendRequest(request("OPTIONS"), TCP);
    await assert.rejects(
      tx.final,
      (e: unknown) => e instanceof SipResponseError && e.status === 503,
    );
    assert.equal(layer.size.client, 0);
  });
});

describe("INVITE client transaction (RFC 3261 §17.1.1, RFC 6026)", () => {
  test("Timer A doubles without a cap; Timer B gives 408 after 64*T1", async () => {
    const { clock, transport, layer } = setup();
    const tx = layer.sendRequest(request("INVITE"), UDP);
    await flush();
    assert.deepEqual(
      retransmissionTimes(clock, transport, 31_900),
      [500, 1500, 3500, 7500, 15500, 31500],
    );
    clock.tick(100);
    await assert.rejects(
      tx.final,
      (e: unknown) => e instanceof SipResponseError && e.status === 408,
    );
  });

  test("a provisional stops retransmissions and Timer B", async () => {
    const { clock, transport, layer } = setup();
    const tx = layer.sendRequest(request("INVITE"), UDP);
    await flush();
    transport.deliver(reply(transport.last() as SipRequest, 180, "Ringing"));
    assert.equal(tx.state, "proceeding");
    clock.tick(120_000);
    assert.equal(transport.lines("resend").length, 0);
    assert.equal(tx.state, "proceeding", "no timeout in Proceeding: the TU decides (Timer C)");
  });

  test("a non-2xx final is ACKed by the transaction, and again for each retransmission", async () => {
    const { clock, transport, layer } = setup();
    const tx = layer.sendRequest(request("INVITE"), UDP);
    await flush();
    const invite = transport.last() as SipRequest;
    transport.deliver(reply(invite, 486, "Busy Here", "busy1"));
    await flush();
    const ack = transport.last() as SipRequest;
    assert.equal(ack.method, "ACK");
    assert.equal(ack.uri.toString(), invite.uri.toString());
    assert.equal(ack.topVia!.branch, invite.topVia!.branch, "same branch: same server transaction");
    assert.equal(ack.vias.length, 1);
    assert.equal(ack.to.tag, "busy1");
    assert.equal(ack.from.tag, invite.from.tag);
    assert.deepEqual(ack.cseq, { seq: invite.cseq.seq, method: "ACK" });
    assert.equal((await tx.final).status, 486);
    transport.deliver(reply(invite, 486, "Busy Here", "busy1"));
    assert.deepEqual(transport.lines("resend"), [`ACK ${invite.uri.toString()} SIP/2.0`]);
    assert.equal(tx.state, "completed");
    clock.tick(32_000);
    assert.equal(tx.state, "terminated", "Timer D");
  });

  test("a 2xx moves to Accepted; further 2xx go to the TU; Timer M ends it (RFC 6026)", async () => {
    const { clock, transport, layer } = setup();
    const statuses: string[] = [];
    const tx = layer.sendRequest(request("INVITE"), UDP, {
      onResponse: (r: SipResponse) => statuses.push(`${r.status}/${r.to.tag ?? ""}`),
    });
    await flush();
    const invite = transport.last() as SipRequest;
    transport.deliver(reply(invite, 200, "OK", "fork1"));
    transport.deliver(reply(invite, 200, "OK", "fork2"));
    transport.deliver(reply(invite, 200, "OK", "fork1"));
    assert.deepEqual(statuses, ["200/fork1", "200/fork2", "200/fork1"]);
    assert.equal((await tx.final).to.tag, "fork1");
    assert.equal(tx.state, "accepted");
    assert.equal(transport.lines().filter((l) => l.startsWith("ACK")).length, 0, "the TU ACKs 2xx");
    clock.tick(32_000);
    assert.equal(tx.state, "terminated");
  });

  test("cancel() waits for a provisional, then sends a CANCEL with the INVITE's branch", async () => {
    const { transport, layer } = setup();
    const tx = layer.sendRequest(request("INVITE"), UDP) as InviteClientTransaction;
    await flush();
    const invite = transport.last() as SipRequest;
    tx.cancel('SIP;cause=487;text="gone"');
    assert.equal(transport.lines("send").length, 1, "no CANCEL before a provisional (§9.1)");
    transport.deliver(reply(invite, 180, "Ringing"));
    await flush();
    const cancel = transport.last() as SipRequest;
    assert.equal(cancel.method, "CANCEL");
    assert.equal(cancel.topVia!.branch, invite.topVia!.branch);
    assert.deepEqual(cancel.cseq, { seq: invite.cseq.seq, method: "CANCEL" });
    assert.equal(cancel.getHeader("reason"), 'SIP;cause=487;text="gone"');
    assert.equal(layer.size.client, 2, "the CANCEL has its own transaction");
    // The CANCEL's 200 and the INVITE's 487 each find their own transaction.
    transport.deliver(reply(cancel, 200, "OK"));
    transport.deliver(reply(invite, 487, "Request Terminated"));
    assert.equal((await tx.final).status, 487);
  });

  test("stop() ends every transaction; pending finals reject with 503; no timer is left", async () => {
    const { clock, layer } = setup();
    const a = layer.sendRequest(request("INVITE"), UDP);
    const b = layer.sendRequest(request("OPTIONS"), UDP);
    await flush();
    layer.stop();
    for (const tx of [a, b]) {
      await assert.rejects(
        tx.final,
        (e: unknown) => e instanceof SipResponseError && e.status === 503,
      );
    }
    assert.equal(clock.pending, 0);
    assert.deepEqual(layer.size, { client: 0, server: 0 });
  });
});
