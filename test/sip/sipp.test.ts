// The SIP stack against a real peer: SIPp (Debian sip-tester). SIPp drives our small UAS
// (transport + transaction layers) over UDP and TCP, and plays UAS to our client
// transactions; with first transmissions ignored, retransmissions recover on both sides.
import assert from "node:assert/strict";
import { describe, test, type TestContext } from "node:test";
import {
  SipRequest,
  TransactionLayer,
  TransportLayer,
  type ClientTransaction,
  type SipResponse,
} from "../../src/sip/index.js";
import { SmallUas } from "../helpers/small-uas.js";
import {
  freePort,
  startSipp,
  waitForBound,
  type SippOptions,
  type SippResult,
} from "../helpers/sipp.js";
import { request } from "../helpers/sip-messages.js";
import { requireTool } from "../helpers/tools.js";

const LOOPBACK = ["127.0.0.0/8"];

async function sipp(options: SippOptions): Promise<SippResult> {
  const run = startSipp(options);
  try {
    return await run.result;
  } finally {
    run.kill();
  }
}

async function withUas<T>(inviteStatus: number, body: (uas: SmallUas) => Promise<T>): Promise<T> {
  const uas = new SmallUas({
    listen: [
      { protocol: "udp", address: "127.0.0.1", port: 0 },
      { protocol: "tcp", address: "127.0.0.1", port: 0 },
    ],
    inviteStatus,
  });
  await uas.start();
  try {
    return await body(uas);
  } finally {
    await uas.stop();
  }
}

describe("SIPp drives our server transactions", { concurrency: false }, () => {
  for (const [scenario, method] of [
    ["options-uac.xml", "OPTIONS"],
    ["register-uac.xml", "REGISTER"],
  ] as const) {
    for (const transport of ["u1", "t1"] as const) {
      test(`${method} over ${transport === "u1" ? "UDP" : "TCP"}: 100 calls, 0 failed`, async (t: TestContext) => {
        if (!requireTool(t, "sipp", "sip-tester")) return;
        await withUas(486, async (uas) => {
          const port = uas.port(transport === "u1" ? "udp" : "tcp");
          const result = await sipp({
            scenario,
            transport,
            remote: `127.0.0.1:${port}`,
            localPort: await freePort(),
            calls: 100,
            rate: 200,
          });
          assert.equal(result.failed, 0, result.output);
          assert.equal(result.successful, 100);
          assert.equal(result.code, 0);
          assert.equal(uas.answered.get(method), 100);
        });
      });
    }
  }

  test("a retransmitted OPTIONS is answered from Completed, not passed to the TU again", async (t) => {
    if (!requireTool(t, "sipp", "sip-tester")) return;
    await withUas(486, async (uas) => {
      const result = await sipp({
        scenario: "options-uac-twice.xml",
        transport: "u1",
        remote: `127.0.0.1:${uas.port("udp")}`,
        localPort: await freePort(),
        calls: 10,
        extraArgs: ["-nr"],
      });
      assert.equal(result.failed, 0, result.output);
      assert.equal(result.successful, 10);
      assert.equal(uas.answered.get("OPTIONS"), 10, "the TU saw each request once");
    });
  });

  test("SIPp ignores our first 486: Timer G retransmits it, the ACK confirms", async (t) => {
    if (!requireTool(t, "sipp", "sip-tester")) return;
    await withUas(486, async (uas) => {
      const result = await sipp({
        scenario: "invite-uac-ignore-first-final.xml",
        transport: "u1",
        remote: `127.0.0.1:${uas.port("udp")}`,
        localPort: await freePort(),
        calls: 5,
        rate: 5,
        extraArgs: ["-nr"],
      });
      assert.equal(result.failed, 0, result.output);
      assert.equal(result.successful, 5);
      assert.equal(uas.terminations.includes("timeout"), false, "no Timer H: every ACK came");
    });
  });
});

describe("our client transactions against SIPp as UAS", { concurrency: false }, () => {
  async function client(): Promise<{ transport: TransportLayer; transactions: TransactionLayer }> {
    const transport = new TransportLayer({
      listen: [
        { protocol: "udp", address: "127.0.0.1", port: 0 },
        { protocol: "tcp", address: "127.0.0.1", port: 0 },
      ],
      allowedDestinations: LOOPBACK,
    });
    await transport.start();
    const transactions = new TransactionLayer({ transport });
    transactions.start();
    return { transport, transactions };
  }

  async function against(
    t: TestContext,
    scenario: string,
    sippTransport: "u1" | "t1",
    calls: number,
    send: (
      layers: { transport: TransportLayer; transactions: TransactionLayer },
      port: number,
    ) => Promise<void>,
  ): Promise<SippResult> {
    const port = await freePort();
    const run = startSipp({
      scenario,
      transport: sippTransport,
      localPort: port,
      calls,
      extraArgs: ["-nr"],
    });
    const layers = await client();
    try {
      await waitForBound(port, sippTransport === "u1" ? "udp" : "tcp");
      await send(layers, port);
      return await run.result;
    } finally {
      run.kill();
      layers.transactions.stop();
      await layers.transport.stop();
      t.diagnostic(`sipp exit ${run.process.exitCode}`);
    }
  }

  for (const [sippTransport, protocol] of [
    ["u1", "udp"],
    ["t1", "tcp"],
  ] as const) {
    test(`OPTIONS over ${protocol.toUpperCase()}: 20 transactions, SIPp counts 0 failed`, async (t) => {
      if (!requireTool(t, "sipp", "sip-tester")) return;
      const result = await against(
        t,
        "options-uas.xml",
        sippTransport,
        20,
        async ({ transactions }, port) => {
          for (let i = 0; i < 20; i++) {
            const tx = transactions.sendRequest(request("OPTIONS"), {
              protocol,
              address: "127.0.0.1",
              port,
            });
            assert.equal((await tx.final).status, 200);
          }
        },
      );
      assert.equal(result.failed, 0, result.output);
      assert.equal(result.successful, 20);
    });
  }

  test("SIPp ignores our first OPTIONS: Timer E retransmits and the transaction completes", async (t) => {
    if (!requireTool(t, "sipp", "sip-tester")) return;
    const result = await against(
      t,
      "options-uas-drop-first.xml",
      "u1",
      3,
      async ({ transactions }, port) => {
        for (let i = 0; i < 3; i++) {
          const tx = transactions.sendRequest(request("OPTIONS"), {
            protocol: "udp",
            address: "127.0.0.1",
            port,
          });
          assert.equal((await tx.final).status, 200);
        }
      },
    );
    assert.equal(result.failed, 0, result.output);
    assert.equal(result.successful, 3);
  });

  test("SIPp ignores our first INVITE: Timer A retransmits; 180, 486, and our ACK", async (t) => {
    if (!requireTool(t, "sipp", "sip-tester")) return;
    const result = await against(
      t,
      "invite-uas-drop-first.xml",
      "u1",
      2,
      async ({ transactions }, port) => {
        for (let i = 0; i < 2; i++) {
          const statuses: number[] = [];
          const tx: ClientTransaction = transactions.sendRequest(
            request("INVITE"),
            { protocol: "udp", address: "127.0.0.1", port },
            { onResponse: (r: SipResponse) => statuses.push(r.status) },
          );
          assert.equal((await tx.final).status, 486);
          assert.deepEqual(statuses, [180, 486]);
        }
      },
    );
    assert.equal(result.failed, 0, result.output);
    assert.equal(result.successful, 2);
  });

  test("an INVITE answered 200: the TU's ACK reaches SIPp", async (t) => {
    if (!requireTool(t, "sipp", "sip-tester")) return;
    const result = await against(
      t,
      "invite-uas-200.xml",
      "u1",
      1,
      async ({ transport, transactions }, port) => {
        const target = { protocol: "udp" as const, address: "127.0.0.1", port };
        const invite = request("INVITE");
        const tx = transactions.sendRequest(invite, target);
        const ok = await tx.final;
        assert.equal(ok.status, 200);
        // RFC 3261 §13.2.2.4: the ACK for a 2xx is the UAC core's, in its own transaction-less send.
        const ack = new SipRequest({
          method: "ACK",
          uri: ok.contacts[0]!.uri,
          headers: [
            ["Max-Forwards", "70"],
            ["From", invite.getHeader("from")!],
            ["To", ok.getHeader("to")!],
            ["Call-ID", invite.callId],
            ["CSeq", `${invite.cseq.seq} ACK`],
            ["Content-Length", "0"],
          ],
        });
        await transport.send(ack, target, { viaBranch: "z9hG4bKack2xx" });
      },
    );
    assert.equal(result.failed, 0, result.output);
    assert.equal(result.successful, 1);
  });
});
